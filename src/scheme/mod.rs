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

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::HeaderMap;

use crate::error::{SignError, VerifyError};

mod delivery;
mod headers;
mod identity;
mod layout;

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

pub use crate::algorithm::{Algorithm, Encoding};
pub(crate) use delivery::{outgoing, Candidate};
pub use delivery::{Delivery, Signature};
pub(crate) use headers::{
    after_prefix, key_value, malformed, required, same, split_once_byte, value,
};
pub use headers::{header, headers, required_header};
pub(crate) use identity::json_member;
pub use identity::Identity;
pub(crate) use layout::{
    answer, laid_out, out_joined, put_signature, put_timestamp, KeyedList, Layout, SignatureHeader,
    TimestampedSignature,
};

/// The names of the schemes that need nothing but a secret to verify (every HMAC scheme but
/// [`Custom`]), as [`by_name`] takes them and [`Scheme::name`] gives them: the one list the
/// management plane, `webhook-guard serve` and the CLI use.
pub const NAMES: [&str; 12] = [
    "standard-webhooks",
    "github",
    "stripe",
    "slack",
    "shopify",
    "square",
    "twilio",
    "zoom",
    "linear",
    "dropbox",
    "paddle",
    "twitch",
];

/// The scheme named `name` (one of [`NAMES`], or `standard` for `standard-webhooks`).
///
/// # Examples
///
/// ```
/// use webhook_guard::scheme::{by_name, NAMES};
///
/// assert_eq!(by_name("github").unwrap().name(), "github");
/// assert_eq!(by_name("standard").unwrap().name(), "standard-webhooks");
/// assert!(NAMES.iter().all(|name| by_name(name).unwrap().name() == *name));
/// assert!(by_name("carrier-pigeon").is_none());
/// ```
pub fn by_name(name: &str) -> Option<Box<dyn Scheme>> {
    Some(match name {
        "standard-webhooks" | "standard" => Box::new(StandardWebhooks),
        "github" => Box::new(GitHub),
        "stripe" => Box::new(Stripe),
        "slack" => Box::new(Slack),
        "shopify" => Box::new(Shopify),
        "square" => Box::new(Square),
        "twilio" => Box::new(Twilio),
        "zoom" => Box::new(Zoom),
        "linear" => Box::new(Linear),
        "dropbox" => Box::new(Dropbox),
        "paddle" => Box::new(Paddle),
        "twitch" => Box::new(Twitch),
        _ => return None,
    })
}

/// Most signatures one delivery may carry; more is refused as malformed. Senders put one per
/// live secret, and no platform keeps more than a few live.
pub const MAX_SIGNATURES: usize = 16;

/// Longest signature, in decoded bytes, a candidate may have: HMACs, Ed25519, DER ECDSA P-256
/// and RSA up to 4096 bits fit.
pub const MAX_SIGNATURE_LEN: usize = 512;

/// Longest header value the schemes read, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// Default timestamp tolerance, both ways: five minutes, as Stripe, Slack and Standard Webhooks
/// recommend. A scheme's [`tolerance`](Scheme::tolerance) unless its vendor asks for another.
pub const DEFAULT_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

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
    /// Default: [`DEFAULT_TOLERANCE`] (300 s).
    fn tolerance(&self) -> std::time::Duration {
        DEFAULT_TOLERANCE
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
    /// message, so nothing is copied to assemble them. Default: the body alone.
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let _ = delivery;
        out(body);
    }

    /// What identifies a verified delivery for [replay protection](crate::replay): an id the
    /// signature covers, or else [`Identity::Content`], the signed content itself (timestamp
    /// and URL included where signed). Never an unsigned header or a signature's text.
    /// Default: the delivery's [id](Delivery::id) when [`parse`](Scheme::parse) set one (set
    /// only what is signed), else [`Identity::Content`].
    fn identity<'d>(&self, delivery: &Delivery<'d>) -> Identity<'d> {
        match delivery.id() {
            Some(id) => Identity::Id(std::borrow::Cow::Borrowed(id)),
            None => Identity::Content,
        }
    }

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
    fn identity<'d>(&self, delivery: &Delivery<'d>) -> Identity<'d> {
        (**self).identity(delivery)
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
