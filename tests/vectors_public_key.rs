//! Public-key schemes (features `ed25519`, `ecdsa`): vendor vectors, a keyring that mixes HMAC
//! secrets and public keys, and the same rotation semantics as for secrets.
#![cfg(all(feature = "ed25519", feature = "ecdsa"))]

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{Discord, SendGrid, StandardWebhooks};
use webhook_guard::{
    KeyRole, Keyring, ManualClock, PublicKey, Secret, Signer, SigningKey, Verifier, VerifyError,
};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::try_from(*name).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

// Source: standard-webhooks/standard-webhooks, libraries/go/webhook_asymmetric_test.go,
// TestAsymmetricWebhookSign (the key is the base64 of a 32-byte Ed25519 seed).
const V1A_KEY: &str = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
const V1A_SIG: &str =
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;

#[test]
fn standard_webhooks_v1a_reference_vector() {
    let signing = SigningKey::from_whsk(V1A_KEY).unwrap();
    let signed = Signer::new(StandardWebhooks, signing.clone())
        .sign_at(SW_BODY, SW_ID, at(1614265330))
        .unwrap();
    assert_eq!(signed["webhook-signature"], V1A_SIG);

    let h = headers(&[
        ("webhook-id", SW_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", V1A_SIG),
    ]);
    let public = signing.public_key();
    let verifier = Verifier::new(StandardWebhooks, Keyring::new(public.clone()));
    verifier.verify_at(&h, SW_BODY, at(1614265330)).unwrap();
    // The same key given as whpk_.
    let whpk = format!("whpk_{}", base64_encode(&public.to_bytes()));
    assert_eq!(PublicKey::from_whpk(&whpk).unwrap(), public);
    // A changed body or id is refused.
    assert!(matches!(
        verifier.verify_at(&h, br#"{"test": 2432232315}"#, at(1614265330)),
        Err(VerifyError::NoMatch { .. })
    ));
}

fn base64_encode(bytes: &[u8]) -> String {
    // Tests avoid a base64 dependency: a tiny encoder for 32 bytes is enough here.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn one_keyring_mixes_hmac_secrets_and_public_keys() {
    // The spec's example header carries both a v1 and a v1a entry.
    let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let signing = SigningKey::from_whsk(V1A_KEY).unwrap();
    let clock = ManualClock::at_unix(1614265330);
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(signing.public_key());
    let verifier = Verifier::new(StandardWebhooks, keyring.clone());
    let v1 = Signer::new(StandardWebhooks, secret.clone())
        .sign_at(SW_BODY, SW_ID, at(1614265330))
        .unwrap();
    // Only the public key so far: the HMAC-signed delivery is refused.
    assert!(verifier.verify(&v1, SW_BODY).is_err());
    let id = keyring
        .add_grace_key(secret, at(1614265330) + chrono::Duration::minutes(10))
        .unwrap();
    let verified = verifier.verify(&v1, SW_BODY).unwrap();
    assert_eq!(verified.key_id(), &id);
    assert_eq!(verified.role(), KeyRole::Grace);
    // A header with both entries verifies with either key.
    let both = format!("{} {V1A_SIG}", v1["webhook-signature"].to_str().unwrap());
    let mut h = v1.clone();
    h.insert("webhook-signature", HeaderValue::from_str(&both).unwrap());
    assert_eq!(
        verifier.verify(&h, SW_BODY).unwrap().role(),
        KeyRole::Current
    );
}

// Computed: an Ed25519 key from the seed 00 01 … 1f signing Discord's PING body
// (discord-interactions-js's pingRequestBody) at timestamp 1700000000; Ed25519 is deterministic.
const DISCORD_PUBLIC: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const DISCORD_BODY: &str = r#"{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}"#;
const DISCORD_SIG: &str = "81d7269c4a7ffcec3d0e612cbf333e052282a6d3c913296937ebc937bdc7821690ce825568ac2f91057bd34a640c1ddfca8faeeda4446b68f663d61d753c6102";

#[test]
fn discord_vector_and_signer() {
    let public = PublicKey::ed25519_hex(DISCORD_PUBLIC).unwrap();
    let h = headers(&[
        ("x-signature-ed25519", DISCORD_SIG),
        ("x-signature-timestamp", "1700000000"),
    ]);
    let verifier = Verifier::new(Discord, Keyring::new(public.clone()));
    verifier
        .verify_at(&h, DISCORD_BODY.as_bytes(), at(1700000000))
        .unwrap();
    // Discord's security checks: a wrong signature must be refused.
    let mut forged = h.clone();
    let mut bad = DISCORD_SIG.to_owned();
    bad.replace_range(0..2, "82");
    forged.insert("x-signature-ed25519", HeaderValue::from_str(&bad).unwrap());
    assert!(matches!(
        verifier.verify_at(&forged, DISCORD_BODY.as_bytes(), at(1700000000)),
        Err(VerifyError::NoMatch { .. })
    ));
    let seed: Vec<u8> = (0u8..32).collect();
    let signing = SigningKey::ed25519_seed(&seed).unwrap();
    assert_eq!(signing.public_key(), public);
    let signed = Signer::new(Discord, signing)
        .sign_at(DISCORD_BODY.as_bytes(), "", at(1700000000))
        .unwrap();
    assert_eq!(signed["x-signature-ed25519"], DISCORD_SIG);
    // A public key cannot sign.
    assert!(Signer::new(Discord, public).sign(b"{}").is_err());
}

#[tokio::test]
async fn discord_ping_is_answered_by_the_layer() {
    let clock = ManualClock::at_unix(1700000000);
    let keyring = Keyring::builder()
        .clock(clock)
        .build(PublicKey::ed25519_hex(DISCORD_PUBLIC).unwrap());
    let inner = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let service = WebhookLayer::new(Verifier::new(Discord, keyring)).layer(inner);
    let mut request = Request::post("/interactions")
        .body(Full::new(Bytes::from_static(DISCORD_BODY.as_bytes())))
        .unwrap();
    *request.headers_mut() = headers(&[
        ("x-signature-ed25519", DISCORD_SIG),
        ("x-signature-timestamp", "1700000000"),
    ]);
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"type":1}"#);
}

#[test]
fn sendgrid_sdk_vectors() {
    // Source: sendgrid/sendgrid-python test/unit/test_eventwebhook.py (payload ends in CRLF).
    let key = PublicKey::p256_der_base64("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==").unwrap();
    let h = headers(&[
        ("x-twilio-email-event-webhook-signature", "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="),
        ("x-twilio-email-event-webhook-timestamp", "1600112502"),
    ]);
    let payload = "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";
    let verifier = Verifier::new(SendGrid, Keyring::new(key));
    verifier
        .verify_at(&h, payload.as_bytes(), at(1600112502))
        .unwrap();
    // Without its CRLF the payload is a different message.
    assert!(verifier
        .verify_at(&h, payload.trim_end().as_bytes(), at(1600112502))
        .is_err());

    // Source: sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js, with the
    // test's wrong key too.
    let h = headers(&[
        ("x-twilio-email-event-webhook-signature", "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="),
        ("x-twilio-email-event-webhook-timestamp", "1588788367"),
    ]);
    let body = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
    let good = PublicKey::p256_der_base64("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==").unwrap();
    let wrong = PublicKey::p256_der_base64("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==").unwrap();
    Verifier::new(SendGrid, Keyring::new(good))
        .verify_at(&h, body, at(1588788367))
        .unwrap();
    assert!(Verifier::new(SendGrid, Keyring::new(wrong))
        .verify_at(&h, body, at(1588788367))
        .is_err());
}

#[test]
fn public_keys_rotate_like_secrets() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let old = SigningKey::ed25519_seed(&[1; 32]).unwrap();
    let new = SigningKey::ed25519_seed(&[2; 32]).unwrap();
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(old.public_key());
    let verifier = Verifier::new(Discord, keyring.clone());
    let sign = |key: &SigningKey| {
        Signer::new(Discord, key.clone())
            .sign_at(b"{}", "", webhook_guard::Clock::now(&clock))
            .unwrap()
    };
    let rotation = keyring
        .rotate(new.public_key(), Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        verifier.verify(&sign(&old), b"{}").unwrap().role(),
        KeyRole::Grace
    );
    assert_eq!(
        verifier.verify(&sign(&new), b"{}").unwrap().role(),
        KeyRole::Current
    );
    assert_eq!(keyring.keys().len(), 2);
    clock.set(rotation.old_expires_at.unwrap());
    assert!(verifier.verify(&sign(&old), b"{}").is_err());
    assert!(verifier.verify(&sign(&new), b"{}").is_ok());
    // Revoke works the same: a grace public key ends at once.
    keyring
        .rotate(old.public_key(), Duration::from_secs(600))
        .unwrap();
    let grace = keyring.keys()[1].id.clone();
    keyring.revoke(&grace).unwrap();
    assert!(verifier.verify(&sign(&new), b"{}").is_err());
    // Public keys show in Debug; signing keys never do.
    assert!(format!("{:?}", new).contains("redacted"));
    assert!(format!("{:?}", new.public_key()).starts_with("PublicKey(ed25519, "));
}

#[test]
fn bad_public_keys_get_precise_errors() {
    assert_eq!(
        PublicKey::ed25519_hex("abcd").unwrap_err().to_string(),
        "key is 2 bytes, expected 32"
    );
    assert_eq!(
        PublicKey::ed25519_hex("zz").unwrap_err().to_string(),
        "key is not valid hex"
    );
    assert_eq!(
        PublicKey::from_whpk("whsk_AAAA").unwrap_err().to_string(),
        "key does not start with \"whpk_\""
    );
    assert_eq!(
        PublicKey::p256_der_base64("AAAA").unwrap_err().to_string(),
        "not a valid P-256 SubjectPublicKeyInfo key"
    );
    let err = SigningKey::from_whsk("whsk_c2VjcmV0")
        .unwrap_err()
        .to_string();
    assert_eq!(err, "key is 6 bytes, expected 32");
}

// Source: PayPal's SDK sample webhook (WebhookEvent.verify samples and tests, copied in many
// repositories; docs/vendor-vectors.md §11) and the sandbox certificate its PAYPAL-CERT-URL served
// (expired in 2017: only its key is used, as pinned).
#[cfg(feature = "paypal")]
#[test]
fn paypal_sdk_sample() {
    use webhook_guard::scheme::PayPal;

    let body = include_bytes!("data/paypal_event_body.json");
    assert_eq!(body.len(), 1288);
    let key = PublicKey::rsa_certificate_pem(include_str!("data/paypal_sandbox_cert.pem")).unwrap();
    let h = headers(&[
        ("paypal-transmission-id", "dfb3be50-fd74-11e4-8bf3-77339302725b"),
        ("paypal-transmission-time", "2015-05-18T15:45:13Z"),
        ("paypal-auth-algo", "sha256"),
        ("paypal-cert-url", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"),
        ("paypal-transmission-sig", "thy4/U002quzxFavHPwbfJGcc46E8rc5jzgyeafWm5mICTBdY/8rl7WJpn8JA0GKA+oDTPsSruqusw+XXg5RLAP7ip53Euh9Xu3UbUhQFX7UgwzE2FeYoY6lyRMiiiQLzy9BvHfIzNIVhPad4KnC339dr6y2l+mN8ALgI4GCdIh3/SoJO5wE64Bh/ueWtt8EVuvsvXfda2Le5a2TrOI9vLEzsm9GS79hAR/5oLexNz8UiZr045Mr5ObroH4w4oNfmkTaDk9Rj0G19uvISs5QzgmBpauKr7Nw++JI0pr/v5mFctQkoWJSGfBGzPRXawrvIIVHQ9Wer48GR2g9ZiApWg=="),
    ]);
    let sent = DateTime::parse_from_rfc3339("2015-05-18T15:45:13Z")
        .unwrap()
        .to_utc();
    let verifier = Verifier::new(PayPal::new("4JH86294D6297924G"), Keyring::new(key.clone()));
    let verified = verifier.verify_at(&h, body, sent).unwrap();
    assert_eq!(
        verified.webhook_id(),
        Some("dfb3be50-fd74-11e4-8bf3-77339302725b")
    );
    // Another webhook's id, a changed body, or another algorithm are refused.
    let other = Verifier::new(PayPal::new("4JH86294D6297924H"), Keyring::new(key.clone()));
    assert!(matches!(
        other.verify_at(&h, body, sent),
        Err(VerifyError::NoMatch { .. })
    ));
    let mut changed = body.to_vec();
    changed[10] ^= 1;
    assert!(verifier.verify_at(&h, &changed, sent).is_err());
    let mut md5 = h.clone();
    md5.insert("paypal-auth-algo", HeaderValue::from_static("MD5withRSA"));
    assert!(matches!(
        verifier.verify_at(&md5, body, sent),
        Err(VerifyError::MalformedHeader { .. })
    ));
    // Replays are bounded by the transmission time like any timestamp.
    assert!(matches!(
        verifier.verify_at(&h, body, sent + chrono::Duration::hours(1)),
        Err(VerifyError::TimestampTooOld { .. })
    ));
    assert!(PublicKey::rsa_certificate_pem("not a certificate").is_err());
}
