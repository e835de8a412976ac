//! [`Gateway`]: forwards a verified delivery to its project's [`Upstream`] and passes the
//! upstream's answer back.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connect::{tls_config, CheckedConnector, ConnectError};
use super::policy::{PolicyError, UpstreamPolicy, UpstreamUrl};
use crate::keyring::KeyRole;
use crate::problem::{Kind, Problem};
use crate::projects::ProjectId;
use crate::scheme::StandardWebhooks;
use crate::secret::Secret;
use crate::sign::Signer;
use crate::verified::Verified;

/// The header naming the project a forwarded delivery was verified for.
pub const PROJECT_ID_HEADER: &str = "webhook-guard-project-id";
/// The header naming the key whose signature matched.
pub const KEY_ID_HEADER: &str = "webhook-guard-key-id";
/// The header saying whether that key was `current` or in its `grace` period.
pub const KEY_ROLE_HEADER: &str = "webhook-guard-key-role";
/// The header carrying the sender's signed webhook id, for schemes that sign one.
pub const WEBHOOK_ID_HEADER: &str = "webhook-guard-webhook-id";
/// The header carrying the signed timestamp (seconds since the Unix epoch), for schemes that
/// sign one.
pub const TIMESTAMP_HEADER: &str = "webhook-guard-timestamp";

/// The prefix of every header the gateway sets; the sender's headers with it are removed.
const OUTCOME_PREFIX: &str = "webhook-guard-";

/// Headers that concern one connection only (RFC 9110, section 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Standard Webhooks' headers, replaced when the gateway re-signs.
const STANDARD_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// Where one project's verified deliveries are forwarded, and the secret they are re-signed
/// with, if any.
#[derive(Clone)]
pub struct Upstream {
    url: UpstreamUrl,
    signer: Option<Signer>,
}

impl Upstream {
    /// Forwarding to `url`, as received (no re-signing).
    pub fn new(url: UpstreamUrl) -> Self {
        Self { url, signer: None }
    }

    /// Forwarding re-signed in the Standard Webhooks format (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature: v1,…`) with `secret`, the gateway-to-upstream
    /// secret: the upstream checks deliveries with any Standard Webhooks library and a secret
    /// that does not rotate with the sender's.
    pub fn resigned(mut self, secret: Secret) -> Self {
        self.signer = Some(Signer::new(StandardWebhooks, secret));
        self
    }

    /// The URL.
    pub fn url(&self) -> &UpstreamUrl {
        &self.url
    }

    /// Whether deliveries are re-signed.
    pub fn resigns(&self) -> bool {
        self.signer.is_some()
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("url", &self.url)
            .field("resigns", &self.resigns())
            .finish()
    }
}

/// What became of one verified delivery, put in the response's extensions for the access log
/// and the metrics.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `verified` (no upstream: answered by the gateway), `forwarded` (the upstream answered,
    /// whatever its status), `upstream-unavailable` (502), `upstream-timeout` (504),
    /// `upstream-refused` (502: the destination is not allowed).
    pub outcome: &'static str,
    /// The key whose signature matched.
    pub key_id: crate::keyring::KeyId,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<StatusCode>,
    /// How long forwarding took, when it was tried.
    pub forward_time: Option<Duration>,
}

impl Delivered {
    /// A delivery verified and answered by the gateway itself (its project has no upstream).
    pub fn answered(verified: &Verified) -> Self {
        Self {
            outcome: "verified",
            key_id: verified.key_id().clone(),
            upstream_status: None,
            forward_time: None,
        }
    }
}

/// Forwards verified deliveries over one pool of keep-alive connections
/// ([`hyper_util::client::legacy::Client`] with a [`CheckedConnector`]).
///
/// A delivery is sent once: the gateway retries only a request that never left (the pooled
/// connection had closed before it was written), never one the upstream may have seen. The
/// upstream's status, headers (but hop-by-hop ones) and body come back as they are, redirects
/// included. When the upstream cannot be reached, closes the connection early or sends a body
/// over the limit, the sender gets `502` (`upstream-unavailable`), or `502`
/// (`upstream-refused`) when the destination is not allowed; when it does not answer within the
/// timeout, `504` (`upstream-timeout`); all `application/problem+json`.
///
/// Cloning is cheap; clones share the pool. On a single-threaded runtime (the server's
/// [`workers`](crate::server::Limits::workers)) each thread keeps a pool of its own, so a
/// forward is sent and answered on the thread that received the delivery.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

type UpstreamClient = Client<CheckedConnector, Full<Bytes>>;

thread_local! {
    /// This thread's own pools, one per gateway, when it runs a single-threaded runtime.
    static THREAD_POOLS: RefCell<Vec<(Weak<Inner>, UpstreamClient)>> =
        const { RefCell::new(Vec::new()) };
}

struct Inner {
    client: UpstreamClient,
    connector: CheckedConnector,
    pool_idle: Duration,
    policy: Arc<UpstreamPolicy>,
    timeout: Duration,
    max_response_body: usize,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("policy", &self.inner.policy)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gateway`]; see [`Gateway::builder`].
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    policy: UpstreamPolicy,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_body: usize,
    pool_idle: Duration,
    tls_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl GatewayBuilder {
    /// Also trusts `root` for `https` upstreams, besides the system's roots (a private CA, or
    /// a self-signed upstream's own certificate).
    pub fn tls_root(mut self, root: rustls::pki_types::CertificateDer<'static>) -> Self {
        self.tls_roots.push(root);
        self
    }

    /// How long resolving the upstream's name and connecting may take. Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole forward may take, connecting and the upstream's whole answer included;
    /// after it the sender gets `504`. Default 10 s (keep it below the server's request
    /// timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest upstream answer body passed back; a larger one is a `502`. Default 1 MiB.
    pub fn max_response_body(mut self, max: usize) -> Self {
        self.max_response_body = max;
        self
    }

    /// How long an idle pooled connection is kept. Default 30 s.
    pub fn pool_idle(mut self, idle: Duration) -> Self {
        self.pool_idle = idle;
        self
    }

    /// The gateway. It needs a Tokio runtime to forward (not to be built).
    ///
    /// # Errors
    ///
    /// [`rustls::Error`] when an added root is not a usable certificate.
    pub fn build(self) -> Result<Gateway, rustls::Error> {
        let policy = Arc::new(self.policy);
        let tls = Arc::new(tls_config(&self.tls_roots)?);
        let connector = CheckedConnector::new(Arc::clone(&policy), self.connect_timeout, tls);
        Ok(Gateway {
            inner: Arc::new(Inner {
                client: pool(connector.clone(), self.pool_idle),
                connector,
                pool_idle: self.pool_idle,
                policy,
                timeout: self.timeout,
                max_response_body: self.max_response_body,
            }),
        })
    }
}

/// A client with a pool of its own.
fn pool(connector: CheckedConnector, idle: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle)
        .build(connector)
}

impl Gateway {
    /// The client to forward with: this thread's own on a single-threaded runtime (its pooled
    /// connections' tasks run on this thread too), else the shared one.
    fn client(&self) -> UpstreamClient {
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        if !matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::CurrentThread)) {
            return self.inner.client.clone();
        }
        THREAD_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let ours = Arc::as_ptr(&self.inner);
            if let Some((_, client)) = pools.iter().find(|(g, _)| std::ptr::eq(g.as_ptr(), ours)) {
                return client.clone();
            }
            // A new pool: the pools of gateways dropped since go first.
            pools.retain(|(gateway, _)| gateway.strong_count() > 0);
            let client = pool(self.inner.connector.clone(), self.inner.pool_idle);
            pools.push((Arc::downgrade(&self.inner), client.clone()));
            client
        })
    }

    /// A gateway that forwards where `policy` allows.
    pub fn builder(policy: UpstreamPolicy) -> GatewayBuilder {
        GatewayBuilder {
            policy,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_body: 1024 * 1024,
            pool_idle: Duration::from_secs(30),
            tls_roots: Vec::new(),
        }
    }

    /// The destinations it forwards to.
    pub fn policy(&self) -> &UpstreamPolicy {
        &self.inner.policy
    }

    /// Forwards one verified delivery (`headers` and `body` as received) for `project` to
    /// `upstream`, and answers with what the upstream answered, or a problem document. The
    /// response's extensions hold a [`Delivered`].
    pub async fn forward(
        &self,
        upstream: &Upstream,
        project: &ProjectId,
        verified: &Verified,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let (mut response, outcome, status) =
            match self.send(upstream, project, verified, headers, body).await {
                Ok(response) => {
                    let status = response.status();
                    (response, "forwarded", Some(status))
                }
                Err(failure) => {
                    let kind = failure.kind();
                    (Problem::of(kind).into_http_response(), kind.slug(), None)
                }
            };
        response.extensions_mut().insert(Delivered {
            outcome,
            key_id: verified.key_id().clone(),
            upstream_status: status,
            forward_time: Some(started.elapsed()),
        });
        response
    }

    async fn send(
        &self,
        upstream: &Upstream,
        project: &ProjectId,
        verified: &Verified,
        received: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>, Failure> {
        let headers = forwarded_headers(upstream, project, verified, received, &body)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = upstream.url.uri().clone();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self.client().request(request).await.map_err(|e| {
                tracing::debug!(error = %error_chain(&e), "upstream request failed");
                classify(&e)
            })?;
            let (mut parts, body) = response.into_parts();
            let body = Limited::new(body, self.inner.max_response_body)
                .collect()
                .await
                .map_err(|e| {
                    tracing::debug!(error = %e, "upstream response body failed");
                    Failure::Unavailable
                })?
                .to_bytes();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.remove(header::CONTENT_LENGTH);
            Ok(Response::from_parts(parts, Full::new(body)))
        };
        match tokio::time::timeout(self.inner.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::Timeout),
        }
    }
}

/// Why a forward failed, as the sender is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Unavailable,
    Timeout,
    Refused,
}

impl Failure {
    fn kind(self) -> &'static Kind {
        match self {
            Self::Unavailable => &Kind::UPSTREAM_UNAVAILABLE,
            Self::Timeout => &Kind::UPSTREAM_TIMEOUT,
            Self::Refused => &Kind::UPSTREAM_REFUSED,
        }
    }
}

fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return match connect {
                // A name that does not resolve is unreachable, not forbidden.
                ConnectError::Refused(PolicyError::Unresolved { .. }) => Failure::Unavailable,
                ConnectError::Refused(_) => Failure::Refused,
                ConnectError::Timeout(_) => Failure::Timeout,
                _ => Failure::Unavailable,
            };
        }
        source = cause.source();
    }
    Failure::Unavailable
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Removes the headers `Connection` names and the hop-by-hop headers.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The headers sent upstream: the sender's, without hop-by-hop headers, `Host`,
/// `Content-Length`, `Expect` and any `webhook-guard-*`; then the outcome, and the gateway's
/// Standard Webhooks signature when it re-signs.
fn forwarded_headers(
    upstream: &Upstream,
    project: &ProjectId,
    verified: &Verified,
    received: &HeaderMap,
    body: &[u8],
) -> Result<HeaderMap, Failure> {
    let mut headers = received.clone();
    strip_hop_by_hop(&mut headers);
    for name in [header::HOST, header::CONTENT_LENGTH, header::EXPECT] {
        headers.remove(name);
    }
    let sent: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(OUTCOME_PREFIX))
        .cloned()
        .collect();
    for name in sent {
        headers.remove(name);
    }
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| Failure::Unavailable);
    headers.insert(PROJECT_ID_HEADER, value(project.as_str())?);
    headers.insert(KEY_ID_HEADER, value(verified.key_id().as_str())?);
    headers.insert(
        KEY_ROLE_HEADER,
        HeaderValue::from_static(match verified.role() {
            KeyRole::Current => "current",
            KeyRole::Grace => "grace",
        }),
    );
    if let Some(id) = verified.webhook_id() {
        headers.insert(WEBHOOK_ID_HEADER, value(id)?);
    }
    if let Some(at) = verified.timestamp() {
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from(at.timestamp()));
    }
    if let Some(signer) = &upstream.signer {
        for name in STANDARD_HEADERS {
            headers.remove(name);
        }
        let signed = match verified.webhook_id() {
            Some(id) => signer.sign_at(body, id, chrono::Utc::now()),
            None => signer.sign(body),
        };
        let signed = signed.map_err(|e| {
            tracing::warn!(error = %e, "the delivery could not be re-signed");
            Failure::Unavailable
        })?;
        headers.extend(signed);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_named_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-kept"], "1");
    }
}
