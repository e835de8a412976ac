//! [Paddle Billing](https://developer.paddle.com/webhooks/signature-verification) webhook
//! signatures.
//!
//! `Paddle-Signature: ts=<unix seconds>;h1=<hex>[;h1=<hex>…]`. Each `h1` is a hex HMAC-SHA256
//! keyed with the notification destination's secret key (its text as bytes) over
//! `{ts}:{body}`. Paddle sends one `h1` per live secret while it rotates its own; any may match.
//! Paddle recommends a tolerance of five seconds; this crate's default stays at five minutes to
//! allow for clock skew, set [`Verifier::tolerance`](crate::Verifier::tolerance) to tighten it.

use http::header::HeaderName;

use super::{json_member, laid_out, Delivery, Identity, KeyedList, Scheme};

const SIGNATURE: HeaderName = HeaderName::from_static("paddle-signature");
const LAYOUT: KeyedList = KeyedList {
    header: SIGNATURE,
    separator: ';',
    timestamp: "ts",
    signature: "h1",
    joiner: b":",
};

/// Paddle's `Paddle-Signature` header.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Paddle, Keyring, Secret, Signer, Verifier};
///
/// let secret = Secret::from_bytes("pdl_ntfset_01_secret")?;
/// let at = chrono::DateTime::from_timestamp(1671552777, 0).unwrap();
/// let headers = Signer::new(Paddle, secret.clone()).sign_at(b"{}", "", at)?;
/// assert!(headers["paddle-signature"].to_str()?.starts_with("ts=1671552777;h1="));
/// Verifier::new(Paddle, Keyring::new(secret)).verify_at(&headers, b"{}", at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Paddle;

impl Scheme for Paddle {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "paddle"
    }

    /// Paddle's `event_id` in the signed body, kept across retries; the signed content when
    /// the body has none.
    fn identity<'d>(&self, delivery: &Delivery<'d>) -> Identity<'d> {
        json_member(delivery.body(), "event_id").map_or(Identity::Content, Identity::Id)
    }

    laid_out!(LAYOUT);
}
