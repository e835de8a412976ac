//! Does a flood of large forged deliveries starve a small legitimate one? Latency of a 1 KiB
//! correctly signed GitHub delivery on its own keep-alive connection while N clients keep
//! sending 1 MiB deliveries with a well-formed but wrong `x-hub-signature-256`, each of which
//! the layer MACs with all 8 live keys (8 MiB of MAC). The server is hyper with `WebhookLayer`
//! (limit 2 MiB) on a 2-worker tokio runtime on loopback; the attackers run on a runtime of
//! their own, the legitimate client on the bench thread.
//!
//! Two layers side by side on one machine and in one run: `turns`, the default (at most one
//! large body per CPU read and verified at once, `WebhookLayer::max_large_bodies`), and
//! `no-turns` (`max_large_bodies(usize::MAX)`: every body the buffered-bytes budget admits is
//! MACed at once, as before issue 19's item 7).
//!
//! Criterion times one legitimate request per layer and N
//! (`fairness/github-8keys/legit-1KiB-{turns,no-turns}/N`); before it, a plain loop of
//! `FAIRNESS_LEGIT` requests (default 500) prints p50 / p99 / max to stdout, as the review
//! reported them. `FAIRNESS_ATTACKERS` lists the N (default `0,4,16`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use http::{Request, Response};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tower::{service_fn, Layer};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Secret, Signer, Verifier};

mod common;

const KEYS: usize = 8;
const FORGED_SIZE: usize = 1024 * 1024;
const LEGIT_SIZE: usize = 1024;
/// No single read or write waits longer than this; an attacker reconnects, the legitimate
/// client fails the bench.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Attackers stop on their own after this, should the bench never stop them.
const ATTACK_LIMIT: Duration = Duration::from_secs(600);
/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// 8 live keys (the keyring's default maximum): seven grace keys and the current one, which
/// signs the legitimate deliveries. A forged delivery is MACed with all eight.
fn keyring() -> Keyring {
    let keyring = Keyring::new(Secret::from_bytes(b"grace-key-0").unwrap());
    for i in 1..KEYS - 1 {
        let grace = Secret::from_bytes(format!("grace-key-{i}")).unwrap();
        keyring.rotate(grace, Duration::from_secs(3600)).unwrap();
    }
    keyring
        .rotate(common::secret(), Duration::from_secs(3600))
        .unwrap();
    assert_eq!(keyring.keys().len(), KEYS);
    keyring
}

/// Serves the layer (limit 2 MiB; at most `large` large bodies at once) around an inner service
/// answering 200 on a loopback port.
async fn serve(large: usize) -> SocketAddr {
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let service = WebhookLayer::new(Verifier::new(GitHub, keyring()))
        .max_body_size(2 * FORGED_SIZE)
        .max_large_bodies(large)
        .layer(inner);
    common::serve_loopback(service).await
}

/// A POST of `body` with `signature`, Content-Length set, keep-alive (HTTP/1.1's default).
fn request(addr: SocketAddr, body: &[u8], signature: &str) -> Bytes {
    let mut request = format!(
        "POST /hooks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-github-event: push\r\nx-hub-signature-256: {signature}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    Bytes::from(request)
}

/// Sends `request` and reads one whole response (head, then `content-length` bytes of body).
/// Returns the status and whether the server keeps the connection open.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("response head too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let mut length = 0;
    let mut keep_alive = true;
    for line in head.lines().skip(1) {
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v
                .trim()
                .parse()
                .map_err(|_| std::io::Error::other("bad content-length"))?;
        } else if line.starts_with("connection:") && line.contains("close") {
            keep_alive = false;
        }
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, keep_alive))
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What the attackers did, counted across all of them.
#[derive(Default)]
struct Counters {
    /// Forged deliveries answered (any status).
    answered: AtomicU64,
    /// Answers other than 401.
    unexpected: AtomicU64,
    /// Connections lost or timed out, then opened again.
    reconnects: AtomicU64,
}

/// One attacker: forged deliveries back to back on a keep-alive connection, until `stop` (or
/// `ATTACK_LIMIT`).
async fn attack(addr: SocketAddr, forged: Bytes, stop: Arc<AtomicBool>, counters: Arc<Counters>) {
    let until = Instant::now() + ATTACK_LIMIT;
    let mut buf = Vec::new();
    let mut stream = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let mut open = match stream.take() {
            Some(open) => open,
            None => match connect(addr).await {
                Ok(open) => open,
                Err(_) => {
                    counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(IO_TIMEOUT, exchange(&mut open, &forged, &mut buf)).await {
            Ok(Ok((status, keep_alive))) => {
                counters.answered.fetch_add(1, Ordering::Relaxed);
                if status != 401 {
                    counters.unexpected.fetch_add(1, Ordering::Relaxed);
                }
                if keep_alive {
                    stream = Some(open);
                }
            }
            _ => {
                counters.reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `n` attackers running on `rt`, in steady state (each answered once, or 10 s passed).
struct Attack {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl Attack {
    fn start(rt: &Runtime, n: usize, addr: SocketAddr, forged: &Bytes) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let tasks = (0..n)
            .map(|_| {
                rt.spawn(attack(
                    addr,
                    forged.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&counters),
                ))
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(10);
        while counters.answered.load(Ordering::Relaxed) < n as u64 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            stop,
            counters,
            tasks,
        }
    }

    /// Stops the attackers (an exchange in flight is dropped) and lets the server finish what
    /// they left.
    fn stop(self, rt: &Runtime) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        rt.block_on(async {
            for task in self.tasks {
                let _ = task.await;
            }
        });
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One legitimate delivery, timed, with its status (200, or a 503 when the layer had no room).
async fn legit(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> (Duration, u16) {
    let start = Instant::now();
    let (status, _) = tokio::time::timeout(IO_TIMEOUT, exchange(stream, request, buf))
        .await
        .expect("legitimate delivery timed out")
        .expect("legitimate delivery failed");
    let elapsed = start.elapsed();
    assert!(
        status == 200 || status == 503,
        "legitimate delivery answered {status}: {}",
        String::from_utf8_lossy(buf)
    );
    (elapsed, status)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fairness(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let attackers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ns: Vec<usize> = std::env::var("FAIRNESS_ATTACKERS")
        .unwrap_or_else(|_| "0,4,16".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("FAIRNESS_ATTACKERS: counts, comma separated")
        })
        .collect();
    let count: usize = env_or("FAIRNESS_LEGIT", 500).max(1);

    let cpus = std::thread::available_parallelism().map_or(2, usize::from);
    let layers = [("turns", cpus), ("no-turns", usize::MAX)];
    let legit_body = common::body(LEGIT_SIZE);
    let signed = Signer::new(GitHub, common::secret())
        .sign(&legit_body)
        .unwrap();
    let forged_body = common::body(FORGED_SIZE);

    let mut group = c.benchmark_group("fairness/github-8keys");
    group.sampling_mode(SamplingMode::Flat);
    for (n, (layer, large)) in ns
        .iter()
        .flat_map(|&n| layers.iter().map(move |&layer| (n, layer)))
    {
        let addr = server.block_on(serve(large));
        let legit_request = request(
            addr,
            &legit_body,
            signed["x-hub-signature-256"].to_str().unwrap(),
        );
        // Well-formed (`sha256=` and 64 hex digits), matching no key.
        let forged_request = request(addr, &forged_body, &format!("sha256={}", "ab".repeat(32)));
        let attack = Attack::start(&attackers, n, addr, &forged_request);
        let mut stream = client.block_on(connect(addr)).unwrap();
        let mut buf = Vec::new();

        let answered = attack.counters.answered.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut refused = 0;
        let mut latencies: Vec<Duration> = client.block_on(async {
            let mut latencies = Vec::with_capacity(count);
            for _ in 0..count {
                let (took, status) = legit(&mut stream, &legit_request, &mut buf).await;
                latencies.push(took);
                refused += usize::from(status != 200);
            }
            latencies
        });
        let took = started.elapsed();
        let forged = attack.counters.answered.load(Ordering::Relaxed) - answered;
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        println!(
            "fairness: {layer:>8}, {n:>2} attackers: legit 1 KiB p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms \
             ({count} requests in {:.2} s, {refused} refused 503); forged 1 MiB answered meanwhile: {forged} ({:.1}/s); \
             unexpected statuses {}, reconnects {}",
            ms(at(0.50)),
            ms(at(0.99)),
            ms(at(1.0)),
            took.as_secs_f64(),
            forged as f64 / took.as_secs_f64(),
            attack.counters.unexpected.load(Ordering::Relaxed),
            attack.counters.reconnects.load(Ordering::Relaxed),
        );

        group.bench_function(BenchmarkId::new(format!("legit-1KiB-{layer}"), n), |b| {
            b.iter_custom(|iters| {
                client.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += legit(&mut stream, &legit_request, &mut buf).await.0;
                    }
                    total
                })
            })
        });
        attack.stop(&attackers);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    targets = fairness
}
criterion_main!(benches);
