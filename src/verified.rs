//! [`Verified`]: what a verified delivery proved. Below the schemes, whose handshakes take it
//! as the proof that a request verified.

use chrono::{DateTime, Utc};

use crate::keyring::{KeyId, KeyRole};
use crate::text::ShortStr;

/// A verified delivery: which key matched, and what the headers said.
///
/// The Tower layer puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub(crate) key_id: KeyId,
    pub(crate) role: KeyRole,
    /// Seconds since the Unix epoch, within tolerance of a representable `now`, so representable.
    pub(crate) timestamp: Option<i64>,
    pub(crate) webhook_id: Option<ShortStr>,
}

impl Verified {
    /// The id of the key whose signature matched.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Whether that key is the current key or a grace key.
    pub fn role(&self) -> KeyRole {
        self.role
    }

    /// The signed timestamp, for schemes that sign one.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    }

    /// The sender's signed delivery or message id: Standard Webhooks, Twitch, PayPal, and a custom
    /// template with `{id}`. Senders retry, so use it to drop duplicates.
    ///
    /// `None` for schemes whose id is not covered by the signature (GitHub's `X-GitHub-Delivery`,
    /// Shopify's `X-Shopify-Webhook-Id`, Linear's `Linear-Delivery`): a replaying attacker can
    /// change those, so they are not reported as verified. Read them from the request's headers
    /// for logging.
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_ref().map(ShortStr::as_str)
    }
}
