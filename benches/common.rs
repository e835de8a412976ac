//! Deliveries shared by the benchmarks: one signed request per scheme and body size.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use http::HeaderMap;
use webhook_guard::scheme::{
    Custom, GitHub, Scheme, Shopify, Slack, StandardWebhooks, Stripe, Template, TimestampUnit,
};
use webhook_guard::{Keyring, ManualClock, Secret, Signer, Verifier};

pub const NOW: i64 = 1_700_000_000;

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

pub const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

pub fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"{\"a\":1234567890}"[i % 16]).collect()
}

pub fn secret() -> Secret {
    Secret::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap()
}

/// Every benchmarked scheme, by name.
pub fn schemes() -> Vec<(&'static str, Box<dyn Scheme>)> {
    vec![
        ("standard", Box::new(StandardWebhooks)),
        ("stripe", Box::new(Stripe)),
        ("github", Box::new(GitHub)),
        ("slack", Box::new(Slack)),
        ("shopify", Box::new(Shopify)),
        ("custom", Box::new(custom())),
    ]
}

fn custom() -> Custom {
    Custom::new("x-signature")
        .unwrap()
        .timestamp_header("x-timestamp", TimestampUnit::Seconds)
        .unwrap()
        .template(Template::parse("{timestamp}.{body}").unwrap())
        .unwrap()
}

/// A verifier of scheme `name` given as its own type, as users write it (a `Box<dyn Scheme>`
/// would add a second dynamic call per scheme method).
fn verifier_of(name: &str, keyring: Keyring) -> Verifier {
    match name {
        "standard" => Verifier::new(StandardWebhooks, keyring),
        "stripe" => Verifier::new(Stripe, keyring),
        "github" => Verifier::new(GitHub, keyring),
        "slack" => Verifier::new(Slack, keyring),
        "shopify" => Verifier::new(Shopify, keyring),
        "custom" => Verifier::new(custom(), keyring),
        _ => panic!("no scheme {name}"),
    }
}

pub fn scheme(name: &str) -> Box<dyn Scheme> {
    schemes().into_iter().find(|(n, _)| *n == name).unwrap().1
}

/// A verifier with `keys` live keys whose current key is [`secret`] when `current_matches`,
/// else the oldest grace key is.
pub fn verifier(name: &str, keys: usize, match_current: bool) -> Verifier {
    let clock = ManualClock::new(now());
    let first = if match_current || keys == 1 {
        secret()
    } else {
        Secret::from_bytes(b"other-0").unwrap()
    };
    let keyring = Keyring::builder().clock(clock).build(first);
    if !match_current && keys > 1 {
        // The matching key is the oldest: rotate away from it keys-1 times.
        let keyring2 = Keyring::builder()
            .clock(ManualClock::new(now()))
            .build(secret());
        for i in 1..keys {
            keyring2
                .rotate(
                    Secret::from_bytes(format!("other-{i}")).unwrap(),
                    std::time::Duration::from_secs(3600),
                )
                .unwrap();
        }
        return verifier_of(name, keyring2);
    }
    for i in 1..keys {
        keyring
            .add_grace_key(
                Secret::from_bytes(format!("grace-{i}")).unwrap(),
                now() + chrono::Duration::hours(1),
            )
            .unwrap();
    }
    verifier_of(name, keyring)
}

/// A signed delivery's headers, among the ones a real request carries past a proxy, so that
/// header lookups cost what they cost in production.
pub fn headers(name: &str, body: &[u8]) -> HeaderMap {
    with_usual_headers(
        Signer::new(scheme(name), secret())
            .sign_at(body, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now())
            .unwrap(),
    )
}

/// `signed` plus the nine headers of a typical request that went through a proxy.
pub fn with_usual_headers(signed: HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "hooks.example.com"),
        (
            "user-agent",
            "Webhook-Sender/1.0 (+https://sender.example/docs)",
        ),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "8a1f3c2e-6b7d-4e90-a1b2-c3d4e5f60718"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    headers.extend(signed);
    headers
}

/// The bytes the scheme signs before the body, as the scheme lays them out.
pub fn prefix(name: &str, headers: &HeaderMap) -> (Vec<u8>, Vec<u8>) {
    let scheme = scheme(name);
    let mut delivery = webhook_guard::scheme::Delivery::new();
    scheme.parse(headers, &mut delivery).unwrap();
    let marker = [0xA5u8; 7];
    let mut parts: Vec<Vec<u8>> = Vec::new();
    scheme.signed_content(&delivery, &marker, &mut |p| parts.push(p.to_vec()));
    let at = parts.iter().position(|p| p == &marker).unwrap();
    (parts[..at].concat(), parts[at + 1..].concat())
}

/// Serves `service` over HTTP/1 on a fresh loopback port, every connection with `TCP_NODELAY`,
/// until the runtime stops; returns the address. For the benches that go through a real socket
/// (`streaming`, `fairness`).
pub async fn serve_loopback<S>(service: S) -> std::net::SocketAddr
where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<
                webhook_guard::middleware::ResponseBody<http_body_util::Full<bytes::Bytes>>,
            >,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            stream.set_nodelay(true).unwrap();
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Sends one HTTP/1.1 request on a keep-alive connection and reads the whole response into
/// `buf`; panics unless it is a 200 with a `content-length`. Returns where the body starts.
pub async fn exchange_ok(
    stream: &mut tokio::net::TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await.unwrap();
    buf.clear();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a content-length");
        if buf.len() >= head_end + 4 + length {
            return head_end + 4;
        }
    }
}
