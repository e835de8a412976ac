//! The real `webhook-guard serve --bootstrap` with the gateway's flags, a test upstream on a
//! free loopback port that records what it receives, and a small HTTP client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

/// A running `serve` and the bootstrap's credentials.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub api_key: String,
    pub project: String,
    pub signing_secret: String,
    pub log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh data directory under the target directory.
pub fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wg-gateway-{name}-{}-{:x}",
        std::process::id(),
        rand_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Starts `serve --bootstrap` on `data` with `extra` flags; the access log (stderr) goes to
/// `data/serve.log`.
pub fn spawn(data: &Path, extra: &[&str]) -> Serve {
    let log = data.join(format!("serve-{:x}.log", rand_u64()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "serve",
            "--bootstrap",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn,webhook_guard::access=info")
        .env("NO_COLOR", "1")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = HashMap::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before it served")
            .unwrap();
        if let Some(rest) = line.strip_prefix("export ") {
            if let Some((k, v)) = rest.split_once('=') {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
        if let Some(rest) = line.strip_prefix("webhook-guard serving on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        addr,
        api_key: vars.get("WG_API_KEY").cloned().unwrap_or_default(),
        project: vars.get("WG_PROJECT").cloned().unwrap_or_default(),
        signing_secret: vars.get("WG_SIGNING_SECRET").cloned().unwrap_or_default(),
        log,
    }
}

/// What a test upstream does with a request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answers this status, extra headers and body.
    Answer(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Waits, then answers 200.
    Slow(Duration),
    /// Sends the status line and half the announced body, then closes.
    CloseMidResponse,
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// Every value of header `name` (lower case).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of header `name`.
    pub fn one(&self, name: &str) -> &str {
        let all = self.all(name);
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0]
    }
}

/// A loopback HTTP/1.1 upstream (keep-alive) that records what it receives.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub count: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub keep: bool,
}

impl Upstream {
    /// Starts one on the current runtime, keeping every request when `keep`.
    pub async fn start(behaviour: Behaviour, keep: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Self {
            addr: listener.local_addr().unwrap(),
            count: Arc::default(),
            received: Arc::default(),
            keep,
        };
        let serving = upstream.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let serving = serving.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move { serving.connection(stream, behaviour).await });
            }
        });
        upstream
    }

    /// Starts one speaking TLS with `acceptor`.
    pub async fn start_tls(
        behaviour: Behaviour,
        keep: bool,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Self {
            addr: listener.local_addr().unwrap(),
            count: Arc::default(),
            received: Arc::default(),
            keep,
        };
        let serving = upstream.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let serving = serving.clone();
                let behaviour = behaviour.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serving.connection(stream, behaviour).await;
                    }
                });
            }
        });
        upstream
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/in?src=wg", self.addr)
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }

    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        behaviour: Behaviour,
    ) {
        let mut buffer = Vec::new();
        loop {
            let Some(received) = read_request(&mut stream, &mut buffer).await else {
                return;
            };
            self.count.fetch_add(1, Ordering::SeqCst);
            if self.keep {
                self.received.lock().unwrap().push(received);
            }
            let answer = match &behaviour {
                Behaviour::Answer(status, headers, body) => {
                    let mut head =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let mut bytes = head.into_bytes();
                    bytes.extend_from_slice(body);
                    bytes
                }
                Behaviour::Slow(delay) => {
                    tokio::time::sleep(*delay).await;
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow".to_vec()
                }
                Behaviour::CloseMidResponse => {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf")
                        .await;
                    return;
                }
            };
            if stream.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}

async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Option<Received> {
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8(buffer[..end].to_vec()).ok()?;
    let mut lines = head_text.split("\r\n");
    let head = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let start = end + 4;
    while buffer.len() < start + length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    Some(Received {
        head,
        headers,
        body,
    })
}

/// A pooled HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends one request.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: String,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("the server answers");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

impl Serve {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An admin API call with the bootstrap API key.
    pub async fn admin(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        method: Method,
        path: &str,
        body: serde_json::Value,
    ) -> Answer {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        send(
            client,
            method,
            self.url(path),
            &[
                ("x-api-key", self.api_key.as_str()),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Forwards the bootstrap project to `url`; panics unless 200.
    pub async fn set_upstream(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        project: &str,
        url: &str,
        resign: bool,
    ) -> Answer {
        let answer = self
            .admin(
                client,
                Method::PUT,
                &format!("/v1/projects/{project}/upstream"),
                serde_json::json!({"upstreamUrl": url, "resign": resign}),
            )
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.json());
        answer
    }

    /// Creates a Standard Webhooks project, returning its id and signing secret.
    pub async fn create_project(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        upstream: Option<&str>,
    ) -> (String, String) {
        let mut body = serde_json::json!({"name": "p"});
        if let Some(url) = upstream {
            body["upstreamUrl"] = url.into();
        }
        let answer = self.admin(client, Method::POST, "/v1/projects", body).await;
        assert_eq!(answer.status, 201, "{:?}", answer.json());
        let json = answer.json();
        (
            json["projectId"].as_str().unwrap().to_owned(),
            json["signingSecret"].as_str().unwrap().to_owned(),
        )
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Standard Webhooks headers for `body`, signed with a project's signing secret (its text is
/// the HMAC key).
pub fn sign(secret: &str, body: &[u8]) -> HeaderMap {
    Signer::new(StandardWebhooks, Secret::from_bytes(secret).unwrap())
        .sign(body)
        .unwrap()
}

/// Delivers `body` to `project` signed with `secret`, plus `extra` headers.
pub async fn deliver(
    client: &Client<HttpConnector, Full<Bytes>>,
    serve: &Serve,
    project: &str,
    secret: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Answer {
    let signed = sign(secret, body);
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    headers.extend_from_slice(extra);
    send(
        client,
        Method::POST,
        serve.url(&format!("/webhooks/{project}")),
        &headers,
        body.to_vec(),
    )
    .await
}
