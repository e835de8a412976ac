//! [Twilio](https://www.twilio.com/docs/usage/webhooks/webhooks-security) request signatures.
//!
//! `X-Twilio-Signature: <base64>`, an HMAC-**SHA1** keyed with the account's auth token over
//! the full URL Twilio requested (scheme, host, path and query exactly as configured), followed
//! for a form-encoded POST by every parameter, sorted by name, as name then value with no
//! separators (as Twilio's own libraries do: each distinct name once, its distinct values
//! sorted). For JSON bodies Twilio instead adds a `bodySHA256` query parameter with the hex
//! SHA-256 of the body and signs the URL alone; the body is then checked against that digest.
//! Behind a proxy set [`Verifier::public_base_url`](crate::Verifier::public_base_url).
//!
//! Twilio signs no timestamp, and because parameters are signed as a sorted set, reordering or
//! repeating values of one parameter keeps the signature valid (as with Twilio's own
//! libraries): read each parameter once, and drop repeated `CallSid`/`MessageSid` values.
//! Nor does it sign where one parameter ends and the next begins: names and values are joined
//! with no separator, so a signature for `A=x&B=y` (signed text `AxBy`) also verifies `A=xBy`.
//! A captured request can be replayed forever and reshaped that way; treat Twilio deliveries as
//! a notification to look up (by `CallSid`/`MessageSid`, against Twilio's API), not as data to act on.
//!
//! A form body may carry at most [`MAX_TWILIO_PARAMETERS`] parameters (real payloads have a few
//! dozen): each is decoded and sorted before the MAC, so their number bounds the work per
//! request. More are refused with [`VerifyError::TooManyParameters`] (400) before any of it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use http::header::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use super::{Algorithm, Delivery, Encoding, Layout, Scheme, Signature, SignatureHeader};
use crate::error::SignError;
use crate::error::VerifyError;

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const LAYOUT: SignatureHeader = SignatureHeader {
    header: SIGNATURE,
    prefix: "",
    encoding: Encoding::Base64,
    id: None,
};

/// Most form parameters a Twilio body may carry.
pub const MAX_TWILIO_PARAMETERS: usize = 1024;

/// Twilio's `X-Twilio-Signature` header (HMAC-SHA1 over URL and parameters).
///
/// # Examples
///
/// The example from Twilio's "Webhooks security" page (auth token `12345`):
///
/// ```
/// use http::HeaderMap;
/// use webhook_guard::{scheme::Twilio, Keyring, Secret, Verifier};
///
/// let verifier = Verifier::new(Twilio, Keyring::new(Secret::from_bytes("12345")?));
/// let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
/// let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
/// let mut headers = HeaderMap::new();
/// headers.insert("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=".parse()?);
/// verifier.verify_url_at(url, &headers, body, chrono::Utc::now())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Twilio;

impl Scheme for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::HmacSha1
    }

    fn uses_url(&self) -> bool {
        true
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        LAYOUT.parse(headers, delivery)?;
        if let Some(expected) = body_digest_param(delivery.url().unwrap_or_default()) {
            let actual = hex::encode(Sha256::digest(delivery.body()));
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(VerifyError::BodyDigestMismatch);
            }
        } else if memchr::memchr_iter(b'&', delivery.body())
            .nth(MAX_TWILIO_PARAMETERS - 1)
            .is_some()
        {
            return Err(VerifyError::TooManyParameters {
                max: MAX_TWILIO_PARAMETERS,
            });
        }
        Ok(())
    }

    fn assembles_content(&self) -> bool {
        true
    }

    fn timestamp_text(&self, _: chrono::DateTime<chrono::Utc>) -> Option<String> {
        None
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let url = delivery.url().unwrap_or_default();
        out(url.as_bytes());
        if body_digest_param(url).is_some() {
            return;
        }
        let mut params: BTreeMap<Cow<'_, str>, BTreeSet<Cow<'_, str>>> = BTreeMap::new();
        for (name, value) in form_pairs(body) {
            params.entry(name).or_default().insert(value);
        }
        for (name, values) in &params {
            for value in values {
                out(name.as_bytes());
                out(value.as_bytes());
            }
        }
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

/// The name-value pairs of a form body, as `form_urlencoded::parse` reads them. A pair with no
/// `%` or `+` in it and valid UTF-8 is borrowed as it is, which is what decoding it would give,
/// without decoding it byte by byte (a third of Twilio's worst-case cost before).
fn form_pairs(body: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let mut start = 0;
    memchr::memchr_iter(b'&', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let pair = &body[start..end];
            start = end + 1;
            pair
        })
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let plain = memchr::memchr2(b'%', b'+', pair).is_none();
            match (plain, std::str::from_utf8(pair)) {
                (true, Ok(text)) => {
                    let (name, value) = text.split_once('=').unwrap_or((text, ""));
                    (Cow::Borrowed(name), Cow::Borrowed(value))
                }
                // `parse` of one non-empty pair yields exactly that pair.
                _ => form_urlencoded::parse(pair)
                    .next()
                    .unwrap_or((Cow::Borrowed(""), Cow::Borrowed(""))),
            }
        })
}

/// The `bodySHA256` query parameter of `url`, if any.
fn body_digest_param(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_read_what_form_urlencoded_reads() {
        for body in [
            &b"a=1&b=2"[..],
            b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234",
            b"a=b=c&&=x&y&z=",
            b"sp+ace=a+b&pct=%41%zz%&utf8=%C3%A9&raw=\xc3\xa9",
            b"bad=\xff\xfe&ok=1",
            b"&&&",
            b"",
        ] {
            let ours: Vec<_> = form_pairs(body).collect();
            let theirs: Vec<_> = form_urlencoded::parse(body).collect();
            assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(body));
        }
    }
    #[test]
    fn form_pairs_agree_with_form_urlencoded_on_every_short_body() {
        // Every body of up to five bytes over the bytes that matter to the parser.
        let alphabet = [b'a', b'=', b'&', b'%', b'+', b'4', b'1', 0xc3, 0xa9, 0xff];
        let mut body = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                body.clear();
                for _ in 0..len {
                    body.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let ours: Vec<_> = form_pairs(&body).collect();
                let theirs: Vec<_> = form_urlencoded::parse(&body).collect();
                assert_eq!(ours, theirs, "{body:?}");
            }
        }
    }
}
