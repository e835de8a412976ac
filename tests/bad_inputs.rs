//! Hostile inputs through `WebhookLayer`, table-driven.
//!
//! Each row builds one request, sends it through a layer (Standard Webhooks unless the row says
//! Stripe or GitHub) around an inner service that counts its calls, and checks the answer: the
//! expected status, `application/problem+json`, a problem `type` ending in the expected kind,
//! the problem's `status` equal to the HTTP status, an optional `detail` fragment, the inner
//! service never called, and, for streamed bodies, no more than the limit plus one frame read.
//!
//! `/tmp/bad_inputs_table.md` (for the README) is written from the same rows:
//! `BAD_INPUTS_TABLE=/tmp/bad_inputs_table.md cargo test --test bad_inputs table`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use chrono::DateTime;
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{GitHub, Scheme, StandardWebhooks, Stripe};
use webhook_guard::{Keyring, ManualClock, Secret, Signer, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ReqBody = UnsyncBoxBody<Bytes, BoxError>;

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "whsec-test-secret-for-bad-inputs";
const LIMIT: usize = 16 * 1024;
const CHUNK: usize = 1024;
const BODY: &[u8] = br#"{"type":"invoice.paid","id":"evt_1"}"#;
const ID: &str = "msg_2Lh7dOV3xGJy";

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/// A streamed body with no size hint (as a chunked upload): the given chunks, then `forever`
/// repeated without end if set, each frame optionally after a tokio sleep. Counts bytes read.
struct Streamed {
    chunks: VecDeque<Bytes>,
    forever: Option<Bytes>,
    delay: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    polled: Arc<AtomicUsize>,
}

impl Streamed {
    fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
            forever: None,
            delay: None,
            sleep: None,
            polled: Arc::default(),
        }
    }

    fn endless() -> Self {
        Self {
            forever: Some(Bytes::from(vec![b'x'; CHUNK])),
            ..Self::new([])
        }
    }

    fn slow(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.chunks.is_empty() && this.forever.is_none() {
            return Poll::Ready(None);
        }
        if let Some(delay) = this.delay {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let chunk = match this.chunks.pop_front() {
            Some(chunk) => chunk,
            None => this.forever.clone().unwrap_or_default(),
        };
        this.polled.fetch_add(chunk.len(), Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn streamed(body: Streamed) -> (ReqBody, Arc<AtomicUsize>) {
    let polled = Arc::clone(&body.polled);
    (body.map_err(|never| match never {}).boxed_unsync(), polled)
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Standard,
    Stripe,
    GitHub,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Self::Standard => "Standard Webhooks",
            Self::Stripe => "Stripe",
            Self::GitHub => "GitHub",
        }
    }
}

fn secret() -> Secret {
    Secret::from_bytes(SECRET).expect("a non-empty secret")
}

fn layer(which: Which) -> WebhookLayer {
    let keyring = Keyring::builder()
        .clock(ManualClock::at_unix(NOW))
        .build(secret());
    let verifier = match which {
        Which::Standard => Verifier::new(StandardWebhooks, keyring),
        Which::Stripe => Verifier::new(Stripe, keyring),
        Which::GitHub => Verifier::new(GitHub, keyring),
    };
    WebhookLayer::new(verifier).max_body_size(LIMIT)
}

fn detailed_layer(which: Which) -> WebhookLayer {
    layer(which).detailed_rejections(true)
}

fn signed_with(scheme: impl Scheme, secret: Secret, body: &[u8], id: &str, at: i64) -> HeaderMap {
    let at = DateTime::from_timestamp(at, 0).expect("a valid time");
    Signer::new(scheme, secret)
        .sign_at(body, id, at)
        .expect("signing with a plain id never fails")
}

/// Correctly signed Standard Webhooks headers for `body` now.
fn std_signed(body: &[u8]) -> HeaderMap {
    signed_with(StandardWebhooks, secret(), body, ID, NOW)
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

fn set(mut headers: HeaderMap, name: &'static str, v: HeaderValue) -> HeaderMap {
    headers.insert(name, v);
    headers
}

fn without(mut headers: HeaderMap, name: &'static str) -> HeaderMap {
    headers.remove(name);
    headers
}

fn b64_mac(len: usize) -> String {
    B64.encode(vec![0x3c; len])
}

/// What a row's builder returns: the request and, for streamed bodies, its read counter.
struct Built {
    request: Request<ReqBody>,
    polled: Option<Arc<AtomicUsize>>,
}

fn req(headers: HeaderMap, body: ReqBody) -> Built {
    let mut request = Request::post("/webhooks")
        .body(body)
        .expect("a valid request");
    request.headers_mut().extend(headers);
    Built {
        request,
        polled: None,
    }
}

/// Standard Webhooks request with BODY and the given (hostile) headers.
fn std_req(headers: HeaderMap) -> Built {
    req(headers, full(BODY))
}

fn with_streamed(headers: HeaderMap, body: Streamed) -> Built {
    let (body, polled) = streamed(body);
    let mut built = req(headers, body);
    built.polled = Some(polled);
    built
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

struct Row {
    name: &'static str,
    scheme: Which,
    build: fn() -> Built,
    status: u16,
    kind: &'static str,
    /// A fragment the problem's `detail` must contain.
    detail: &'static str,
}

const fn row(
    name: &'static str,
    scheme: Which,
    build: fn() -> Built,
    status: u16,
    kind: &'static str,
    detail: &'static str,
) -> Row {
    Row {
        name,
        scheme,
        build,
        status,
        kind,
        detail,
    }
}

use Which::{GitHub as Gh, Standard as Sw, Stripe as St};

const MALFORMED: &str = "malformed-header";
const MISSING: &str = "missing-header";
const DUPLICATE: &str = "duplicate-header";
const INVALID: &str = "invalid-signature";
const TOO_LARGE: &str = "body-too-large";
const OUT_OF_TOLERANCE: &str = "timestamp-out-of-tolerance";

fn rows() -> Vec<Row> {
    vec![
        // --- missing / duplicated headers --------------------------------------------------
        row(
            "missing `webhook-signature`",
            Sw,
            || std_req(without(std_signed(BODY), "webhook-signature")),
            400,
            MISSING,
            "webhook-signature",
        ),
        row(
            "missing `webhook-id`",
            Sw,
            || std_req(without(std_signed(BODY), "webhook-id")),
            400,
            MISSING,
            "webhook-id",
        ),
        row(
            "missing `webhook-timestamp`",
            Sw,
            || std_req(without(std_signed(BODY), "webhook-timestamp")),
            400,
            MISSING,
            "webhook-timestamp",
        ),
        row(
            "`svix-signature` with `webhook-id`/`webhook-timestamp` (mixed families)",
            Sw,
            || {
                let mut h = std_signed(BODY);
                let sig = h.remove("webhook-signature").expect("signed");
                h.insert("svix-signature", sig);
                std_req(h)
            },
            400,
            MISSING,
            "svix-id",
        ),
        row(
            "duplicate `webhook-signature` (both copies valid)",
            Sw,
            || {
                let mut h = std_signed(BODY);
                let sig = h["webhook-signature"].clone();
                h.append("webhook-signature", sig);
                std_req(h)
            },
            400,
            DUPLICATE,
            "webhook-signature",
        ),
        row(
            "duplicate `webhook-id`",
            Sw,
            || {
                let mut h = std_signed(BODY);
                h.append("webhook-id", value("msg_other"));
                std_req(h)
            },
            400,
            DUPLICATE,
            "webhook-id",
        ),
        row(
            "duplicate `webhook-timestamp`",
            Sw,
            || {
                let mut h = std_signed(BODY);
                h.append("webhook-timestamp", value(&NOW.to_string()));
                std_req(h)
            },
            400,
            DUPLICATE,
            "webhook-timestamp",
        ),
        // --- signature syntax ----------------------------------------------------------------
        row(
            "empty `webhook-signature`",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-signature", value(""))),
            400,
            MALFORMED,
            "no v1 signature",
        ),
        row(
            "whitespace-only `webhook-signature`",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-signature", value("   "))),
            400,
            MALFORMED,
            "no v1 signature",
        ),
        row(
            "`v1,` with no data",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-signature", value("v1,"))),
            400,
            MALFORMED,
            "empty signature",
        ),
        row(
            "signature without a `version,` part",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value(&b64_mac(32)),
                ))
            },
            400,
            MALFORMED,
            "syntax",
        ),
        row(
            "non-base64 signature",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value("v1,!!!not*base64!!!"),
                ))
            },
            400,
            MALFORMED,
            "base64",
        ),
        row(
            "base64 with bad length (`v1,A`)",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-signature", value("v1,A"))),
            400,
            MALFORMED,
            "base64",
        ),
        row(
            "tab inside the signature",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value(&format!("v1,\t{}", b64_mac(32))),
                ))
            },
            400,
            MALFORMED,
            "base64",
        ),
        row(
            "16-byte MAC (truncated)",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value(&format!("v1,{}", b64_mac(16))),
                ))
            },
            401,
            INVALID,
            "16 bytes",
        ),
        row(
            "512-byte signature (the largest read: RSA-4096 size)",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value(&format!("v1,{}", b64_mac(512))),
                ))
            },
            401,
            INVALID,
            "512 bytes",
        ),
        row(
            "513-byte signature (over the 512-byte cap)",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    value(&format!("v1,{}", b64_mac(513))),
                ))
            },
            400,
            MALFORMED,
            "base64",
        ),
        row(
            "17 signatures (over the 16-signature cap)",
            Sw,
            || {
                let list = vec![format!("v1,{}", b64_mac(32)); 17].join(" ");
                std_req(set(std_signed(BODY), "webhook-signature", value(&list)))
            },
            400,
            MALFORMED,
            "more than 16 signatures",
        ),
        row(
            "10 000 signatures in one header",
            Sw,
            || {
                let list = vec![format!("v1,{}", b64_mac(32)); 10_000].join(" ");
                std_req(set(std_signed(BODY), "webhook-signature", value(&list)))
            },
            400,
            MALFORMED,
            "longer than the 8192-byte limit",
        ),
        row(
            "8 KiB of `v2,x` entries (no v1)",
            Sw,
            || {
                let list = vec!["v2,x"; 1600].join(" ");
                std_req(set(std_signed(BODY), "webhook-signature", value(&list)))
            },
            400,
            MALFORMED,
            "no v1 signature",
        ),
        row(
            "1 MB `webhook-signature` value",
            Sw,
            || {
                let huge = format!("v1,{}", "A".repeat(1 << 20));
                std_req(set(std_signed(BODY), "webhook-signature", value(&huge)))
            },
            400,
            MALFORMED,
            "longer than the 8192-byte limit",
        ),
        row(
            "1 MB `webhook-id` value",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-id",
                    value(&"m".repeat(1 << 20)),
                ))
            },
            400,
            MALFORMED,
            "longer than the 8192-byte limit",
        ),
        row(
            "non-UTF-8 obs-text bytes (0x80..) in the signature",
            Sw,
            || {
                let bytes: Vec<u8> = b"v1,".iter().copied().chain(0x80..=0xff).collect();
                std_req(set(
                    std_signed(BODY),
                    "webhook-signature",
                    HeaderValue::from_bytes(&bytes).expect("obs-text is allowed"),
                ))
            },
            400,
            MALFORMED,
            "not visible ASCII",
        ),
        row(
            "obs-text bytes in `webhook-id`",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-id",
                    HeaderValue::from_bytes(b"msg_\xc3\xa9\xff").expect("obs-text is allowed"),
                ))
            },
            400,
            MALFORMED,
            "not visible ASCII",
        ),
        // --- timestamps ----------------------------------------------------------------------
        row(
            "timestamp overflow `99999999999999999999`",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value("99999999999999999999"),
                ))
            },
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "timestamp `999999999999999999` (18 digits, far future)",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value("999999999999999999"),
                ))
            },
            401,
            OUT_OF_TOLERANCE,
            "in the future",
        ),
        row(
            "negative timestamp",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value(&format!("-{NOW}")),
                ))
            },
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "float timestamp",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value(&format!("{NOW}.5")),
                ))
            },
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "exponent timestamp `1.7e9`",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-timestamp", value("1.7e9"))),
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "timestamp with a space inside",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value("1700 000000"),
                ))
            },
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "timestamp with a plus sign",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    value(&format!("+{NOW}")),
                ))
            },
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "empty timestamp",
            Sw,
            || std_req(set(std_signed(BODY), "webhook-timestamp", value(""))),
            400,
            MALFORMED,
            "timestamp",
        ),
        row(
            "fullwidth digits (UTF-8) in the timestamp",
            Sw,
            || {
                std_req(set(
                    std_signed(BODY),
                    "webhook-timestamp",
                    HeaderValue::from_bytes("１７００".as_bytes()).expect("obs-text is allowed"),
                ))
            },
            400,
            MALFORMED,
            "not visible ASCII",
        ),
        row(
            "timestamp 0 (epoch), correctly signed",
            Sw,
            || {
                req(
                    signed_with(StandardWebhooks, secret(), BODY, ID, 0),
                    full(BODY),
                )
            },
            401,
            OUT_OF_TOLERANCE,
            "old",
        ),
        row(
            "replay 301 s old, correctly signed",
            Sw,
            || {
                req(
                    signed_with(StandardWebhooks, secret(), BODY, ID, NOW - 301),
                    full(BODY),
                )
            },
            401,
            OUT_OF_TOLERANCE,
            "301s old",
        ),
        // --- wrong signatures ----------------------------------------------------------------
        row(
            "valid body signed for another webhook id",
            Sw,
            || {
                let h = signed_with(StandardWebhooks, secret(), BODY, "msg_other", NOW);
                std_req(set(h, "webhook-id", value(ID)))
            },
            401,
            INVALID,
            "no signature matched",
        ),
        row(
            "signed with another secret",
            Sw,
            || {
                let other = Secret::from_bytes("not the secret").expect("non-empty");
                req(
                    signed_with(StandardWebhooks, other, BODY, ID, NOW),
                    full(BODY),
                )
            },
            401,
            INVALID,
            "no signature matched",
        ),
        row(
            "body changed by one byte after signing",
            Sw,
            || {
                req(
                    std_signed(BODY),
                    full(&b"{\"type\":\"invoice.paid\",\"id\":\"evt_2\"}"[..]),
                )
            },
            401,
            INVALID,
            "no signature matched",
        ),
        // --- bodies --------------------------------------------------------------------------
        row(
            "`Content-Length` larger than the limit",
            Sw,
            || {
                let h = set(
                    std_signed(BODY),
                    "content-length",
                    value(&(LIMIT + 1).to_string()),
                );
                with_streamed(h, Streamed::endless())
            },
            413,
            TOO_LARGE,
            "limit",
        ),
        row(
            "`Content-Length` lying small, full body over the limit",
            Sw,
            || {
                let body = vec![b'x'; 4 * LIMIT];
                let h = set(std_signed(&body), "content-length", value("10"));
                req(h, full(body))
            },
            413,
            TOO_LARGE,
            "limit",
        ),
        row(
            "`Content-Length` lying small, streamed body over the limit",
            Sw,
            || {
                let h = set(std_signed(BODY), "content-length", value("10"));
                with_streamed(h, Streamed::endless())
            },
            413,
            TOO_LARGE,
            "limit",
        ),
        row(
            "two conflicting `Content-Length`s, streamed body over the limit",
            Sw,
            || {
                let mut h = set(std_signed(BODY), "content-length", value("10"));
                h.append("content-length", value("20"));
                with_streamed(h, Streamed::endless())
            },
            413,
            TOO_LARGE,
            "limit",
        ),
        row(
            "chunked (streamed) body over the limit",
            Sw,
            || with_streamed(std_signed(BODY), Streamed::endless()),
            413,
            TOO_LARGE,
            "limit",
        ),
        row(
            "slow streamed body over the limit",
            Sw,
            || {
                with_streamed(
                    std_signed(BODY),
                    Streamed::endless().slow(Duration::from_millis(1)),
                )
            },
            413,
            TOO_LARGE,
            "limit",
        ),
        // --- Stripe --------------------------------------------------------------------------
        row(
            "Stripe: two `t=`",
            St,
            || {
                let h = signed_with(Stripe, secret(), BODY, ID, NOW);
                let text = h["stripe-signature"].to_str().expect("ASCII").to_owned();
                std_req(set(
                    h,
                    "stripe-signature",
                    value(&format!("t={},{text}", NOW - 1)),
                ))
            },
            400,
            MALFORMED,
            "t= appears more than once",
        ),
        row(
            "Stripe: garbage header",
            St,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "stripe-signature",
                    value("garbage;;"),
                ))
            },
            400,
            MALFORMED,
            "syntax",
        ),
        row(
            "Stripe: no `t=`",
            St,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "stripe-signature",
                    value(&format!("v1={}", "ab".repeat(32))),
                ))
            },
            400,
            MALFORMED,
            "no t= field",
        ),
        row(
            "Stripe: `v0=` only",
            St,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "stripe-signature",
                    value(&format!("t={NOW},v0={}", "ab".repeat(32))),
                ))
            },
            400,
            MALFORMED,
            "no v1 signature",
        ),
        row(
            "Stripe: odd-length hex",
            St,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "stripe-signature",
                    value(&format!("t={NOW},v1={}", "a".repeat(63))),
                ))
            },
            400,
            MALFORMED,
            "hex",
        ),
        // --- GitHub --------------------------------------------------------------------------
        row(
            "GitHub: `sha256=` with odd hex length",
            Gh,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "x-hub-signature-256",
                    value(&format!("sha256={}", "a".repeat(63))),
                ))
            },
            400,
            MALFORMED,
            "hex",
        ),
        row(
            "GitHub: non-hex digits",
            Gh,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "x-hub-signature-256",
                    value(&format!("sha256={}", "zz".repeat(32))),
                ))
            },
            400,
            MALFORMED,
            "hex",
        ),
        row(
            "GitHub: legacy `sha1=` prefix",
            Gh,
            || {
                std_req(set(
                    HeaderMap::new(),
                    "x-hub-signature-256",
                    value(&format!("sha1={}", "ab".repeat(20))),
                ))
            },
            400,
            MALFORMED,
            "sha256=",
        ),
        row(
            "GitHub: duplicate signature header",
            Gh,
            || {
                let mut h = signed_with(GitHub, secret(), BODY, ID, NOW);
                let sig = h["x-hub-signature-256"].clone();
                h.append("x-hub-signature-256", sig);
                std_req(h)
            },
            400,
            DUPLICATE,
            "x-hub-signature-256",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Running rows
// ---------------------------------------------------------------------------------------------

/// An inner service that counts its calls and answers 200.
fn counting_inner(
    calls: &Arc<AtomicUsize>,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let calls = Arc::clone(calls);
    service_fn(move |request: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let body = request
                .into_body()
                .collect()
                .await
                .unwrap_or_else(|never| match never {})
                .to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        }
    })
}

async fn read(
    response: Response<impl Body<Data = Bytes, Error = Infallible>>,
) -> (u16, HeaderMap, Bytes) {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|never| match never {})
        .to_bytes();
    (parts.status.as_u16(), parts.headers, body)
}

/// Checks one answer against its row; returns its `detail`.
fn check(
    row: &Row,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    polled: Option<&AtomicUsize>,
) -> String {
    let name = row.name;
    assert_eq!(
        status,
        row.status,
        "{name}: body {:?}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(&b"application/problem+json"[..]),
        "{name}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
    assert_eq!(doc["status"], row.status, "{name}");
    let ty = doc["type"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no type"));
    assert_eq!(ty, format!("tag:webhook-guard,2026:{}", row.kind), "{name}");
    let detail = doc["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no detail"));
    assert!(
        detail.len() < 512,
        "{name}: detail echoes input ({} bytes)",
        detail.len()
    );
    if let Some(polled) = polled {
        let read = polled.load(Ordering::SeqCst);
        assert!(
            read <= LIMIT + CHUNK,
            "{name}: read {read} bytes for a {LIMIT}-byte limit"
        );
    }
    detail.to_owned()
}

#[tokio::test]
async fn hostile_inputs_table() {
    let rows = rows();
    assert!(rows.len() >= 25, "{} rows", rows.len());
    // By default one sentence per problem type, with no number in it (no clock, tolerance,
    // key count or length); the specific text only when asked for.
    let mut generic = std::collections::BTreeMap::new();
    for detailed in [false, true] {
        for row in &rows {
            let calls = Arc::new(AtomicUsize::new(0));
            let layer = match detailed {
                true => detailed_layer(row.scheme),
                false => layer(row.scheme),
            };
            let service = layer.layer(counting_inner(&calls));
            let built = (row.build)();
            let response =
                tokio::time::timeout(Duration::from_secs(10), service.oneshot(built.request))
                    .await
                    .unwrap_or_else(|_| panic!("{}: no answer within 10 s", row.name))
                    .unwrap_or_else(|never| match never {});
            let (status, headers, body) = read(response).await;
            let detail = check(row, status, &headers, &body, built.polled.as_deref());
            let name = row.name;
            if detailed {
                assert!(detail.contains(row.detail), "{name}: detail {detail:?}");
            } else {
                assert!(
                    !detail.contains(|c: char| c.is_ascii_digit()),
                    "{name}: {detail}"
                );
                let first = generic.entry(row.kind).or_insert_with(|| detail.clone());
                assert_eq!(*first, detail, "{name}: one detail per problem type");
            }
            assert_eq!(
                calls.load(Ordering::SeqCst),
                0,
                "{name}: inner service called"
            );
        }
    }
    assert!(generic.len() >= 6, "{generic:?}");
}

/// Control for the table: the same fixture accepts a well-formed delivery, so every refusal
/// above is down to the hostile part of its row.
#[tokio::test]
async fn well_formed_deliveries_pass_the_same_fixture() {
    let cases = [
        (Which::Standard, std_signed(BODY)),
        (Which::Stripe, signed_with(Stripe, secret(), BODY, ID, NOW)),
        (Which::GitHub, signed_with(GitHub, secret(), BODY, ID, NOW)),
    ];
    for (which, headers) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let response = layer(which)
            .layer(counting_inner(&calls))
            .oneshot(req(headers, full(BODY)).request)
            .await
            .unwrap_or_else(|never| match never {});
        let (status, _, body) = read(response).await;
        assert_eq!(status, 200, "{which:?}: {body:?}");
        assert_eq!(body, BODY);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

/// A slow but honest body (frames a few milliseconds apart) still verifies, in bounded time.
#[tokio::test]
async fn slow_valid_body_verifies_within_a_timeout() {
    let chunks: Vec<Bytes> = BODY.chunks(4).map(Bytes::copy_from_slice).collect();
    let body = Streamed::new(chunks).slow(Duration::from_millis(3));
    let built = with_streamed(std_signed(BODY), body);
    let polled = built.polled.clone().expect("streamed");
    let calls = Arc::new(AtomicUsize::new(0));
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        layer(Which::Standard)
            .layer(counting_inner(&calls))
            .oneshot(built.request),
    )
    .await
    .expect("a slow body is answered in bounded time")
    .unwrap_or_else(|never| match never {});
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body, BODY);
    assert_eq!(polled.load(Ordering::SeqCst), BODY.len());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A slow, honest body exactly at the limit is read whole and verified.
#[tokio::test]
async fn slow_body_exactly_at_the_limit_verifies() {
    let payload = vec![b'7'; LIMIT];
    let chunks: Vec<Bytes> = payload.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    let built = with_streamed(
        std_signed(&payload),
        Streamed::new(chunks).slow(Duration::from_millis(1)),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        layer(Which::Standard)
            .layer(counting_inner(&calls))
            .oneshot(built.request),
    )
    .await
    .expect("answered in bounded time")
    .unwrap_or_else(|never| match never {});
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), LIMIT);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Control characters other than tab cannot even be put in a `HeaderValue` (hyper refuses them
/// on the wire the same way), so the verifier never sees them; tab is covered by a table row.
#[test]
fn control_characters_cannot_reach_the_verifier() {
    for byte in (0u8..0x20).filter(|b| *b != b'\t').chain([0x7f]) {
        let text = [b'v', b'1', b',', byte, b'A', b'A'];
        assert!(
            HeaderValue::from_bytes(&text).is_err(),
            "0x{byte:02x} accepted by HeaderValue"
        );
    }
}

/// 200 hostile requests, one after another, to one service instance: no panic, every answer as
/// its row expects, the inner service never called; then a valid delivery still goes through.
#[tokio::test]
async fn two_hundred_hostile_requests_to_one_instance() {
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| r.scheme == Which::Standard)
        .collect();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = layer(Which::Standard).layer(counting_inner(&calls));
    let mut by_status = std::collections::BTreeMap::new();
    for i in 0..200 {
        let row = &rows[i % rows.len()];
        let built = (row.build)();
        let ready = ServiceExt::<Request<ReqBody>>::ready(&mut service)
            .await
            .unwrap_or_else(|never| match never {});
        let response = tokio::time::timeout(Duration::from_secs(10), ready.call(built.request))
            .await
            .unwrap_or_else(|_| panic!("request {i} ({}): no answer", row.name))
            .unwrap_or_else(|never| match never {});
        let (status, headers, body) = read(response).await;
        check(row, status, &headers, &body, built.polled.as_deref());
        *by_status.entry(status).or_insert(0) += 1;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(by_status.values().sum::<i32>(), 200);
    eprintln!("200 hostile requests by status: {by_status:?}");

    let ready = ServiceExt::<Request<ReqBody>>::ready(&mut service)
        .await
        .unwrap_or_else(|never| match never {});
    let response = ready
        .call(req(std_signed(BODY), full(BODY)).request)
        .await
        .unwrap_or_else(|never| match never {});
    let (status, _, body) = read(response).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Writes the Markdown table for the README when `BAD_INPUTS_TABLE` names a file; otherwise
/// only checks that the table can be built.
#[test]
fn table_markdown() {
    let mut out = String::from("| input | status | problem type |\n|---|---|---|\n");
    for row in rows() {
        let input = match row.scheme {
            Which::Standard => row.name.to_owned(),
            other => {
                let prefix = format!("{}: ", other.label());
                format!("{}{}", prefix, row.name.trim_start_matches(&prefix))
            }
        };
        writeln!(
            out,
            "| {} | {} | `{}` |",
            input.replace('|', "\\|"),
            row.status,
            row.kind
        )
        .expect("writing to a String");
    }
    assert!(out.lines().count() >= 27);
    if let Some(path) = std::env::var_os("BAD_INPUTS_TABLE") {
        std::fs::write(path, out).expect("table written");
    }
}
