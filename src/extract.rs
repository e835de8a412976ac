//! axum extractors that verify a webhook on a route without the layer: [`VerifiedBytes`] and
//! [`VerifiedJson`].
//!
//! They take a [`WebhookLayer`] from the router's state (through [`FromRef`], so the layer can
//! be the state or one field of it) and run the request through that layer: the same verifier,
//! keyring, body limit, budget of buffered bytes, handshakes and rejections as the
//! [middleware](crate::middleware), by construction, with no second verification path. When the
//! layer refuses the request, or answers it itself (a sender's endpoint check: Twitch's callback
//! verification, Zoom's URL validation, Discord's PING; Dropbox's `GET ?challenge=` when the route
//! also takes `GET`), its response is the extractor's rejection, unchanged: the same statuses and
//! `application/problem+json` documents as in the table of the [middleware docs](crate::middleware).
//!
//! [`VerifiedJson`] then deserializes the exact verified bytes with `serde_json`. A body that is
//! not the expected JSON is answered 400 `application/problem+json` of type
//! `tag:webhook-guard,2026:invalid-json`, whose `detail` and `path` members name the field
//! that failed (`data.amount`, `items[2].id`, `.` for the whole body); the `Content-Type` is not
//! checked, since the signature, not the header, says what the bytes are.
//!
//! Behind the layer (a [`Verified`] is already in the request's extensions), the extractors read
//! the body the layer passed on, which is the verified bytes, instead of verifying twice. That
//! holds only when nothing between the layer and the handler rewrites the body.
//!
//! # The layer or the extractor?
//!
//! - The **layer** ([`WebhookLayer`] with `route_layer`) guards every route it wraps: a handler
//!   cannot forget to verify, and handlers take the body as they like (`Bytes`, `String`,
//!   axum's `Json`) with `Extension<Verified>`. Choose it when a group of routes all receive
//!   webhooks, or with [`WebhookLayer::for_projects`].
//! - The **extractor** puts verification in the handler's signature: one route of a larger
//!   router, no middleware ordering to get right, and the event arrives typed. A route whose
//!   handler does not take the extractor is not verified, so every webhook handler must.
//!
//! # Examples
//!
//! ```
//! use axum::{body::Body, routing::post, Router};
//! use http::{Request, StatusCode};
//! use serde::Deserialize;
//! use tower::ServiceExt;
//! use webhook_guard::extract::VerifiedJson;
//! use webhook_guard::middleware::WebhookLayer;
//! use webhook_guard::{scheme::GitHub, Keyring, Secret, Signer, Verifier};
//!
//! #[derive(Deserialize)]
//! struct Event {
//!     action: String,
//! }
//!
//! async fn handler(VerifiedJson(event, verified): VerifiedJson<Event>) -> String {
//!     format!("{} (key {})", event.action, verified.key_id())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from_bytes("It's a Secret to Everybody")?;
//! let layer = WebhookLayer::new(Verifier::new(GitHub, Keyring::new(secret.clone())));
//! let app = Router::new()
//!     .route("/webhooks", post(handler))
//!     .with_state(layer);
//!
//! let body = r#"{"action":"opened"}"#;
//! let mut request = Request::post("/webhooks").body(Body::from(body))?;
//! *request.headers_mut() = Signer::new(GitHub, secret).sign(body.as_bytes())?;
//! let response = app.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let forged = Request::post("/webhooks")
//!     .header("x-hub-signature-256", format!("sha256={}", "00".repeat(32)))
//!     .body(Body::from(body))?;
//! let response = app.oneshot(forged).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # Ok(())
//! # }
//! ```
//!
//! When the state holds more than the layer, implement [`FromRef`] for it (or derive it with
//! axum's `macros` feature):
//!
//! ```
//! use axum::extract::FromRef;
//! use axum::{routing::post, Router};
//! use webhook_guard::extract::VerifiedBytes;
//! use webhook_guard::middleware::WebhookLayer;
//! use webhook_guard::{scheme::Stripe, Keyring, Verifier};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     webhooks: WebhookLayer,
//!     service_name: &'static str,
//! }
//!
//! impl FromRef<AppState> for WebhookLayer {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.webhooks.clone()
//!     }
//! }
//!
//! async fn handler(VerifiedBytes(body, _): VerifiedBytes) -> String {
//!     format!("{} bytes", body.len())
//! }
//!
//! let keyring = Keyring::new(Stripe::secret("whsec_test_secret")?);
//! let state = AppState {
//!     webhooks: WebhookLayer::new(Verifier::new(Stripe, keyring)).max_body_size(64 * 1024),
//!     service_name: "billing",
//! };
//! let app: Router = Router::new()
//!     .route("/webhooks/stripe", post(handler))
//!     .with_state(state);
//! # Ok::<(), webhook_guard::SecretError>(())
//! ```

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use tower::{service_fn, ServiceExt};
use tower_layer::Layer;

use crate::json;
use crate::middleware::{Rejection, WebhookLayer};
use crate::verified::Verified;

/// A verified webhook body: the exact bytes the signature covers, and which key verified them.
///
/// Takes the [`WebhookLayer`] from the router's state; see the [module docs](self). A request
/// the layer refuses or answers itself is answered with the layer's response.
///
/// # Examples
///
/// ```
/// use webhook_guard::extract::VerifiedBytes;
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
/// Takes the [`WebhookLayer`] from the router's state; see the [module docs](self). A request
/// the layer refuses or answers itself is answered with the layer's response; a body that is
/// not a `T` is answered 400 `application/problem+json` of type
/// `tag:webhook-guard,2026:invalid-json` naming the path of the field that failed.
///
/// # Examples
///
/// ```
/// use serde::Deserialize;
/// use webhook_guard::extract::VerifiedJson;
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

/// What the extractor's inner service saw: the request the layer passed on, verified.
#[derive(Clone)]
struct Passed {
    body: Bytes,
    verified: Option<Verified>,
}

impl<S> FromRequest<S> for VerifiedBytes
where
    WebhookLayer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let layer = WebhookLayer::from_ref(state);
        if let Some(verified) = request.extensions().get::<Verified>().cloned() {
            // The layer already verified this request and passed on the verified bytes.
            let body = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let rejection = Rejection::BodyRead {
                        reason: e.to_string(),
                    };
                    return Err(respond(layer.config.reject(None, rejection)));
                }
            };
            return Ok(Self(body, verified));
        }
        // The layer itself, around a service that keeps what it was given: whatever the layer
        // checks, limits or answers is exactly what the middleware would.
        let keep = service_fn(|request: Request<Full<Bytes>>| async move {
            let (mut parts, body) = request.into_parts();
            let body = body.collect().await.map(|c| c.to_bytes());
            let body = body.unwrap_or_else(|never| match never {});
            let passed = Passed {
                body,
                verified: parts.extensions.remove::<Verified>(),
            };
            let mut response = http::Response::new(Full::new(Bytes::new()));
            response.extensions_mut().insert(passed);
            Ok::<_, std::convert::Infallible>(response)
        });
        let mut response = layer
            .layer(keep)
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        match response.extensions_mut().remove::<Passed>() {
            Some(Passed {
                body,
                verified: Some(verified),
            }) => Ok(Self(body, verified)),
            // The layer passes a request on only with its `Verified`; refuse rather than trust.
            Some(Passed { verified: None, .. }) => {
                let rejection = Rejection::BodyRead {
                    reason: "the layer passed on a request without its verification".into(),
                };
                Err(respond(layer.config.reject(None, rejection)))
            }
            None => Err(response.map(Body::new)),
        }
    }
}

impl<T, S> FromRequest<S> for VerifiedJson<T>
where
    T: DeserializeOwned,
    WebhookLayer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let VerifiedBytes(body, verified) = VerifiedBytes::from_request(request, state).await?;
        match json::deserialize(&body) {
            Ok(value) => Ok(Self(value, verified)),
            Err((path, error)) => Err(respond(json::invalid_json(&path, &error))),
        }
    }
}

fn respond(response: http::Response<Full<Bytes>>) -> Response {
    response.map(Body::new).into_response()
}
