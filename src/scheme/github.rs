//! [GitHub](https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries)
//! webhook signatures.
//!
//! `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256 of the raw body keyed with the
//! webhook's secret as text. GitHub signs no timestamp, so replays cannot be refused by age;
//! the delivery id (`X-GitHub-Delivery`) is not signed either, so it is not reported in
//! [`Verified`](crate::Verified). The legacy SHA-1 `X-Hub-Signature` is not accepted.

use http::header::HeaderName;

use super::{laid_out, Encoding, Scheme, SignatureHeader};

const SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
const DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "sha256=",
    encoding: Encoding::Hex,
    id: Some(DELIVERY),
};

/// GitHub's `X-Hub-Signature-256` header.
///
/// # Examples
///
/// The vector from GitHub's "Validating webhook deliveries" page:
///
/// ```
/// use http::HeaderMap;
/// use webhook_guard::{scheme::GitHub, Keyring, Secret, Verifier};
///
/// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("It's a Secret to Everybody")?));
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "x-hub-signature-256",
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?,
/// );
/// verifier.verify(&headers, b"Hello, World!")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHub;

impl Scheme for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn timestamp_text(&self, _: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }

    laid_out!(LAYOUT);
}
