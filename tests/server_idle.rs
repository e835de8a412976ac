//! `webhook_guard::server::serve` closes connections that hold a slot without a request in
//! flight, and caps the connections one client address may hold (review finding, issue 19,
//! item 4): idle HTTP/2 connections that answer pings, an attacker that reconnects as soon as
//! it is dropped, an idle HTTP/1 keep-alive connection, a connection that never sends a byte,
//! and an HTTP/2 connection that sends only its preface and SETTINGS; a full server makes room
//! by closing the connection idle the longest, never one with a request in flight; a request
//! longer than the idle timeout keeps its connection. Every server here runs
//! on a free loopback port; the "attacker" connects from 127.0.0.2 and the honest client from
//! 127.0.0.1, so the per-client cap tells them apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webhook_guard::server::{serve, Limits};

const HONEST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// How much later than a timeout a test allows the server to act on it.
const MARGIN: Duration = Duration::from_secs(3);

/// How long `GET /slow` takes to answer.
const SLOW: Duration = Duration::from_millis(1500);

/// A running `serve`, stopped when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let addr = listener.local_addr().expect("bound");
    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(SLOW).await;
            "slow"
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
    }
}

/// Tasks aborted when the test ends, whichever way it ends.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

/// Reads until the server closes the connection: what it sent, or `None` if it was still open
/// after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| seen)
}

/// `GET /` over HTTP/1.1 from `source` with `Connection: close`: the whole answer, or `None`
/// if it did not arrive within `within`.
async fn get_from(source: IpAddr, to: SocketAddr, within: Duration) -> Option<String> {
    let answer = tokio::time::timeout(within, async {
        let mut stream = connect_from(source, to).await.expect("connects");
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .expect("writes");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await;
    answer.ok()
}

/// An HTTP/2 connection from `source` that opens no stream and answers the server's pings (h2's
/// client connection does), held until the server closes it; returned once the server has
/// answered a ping on it, so it holds a slot. The task ends with the connection's outcome.
async fn idle_http2(source: IpAddr, to: SocketAddr) -> JoinHandle<Result<(), h2::Error>> {
    try_idle_http2(source, to)
        .await
        .expect("an idle HTTP/2 connection the server answers pings on")
}

/// [`idle_http2`], or `None` when the server closes it before answering a ping.
async fn try_idle_http2(
    source: IpAddr,
    to: SocketAddr,
) -> Option<JoinHandle<Result<(), h2::Error>>> {
    let stream = connect_from(source, to).await.ok()?;
    let (send, mut connection) = tokio::time::timeout(MARGIN, h2::client::handshake(stream))
        .await
        .ok()?
        .ok()?;
    let mut ping_pong = connection.ping_pong().expect("the connection's ping-pong");
    let held = tokio::spawn(async move {
        // The client closes a connection nothing can send on: keep the handle.
        let _send = send;
        connection.await
    });
    match tokio::time::timeout(MARGIN, ping_pong.ping(h2::Ping::opaque())).await {
        Ok(Ok(_)) => Some(held),
        _ => {
            held.abort();
            None
        }
    }
}

/// Sends `request` on `stream` and reads one HTTP/1.1 answer whose body is `body`: its head and
/// body as text. Panics if the connection closes first or it takes longer than `SLOW + MARGIN`.
async fn exchange(stream: &mut TcpStream, request: &str, body: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("writes");
    let end = format!("\r\n\r\n{body}");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(end.as_bytes()) {
        let n = tokio::time::timeout(SLOW + MARGIN, stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("reads");
        assert_ne!(
            n,
            0,
            "closed before answering: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn idle_http2_connections_holding_every_slot_do_not_lock_out_a_new_client() {
    let idle = Duration::from_secs(1);
    let limits = Limits::new()
        .max_connections(4)
        .max_connections_per_client(4)
        .idle(idle);
    let server = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(idle_http2(ATTACKER, server.addr).await);
    }

    let answer = get_from(HONEST, server.addr, idle + MARGIN).await;
    let answer = answer.expect("a new client is served while idle connections hold every slot");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The held ones are closed in their turn once idle, without an error.
    for connection in held {
        let ended = tokio::time::timeout(idle + MARGIN, connection)
            .await
            .expect("the idle connection is closed");
        let outcome = ended.expect("the connection task ends");
        assert!(outcome.is_ok(), "closed with an error: {outcome:?}");
    }
}

#[tokio::test]
async fn an_attacker_that_reconnects_at_once_does_not_lock_out_other_clients() {
    let idle = Duration::from_secs(1);
    let limits = Limits::new()
        .max_connections(4)
        .max_connections_per_client(4)
        .idle(idle);
    let server = start(limits).await;
    let addr = server.addr;
    let mut attackers = Tasks(Vec::new());
    for _ in 0..4 {
        attackers.0.push(tokio::spawn(async move {
            loop {
                if let Ok(stream) = connect_from(ATTACKER, addr).await {
                    if let Ok((send, connection)) = h2::client::handshake(stream).await {
                        let _ = connection.await;
                        drop(send);
                    }
                }
                // At once, but without spinning a core should the server refuse it.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // The attackers hold every slot.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for attempt in 1..=3 {
        let answer = get_from(HONEST, addr, idle + MARGIN).await;
        let answer = answer.unwrap_or_else(|| panic!("request {attempt} was not served"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    drop(attackers);
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let limits = Limits::new()
        .idle(idle)
        .header_read(Duration::from_secs(30));
    let server = start(limits).await;
    let mut stream = connect_from(HONEST, server.addr).await.expect("connects");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("writes");
    // The whole answer ("ok", Content-Length 2), then the connection stays open for another
    // request until the idle timeout.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(MARGIN, stream.read(&mut buf))
            .await
            .expect("answered")
            .expect("reads");
        assert_ne!(n, 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");

    let rest = read_until_closed(&mut stream, idle + MARGIN).await;
    assert_eq!(
        rest.as_deref(),
        Some(&b""[..]),
        "the idle keep-alive connection was still open after {:?}",
        idle + MARGIN
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let limits = Limits::new()
        .idle(idle)
        .header_read(Duration::from_secs(30));
    let server = start(limits).await;
    let mut silent = connect_from(HONEST, server.addr).await.expect("connects");
    let seen = read_until_closed(&mut silent, idle + MARGIN).await;
    assert_eq!(
        seen.as_deref(),
        Some(&b""[..]),
        "the silent connection was still open after {:?}",
        idle + MARGIN
    );
}

#[tokio::test]
async fn an_http2_connection_that_sends_only_its_preface_and_settings_gets_a_goaway() {
    let idle = Duration::from_millis(500);
    let limits = Limits::new()
        .idle(idle)
        .header_read(Duration::from_secs(30));
    let server = start(limits).await;
    let mut stream = connect_from(HONEST, server.addr).await.expect("connects");
    // The client preface, then an empty SETTINGS frame (RFC 9113, sections 3.4 and 6.5).
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("writes");

    let goaway = tokio::time::timeout(idle + MARGIN, async {
        loop {
            let mut head = [0u8; 9];
            stream.read_exact(&mut head).await.ok()?;
            let length =
                usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; length];
            stream.read_exact(&mut payload).await.ok()?;
            if head[3] == 0x7 {
                return Some(payload);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no GOAWAY within {:?}", idle + MARGIN))
    .expect("a GOAWAY before the connection closed");
    assert!(goaway.len() >= 8, "{goaway:?}");
    assert_eq!(goaway[4..8], [0, 0, 0, 0], "GOAWAY with NO_ERROR");
}

#[tokio::test]
async fn connections_over_the_per_client_cap_are_refused_while_other_clients_are_served() {
    let limits = Limits::new()
        .max_connections(16)
        .max_connections_per_client(2)
        .idle(Duration::from_secs(30));
    let server = start(limits).await;
    let first = idle_http2(ATTACKER, server.addr).await;
    let _second = idle_http2(ATTACKER, server.addr).await;

    let third = get_from(ATTACKER, server.addr, MARGIN).await;
    assert_eq!(
        third.as_deref(),
        Some(""),
        "a third connection from one address is closed unanswered"
    );
    let other = get_from(HONEST, server.addr, MARGIN).await;
    let other = other.expect("another client is served");
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");

    // A connection that closes frees its client's place.
    first.abort();
    let again = tokio::time::timeout(MARGIN, async {
        loop {
            match get_from(ATTACKER, server.addr, MARGIN).await {
                Some(answer) if answer.starts_with("HTTP/1.1 200") => return answer,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(
        again.is_ok(),
        "the client was not served once one of its connections closed"
    );
}

#[tokio::test]
async fn a_full_server_closes_the_connection_idle_the_longest_for_a_new_client() {
    // The idle timeout is far away: only making room can serve the new client in time.
    let limits = Limits::new()
        .max_connections(3)
        .max_connections_per_client(3)
        .idle(Duration::from_secs(60));
    let server = start(limits).await;
    let oldest = idle_http2(ATTACKER, server.addr).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = idle_http2(ATTACKER, server.addr).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let third = idle_http2(ATTACKER, server.addr).await;

    let answer = get_from(HONEST, server.addr, MARGIN).await;
    let answer = answer.expect("a new client is served long before the idle timeout");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = tokio::time::timeout(MARGIN, oldest)
        .await
        .expect("the connection idle the longest is closed")
        .expect("its task ends");
    assert!(closed.is_ok(), "closed with an error: {closed:?}");
    assert!(
        !second.is_finished() && !third.is_finished(),
        "only the one idle the longest is closed"
    );
    second.abort();
    third.abort();
}

#[tokio::test]
async fn a_full_server_never_closes_a_connection_with_a_request_in_flight() {
    let limits = Limits::new()
        .max_connections(2)
        .max_connections_per_client(2)
        .idle(Duration::from_secs(60));
    let server = start(limits).await;
    // The busy connection is the older one: age alone would pick it.
    let mut busy = connect_from(ATTACKER, server.addr).await.expect("connects");
    let request = "GET /slow HTTP/1.1\r\nhost: localhost\r\n\r\n";
    busy.write_all(request.as_bytes()).await.expect("writes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = idle_http2(ATTACKER, server.addr).await;

    let answer = get_from(HONEST, server.addr, MARGIN).await;
    let answer = answer.expect("a new client is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = tokio::time::timeout(MARGIN, idle)
        .await
        .expect("the idle connection is the one closed")
        .expect("its task ends");
    assert!(closed.is_ok(), "closed with an error: {closed:?}");
    // The busy one finishes its request and stays open for the next.
    let slow = exchange(&mut busy, "", "slow").await;
    assert!(slow.starts_with("HTTP/1.1 200"), "{slow}");
    assert!(!slow.contains("connection: close"), "{slow}");
    let next = exchange(&mut busy, "GET / HTTP/1.1\r\nhost: localhost\r\n\r\n", "ok").await;
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
}

#[tokio::test]
async fn a_client_that_closes_a_connection_gets_back_exactly_one_place() {
    let limits = Limits::new()
        .max_connections(16)
        .max_connections_per_client(2)
        .idle(Duration::from_secs(60));
    let server = start(limits).await;
    let first = idle_http2(ATTACKER, server.addr).await;
    let second = idle_http2(ATTACKER, server.addr).await;
    first.abort();
    // Once the server has seen it close, the client may open one connection more, not two.
    let mut third = None;
    let deadline = tokio::time::Instant::now() + MARGIN;
    while third.is_none() && tokio::time::Instant::now() < deadline {
        third = try_idle_http2(ATTACKER, server.addr).await;
        if third.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let third = third.expect("the closed connection's place is given back");
    let fourth = get_from(ATTACKER, server.addr, MARGIN).await;
    assert_eq!(
        fourth.as_deref(),
        Some(""),
        "the client holds its two places again: a third connection is closed unanswered"
    );
    second.abort();
    third.abort();
}

#[tokio::test]
async fn a_request_longer_than_the_idle_timeout_keeps_its_connection_open() {
    let idle = Duration::from_millis(300);
    let limits = Limits::new()
        .idle(idle)
        .header_read(Duration::from_secs(30));
    let server = start(limits).await;
    let mut stream = connect_from(HONEST, server.addr).await.expect("connects");
    // Five idle timeouts long, but a request in flight is not idleness.
    let slow = exchange(
        &mut stream,
        "GET /slow HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "slow",
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 200"), "{slow}");
    assert!(!slow.contains("connection: close"), "{slow}");
    // Idleness counts from the end of that request: the next one, sent at once, is served.
    let next = exchange(
        &mut stream,
        "GET / HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "ok",
    )
    .await;
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
    assert!(!next.contains("connection: close"), "{next}");
    let rest = read_until_closed(&mut stream, idle + MARGIN).await;
    assert_eq!(rest.as_deref(), Some(&b""[..]), "then closed when idle");
}

#[tokio::test]
async fn a_request_over_its_time_is_answered_408_with_its_length() {
    let limits = Limits::new().request(Duration::from_millis(300));
    let server = start(limits).await;
    let mut stream = connect_from(HONEST, server.addr).await.expect("connects");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("writes");
    let answer = read_until_closed(&mut stream, SLOW + MARGIN)
        .await
        .expect("answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("a Content-Length")
        .parse()
        .expect("a number");
    assert_eq!(length, body.len(), "{body}");
    assert!(body.contains("request-timeout"), "{body}");
}
