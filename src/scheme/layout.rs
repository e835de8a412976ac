//! Layouts several schemes share: a keyed signature list (`t=…,v1=…`), a signature header beside
//! a timestamp header, the signed content around the body, and writing signatures back.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::{
    after_prefix, headers, key_value, malformed, required, required_header, same, value, Delivery,
    Signature,
};
use crate::algorithm::Encoding;
use crate::error::{HeaderProblem, SignError, VerifyError};

/// A header layout several schemes share: how its headers are read, what it signs, how they are
/// written. A scheme that is exactly its layout implements [`Scheme`](super::Scheme) with
/// [`laid_out!`], and so says only its name and what is its own.
pub(crate) trait Layout {
    /// Reads the layout's headers into `delivery` ([`Scheme::parse`](super::Scheme::parse)).
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError>;

    /// Feeds the signed content ([`Scheme::signed_content`](super::Scheme::signed_content)).
    /// Default: the body alone.
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let _ = delivery;
        out(body);
    }

    /// Writes the layout's headers
    /// ([`Scheme::signature_headers`](super::Scheme::signature_headers)).
    fn write(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError>;
}

/// The [`Scheme`](super::Scheme) methods `parse`, `signed_content` and `signature_headers` of
/// a scheme that is exactly `$layout`, a [`Layout`].
macro_rules! laid_out {
    ($layout:expr) => {
        fn parse<'h>(
            &self,
            headers: &'h http::HeaderMap,
            delivery: &mut $crate::scheme::Delivery<'h>,
        ) -> Result<(), $crate::VerifyError> {
            $crate::scheme::Layout::parse(&$layout, headers, delivery)
        }

        fn signed_content(
            &self,
            delivery: &$crate::scheme::Delivery<'_>,
            body: &[u8],
            out: &mut dyn FnMut(&[u8]),
        ) {
            $crate::scheme::Layout::signed_content(&$layout, delivery, body, out)
        }

        fn signature_headers(
            &self,
            delivery: &$crate::scheme::Delivery<'_>,
            signatures: &[$crate::scheme::Signature<'_>],
            headers: &mut http::HeaderMap,
        ) -> Result<(), $crate::SignError> {
            $crate::scheme::Layout::write(&$layout, delivery, signatures, headers)
        }
    };
}
pub(crate) use laid_out;

/// Feeds `parts` to `out` as one piece when they fit a small stack buffer: each call into a
/// MAC's `update` costs a few nanoseconds of buffering, so a signed prefix such as
/// `{id}.{timestamp}.` is best fed whole.
pub(crate) fn out_joined(parts: &[&[u8]], out: &mut dyn FnMut(&[u8])) {
    let mut joined = arrayvec::ArrayVec::<u8, 128>::new();
    for part in parts {
        if joined.try_extend_from_slice(part).is_err() {
            return parts.iter().for_each(|part| out(part));
        }
    }
    if !joined.is_empty() {
        out(&joined);
    }
}

/// Feeds `{before}{timestamp}{between}{body}`, the timestamp as sent and the prefix in one
/// piece.
fn timestamped_body(
    delivery: &Delivery<'_>,
    before: &[u8],
    between: &[u8],
    body: &[u8],
    out: &mut dyn FnMut(&[u8]),
) {
    let timestamp = delivery.timestamp_text().unwrap_or_default().as_bytes();
    out_joined(&[before, timestamp, between], out);
    out(body);
}

/// A handshake's answer, which echoes text the request chose: `nosniff`, so no browser reads
/// it as anything but `content_type`, and `no-store`, so no cache keeps it.
pub(crate) fn answer(content_type: &'static str, body: impl Into<Bytes>) -> http::Response<Bytes> {
    let mut response = http::Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// The fields of a keyed signature header such as Stripe's `t=…,v1=…,v1=…` or Paddle's
/// `ts=…;h1=…`: one timestamp field and a list of hex signatures.
pub(crate) struct KeyedList {
    pub(crate) header: HeaderName,
    pub(crate) separator: char,
    pub(crate) timestamp: &'static str,
    pub(crate) signature: &'static str,
    /// Signed between the timestamp and the body: `{timestamp}{joiner}{body}`.
    pub(crate) joiner: &'static [u8],
}

impl Layout for KeyedList {
    /// Feeds `{timestamp}{joiner}{body}`, the prefix in one piece.
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        timestamped_body(delivery, b"", self.joiner, body, out);
    }

    /// Reads the header into `delivery`.
    #[inline(always)]
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let (separator, field, signature) = (self.separator, self.timestamp, self.signature);
        let name = &self.header;
        let text = required_header(headers, name)?;
        let mut timestamp = None;
        for item in text.split(separator) {
            let Some((key, val)) = key_value(item, '=') else {
                return Err(malformed(name, HeaderProblem::Unparsable));
            };
            if same(key, field) {
                if timestamp.replace(val).is_some() {
                    return Err(malformed(name, HeaderProblem::DuplicateField { field }));
                }
            } else if same(key, signature) {
                delivery.push_listed_signature(name, val, Encoding::Hex)?;
            }
        }
        let timestamp =
            timestamp.ok_or_else(|| malformed(name, HeaderProblem::MissingField { field }))?;
        delivery.set_timestamp(name, timestamp)?;
        delivery.finish_list(name, signature)
    }

    /// Writes the header with one signature entry per key.
    fn write(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        let ts = delivery.timestamp_text().unwrap_or_default();
        let mut text = format!("{}={ts}", self.timestamp);
        for sig in signatures {
            text.push(self.separator);
            text.push_str(self.signature);
            text.push('=');
            text.push_str(&Encoding::Hex.encode(sig.bytes));
        }
        headers.insert(self.header.clone(), value(&self.header, &text)?);
        Ok(())
    }
}

/// One signature header, written `{prefix}{signature}`, and the sender's unsigned delivery id
/// header, if it has one; the body alone is signed unless the scheme says otherwise: GitHub
/// (`sha256=<hex>`), Shopify (base64), Dropbox and Linear (hex); Square and Twilio (base64, over
/// the URL and the body).
pub(crate) struct SignatureHeader {
    pub(crate) header: HeaderName,
    /// Text before the encoded signature, such as `sha256=`; may be empty.
    pub(crate) prefix: &'static str,
    pub(crate) encoding: Encoding,
    /// Where a signer writes the delivery id. Not signed, so never read as verified.
    pub(crate) id: Option<HeaderName>,
}

impl Layout for SignatureHeader {
    /// Reads the one signature. Inlined, with its plain fields read first: each scheme's
    /// encoding and prefix are then constants where it is used (out of line, or read after the
    /// header name's address escaped, Shopify's verification took 50 ns more at 64 B).
    #[inline(always)]
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let (prefix, encoding) = (self.prefix, self.encoding);
        let text = required_header(headers, &self.header)?;
        let signature = after_prefix(&self.header, text, prefix)?;
        delivery.push_signature(&self.header, signature, encoding)
    }

    /// Writes the first (current key's) signature, since these headers hold one, and the id.
    fn write(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        put_signature(
            headers,
            &self.header,
            self.prefix,
            self.encoding,
            signatures,
        )?;
        if let (Some(name), Some(id)) = (&self.id, delivery.id()) {
            headers.insert(name.clone(), value(name, id)?);
        }
        Ok(())
    }
}

/// A signature header and a timestamp header, signing `{before}{timestamp}{between}{body}`:
/// Slack and Zoom (`v0=<hex>` over `v0:{timestamp}:{body}`), Discord (hex Ed25519 over
/// `{timestamp}{body}`), SendGrid (base64 DER ECDSA over the same).
pub(crate) struct TimestampedSignature {
    pub(crate) signature: HeaderName,
    pub(crate) timestamp: HeaderName,
    /// Text before the encoded signature, such as `v0=`.
    pub(crate) prefix: &'static str,
    pub(crate) encoding: Encoding,
    /// Signed before the timestamp.
    pub(crate) before: &'static [u8],
    /// Signed between the timestamp and the body.
    pub(crate) between: &'static [u8],
}

impl TimestampedSignature {
    /// Slack's `v0` layout (Zoom copied it): `v0=<hex>` over `v0:{timestamp}:{body}`.
    pub(crate) const fn v0(signature: HeaderName, timestamp: HeaderName) -> Self {
        Self {
            signature,
            timestamp,
            prefix: "v0=",
            encoding: Encoding::Hex,
            before: b"v0:",
            between: b":",
        }
    }
}

impl Layout for TimestampedSignature {
    #[inline(always)]
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let (prefix, encoding) = (self.prefix, self.encoding);
        let [text, timestamp] = self::headers(headers, [&self.signature, &self.timestamp]);
        let text = required(text?, &self.signature)?;
        delivery.set_timestamp(&self.timestamp, required(timestamp?, &self.timestamp)?)?;
        let sig = match prefix {
            "" => text,
            prefix => after_prefix(&self.signature, text, prefix)?,
        };
        delivery.push_signature(&self.signature, sig, encoding)
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        timestamped_body(delivery, self.before, self.between, body, out);
    }

    fn write(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        put_signature(
            headers,
            &self.signature,
            self.prefix,
            self.encoding,
            signatures,
        )?;
        put_timestamp(headers, &self.timestamp, delivery)
    }
}

/// Writes the first (current key's) signature as `{prefix}{encoded}` into header `name`, for
/// schemes with room for one signature.
pub(crate) fn put_signature(
    headers: &mut HeaderMap,
    name: &HeaderName,
    prefix: &str,
    encoding: Encoding,
    signatures: &[Signature<'_>],
) -> Result<(), SignError> {
    let sig = signatures.first().map_or(&[][..], |s| s.bytes);
    let text = format!("{prefix}{}", encoding.encode(sig));
    headers.insert(name.clone(), value(name, &text)?);
    Ok(())
}

/// Writes the delivery's timestamp text into header `name`.
pub(crate) fn put_timestamp(
    headers: &mut HeaderMap,
    name: &HeaderName,
    delivery: &Delivery<'_>,
) -> Result<(), SignError> {
    let ts = delivery.timestamp_text().unwrap_or_default();
    headers.insert(name.clone(), value(name, ts)?);
    Ok(())
}
