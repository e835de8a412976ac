//! [PayPal](https://developer.paypal.com/api/rest/webhooks/rest/) webhook signatures, verified
//! offline (feature `paypal`).
//!
//! PayPal signs `{PAYPAL-TRANSMISSION-ID}|{PAYPAL-TRANSMISSION-TIME}|{webhook id}|{crc32}` with
//! RSA PKCS#1 v1.5 / SHA-256 (`PAYPAL-AUTH-ALGO: SHA256withRSA`), where the webhook id is the one
//! PayPal gave your endpoint (it is not in the request) and `crc32` is the CRC-32 of the raw body
//! in decimal; the base64 signature is in `PAYPAL-TRANSMISSION-SIG`. The verifier never fetches
//! anything: download the certificate named by `PAYPAL-CERT-URL` yourself (checking that it is
//! served by a `paypal.com` host over HTTPS and that its chain is valid), pin it with
//! [`PublicKey::rsa_certificate_pem`](crate::PublicKey::rsa_certificate_pem), and rotate to the
//! next one as PayPal renews it, with a grace period like any key.
//!
//! The body is bound to the signature only through its CRC-32, which is not a cryptographic
//! hash: whoever has seen one signed delivery can build another body with the same CRC and
//! replay it, with the same transmission id, within the timestamp tolerance. Drop repeated
//! transmission ids ([`Verified::webhook_id`](crate::Verified::webhook_id), which is signed), keep
//! the tolerance short, and treat the event as a notice to fetch the resource from PayPal's API.

use http::header::{HeaderMap, HeaderName};

use super::{header, malformed, required_header, Algorithm, Delivery, Encoding, Scheme, Signature};
use crate::error::SignError;
use crate::error::{HeaderProblem, VerifyError};

const ID: HeaderName = HeaderName::from_static("paypal-transmission-id");
const TIME: HeaderName = HeaderName::from_static("paypal-transmission-time");
const SIGNATURE: HeaderName = HeaderName::from_static("paypal-transmission-sig");
const ALGORITHM: HeaderName = HeaderName::from_static("paypal-auth-algo");

/// PayPal's `PAYPAL-TRANSMISSION-*` headers, for the webhook whose id PayPal assigned.
///
/// # Examples
///
/// ```
/// use webhook_guard::scheme::PayPal;
///
/// let scheme = PayPal::new("4JH86294D6297924G");
/// # let _ = scheme;
/// ```
#[derive(Debug, Clone)]
pub struct PayPal {
    webhook_id: String,
}

impl PayPal {
    /// The scheme for the webhook PayPal registered with id `webhook_id`.
    pub fn new(webhook_id: impl Into<String>) -> Self {
        Self {
            webhook_id: webhook_id.into(),
        }
    }
}

impl Scheme for PayPal {
    fn name(&self) -> &'static str {
        "paypal"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaPkcs1Sha256
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        // PayPal's samples send `SHA256withRSA` (older ones `sha256`); nothing else is accepted.
        if let Some(algorithm) = header(headers, &ALGORITHM)? {
            if !["SHA256withRSA", "sha256"].contains(&algorithm) {
                return Err(malformed(&ALGORITHM, HeaderProblem::Unparsable));
            }
        }
        delivery.set_id(required_header(headers, &ID)?);
        delivery.set_timestamp_rfc3339(&TIME, required_header(headers, &TIME)?)?;
        delivery.push_signature(
            &SIGNATURE,
            required_header(headers, &SIGNATURE)?,
            Encoding::Base64,
        )
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        out(delivery.id().unwrap_or_default().as_bytes());
        out(b"|");
        out(delivery.timestamp_text().unwrap_or_default().as_bytes());
        out(b"|");
        out(self.webhook_id.as_bytes());
        out(b"|");
        out(crc32fast::hash(body).to_string().as_bytes());
    }

    fn signature_headers(
        &self,
        _: &Delivery<'_>,
        _: &[Signature<'_>],
        _: &mut HeaderMap,
    ) -> Result<(), SignError> {
        // Receiving only: no RSA private keys are handled here.
        Err(SignError::NoSigningKey)
    }
}
