//! What the framework tests (`extract_axum.rs`, `actix.rs`) share: one Standard Webhooks
//! keyring on a manual clock, the layer they both drive, and signed deliveries.

#![allow(dead_code)]

use http::HeaderMap;
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Clock, KeyId, Keyring, ManualClock, Secret, Signer, Verifier};

pub const NOW: i64 = 1_700_000_000;
pub const SECRET: &str = "framework test secret";
pub const NEW_SECRET: &str = "framework test secret, rotated";
pub const KEY_ID: &str = "key-framework";
/// The layer's body limit in these tests.
pub const LIMIT: usize = 256;

pub fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).expect("a non-empty secret")
}

/// A keyring whose current key is [`SECRET`], with id [`KEY_ID`].
pub fn keyring(clock: &ManualClock) -> Keyring {
    Keyring::builder()
        .clock(clock.clone())
        .key_id(KeyId::new(KEY_ID))
        .build(secret(SECRET))
}

/// The layer both frameworks drive: Standard Webhooks, [`LIMIT`] bytes.
pub fn layer_for(keyring: Keyring) -> WebhookLayer {
    WebhookLayer::new(Verifier::new(StandardWebhooks, keyring)).max_body_size(LIMIT)
}

/// Standard Webhooks headers for `body` signed with `key` now.
pub fn sign_with(clock: &ManualClock, key: &str, body: &[u8], id: &str) -> HeaderMap {
    Signer::new(StandardWebhooks, secret(key))
        .sign_at(body, id, clock.now())
        .expect("signed")
}

/// [`sign_with`] the current secret.
pub fn sign(clock: &ManualClock, body: &[u8], id: &str) -> HeaderMap {
    sign_with(clock, SECRET, body, id)
}
