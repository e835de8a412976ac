//! actix-web 4: the [`WebhookGuard`] middleware and the [`VerifiedBytes`] and [`VerifiedJson`]
//! extractors.
//!
//! Both run the request through a [`WebhookLayer`], the Tower layer itself, on the handler's own
//! task: the actix payload is handed to the layer as it arrives, so the layer's body limit is
//! enforced while reading (413 as soon as it is passed, nothing more is buffered), its budget of
//! buffered bytes counts the body, and its verifier, keyring, handshakes (Twitch's callback
//! verification, Zoom's URL validation, Discord's PING) and `application/problem+json`
//! rejections are the answers, unchanged: the same statuses and documents as in the table of
//! the [middleware docs](crate::middleware). There is no second verification path.
//!
//! - [`WebhookGuard`] (`App::wrap`, `Scope::wrap`, `Resource::wrap`) guards every route it
//!   wraps. On success the handler finds [`Verified`] (and the [`ProjectId`] with
//!   [`WebhookLayer::for_projects`]) in the request's extensions, `web::ReqData<Verified>`, and
//!   the payload is the exact verified bytes, to take as `Bytes`, `String` or `web::Json`.
//! - [`VerifiedBytes`] and [`VerifiedJson`] put verification in the handler's signature. They
//!   take the layer from the app data, as `web::Data<WebhookLayer>` or a plain `WebhookLayer`;
//!   without one they answer 500 and log an error. A route whose handler does not take the
//!   extractor is not verified. Behind [`WebhookGuard`] they read what it passed on instead of
//!   verifying twice.
//!
//! [`VerifiedJson`] deserializes the verified bytes with `serde_json`; a body that is not the
//! expected JSON is answered 400 `application/problem+json` of type
//! `tag:webhook-guard,2026:invalid-json` naming the path of the field that failed, as axum's
//! `VerifiedJson` does.
//!
//! The verified body is held in memory until the handler is done with it; the layer's budget
//! counts it only while it is read and verified.
//!
//! Behind [`WebhookGuard`], actix's own body extractors still apply their limits to the verified
//! bytes: `Bytes` and `String` refuse more than `web::PayloadConfig`'s (256 KiB by default),
//! `web::Json` more than `web::JsonConfig`'s (2 MiB). Set them to the layer's
//! [`max_body_size`](WebhookLayer::max_body_size), or take [`VerifiedBytes`], which reads what
//! the middleware passed on with no second limit.
//!
//! # Examples
//!
//! ```
//! use actix_web::{test, web, App, HttpResponse};
//! use webhook_guard::actix::{VerifiedBytes, WebhookGuard};
//! use webhook_guard::middleware::WebhookLayer;
//! use webhook_guard::{scheme::GitHub, Keyring, Secret, Signer, Verified, Verifier};
//!
//! async fn extracted(VerifiedBytes(body, verified): VerifiedBytes) -> String {
//!     format!("{} bytes, key {}", body.len(), verified.key_id())
//! }
//!
//! async fn guarded(verified: web::ReqData<Verified>, body: String) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("{body} (key {})", verified.key_id()))
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from_bytes("It's a Secret to Everybody")?;
//! let layer = WebhookLayer::new(Verifier::new(GitHub, Keyring::new(secret.clone())))
//!     .max_body_size(64 * 1024);
//! let app = test::init_service(
//!     App::new()
//!         .app_data(web::Data::new(layer.clone()))
//!         .route("/extracted", web::post().to(extracted))
//!         .service(
//!             web::resource("/guarded")
//!                 .wrap(WebhookGuard::new(layer))
//!                 .route(web::post().to(guarded)),
//!         ),
//! )
//! .await;
//!
//! let body = r#"{"action":"opened"}"#;
//! let headers = Signer::new(GitHub, secret).sign(body.as_bytes())?;
//! for path in ["/extracted", "/guarded"] {
//!     let mut request = test::TestRequest::post().uri(path).set_payload(body);
//!     for (name, value) in &headers {
//!         request = request.insert_header((name.as_str(), value.as_bytes()));
//!     }
//!     let response = test::call_service(&app, request.to_request()).await;
//!     assert_eq!(response.status().as_u16(), 200);
//!
//!     let forged = test::TestRequest::post()
//!         .uri(path)
//!         .insert_header(("x-hub-signature-256", format!("sha256={}", "00".repeat(32))))
//!         .set_payload(body);
//!     let response = test::call_service(&app, forged.to_request()).await;
//!     assert_eq!(response.status().as_u16(), 401);
//!     let content_type = response.headers().get("content-type");
//!     assert_eq!(content_type.map(|v| v.as_bytes()), Some(&b"application/problem+json"[..]));
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::{InternalError, PayloadError};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{StatusCode, Version};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use tower::{service_fn, ServiceExt};
use tower_layer::Layer;

use crate::json;
use crate::middleware::{Rejection, WebhookLayer};
use crate::projects::ProjectId;
use crate::verified::Verified;

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// A verified webhook body: the exact bytes the signature covers, and which key verified them.
///
/// Takes the [`WebhookLayer`] from the app data; see the [module docs](self). A request the
/// layer refuses or answers itself is answered with the layer's response.
///
/// # Examples
///
/// ```
/// use webhook_guard::actix::VerifiedBytes;
///
/// async fn handler(VerifiedBytes(body, verified): VerifiedBytes) -> String {
///     format!("{} bytes verified with key {}", body.len(), verified.key_id())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedBytes(pub Bytes, pub Verified);

/// A verified webhook body deserialized as `T` from the exact verified bytes with `serde_json`,
/// and which key verified it.
///
/// Takes the [`WebhookLayer`] from the app data; see the [module docs](self). A request the
/// layer refuses or answers itself is answered with the layer's response; a body that is not a
/// `T` is answered 400 `application/problem+json` of type `tag:webhook-guard,2026:invalid-json`
/// naming the path of the field that failed.
///
/// # Examples
///
/// ```
/// use serde::Deserialize;
/// use webhook_guard::actix::VerifiedJson;
///
/// #[derive(Deserialize)]
/// struct Payment {
///     id: String,
///     amount: u64,
/// }
///
/// async fn handler(VerifiedJson(payment, _): VerifiedJson<Payment>) -> String {
///     format!("{}: {}", payment.id, payment.amount)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedJson<T>(pub T, pub Verified);

impl FromRequest for VerifiedBytes {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            // Bound first: the extensions' borrow must end before the payload is read.
            let behind_guard = request.extensions().get::<Verified>().cloned();
            if let Some(verified) = behind_guard {
                // `WebhookGuard` already verified this request and passed on the verified bytes.
                let body = PayloadBody::new(&request, payload).collect().await?;
                return Ok(Self(body.to_bytes(), verified));
            }
            let Some(layer) = layer_of(&request) else {
                tracing::error!(
                    path = request.path(),
                    "webhook_guard::actix extractor found no WebhookLayer in the app data: add \
                     `.app_data(web::Data::new(layer))` to the App, scope or resource"
                );
                return Err(actix_web::error::ErrorInternalServerError(
                    "webhook verification is not configured",
                ));
            };
            let passed = verify(&layer, &request, payload).await.map_err(rejected)?;
            Ok(Self(passed.body, passed.verified))
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for VerifiedJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = VerifiedBytes::from_request(request, payload);
        Box::pin(async move {
            let VerifiedBytes(body, verified) = bytes.await?;
            match json::deserialize(&body) {
                Ok(value) => Ok(Self(value, verified)),
                Err((path, error)) => {
                    Err(rejected(respond(json::invalid_json(&path, &error)).await))
                }
            }
        })
    }
}

/// actix-web middleware verifying each request through a [`WebhookLayer`] before the wrapped
/// service runs; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use actix_web::{web, App};
/// use webhook_guard::actix::WebhookGuard;
/// use webhook_guard::middleware::WebhookLayer;
/// use webhook_guard::{scheme::Stripe, Keyring, Verifier};
///
/// let keyring = Keyring::new(Stripe::secret("whsec_test_secret")?);
/// let layer = WebhookLayer::new(Verifier::new(Stripe, keyring)).max_body_size(64 * 1024);
/// let app = App::new().service(
///     web::scope("/webhooks")
///         .wrap(WebhookGuard::new(layer))
///         .route("/stripe", web::post().to(|body: String| async move { body })),
/// );
/// # Ok::<(), webhook_guard::SecretError>(())
/// ```
#[derive(Clone, Debug)]
pub struct WebhookGuard {
    layer: WebhookLayer,
}

impl WebhookGuard {
    /// Middleware verifying with `layer`: its verifier, limits, budget and rejections.
    pub fn new(layer: WebhookLayer) -> Self {
        Self { layer }
    }
}

impl From<WebhookLayer> for WebhookGuard {
    fn from(layer: WebhookLayer) -> Self {
        Self::new(layer)
    }
}

impl<S, B> Transform<S, ServiceRequest> for WebhookGuard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = WebhookGuardService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(WebhookGuardService {
            service: Rc::new(service),
            layer: self.layer.clone(),
        }))
    }
}

/// The service [`WebhookGuard`] wraps around a route: verifies, then calls it or answers.
pub struct WebhookGuardService<S> {
    service: Rc<S>,
    layer: WebhookLayer,
}

impl<S> fmt::Debug for WebhookGuardService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookGuardService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for WebhookGuardService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let layer = self.layer.clone();
        Box::pin(async move {
            let payload = request.parts_mut().1.take();
            match verify(&layer, request.request(), payload).await {
                Ok(passed) => {
                    {
                        let mut extensions = request.extensions_mut();
                        extensions.insert(passed.verified);
                        if let Some(project) = passed.project {
                            extensions.insert(project);
                        }
                    }
                    // The handler reads the bytes that were verified, not the spent payload.
                    request.set_payload(Payload::from(passed.body));
                    let response = service.call(request).await?;
                    Ok(response.map_into_left_body())
                }
                Err(answer) => Ok(request.into_response(answer).map_into_right_body()),
            }
        })
    }
}

/// The app data's layer: `web::Data<WebhookLayer>` or a plain `WebhookLayer`.
fn layer_of(request: &HttpRequest) -> Option<WebhookLayer> {
    request
        .app_data::<web::Data<WebhookLayer>>()
        .map(|data| WebhookLayer::clone(data))
        .or_else(|| request.app_data::<WebhookLayer>().cloned())
}

/// What the layer passed on: the verified bytes and what it learned about them.
struct Passed {
    body: Bytes,
    verified: Verified,
    project: Option<ProjectId>,
}

/// What the service inside the layer was given.
#[derive(Clone)]
struct Kept {
    body: Bytes,
    verified: Option<Verified>,
    project: Option<ProjectId>,
}

/// Runs `request` with `payload` through the layer, around a service that keeps what it was
/// given: whatever the layer checks, limits or answers is exactly what the middleware would.
/// `Err` is the layer's answer (a rejection or a handshake), as an actix response.
async fn verify(
    layer: &WebhookLayer,
    request: &HttpRequest,
    payload: Payload,
) -> Result<Passed, HttpResponse> {
    let Some(head) = http_request(request, PayloadBody::new(request, payload)) else {
        let rejection = Rejection::BodyRead {
            reason: "the request head is not valid HTTP".into(),
        };
        return Err(respond(layer.config.reject(None, rejection)).await);
    };
    let keep = service_fn(|request: http::Request<Full<Bytes>>| async move {
        let (mut parts, body) = request.into_parts();
        let body = body.collect().await.map(|c| c.to_bytes());
        let body = body.unwrap_or_else(|never| match never {});
        let mut response = http::Response::new(Full::new(Bytes::new()));
        response.extensions_mut().insert(Kept {
            body,
            verified: parts.extensions.remove::<Verified>(),
            project: parts.extensions.remove::<ProjectId>(),
        });
        Ok::<_, std::convert::Infallible>(response)
    });
    let mut response = layer
        .layer(keep)
        .oneshot(head)
        .await
        .unwrap_or_else(|never| match never {});
    match response.extensions_mut().remove::<Kept>() {
        Some(Kept {
            body,
            verified: Some(verified),
            project,
        }) => Ok(Passed {
            body,
            verified,
            project,
        }),
        Some(Kept { verified: None, .. }) => {
            // The layer passes a request on only with its `Verified`; refuse rather than trust.
            let rejection = Rejection::BodyRead {
                reason: "the layer passed on a request without its verification".into(),
            };
            Err(respond(layer.config.reject(None, rejection)).await)
        }
        None => Err(respond(response).await),
    }
}

/// The actix request's head with `body`, as the `http` 1 request the layer takes (actix-web 4
/// is on `http` 0.2); `None` if a part does not convert, which valid HTTP always does.
fn http_request(request: &HttpRequest, body: PayloadBody) -> Option<http::Request<PayloadBody>> {
    let mut out = http::Request::new(body);
    *out.method_mut() = http::Method::from_bytes(request.method().as_str().as_bytes()).ok()?;
    *out.uri_mut() = request.uri().to_string().parse().ok()?;
    *out.version_mut() = match request.version() {
        Version::HTTP_09 => http::Version::HTTP_09,
        Version::HTTP_10 => http::Version::HTTP_10,
        Version::HTTP_2 => http::Version::HTTP_2,
        Version::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_11,
    };
    let headers = out.headers_mut();
    for (name, value) in request.headers().iter() {
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
        let value = http::HeaderValue::from_bytes(value.as_bytes()).ok()?;
        headers.append(name, value);
    }
    Some(out)
}

/// The layer's answer as an actix response: status, headers and body.
async fn respond<B>(response: http::Response<B>) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: fmt::Display,
{
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::error!(error = %e, "webhook_guard::actix could not read the layer's answer");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        // actix sets the length of the body it sends.
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    builder.body(body)
}

/// The layer's answer as the extractor's error, sent unchanged.
fn rejected(response: HttpResponse) -> actix_web::Error {
    InternalError::from_response("webhook rejected", response).into()
}

/// An actix payload as an [`http_body::Body`], read frame by frame as it arrives (the layer's
/// `Limited` stops reading at the limit).
struct PayloadBody {
    payload: Payload,
    hint: SizeHint,
}

impl PayloadBody {
    fn new(request: &HttpRequest, payload: Payload) -> Self {
        let mut hint = SizeHint::new();
        if matches!(payload, Payload::None) {
            hint.set_exact(0);
        } else if let Some(length) = content_length(request) {
            // actix's decoder ends the payload at `Content-Length`, as hyper's does.
            hint.set_exact(length);
        }
        Self { payload, hint }
    }
}

/// The `Content-Length` value when it is one well-formed number.
fn content_length(request: &HttpRequest) -> Option<u64> {
    let mut values = request
        .headers()
        .get_all(actix_web::http::header::CONTENT_LENGTH);
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok()?.parse().ok(),
        _ => None,
    }
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = PayloadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.payload)
            .poll_next(cx)
            .map(|chunk| chunk.map(|bytes| bytes.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}
