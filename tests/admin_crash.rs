//! Crash safety of `webhook-guard serve`: the server is killed with SIGKILL in the middle of a
//! loop of regenerations, 20 times at random points. After each restart the database opens
//! clean, and every regeneration whose 200 the client received is there: the audit log has it,
//! and the secret of the last one (or of the one in flight when the server died) verifies.

#![cfg(unix)]

mod serve_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serve_support::{post_signed, spawn_serve, try_http as http};
use webhook_guard::scheme::GitHub;
use webhook_guard::{Secret, Signer};

const ROUNDS: usize = 20;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(data: &Path) -> Self {
        // The loop regenerates as fast as it can: above the default write rate.
        let (child, addr) = spawn_serve(
            data,
            &[
                "--admin-writes-per-second",
                "1000000",
                "--admin-write-burst",
                "1000000",
            ],
        );
        Self { child, addr }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

fn deliver(addr: SocketAddr, project: &str, secret: &str) -> u16 {
    let body = br#"{"action":"opened"}"#;
    let signed = Signer::new(GitHub, Secret::from_bytes(secret).unwrap())
        .sign(body)
        .unwrap();
    post_signed(addr, &format!("/webhooks/{project}"), &signed, body).unwrap()
}

/// Regenerations in the audit log, all pages.
fn regenerations(addr: SocketAddr, key: &str) -> usize {
    let mut count = 0;
    let mut path = "/v1/audit?limit=200".to_owned();
    loop {
        let (status, page) = http(addr, "GET", &path, &[("x-api-key", key)], b"").unwrap();
        assert_eq!(status, 200, "{page}");
        count += page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "project.secret.regenerated")
            .count();
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/audit?limit=200&before={cursor}"),
            None => return count,
        }
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn a_server_killed_mid_rotation_keeps_every_acknowledged_rotation() {
    let dir = std::env::temp_dir().join(format!(
        "wg-crash-{}-{:x}",
        std::process::id(),
        random_below(u64::MAX)
    ));
    let data = dir.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["admin", "create-integrator", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("apiKey:"))
        .unwrap()
        .trim()
        .to_owned();

    let server = Server::start(&data);
    let (status, created) = http(
        server.addr,
        "POST",
        "/v1/projects",
        &[("x-api-key", &key), ("content-type", "application/json")],
        br#"{"scheme": "github"}"#,
    )
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let project = created["projectId"].as_str().unwrap().to_owned();
    let mut last_acknowledged = created["signingSecret"].as_str().unwrap().to_owned();
    let mut acknowledged = 0usize;
    server.kill();

    let path = format!("/v1/external-support/{project}/secret/regenerate");
    for round in 0..ROUNDS {
        let server = Server::start(&data);
        let addr = server.addr;
        // The state must be what the acknowledgements say.
        let logged = regenerations(addr, &key);
        assert!(
            logged == acknowledged || logged == acknowledged + 1,
            "round {round}: {acknowledged} regenerations acknowledged, {logged} in the log"
        );
        let status = deliver(addr, &project, &last_acknowledged);
        assert!(
            status == 200 || logged == acknowledged + 1,
            "round {round}: the last acknowledged secret no longer verifies ({status})"
        );
        // What the previous round left in flight now counts as done (its answer was lost).
        acknowledged = logged;

        // Regenerate in a loop until the server is killed at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (stop, results, path, key) = (
                Arc::clone(&stop),
                Arc::clone(&results),
                path.clone(),
                key.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match http(addr, "POST", &path, &[("x-api-key", &key)], b"") {
                        Ok((200, body)) => results
                            .lock()
                            .unwrap()
                            .push(body["signingSecret"].as_str().unwrap().to_owned()),
                        Ok((status, body)) => panic!("regeneration answered {status}: {body}"),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20 + random_below(200)));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
        let results = results.lock().unwrap();
        acknowledged += results.len();
        if let Some(secret) = results.last() {
            last_acknowledged = secret.clone();
        }
    }
    let server = Server::start(&data);
    let logged = regenerations(server.addr, &key);
    assert!(logged == acknowledged || logged == acknowledged + 1);
    assert!(
        acknowledged >= ROUNDS,
        "too few regenerations ran: {acknowledged}"
    );
    eprintln!("{ROUNDS} kills: {acknowledged} regenerations acknowledged, {logged} in the log");
    server.kill();
    let _ = std::fs::remove_dir_all(dir);
}
