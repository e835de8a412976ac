//! [Standard Webhooks](https://www.standardwebhooks.com/) (and Svix, which it came from).
//!
//! Follows the specification's "Verifying webhook authenticity" section
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a space-separated
//! list of `version,signature` pairs. `v1` is base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! keyed with the base64-decoded part of a `whsec_` secret ([`Secret::from_whsec`]); other
//! versions are skipped. With the `ed25519` feature, asymmetric `v1a` entries (base64 Ed25519
//! signatures over the same content) are checked against the keyring's public keys
//! ([`PublicKey::from_whpk`](crate::PublicKey::from_whpk)), so one keyring may mix both. An
//! Ed25519 check hashes the whole content again, so a request's cost is bounded: repeated `v1a`
//! entries are checked once, and the first two distinct entries are read (a sender signs with
//! one key, two while it rotates its own): at most 2 × k signature checks for k live public
//! keys. Svix sends the same headers
//! under `svix-*` names, which are read when no `webhook-signature` is present.
//!
//! [`Secret::from_whsec`]: crate::Secret::from_whsec

use http::header::{HeaderMap, HeaderName};

use super::{
    headers, malformed, out_joined, required, same, split_once_byte, value, Algorithm, Delivery,
    Encoding, Scheme, Signature,
};
use crate::error::SignError;
use crate::error::{HeaderProblem, VerifyError};

const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const SVIX_TIMESTAMP: HeaderName = HeaderName::from_static("svix-timestamp");
const SVIX_SIGNATURE: HeaderName = HeaderName::from_static("svix-signature");

/// Standard Webhooks `v1` signatures, also under Svix's `svix-*` header names.
///
/// # Examples
///
/// The reference libraries' test vector (standard-webhooks `libraries/javascript/src/webhook.test.ts`,
/// "sign function works"):
///
/// ```
/// use http::HeaderMap;
/// use webhook_guard::{scheme::StandardWebhooks, Keyring, Secret, Verifier};
///
/// let keyring = Keyring::new(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
/// let verifier = Verifier::new(StandardWebhooks, keyring);
///
/// let mut headers = HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
/// headers.insert("webhook-timestamp", "1614265330".parse()?);
/// headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse()?);
///
/// let at = chrono::DateTime::from_timestamp(1614265330, 0).unwrap();
/// let verified = verifier.verify_at(&headers, br#"{"test": 2432232314}"#, at)?;
/// assert_eq!(verified.webhook_id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardWebhooks;

impl Scheme for StandardWebhooks {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "standard-webhooks"
    }

    fn parse<'h>(
        &self,
        map: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        // The Standard Webhooks names, then Svix's.
        let [list, id, timestamp] = headers(map, [&SIGNATURE, &ID, &TIMESTAMP]);
        let (list, id, timestamp, [signature, id_name, timestamp_name]) = match list? {
            Some(list) => (list, id, timestamp, [SIGNATURE, ID, TIMESTAMP]),
            None => {
                let [list, id, timestamp] =
                    headers(map, [&SVIX_SIGNATURE, &SVIX_ID, &SVIX_TIMESTAMP]);
                let list = list?.ok_or(VerifyError::MissingHeader { name: SIGNATURE })?;
                let names = [SVIX_SIGNATURE, SVIX_ID, SVIX_TIMESTAMP];
                (list, id, timestamp, names)
            }
        };
        let id = required(id?, &id_name)?;
        delivery.set_id(id);
        delivery.set_timestamp(&timestamp_name, required(timestamp?, &timestamp_name)?)?;
        for item in list.split(' ').filter(|item| !item.is_empty()) {
            let Some((version, sig)) = split_once_byte(item, b',') else {
                return Err(malformed(&signature, HeaderProblem::Unparsable));
            };
            if same(version, "v1") {
                delivery.push_listed_signature(&signature, sig, Encoding::Base64)?;
            } else if cfg!(feature = "ed25519") && same(version, "v1a") {
                // Asymmetric entries, checked against the keyring's Ed25519 public keys.
                delivery.push_listed_signature_as(
                    &signature,
                    sig,
                    Encoding::Base64,
                    Algorithm::Ed25519,
                )?;
            }
        }
        delivery.finish_list(&signature, "v1")
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let id = delivery.id().unwrap_or_default().as_bytes();
        let timestamp = delivery.timestamp_text().unwrap_or_default().as_bytes();
        out_joined(&[id, b".", timestamp, b"."], out);
        out(body);
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        let list = signatures
            .iter()
            .map(|sig| {
                let version = match sig.algorithm {
                    Algorithm::Ed25519 => "v1a",
                    _ => "v1",
                };
                format!("{version},{}", Encoding::Base64.encode(sig.bytes))
            })
            .collect::<Vec<_>>()
            .join(" ");
        headers.insert(ID, value(&ID, delivery.id().unwrap_or_default())?);
        headers.insert(
            TIMESTAMP,
            value(&TIMESTAMP, delivery.timestamp_text().unwrap_or_default())?,
        );
        headers.insert(SIGNATURE, value(&SIGNATURE, &list)?);
        Ok(())
    }
}
