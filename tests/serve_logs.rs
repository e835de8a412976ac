//! `webhook-guard serve` writes its log lines on a thread of its own: a log reader that stops
//! reading (a stalled pipe to a log shipper) slows no delivery, and the lines waiting are
//! written, none lost, once it reads again, without terminal colour codes.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

mod serve_support;

/// More access lines than a pipe holds (64 KiB on Linux; each line is over 100 bytes).
const DELIVERIES: usize = 3000;

#[tokio::test]
async fn deliveries_are_answered_while_nobody_reads_the_log() {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let data =
        std::env::temp_dir().join(format!("wg_serve_logs_{:016x}", u64::from_le_bytes(bytes)));
    let mut child = serve_support::serve_command(&data, &["--bootstrap"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    // stderr is a pipe nobody reads until every delivery is answered.
    let stderr = child.stderr.take().unwrap();
    let server = serve_support::serving(child);
    let project = server
        .exported("WG_PROJECT")
        .expect("the bootstrap's project");

    let addr = server.addr.to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for n in 0..DELIVERIES {
        // Unsigned: answered 400 and logged, like any delivery.
        let request = http::Request::post(format!("/webhooks/{project}"))
            .header("host", &addr)
            .header("webhook-id", format!("msg_{n}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
            .await
            .unwrap_or_else(|_| panic!("delivery {n} not answered in 10 s: serve waits for stderr"))
            .unwrap();
        assert_eq!(answer.status(), 400, "delivery {n}");
    }

    // Read now: every delivery's line arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut stderr = stderr;
        let mut buf = [0u8; 65536];
        while text.matches("webhook_guard::access").count() < DELIVERIES {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        let _ = tx.send(text);
    });
    let text = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the access lines within 30 s");
    assert_eq!(text.matches("webhook_guard::access").count(), DELIVERIES);
    // A pipe is not a terminal: plain text, no colour codes.
    assert!(!text.contains('\u{1b}'), "an escape code in the log");
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
