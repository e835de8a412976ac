//! A verification already in flight when its key is invalidated is refused.
//!
//! `Keyring::rotate(new, Duration::ZERO)` and `Keyring::revoke` promise that no request is
//! accepted with the old key once the call returned, "even one that was being verified during
//! the call". Such a request took its keyring snapshot before the change, so the snapshot still
//! lists the key; only the check made after the MAC is computed can refuse it. These tests stop
//! the verifying thread inside the MAC (a scheme whose `signed_content` waits on the test
//! thread), make the change, then let the verification finish: deterministic, no timing luck.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use http::HeaderMap;
use webhook_guard::scheme::{Delivery, GitHub, Scheme, Signature};
use webhook_guard::{KeyId, KeyRole, Keyring, Secret, SignError, Signer, Verifier, VerifyError};

const BODY: &[u8] = br#"{"action":"opened"}"#;

/// Longest the test waits for the other thread before failing instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// GitHub's scheme, except that the `pause_at`-th call of `signed_content` (counted from 1, one
/// call per live key, current key first) reports that it is paused and waits to be resumed.
#[derive(Debug)]
struct Pausing {
    pause_at: usize,
    calls: Mutex<usize>,
    paused: Mutex<Sender<()>>,
    resume: Mutex<Receiver<()>>,
}

/// The test thread's end of a [`Pausing`] scheme.
struct Control {
    paused: Receiver<()>,
    resume: Sender<()>,
}

impl Control {
    /// Waits until the verifying thread is paused inside the MAC.
    fn wait_paused(&self) {
        self.paused
            .recv_timeout(WAIT)
            .expect("the verification never reached the paused MAC");
    }

    /// Lets the verifying thread finish.
    fn resume(&self) {
        self.resume.send(()).expect("the verifying thread is gone");
    }
}

fn pausing(pause_at: usize) -> (Pausing, Control) {
    let (paused_tx, paused_rx) = mpsc::channel();
    let (resume_tx, resume_rx) = mpsc::channel();
    let scheme = Pausing {
        pause_at,
        calls: Mutex::new(0),
        paused: Mutex::new(paused_tx),
        resume: Mutex::new(resume_rx),
    };
    let control = Control {
        paused: paused_rx,
        resume: resume_tx,
    };
    (scheme, control)
}

impl Scheme for Pausing {
    fn name(&self) -> &'static str {
        "pausing-github"
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        GitHub.parse(headers, delivery)
    }

    fn timestamp_text(&self, at: chrono::DateTime<chrono::Utc>) -> Option<String> {
        GitHub.timestamp_text(at)
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        if call == self.pause_at {
            self.paused.lock().unwrap().send(()).unwrap();
            self.resume
                .lock()
                .unwrap()
                .recv_timeout(WAIT)
                .expect("the test thread never resumed the verification");
        }
        GitHub.signed_content(delivery, body, out);
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        GitHub.signature_headers(delivery, signatures, headers)
    }
}

fn secret(text: &str) -> Secret {
    Secret::from_bytes(text).unwrap()
}

fn signed_with(text: &str) -> HeaderMap {
    Signer::new(GitHub, secret(text)).sign(BODY).unwrap()
}

/// Verifies `headers` on another thread, paused inside the MAC while `change` runs on this one;
/// returns the verification's result.
fn verify_around(
    verifier: Verifier,
    control: &Control,
    headers: HeaderMap,
    change: impl FnOnce(),
) -> Result<(KeyId, KeyRole), VerifyError> {
    thread::scope(|s| {
        let verifying = s.spawn(move || {
            verifier
                .verify(&headers, BODY)
                .map(|v| (v.key_id().clone(), v.role()))
        });
        control.wait_paused();
        change();
        control.resume();
        verifying.join().unwrap()
    })
}

#[test]
fn delivery_in_flight_is_accepted_when_nothing_changes_during_it() {
    // The control for the two tests below: pausing alone does not refuse anything.
    let keyring = Keyring::builder()
        .key_id(KeyId::new("old"))
        .build(secret("old"));
    let (scheme, control) = pausing(1);
    let verifier = Verifier::new(scheme, keyring);
    let result = verify_around(verifier, &control, signed_with("old"), || {});
    assert_eq!(result, Ok((KeyId::new("old"), KeyRole::Current)));
}

#[test]
fn rotation_with_grace_zero_refuses_a_delivery_already_being_verified_with_the_old_key() {
    let keyring = Keyring::builder()
        .key_id(KeyId::new("old"))
        .build(secret("old"));
    // One live key, so the first MAC is the old key's.
    let (scheme, control) = pausing(1);
    let verifier = Verifier::new(scheme, keyring.clone());
    let result = verify_around(verifier, &control, signed_with("old"), || {
        let rotation = keyring
            .rotate_with_id(KeyId::new("new"), secret("new"), Duration::ZERO)
            .unwrap();
        assert_eq!(rotation.old_expires_at, None);
    });
    // The snapshot taken before the rotation had the old key, and its MAC matched; the key was
    // retired before the verdict, so the delivery is refused.
    assert_eq!(
        result,
        Err(VerifyError::NoMatch {
            signatures: 1,
            keys: 1
        })
    );
    assert_eq!(keyring.current_id(), KeyId::new("new"));
}

#[test]
fn revoke_refuses_a_delivery_already_being_verified_with_the_revoked_grace_key() {
    let keyring = Keyring::builder()
        .key_id(KeyId::new("old"))
        .build(secret("old"));
    keyring
        .rotate_with_id(KeyId::new("new"), secret("new"), Duration::from_secs(600))
        .unwrap();
    // Current key first: the second MAC is the grace key's.
    let (scheme, control) = pausing(2);
    let verifier = Verifier::new(scheme, keyring.clone());
    let result = verify_around(verifier, &control, signed_with("old"), || {
        keyring.revoke(&KeyId::new("old")).unwrap();
    });
    // Both keys of the earlier snapshot were tried; the grace key's MAC matched but it was
    // revoked before the verdict.
    assert_eq!(
        result,
        Err(VerifyError::NoMatch {
            signatures: 1,
            keys: 2
        })
    );
    let live: Vec<KeyId> = keyring.keys().into_iter().map(|k| k.id).collect();
    assert_eq!(live, [KeyId::new("new")]);
}

#[test]
fn revoking_another_grace_key_leaves_a_delivery_in_flight_accepted() {
    // Retirement is per key: the in-flight delivery's own key is untouched.
    let keyring = Keyring::builder()
        .key_id(KeyId::new("a"))
        .build(secret("a"));
    keyring
        .rotate_with_id(KeyId::new("b"), secret("b"), Duration::from_secs(600))
        .unwrap();
    keyring
        .rotate_with_id(KeyId::new("c"), secret("c"), Duration::from_secs(600))
        .unwrap();
    // Keys in order: c (current), b, a. The delivery is signed with b, the second MAC.
    let (scheme, control) = pausing(2);
    let verifier = Verifier::new(scheme, keyring.clone());
    let result = verify_around(verifier, &control, signed_with("b"), || {
        keyring.revoke(&KeyId::new("a")).unwrap();
    });
    assert_eq!(result, Ok((KeyId::new("b"), KeyRole::Grace)));
}
