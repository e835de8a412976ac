//! How much memory does a server behind `WebhookLayer` hold when many clients each send all but
//! the last byte of a 1 MiB body and then wait? A measuring tool, not a demo.
//!
//! The tool starts the server as a child process (this binary again, with the argument
//! `server`): hyper serving `WebhookLayer::new(Verifier::new(GitHub, Keyring::new(secret)))`
//! with the layer's defaults (1 MiB body limit and, where the layer has one, its default budget
//! of buffered bytes) on a free loopback port. It then opens C connections (default 3000),
//! sends on each the headers of a GitHub delivery with `Content-Length: 1048575` and 1048574
//! bytes of body (all from one shared buffer), and holds them. Once every connection has sent
//! its bytes or been answered (at most `HOLD_WAIT_SECS`, default 60 s) and the server's memory
//! has settled (at most 10 s more), it prints one summary line: the server's `VmRSS` and
//! `VmHWM` from `/proc/<pid>/status`, and how many connections are held vs were answered
//! (by status), closed or still sending. Then it kills the server and exits.
//!
//! ```sh
//! # Each connection costs a descriptor in both processes: raise the limit first.
//! bash -c 'ulimit -n 20000; cargo run --release --example hold_connections'        # 3000
//! bash -c 'ulimit -n 20000; cargo run --release --example hold_connections -- 100' # 100
//! ```
//!
//! `HOLD_CONNECTIONS` also sets C. `HOLD_SERVER_ULIMIT_V=2097152` runs the server (only) under
//! `ulimit -v 2097152` (KiB, an address-space limit), to see whether it survives it; the summary
//! then says how the server ended if it did not.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{service_fn, Layer};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Secret, Verifier};

/// Announced body length: one byte under the default 1 MiB limit.
const CONTENT_LENGTH: usize = 1024 * 1024 - 1;
const DEFAULT_CONNECTIONS: usize = 3000;
/// Descriptors the two processes need besides the connections.
const SPARE_FDS: u64 = 64;
/// The server exits on its own after this, should the tool never kill it.
const SERVER_LIFETIME: Duration = Duration::from_secs(900);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After the sends: memory is read once it grows by less than this between two samples...
const SETTLED: u64 = 1024 * 1024;
/// ...or after this long.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("server") {
        return server();
    }
    match measure(args.get(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hold_connections: {e}");
            ExitCode::from(2)
        }
    }
}

// ---- the server (child process) ----

fn server() -> ExitCode {
    // Gone with the tool: when it exits, our stdin closes; in any case after SERVER_LIFETIME.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while let Ok(1..) = std::io::stdin().read(&mut sink) {}
        std::process::exit(0);
    });
    std::thread::spawn(|| {
        std::thread::sleep(SERVER_LIFETIME);
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let secret = Secret::from_bytes(b"0123456789abcdef0123456789abcdef").expect("secret");
        let inner = service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let service = WebhookLayer::new(Verifier::new(GitHub, Keyring::new(secret))).layer(inner);
        println!("port {port}");
        std::io::stdout().flush().expect("stdout");
        let mut reported = false;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if !reported {
                        eprintln!("server: accept failed: {e}");
                        reported = true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

// ---- the tool (parent process) ----

/// Where a connection is. Stored per connection; the summary counts them.
const SENDING: u8 = 0;
/// Headers and all but the last byte sent, no answer.
const HELD: u8 = 1;
/// An HTTP response arrived (the body is never complete, so any answer is an early one).
const ANSWERED: u8 = 2;
/// The server closed or reset the connection without a response.
const CLOSED: u8 = 3;

struct Connection {
    state: AtomicU8,
}

fn measure(arg: Option<&String>) -> Result<(), String> {
    let count: usize = match arg
        .cloned()
        .or_else(|| std::env::var("HOLD_CONNECTIONS").ok())
    {
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| format!("connection count {n:?} is not a number"))?,
        None => DEFAULT_CONNECTIONS,
    };
    check_fd_limit(count)?;

    let mut child = spawn_server()?;
    let pid = child.id();
    let result = run(count, pid, &mut child);
    let _ = child.kill();
    let _ = child.wait();
    let summary = result?;
    println!("{summary}");
    // The held connections' tasks never finish by themselves: leave without waiting for them.
    std::process::exit(0)
}

/// Each connection needs a descriptor here and one in the server, which inherits our limit.
fn check_fd_limit(count: usize) -> Result<(), String> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| format!("cannot read /proc/self/limits: {e}"))?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .ok_or("no \"Max open files\" in /proc/self/limits")?;
    let needed = count as u64 + SPARE_FDS;
    match soft.parse::<u64>() {
        Ok(soft) if soft < needed => Err(format!(
            "{count} connections need {needed} open files, the limit is {soft}: run under \
             `bash -c 'ulimit -n {}; cargo run --release --example hold_connections -- {count}'`",
            needed.max(20000)
        )),
        _ => Ok(()),
    }
}

fn spawn_server() -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = match std::env::var("HOLD_SERVER_ULIMIT_V") {
        Ok(kib) => {
            let kib: u64 = kib
                .trim()
                .parse()
                .map_err(|_| format!("HOLD_SERVER_ULIMIT_V={kib:?} is not a number of KiB"))?;
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg("ulimit -v \"$1\" && exec \"$0\" server")
                .arg(&exe)
                .arg(kib.to_string());
            command
        }
        Err(_) => {
            let mut command = Command::new(&exe);
            command.arg("server");
            command
        }
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))
}

/// Reads the server's port, holds `count` connections, returns the summary line.
fn run(count: usize, pid: u32, child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the server did not report its port within 30 s")?;
    let port: u16 = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("the server said {line:?}, not its port"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eprintln!("server pid {pid} on {addr}; opening {count} connections");

    let head = format!(
        "POST /hooks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {CONTENT_LENGTH}\r\nx-github-event: push\r\n\
         x-hub-signature-256: sha256={}\r\n\r\n",
        "ab".repeat(32)
    );
    let head: &'static [u8] = Box::leak(head.into_bytes().into_boxed_slice());
    // One buffer for every connection: the tool's own memory stays small.
    let body: &'static [u8] = Box::leak(vec![b'x'; CONTENT_LENGTH - 1].into_boxed_slice());
    let connections: Arc<Vec<Connection>> = Arc::new(
        (0..count)
            .map(|_| Connection {
                state: AtomicU8::new(SENDING),
            })
            .collect(),
    );
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let started = Instant::now();
    let mut failed = 0;
    let mut first_failure = None;
    for i in 0..count {
        let connected = rt.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        });
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                return Err(format!(
                    "out of file descriptors after {i} connections ({e}): raise `ulimit -n`"
                ));
            }
            Ok(Err(e)) => {
                failed += 1;
                first_failure.get_or_insert_with(|| e.to_string());
                connections[i].state.store(CLOSED, Ordering::Relaxed);
                continue;
            }
            Err(_) => {
                failed += 1;
                first_failure.get_or_insert_with(|| "connect timed out".to_owned());
                connections[i].state.store(CLOSED, Ordering::Relaxed);
                continue;
            }
        };
        let connections = Arc::clone(&connections);
        let statuses = Arc::clone(&statuses);
        rt.spawn(async move {
            hold(stream, head, body, &connections[i].state, &statuses).await;
        });
    }
    eprintln!(
        "{} connected in {:.1} s ({failed} failed{})",
        count - failed,
        started.elapsed().as_secs_f64(),
        first_failure
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default()
    );

    // Until no connection is still sending, the server is gone, or the wait is over.
    let wait = Duration::from_secs(
        std::env::var("HOLD_WAIT_SECS")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(60),
    );
    let mut memory = Memory::default();
    let mut exited = None;
    while started.elapsed() < wait {
        memory.sample(pid);
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        let sending = connections
            .iter()
            .filter(|c| c.state.load(Ordering::Relaxed) == SENDING)
            .count();
        if sending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let sent_after = started.elapsed();
    // The last bytes may still sit in socket buffers: let the server's memory settle.
    let settle = Instant::now();
    while exited.is_none() && settle.elapsed() < SETTLE_LIMIT {
        std::thread::sleep(Duration::from_millis(500));
        let before = memory.rss;
        memory.sample(pid);
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
        } else if memory.rss.abs_diff(before) < SETTLED {
            break;
        }
    }

    let mut states = [0usize; 4];
    for c in connections.iter() {
        states[usize::from(c.state.load(Ordering::Relaxed))] += 1;
    }
    let statuses = statuses.lock().map(|s| s.clone()).unwrap_or_default();
    let by_status = if statuses.is_empty() {
        "none".to_owned()
    } else {
        statuses
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let server = match exited {
        Some(status) => format!(
            "server EXITED ({status}); last seen VmRSS {}, VmHWM {}",
            gib(memory.rss),
            gib(memory.hwm)
        ),
        None => format!(
            "server VmRSS {}, VmHWM {}",
            gib(memory.rss),
            gib(memory.hwm)
        ),
    };
    Ok(format!(
        "hold_connections: {count} connections x {} of {CONTENT_LENGTH} bytes: {server}; \
         held {}, answered {} ({by_status}), closed {}, \
         still sending {}, connect failed {failed}; sends done in {:.1} s; tool VmHWM {}",
        CONTENT_LENGTH - 1,
        states[HELD as usize],
        states[ANSWERED as usize],
        states[CLOSED as usize] - failed,
        states[SENDING as usize],
        sent_after.as_secs_f64(),
        gib(status_kib("self", "VmHWM:").unwrap_or(0) * 1024),
    ))
}

/// Sends the head and all but the last byte of the body, reading meanwhile: a response (say a
/// 503 before the body is read) or a close ends the wait. Then keeps the socket open until the
/// tool exits.
async fn hold(
    stream: TcpStream,
    head: &'static [u8],
    body: &'static [u8],
    state: &AtomicU8,
    statuses: &Mutex<BTreeMap<u16, usize>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    {
        let send = async {
            writer.write_all(head).await?;
            writer.write_all(body).await
        };
        let answer = read_status(&mut reader);
        tokio::pin!(send, answer);
        let mut sending = true;
        loop {
            tokio::select! {
                sent = &mut send, if sending => {
                    sending = false;
                    if sent.is_ok() {
                        state.store(HELD, Ordering::Relaxed);
                    }
                    // A failed write means the server stopped reading: its answer, if any, follows.
                }
                status = &mut answer => {
                    match status {
                        Some(status) => {
                            state.store(ANSWERED, Ordering::Relaxed);
                            if let Ok(mut statuses) = statuses.lock() {
                                *statuses.entry(status).or_default() += 1;
                            }
                        }
                        None => state.store(CLOSED, Ordering::Relaxed),
                    }
                    break;
                }
            }
        }
    }
    // Hold the connection: the tool exits when it has measured.
    let _held = (reader, writer);
    std::future::pending::<()>().await;
}

/// The status of the first response on `reader`, or `None` when the connection ends first.
async fn read_status(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Option<u16> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while head.len() < 12 {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The server's memory as last read; zero until read.
#[derive(Default)]
struct Memory {
    rss: u64,
    hwm: u64,
}

impl Memory {
    fn sample(&mut self, pid: u32) {
        let pid = pid.to_string();
        if let (Some(rss), Some(hwm)) = (status_kib(&pid, "VmRSS:"), status_kib(&pid, "VmHWM:")) {
            self.rss = rss * 1024;
            self.hwm = hwm * 1024;
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kib(pid: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}
