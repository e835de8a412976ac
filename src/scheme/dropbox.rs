//! [Dropbox](https://www.dropbox.com/developers/reference/webhooks) webhook signatures and the
//! endpoint challenge.
//!
//! `X-Dropbox-Signature: <hex>`, an HMAC-SHA256 of the raw body keyed with the app secret.
//! Dropbox checks a new endpoint with an unsigned `GET ?challenge=<text>`, which must be echoed
//! back with `Content-Type: text/plain` and `X-Content-Type-Options: nosniff`; the middleware
//! answers it ([`Scheme::preflight`]) on every path it covers, so put the layer on the Dropbox
//! route only (axum's `route_layer`). Challenges over 256 bytes are not echoed.

use http::header::HeaderName;
use http::request::Parts;

use super::{answer, laid_out, Encoding, Scheme, SignatureHeader};

const SIGNATURE: HeaderName = HeaderName::from_static("x-dropbox-signature");

const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Hex,
    id: None,
};

/// Longest challenge echoed.
const MAX_CHALLENGE_LEN: usize = 256;

/// Dropbox's `X-Dropbox-Signature` header and `GET ?challenge=` echo.
///
/// # Examples
///
/// ```
/// use webhook_guard::scheme::{Dropbox, Scheme};
///
/// let request = http::Request::get("/webhooks/dropbox?challenge=abc123").body(())?;
/// let (parts, ()) = request.into_parts();
/// let answer = Dropbox.preflight(&parts).expect("a challenge is answered");
/// assert_eq!(answer.body().as_ref(), b"abc123");
/// assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Dropbox;

impl Scheme for Dropbox {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "dropbox"
    }

    fn preflight(&self, request: &Parts) -> Option<http::Response<bytes::Bytes>> {
        if request.method != http::Method::GET {
            return None;
        }
        let query = request.uri.query()?;
        let challenge = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "challenge")
            .map(|(_, value)| value.into_owned())
            // Dropbox's challenges are short tokens; a long one is not Dropbox's.
            .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN)?;
        // `answer` sends nosniff and no-store: the challenge is text the request chose.
        Some(answer("text/plain", challenge))
    }

    fn timestamp_text(&self, _: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }

    laid_out!(LAYOUT);
}
