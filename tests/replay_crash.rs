//! Issue 22: a reservation whose holder crashed. `serve --replay postgres` reserves a delivery
//! and forwards it to an upstream that never answers; the server is SIGKILLed mid-handler. A
//! server started again on the same data directory and database answers the sender's retry 409
//! while the dead holder's lease lasts, and handles it once the lease ended.

#![cfg(unix)]

mod pg_support;
mod serve_support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pg_support::TestDb;
use serve_support::{http, post_signed, post_signed_answer, serving, Server};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

/// The lease a reservation has before another server may take the delivery over.
const LEASE_SECS: u64 = 8;

fn serve(data: &Path, db: &TestDb, bootstrap: bool) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webhook-guard"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(["--replay", "postgres", "--replay-postgres-url"])
        .arg(db.url())
        .args(["--replay-lease-secs", &LEASE_SECS.to_string()])
        .args(["--upstream-allow", "127.0.0.1"])
        .env("RUST_LOG", "warn")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if bootstrap {
        command.arg("--bootstrap");
    }
    serving(command.spawn().expect("start the server"))
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let mut key = self.0.clone().into_os_string();
        key.push(".master-key");
        let _ = std::fs::remove_file(key);
    }
}

/// The same delivery (its `webhook-id`), signed now, as a sender's retry is.
fn delivery(secret: &str) -> (http::HeaderMap, &'static [u8]) {
    let body: &[u8] = br#"{"type":"invoice.paid"}"#;
    let signed = Signer::new(StandardWebhooks, Secret::from_bytes(secret).unwrap())
        .sign_at(body, "msg_crash_test", chrono::Utc::now())
        .unwrap();
    (signed, body)
}

#[test]
fn a_reservation_whose_holder_was_killed_ends_with_its_lease_and_the_retry_is_handled() {
    let db = TestDb::new();
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "wg_replay_crash_{:016x}",
        u64::from_le_bytes(random)
    )));

    // An upstream that takes the request and never answers.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let (arrived, arrival) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = arrived.send(());
            held.push(stream);
        }
    });

    let first = serve(&dir.0, &db, true);
    let key = first.exported("WG_API_KEY").unwrap();
    let project = first.exported("WG_PROJECT").unwrap();
    let secret = first.exported("WG_SIGNING_SECRET").unwrap();
    let url = format!("http://{upstream_addr}/hooks");
    let (status, body) = http(
        first.addr,
        "PUT",
        &format!("/v1/projects/{project}/upstream"),
        &[("x-api-key", &key), ("content-type", "application/json")],
        format!(r#"{{"upstreamUrl": "{url}"}}"#).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");

    // The delivery is reserved and forwarded; the upstream holds it; the server dies.
    let path = format!("/webhooks/{project}");
    let (signed, payload) = delivery(&secret);
    let addr = first.addr;
    let (path_in_flight, signed_in_flight) = (path.clone(), signed.clone());
    std::thread::spawn(move || {
        let _ = post_signed(addr, &path_in_flight, &signed_in_flight, payload);
    });
    arrival
        .recv_timeout(Duration::from_secs(10))
        .expect("the delivery reached the upstream");
    let reserved_by = Instant::now();
    drop(first); // SIGKILL, mid-handler

    // Started again: the delivery is still reserved by the dead holder.
    let second = serve(&dir.0, &db, false);
    let (status, body) = http(
        second.addr,
        "DELETE",
        &format!("/v1/projects/{project}/upstream"),
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(status, 204, "{body}");
    let (retry, payload) = delivery(&secret);
    let status = post_signed(second.addr, &path, &retry, payload).unwrap();
    assert!(
        reserved_by.elapsed() < Duration::from_secs(LEASE_SECS),
        "the restart took longer than the lease; the 409 cannot be seen"
    );
    assert_eq!(
        status, 409,
        "a retry during the dead holder's lease is in progress"
    );

    // Once the lease ended, the retry is handled (and answered, not taken for a duplicate).
    std::thread::sleep(Duration::from_secs(LEASE_SECS + 1).saturating_sub(reserved_by.elapsed()));
    let (retry, payload) = delivery(&secret);
    let (status, answer) = post_signed_answer(second.addr, &path, &retry, payload).unwrap();
    assert_eq!(status, 200, "the retry after the lease is handled");
    assert_eq!(
        answer["verified"], true,
        "handled, not answered as a duplicate: {answer}"
    );
    // Handled now: a copy is a duplicate, answered 200 without calling the handler again.
    let (copy, payload) = delivery(&secret);
    let (status, answer) = post_signed_answer(second.addr, &path, &copy, payload).unwrap();
    assert_eq!(status, 200);
    assert!(
        answer.is_null(),
        "a duplicate is answered without a body: {answer}"
    );
}
