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

use super::budget::Reservation;
use super::layer::Config;
use super::{Rejection, ResponseBody};
use crate::verify::{BodyMac, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// MAC work one poll may do while the body streams in, in bytes MACed times live keys: about
/// 18 µs of HMAC-SHA256 here. 32 KiB gave a small delivery a p50 of 0.6 ms beside 16 forged
/// 1 MiB uploads where 128 KiB gave 2.8 ms, and costs nothing measurable in the layer bench
/// (BENCHMARKS.md, "Fairness").
const MAC_WORK_PER_POLL: usize = 32 * 1024;

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
        state: State<S, S::Future, B>,
        config: Arc<Config>,
        // This request's share of the layer's budget for buffered bodies, held until the
        // inner service is done with the body.
        reservation: Option<Reservation>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, B>
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
        Calling {
            #[pin]
            future: F,
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
        }
    }

    pub(crate) fn answered(response: Response<Full<Bytes>>, config: Arc<Config>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            config,
            reservation: None,
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
                    let verifier = &**verifier;
                    // MAC work done in this poll, in bytes times keys: past a slice, the task
                    // yields, so one large forged body cannot hold a worker thread for the
                    // whole of its MACs (with 8 keys, 8 MiB of MAC for a 1 MiB body).
                    let mut worked = 0;
                    let collected = loop {
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
                    let outcome = collected.and_then(|bytes| {
                        let verified = match body_mac.take() {
                            Some(body_mac) => {
                                let now = verifier.now();
                                (*body_mac).finish(verifier, &parts, &bytes, now)
                            }
                            None => verifier.verify_request(&parts, &bytes),
                        };
                        verified.map(|v| (v, bytes)).map_err(Rejection::Verify)
                    });
                    match outcome {
                        Ok((verified, bytes)) => {
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
                            parts.extensions.insert(verified);
                            let request = Request::from_parts(parts, Full::new(bytes));
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
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    this.reservation.take();
                    return Poll::Ready(Ok(response.map(ResponseBody::passed)));
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

/// The body so far. A body that arrives in one frame (a `Full` body, or a small request read by
/// hyper in one go) is kept as that frame's `Bytes`, without a copy or a buffer list; later
/// frames are appended to one buffer sized from `Content-Length`, up to [`PREALLOCATE_MAX`]:
/// a sender that announces more than it sends must not make the receiver reserve it.
#[derive(Debug)]
pub(crate) struct Received {
    first: Option<Bytes>,
    rest: BytesMut,
    expected: usize,
}

/// Most buffer reserved ahead of the bytes received.
const PREALLOCATE_MAX: usize = 64 * 1024;

impl Received {
    fn new(expected: usize) -> Self {
        Self {
            first: None,
            rest: BytesMut::new(),
            expected: expected.min(PREALLOCATE_MAX),
        }
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
