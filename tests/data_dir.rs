//! One data directory, one server, with the real `webhook-guard` binary: a second `serve` and
//! the `admin` steps are refused while a server holds the directory; a database deleted or
//! emptied under the server fails writes (500) and readiness (503); a new store gets a master
//! key file beside its directory, and the README's master-key rotation works.

#![cfg(unix)]

mod serve_support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use serve_support::{deliver, http, spawn_serve};

/// A temporary directory holding a data directory `data` and, beside it, its key file.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "wg-datadir-{name}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(b)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn data(&self) -> PathBuf {
        self.0.join("data")
    }

    fn key_file(&self) -> PathBuf {
        self.0.join("data.master-key")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server that is killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Self {
        let (child, addr) = spawn_serve(data, extra);
        Self { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `webhook-guard <args> --data-dir <data>` to its end; a command still running after
/// 20 seconds (a server that started) is killed and the test fails.
fn webhook_guard(args: &[&str], data: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!(
                "`webhook-guard {}` was still running after 20 s",
                args.join(" ")
            );
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Creates an integrator with `admin create-integrator`; its API key.
fn create_integrator(data: &Path) -> String {
    let out = webhook_guard(&["admin", "create-integrator"], data);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("apiKey:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start_naming_the_first() {
    let scratch = Scratch::new("second");
    let first = Server::start(&scratch.data(), &[]);
    let out = webhook_guard(&["serve", "--listen", "127.0.0.1:0"], &scratch.data());
    assert!(!out.status.success(), "the second server started");
    let message = stderr(&out);
    assert!(
        message.contains(&format!("pid {}", first.child.id())),
        "{message}"
    );
    assert!(message.contains("stop it first"), "{message}");
    // The first one still serves.
    assert_eq!(http(first.addr, "GET", "/readyz", &[], b"").0, 200);
}

#[test]
fn admin_steps_on_a_served_data_directory_are_refused_saying_what_to_do_instead() {
    let scratch = Scratch::new("admin");
    let key = create_integrator(&scratch.data());
    let server = Server::start(&scratch.data(), &[]);
    let pid = format!("pid {}", server.child.id());

    let out = webhook_guard(&["admin", "create-integrator"], &scratch.data());
    assert!(!out.status.success(), "created alongside a running server");
    let message = stderr(&out);
    assert!(message.contains(&pid), "{message}");
    assert!(
        message.contains("stop it, run `admin create-integrator` again"),
        "{message}"
    );

    let out = webhook_guard(&["admin", "rekey"], &scratch.data());
    assert!(!out.status.success(), "rekeyed under a running server");
    let message = stderr(&out);
    assert!(message.contains(&pid), "{message}");
    assert!(message.contains("restart the server"), "{message}");

    // The server's view is the store's: still one integrator, whose key works.
    let (status, page) = http(
        server.addr,
        "GET",
        "/v1/projects",
        &[("x-api-key", &key)],
        b"",
    );
    assert_eq!(status, 200, "{page}");
    drop(server);
    // Stopped, the same step works.
    create_integrator(&scratch.data());
}

#[test]
fn a_database_deleted_or_emptied_under_the_server_fails_writes_and_readiness() {
    for damage in ["delete", "truncate"] {
        let scratch = Scratch::new(damage);
        let key = create_integrator(&scratch.data());
        let server = Server::start(&scratch.data(), &[]);
        let (status, created) = http(
            server.addr,
            "POST",
            "/v1/projects",
            &[("x-api-key", &key), ("content-type", "application/json")],
            br#"{"scheme": "github"}"#,
        );
        assert_eq!(status, 201, "{created}");
        let project = created["projectId"].as_str().unwrap().to_owned();
        assert_eq!(http(server.addr, "GET", "/readyz", &[], b"").0, 200);

        let db = scratch.data().join("webhook-guard.db");
        match damage {
            "delete" => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = db.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
            _ => std::fs::OpenOptions::new()
                .write(true)
                .open(&db)
                .unwrap()
                .set_len(0)
                .unwrap(),
        }
        let path = format!("/v1/external-support/{project}/secret/regenerate");
        for _ in 0..2 {
            let (status, body) = http(server.addr, "POST", &path, &[("x-api-key", &key)], b"");
            assert_eq!(
                status, 500,
                "{damage}: regeneration answered {status}: {body}"
            );
        }
        let (status, _) = http(server.addr, "GET", "/readyz", &[], b"");
        assert_eq!(status, 503, "{damage}: /readyz");
    }
}

/// The `export NAME=value` lines `serve --bootstrap` prints.
fn exports(lines: &[String]) -> impl Fn(&str) -> String + '_ {
    move |name| {
        let prefix = format!("export {name}=");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
            .to_owned()
    }
}

/// Starts `serve` with the README's first command and collects what it prints up to the line
/// that says it serves.
fn bootstrap(data: &Path) -> (Server, Vec<String>) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--bootstrap")
        .env("RUST_LOG", "warn")
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if let Some(rest) = line.strip_prefix("webhook-guard serving on http://") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    (Server { child, addr }, seen)
}

#[test]
fn the_readme_first_command_seals_secrets_under_a_key_file_beside_the_data_directory() {
    let scratch = Scratch::new("bootstrap");
    let (server, printed) = bootstrap(&scratch.data());
    let get = exports(&printed);
    let (project, secret) = (get("WG_PROJECT"), get("WG_SIGNING_SECRET"));
    assert_eq!(deliver(server.addr, &project, &secret), 200);
    drop(server);

    let key_file = scratch.key_file();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    assert!(
        printed
            .iter()
            .any(|l| l.contains(&key_file.display().to_string())),
        "where the key is was not printed: {printed:?}"
    );
    // The signing secret is not in the database (or its log) in clear.
    for file in ["webhook-guard.db", "webhook-guard.db-wal"] {
        let bytes = std::fs::read(scratch.data().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{file}"
        );
    }

    // The same command again: the key file is picked up, nothing is bootstrapped twice.
    let (server, printed) = bootstrap(&scratch.data());
    assert!(
        !printed.iter().any(|l| l.starts_with("export ")),
        "{printed:?}"
    );
    assert_eq!(deliver(server.addr, &project, &secret), 200);
    drop(server);

    // Without the key file, the start is refused, saying which file to pass.
    let away = scratch.0.join("elsewhere.key");
    std::fs::rename(&key_file, &away).unwrap();
    let out = webhook_guard(&["serve", "--listen", "127.0.0.1:0"], &scratch.data());
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains(&format!("--master-key-file '{}'", key_file.display())),
        "{message}"
    );
    assert!(!message.contains("plaintext"), "{message}");
    assert!(
        !key_file.exists(),
        "no new key was made over a sealed store"
    );
    // Given explicitly, it works.
    let server = Server::start(
        &scratch.data(),
        &["--master-key-file", away.to_str().unwrap()],
    );
    assert_eq!(deliver(server.addr, &project, &secret), 200);
}

#[test]
fn the_readme_master_key_rotation_steps_work_with_the_real_binary() {
    let scratch = Scratch::new("rotation");
    let (server, printed) = bootstrap(&scratch.data());
    let get = exports(&printed);
    let (project, secret) = (get("WG_PROJECT"), get("WG_SIGNING_SECRET"));
    let old = std::fs::read_to_string(scratch.key_file()).unwrap();

    // 1. A new key, first in the key file; the old one kept below it.
    let out = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(["admin", "gen-master-key", "--id", "next"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let new = String::from_utf8(out.stdout).unwrap();
    std::fs::write(scratch.key_file(), format!("{new}{old}")).unwrap();
    // `admin rekey` is refused while the server runs, saying to restart instead.
    let out = webhook_guard(&["admin", "rekey"], &scratch.data());
    assert!(!out.status.success());
    // 2. Restart `serve`: every secret is re-sealed under the first key.
    drop(server);
    let server = Server::start(&scratch.data(), &[]);
    assert_eq!(deliver(server.addr, &project, &secret), 200);
    // 3. Drop the old key.
    std::fs::write(scratch.key_file(), &new).unwrap();
    drop(server);

    // The next start has only the new key, and every secret opens (a start loads them all).
    let server = Server::start(&scratch.data(), &[]);
    assert_eq!(deliver(server.addr, &project, &secret), 200);
}
