//! Should the layer MAC the body while it streams in? End-to-end latency of one 1 MiB GitHub
//! delivery over a real loopback connection (hyper server with `WebhookLayer`, keep-alive client
//! on another core): `stream` is the layer as shipped, which feeds each frame to the MAC as it
//! arrives; `buffer` is the layer with `stream_from(None)`, which MACs the body after its last
//! frame. Both hand the whole body to the inner service.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{service_fn, Layer};
use webhook_guard::middleware::{WebhookLayer, DEFAULT_STREAM_FROM};
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Verifier};

mod common;

const SIZE: usize = 1024 * 1024;

/// Serves `verifier` behind the layer (limit 2 MiB, streaming from `stream_from`) on a loopback
/// port; the inner service answers 200 with the body length.
async fn serve(verifier: Verifier, stream_from: Option<u64>) -> std::net::SocketAddr {
    let inner = service_fn(|request: Request<Full<Bytes>>| async move {
        let len = request
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(len.to_string()))))
    });
    let service = WebhookLayer::new(verifier)
        .max_body_size(2 * SIZE)
        .stream_from(stream_from)
        .layer(inner);
    common::serve_loopback(service).await
}

/// Sends one delivery on the keep-alive connection, 64 KiB at a time at `pace` per piece if
/// given (a busy wait on the client's own core: `tokio::time` ticks in milliseconds), and reads
/// the answer: status line, headers and the body length the inner service echoes.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    pace: Option<Duration>,
    answer: &mut Vec<u8>,
) {
    match pace {
        None => stream.write_all(request).await.unwrap(),
        Some(pace) => {
            let mut due = Instant::now();
            for piece in request.chunks(64 * 1024) {
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
                stream.write_all(piece).await.unwrap();
                due += pace;
            }
        }
    }
    answer.clear();
    let mut chunk = [0u8; 1024];
    let expected = format!("\r\n\r\n{SIZE}");
    while !answer.ends_with(expected.as_bytes()) {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed the connection");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(answer)
    );
}

fn streaming(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let body = common::body(SIZE);
    let signed = webhook_guard::Signer::new(GitHub, common::secret())
        .sign_at(&body, "delivery-1", common::now())
        .unwrap();
    let signature = signed["x-hub-signature-256"].to_str().unwrap().to_owned();
    // As fast as loopback goes, and paced at 1 Gbit/s (64 KiB every 524 µs), a network slower
    // than the MAC.
    for (link, pace) in [
        ("loopback", None),
        ("1Gbit", Some(Duration::from_nanos(64 * 1024 * 8))),
    ] {
        let mut group = c.benchmark_group(format!("streaming/1MiB-{link}"));
        group.throughput(Throughput::Bytes(SIZE as u64));
        for mode in ["buffer", "stream"] {
            let stream_from = match mode {
                "buffer" => None,
                _ => Some(DEFAULT_STREAM_FROM),
            };
            let verifier = Verifier::new(GitHub, Keyring::new(common::secret()));
            let addr = rt.block_on(serve(verifier, stream_from));
            let mut request = format!(
                "POST /hooks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {SIZE}\r\nx-hub-signature-256: {signature}\r\n\r\n"
            )
            .into_bytes();
            request.extend_from_slice(&body);
            let mut stream = rt.block_on(TcpStream::connect(addr)).unwrap();
            stream.set_nodelay(true).unwrap();
            let mut answer = Vec::new();
            group.bench_function(BenchmarkId::new(mode, SIZE), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            exchange(&mut stream, &request, pace, &mut answer).await;
                        }
                        start.elapsed()
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(30);
    targets = streaming
}
criterion_main!(benches);
