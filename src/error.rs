//! The errors of verifying ([`VerifyError`], [`HeaderProblem`]) and signing ([`SignError`]):
//! the schemes produce them and the verifier, signer and middleware pass them on, so they sit
//! below all of these. Messages name headers and numbers, never a secret or an expected
//! signature.

use std::time::Duration;

use http::header::HeaderName;

use crate::algorithm::Encoding;

/// Why a delivery was refused. Messages name headers and numbers, never a secret or an
/// expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing header {name}")]
    MissingHeader {
        /// The header.
        name: HeaderName,
    },
    /// A header that must appear once appears several times.
    #[error("header {name} appears more than once")]
    DuplicateHeader {
        /// The header.
        name: HeaderName,
    },
    /// A header could not be read.
    #[error("malformed header {name}: {problem}")]
    MalformedHeader {
        /// The header.
        name: HeaderName,
        /// What is wrong with it.
        problem: HeaderProblem,
    },
    /// The timestamp is older than the tolerance.
    #[error("timestamp is {}s old, beyond the {}s tolerance", age.as_secs(), tolerance.as_secs())]
    TimestampTooOld {
        /// How old it is.
        age: Duration,
        /// The tolerance.
        tolerance: Duration,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error("timestamp is {}s in the future, beyond the {}s tolerance", ahead.as_secs(), tolerance.as_secs())]
    TimestampInFuture {
        /// How far ahead it is.
        ahead: Duration,
        /// The tolerance.
        tolerance: Duration,
    },
    /// Every signature has the wrong length for the MAC (a truncated or foreign signature).
    #[error("signature is {len} bytes, but the MAC is {expected} bytes")]
    SignatureLength {
        /// Length of the (first) signature.
        len: usize,
        /// Length of the MAC.
        expected: usize,
    },
    /// The scheme is set up so that it would accept deliveries it cannot authenticate (a custom
    /// scheme that reads a timestamp or id header its template does not sign).
    #[error("scheme misconfigured: {problem}")]
    Misconfigured {
        /// What is wrong.
        problem: &'static str,
    },
    /// The body lacks a field the scheme reads (such as Linear's `webhookTimestamp`).
    #[error("body has no valid {field} field")]
    MalformedBody {
        /// The field.
        field: &'static str,
    },
    /// A form-encoded body has more parameters than the scheme reads (Twilio: each one is
    /// decoded and sorted before the MAC, so their number bounds the work per request).
    #[error("body has more than {max} form parameters")]
    TooManyParameters {
        /// The limit.
        max: usize,
    },
    /// An unsigned header contradicts the signed body (Twitch's message type header on a body
    /// that is, or is not, a callback verification).
    #[error("header {name} contradicts the signed body")]
    ContradictsBody {
        /// The header.
        name: HeaderName,
    },
    /// The body's SHA-256 differs from the digest the sender signed (Twilio's `bodySHA256`).
    #[error("body does not match the signed bodySHA256 digest")]
    BodyDigestMismatch,
    /// The scheme signs the request URL, which was not given.
    #[error("scheme {scheme} signs the request URL; verify with verify_request or verify_url_at")]
    UrlRequired {
        /// The scheme's name.
        scheme: &'static str,
    },
    /// No signature matched any live key.
    #[error("no signature matched: {signatures} signature(s) checked against {keys} live key(s)")]
    NoMatch {
        /// Candidate signatures in the headers.
        signatures: usize,
        /// Live keys tried.
        keys: usize,
    },
}

impl VerifyError {
    /// True for errors in the request's form (missing, duplicated or malformed headers), as
    /// opposed to failed authentication (wrong signature, stale timestamp).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::MissingHeader { .. }
                | Self::DuplicateHeader { .. }
                | Self::MalformedHeader { .. }
                | Self::UrlRequired { .. }
                | Self::MalformedBody { .. }
                | Self::TooManyParameters { .. }
                | Self::ContradictsBody { .. }
        )
    }
}

/// What is wrong with a malformed header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// Longer than the scheme reads.
    #[error("{len} bytes, longer than the {max}-byte limit")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not visible ASCII.
    #[error("not visible ASCII")]
    NotAscii,
    /// Not in the scheme's syntax.
    #[error("not in the scheme's syntax")]
    Unparsable,
    /// No signature of the version the scheme verifies.
    #[error("no {version} signature")]
    NoSignature {
        /// The version looked for, such as `v1`.
        version: &'static str,
    },
    /// More signatures than the verifier reads.
    #[error("more than {max} signatures")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// An empty signature.
    #[error("empty signature")]
    EmptySignature,
    /// A signature that is not valid in its encoding, or too long to be a MAC.
    #[error("signature is not valid {} or is too long", encoding.name())]
    BadEncoding {
        /// The encoding expected.
        encoding: Encoding,
    },
    /// The value lacks its fixed prefix.
    #[error("does not start with {prefix:?}")]
    MissingPrefix {
        /// The prefix, such as `sha256=`.
        prefix: &'static str,
    },
    /// The value lacks a configured prefix.
    #[error("does not start with {prefix:?}")]
    MissingPrefixText {
        /// The prefix.
        prefix: String,
    },
    /// A required field of a structured header is absent.
    #[error("no {field}= field")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field that must appear once appears again.
    #[error("field {field}= appears more than once")]
    DuplicateField {
        /// The field.
        field: &'static str,
    },
    /// The timestamp is not a plain non-negative integer.
    #[error("timestamp is not a non-negative integer of at most 18 digits without leading zeros")]
    BadTimestamp,
    /// The timestamp is not an RFC 3339 date-time.
    #[error("timestamp is not an RFC 3339 date-time")]
    BadDateTime,
}

/// Why a delivery could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A value (usually the webhook id) contains characters a header cannot carry.
    #[error("value for header {name} is not a valid header value")]
    InvalidHeaderValue {
        /// The header.
        name: HeaderName,
    },
    /// The webhook id starts or ends with white space, which HTTP strips in transit, so the
    /// receiver would check a different id than was signed.
    #[error("webhook id starts or ends with white space")]
    InvalidId,
    /// No key of the signer can sign for this scheme (public keys only verify).
    #[error("no key can sign for this scheme: public keys only verify")]
    NoSigningKey,
    /// The scheme signs the request URL, and the signer has none.
    #[error("scheme {scheme} signs the request URL; set it with Signer::url")]
    UrlRequired {
        /// The scheme's name.
        scheme: &'static str,
    },
}

/// `error`'s message followed by its causes' (`a: b: c`), for errors whose own message leaves
/// the cause out (`tokio-postgres`'s "error performing TLS handshake").
#[cfg(feature = "postgres")]
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        // Some errors repeat their cause's message in their own.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}
