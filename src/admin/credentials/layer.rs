//! [`ApiKeyLayer`]: the Tower layer that lets through only authenticated requests, with the
//! [`Caller`] in their extensions, and limits failed attempts per client address.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::response::Response;
use http::{HeaderValue, Request};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

#[cfg(doc)]
use super::Caller;
use super::Credentials;
use crate::admin::throttle::Buckets;
use crate::problem::Problem;

/// Failed authentications one client address may make at once before the rate applies.
pub const DEFAULT_FAILURE_BURST: u32 = 20;

/// Failed authentications one client address may make per second, on average, past its burst.
pub const DEFAULT_FAILURES_PER_SECOND: u32 = 1;

/// Client addresses whose failures are counted at once (about 100 bytes each).
const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// A Tower layer that lets through only requests with valid credentials
/// ([`Credentials::authenticate`]), with the [`Caller`] in their extensions.
///
/// Others are answered `401` with a [`Problem`] naming the realm, the scope and the request's
/// path, and two `WWW-Authenticate` challenges (RFC 9110 §11.6.1): `ApiKey header="x-api-key"`
/// and `Basic realm="…", charset="UTF-8"`, Basic first when Basic was tried.
///
/// Failed attempts are counted per client address (the `ConnectInfo<SocketAddr>` the server
/// puts in each request; requests without one are not counted): past
/// [`DEFAULT_FAILURE_BURST`] failures, refilled at [`DEFAULT_FAILURES_PER_SECOND`], the
/// address is answered `429` with `Retry-After` before its credentials are looked at. Other
/// addresses are not slowed. See the [credentials](super) docs for an example.
#[derive(Debug, Clone)]
pub struct ApiKeyLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    credentials: Credentials,
    realm: &'static str,
    scope: &'static str,
    basic: HeaderValue,
    api_key: HeaderValue,
    failures: Mutex<Buckets<IpAddr>>,
}

impl ApiKeyLayer {
    /// A layer that authenticates against `credentials`, realm `webhook-guard`, scope `admin`.
    pub fn new(credentials: Credentials) -> Self {
        Self::with(
            credentials,
            "webhook-guard",
            "admin",
            (DEFAULT_FAILURES_PER_SECOND, DEFAULT_FAILURE_BURST),
        )
    }

    fn with(
        credentials: Credentials,
        realm: &'static str,
        scope: &'static str,
        (per_second, burst): (u32, u32),
    ) -> Self {
        Self {
            config: Arc::new(Config {
                credentials,
                realm,
                scope,
                basic: challenge("Basic", realm, ", charset=\"UTF-8\""),
                api_key: challenge("ApiKey", realm, ", header=\"x-api-key\""),
                failures: Mutex::new(Buckets::new(per_second, burst, MAX_TRACKED_ADDRESSES)),
            }),
        }
    }

    fn rate(&self) -> (u32, u32) {
        let failures = self
            .config
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failures.rate()
    }

    /// The realm named in 401 answers and the challenges. Default: `webhook-guard`.
    pub fn realm(self, realm: &'static str) -> Self {
        let rate = self.rate();
        let config = &self.config;
        Self::with(config.credentials.clone(), realm, config.scope, rate)
    }

    /// The scope named in 401 answers. Default: `admin`.
    pub fn scope(self, scope: &'static str) -> Self {
        let rate = self.rate();
        let config = &self.config;
        Self::with(config.credentials.clone(), config.realm, scope, rate)
    }

    /// How many failed authentications one client address may make: `burst` at once, then
    /// `per_second`. Default: [`DEFAULT_FAILURE_BURST`], [`DEFAULT_FAILURES_PER_SECOND`].
    pub fn failed_attempts(self, per_second: u32, burst: u32) -> Self {
        let config = &self.config;
        Self::with(
            config.credentials.clone(),
            config.realm,
            config.scope,
            (per_second, burst),
        )
    }
}

/// `<scheme> realm="<realm>"<rest>`, with the realm as a valid quoted string.
fn challenge(scheme: &str, realm: &str, rest: &str) -> HeaderValue {
    let mut quoted = String::with_capacity(realm.len());
    for c in realm.chars().filter(|c| *c == ' ' || c.is_ascii_graphic()) {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    HeaderValue::from_str(&format!("{scheme} realm=\"{quoted}\"{rest}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic charset=\"UTF-8\""))
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`ApiKeyLayer`].
#[derive(Debug, Clone)]
pub struct ApiKeyService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, B> Service<Request<B>> for ApiKeyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let config = &*self.config;
        let address = request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let now = config.credentials.shared.clock.now();
        if let Some(address) = address {
            let failures = config
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Err(retry_after) = failures.check(&address, now) {
                drop(failures);
                tracing::debug!(%address, "too many failed authentications");
                let problem =
                    Problem::too_many_requests(retry_after).instance(request.uri().path());
                return ResponseFuture::answered(axum::response::IntoResponse::into_response(
                    problem,
                ));
            }
        }
        match config.credentials.authenticate(request.headers()) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                // The service that was driven ready is the one that must be called.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::called(inner.call(request))
            }
            Err(failure) => {
                tracing::debug!(%failure, path = request.uri().path(), "request not authenticated");
                if let Some(address) = address {
                    let mut failures = config
                        .failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    // Already checked: this takes the token the check saw.
                    let _ = failures.take(&address, now);
                }
                let problem = Problem::unauthorized(config.realm, config.scope)
                    .instance(request.uri().path());
                let (first, second) = if failure.basic_tried() {
                    (&config.basic, &config.api_key)
                } else {
                    (&config.api_key, &config.basic)
                };
                let problem = problem.challenge(first.clone()).challenge(second.clone());
                ResponseFuture::answered(axum::response::IntoResponse::into_response(problem))
            }
        }
    }
}

pin_project! {
    /// Response future of [`ApiKeyService`]: the inner service's future, or the 401 answer.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
        },
        Answered {
            response: Option<Response>,
        },
    }
}

impl<F> ResponseFuture<F> {
    fn called(future: F) -> Self {
        Self {
            kind: Kind::Called { future },
        }
    }

    fn answered(response: Response) -> Self {
        Self {
            kind: Kind::Answered {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx),
            KindProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| unreachable!("polled after completion")))),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_are_quoted() {
        assert_eq!(
            challenge("Basic", r#"a "b" \c"#, ", charset=\"UTF-8\""),
            r#"Basic realm="a \"b\" \\c", charset="UTF-8""#
        );
    }
}
