use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response};
use http_body::Body;
use http_body_util::{Full, Limited};
use tower_service::Service;

use super::budget::{Reservation, LARGE_BODY};
use super::future::ResponseFuture;
use super::layer::Config;
use super::{Rejection, ResponseBody, WebhookLayer};
use crate::verify::Verifier;

/// Verifies each request's webhook signature before calling the inner service.
///
/// Made by [`WebhookLayer`]; see the [module docs](crate::middleware).
#[derive(Clone)]
pub struct WebhookService<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S> WebhookService<S> {
    /// Wraps `inner` with the default settings; same as `WebhookLayer::new(verifier).layer(inner)`.
    pub fn new(inner: S, verifier: Verifier) -> Self {
        tower_layer::Layer::layer(&WebhookLayer::new(verifier), inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WebhookService<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was driven ready is the one that must be called; keep a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.config;
        let answered = |response| ResponseFuture::answered(response, Arc::clone(config));
        let limit = config.max_body_size;
        let (mut parts, body) = request.into_parts();
        // The request's verifier is looked up once, before anything is read; an unknown
        // project is answered without touching the body or the budget.
        let verifier = match config.verifiers.resolve(&parts) {
            Ok((verifier, project)) => {
                if let Some(project) = project {
                    // Reaches the inner service only with the request, on success.
                    parts.extensions.insert(project);
                }
                verifier
            }
            Err(rejection) => return answered(config.reject(None, rejection)),
        };
        if let Some(answer) = verifier.scheme().preflight(&parts) {
            tracing::debug!(
                scheme = verifier.scheme().name(),
                "answered a sender's endpoint check"
            );
            return answered(answer.map(Full::new));
        }
        let declared = declared_length(&parts.headers).max(body.size_hint().lower());
        if declared > limit as u64 {
            return answered(config.reject(Some(&verifier), Rejection::BodyTooLarge { limit }));
        }
        // A body that may be large or whose length is unknown is MACed frame by frame as it
        // arrives, where the scheme allows (its headers, timestamp and URL are then checked
        // before the body is read); one announced as small is MACed once complete, which
        // costs less than setting up the per-key MACs (`WebhookLayer::stream_from`).
        let stream = config.stream_from.is_some_and(|from| {
            body.size_hint()
                .upper()
                .is_none_or(|announced| announced >= from)
        });
        let body_mac = match stream {
            false => None,
            true => match verifier.begin_body(&parts, verifier.now()) {
                Ok(body_mac) => body_mac,
                Err(e) => return answered(config.reject(Some(&verifier), Rejection::Verify(e))),
            },
        };
        // Announced lengths are only a hint for the buffer, and never above the limit.
        let expected = usize::try_from(declared).unwrap_or(limit).min(limit);
        // The announced length is reserved before any of the body is read; a large body's
        // when its turn to be read comes (waiting, it holds no bytes).
        let mut reservation = Reservation::new(&config.budget);
        if expected < LARGE_BODY && !reservation.grow_to(expected) {
            return answered(config.reject(Some(&verifier), config.over_capacity()));
        }
        let body = Limited::new(body, limit);
        ResponseFuture::collecting(
            body,
            expected,
            reservation,
            body_mac,
            parts,
            inner,
            verifier,
            Arc::clone(config),
        )
    }
}

/// The `Content-Length` value when it is one well-formed number, else 0 (the body's own limit
/// still applies; hyper refuses conflicting lengths before we see them).
fn declared_length(headers: &http::HeaderMap) -> u64 {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

impl<S: fmt::Debug> fmt::Debug for WebhookService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("inner", &self.inner)
            .field("verifier", &self.config.verifiers)
            .field("max_body_size", &self.config.max_body_size)
            .field("stream_from", &self.config.stream_from)
            .finish()
    }
}
