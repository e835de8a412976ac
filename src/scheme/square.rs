//! [Square](https://developer.squareup.com/docs/webhooks/step3validate) webhook signatures.
//!
//! `x-square-hmacsha256-signature: <base64>`, an HMAC-SHA256 keyed with the subscription's
//! signature key (its text as bytes) over the notification URL, exactly as configured in Square,
//! followed by the raw body, with nothing between them (so the boundary between URL and body is
//! not signed: configure the exact URL rather than accepting any). Behind a proxy set
//! [`Verifier::public_base_url`](crate::Verifier::public_base_url) so the URL matches.

use http::header::{HeaderMap, HeaderName};

use super::{Delivery, Encoding, Layout, Scheme, Signature, SignatureHeader};
use crate::error::SignError;
use crate::error::VerifyError;

const SIGNATURE: HeaderName = HeaderName::from_static("x-square-hmacsha256-signature");
const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Base64,
    id: None,
};

/// Square's `x-square-hmacsha256-signature` header, over URL + body.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Square, Keyring, Secret, Signer, Verifier};
///
/// let url = "https://example.com/webhooks/square";
/// let secret = Secret::from_bytes("signature-key")?;
/// let headers = Signer::new(Square, secret.clone()).url(url).sign(b"{}")?;
/// let verifier = Verifier::new(Square, Keyring::new(secret));
/// verifier.verify_url_at(url, &headers, b"{}", chrono::Utc::now())?;
/// // The same signature for another URL does not verify.
/// assert!(verifier.verify_url_at("http://internal:8080/webhooks/square", &headers, b"{}", chrono::Utc::now()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Square;

impl Scheme for Square {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "square"
    }

    fn uses_url(&self) -> bool {
        true
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        LAYOUT.parse(headers, delivery)
    }

    fn timestamp_text(&self, _: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        out(delivery.url().unwrap_or_default().as_bytes());
        out(body);
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
