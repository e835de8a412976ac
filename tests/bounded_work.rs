//! The work one request can cause is bounded by construction, not by a constant: a scheme that
//! computes its signed content does so once per request, however many keys are live; form
//! parameters and public-key checks are capped (review findings, issue 15 A).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use webhook_guard::scheme::{
    Algorithm, Delivery, Scheme, Signature, Twilio, MAX_TWILIO_PARAMETERS,
};
use webhook_guard::{Keyring, ManualClock, Secret, SignError, Signer, Verifier, VerifyError};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/twilio/sms";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).expect("a valid time")
}

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

/// A keyring of eight live secrets, `key0` current and `key1`..`key7` in their grace period.
fn eight_keys() -> Keyring {
    let keyring = Keyring::builder()
        .clock(ManualClock::at_unix(NOW))
        .build(secret("key7"));
    for i in (0..7).rev() {
        keyring
            .rotate(secret(&format!("key{i}")), Duration::from_secs(3600))
            .expect("eight keys fit the default cap");
    }
    assert_eq!(keyring.keys().len(), 8);
    keyring
}

/// Twilio, counting how often its signed content is produced.
#[derive(Debug)]
struct Counted {
    calls: Arc<AtomicUsize>,
}

impl Scheme for Counted {
    fn name(&self) -> &'static str {
        "counted-twilio"
    }
    fn algorithm(&self) -> Algorithm {
        Twilio.algorithm()
    }
    fn uses_url(&self) -> bool {
        Twilio.uses_url()
    }
    fn assembles_content(&self) -> bool {
        Twilio.assembles_content()
    }
    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        Twilio.timestamp_text(at)
    }
    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        Twilio.parse(headers, delivery)
    }
    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Twilio.signed_content(delivery, body, out)
    }
    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        Twilio.signature_headers(delivery, signatures, headers)
    }
}

fn form(params: usize) -> Vec<u8> {
    (0..params)
        .map(|i| format!("p{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn twilio_headers(key: &str, body: &[u8]) -> HeaderMap {
    Signer::new(Twilio, secret(key))
        .url(URL)
        .sign_at(body, "", now())
        .expect("a Twilio signature")
}

/// Review finding: Twilio's form parameters were parsed and sorted once per live key (8 keys,
/// 1 MiB of short parameters: 2.18 s). They are now assembled once per request.
#[test]
fn twilio_parameters_are_parsed_once_per_request_whatever_the_key_count() {
    let calls = Arc::new(AtomicUsize::new(0));
    let verifier = Verifier::new(
        Counted {
            calls: Arc::clone(&calls),
        },
        eight_keys(),
    );
    let body = form(40);
    for (key, accepted) in [("key7", true), ("key0", true), ("forged", false)] {
        calls.store(0, Ordering::SeqCst);
        let outcome = verifier.verify_url_at(URL, &twilio_headers(key, &body), &body, now());
        assert_eq!(outcome.is_ok(), accepted, "{key}: {outcome:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{key}");
    }
}

#[test]
fn twilio_bodies_with_more_parameters_than_the_cap_are_refused_before_any_mac() {
    let verifier = Verifier::new(Twilio, eight_keys());
    let at_cap = form(MAX_TWILIO_PARAMETERS);
    let outcome = verifier.verify_url_at(URL, &twilio_headers("key3", &at_cap), &at_cap, now());
    assert!(outcome.is_ok(), "{outcome:?}");

    let over = form(MAX_TWILIO_PARAMETERS + 1);
    let refused = verifier.verify_url_at(URL, &twilio_headers("key3", &over), &over, now());
    assert_eq!(
        refused,
        Err(VerifyError::TooManyParameters {
            max: MAX_TWILIO_PARAMETERS
        })
    );
    let error = refused.expect_err("refused");
    assert!(error.is_malformed());
    assert_eq!(
        error.to_string(),
        format!("body has more than {MAX_TWILIO_PARAMETERS} form parameters")
    );
}

#[cfg(feature = "ed25519")]
mod v1a {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use http::HeaderValue;
    use webhook_guard::scheme::StandardWebhooks;
    use webhook_guard::SigningKey;

    use super::*;

    const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;

    fn key(seed: u8) -> SigningKey {
        SigningKey::ed25519_seed(&[seed; 32]).expect("a 32-byte seed")
    }

    /// The `v1a,…` entry `signing` writes for `BODY`.
    fn entry(signing: &SigningKey) -> String {
        let headers = Signer::new(StandardWebhooks, signing.clone())
            .sign_at(BODY, "msg_1", now())
            .expect("a v1a signature");
        headers["webhook-signature"]
            .to_str()
            .expect("ASCII")
            .to_owned()
    }

    fn headers(entries: &[String]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        headers.insert("webhook-timestamp", HeaderValue::from(NOW));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&entries.join(" ")).expect("a valid header value"),
        );
        headers
    }

    fn forged(i: u8) -> String {
        format!("v1a,{}", B64.encode([i; 64]))
    }

    /// A sender rotating its own key signs with both; the receiver that knows only one of
    /// them accepts either order.
    #[test]
    fn a_sender_rotating_its_key_is_accepted_by_a_receiver_with_one_public_key() {
        let (old, new) = (key(1), key(2));
        let verifier = Verifier::new(
            StandardWebhooks,
            Keyring::builder()
                .clock(ManualClock::at_unix(NOW))
                .build(old.public_key()),
        );
        for entries in [[entry(&new), entry(&old)], [entry(&old), entry(&new)]] {
            let outcome = verifier.verify_at(&headers(&entries), BODY, now());
            assert!(outcome.is_ok(), "{entries:?}: {outcome:?}");
        }
    }

    /// Review finding: sixteen entries were each checked against every public key (16 × 8
    /// Ed25519 verifications over the body). Repeated entries count once, and the first two
    /// distinct entries are read, however many keys are live.
    #[test]
    fn repeated_v1a_entries_count_once_and_the_distinct_ones_are_capped() {
        let signing = key(7);
        let verifier = Verifier::new(
            StandardWebhooks,
            Keyring::builder()
                .clock(ManualClock::at_unix(NOW))
                .build(signing.public_key()),
        );
        // Two distinct entries are read. Repeats of a forged one do not use up that budget.
        let mut entries = vec![forged(1); 14];
        entries.push(entry(&signing));
        assert!(verifier.verify_at(&headers(&entries), BODY, now()).is_ok());

        // Two distinct forgeries before the valid one: the valid one is past the budget.
        let entries = [forged(1), forged(2), entry(&signing)];
        assert!(matches!(
            verifier.verify_at(&headers(&entries), BODY, now()),
            Err(VerifyError::NoMatch { .. })
        ));

        // Nor with more live public keys: the budget is per key, not per entry.
        verifier
            .keyring()
            .add_grace_key(key(8).public_key(), now() + chrono::Duration::seconds(600))
            .expect("room for a second key");
        assert!(matches!(
            verifier.verify_at(&headers(&entries), BODY, now()),
            Err(VerifyError::NoMatch { .. })
        ));
        let entries = [forged(1), entry(&signing), forged(2)];
        assert!(verifier.verify_at(&headers(&entries), BODY, now()).is_ok());
    }
}
