//! [Shopify](https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook)
//! webhook signatures.
//!
//! `X-Shopify-Hmac-Sha256: <base64>`, an HMAC-SHA256 of the raw body keyed with the app's
//! client secret (its text as bytes). Shopify signs no timestamp and no id;
//! `X-Shopify-Webhook-Id` is therefore not reported in [`Verified`](crate::Verified).

use http::header::HeaderName;

use super::{laid_out, Encoding, Scheme, SignatureHeader};

const SIGNATURE: HeaderName = HeaderName::from_static("x-shopify-hmac-sha256");
const ID: HeaderName = HeaderName::from_static("x-shopify-webhook-id");
const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Base64,
    id: Some(ID),
};

/// Shopify's `X-Shopify-Hmac-Sha256` header.
///
/// # Examples
///
/// The vector from Shopify's `shopify-api-js` webhook validation test:
///
/// ```
/// use http::HeaderMap;
/// use webhook_guard::{scheme::Shopify, Keyring, Secret, Verifier};
///
/// let verifier = Verifier::new(Shopify, Keyring::new(Secret::from_bytes("test_secret_key")?));
/// let mut headers = HeaderMap::new();
/// headers.insert("x-shopify-hmac-sha256", "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=".parse()?);
/// verifier.verify(&headers, br#"{"foo": "bar"}"#)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Shopify;

impl Scheme for Shopify {
    fn name(&self) -> &'static str {
        "shopify"
    }

    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn timestamp_text(&self, _: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }

    laid_out!(LAYOUT);
}
