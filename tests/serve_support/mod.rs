//! Starting the real `webhook-guard serve` for a test: on a free loopback port, with the data
//! directory and extra flags given, its address read from what it prints; and talking to it
//! over plain HTTP/1.1.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

/// Starts `webhook-guard serve --listen 127.0.0.1:0 --data-dir <data> <extra…>` and returns the
/// child and the address it serves on, once it serves.
pub fn spawn_serve(data: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = serve_command(data, extra)
        .spawn()
        .expect("start the server");
    let (addr, _) = until_serving(&mut child);
    (child, addr)
}

/// `webhook-guard serve --listen 127.0.0.1:0 --data-dir <data> <extra…>`, logging warnings to
/// nowhere, its stdout piped (for [`serving`]), the master keys only from the data directory.
pub fn serve_command(data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webhook-guard"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Reads what `child` (its stdout piped) prints until it serves: its address and the lines
/// before. Its stdout is drained from then on, so it never blocks on a full pipe.
fn until_serving(child: &mut Child) -> (SocketAddr, Vec<String>) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before it served")
            .unwrap();
        if let Some(rest) = line.strip_prefix("webhook-guard serving on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        printed.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    (addr, printed)
}

/// One HTTP/1.1 request on a fresh connection: the status and the body as JSON (or `Null`).
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// [`try_http`], which must get an answer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    try_http(addr, method, path, headers, body).expect("an HTTP answer")
}

/// POSTs `body` to `path` with the signature headers `signed`; the status and the body.
pub fn post_signed_answer(
    addr: SocketAddr,
    path: &str,
    signed: &http::HeaderMap,
    body: &[u8],
) -> std::io::Result<(u16, Value)> {
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    try_http(addr, "POST", path, &headers, body)
}

/// [`post_signed_answer`]'s status.
pub fn post_signed(
    addr: SocketAddr,
    path: &str,
    signed: &http::HeaderMap,
    body: &[u8],
) -> std::io::Result<u16> {
    post_signed_answer(addr, path, signed, body).map(|(status, _)| status)
}

/// Sends a Standard Webhooks delivery signed with `secret` (raw bytes) to the project; the
/// status.
pub fn deliver(addr: SocketAddr, project: &str, secret: &str) -> u16 {
    let body = br#"{"type":"ping"}"#;
    let signed = Signer::new(StandardWebhooks, Secret::from_bytes(secret).unwrap())
        .sign(body)
        .unwrap();
    post_signed(addr, &format!("/webhooks/{project}"), &signed, body).expect("an HTTP answer")
}

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// What it printed before it served: the bootstrap's `export NAME=value` lines.
    pub printed: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The value of an `export NAME=value` line it printed.
    pub fn exported(&self, name: &str) -> Option<String> {
        let prefix = format!("export {name}=");
        self.printed
            .iter()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
    }
}

/// Reads what `child` (a `serve` with its stdout piped) prints until it serves.
pub fn serving(mut child: Child) -> Server {
    let (addr, printed) = until_serving(&mut child);
    Server {
        child,
        addr,
        printed,
    }
}
