//! A delivery's signature headers, parsed ([`Delivery`]), the candidate signatures in it, and
//! the signatures a signer made ([`Signature`]).

use std::fmt;

use arrayvec::ArrayVec;
use chrono::DateTime;
use http::header::HeaderName;

use super::{malformed, TimestampUnit, MAX_SIGNATURES, MAX_SIGNATURE_LEN};
use crate::algorithm::{Algorithm, Encoding};
use crate::error::{HeaderProblem, VerifyError};

/// One signature a signer made, for [`Scheme::signature_headers`](super::Scheme::signature_headers).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Signature<'a> {
    /// How it was made.
    pub algorithm: Algorithm,
    /// Its bytes.
    pub bytes: &'a [u8],
}

impl<'a> Signature<'a> {
    pub(crate) fn new(algorithm: Algorithm, bytes: &'a [u8]) -> Self {
        Self { algorithm, bytes }
    }
}

/// Signatures up to this many bytes (HMACs, Ed25519, DER ECDSA P-256) are held inline, so
/// parsing them neither allocates nor moves a large buffer; RSA signatures go to the heap.
const INLINE_SIGNATURE_LEN: usize = 72;

/// One candidate signature, decoded.
#[derive(Clone)]
pub(crate) struct Candidate {
    storage: Storage,
    /// `None`: the scheme's own algorithm.
    algorithm: Option<Algorithm>,
}

#[derive(Clone)]
enum Storage {
    Inline([u8; INLINE_SIGNATURE_LEN], u8),
    Heap(Box<[u8]>),
}

impl Candidate {
    /// Decodes `text` into `self`; false when it is not valid in `encoding` or longer than
    /// [`MAX_SIGNATURE_LEN`]. Decoded in place: a decoded candidate moved into the list was
    /// an 80-byte copy whose read of bytes just written stalled store forwarding.
    fn decode_into(&mut self, text: &str, encoding: Encoding) -> bool {
        self.algorithm = None;
        if let Storage::Inline(inline, len) = &mut self.storage {
            if let Some(decoded) = encoding.decode(text, inline) {
                // It fits in a u8: it is at most INLINE_SIGNATURE_LEN (72).
                *len = decoded as u8;
                return true;
            }
        }
        let mut heap = vec![0u8; MAX_SIGNATURE_LEN];
        match encoding.decode(text, &mut heap) {
            // It would have fitted inline, so it failed there for another reason.
            Some(len) if len > INLINE_SIGNATURE_LEN => {
                heap.truncate(len);
                self.storage = Storage::Heap(heap.into_boxed_slice());
                true
            }
            _ => false,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Inline(bytes, len) => &bytes[..usize::from(*len)],
            Storage::Heap(bytes) => bytes,
        }
    }

    pub(crate) fn algorithm(&self, scheme: Algorithm) -> Algorithm {
        self.algorithm.unwrap_or(scheme)
    }
}

/// A delivery's signature headers, parsed: candidate signatures, timestamp and id.
///
/// A [`Scheme`](super::Scheme) fills one in [`Scheme::parse`](super::Scheme::parse); the verifier reads it. It lives on the
/// verifier's stack and is filled in place, so a request costs no allocation and no copy of the
/// candidate buffer.
#[derive(Clone, Default)]
pub struct Delivery<'h> {
    candidates: ArrayVec<Candidate, MAX_SIGNATURES>,
    timestamp: Option<(i64, &'h str)>,
    id: Option<&'h str>,
    url: Option<&'h str>,
    body: &'h [u8],
    /// Why the first unusable entry of a signature list was skipped.
    skipped: Option<VerifyError>,
}

impl<'h> Delivery<'h> {
    /// An empty delivery: no signature, timestamp or id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one candidate signature from header `name` and adds it.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MalformedHeader`] when `text` is not valid in `encoding`, is empty, is
    /// longer than [`MAX_SIGNATURE_LEN`] bytes, or would be signature number
    /// [`MAX_SIGNATURES`]` + 1`.
    pub fn push_signature(
        &mut self,
        name: &HeaderName,
        text: &str,
        encoding: Encoding,
    ) -> Result<(), VerifyError> {
        if self.candidates.is_full() {
            return Err(malformed(
                name,
                HeaderProblem::TooManySignatures {
                    max: MAX_SIGNATURES,
                },
            ));
        }
        if text.is_empty() {
            return Err(malformed(name, HeaderProblem::EmptySignature));
        }
        self.candidates.push(Candidate {
            storage: Storage::Inline([0; INLINE_SIGNATURE_LEN], 0),
            algorithm: None,
        });
        let decoded = self.candidates.last_mut().map(|c| {
            c.decode_into(text, encoding)
                .then(|| c.as_bytes().is_empty())
        });
        let problem = match decoded.flatten() {
            Some(false) => return Ok(()),
            Some(true) => HeaderProblem::EmptySignature,
            None => HeaderProblem::BadEncoding { encoding },
        };
        self.candidates.pop();
        Err(malformed(name, problem))
    }

    /// Adds one entry of a signature list made with `algorithm` rather than the scheme's own
    /// (Standard Webhooks' `v1a` Ed25519 entries beside `v1` HMACs); otherwise as for
    /// [`push_listed_signature`](Delivery::push_listed_signature).
    ///
    /// # Errors
    ///
    /// As for [`push_listed_signature`](Delivery::push_listed_signature).
    pub fn push_listed_signature_as(
        &mut self,
        name: &HeaderName,
        text: &str,
        encoding: Encoding,
        algorithm: Algorithm,
    ) -> Result<(), VerifyError> {
        let before = self.candidates.len();
        self.push_listed_signature(name, text, encoding)?;
        if let Some(added) = self.candidates.get_mut(before) {
            added.algorithm = Some(algorithm);
        }
        Ok(())
    }

    /// Adds one entry of a signature list (`v1=…,v1=…`): an empty entry or one not valid in
    /// `encoding` is skipped rather than failing the delivery, so one bad entry cannot hide a
    /// good one, as the vendors' own libraries behave. Finish the list with
    /// [`finish_list`](Delivery::finish_list).
    ///
    /// # Errors
    ///
    /// [`VerifyError::MalformedHeader`] past [`MAX_SIGNATURES`] entries.
    pub fn push_listed_signature(
        &mut self,
        name: &HeaderName,
        text: &str,
        encoding: Encoding,
    ) -> Result<(), VerifyError> {
        match self.push_signature(name, text, encoding) {
            Err(
                e @ VerifyError::MalformedHeader {
                    problem: HeaderProblem::BadEncoding { .. } | HeaderProblem::EmptySignature,
                    ..
                },
            ) => {
                self.skipped.get_or_insert(e);
                Ok(())
            }
            other => other,
        }
    }

    /// Ends a signature list.
    ///
    /// # Errors
    ///
    /// When no entry gave a signature: the reason the first entry was skipped, or
    /// [`HeaderProblem::NoSignature`] for `version` when there was none.
    pub fn finish_list(
        &mut self,
        name: &HeaderName,
        version: &'static str,
    ) -> Result<(), VerifyError> {
        if !self.candidates.is_empty() {
            return Ok(());
        }
        Err(self
            .skipped
            .take()
            .unwrap_or_else(|| malformed(name, HeaderProblem::NoSignature { version })))
    }

    /// Sets the timestamp from header `name`, whole seconds since the Unix epoch.
    ///
    /// The text is kept as it was sent, since that is what the sender signed.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MalformedHeader`] unless `text` is 1 to 18 ASCII digits with no leading
    /// zero.
    pub fn set_timestamp(&mut self, name: &HeaderName, text: &'h str) -> Result<(), VerifyError> {
        self.set_timestamp_in(name, text, TimestampUnit::Seconds)
    }

    pub(crate) fn set_timestamp_in(
        &mut self,
        name: &HeaderName,
        text: &'h str,
        unit: TimestampUnit,
    ) -> Result<(), VerifyError> {
        let value =
            parse_unsigned(text).ok_or_else(|| malformed(name, HeaderProblem::BadTimestamp))?;
        let secs = match unit {
            TimestampUnit::Seconds => value,
            TimestampUnit::Milliseconds => value / 1000,
        };
        self.timestamp = Some((secs, text));
        Ok(())
    }

    /// Sets the timestamp from a value that is not signed as text (a JSON field, say).
    pub fn set_timestamp_secs(&mut self, secs: i64) {
        self.timestamp = Some((secs, ""));
    }

    /// Sets the timestamp from an RFC 3339 date-time in header `name`, kept as sent.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MalformedHeader`] unless `text` is an RFC 3339 date-time.
    pub fn set_timestamp_rfc3339(
        &mut self,
        name: &HeaderName,
        text: &'h str,
    ) -> Result<(), VerifyError> {
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|_| malformed(name, HeaderProblem::BadDateTime))?;
        self.timestamp = Some((at.timestamp(), text));
        Ok(())
    }

    /// Sets the webhook id (the sender's delivery or message id).
    pub fn set_id(&mut self, id: &'h str) {
        self.id = Some(id);
    }

    /// The timestamp, in whole seconds since the Unix epoch.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp.map(|(secs, _)| secs)
    }

    /// The timestamp exactly as the sender wrote it.
    pub fn timestamp_text(&self) -> Option<&'h str> {
        self.timestamp.map(|(_, text)| text)
    }

    /// The webhook id, if the scheme has one.
    pub fn id(&self) -> Option<&'h str> {
        self.id
    }

    /// The full URL the sender delivered to, for schemes that sign it
    /// ([`Scheme::uses_url`](super::Scheme::uses_url)).
    pub fn url(&self) -> Option<&'h str> {
        self.url
    }

    /// The request body, for schemes that read a field of it (such as Linear's timestamp).
    pub fn body(&self) -> &'h [u8] {
        self.body
    }

    pub(crate) fn set_request(&mut self, url: Option<&'h str>, body: &'h [u8]) {
        self.url = url;
        self.body = body;
    }

    /// Number of candidate signatures.
    pub fn signature_count(&self) -> usize {
        self.candidates.len()
    }

    pub(crate) fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }
}

impl fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("signatures", &self.candidates.len())
            .field("timestamp", &self.timestamp())
            .field("id", &self.id)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A delivery to sign: the signer's side of [`Delivery`].
pub(crate) fn outgoing<'a>(
    id: Option<&'a str>,
    timestamp: Option<(i64, &'a str)>,
    url: Option<&'a str>,
    body: &'a [u8],
) -> Delivery<'a> {
    let mut delivery = Delivery::new();
    delivery.id = id;
    delivery.timestamp = timestamp;
    delivery.set_request(url, body);
    delivery
}

/// Parses 1 to 18 ASCII digits (no sign, no fraction), small enough never to overflow, in
/// canonical form: no leading zero, so each number has one text. A signature over
/// `1700000000` must not verify `01700000000`, whose text a template may split differently.
fn parse_unsigned(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.bytes().try_fold(0i64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_unsigned("1614265330"), Some(1_614_265_330));
        assert_eq!(parse_unsigned("0"), Some(0));
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "1e9",
            " 1",
            "9999999999999999999",
            "１",
            "01700000000",
            "00",
        ] {
            assert_eq!(parse_unsigned(bad), None, "{bad:?}");
        }
    }
}
