//! Signature headers that list several signatures (Stripe `v1=`, Standard Webhooks `v1,`, Paddle
//! `h1=`): a delivery verifies when any listed signature matches a live key, however often the
//! matching one is repeated and wherever it stands among wrong ones.
//!
//! A sender repeats a signature when two of its live secrets are equal (a "rotation" to the
//! value it already had), so a repeat must never cancel a match out.

use http::{HeaderMap, HeaderName, HeaderValue};
use webhook_guard::scheme::{Paddle, Scheme, StandardWebhooks, Stripe};
use webhook_guard::{Clock, KeyId, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier};

const T0: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"type":"invoice.paid"}"#;
const ID: &str = "msg_2Lh7dOV3xGJy";

/// A list-signature scheme: its header, how entries are separated, and the tag before each.
struct List {
    scheme: fn() -> Box<dyn Scheme>,
    header: &'static str,
    /// Separator between the leading fields (timestamp) and each entry, and between entries.
    separator: &'static str,
    /// What precedes a signature in an entry: `v1=`, `v1,`, `h1=`.
    tag: &'static str,
}

const LISTS: [List; 3] = [
    List {
        scheme: || Box::new(Stripe),
        header: "stripe-signature",
        separator: ",",
        tag: "v1=",
    },
    List {
        scheme: || Box::new(StandardWebhooks),
        header: "webhook-signature",
        separator: " ",
        tag: "v1,",
    },
    List {
        scheme: || Box::new(Paddle),
        header: "paddle-signature",
        separator: ";",
        tag: "h1=",
    },
];

impl List {
    /// The headers `secret` signs BODY with at T0, split into the signature header's text
    /// before the single signature entry, and that entry's signature.
    fn signed(&self, secret: &str) -> (HeaderMap, String, String) {
        let headers = Signer::new((self.scheme)(), Secret::from_bytes(secret).unwrap())
            .sign_at(BODY, ID, ManualClock::at_unix(T0).now())
            .unwrap();
        let text = headers[self.header].to_str().unwrap().to_owned();
        let (before, signature) = text
            .rsplit_once(self.tag)
            .unwrap_or_else(|| panic!("{}: no {} in {text}", self.header, self.tag));
        (headers.clone(), before.to_owned(), signature.to_owned())
    }

    /// `headers` with the signature header's entries replaced by `signatures`.
    fn with_entries(&self, headers: &HeaderMap, before: &str, signatures: &[&str]) -> HeaderMap {
        let entries: Vec<String> = signatures
            .iter()
            .map(|s| format!("{}{s}", self.tag))
            .collect();
        let text = format!("{before}{}", entries.join(self.separator));
        let mut headers = headers.clone();
        headers.insert(
            HeaderName::from_static(self.header),
            HeaderValue::from_str(&text).unwrap(),
        );
        headers
    }

    fn verifier(&self) -> Verifier {
        let keyring = Keyring::builder()
            .clock(ManualClock::at_unix(T0))
            .key_id(KeyId::new("k"))
            .build(Secret::from_bytes("right").unwrap());
        Verifier::new((self.scheme)(), keyring)
    }
}

#[test]
fn the_valid_signature_listed_twice_verifies() {
    for list in &LISTS {
        let (headers, before, good) = list.signed("right");
        let headers = list.with_entries(&headers, &before, &[&good, &good]);
        assert_eq!(
            list.verifier()
                .verify(&headers, BODY)
                .map(|v| (v.key_id().clone(), v.role())),
            Ok((KeyId::new("k"), KeyRole::Current)),
            "{}: {:?}",
            list.header,
            headers[list.header]
        );
    }
}

#[test]
fn the_valid_signature_listed_three_times_verifies() {
    for list in &LISTS {
        let (headers, before, good) = list.signed("right");
        let headers = list.with_entries(&headers, &before, &[&good, &good, &good]);
        let verified = list.verifier().verify(&headers, BODY);
        assert!(verified.is_ok(), "{}: {verified:?}", list.header);
    }
}

#[test]
fn the_valid_signature_repeated_among_wrong_ones_verifies() {
    for list in &LISTS {
        let (headers, before, good) = list.signed("right");
        let (_, _, bad) = list.signed("wrong");
        for entries in [
            [&bad, &good, &good],
            [&good, &bad, &good],
            [&good, &good, &bad],
        ] {
            let entries = entries.map(String::as_str);
            let headers = list.with_entries(&headers, &before, &entries);
            let verified = list.verifier().verify(&headers, BODY);
            assert!(
                verified.is_ok(),
                "{}: {entries:?}: {verified:?}",
                list.header
            );
        }
    }
}

#[test]
fn a_wrong_signature_repeated_is_still_refused() {
    // The counterpart: repeats never turn a non-match into a match.
    for list in &LISTS {
        let (headers, before, _) = list.signed("right");
        let (_, _, bad) = list.signed("wrong");
        for times in 1..=3 {
            let entries = vec![bad.as_str(); times];
            let headers = list.with_entries(&headers, &before, &entries);
            let refused = list.verifier().verify(&headers, BODY);
            assert!(
                matches!(refused, Err(webhook_guard::VerifyError::NoMatch { signatures, keys: 1 }) if signatures == times),
                "{}: {times} × wrong: {refused:?}",
                list.header
            );
        }
    }
}

#[test]
fn a_sender_keyring_holding_one_secret_twice_signs_a_repeat_that_verifies() {
    // The repeat as a sender makes it: one signature per live key, two keys with equal secrets.
    let clock = ManualClock::at_unix(T0);
    let sender = Keyring::builder()
        .clock(clock.clone())
        .build(Secret::from_bytes("right").unwrap());
    sender
        .rotate(
            Secret::from_bytes("right").unwrap(),
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let headers = Signer::from_keyring(Stripe, sender)
        .sign_at(BODY, ID, clock.now())
        .unwrap();
    let text = headers["stripe-signature"].to_str().unwrap();
    let signatures: Vec<&str> = text.split(",v1=").skip(1).collect();
    assert_eq!(signatures.len(), 2, "{text}");
    assert_eq!(signatures[0], signatures[1], "{text}");
    let verified = LISTS[0].verifier().verify(&headers, BODY);
    assert!(verified.is_ok(), "{text}: {verified:?}");
}
