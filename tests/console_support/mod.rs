//! What the console's browser tests stand on: the real `webhook-guard serve --bootstrap` with
//! the credentials it prints, headless Chromium driven by its own `chromedriver`, raw HTTP
//! requests, and polling helpers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

/// How long anything in the browser may take to appear: generous, the machine is shared.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where `.ci/console-deps.sh` installs axe-core.
pub const AXE: &str = "target/console-node/node_modules/axe-core/axe.min.js";

const DEPS: &str =
    "run `bash .ci/console-deps.sh` (installs chromium, chromium-driver and axe-core)";

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        let path = std::env::temp_dir().join(format!(
            "wg-console-{what}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(bytes)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `webhook-guard serve --bootstrap` on a free port, with the credentials it printed once.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub api_key: String,
    pub client_id: String,
    pub client_secret: String,
    pub project: String,
    pub signing_secret: String,
    _data: TempDir,
}

impl Server {
    pub fn start() -> Self {
        let data = TempDir::new("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
            .args([
                "serve",
                "--bootstrap",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data.0.join("wg"))
            .env("RUST_LOG", "warn")
            .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start webhook-guard serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut exports = HashMap::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before it served")
                .unwrap();
            if let Some((name, value)) = line
                .strip_prefix("export ")
                .and_then(|rest| rest.split_once('='))
            {
                exports.insert(name.to_owned(), value.to_owned());
            }
            if let Some(rest) = line.strip_prefix("webhook-guard serving on http://") {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let take = |name: &str| {
            exports
                .get(name)
                .unwrap_or_else(|| panic!("the bootstrap output has no {name}"))
                .clone()
        };
        Self {
            api_key: take("WG_API_KEY"),
            client_id: take("WG_CLIENT_ID"),
            client_secret: take("WG_CLIENT_SECRET"),
            project: take("WG_PROJECT"),
            signing_secret: take("WG_SIGNING_SECRET"),
            child,
            addr,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A webhook to the bootstrap project signed with `secret`: the status it gets.
    pub fn deliver(&self, secret: &str) -> u16 {
        let body = br#"{"type":"ping"}"#;
        let headers = Signer::new(StandardWebhooks, Secret::from_bytes(secret).unwrap())
            .sign(body)
            .unwrap();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let path = format!("/webhooks/{}", self.project);
        http(self.addr, "POST", &path, &headers, body).status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer to a raw HTTP/1.1 request.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on a fresh connection (no chunked answers are expected: the server
/// sends a length for everything these tests ask).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A free loopback port, asked of the OS.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Headless Chromium behind its own `chromedriver`, both ended when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "/usr/bin/chromium is missing: {DEPS}"
        );
        let port = free_port();
        let driver = match Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!("cannot start chromedriver ({e}): {DEPS}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver did not listen on port {port}: {DEPS}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = TempDir::new("profile");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("cannot start a Chromium session ({e}): {DEPS}"));
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session, then the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The element matching `css`, once it is there.
pub async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css} ({e})"))
}

/// Polls `expression` (JavaScript) until it is truthy; its value.
pub async fn until(client: &Client, expression: &str) -> Value {
    let started = Instant::now();
    let script = format!("return ({expression});");
    loop {
        let value = client.execute(&script, vec![]).await.unwrap();
        let truthy = match &value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "timed out waiting for {expression}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens the console and signs in with an API key.
pub async fn sign_in(client: &Client, server: &Server, key: &str) {
    client.goto(&server.url("/console")).await.unwrap();
    find(client, "#api-key").await.send_keys(key).await.unwrap();
    find(client, "#signin-submit").await.click().await.unwrap();
    until(client, "document.getElementById('nav').hidden === false").await;
}

/// Goes to a console page (`#/keys`, `#/projects/<id>`, …) and waits for it to be drawn.
pub async fn open(client: &Client, hash: &str) {
    let mut parts = hash.trim_start_matches("#/").split('/');
    let page = match (parts.next(), parts.next()) {
        (Some("projects"), Some(_)) => "project",
        (Some(page), _) => page,
        (None, _) => "keys",
    };
    client
        .execute(&format!("location.hash = {};", json!(hash)), vec![])
        .await
        .unwrap();
    drawn(client, page).await;
}

/// Waits until `page` is drawn (its data loaded, its heading there).
pub async fn drawn(client: &Client, page: &str) {
    until(
        client,
        &format!(
            "document.getElementById('view').getAttribute('data-page') === {} && \
             document.getElementById('view').getAttribute('aria-busy') === null && \
             !!document.getElementById('page-title')",
            json!(page)
        ),
    )
    .await;
}
