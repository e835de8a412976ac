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

use super::layer::Config;
use super::{Rejection, ResponseBody};
use crate::verify::BodyMac;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
            parts: Option<Parts>,
            inner: Option<S>,
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
    /// Reads `body` (at most the configured limit; `expected` bytes announced) before calling
    /// `inner`.
    pub(crate) fn collecting(
        body: Limited<B>,
        expected: usize,
        body_mac: Option<Box<BodyMac>>,
        parts: Parts,
        inner: S,
        config: Arc<Config>,
    ) -> Self {
        Self {
            state: State::Collecting {
                body,
                received: Received::new(expected),
                body_mac,
                parts: Some(parts),
                inner: Some(inner),
            },
            config,
        }
    }

    pub(crate) fn answered(response: Response<Full<Bytes>>, config: Arc<Config>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
            config,
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
                    parts,
                    inner,
                } => {
                    let collected = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                if let Ok(mut data) = frame.into_data() {
                                    // `Bytes` hands itself over; other buffers are copied once.
                                    let data = data.copy_to_bytes(data.remaining());
                                    if let Some(body_mac) = body_mac {
                                        body_mac.update(&data);
                                    }
                                    received.push(data);
                                }
                            }
                            Some(Err(e)) => break Err(e),
                            None => break Ok(received.take()),
                        }
                    };
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the collecting state is left right after its body is read")
                    };
                    let config = &**this.config;
                    let outcome = match collected {
                        Ok(bytes) => {
                            let verified = match body_mac.take() {
                                Some(body_mac) => {
                                    let now = config.verifier.now();
                                    (*body_mac).finish(&config.verifier, &parts, &bytes, now)
                                }
                                None => config.verifier.verify_request(&parts, &bytes),
                            };
                            verified.map(|v| (v, bytes)).map_err(Rejection::Verify)
                        }
                        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                            Err(Rejection::BodyTooLarge {
                                limit: config.max_body_size,
                            })
                        }
                        Err(e) => Err(Rejection::BodyRead {
                            reason: e.to_string(),
                        }),
                    };
                    match outcome {
                        Ok((verified, bytes)) => {
                            tracing::debug!(
                                scheme = config.verifier.scheme().name(),
                                key = %verified.key_id(),
                                webhook_id = verified.webhook_id(),
                                "webhook verified"
                            );
                            let scheme = config.verifier.scheme();
                            let keyring = config.verifier.keyring();
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
                                    let response = config.reject(Rejection::Verify(e));
                                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                                }
                            }
                            parts.extensions.insert(verified);
                            let request = Request::from_parts(parts, Full::new(bytes));
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(rejection) => {
                            let response = config.reject(rejection);
                            return Poll::Ready(Ok(response.map(ResponseBody::own)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
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
