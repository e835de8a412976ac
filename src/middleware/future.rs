use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::budget::{LargeTurn, Reservation, LARGE_BODY};
use super::layer::Config;
use super::{Rejection, ResponseBody};
use crate::projects::ProjectId;
use crate::replay::{Admission, Admitting, DeliveryKey, Finishing, GuardError, KeyScope, Ticket};
use crate::verify::{BodyMac, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// MAC work one poll may do while the body streams in, in bytes MACed times live keys: about
/// 18 µs of HMAC-SHA256 here. 32 KiB gave a small delivery a p50 of 0.6 ms beside 16 forged
/// 1 MiB uploads where 128 KiB gave 2.8 ms, and costs nothing measurable in the layer bench
/// (BENCHMARKS.md, "Fairness").
const MAC_WORK_PER_POLL: usize = 32 * 1024;

/// `Retry-After` of a 503 from the replay guard (full, or its backend down).
const GUARD_RETRY_AFTER_SECS: u64 = 5;

pin_project! {
    /// Response future of [`WebhookService`](super::WebhookService): reads the body, verifies,
    /// then drives the inner service's future.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, S::Future, B, Result<S::Response, S::Error>>,
        config: Arc<Config>,
        // This request's share of the layer's budget for buffered bodies, held until the
        // inner service is done with the body.
        reservation: Option<Reservation>,
        // The delivery's reservation in the replay guard while the inner service handles it;
        // dropped with the future (a panic, a cancelled request), it is released.
        ticket: Option<Ticket>,
        // A large body's turn among the layer's large bodies, held while it is read and
        // verified.
        large: LargeTurn,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, B, O>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Collecting {
            #[pin]
            body: Limited<B>,
            received: Received,
            body_mac: Option<Box<BodyMac>>,
            // The part of the last frame not MACed yet (a slice per poll).
            unmaced: Bytes,
            parts: Option<Parts>,
            inner: Option<S>,
            // The request's verifier, looked up once when the request arrived.
            verifier: Arc<Verifier>,
        },
        // Verified; the replay guard is asked whether the delivery is new.
        Admitting {
            admitting: Admitting,
            request: Option<Request<Full<Bytes>>>,
            inner: Option<S>,
            verifier: Arc<Verifier>,
        },
        Calling {
            #[pin]
            future: F,
        },
        // The inner service answered; the guard marks the delivery done or releases it.
        Finishing {
            finishing: Finishing,
            outcome: Option<O>,
        },
        Rejected {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Reads `body` (at most the configured limit; `expected` bytes announced), verifies it with
    /// `verifier`, then calls `inner`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn collecting(
        body: Limited<B>,
        expected: usize,
        reservation: Reservation,
        body_mac: Option<Box<BodyMac>>,
        parts: Parts,
        inner: S,
        verifier: Arc<Verifier>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                received: Received::new(expected),
                body_mac,
                unmaced: Bytes::new(),
                parts: Some(parts),
                inner: Some(inner),
                verifier,
            },
            config,
            reservation: Some(reservation),
            ticket: None,
            large: LargeTurn::Idle,
        }
    }

    pub(crate) fn answered(response: Response<Full<Bytes>>, config: Arc<Config>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            config,
            reservation: None,
            ticket: None,
            large: LargeTurn::Idle,
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Collecting {
                    mut body,
                    received,
                    body_mac,
                    unmaced,
                    parts,
                    inner,
                    verifier,
                } => {
                    let config = &**this.config;
                    let verifier_arc = &*verifier;
                    let verifier = &**verifier;
                    // MAC work done in this poll, in bytes times keys: past a slice, the task
                    // yields, so one large forged body cannot hold a worker thread for the
                    // whole of its MACs (with 8 keys, 8 MiB of MAC for a 1 MiB body).
                    let mut worked = 0;
                    let collected = loop {
                        // A large body is read and MACed only in its turn: a few at a time,
                        // so forged uploads cannot take every worker.
                        if received.is_large() {
                            ready!(this.large.poll_hold(&config.large, cx));
                            // Its announced length, reserved now that it is read.
                            let reserved = this
                                .reservation
                                .as_mut()
                                .is_none_or(|r| r.grow_to(received.announced()));
                            if !reserved {
                                break Err(config.over_capacity());
                            }
                        }
                        if let Some(body_mac) = body_mac.as_deref_mut() {
                            if !unmaced.is_empty() {
                                if worked >= MAC_WORK_PER_POLL {
                                    cx.waker().wake_by_ref();
                                    return Poll::Pending;
                                }
                                let keys = body_mac.keys().max(1);
                                let step = (MAC_WORK_PER_POLL / keys).clamp(1, unmaced.len());
                                body_mac.update(&unmaced.split_to(step));
                                worked += step * keys;
                                continue;
                            }
                        }
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                let Ok(mut data) = frame.into_data() else {
                                    continue;
                                };
                                // `Bytes` hands itself over; other buffers are copied once.
                                let data = data.copy_to_bytes(data.remaining());
                                let total = received.len().saturating_add(data.len());
                                let reserved =
                                    this.reservation.as_mut().is_none_or(|r| r.grow_to(total));
                                if !reserved {
                                    break Err(config.over_capacity());
                                }
                                if body_mac.is_some() {
                                    *unmaced = data.clone();
                                }
                                received.push(data);
                            }
                            Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                                break Err(Rejection::BodyTooLarge {
                                    limit: config.max_body_size,
                                })
                            }
                            Some(Err(e)) => {
                                break Err(Rejection::BodyRead {
                                    reason: e.to_string(),
                                })
                            }
                            None => break Ok(received.take()),
                        }
                    };
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the collecting state is left right after its body is read")
                    };
                    // With a replay guard, the delivery's key in it.
                    let scope = config.replay.as_ref().map(|replay| KeyScope {
                        namespace: replay.namespace_str(),
                        project: parts.extensions.get::<ProjectId>().map(ProjectId::as_str),
                    });
                    let outcome = collected.and_then(|bytes| {
                        let verified = match (body_mac.take(), scope) {
                            (Some(body_mac), _) => {
                                let now = verifier.now();
                                (*body_mac)
                                    .finish(verifier, &parts, &bytes, now)
                                    .map(|v| (v, None))
                            }
                            // Computed from the headers verification parsed.
                            (None, Some(scope)) => {
                                DeliveryKey::verified(verifier, &parts, &bytes, scope)
                                    .map(|(v, key)| (v, Some(key)))
                            }
                            (None, None) => {
                                verifier.verify_request(&parts, &bytes).map(|v| (v, None))
                            }
                        };
                        verified
                            .map(|(v, key)| (v, key, bytes))
                            .map_err(Rejection::Verify)
                    });
                    this.large.release();
                    match outcome {
                        Ok((verified, key, bytes)) => {
                            tracing::debug!(
                                scheme = verifier.scheme().name(),
                                key = %verified.key_id(),
                                webhook_id = verified.webhook_id(),
                                "webhook verified"
                            );
                            let scheme = verifier.scheme();
                            let keyring = verifier.keyring();
                            match scheme.handshake(&parts, &bytes, keyring, &verified) {
                                Ok(None) => {}
                                Ok(Some(answer)) => {
                                    tracing::debug!(
                                        scheme = scheme.name(),
                                        "answered a sender's endpoint check"
                                    );
                                    return Poll::Ready(Ok(
                                        answer.map(|b| ResponseBody::own(Full::new(b)))
                                    ));
                                }
                                Err(e) => {
                                    let response =
                                        config.reject(Some(verifier), Rejection::Verify(e));
                                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                                }
                            }
                            // Only a verified delivery reaches the replay guard.
                            let admitting = match (&config.replay, scope) {
                                (Some(replay), Some(scope)) => {
                                    // A body MACed as it streamed in: its key from the headers
                                    // parsed again.
                                    let key = key.map_or_else(
                                        || {
                                            DeliveryKey::of_request_in(
                                                verifier, &parts, &bytes, scope,
                                            )
                                        },
                                        Ok,
                                    );
                                    match key {
                                        Ok(key) => Some(replay.admit(key, verifier)),
                                        Err(e) => {
                                            let response =
                                                config.reject(Some(verifier), Rejection::Verify(e));
                                            this.reservation.take();
                                            return Poll::Ready(
                                                Ok(response.map(ResponseBody::own)),
                                            );
                                        }
                                    }
                                }
                                _ => None,
                            };
                            parts.extensions.insert(verified);
                            let request = Request::from_parts(parts, Full::new(bytes));
                            // A guard that answers at once (in memory) needs no state of its
                            // own.
                            let admitted = match admitting {
                                None => None,
                                Some(mut admitting) => match Pin::new(&mut admitting).poll(cx) {
                                    Poll::Ready(admission) => {
                                        Some(admitted(config, verifier, admission))
                                    }
                                    Poll::Pending => {
                                        let verifier = Arc::clone(verifier_arc);
                                        this.state.set(State::Admitting {
                                            admitting,
                                            request: Some(request),
                                            inner: Some(inner),
                                            verifier,
                                        });
                                        continue;
                                    }
                                },
                            };
                            match admitted {
                                None => {}
                                Some(Admitted::Handle(ticket)) => *this.ticket = Some(ticket),
                                Some(Admitted::Answer(response)) => {
                                    this.reservation.take();
                                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                                }
                            }
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(rejection) => {
                            let response = config.reject(Some(verifier), rejection);
                            this.reservation.take();
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                    }
                }
                StateProj::Admitting {
                    admitting,
                    request,
                    inner,
                    verifier,
                } => {
                    let admission = ready!(Pin::new(admitting).poll(cx));
                    match admitted(this.config, verifier, admission) {
                        Admitted::Handle(ticket) => {
                            let (Some(request), Some(mut inner)) = (request.take(), inner.take())
                            else {
                                unreachable!("the admitting state is left once admitted")
                            };
                            *this.ticket = Some(ticket);
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Admitted::Answer(response) => {
                            this.reservation.take();
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let outcome = ready!(future.poll(cx));
                    let Some(ticket) = this.ticket.take() else {
                        this.reservation.take();
                        return Poll::Ready(outcome.map(|r| r.map(ResponseBody::passed)));
                    };
                    // Done only when the handler answered 2xx; otherwise the sender's retry
                    // must be handled.
                    let mut finishing = match &outcome {
                        Ok(response) if response.status().is_success() => ticket.complete(),
                        _ => ticket.release(),
                    };
                    // A guard that answers at once (in memory) needs no state of its own.
                    match Pin::new(&mut finishing).poll(cx) {
                        Poll::Ready(recorded) => {
                            finished(recorded);
                            this.reservation.take();
                            return Poll::Ready(outcome.map(|r| r.map(ResponseBody::passed)));
                        }
                        Poll::Pending => this.state.set(State::Finishing {
                            finishing,
                            outcome: Some(outcome),
                        }),
                    }
                }
                StateProj::Finishing { finishing, outcome } => {
                    finished(ready!(Pin::new(finishing).poll(cx)));
                    this.reservation.take();
                    let outcome = outcome
                        .take()
                        .unwrap_or_else(|| unreachable!("polled after completion"));
                    return Poll::Ready(outcome.map(|r| r.map(ResponseBody::passed)));
                }
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .unwrap_or_else(|| unreachable!("polled after completion"));
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
            }
        }
    }
}

/// What the replay guard's answer means for a verified delivery.
enum Admitted {
    /// Handle it, under this ticket.
    Handle(Ticket),
    /// Answer the sender now: a duplicate's 200, a copy in progress, the guard full or down.
    Answer(Response<Full<Bytes>>),
}

/// Decides what to do with a verified delivery from the replay guard's answer.
fn admitted(
    config: &Config,
    verifier: &Verifier,
    admission: Result<Admission, GuardError>,
) -> Admitted {
    let rejection = match admission {
        Ok(Admission::Handle(ticket)) => {
            if !ticket.is_guarded() {
                tracing::debug!(
                    scheme = verifier.scheme().name(),
                    "delivery handled without the duplicate check"
                );
            }
            return Admitted::Handle(ticket);
        }
        Ok(Admission::Duplicate) => {
            tracing::debug!(
                scheme = verifier.scheme().name(),
                "duplicate delivery answered without calling the handler"
            );
            let mut response = Response::new(Full::default());
            response.headers_mut().insert(
                crate::replay::DUPLICATE_HEADER,
                http::HeaderValue::from_static("true"),
            );
            return Admitted::Answer(response);
        }
        Ok(Admission::InProgress { retry_after }) => Rejection::DuplicateInProgress {
            retry_after: retry_after.as_secs().max(1),
        },
        Err(GuardError::Full { max }) => Rejection::ReplayGuardFull {
            max,
            retry_after: GUARD_RETRY_AFTER_SECS,
        },
        Err(e) => {
            tracing::debug!(error = %e, "replay guard unavailable");
            Rejection::ReplayGuardUnavailable {
                retry_after: GUARD_RETRY_AFTER_SECS,
            }
        }
    };
    Admitted::Answer(config.reject(Some(verifier), rejection))
}

/// The guard recorded the handler's outcome, or could not: the handler's answer stands either
/// way (an unrecorded reservation ends with its lease).
fn finished(recorded: Result<(), GuardError>) {
    if let Err(e) = recorded {
        tracing::debug!(error = %e, "replay guard could not record the outcome");
    }
}

/// The body so far. A body that arrives in one frame (a `Full` body, or a small request read by
/// hyper in one go) is kept as that frame's `Bytes`, without a copy or a buffer list; later
/// frames are appended to one buffer sized from `Content-Length`, up to [`PREALLOCATE_MAX`]:
/// a sender that announces more than it sends must not make the receiver reserve it.
#[derive(Debug)]
pub(crate) struct Received {
    first: Option<Bytes>,
    rest: BytesMut,
    expected: usize,
    announced: usize,
}

/// Most buffer reserved ahead of the bytes received.
const PREALLOCATE_MAX: usize = 64 * 1024;

impl Received {
    fn new(expected: usize) -> Self {
        Self {
            first: None,
            rest: BytesMut::new(),
            expected: expected.min(PREALLOCATE_MAX),
            announced: expected,
        }
    }

    /// The length announced (`Content-Length`, capped at the body limit), 0 if none.
    fn announced(&self) -> usize {
        self.announced
    }

    /// Announced or received as [`LARGE_BODY`] bytes or more.
    fn is_large(&self) -> bool {
        self.announced.max(self.len()) >= LARGE_BODY
    }

    fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(data);
            return;
        }
        if let Some(first) = self.first.take() {
            self.rest
                .reserve(self.expected.max(first.len() + data.len()));
            self.rest.extend_from_slice(&first);
        }
        self.rest.extend_from_slice(&data);
    }

    /// Bytes received so far.
    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.rest.len()
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.rest).freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_passed_on_without_a_copy() {
        let frame = Bytes::from(vec![7u8; 1000]);
        let mut received = Received::new(1000);
        received.push(Bytes::new());
        received.push(frame.clone());
        let body = received.take();
        assert_eq!(body.as_ptr(), frame.as_ptr());
        assert_eq!(body, frame);
    }

    #[test]
    fn frames_are_joined_in_order() {
        let mut received = Received::new(10);
        for part in ["0123", "", "456", "789"] {
            received.push(Bytes::from_static(part.as_bytes()));
        }
        assert_eq!(received.take(), "0123456789");
        assert_eq!(Received::new(10).take(), "");
    }

    #[test]
    fn an_announced_length_reserves_at_most_64_kib() {
        let mut received = Received::new(usize::MAX);
        received.push(Bytes::from_static(b"a"));
        received.push(Bytes::from_static(b"b"));
        assert!(
            received.rest.capacity() <= PREALLOCATE_MAX,
            "{}",
            received.rest.capacity()
        );
        assert_eq!(received.take(), "ab");
    }
}
