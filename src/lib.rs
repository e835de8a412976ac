//! Verify signed webhooks in constant time against a hot-swappable keyring with grace-period
//! rotation, as a Tower layer (axum, hyper, tonic) or as a plain library.
//!
//! Webhook senders sign each delivery with an HMAC of its body under a shared secret. This
//! crate checks that signature before your handler runs, for the schemes in
//! [`scheme`] (Standard Webhooks/Svix, Stripe, GitHub, Slack, Shopify, and any custom header),
//! against every live key of a [`Keyring`]: the current secret plus old secrets still inside
//! their grace period, so rotating a secret never rejects legitimate traffic.
//!
//! # Quick start (axum)
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::post, Extension, Router};
//! use webhook_guard::{middleware::WebhookLayer, scheme::StandardWebhooks, Keyring, Secret, Verified, Verifier};
//!
//! async fn handle(Extension(verified): Extension<Verified>, body: String) -> &'static str {
//!     tracing::info!(key = %verified.key_id(), id = ?verified.webhook_id(), "got {body}");
//!     "ok"
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keyring = Keyring::new(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let app: Router = Router::new()
//!     .route("/webhooks", post(handle))
//!     .route_layer(WebhookLayer::new(Verifier::new(StandardWebhooks, keyring.clone())));
//!
//! // Later, from an admin task: the platform rotated its secret with a one-hour grace period.
//! let rotation = keyring.rotate(Secret::from_whsec("whsec_c2VjcmV0LW51bWJlci10d28=")?, Duration::from_secs(3600))?;
//! assert!(rotation.old_expires_at.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! # Without Tower
//!
//! ```
//! use webhook_guard::{scheme::GitHub, Keyring, Secret, Verifier};
//!
//! let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("It's a Secret to Everybody")?));
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-hub-signature-256",
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?);
//! let verified = verifier.verify(&headers, b"Hello, World!")?;
//! println!("signed with {}", verified.key_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! Bytes and headers flow one way: a [`Scheme`](scheme::Scheme) parses the candidate
//! signatures and lays out the signed content; the [`Verifier`] takes one snapshot of the
//! [`Keyring`], MACs the content once per live key (each key's HMAC state is keyed once, when
//! the key enters the keyring) and compares with [`subtle`] in constant time; the
//! [`middleware`] answers. Secrets live in zeroizing memory, are redacted in `Debug`, and are
//! never in an error, a log line or a response.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod algorithm;
mod clock;
mod error;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod gateway;
#[cfg(any(feature = "axum", feature = "actix", feature = "admin"))]
mod json;
mod keyring;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod middleware;
pub mod problem;
mod projects;
mod public_key;
pub mod replay;
pub mod scheme;
mod secret;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
mod sign;
#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod store;
mod text;
#[cfg(feature = "admin")]
mod tls;
mod verified;
mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{HeaderProblem, SignError, VerifyError};
pub use keyring::{
    CommitError, KeyId, KeyInfo, KeyRecord, KeyRole, Keyring, KeyringBuilder, Pending, Rotation,
    RotationError, DEFAULT_MAX_GRACE, DEFAULT_MAX_KEYS,
};
pub use projects::{ProjectId, ProjectIdError, Projects, MAX_PROJECT_ID_LEN};
pub use public_key::{KeyMaterial, PublicKey, PublicKeyError, SigningKey};
pub use scheme::DEFAULT_TOLERANCE;
pub use secret::{RevealedSecret, Secret, SecretError, GENERATED_SECRET_LEN, MAX_SECRET_LEN};
pub use sign::Signer;
pub use verified::Verified;
pub use verify::Verifier;

/// The README's Rust snippets, compiled as doctests (they need the features they show).
#[cfg(all(doctest, feature = "axum", feature = "actix"))]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;
