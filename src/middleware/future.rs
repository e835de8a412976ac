use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::Config;
use super::{Rejection, ResponseBody};

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
            collect: Collect<Limited<B>>,
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
    pub(crate) fn collecting(
        collect: Collect<Limited<B>>,
        parts: Parts,
        inner: S,
        config: Arc<Config>,
    ) -> Self {
        Self {
            state: State::Collecting {
                collect,
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
                    collect,
                    parts,
                    inner,
                } => {
                    let collected = ready!(collect.poll(cx));
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the collecting state is left right after its body is read")
                    };
                    let config = &**this.config;
                    let outcome = match collected {
                        Ok(collected) => {
                            let bytes = collected.to_bytes();
                            match config.verifier.verify_request(&parts, &bytes) {
                                Ok(verified) => Ok((verified, bytes)),
                                Err(e) => Err(Rejection::Verify(e)),
                            }
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
                            if let Some(answer) =
                                scheme.handshake(&parts, &bytes, keyring, &verified)
                            {
                                tracing::debug!(
                                    scheme = scheme.name(),
                                    "answered a sender's endpoint check"
                                );
                                return Poll::Ready(Ok(
                                    answer.map(|b| ResponseBody::own(Full::new(b)))
                                ));
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
