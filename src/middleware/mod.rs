//! Tower middleware that verifies webhook signatures before the inner service sees a request.
//!
//! [`WebhookLayer`] buffers the request body up to a limit (1 MiB by default), verifies it with a
//! [`Verifier`](crate::Verifier), and then either calls the inner service with the same bytes
//! (as an [`http_body_util::Full`] body) and the [`Verified`](crate::Verified) result in the
//! request's extensions, or answers with an RFC 9457 `application/problem+json` response:
//!
//! | outcome | status |
//! |---|---|
//! | missing, duplicated or malformed signature headers | 400 Bad Request |
//! | no signature matched, or timestamp outside the tolerance | 401 Unauthorized |
//! | no registered project named ([`WebhookLayer::for_projects`]) | 404 Not Found |
//! | body over the limit | 413 Content Too Large |
//! | the layer's budget for buffered bodies is in use | 503 Service Unavailable, `Retry-After` |
//! | body could not be read | 400 Bad Request |
//! | another copy of the delivery is being handled ([`WebhookLayer::replay_protection`]) | 409 Conflict, `Retry-After` |
//! | the replay guard is full or its backend down (failing closed) | 503 Service Unavailable, `Retry-After` |
//!
//! With [`WebhookLayer::replay_protection`], a delivery already handled is answered 200 with
//! `webhook-guard-duplicate: true` without calling the inner service ([`crate::replay`]).
//!
//! A request whose `Content-Length` exceeds the limit is refused before any of its body is read.
//! A body without `Content-Length` (chunked) is read until it passes the limit and refused
//! then; nothing is passed on. Because the connection may still hold the unread rest of such a
//! body, the server must not reuse it for another request (hyper closes it), or the remainder
//! could be read as a smuggled request.
//!
//! A body that is announced as 16 KiB or more, or not announced at all, is MACed frame by frame
//! as it arrives rather than after its last frame ([`WebhookLayer::stream_from`]), for schemes that sign the body as is
//! ([`Scheme::signs_body_as_is`](crate::scheme::Scheme::signs_body_as_is): all built-in HMAC
//! schemes except Twilio and Linear, which read the body to find what they sign). Its headers,
//! timestamp and URL are then checked before the body is read, so a request with a missing or
//! stale signature is refused without reading its body, and the MAC runs while the network is
//! still delivering: a 1 MiB delivery at 1 Gbit/s is answered ~0.6 ms sooner, the MAC's whole
//! cost (`benches/streaming.rs`). The body is still buffered for the inner service. Keys are
//! taken when the headers arrive; if the keyring changes during the upload and no key matched,
//! the delivery is verified again against the keys of that moment, so a rotation never refuses
//! a delivery the new keys accept. When the body is complete, the timestamp and the keys'
//! grace periods are judged again as of that moment, so streaming accepts and refuses exactly
//! what verifying the whole body then would: a slow upload stretches neither the tolerance nor a
//! grace period, and a key invalidated at once (grace 0, revoke) is refused even for an upload
//! that started before.
//!
//! All requests through one layer share a budget of buffered body bytes
//! ([`WebhookLayer::max_buffered_bytes`], 64 MiB by default): a request reserves its announced
//! `Content-Length` before reading and each frame as it arrives, and one that does not fit is
//! answered 503 with `Retry-After`, so held or slow bodies cannot exhaust memory. While a body
//! streams in, the MACs run a slice per poll (32 KiB of MAC input times keys), so one large
//! forged body does not hold a worker thread away from other requests, and at most one large
//! body per CPU ([`LARGE_BODY`] bytes or more; [`WebhookLayer::max_large_bodies`]) is read and
//! verified at a time: the others wait their turn with their bytes unread, so a flood of large
//! forged uploads keeps at most that much HMAC work in the run queues beside small deliveries.
//!
//! The problem document's `detail` is one sentence per problem type
//! ([`Rejection::generic_detail`]): the specific reason (how many live keys were tried, the
//! server's clock and tolerance, the MAC's length) would tell an outsider whether a rotation is
//! in its grace period and how the receiver is set up. It is logged at `debug`, and sent with
//! [`WebhookLayer::detailed_rejections`] for development. Rejections are counted by kind and
//! summed up in one `warn` line at most once a minute
//! ([`WebhookLayer::rejection_summary_every`]), so forged traffic cannot flood the logs.
//!
//! The rejection response can be replaced with [`WebhookLayer::on_rejection`].
//!
//! One layer can serve many projects, each with its own verifier:
//! [`WebhookLayer::for_projects`] reads the project id from the path or a header
//! ([`ProjectSelector`]), looks its verifier up in a [`Projects`](crate::Projects) registry once
//! per request, and puts the [`ProjectId`](crate::ProjectId) in the request's extensions beside
//! [`Verified`](crate::Verified). See the [`Projects`](crate::Projects) docs for an axum example.
//!
//! # Examples
//!
//! With axum, `route_layer` verifies only requests that match a route, so unknown paths still
//! get 404 instead of a signature error (`layer` would check every request first):
//!
//! ```
//! use axum::{routing::post, Extension, Router};
//! use webhook_guard::{middleware::WebhookLayer, scheme::GitHub, Keyring, Secret, Verified, Verifier};
//!
//! async fn handle(Extension(verified): Extension<Verified>, body: String) -> String {
//!     format!("verified with key {}: {} bytes", verified.key_id(), body.len())
//! }
//!
//! # fn main() -> Result<(), webhook_guard::SecretError> {
//! let keyring = Keyring::new(Secret::from_bytes("It's a Secret to Everybody")?);
//! let app: Router = Router::new()
//!     .route("/webhooks/github", post(handle))
//!     .route_layer(WebhookLayer::new(Verifier::new(GitHub, keyring)).max_body_size(256 * 1024));
//! # Ok(())
//! # }
//! ```
//!
//! Directly with tower, showing a rejection:
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use webhook_guard::{middleware::WebhookLayer, scheme::GitHub, Keyring, Secret, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keyring = Keyring::new(Secret::from_bytes("It's a Secret to Everybody")?);
//! let service = ServiceBuilder::new()
//!     .layer(WebhookLayer::new(Verifier::new(GitHub, keyring)))
//!     .service(service_fn(|_: Request<Full<Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
//!     }));
//!
//! let forged = Request::post("/")
//!     .header("x-hub-signature-256", format!("sha256={}", "00".repeat(32)))
//!     .body(Full::new(Bytes::from("Hello, World!")))?;
//! let response = service.oneshot(forged).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! # Ok(())
//! # }
//! ```

mod body;
mod budget;
mod future;
mod layer;
mod rejection;
mod report;
mod select;
mod service;

pub use body::ResponseBody;
pub use budget::{DEFAULT_MAX_BUFFERED_BYTES, LARGE_BODY};
pub use future::ResponseFuture;
pub use layer::{WebhookLayer, DEFAULT_MAX_BODY_SIZE, DEFAULT_STREAM_FROM};
pub use rejection::Rejection;
pub use report::DEFAULT_REJECTION_SUMMARY_EVERY;
pub use select::ProjectSelector;
pub use service::WebhookService;
