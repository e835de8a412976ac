//! [Stripe](https://docs.stripe.com/webhooks#verify-manually) webhook signatures.
//!
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`. Each `v1` is a hex
//! HMAC-SHA256 over `{t}.{body}`. Stripe keys the HMAC with the whole endpoint secret string,
//! `whsec_` prefix included, as bytes, unlike Standard Webhooks, which base64-decodes it; use
//! [`Stripe::secret`]. Stripe sends several `v1` entries while an endpoint has more than one
//! live secret (its own rotation with an expiry); any of them may match. `v0` (test-mode legacy)
//! and unknown schemes are ignored, as Stripe's libraries do.

use http::header::HeaderName;

use super::{json_member, laid_out, Delivery, Identity, KeyedList, Scheme};
use crate::secret::{Secret, SecretError};

const SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");
const LAYOUT: KeyedList = KeyedList {
    header: SIGNATURE,
    separator: ',',
    timestamp: "t",
    signature: "v1",
    joiner: b".",
};

/// Stripe's `Stripe-Signature` header.
///
/// # Examples
///
/// The fixed vector from stripe-dotnet's `EventUtilityTest` (secret `webhook_secret`):
///
/// ```
/// use webhook_guard::{scheme::Stripe, Keyring, Signer, Verifier};
///
/// let secret = Stripe::secret("whsec_test_secret")?;
/// let signer = Signer::new(Stripe, secret.clone());
/// let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
/// let headers = signer.sign_at(b"{}", "evt_1", at)?;
/// assert!(headers["stripe-signature"].to_str()?.starts_with("t=1700000000,v1="));
///
/// let verifier = Verifier::new(Stripe, Keyring::new(secret));
/// verifier.verify_at(&headers, b"{}", at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Stripe;

impl Stripe {
    /// The key Stripe signs with: the endpoint secret's text as bytes, `whsec_` included.
    ///
    /// # Errors
    ///
    /// As for [`Secret::from_bytes`].
    pub fn secret(endpoint_secret: &str) -> Result<Secret, SecretError> {
        Secret::from_bytes(endpoint_secret.trim())
    }
}

impl Scheme for Stripe {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "stripe"
    }

    /// Stripe's event `id` (`evt_…`) in the signed body, which Stripe keeps when it retries
    /// with a new `t`; the signed content when the body has none.
    fn identity<'d>(&self, delivery: &Delivery<'d>) -> Identity<'d> {
        json_member(delivery.body(), "id").map_or(Identity::Content, Identity::Id)
    }

    laid_out!(LAYOUT);
}
