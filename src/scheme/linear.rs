//! [Linear](https://linear.app/developers/webhooks#securing-webhooks) webhook signatures.
//!
//! `Linear-Signature: <hex>`, an HMAC-SHA256 of the raw body keyed with the webhook's signing
//! secret (its text as bytes). Linear puts the send time in the body, as `webhookTimestamp`
//! (Unix milliseconds), and asks receivers to refuse deliveries more than a minute off: that is
//! this scheme's default tolerance. The signature covers the body, so the timestamp is signed.
//! The `Linear-Delivery` id header is not, so it is not reported in [`Verified`](crate::Verified).

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName};

use super::{Delivery, Encoding, Layout, Scheme, Signature, SignatureHeader};
use crate::error::{SignError, VerifyError};

const SIGNATURE: HeaderName = HeaderName::from_static("linear-signature");
const DELIVERY: HeaderName = HeaderName::from_static("linear-delivery");
const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Hex,
    id: Some(DELIVERY),
};

/// Linear's `Linear-Signature` header with the `webhookTimestamp` body field.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Linear, Keyring, Secret, Signer, Verifier, VerifyError};
///
/// let secret = Secret::from_bytes("lin_wh_secret")?;
/// let body = br#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000}"#;
/// let at = chrono::DateTime::from_timestamp(1_700_000_030, 0).unwrap();
/// let headers = Signer::new(Linear, secret.clone()).sign_at(body, "", at)?;
/// let verifier = Verifier::new(Linear, Keyring::new(secret));
/// verifier.verify_at(&headers, body, at)?;
/// let late = at + chrono::Duration::seconds(60);
/// assert!(matches!(verifier.verify_at(&headers, body, late), Err(VerifyError::TimestampTooOld { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Linear;

impl Scheme for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn tolerance(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        LAYOUT.parse(headers, delivery)?;
        let millis = webhook_timestamp(delivery.body()).ok_or(VerifyError::MalformedBody {
            field: "webhookTimestamp",
        })?;
        delivery.set_timestamp_secs(millis.div_euclid(1000));
        Ok(())
    }

    fn timestamp_text(&self, _: DateTime<Utc>) -> Option<String> {
        None
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        LAYOUT.write(delivery, signatures, headers)
    }
}

/// The `webhookTimestamp` field of a JSON body, in milliseconds.
fn webhook_timestamp(body: &[u8]) -> Option<i64> {
    /// Only the field needed: the rest of the body is skipped without being built into values,
    /// so reading the timestamp allocates nothing. A repeated field is refused.
    #[derive(serde::Deserialize)]
    struct Stamp {
        #[serde(rename = "webhookTimestamp")]
        webhook_timestamp: i64,
    }
    serde_json::from_slice::<Stamp>(body)
        .ok()
        .map(|stamp| stamp.webhook_timestamp)
}
