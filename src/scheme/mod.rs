//! Signature schemes: how each sender puts its signature, timestamp and id in the headers, and
//! what bytes it signs.
//!
//! A [`Scheme`] only parses and lays out; it never sees a key. The
//! [`Verifier`](crate::Verifier) keys the MAC, feeds it the [signed content](Scheme::signed_content)
//! and compares in constant time; the [`Signer`](crate::Signer) does the same in reverse with
//! [`Scheme::signature_headers`].
//!
//! | scheme | signature header | signed content | encoding |
//! |---|---|---|---|
//! | [`StandardWebhooks`] | `webhook-signature: v1,<sig> …` (or `svix-signature`) | `{id}.{timestamp}.{body}` | base64 |
//! | [`Stripe`] | `Stripe-Signature: t=<ts>,v1=<sig>…` | `{t}.{body}` | hex |
//! | [`GitHub`] | `X-Hub-Signature-256: sha256=<sig>` | `{body}` | hex |
//! | [`Slack`] | `X-Slack-Signature: v0=<sig>` | `v0:{timestamp}:{body}` | hex |
//! | [`Shopify`] | `X-Shopify-Hmac-Sha256: <sig>` | `{body}` | base64 |
//! | [`Square`] | `x-square-hmacsha256-signature: <sig>` | `{url}{body}` | base64 |
//! | [`Twilio`] | `X-Twilio-Signature: <sig>` (HMAC-SHA1) | `{url}{sorted form params}` | base64 |
//! | [`Zoom`] | `x-zm-signature: v0=<sig>`, `x-zm-request-timestamp` | `v0:{timestamp}:{body}` | hex |
//! | [`Linear`] | `Linear-Signature: <sig>`, `webhookTimestamp` in the body | `{body}` | hex |
//! | [`Dropbox`] | `X-Dropbox-Signature: <sig>` | `{body}` | hex |
//! | [`Paddle`] | `Paddle-Signature: ts=<ts>;h1=<sig>[;h1=…]` | `{ts}:{body}` | hex |
//! | [`Twitch`] | `Twitch-Eventsub-Message-Signature: sha256=<sig>` | `{id}{timestamp}{body}` | hex |
//! | `Discord` (feature `ed25519`) | `X-Signature-Ed25519: <sig>`, `X-Signature-Timestamp` | `{timestamp}{body}` | hex Ed25519 |
//! | `SendGrid` (feature `ecdsa`) | `X-Twilio-Email-Event-Webhook-Signature: <sig>`, `…-Timestamp` | `{timestamp}{body}` | base64 DER ECDSA P-256 |
//! | `PayPal` (feature `paypal`) | `PAYPAL-TRANSMISSION-{ID,TIME,SIG}` | `{id}\|{time}\|{webhook id}\|{crc32}` | base64 RSA-SHA256 |
//! | [`Custom`] | any | any [`Template`] | hex or base64 |
//!
//! With the `ed25519` feature [`StandardWebhooks`] also verifies `v1a` (Ed25519) entries.

use std::fmt;

use arrayvec::ArrayVec;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::sign::SignError;
use crate::verify::{HeaderProblem, VerifyError};

mod custom;
#[cfg(feature = "ed25519")]
mod discord;
mod dropbox;
mod github;
mod linear;
mod paddle;
#[cfg(feature = "paypal")]
mod paypal;
#[cfg(feature = "ecdsa")]
mod sendgrid;
mod shopify;
mod slack;
mod square;
mod standard;
mod stripe;
mod twilio;
mod twitch;
mod zoom;

pub use custom::{Custom, Template, TemplateError, TimestampUnit};
#[cfg(feature = "ed25519")]
pub use discord::Discord;
pub use dropbox::Dropbox;
pub use github::GitHub;
pub use linear::Linear;
pub use paddle::Paddle;
#[cfg(feature = "paypal")]
pub use paypal::PayPal;
#[cfg(feature = "ecdsa")]
pub use sendgrid::SendGrid;
pub use shopify::Shopify;
pub use slack::Slack;
pub use square::Square;
pub use standard::StandardWebhooks;
pub use stripe::Stripe;
pub use twilio::{Twilio, MAX_TWILIO_PARAMETERS};
pub use twitch::Twitch;
pub use zoom::Zoom;

/// Most signatures one delivery may carry; more is refused as malformed. Senders put one per
/// live secret, and no platform keeps more than a few live.
pub const MAX_SIGNATURES: usize = 16;

/// Longest signature, in decoded bytes, a candidate may have: HMACs, Ed25519, DER ECDSA P-256
/// and RSA up to 4096 bits fit.
pub const MAX_SIGNATURE_LEN: usize = 512;

/// Longest header value the schemes read, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// A way of signing webhooks: where the signature, timestamp and id are, and what is signed.
///
/// Implement it for a sender this crate does not know; the built-in schemes are examples.
///
/// # Examples
///
/// A sender that puts a hex HMAC of `{timestamp}|{body}` in `X-Acme-Signature` and the Unix
/// timestamp in `X-Acme-Timestamp`:
///
/// ```
/// use http::{HeaderMap, HeaderName, HeaderValue};
/// use webhook_guard::scheme::{header, required_header, Delivery, Encoding, Scheme, Signature};
/// use webhook_guard::{SignError, VerifyError};
///
/// #[derive(Debug)]
/// struct Acme;
///
/// const SIGNATURE: HeaderName = HeaderName::from_static("x-acme-signature");
/// const TIMESTAMP: HeaderName = HeaderName::from_static("x-acme-timestamp");
///
/// impl Scheme for Acme {
///     fn name(&self) -> &'static str {
///         "acme"
///     }
///
///     fn parse<'h>(&self, headers: &'h HeaderMap, delivery: &mut Delivery<'h>) -> Result<(), VerifyError> {
///         delivery.set_timestamp(&TIMESTAMP, required_header(headers, &TIMESTAMP)?)?;
///         let signature = required_header(headers, &SIGNATURE)?;
///         delivery.push_signature(&SIGNATURE, signature, Encoding::Hex)?;
///         Ok(())
///     }
///
///     fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
///         out(delivery.timestamp_text().unwrap_or_default().as_bytes());
///         out(b"|");
///         out(body);
///     }
///
///     fn signature_headers(
///         &self,
///         delivery: &Delivery<'_>,
///         signatures: &[Signature<'_>],
///         headers: &mut HeaderMap,
///     ) -> Result<(), SignError> {
///         let ts = delivery.timestamp_text().unwrap_or_default();
///         headers.insert(TIMESTAMP, HeaderValue::from_str(ts).map_err(|_| SignError::InvalidHeaderValue { name: TIMESTAMP })?);
///         let sig = Encoding::Hex.encode(signatures.first().map_or(&[][..], |s| s.bytes));
///         headers.insert(SIGNATURE, HeaderValue::from_str(&sig).map_err(|_| SignError::InvalidHeaderValue { name: SIGNATURE })?);
///         Ok(())
///     }
/// }
/// ```
pub trait Scheme: fmt::Debug + Send + Sync + 'static {
    /// A short lowercase name for logs and error reports, such as `"stripe"`.
    fn name(&self) -> &'static str;

    /// Reads the candidate signatures, timestamp and id from `headers`.
    ///
    /// Use [`header`] or [`required_header`] to read a header: they refuse duplicated, overlong
    /// and non-ASCII values.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingHeader`], [`VerifyError::DuplicateHeader`] or
    /// [`VerifyError::MalformedHeader`].
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError>;

    /// The MAC the scheme signs with. Default: [`Algorithm::HmacSha256`].
    fn algorithm(&self) -> Algorithm {
        Algorithm::HmacSha256
    }

    /// How far a timestamp may be from now, both ways, unless the verifier sets its own.
    /// Default: [`DEFAULT_TOLERANCE`](crate::DEFAULT_TOLERANCE) (300 s).
    fn tolerance(&self) -> std::time::Duration {
        crate::DEFAULT_TOLERANCE
    }

    /// An answer the middleware gives before reading or verifying a request, for a sender's
    /// unsigned endpoint check (Dropbox's `GET ?challenge=`). Default: none.
    fn preflight(&self, request: &http::request::Parts) -> Option<http::Response<Bytes>> {
        let _ = request;
        None
    }

    /// An answer the middleware gives for a verified request instead of calling the inner
    /// service, for a sender's signed endpoint check (Twitch's callback verification, Zoom's
    /// URL validation, Discord's PING). `verified` is the proof the request was verified with a
    /// key of `keyring`. Decide by the signed body, never by an unsigned header alone: a signed
    /// message replayed with another header must not change what it is. Default: none.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] when the request's unsigned parts contradict its signed body (a
    /// Twitch message type header that says otherwise); the middleware refuses it.
    fn handshake(
        &self,
        request: &http::request::Parts,
        body: &[u8],
        keyring: &crate::Keyring,
        verified: &crate::Verified,
    ) -> Result<Option<http::Response<Bytes>>, VerifyError> {
        let _ = (request, body, keyring, verified);
        Ok(None)
    }

    /// True when the signed content includes the request URL, which the verifier must then be
    /// given ([`Verifier::verify_request`](crate::Verifier::verify_request) or
    /// [`Verifier::verify_url_at`](crate::Verifier::verify_url_at)). Default: `false`.
    fn uses_url(&self) -> bool {
        false
    }

    /// True when [`parse`](Scheme::parse) does not read the body and
    /// [`signed_content`](Scheme::signed_content) feeds it exactly once, as given: the
    /// [Tower layer](crate::middleware) may then MAC the body frame by frame as it arrives
    /// instead of after the last one. Default: `false`, which is always correct.
    fn signs_body_as_is(&self) -> bool {
        false
    }

    /// True when [`signed_content`](Scheme::signed_content) computes its pieces (parses and
    /// sorts, as Twilio's form parameters) rather than handing over slices of the delivery:
    /// the verifier then assembles the content once per request and MACs that with each live
    /// key, so the parsing is not repeated per key. Default: `false` (no copy, no allocation).
    fn assembles_content(&self) -> bool {
        false
    }

    /// The timestamp text a sender writes for `at`, or `None` when the scheme signs no
    /// timestamp. Default: whole Unix seconds.
    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        Some(at.timestamp().to_string())
    }

    /// Feeds the signed content to `out`, piece by piece, in order. The pieces are MACed as one
    /// message, so nothing is copied to assemble them.
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8]));

    /// Writes the headers a sender sends: the signatures (one per live key, in the order
    /// given, each with the algorithm that made it), the timestamp and id where the scheme has
    /// them.
    ///
    /// # Errors
    ///
    /// [`SignError`] when a value cannot be a header value.
    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError>;
}

impl<S: Scheme + ?Sized> Scheme for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        (**self).parse(headers, delivery)
    }
    fn algorithm(&self) -> Algorithm {
        (**self).algorithm()
    }
    fn tolerance(&self) -> std::time::Duration {
        (**self).tolerance()
    }
    fn preflight(&self, request: &http::request::Parts) -> Option<http::Response<Bytes>> {
        (**self).preflight(request)
    }
    fn handshake(
        &self,
        request: &http::request::Parts,
        body: &[u8],
        keyring: &crate::Keyring,
        verified: &crate::Verified,
    ) -> Result<Option<http::Response<Bytes>>, VerifyError> {
        (**self).handshake(request, body, keyring, verified)
    }
    fn uses_url(&self) -> bool {
        (**self).uses_url()
    }
    fn signs_body_as_is(&self) -> bool {
        (**self).signs_body_as_is()
    }
    fn assembles_content(&self) -> bool {
        (**self).assembles_content()
    }
    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        (**self).timestamp_text(at)
    }
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        (**self).signed_content(delivery, body, out)
    }
    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        (**self).signature_headers(delivery, signatures, headers)
    }
}

/// The MAC a scheme signs with. Every key in a keyring can produce each of them; the keyed state
/// is built once per key and algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256, 32-byte tags: every scheme but Twilio's.
    #[default]
    HmacSha256,
    /// HMAC-SHA1, 20-byte tags: Twilio only.
    HmacSha1,
    /// Ed25519 signatures (64 bytes) by a public key: Discord, Standard Webhooks `v1a`
    /// (feature `ed25519`).
    Ed25519,
    /// ECDSA P-256 with SHA-256, DER signatures: SendGrid (feature `ecdsa`).
    EcdsaP256Sha256,
    /// RSA PKCS#1 v1.5 with SHA-256: PayPal (feature `paypal`).
    RsaPkcs1Sha256,
}

impl Algorithm {
    /// Length of a signature in bytes, when it is fixed.
    pub fn signature_len(self) -> Option<usize> {
        match self {
            Self::HmacSha256 => Some(32),
            Self::HmacSha1 => Some(20),
            Self::Ed25519 => Some(64),
            Self::EcdsaP256Sha256 | Self::RsaPkcs1Sha256 => None,
        }
    }

    /// True for the shared-secret MACs.
    pub fn is_mac(self) -> bool {
        matches!(self, Self::HmacSha256 | Self::HmacSha1)
    }
}

/// One signature a signer made, for [`Scheme::signature_headers`].
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

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Hexadecimal; either case is read, lowercase is written.
    Hex,
    /// Standard base64 alphabet; padding optional when read, written padded.
    Base64,
}

impl Encoding {
    /// Decodes `text` into `out`, returning the number of bytes, or `None` when it is not valid
    /// in this encoding or longer than `out`.
    pub fn decode(self, text: &str, out: &mut [u8]) -> Option<usize> {
        match self {
            Self::Hex => {
                let len = text.len() / 2;
                if !text.len().is_multiple_of(2) || len > out.len() {
                    return None;
                }
                // const-hex: several times faster than `hex` here, and this runs per request.
                const_hex::decode_to_slice(text, &mut out[..len]).ok()?;
                Some(len)
            }
            Self::Base64 => {
                // Checked first: base64 refuses an output buffer that might be too small.
                if text.len() > out.len().div_ceil(3) * 4 {
                    return None;
                }
                // base64-simd decodes a 44-character HMAC signature in ~9 ns, three times
                // faster than `base64`, but only canonical padded text: anything else takes
                // the lenient path, which accepts everything the fast one does, alike.
                let fast =
                    out.get_mut(..base64_simd::STANDARD.estimated_decoded_length(text.len()));
                if let Some(fast) = fast {
                    let out = base64_simd::Out::from_slice(fast);
                    if let Ok(decoded) = base64_simd::STANDARD.decode(text.as_bytes(), out) {
                        return Some(decoded.len());
                    }
                }
                LENIENT_BASE64.decode_slice(text, out).ok()
            }
        }
    }

    /// Encodes `bytes`.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => STANDARD.encode(bytes),
        }
    }

    /// The encoding's name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }
}

const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
/// A [`Scheme`] fills one in [`Scheme::parse`]; the verifier reads it. It lives on the
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
    /// ([`Scheme::uses_url`]).
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

/// Reads header `name`, if present, as text.
///
/// # Errors
///
/// [`VerifyError::DuplicateHeader`] when it appears more than once (an attacker could otherwise
/// choose which copy is checked); [`VerifyError::MalformedHeader`] when it is longer than
/// [`MAX_HEADER_LEN`] or not visible ASCII.
pub fn header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, VerifyError> {
    let [text] = self::headers(headers, [name]);
    text
}

/// Header `name`'s first value, and whether it has another, by hashed lookup.
fn looked_up<'h>(map: &'h HeaderMap, name: &HeaderName) -> (Option<&'h HeaderValue>, bool) {
    let mut values = map.get_all(name).iter();
    (values.next(), values.next().is_some())
}

/// What [`header`] answers for header `name` with `found` as its first value and whether it
/// has another. Inlined: its result is large, and copying it out of a call's frame costs a
/// store-forwarding stall per header.
#[inline(always)]
fn checked<'h>(
    name: &HeaderName,
    found: (Option<&'h HeaderValue>, bool),
) -> Result<Option<&'h str>, VerifyError> {
    match found {
        (_, true) => Err(VerifyError::DuplicateHeader { name: name.clone() }),
        (value, false) => value.map(|value| header_text(name, value)).transpose(),
    }
}

/// Map sizes up to which [`headers`] compares every entry's name with the wanted ones rather
/// than looking each wanted name up: a lookup hashes the name a byte at a time. Measured with
/// 8 to 32 values: for one name scanning is cheaper up to 14 values, for three up to about 21;
/// hence 10 plus 4 per name.
const fn scans(values: usize, names: usize) -> bool {
    values <= 10 + 4 * names
}

/// Reads the headers `names`, each exactly as [`header`] would: slot `i` holds what
/// `header(map, names[i])` returns, so a caller that applies `?` to the slots in its own order
/// gets the same result and the same first error as reading them one by one. A map of up to
/// 10 values plus 4 per wanted name is read in one pass instead of one lookup per name: a
/// lookup hashes the name a byte at a time, which costs more than comparing that many names.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, HeaderName};
/// use webhook_guard::scheme::headers;
///
/// const ID: HeaderName = HeaderName::from_static("webhook-id");
/// const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// let mut map = HeaderMap::new();
/// map.insert(ID, "msg_1".parse()?);
/// let [id, timestamp] = headers(&map, [&ID, &TIMESTAMP]);
/// assert_eq!((id?, timestamp?), (Some("msg_1"), None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline(always)]
pub fn headers<'h, const N: usize>(
    map: &'h HeaderMap,
    names: [&HeaderName; N],
) -> [Result<Option<&'h str>, VerifyError>; N] {
    // Each wanted name's first value, and whether it has another.
    let mut found: [(Option<&'h HeaderValue>, bool); N] = [(None, false); N];
    if scans(map.len(), N) {
        for (name, value) in map {
            // Every slot that wants this name, should a name be asked for twice.
            for ((first, repeated), wanted) in found.iter_mut().zip(names) {
                if name == wanted {
                    *repeated |= first.replace(value).is_some();
                }
            }
        }
    } else {
        for (slot, wanted) in found.iter_mut().zip(names) {
            *slot = looked_up(map, wanted);
        }
    }
    let mut texts = [const { Ok(None) }; N];
    for ((text, found), name) in texts.iter_mut().zip(found).zip(names) {
        *text = checked(name, found);
    }
    texts
}

/// The text of one value of header `name`, trimmed, if it is short enough and visible ASCII.
#[inline(always)]
fn header_text<'h>(name: &HeaderName, value: &'h HeaderValue) -> Result<&'h str, VerifyError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(malformed(
            name,
            HeaderProblem::TooLong {
                len: value.len(),
                max: MAX_HEADER_LEN,
            },
        ));
    }
    value
        .to_str()
        .map(str::trim_ascii)
        .map_err(|_| malformed(name, HeaderProblem::NotAscii))
}

/// `text` read by [`headers`] for header `name`, which must be present.
pub(crate) fn required<'h>(
    text: Option<&'h str>,
    name: &HeaderName,
) -> Result<&'h str, VerifyError> {
    text.ok_or_else(|| VerifyError::MissingHeader { name: name.clone() })
}

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

/// Splits ASCII `text` around the first `separator` byte.
pub(crate) fn split_once_byte(text: &str, separator: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == separator)?;
    let (before, rest) = text.split_at_checked(at)?;
    Some((before, rest.get(1..)?))
}

/// Reads header `name`, which must be present.
///
/// # Errors
///
/// [`VerifyError::MissingHeader`] when it is absent, otherwise as for [`header`].
pub fn required_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<&'h str, VerifyError> {
    header(headers, name)?.ok_or_else(|| VerifyError::MissingHeader { name: name.clone() })
}

pub(crate) fn malformed(name: &HeaderName, problem: HeaderProblem) -> VerifyError {
    VerifyError::MalformedHeader {
        name: name.clone(),
        problem,
    }
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

/// Builds a header value, naming the header on failure.
pub(crate) fn value(name: &HeaderName, text: &str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(text).map_err(|_| SignError::InvalidHeaderValue { name: name.clone() })
}

/// A 200 response with `body` as `content_type`, for handshake answers.
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
    pub(crate) separator: char,
    pub(crate) timestamp: &'static str,
    pub(crate) signature: &'static str,
    /// Signed between the timestamp and the body: `{timestamp}{joiner}{body}`.
    pub(crate) joiner: &'static [u8],
}

impl KeyedList {
    /// Feeds `{timestamp}{joiner}{body}`, the prefix in one piece.
    pub(crate) fn signed_content(
        &self,
        delivery: &Delivery<'_>,
        body: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) {
        timestamped_body(delivery, b"", self.joiner, body, out);
    }

    /// Reads header `name` into `delivery`.
    pub(crate) fn parse<'h>(
        &self,
        name: &HeaderName,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let text = required_header(headers, name)?;
        let mut timestamp = None;
        for item in text.split(self.separator) {
            let Some((key, val)) = key_value(item, '=') else {
                return Err(malformed(name, HeaderProblem::Unparsable));
            };
            if same(key, self.timestamp) {
                if timestamp.replace(val).is_some() {
                    let field = self.timestamp;
                    return Err(malformed(name, HeaderProblem::DuplicateField { field }));
                }
            } else if same(key, self.signature) {
                delivery.push_listed_signature(name, val, Encoding::Hex)?;
            }
        }
        let field = self.timestamp;
        let timestamp =
            timestamp.ok_or_else(|| malformed(name, HeaderProblem::MissingField { field }))?;
        delivery.set_timestamp(name, timestamp)?;
        delivery.finish_list(name, self.signature)
    }

    /// Writes header `name` with one signature entry per key.
    pub(crate) fn write(
        &self,
        name: &HeaderName,
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
        headers.insert(name.clone(), value(name, &text)?);
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

    pub(crate) fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let [text, timestamp] = self::headers(headers, [&self.signature, &self.timestamp]);
        let text = required(text?, &self.signature)?;
        delivery.set_timestamp(&self.timestamp, required(timestamp?, &self.timestamp)?)?;
        let sig = match self.prefix {
            "" => text,
            prefix => after_prefix(&self.signature, text, prefix)?,
        };
        delivery.push_signature(&self.signature, sig, self.encoding)
    }

    pub(crate) fn signed_content(
        &self,
        delivery: &Delivery<'_>,
        body: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) {
        timestamped_body(delivery, self.before, self.between, body, out);
    }

    pub(crate) fn write(
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

/// The part of header `name`'s `text` after its fixed `prefix` (`sha256=`, `v0=`).
pub(crate) fn after_prefix<'h>(
    name: &HeaderName,
    text: &'h str,
    prefix: &'static str,
) -> Result<&'h str, VerifyError> {
    text.strip_prefix(prefix)
        .ok_or_else(|| malformed(name, HeaderProblem::MissingPrefix { prefix }))
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

/// `a == b` for the short field names of signature headers, compared inline: slice equality
/// calls `memcmp`, which costs more than the compare for one or two bytes.
#[inline(always)]
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Splits a `k=v` list item.
pub(crate) fn key_value(item: &str, separator: char) -> Option<(&str, &str)> {
    item.split_once(separator)
        .map(|(k, v)| (k.trim_ascii(), v.trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_one_pass_read_what_one_lookup_per_name_reads() {
        const A: HeaderName = HeaderName::from_static("webhook-signature");
        const B: HeaderName = HeaderName::from_static("webhook-id");
        const C: HeaderName = HeaderName::from_static("x-forwarded-proto");
        // Same length and last eight bytes as A, another name.
        const D: HeaderName = HeaderName::from_static("xebhook-signature");
        fn by_lookup<'h>(
            map: &'h HeaderMap,
            name: &HeaderName,
        ) -> Result<Option<&'h str>, VerifyError> {
            checked(name, looked_up(map, name))
        }
        // Below and above the scan thresholds (14 values for one name, 22 for three), with
        // each wanted header absent, present, duplicated, too long or not ASCII.
        let long = "a".repeat(MAX_HEADER_LEN + 1);
        let cases: [&[&str]; 5] = [&[], &["v1,abc"], &["one", "two"], &[&long], &["caf\u{e9}"]];
        let (mut seen_scan, mut seen_lookup) = ([false; 2], [false; 2]);
        for fillers in [0, 5, 10, 11, 12, 13, 17, 18, 19, 20, 40] {
            for a in cases {
                for b in [&[][..], &[" msg_1 "][..], &["x", "y"][..]] {
                    let mut map = HeaderMap::new();
                    for i in 0..fillers {
                        let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes());
                        map.append(name.unwrap(), HeaderValue::from_static("1"));
                    }
                    for value in a {
                        map.append(A, HeaderValue::from_bytes(value.as_bytes()).unwrap());
                    }
                    for value in b {
                        map.append(B, HeaderValue::from_str(value).unwrap());
                    }
                    map.append(http::header::HOST, HeaderValue::from_static("example.com"));
                    map.append(D, HeaderValue::from_static("decoy"));
                    for (i, names) in [1, 3].into_iter().enumerate() {
                        seen_scan[i] |= scans(map.len(), names);
                        seen_lookup[i] |= !scans(map.len(), names);
                    }
                    for name in [&A, &B, &C, &D] {
                        assert_eq!(header(&map, name), by_lookup(&map, name));
                    }
                    let [first, again] = headers(&map, [&A, &A]);
                    assert_eq!(first, by_lookup(&map, &A), "a repeated name, first slot");
                    assert_eq!(again, by_lookup(&map, &A), "a repeated name, second slot");
                    let one_pass = headers(&map, [&A, &B, &C]);
                    let each = [&A, &B, &C].map(|name| by_lookup(&map, name));
                    assert_eq!(one_pass, each);
                }
            }
        }
        assert_eq!((seen_scan, seen_lookup), ([true; 2], [true; 2]));
    }

    #[test]
    fn base64_fast_path_agrees_with_the_lenient_decoder() {
        // Every string up to 8 characters (two quads) over: a digit with zero low bits, one
        // with non-zero low bits (non-canonical last digit), two more valid digits, padding,
        // and an invalid character.
        let alphabet = [b'A', b'Q', b'/', b'z', b'=', b'-'];
        let mut checked = 0;
        for len in 0..=8u32 {
            for n in 0..alphabet.len().pow(len) {
                let mut text = Vec::new();
                let mut n = n;
                for _ in 0..len {
                    text.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let text = std::str::from_utf8(&text).unwrap();
                let mut out = [0u8; 16];
                let ours = Encoding::Base64
                    .decode(text, &mut out)
                    .map(|n| out[..n].to_vec());
                let mut lenient = [0u8; 16];
                let expected = LENIENT_BASE64
                    .decode_slice(text, &mut lenient)
                    .ok()
                    .map(|n| lenient[..n].to_vec());
                assert_eq!(ours, expected, "{text:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, (0..=8).map(|l| 6usize.pow(l)).sum::<usize>());
    }

    #[test]
    fn base64_decodes_into_a_fixed_buffer() {
        let mut out = [0u8; MAX_SIGNATURE_LEN];
        assert_eq!(Encoding::Base64.decode("AAEC", &mut out), Some(3));
        assert_eq!(Encoding::Base64.decode("AAECAw", &mut out), Some(4));
        assert_eq!(Encoding::Base64.decode("AAECAw==", &mut out), Some(4));
        assert_eq!(Encoding::Base64.decode("A", &mut out), None);
        assert_eq!(Encoding::Base64.decode("!!!!", &mut out), None);
        let long = "A".repeat(MAX_SIGNATURE_LEN / 3 * 4 + 8);
        assert_eq!(Encoding::Base64.decode(&long, &mut out), None);
        let largest = STANDARD.encode([7u8; MAX_SIGNATURE_LEN]);
        assert_eq!(
            Encoding::Base64.decode(&largest, &mut out),
            Some(MAX_SIGNATURE_LEN)
        );
    }

    #[test]
    fn hex_decodes_into_a_fixed_buffer() {
        let mut out = [0u8; MAX_SIGNATURE_LEN];
        assert_eq!(Encoding::Hex.decode("00ff", &mut out), Some(2));
        assert_eq!(&out[..2], &[0, 255]);
        assert_eq!(Encoding::Hex.decode("0F", &mut out), Some(1));
        assert_eq!(Encoding::Hex.decode("0", &mut out), None);
        assert_eq!(Encoding::Hex.decode("zz", &mut out), None);
        assert_eq!(
            Encoding::Hex.decode(&"ab".repeat(MAX_SIGNATURE_LEN + 1), &mut out),
            None
        );
    }

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
