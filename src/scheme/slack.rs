//! [Slack](https://api.slack.com/authentication/verifying-requests-from-slack) request signatures.
//!
//! `X-Slack-Signature: v0=<hex>`, an HMAC-SHA256 keyed with the app's signing secret (its text
//! as bytes) over `v0:{X-Slack-Request-Timestamp}:{body}`. Slack asks receivers to refuse
//! timestamps more than five minutes off, which is the verifier's default tolerance.

use http::header::HeaderName;

use super::{json_member, laid_out, Delivery, Identity, Scheme, TimestampedSignature};

const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
const LAYOUT: TimestampedSignature = TimestampedSignature::v0(SIGNATURE, TIMESTAMP);

/// Slack's `X-Slack-Signature` and `X-Slack-Request-Timestamp` headers.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Slack, Keyring, Secret, Signer, Verifier};
///
/// let secret = Secret::from_bytes("8f742231b10e8888abcd99yyyzzz85a5")?;
/// let at = chrono::DateTime::from_timestamp(1531420618, 0).unwrap();
/// let headers = Signer::new(Slack, secret.clone()).sign_at(b"token=x", "", at)?;
/// assert_eq!(headers["x-slack-request-timestamp"], "1531420618");
/// Verifier::new(Slack, Keyring::new(secret)).verify_at(&headers, b"token=x", at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Slack;

impl Scheme for Slack {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "slack"
    }

    /// The Events API's `event_id` in the signed body, which Slack keeps when it retries with
    /// a new timestamp; the signed content (timestamp included) for other payloads.
    fn identity<'d>(&self, delivery: &Delivery<'d>) -> Identity<'d> {
        json_member(delivery.body(), "event_id").map_or(Identity::Content, Identity::Id)
    }

    laid_out!(LAYOUT);
}
