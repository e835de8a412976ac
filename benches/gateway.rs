//! How fast is `webhook-guard serve` as a verifying gateway, next to the same job done in Go
//! and in Node.js, and next to hitting the upstream directly?
//!
//! A load generator (not criterion): 1 KiB Standard Webhooks deliveries, each freshly signed,
//! over keep-alive HTTP/1.1 connections on loopback, to four targets in turn, in one run:
//!
//! * `direct`: the trivial upstream itself (a hyper server answering `200 ok`);
//! * `serve`: the release `webhook-guard serve` (default flags, access log on at `info`),
//!   verifying and forwarding to that upstream;
//! * `go`: `benches/peers/go` (net/http + crypto/hmac, forwarding with net/http's client);
//! * `node`: `benches/peers/node/gateway.js` (`standardwebhooks` npm package, forwarding with
//!   `fetch`), when `node` and `target/bench-node/node_modules/standardwebhooks` exist
//!   (`npm install --prefix target/bench-node standardwebhooks`).
//!
//! Each target gets a throughput phase (`GATEWAY_BENCH_CONNECTIONS` connections, default 32,
//! closed loop, `GATEWAY_BENCH_SECS` seconds, default 5, after 1 s of warm-up: deliveries/s,
//! p50, p99) and a latency phase (one connection, 3 s: p50, p99). `GATEWAY_BENCH_ROUNDS`
//! (default 2) rounds run the four targets in turn, so drift on a shared machine shows.
//! `GATEWAY_BENCH_WORKERS` sets `serve --workers` (default: one per CPU).
//!
//! ```sh
//! cargo bench --features cli --bench gateway
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Secret, Signer};

const BODY_LEN: usize = 1024;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, returning it and the lines it printed up to the one `until` accepts.
fn start(mut command: Command, until: impl Fn(&str) -> bool) -> (Process, Vec<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a target");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("the target exited before it served")
            .unwrap();
        let done = until(&line);
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (Process(child), seen)
}

fn address_after(lines: &[String], prefix: &str) -> SocketAddr {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("an address")
}

/// The trivial upstream, on its own thread and single-threaded runtime.
fn start_upstream() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|request: Request<Incoming>| async {
                        let _ = request.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// One target of the load.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: String,
    /// The process whose CPU time is read around the throughput phase (`None`: in this one).
    pid: Option<u32>,
}

/// CPU time (user + system, all threads) process `pid` has used: `/proc/PID/stat` fields 14
/// and 15, in clock ticks of 10 ms (`CLK_TCK` = 100 on Linux x86-64).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// What one phase measured.
struct Measured {
    per_second: f64,
    delivered: usize,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

async fn connection(
    target: Arc<Target>,
    signer: Arc<Signer>,
    body: Bytes,
    warm_until: Instant,
    until: Instant,
) -> (Vec<u32>, u64) {
    let stream = TcpStream::connect(target.addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let host = target.addr.to_string();
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < until {
        let signed = signer.sign(&body).expect("sign");
        let mut request = Request::post(target.path.as_str())
            .header("host", host.as_str())
            .header("content-type", "application/json")
            .header("user-agent", "Webhook-Sender/1.0")
            .header("x-request-id", "req_0123456789")
            .body(Full::new(body.clone()))
            .unwrap();
        request.headers_mut().extend(signed);
        let started = Instant::now();
        if sender.ready().await.is_err() {
            errors += 1;
            break;
        }
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status == StatusCode::OK
            }
            Err(_) => false,
        };
        let took = started.elapsed();
        if started >= warm_until {
            if ok {
                latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            } else {
                errors += 1;
            }
        }
        if !ok {
            break;
        }
    }
    (latencies, errors)
}

async fn measure(
    target: &Arc<Target>,
    signer: &Arc<Signer>,
    body: &Bytes,
    connections: usize,
    warm: Duration,
    run: Duration,
) -> Measured {
    let warm_until = Instant::now() + warm;
    let until = warm_until + run;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(connection(
                Arc::clone(target),
                Arc::clone(signer),
                body.clone(),
                warm_until,
                until,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        all.extend(latencies);
        errors += failed;
    }
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us)))
    };
    Measured {
        delivered: all.len(),
        per_second: all.len() as f64 / run.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        errors,
    }
}

fn main() {
    let secs = env_or("GATEWAY_BENCH_SECS", 5);
    let connections = env_or("GATEWAY_BENCH_CONNECTIONS", 32) as usize;
    let rounds = env_or("GATEWAY_BENCH_ROUNDS", 2);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let upstream = start_upstream();
    let upstream_url = format!("http://{upstream}/hook");

    // webhook-guard serve, bootstrapped on a fresh data directory, forwarding upstream.
    let data = std::env::temp_dir().join(format!("wg-bench-gateway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_webhook-guard"));
    serve
        .args(["serve", "--bootstrap", "--listen", "127.0.0.1:0"])
        .args(["--upstream-allow", "127.0.0.1", "--data-dir"])
        .arg(&data)
        .env_remove("WEBHOOK_GUARD_MASTER_KEYS");
    if let Ok(workers) = std::env::var("GATEWAY_BENCH_WORKERS") {
        serve.args(["--workers", &workers]);
    }
    let (serve, printed) = start(serve, |l| l.starts_with("webhook-guard serving on"));
    let serve_pid = serve.0.id();
    let var = |name: &str| {
        printed
            .iter()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .expect("bootstrap variables")
            .to_owned()
    };
    let (api_key, project, secret) = (
        var("WG_API_KEY"),
        var("WG_PROJECT"),
        var("WG_SIGNING_SECRET"),
    );
    let serve_addr = address_after(&printed, "webhook-guard serving on http://");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = TcpStream::connect(serve_addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let set = Request::put(format!("/v1/projects/{project}/upstream"))
            .header("host", serve_addr.to_string())
            .header("x-api-key", api_key.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::json!({ "upstreamUrl": upstream_url }).to_string(),
            )))
            .unwrap();
        let answer = sender.send_request(set).await.unwrap();
        assert_eq!(answer.status(), 200, "the upstream is set");
    });

    let mut targets = vec![
        Target {
            name: "direct",
            addr: upstream,
            path: "/hook".into(),
            pid: None,
        },
        Target {
            name: "serve",
            addr: serve_addr,
            path: format!("/webhooks/{project}"),
            pid: Some(serve_pid),
        },
    ];
    let mut peers = Vec::new();
    let go_binary = root.join("target/bench-go/receiver");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&go_binary)
        .arg(".")
        .current_dir(root.join("benches/peers/go"))
        .env("GOCACHE", root.join("target/bench-go/cache"))
        .status()
        .is_ok_and(|s| s.success());
    if built {
        let mut go = Command::new(&go_binary);
        go.args(["0", &upstream_url, &secret]);
        let (process, printed) = start(go, |l| l.starts_with("listening on"));
        targets.push(Target {
            name: "go",
            addr: address_after(&printed, "listening on "),
            path: "/".into(),
            pid: Some(process.0.id()),
        });
        peers.push(process);
    } else {
        eprintln!("go: not built (install golang-go); skipped");
    }
    let modules = root.join("target/bench-node/node_modules");
    if modules.join("standardwebhooks").exists() {
        let mut node = Command::new("node");
        node.arg(root.join("benches/peers/node/gateway.js"))
            .args(["0", &upstream_url])
            .arg(base64::engine::general_purpose::STANDARD.encode(secret.as_bytes()))
            .arg(&modules);
        let (process, printed) = start(node, |l| l.starts_with("listening on"));
        targets.push(Target {
            name: "node",
            addr: address_after(&printed, "listening on "),
            path: "/".into(),
            pid: Some(process.0.id()),
        });
        peers.push(process);
    } else {
        eprintln!("node: run `npm install --prefix target/bench-node standardwebhooks`; skipped");
    }

    let signer = Arc::new(Signer::new(
        StandardWebhooks,
        Secret::from_bytes(secret.as_bytes()).unwrap(),
    ));
    let mut body = br#"{"type":"invoice.paid","data":{"padding":""#.to_vec();
    body.resize(BODY_LEN - 3, b'x');
    body.extend_from_slice(br#""}}"#);
    let body = Bytes::from(body);
    let targets: Vec<Arc<Target>> = targets.into_iter().map(Arc::new).collect();
    println!(
        "gateway: 1 KiB Standard Webhooks deliveries, {connections} connections x {secs} s \
         (throughput), 1 connection x 3 s (latency), {rounds} rounds"
    );
    runtime.block_on(async {
        for round in 1..=rounds {
            println!(
                "\nround {round}\n{:<8} {:>12} {:>10} {:>10} {:>8} {:>13} | {:>10} {:>10}",
                "target",
                "deliveries/s",
                "p50",
                "p99",
                "errors",
                "CPU/delivery",
                "1-conn p50",
                "1-conn p99"
            );
            for target in &targets {
                let cpu_before = target.pid.and_then(cpu_time);
                let loaded = measure(
                    target,
                    &signer,
                    &body,
                    connections,
                    Duration::from_secs(1),
                    Duration::from_secs(secs),
                )
                .await;
                // Warm-up included on both sides: the CPU of the measured deliveries and of
                // the 1 s before them, over the measured ones (a slight overestimate).
                let cpu = match (cpu_before, target.pid.and_then(cpu_time)) {
                    (Some(before), Some(after)) if loaded.delivered > 0 => {
                        let warm_share = 1.0 + 1.0 / secs as f64;
                        format!(
                            "{:.1?}",
                            (after - before).div_f64(loaded.delivered as f64 * warm_share)
                        )
                    }
                    _ => "-".into(),
                };
                let alone = measure(
                    target,
                    &signer,
                    &body,
                    1,
                    Duration::from_millis(500),
                    Duration::from_secs(3),
                )
                .await;
                println!(
                    "{:<8} {:>12.0} {:>10.1?} {:>10.1?} {:>8} {:>13} | {:>10.1?} {:>10.1?}",
                    target.name,
                    loaded.per_second,
                    loaded.p50,
                    loaded.p99,
                    loaded.errors + alone.errors,
                    cpu,
                    alone.p50,
                    alone.p99
                );
            }
        }
    });
    drop(peers);
    drop(serve);
    let _ = std::fs::remove_dir_all(&data);
}
