//! `webhook-guard serve` runs on `webhook_guard::server::serve`: a client that sends half a
//! request line and nothing more is dropped after the header-read timeout, while other clients
//! are still served.

#![cfg(unix)]

mod serve_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;

use serve_support::spawn_serve;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(header_read_secs: u64) -> Server {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "wg-serve-limits-{}-{:x}",
        std::process::id(),
        u64::from_le_bytes(random)
    ));
    let secs = header_read_secs.to_string();
    let (child, addr) = spawn_serve(
        &dir.join("data"),
        &["--header-read-timeout-secs", secs.as_str()],
    );
    Server { child, addr, dir }
}

fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn half_a_request_line_is_dropped_after_the_header_read_timeout() {
    let server = start(1);
    let opened = Instant::now();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /heal").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Meanwhile the server answers others.
    let answer = healthz(server.addr);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Closed (end of stream, or a reset) after the 1 s header limit, well before 10 s.
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    let waited = opened.elapsed();
    if let Err(e) = &read {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the connection was still open after {waited:?}"
        );
    }
    assert!(
        waited >= Duration::from_millis(900),
        "closed before the header-read timeout: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "closed only after {waited:?}"
    );

    let answer = healthz(server.addr);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
