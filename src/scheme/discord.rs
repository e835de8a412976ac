//! [Discord](https://discord.com/developers/docs/interactions/receiving-and-responding#security-and-authorization)
//! interaction signatures (feature `ed25519`).
//!
//! `X-Signature-Ed25519: <hex>`, an Ed25519 signature by the application's key over
//! `X-Signature-Timestamp` followed by the raw body; verify with the application's public key
//! ([`PublicKey::ed25519_hex`](crate::PublicKey::ed25519_hex)). Discord deliberately sends
//! requests with bad signatures and removes an endpoint that accepts them. The endpoint's `PING`
//! (`{"type":1}`) must be answered with `{"type":1}`; the middleware does it once the PING is
//! verified ([`Scheme::handshake`]).

use http::header::HeaderName;
use http::request::Parts;

use super::{answer, laid_out, Algorithm, Encoding, Scheme, TimestampedSignature};
use crate::error::VerifyError;
use crate::keyring::Keyring;
use crate::verified::Verified;

const SIGNATURE: HeaderName = HeaderName::from_static("x-signature-ed25519");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");
const LAYOUT: TimestampedSignature = TimestampedSignature {
    signature: SIGNATURE,
    timestamp: TIMESTAMP,
    prefix: "",
    encoding: Encoding::Hex,
    before: b"",
    between: b"",
};

/// Discord's `X-Signature-Ed25519` and `X-Signature-Timestamp` headers.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Discord, Keyring, PublicKey, SigningKey, Signer, Verifier};
///
/// let signing = SigningKey::ed25519_seed(&[7; 32])?; // Discord's side
/// let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
/// let headers = Signer::new(Discord, signing.clone()).sign_at(br#"{"type":2}"#, "", at)?;
/// let verifier = Verifier::new(Discord, Keyring::new(signing.public_key()));
/// verifier.verify_at(&headers, br#"{"type":2}"#, at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Discord;

impl Scheme for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Ed25519
    }

    fn handshake(
        &self,
        _: &Parts,
        body: &[u8],
        _: &Keyring,
        _: &Verified,
    ) -> Result<Option<http::Response<bytes::Bytes>>, VerifyError> {
        let is_ping = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|interaction| interaction.get("type")?.as_u64())
            == Some(1);
        Ok(is_ping.then(|| answer("application/json", &b"{\"type\":1}"[..])))
    }

    laid_out!(LAYOUT);
}
