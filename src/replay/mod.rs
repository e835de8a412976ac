//! Replay and duplicate protection: each verified delivery is handled once, however often it
//! is sent.
//!
//! Senders retry until they see a 2xx, so the same delivery arrives more than once, and an
//! attacker who captured one can send it again within its timestamp's tolerance. A
//! [`ReplayGuard`] remembers the deliveries already handled, as an idempotency record:
//!
//! 1. only after the signature and the timestamp verified (a forged delivery never touches the
//!    guard), the delivery's [`DeliveryKey`] is **reserved** (`processing`, for a lease of
//!    [`DEFAULT_LEASE`], 60 s, unless set with [`ReplayProtection::lease`]);
//! 2. the handler runs; when it answers 2xx the key becomes **done** and is kept for the
//!    retention window ([`ReplayProtection::retention`]; by default the verifier's whole
//!    tolerance window, both ways, plus [`RETENTION_MARGIN`]: after that, the timestamp check
//!    refuses the delivery anyway);
//! 3. when it fails (non-2xx, an error, a panic, or its future dropped), the reservation is
//!    released at once, so the sender's retry is handled. A holder that died without releasing
//!    (a killed process) gives the key up when its lease ends.
//!
//! Through the [Tower layer](crate::middleware::WebhookLayer::replay_protection):
//!
//! | the key is | answer |
//! |---|---|
//! | new, or released, or its lease ended | the handler is called |
//! | `done` | 200, empty body, `webhook-guard-duplicate: true`; the handler is not called |
//! | `processing` (another copy is being handled) | 409 problem+json `duplicate-in-progress`, `Retry-After` |
//! | the memory guard is full | 503 problem+json `over-capacity`, `Retry-After` |
//! | the backend is down, [`Outage::FailClosed`] (default) | 503 problem+json `replay-guard-unavailable`, `Retry-After` |
//! | the backend is down, [`Outage::FailOpen`] | the handler is called, unguarded |
//!
//! The layer's inner service is what "handled" means: put the layer around the handler
//! (`route_layer`, actix's `WebhookGuard`). The axum and actix *extractors* run the layer around
//! the extraction, so there a delivery is marked done once extracted, before the handler runs,
//! and a failing handler does not give it back.
//!
//! Going from available to unavailable and back is logged once each way (`warn`), not per
//! request. Library callers do the same with [`DeliveryKey::of`] and [`ReplayProtection::admit`].
//!
//! # What identifies a delivery
//!
//! The key is a SHA-256 over the layer's namespace ([`ReplayProtection::namespace`]), the
//! project (with [`WebhookLayer::for_projects`](crate::middleware::WebhookLayer::for_projects)),
//! the scheme's name, and the delivery's [`Identity`]: the id the sender **signed**, or where a
//! scheme signs none, exactly the signed content (timestamp and URL included where signed). It
//! is never made of the signature's text (ECDSA signatures are malleable, base64 padding is
//! lenient, during a rotation a header carries several), of an unsigned header, or of the body
//! alone when a timestamp is signed.
//!
//! The bytes hashed (format 2): the byte `0x02`; the namespace, the project (empty without
//! one) and the scheme's name, each after its length in LEB128; then `i` and the signed id, or
//! `c` and the signed content. Instances sharing a PostgreSQL or Redis guard must use one
//! format; a later format will change the first byte.
//!
//! | scheme | the delivery is identified by |
//! |---|---|
//! | Standard Webhooks | `webhook-id` (signed) |
//! | Stripe | the event `id` in the signed body; else `{t}.{body}` |
//! | GitHub | the body (nothing else is signed; `X-GitHub-Delivery` is not) |
//! | Slack | the Events API `event_id` in the signed body; else `v0:{timestamp}:{body}` |
//! | Shopify | the body (`X-Shopify-Webhook-Id` is not signed) |
//! | Square | `{url}{body}` |
//! | Twilio | `{url}{sorted form parameters}` |
//! | Zoom | `v0:{timestamp}:{body}` |
//! | Linear | the body, `webhookTimestamp` in it (`Linear-Delivery` is not signed) |
//! | Dropbox | the body |
//! | Paddle | `event_id` in the signed body; else `{ts}:{body}` |
//! | Twitch | `Twitch-Eventsub-Message-Id` (signed) |
//! | Discord | `{timestamp}{body}` |
//! | SendGrid | `{timestamp}{body}` (never the ECDSA signature) |
//! | PayPal | `PAYPAL-TRANSMISSION-ID` (signed) |
//! | Custom | `{id}` when the template signs it; else the template's signed content |
//!
//! Where the key is the signed content and the sender signs each retry with a new timestamp
//! (Zoom, Discord, SendGrid), a retry is a new delivery to the guard: deduplicate those by the
//! event ids inside the body in the handler. Where nothing but the body is signed (GitHub,
//! Shopify, Dropbox), there is no timestamp to stop an old delivery: keep the retention long
//! (`retention(Duration::from_secs(72 * 3600))`).
//!
//! # Backends
//!
//! | guard | feature | shared by instances | on a restart |
//! |---|---|---|---|
//! | [`MemoryGuard`]: sharded, expiring, at most a set number of entries | none | no | forgets |
//! | `PostgresGuard`: `INSERT … ON CONFLICT` with an expiry, periodic clean-up | `postgres` | yes | keeps |
//! | `RedisGuard`: `SET NX PX`, a token-checked release | `redis` | yes | as Redis persists |
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//! use webhook_guard::middleware::WebhookLayer;
//! use webhook_guard::replay::{MemoryGuard, ReplayProtection};
//! use webhook_guard::{scheme::StandardWebhooks, Keyring, Secret, Signer, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from_bytes("It's a Secret to Everybody")?;
//! let verifier = Verifier::new(StandardWebhooks, Keyring::new(secret.clone()));
//! let layer = WebhookLayer::new(verifier)
//!     .replay_protection(ReplayProtection::new(MemoryGuard::new(100_000)));
//! let service = layer.layer(service_fn(|_: Request<Full<Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("handled"))))
//! }));
//!
//! let headers = Signer::new(StandardWebhooks, secret).sign(b"{}")?;
//! let send = || {
//!     let mut request = Request::post("/").body(Full::new(Bytes::from("{}"))).unwrap();
//!     *request.headers_mut() = headers.clone();
//!     request
//! };
//! let first = service.clone().oneshot(send()).await?;
//! assert_eq!(first.status(), StatusCode::OK);
//! assert!(first.headers().get("webhook-guard-duplicate").is_none());
//!
//! let again = service.oneshot(send()).await?;
//! assert_eq!(again.status(), StatusCode::OK);
//! assert_eq!(again.headers()["webhook-guard-duplicate"], "true");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::request::Parts;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::VerifyError;
use crate::scheme::{Delivery, Identity, Scheme};
use crate::verify::Verifier;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use memory::{MemoryGuard, DEFAULT_MAX_ENTRIES};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresGuard, DEFAULT_CLEAN_UP_EVERY};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisGuard, DEFAULT_REDIS_PREFIX};

/// Default for [`ReplayProtection::lease`]: a reservation whose holder neither finished nor
/// released it is given up after 60 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Added to the verifier's tolerance window for the default retention
/// ([`ReplayProtection::retention`]): 60 s, for clocks that drift.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(60);

/// The first byte hashed into a [`DeliveryKey`]: the version of its format. Guards shared by
/// instances (PostgreSQL, Redis) hold keys of one version; a change of format is a change of
/// this byte.
const KEY_FORMAT: u8 = 2;

/// The longest message SHA-256 hashes in one block: 64 bytes less the padding's `0x80` and the
/// 8-byte length.
const ONE_BLOCK: usize = 55;

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Feeds a [`DeliveryKey`]'s input up to its identity to `out`: the format byte; the
/// namespace, project and scheme name, each after its length in LEB128; `marker`.
fn key_input(
    namespace: &str,
    project: &str,
    scheme: &str,
    marker: u8,
    out: &mut impl FnMut(&[u8]),
) {
    out(&[KEY_FORMAT]);
    for field in [namespace, project, scheme] {
        let mut len = field.len();
        let mut prefix = arrayvec::ArrayVec::<u8, 10>::new();
        loop {
            let low = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                prefix.push(low);
                break;
            }
            prefix.push(low | 0x80);
        }
        out(&prefix);
        out(field.as_bytes());
    }
    out(&[marker]);
}

/// Hashes a [`DeliveryKey`]'s input in one pass: kept aside while it fits one block (then
/// [`one_block`]), handed to the streaming hasher from the first part that does not.
#[derive(Default)]
struct KeyHasher {
    short: arrayvec::ArrayVec<u8, ONE_BLOCK>,
    long: Option<Sha256>,
}

impl KeyHasher {
    fn update(&mut self, part: &[u8]) {
        match &mut self.long {
            Some(hash) => hash.update(part),
            None => {
                if self.short.try_extend_from_slice(part).is_err() {
                    let mut hash = Sha256::new();
                    hash.update(&self.short);
                    hash.update(part);
                    self.long = Some(hash);
                }
            }
        }
    }

    fn finish(self) -> [u8; 32] {
        match self.long {
            Some(hash) => hash.finalize().into(),
            None => one_block(&self.short),
        }
    }
}

/// The SHA-256 of a message of at most [`ONE_BLOCK`] bytes: padded here (FIPS 180-4, 5.1.1)
/// and compressed once by `sha2`, without the streaming hasher's buffering and state copies,
/// which cost more than the compression itself for a message this short.
fn one_block(message: &[u8]) -> [u8; 32] {
    debug_assert!(message.len() <= ONE_BLOCK);
    let mut block = [0u8; 64];
    block[..message.len()].copy_from_slice(message);
    block[message.len()] = 0x80;
    let bits = (message.len() as u64) * 8;
    block[56..].copy_from_slice(&bits.to_be_bytes());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &[block]);
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// The header on the 200 answered for a delivery already handled.
pub const DUPLICATE_HEADER: &str = "webhook-guard-duplicate";

/// What identifies a verified delivery in a [`ReplayGuard`]: a SHA-256 over the namespace, the
/// project, the scheme and the delivery's [`Identity`] (see the [module docs](self)).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey([u8; 32]);

impl DeliveryKey {
    /// The key of a delivery that [`Verifier::verify`] (or `verify_at`, `verify_url_at`)
    /// accepted: `url` is the URL the sender signed, for schemes that sign it, and `namespace`
    /// keeps apart receivers sharing a guard (a project id, say).
    ///
    /// Compute it only after the delivery verified: the key says nothing about whether it is
    /// genuine.
    ///
    /// # Errors
    ///
    /// The [`VerifyError`] parsing the headers gives, as verifying them did.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::replay::DeliveryKey;
    /// use webhook_guard::{scheme::StandardWebhooks, Keyring, Secret, Signer, Verifier};
    ///
    /// let secret = Secret::from_bytes("s")?;
    /// let verifier = Verifier::new(StandardWebhooks, Keyring::new(secret.clone()));
    /// let signer = Signer::new(StandardWebhooks, secret);
    /// let first = signer.sign_at(b"{}", "msg_1", chrono::Utc::now())?;
    /// verifier.verify(&first, b"{}")?;
    /// // The sender's retry: the same id, signed again later.
    /// let later = chrono::Utc::now() + chrono::Duration::seconds(30);
    /// let retry = signer.sign_at(b"{}", "msg_1", later)?;
    /// assert_eq!(
    ///     DeliveryKey::of(&verifier, &first, None, b"{}", "prj_1")?,
    ///     DeliveryKey::of(&verifier, &retry, None, b"{}", "prj_1")?,
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(
        verifier: &Verifier,
        headers: &HeaderMap,
        url: Option<&str>,
        body: &[u8],
        namespace: &str,
    ) -> Result<Self, VerifyError> {
        let scope = KeyScope {
            namespace,
            project: None,
        };
        Self::derive(verifier, headers, url, body, scope)
    }

    /// The key of a request that [`Verifier::verify_request`] accepted, the URL found as it
    /// finds it.
    ///
    /// # Errors
    ///
    /// As for [`of`](DeliveryKey::of), and [`VerifyError::UrlRequired`] as for
    /// `verify_request`.
    pub fn of_request(
        verifier: &Verifier,
        request: &Parts,
        body: &[u8],
        namespace: &str,
    ) -> Result<Self, VerifyError> {
        let scope = KeyScope {
            namespace,
            project: None,
        };
        Self::of_request_in(verifier, request, body, scope)
    }

    /// Verifies `request` as [`Verifier::verify_request`] does, also giving the delivery's key
    /// in `scope`, made from the headers verification parsed (not parsed again), and only with
    /// a success.
    pub(crate) fn verified(
        verifier: &Verifier,
        request: &Parts,
        body: &[u8],
        scope: KeyScope<'_>,
    ) -> Result<(crate::Verified, Self), VerifyError> {
        let scheme = verifier.scheme();
        verifier.verify_request_then(request, body, verifier.now(), |delivery, body| {
            Self::hash(scope.namespace, scope.project, scheme, delivery, body)
        })
    }

    /// The key of a request verified already, its headers parsed again (the layer's way when
    /// verification could not give it: a body MACed as it streamed in).
    pub(crate) fn of_request_in(
        verifier: &Verifier,
        request: &Parts,
        body: &[u8],
        scope: KeyScope<'_>,
    ) -> Result<Self, VerifyError> {
        let url = match verifier.scheme().uses_url() {
            true => Some(verifier.public_url(request)?),
            false => None,
        };
        let headers = &request.headers;
        Self::derive(verifier, headers, url.as_deref(), body, scope)
    }

    fn derive(
        verifier: &Verifier,
        headers: &HeaderMap,
        url: Option<&str>,
        body: &[u8],
        scope: KeyScope<'_>,
    ) -> Result<Self, VerifyError> {
        let scheme = verifier.scheme();
        let mut delivery = Delivery::new();
        delivery.set_request(url, body);
        scheme.parse(headers, &mut delivery)?;
        Ok(Self::hash(
            scope.namespace,
            scope.project,
            scheme,
            &delivery,
            body,
        ))
    }

    /// The format's version byte, then the namespace, project and scheme name, each prefixed
    /// with its length (LEB128), then `i` and the signed id or `c` and the signed content: no
    /// two inputs share a key. An input of up to 55 bytes is one SHA-256 block (a Svix id of 31
    /// bytes under `standard-webhooks` without a namespace or project is 53), hashed with
    /// [`one_block`]; a longer one with the streaming hasher ([`KeyHasher`]).
    fn hash(
        namespace: &str,
        project: Option<&str>,
        scheme: &dyn Scheme,
        delivery: &Delivery<'_>,
        body: &[u8],
    ) -> Self {
        // No project id is empty (`ProjectId` refuses it): "none" cannot be confused.
        let project = project.unwrap_or("");
        let mut hash = KeyHasher::default();
        let mut out = |part: &[u8]| hash.update(part);
        match scheme.identity(delivery) {
            Identity::Id(id) => {
                key_input(namespace, project, scheme.name(), b'i', &mut out);
                out(id.as_bytes());
            }
            Identity::Content => {
                key_input(namespace, project, scheme.name(), b'c', &mut out);
                scheme.signed_content(delivery, body, &mut out);
            }
        }
        Self(hash.finish())
    }

    /// A key made of these 32 bytes, as [`as_bytes`](DeliveryKey::as_bytes) gave them (a guard
    /// reading its own records back).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryKey({})", hex::encode(&self.0[..8]))
    }
}

/// Where a [`DeliveryKey`] is computed: the guard's namespace and the request's project, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyScope<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) project: Option<&'a str>,
}

/// Names one reservation, so only its holder releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u128);

impl Token {
    /// A random token, for guards shared by several processes.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        // An all-zero token only weakens the release check, which the lease backs up.
        let _ = getrandom::fill(&mut bytes);
        Self(u128::from_le_bytes(bytes))
    }

    /// The token with this value.
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// Its value.
    pub fn as_u128(&self) -> u128 {
        self.0
    }
}

/// What [`ReplayGuard::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The key was free and is now reserved under this token: handle the delivery.
    Reserved(Token),
    /// The delivery was handled already.
    Done,
    /// Another copy holds the reservation; its lease ends in about `retry_after`.
    InProgress {
        /// Until the lease ends, at most.
        retry_after: Duration,
    },
}

/// Why a [`ReplayGuard`] could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The guard holds as many entries as it may, none of them expired: new deliveries are
    /// refused rather than forgetting deliveries still within their window.
    #[error("the replay guard holds its maximum of {max} live entries")]
    Full {
        /// The most entries it holds.
        max: usize,
    },
    /// The backend did not answer (connection refused or lost, timed out, an error reply).
    #[error("the {backend} replay guard is unavailable: {reason}")]
    Unavailable {
        /// `"postgres"`, `"redis"`, ...
        backend: &'static str,
        /// The backend's error, for logs.
        reason: String,
    },
}

type BoxedGuardFuture<T> = Pin<Box<dyn Future<Output = Result<T, GuardError>> + Send + 'static>>;

/// The answer of a [`ReplayGuard`] call: ready at once (the memory guard: no allocation) or a
/// boxed future (a network round trip).
#[must_use = "futures do nothing unless polled"]
pub struct GuardFuture<T>(Inner<T>);

enum Inner<T> {
    Ready(Option<Result<T, GuardError>>),
    Boxed(BoxedGuardFuture<T>),
}

impl<T> GuardFuture<T> {
    /// An answer known now.
    pub fn ready(result: Result<T, GuardError>) -> Self {
        Self(Inner::Ready(Some(result)))
    }

    /// An answer `future` will give.
    pub fn new<F>(future: F) -> Self
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
    {
        Self(Inner::Boxed(Box::pin(future)))
    }
}

impl<T: Unpin> Future for GuardFuture<T> {
    type Output = Result<T, GuardError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Inner::Ready(result) => Poll::Ready(
                result
                    .take()
                    .unwrap_or_else(|| unreachable!("polled after completion")),
            ),
            Inner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for GuardFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            Inner::Ready(_) => "ready",
            Inner::Boxed(_) => "pending",
        };
        f.debug_tuple("GuardFuture").field(&state).finish()
    }
}

/// Remembers which deliveries were handled: reserve a key before handling, mark it done after,
/// release it when handling failed. Implemented by [`MemoryGuard`], `PostgresGuard` and
/// `RedisGuard`; see the [module docs](self).
pub trait ReplayGuard: fmt::Debug + Send + Sync + 'static {
    /// Reserves `key` for `lease` unless it is reserved or done: one atomic check-and-set.
    fn reserve(&self, key: &DeliveryKey, lease: Duration) -> GuardFuture<Claim>;

    /// Marks `key` done, kept for `retention`: the delivery was handled. A guard may count the
    /// retention from the reservation rather than from now ([`MemoryGuard`] does): the default
    /// retention covers the tolerance window both ways from the moment the delivery verified.
    fn complete(&self, key: &DeliveryKey, token: Token, retention: Duration) -> GuardFuture<()>;

    /// Gives up the reservation `token` holds on `key`, so a retry is handled; a reservation
    /// another holder took since (after the lease ended) is left alone.
    fn release(&self, key: &DeliveryKey, token: Token) -> GuardFuture<()>;

    /// Releases without waiting, from a destructor (a handler's future dropped or panicked).
    /// Default: nothing, and the reservation ends with its lease.
    fn abandon(&self, key: &DeliveryKey, token: Token) {
        let _ = (key, token);
    }

    /// A short name for logs: `"memory"`, `"postgres"`, `"redis"`.
    fn name(&self) -> &'static str;
}

/// What to do with a verified delivery while the guard's backend is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Outage {
    /// Refuse it with 503 and `Retry-After`: the sender retries later, and nothing is handled
    /// twice. The default.
    #[default]
    FailClosed,
    /// Handle it without the duplicate check: nothing is refused, but a copy may be handled
    /// twice while the backend is down.
    FailOpen,
}

/// Replay protection settings around a [`ReplayGuard`]: lease, retention, namespace and the
/// outage policy. For [`WebhookLayer::replay_protection`](crate::middleware::WebhookLayer::replay_protection),
/// or called directly with [`admit`](ReplayProtection::admit). Cloning is cheap; clones share
/// the guard.
#[derive(Clone)]
pub struct ReplayProtection {
    shared: Arc<Shared>,
}

struct Shared {
    guard: Arc<dyn ReplayGuard>,
    lease: Duration,
    retention: Option<Duration>,
    outage: Outage,
    namespace: String,
    /// Whether the last call reached the backend, to log each change once.
    available: AtomicBool,
}

impl ReplayProtection {
    /// Protection with `guard`, a lease of [`DEFAULT_LEASE`], the default retention, no
    /// namespace and [`Outage::FailClosed`].
    pub fn new(guard: impl ReplayGuard) -> Self {
        Self::shared(Arc::new(guard))
    }

    /// As [`new`](ReplayProtection::new), with a guard already shared.
    pub fn shared(guard: Arc<dyn ReplayGuard>) -> Self {
        Self {
            shared: Arc::new(Shared {
                guard,
                lease: DEFAULT_LEASE,
                retention: None,
                outage: Outage::FailClosed,
                namespace: String::new(),
                available: AtomicBool::new(true),
            }),
        }
    }

    /// How long a reservation lasts when its holder neither finishes nor releases it (a killed
    /// process): a copy arriving after that is handled. Longer than the slowest handler.
    /// Default: [`DEFAULT_LEASE`] (60 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.edit(|s| s.lease = lease);
        self
    }

    /// How long a handled delivery is remembered. Default: the verifier's
    /// [tolerance window](Verifier::tolerance_window) (past and future, 600 s for most schemes)
    /// plus [`RETENTION_MARGIN`]. Set it longer (days) for schemes that sign no timestamp.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.edit(|s| s.retention = Some(retention));
        self
    }

    /// What to do while the backend is unavailable. Default: [`Outage::FailClosed`].
    pub fn on_outage(mut self, outage: Outage) -> Self {
        self.edit(|s| s.outage = outage);
        self
    }

    /// Keeps this receiver's deliveries apart from others sharing the same backend (another
    /// service, another environment). The project a request names is added to it. Default:
    /// empty.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.edit(|s| s.namespace = namespace);
        self
    }

    fn edit(&mut self, change: impl FnOnce(&mut Shared)) {
        if Arc::get_mut(&mut self.shared).is_none() {
            let s = &self.shared;
            self.shared = Arc::new(Shared {
                guard: Arc::clone(&s.guard),
                lease: s.lease,
                retention: s.retention,
                outage: s.outage,
                namespace: s.namespace.clone(),
                available: AtomicBool::new(s.available.load(Ordering::Relaxed)),
            });
        }
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            change(shared);
        }
    }

    /// The namespace.
    pub fn namespace_str(&self) -> &str {
        &self.shared.namespace
    }

    /// The guard.
    pub fn guard(&self) -> &dyn ReplayGuard {
        &*self.shared.guard
    }

    /// How long a delivery verified by `verifier` is remembered once handled.
    pub fn retention_for(&self, verifier: &Verifier) -> Duration {
        self.shared
            .retention
            .unwrap_or_else(|| verifier.tolerance_window().saturating_add(RETENTION_MARGIN))
    }

    /// Reserves `key`, a delivery `verifier` accepted, before handling it. With
    /// [`Admission::Handle`], handle the delivery, then [`Ticket::complete`] on success or
    /// [`Ticket::release`] on failure (dropping the ticket releases too).
    ///
    /// # Errors
    ///
    /// [`GuardError::Full`]; [`GuardError::Unavailable`] under [`Outage::FailClosed`] (under
    /// [`Outage::FailOpen`] an unguarded [`Admission::Handle`] instead).
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::replay::{Admission, DeliveryKey, MemoryGuard, ReplayProtection};
    /// use webhook_guard::{scheme::StandardWebhooks, Keyring, Secret, Signer, Verifier};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let secret = Secret::from_bytes("s")?;
    /// let verifier = Verifier::new(StandardWebhooks, Keyring::new(secret.clone()));
    /// let protection = ReplayProtection::new(MemoryGuard::new(1000));
    /// let headers = Signer::new(StandardWebhooks, secret).sign(b"{}")?;
    ///
    /// for expected_first in [true, false] {
    ///     verifier.verify(&headers, b"{}")?;
    ///     let key = DeliveryKey::of(&verifier, &headers, None, b"{}", "")?;
    ///     match protection.admit(key, &verifier).await? {
    ///         Admission::Handle(ticket) => {
    ///             assert!(expected_first);
    ///             // ... handle it, then:
    ///             ticket.complete().await?;
    ///         }
    ///         Admission::Duplicate => assert!(!expected_first),
    ///         other => panic!("{other:?}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn admit(&self, key: DeliveryKey, verifier: &Verifier) -> Admitting {
        let shared = &self.shared;
        Admitting {
            future: shared.guard.reserve(&key, shared.lease),
            shared: Some(Arc::clone(shared)),
            key,
            retention: self.retention_for(verifier),
        }
    }
}

impl Shared {
    /// Logs a change between reachable and unreachable, once each way.
    fn observe<T>(&self, result: &Result<T, GuardError>) {
        match result {
            Err(GuardError::Unavailable { reason, .. }) => {
                if self.available.swap(false, Ordering::Relaxed) {
                    let backend = self.guard.name();
                    let policy = match self.outage {
                        Outage::FailClosed => "failing closed: verified deliveries are answered 503 until it is back",
                        Outage::FailOpen => "failing open: verified deliveries are handled without the duplicate check until it is back",
                    };
                    tracing::warn!(backend, reason = %reason, "replay guard unavailable; {policy}");
                }
            }
            _ => {
                if !self.available.load(Ordering::Relaxed)
                    && !self.available.swap(true, Ordering::Relaxed)
                {
                    let backend = self.guard.name();
                    tracing::warn!(backend, "replay guard available again");
                }
            }
        }
    }
}

impl fmt::Debug for ReplayProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("ReplayProtection")
            .field("guard", &s.guard)
            .field("lease", &s.lease)
            .field("retention", &s.retention)
            .field("outage", &s.outage)
            .field("namespace", &s.namespace)
            .finish()
    }
}

/// What [`ReplayProtection::admit`] decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// Handle the delivery, then complete or release the ticket.
    Handle(Ticket),
    /// It was handled already: answer success without handling it again.
    Duplicate,
    /// Another copy is being handled: ask the sender to retry after `retry_after`.
    InProgress {
        /// About when the other copy's lease ends.
        retry_after: Duration,
    },
}

/// The future [`ReplayProtection::admit`] returns.
#[must_use = "futures do nothing unless polled"]
pub struct Admitting {
    future: GuardFuture<Claim>,
    /// Moved into the ticket once the guard answered.
    shared: Option<Arc<Shared>>,
    key: DeliveryKey,
    retention: Duration,
}

impl fmt::Debug for Admitting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admitting")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Future for Admitting {
    type Output = Result<Admission, GuardError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.future).poll(cx));
        let shared = self
            .shared
            .take()
            .unwrap_or_else(|| unreachable!("polled after completion"));
        shared.observe(&result);
        let ticket = |held| Ticket {
            held,
            key: self.key,
            retention: self.retention,
        };
        Poll::Ready(match result {
            Ok(Claim::Reserved(token)) => {
                Ok(Admission::Handle(ticket(Some(Held { shared, token }))))
            }
            Ok(Claim::Done) => Ok(Admission::Duplicate),
            Ok(Claim::InProgress { retry_after }) => Ok(Admission::InProgress { retry_after }),
            Err(GuardError::Unavailable { .. }) if shared.outage == Outage::FailOpen => {
                Ok(Admission::Handle(ticket(None)))
            }
            Err(e) => Err(e),
        })
    }
}

/// A reserved delivery: [`complete`](Ticket::complete) it once handled,
/// [`release`](Ticket::release) it when handling failed. Dropped unused, it is released
/// ([`ReplayGuard::abandon`]).
pub struct Ticket {
    /// `None`: admitted unguarded while the backend was down ([`Outage::FailOpen`]).
    held: Option<Held>,
    key: DeliveryKey,
    retention: Duration,
}

/// A reservation in the guard, and the guard.
struct Held {
    shared: Arc<Shared>,
    token: Token,
}

impl Ticket {
    /// The delivery's key.
    pub fn key(&self) -> &DeliveryKey {
        &self.key
    }

    /// False when the delivery was admitted without a reservation, the backend being down
    /// under [`Outage::FailOpen`].
    pub fn is_guarded(&self) -> bool {
        self.held.is_some()
    }

    /// Marks the delivery handled: copies arriving within the retention window are duplicates.
    pub fn complete(mut self) -> Finishing {
        // An unguarded ticket reached no backend: it says nothing of its health.
        match self.held.take() {
            Some(Held { shared, token }) => Finishing {
                future: shared.guard.complete(&self.key, token, self.retention),
                shared: Some(shared),
            },
            None => Finishing {
                future: GuardFuture::ready(Ok(())),
                shared: None,
            },
        }
    }

    /// Gives the reservation up: the sender's retry is handled.
    pub fn release(mut self) -> Finishing {
        // An unguarded ticket reached no backend: it says nothing of its health.
        match self.held.take() {
            Some(Held { shared, token }) => Finishing {
                future: shared.guard.release(&self.key, token),
                shared: Some(shared),
            },
            None => Finishing {
                future: GuardFuture::ready(Ok(())),
                shared: None,
            },
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(Held { shared, token }) = self.held.take() {
            shared.guard.abandon(&self.key, token);
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("key", &self.key)
            .field("guarded", &self.held.is_some())
            .finish()
    }
}

/// The future of [`Ticket::complete`] and [`Ticket::release`].
#[must_use = "futures do nothing unless polled"]
pub struct Finishing {
    future: GuardFuture<()>,
    shared: Option<Arc<Shared>>,
}

impl fmt::Debug for Finishing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finishing")
            .field("future", &self.future)
            .finish_non_exhaustive()
    }
}

impl Future for Finishing {
    type Output = Result<(), GuardError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.future).poll(cx));
        if let Some(shared) = &self.shared {
            shared.observe(&result);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{GitHub, StandardWebhooks, Stripe};
    use crate::{Keyring, Secret, Signer};

    fn key(verifier: &Verifier, headers: &HeaderMap, body: &[u8], ns: &str) -> DeliveryKey {
        DeliveryKey::of(verifier, headers, None, body, ns).unwrap()
    }

    #[test]
    fn namespace_project_and_scheme_keep_keys_apart() {
        let secret = Secret::from_bytes("s").unwrap();
        let verifier = Verifier::new(StandardWebhooks, Keyring::new(secret.clone()));
        let headers = Signer::new(StandardWebhooks, secret).sign(b"{}").unwrap();
        let a = key(&verifier, &headers, b"{}", "a");
        assert_eq!(a, key(&verifier, &headers, b"{}", "a"));
        assert_ne!(a, key(&verifier, &headers, b"{}", "b"));
        let parts = |headers: &HeaderMap| {
            let mut r = http::Request::post("/").body(()).unwrap();
            *r.headers_mut() = headers.clone();
            r.into_parts().0
        };
        let p = |namespace, project| {
            let scope = KeyScope { namespace, project };
            DeliveryKey::of_request_in(&verifier, &parts(&headers), b"{}", scope).unwrap()
        };
        assert_eq!(p("a", None), a);
        assert_ne!(p("a", Some("b")), a);
        assert_ne!(p("", Some("a")), p("a", None));
        assert_ne!(p("a", Some("b")), p("ab", None));
    }

    /// The one-block SHA-256 against FIPS 180-2's published vector and against `sha2`'s
    /// streaming hasher at every length it takes.
    #[test]
    fn one_block_is_sha256() {
        assert_eq!(
            hex::encode(one_block(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for len in 0..=ONE_BLOCK {
            let message: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(
                one_block(&message)[..],
                Sha256::digest(&message)[..],
                "{len} bytes"
            );
        }
    }

    /// The key's format, pinned by digests computed outside this crate (Python's `hashlib`
    /// over the bytes the format documents): instances sharing a guard must agree on it.
    #[test]
    fn key_format_2() {
        let secret = Secret::from_bytes("s").unwrap();
        let at = chrono::Utc::now();
        let verifier = Verifier::new(StandardWebhooks, Keyring::new(secret.clone()));
        let headers = Signer::new(StandardWebhooks, secret.clone())
            .sign_at(b"{}", "msg_1", at)
            .unwrap();
        // sha256(b"\x02" b"\x00" b"\x00" b"\x11standard-webhooks" b"i" b"msg_1"): one block.
        assert_eq!(
            key(&verifier, &headers, b"{}", "").to_hex(),
            "d79fc9791e04991ea4773486add68dae92fa19cd4f6c614dba67bb94f229dde3"
        );
        // A namespace of 200 bytes: its length takes two LEB128 bytes, 0xc8 0x01.
        assert_eq!(
            key(&verifier, &headers, b"{}", &"n".repeat(200)).to_hex(),
            "8c7a47b4526aba44f8381ecf7512cacc8018ed238db566f6fd8691f2ad987bb7"
        );
        // The same with an id of 40 bytes: 62 in all, two blocks.
        let long = format!("msg_{}", "x".repeat(36));
        let headers = Signer::new(StandardWebhooks, secret.clone())
            .sign_at(b"{}", &long, at)
            .unwrap();
        assert_eq!(
            key(&verifier, &headers, b"{}", "").to_hex(),
            "b518baebd490e033be999a08e9ad9f5dc96828ec87bba7b0e1b36a5df44f8981"
        );
        let verifier = Verifier::new(GitHub, Keyring::new(secret.clone()));
        let content_key = |body: &[u8]| {
            let mut request = http::Request::post("/").body(()).unwrap();
            *request.headers_mut() = Signer::new(GitHub, secret.clone()).sign(body).unwrap();
            let scope = KeyScope {
                namespace: "n",
                project: Some("prj_1"),
            };
            DeliveryKey::of_request_in(&verifier, &request.into_parts().0, body, scope)
                .unwrap()
                .to_hex()
        };
        // sha256(b"\x02" b"\x01n" b"\x05prj_1" b"\x06github" b"c" b"{}"): one block.
        assert_eq!(
            content_key(b"{}"),
            "a55b0cb5666c510964fe492e1bef0020893bf436851ee82c4e6dc35914e5636a"
        );
        // The same with a body of 98 bytes: the content spills into the streaming hasher.
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(90));
        assert_eq!(
            content_key(long.as_bytes()),
            "45a943ca3f90eee64eff392ac88b0db24f2b095263101a1a51126937ce2b58cc"
        );
    }

    /// The layer takes the key verification computed from the headers it parsed; it must be
    /// the key parsing them again gives, for an id in a header, an id in the body, content
    /// alone, and a signed URL.
    #[test]
    fn verification_gives_the_key_parsing_again_gives() {
        use crate::scheme::{Scheme, Slack, Square};
        let secret = Secret::from_bytes("s").unwrap();
        let url = "https://example.com/hooks?a=1";
        type MakeScheme = fn() -> Box<dyn Scheme>;
        let cases: [(MakeScheme, &[u8]); 5] = [
            (|| Box::new(StandardWebhooks), b"{}"),
            (|| Box::new(GitHub), b"{}"),
            (|| Box::new(Stripe), br#"{"id":"evt_1"}"#),
            (|| Box::new(Slack), b"token=x&text=hi"),
            (|| Box::new(Square), b"{}"),
        ];
        for (scheme, body) in cases {
            let name = scheme().name();
            let verifier = Verifier::new(scheme(), Keyring::new(secret.clone()))
                .public_base_url("https://example.com");
            let headers = Signer::new(scheme(), secret.clone())
                .url(url)
                .sign(body)
                .unwrap();
            let mut request = http::Request::post("/hooks?a=1").body(()).unwrap();
            *request.headers_mut() = headers;
            let parts = request.into_parts().0;
            for project in [None, Some("prj_1")] {
                let scope = KeyScope {
                    namespace: "ns",
                    project,
                };
                let (_, key) = DeliveryKey::verified(&verifier, &parts, body, scope).unwrap();
                let again = DeliveryKey::of_request_in(&verifier, &parts, body, scope).unwrap();
                assert_eq!(key, again, "{name}, project {project:?}");
            }
            let other = KeyScope {
                namespace: "other",
                project: None,
            };
            let (_, key) = DeliveryKey::verified(&verifier, &parts, body, other).unwrap();
            let scope = KeyScope {
                namespace: "ns",
                project: None,
            };
            let again = DeliveryKey::of_request_in(&verifier, &parts, body, scope).unwrap();
            assert_ne!(key, again, "{name}: the namespace is part of the key");
        }
    }

    #[test]
    fn stripe_is_identified_by_its_event_id_across_timestamps() {
        let secret = Secret::from_bytes("s").unwrap();
        let verifier = Verifier::new(Stripe, Keyring::new(secret.clone()));
        let signer = Signer::new(Stripe, secret);
        let body = br#"{"id":"evt_1","object":"event"}"#;
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let first = signer.sign_at(body, "", at).unwrap();
        let retry = signer
            .sign_at(body, "", at + chrono::Duration::seconds(60))
            .unwrap();
        assert_eq!(
            key(&verifier, &first, body, ""),
            key(&verifier, &retry, body, "")
        );
        // No event id: the timestamp is part of the key.
        let first = signer.sign_at(b"{}", "", at).unwrap();
        let retry = signer
            .sign_at(b"{}", "", at + chrono::Duration::seconds(60))
            .unwrap();
        assert_ne!(
            key(&verifier, &first, b"{}", ""),
            key(&verifier, &retry, b"{}", "")
        );
    }

    #[test]
    fn github_ignores_the_unsigned_delivery_header() {
        let secret = Secret::from_bytes("s").unwrap();
        let verifier = Verifier::new(GitHub, Keyring::new(secret.clone()));
        let mut headers = Signer::new(GitHub, secret).sign(b"{}").unwrap();
        let a = key(&verifier, &headers, b"{}", "");
        headers.insert("x-github-delivery", "two".parse().unwrap());
        assert_eq!(a, key(&verifier, &headers, b"{}", ""));
        assert_ne!(a, key(&verifier, &headers, b"{ }", ""));
    }
}
