//! Starting the real `webhook-guard serve` for a test: on a free loopback port, with the data
//! directory and extra flags given, its address read from what it prints.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `webhook-guard serve --listen 127.0.0.1:0 --data-dir <data> <extra…>` and returns the
/// child and the address it serves on, once it serves.
pub fn spawn_serve(data: &Path, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before it served")
            .unwrap();
        if let Some(rest) = line.strip_prefix("webhook-guard serving on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}
