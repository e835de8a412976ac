//! `webhook-guard serve --replay memory` (the default): the real server handles a delivery
//! once and answers its copy as a duplicate.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --bootstrap` with `extra` flags; its address, project and signing secret.
fn start(data: &std::path::Path, extra: &[&str]) -> (Server, String, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "serve",
            "--bootstrap",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut project, mut secret) = (String::new(), String::new());
    let base = loop {
        let line = lines
            .next()
            .expect("the server exited before it served")
            .unwrap();
        if let Some(rest) = line.strip_prefix("export WG_PROJECT=") {
            project = rest.to_owned();
        } else if let Some(rest) = line.strip_prefix("export WG_SIGNING_SECRET=") {
            secret = rest.to_owned();
        } else if let Some(rest) = line.strip_prefix("webhook-guard serving on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Server(child), base, project, secret)
}

fn data_dir() -> std::path::PathBuf {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    std::env::temp_dir().join(format!(
        "wg_replay_serve_{:016x}",
        u64::from_le_bytes(bytes)
    ))
}

#[tokio::test]
async fn serve_handles_a_delivery_once_and_answers_its_copy_as_a_duplicate() {
    let data = data_dir();
    let (_server, base, project, secret) = start(&data, &["--replay", "memory"]);
    let signer = Signer::new(StandardWebhooks, Secret::from_bytes(&secret).unwrap());
    let body = br#"{"type":"ping"}"#;
    let headers = signer.sign(body).unwrap();

    let (addr, path) = (
        base.trim_start_matches("http://"),
        format!("/webhooks/{project}"),
    );
    let mut answers = Vec::new();
    for _ in 0..2 {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::post(&path)
            .header("host", addr)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(body)))
            .unwrap();
        request.headers_mut().extend(headers.clone());
        answers.push(sender.send_request(request).await.unwrap());
    }
    assert_eq!(answers[0].status(), 200);
    assert!(answers[0]
        .headers()
        .get("webhook-guard-duplicate")
        .is_none());
    assert_eq!(answers[1].status(), 200);
    assert_eq!(answers[1].headers()["webhook-guard-duplicate"], "true");
    let _ = std::fs::remove_dir_all(&data);
}
