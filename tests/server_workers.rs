//! `webhook_guard::server::serve` with [`Limits::workers`]: connections are handed in turn to
//! worker threads, each running its own single-threaded runtime, and served wholly there; the
//! server's limits hold on them; they stop with the server. Every server here runs on a free
//! loopback port.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use webhook_guard::server::{serve, Limits};

/// Answers the name of the thread the handler ran on, and whether its runtime is
/// single-threaded.
fn app() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            format!(
                "{} {}",
                std::thread::current().name().unwrap_or("unnamed"),
                flavor == tokio::runtime::RuntimeFlavor::CurrentThread
            )
        }),
    )
}

async fn start(
    limits: Limits,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, app(), limits, async {
        let _ = stopped.await;
    }));
    (addr, stop, served)
}

/// One request on `stream`; the answer's body.
async fn get_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("sent");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .expect("a content-length")
                .trim()
                .parse()
                .expect("a number");
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return body[..length].to_owned();
            }
        }
    }
}

#[tokio::test]
async fn connections_take_turns_on_the_workers_and_stay_on_theirs() {
    let (addr, _stop, _served) = start(Limits::new().workers(2)).await;
    let mut connections = Vec::new();
    for _ in 0..4 {
        connections.push(TcpStream::connect(addr).await.expect("connected"));
    }
    let mut names = Vec::new();
    for stream in &mut connections {
        names.push(get_on(stream).await);
    }
    assert_eq!(
        names,
        [
            "webhook-guard-worker-0 true",
            "webhook-guard-worker-1 true",
            "webhook-guard-worker-0 true",
            "webhook-guard-worker-1 true",
        ]
    );
    // A connection's later requests are served on the same worker.
    for (stream, name) in connections.iter_mut().zip(&names) {
        assert_eq!(&get_on(stream).await, name);
    }
}

#[tokio::test]
async fn without_workers_connections_are_served_on_the_callers_runtime() {
    let (addr, _stop, _served) = start(Limits::new()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connected");
    // `#[tokio::test]` runs on the test's own thread, single-threaded.
    let here = std::thread::current().name().map(str::to_owned);
    assert_eq!(
        get_on(&mut stream).await,
        format!("{} true", here.as_deref().unwrap_or("unnamed"))
    );
}

#[tokio::test]
async fn the_idle_timeout_holds_on_the_workers() {
    let idle = Duration::from_secs(1);
    let (addr, _stop, _served) = start(Limits::new().workers(2).idle(idle)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connected");
    get_on(&mut stream).await;
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(idle + Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("closed while idle");
    assert!(read.is_ok() && rest.is_empty());
    assert!(started.elapsed() >= idle - Duration::from_millis(100));
}

#[tokio::test]
async fn stopping_the_server_stops_its_workers_and_their_connections() {
    let (addr, stop, served) = start(
        Limits::new()
            .workers(2)
            .request(Duration::from_secs(1))
            .idle(Duration::from_secs(60)),
    )
    .await;
    let mut stream = TcpStream::connect(addr).await.expect("connected");
    get_on(&mut stream).await;
    stop.send(()).expect("serving");
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve returned")
        .expect("not panicked")
        .expect("no error");
    // The keep-alive connection is closed (gracefully, or with its worker's runtime).
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("closed once the server stopped");
    assert!(read.is_err() || rest.is_empty());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
