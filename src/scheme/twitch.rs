//! [Twitch EventSub](https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message)
//! webhook signatures and the callback verification.
//!
//! `Twitch-Eventsub-Message-Signature: sha256=<hex>`, an HMAC-SHA256 keyed with the
//! subscription's secret over `Twitch-Eventsub-Message-Id` ‖ `Twitch-Eventsub-Message-Timestamp`
//! ‖ body, with no separators. The timestamp is RFC 3339; Twitch asks receivers to refuse
//! messages older than ten minutes, this scheme's default tolerance, and to drop repeated
//! message ids. A new subscription is confirmed by a signed `webhook_callback_verification`
//! message whose `challenge` must be answered as `text/plain`; the middleware does it
//! ([`Scheme::handshake`]), with `nosniff` and `no-store`. What a message is, is decided by its
//! signed body (a `challenge` and no `event`), not by the unsigned
//! `Twitch-Eventsub-Message-Type` header: a type header that contradicts the body is refused
//! ([`VerifyError::ContradictsBody`], 400), so a signed verification message replayed as a
//! `notification` never reaches the handler.

use chrono::{DateTime, SecondsFormat, Utc};
use http::header::{HeaderMap, HeaderName};
use http::request::Parts;

use super::{
    answer, header, headers, malformed, out_joined, put_signature, put_timestamp, required, value,
    Delivery, Encoding, Scheme, Signature,
};
use crate::error::SignError;
use crate::error::{HeaderProblem, VerifyError};
use crate::keyring::Keyring;
use crate::verified::Verified;

const SIGNATURE: HeaderName = HeaderName::from_static("twitch-eventsub-message-signature");
const ID: HeaderName = HeaderName::from_static("twitch-eventsub-message-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("twitch-eventsub-message-timestamp");
const TYPE: HeaderName = HeaderName::from_static("twitch-eventsub-message-type");

/// Twitch EventSub's `Twitch-Eventsub-Message-*` headers.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::Twitch, Keyring, Secret, Signer, Verifier};
///
/// let secret = Secret::from_bytes("s3cRe7-twitch")?;
/// let at = chrono::DateTime::parse_from_rfc3339("2019-11-16T10:11:12.634234626Z")?.to_utc();
/// let headers = Signer::new(Twitch, secret.clone()).sign_at(b"{}", "e76c6bd4-55c9-4987-8304-da1588d8988b", at)?;
/// assert_eq!(headers["twitch-eventsub-message-timestamp"], "2019-11-16T10:11:12.634234626Z");
/// let verified = Verifier::new(Twitch, Keyring::new(secret)).verify_at(&headers, b"{}", at)?;
/// assert_eq!(verified.webhook_id(), Some("e76c6bd4-55c9-4987-8304-da1588d8988b"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Twitch;

impl Scheme for Twitch {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "twitch"
    }

    fn tolerance(&self) -> std::time::Duration {
        std::time::Duration::from_secs(600)
    }

    fn handshake(
        &self,
        request: &Parts,
        body: &[u8],
        _: &Keyring,
        _: &Verified,
    ) -> Result<Option<http::Response<bytes::Bytes>>, VerifyError> {
        let challenge = challenge(body);
        let says_verification =
            header(&request.headers, &TYPE)?.map(|kind| kind == "webhook_callback_verification");
        match (challenge, says_verification) {
            (Some(challenge), None | Some(true)) => Ok(Some(answer("text/plain", challenge))),
            (None, None | Some(false)) => Ok(None),
            (Some(_), Some(false)) | (None, Some(true)) => {
                Err(VerifyError::ContradictsBody { name: TYPE })
            }
        }
    }

    fn parse<'h>(
        &self,
        map: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        let [text, id, timestamp] = headers(map, [&SIGNATURE, &ID, &TIMESTAMP]);
        let text = required(text?, &SIGNATURE)?;
        delivery.set_id(required(id?, &ID)?);
        delivery.set_timestamp_rfc3339(&TIMESTAMP, required(timestamp?, &TIMESTAMP)?)?;
        let sig = text.strip_prefix("sha256=").ok_or_else(|| {
            malformed(
                &SIGNATURE,
                HeaderProblem::MissingPrefix { prefix: "sha256=" },
            )
        })?;
        delivery.push_signature(&SIGNATURE, sig, Encoding::Hex)
    }

    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let id = delivery.id().unwrap_or_default().as_bytes();
        out_joined(
            &[id, delivery.timestamp_text().unwrap_or_default().as_bytes()],
            out,
        );
        out(body);
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        put_signature(headers, &SIGNATURE, "sha256=", Encoding::Hex, signatures)?;
        headers.insert(ID, value(&ID, delivery.id().unwrap_or_default())?);
        put_timestamp(headers, &TIMESTAMP, delivery)?;
        let kind = match challenge(delivery.body()) {
            Some(_) => "webhook_callback_verification",
            None => "notification",
        };
        headers.insert(TYPE, http::HeaderValue::from_static(kind));
        Ok(())
    }
}

/// The `challenge` of a callback verification message: a JSON object with a `challenge` string
/// and no `event` (the other fields are skipped, not built).
fn challenge(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        challenge: Option<String>,
        event: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(body).ok()? {
        Probe {
            challenge: Some(challenge),
            event: None,
        } => Some(challenge),
        _ => None,
    }
}
