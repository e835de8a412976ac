//! Known-answer tests of the crate's own MAC-and-compare path against published HMAC-SHA256
//! vectors:
//!
//! - Project Wycheproof, `testvectors_v1/hmac_sha256_test.json` (C2SP/wycheproof, Apache-2.0),
//!   copied to `tests/data/wycheproof_hmac_sha256_test.json` (see `tests/data/README.md`);
//! - RFC 4231, "Identifiers and Test Vectors for HMAC-SHA-224, HMAC-SHA-256, HMAC-SHA-384, and
//!   HMAC-SHA-512", section 4 (test cases 1–7), typed in from the RFC.
//!
//! Every case goes through the public API only: a [`Custom`] scheme that reads a hex HMAC of the
//! body alone from `x-signature`, a [`Keyring`] holding `Secret::from_bytes(key)`, and
//! [`Verifier::verify`]. Full-length valid tags must verify; modified tags must be refused; a
//! truncated tag (shorter than the 32-byte MAC) must be refused as
//! [`VerifyError::SignatureLength`], whether or not its bytes are a correct prefix.

use chrono::DateTime;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use webhook_guard::scheme::{Custom, Encoding};
use webhook_guard::{Keyring, Secret, SecretError, Signer, Verifier, VerifyError};

const HEADER: &str = "x-signature";

fn scheme() -> Custom {
    Custom::new(HEADER)
        .expect("a valid header name")
        .encoding(Encoding::Hex)
}

fn headers_with(tag_hex: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HEADER,
        HeaderValue::from_str(tag_hex).expect("hex is a valid header value"),
    );
    headers
}

/// Verifies `msg` under `key` with `tag_hex` in the header, through the crate's verifier.
fn verify(key: &Secret, msg: &[u8], tag_hex: &str) -> Result<(), VerifyError> {
    let verifier = Verifier::new(scheme(), Keyring::new(key.clone()));
    verifier.verify(&headers_with(tag_hex), msg).map(|_| ())
}

/// The hex tag the crate's [`Signer`] puts in the header for `msg` under `key`.
fn signed_tag(key: &Secret, msg: &[u8]) -> String {
    let at = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
    let headers = Signer::new(scheme(), key.clone())
        .sign_at(msg, "", at)
        .expect("signing a body-only custom scheme never fails");
    headers[HEADER]
        .to_str()
        .expect("the signature header is ASCII")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Wycheproof
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    total: usize,
    valid_full: usize,
    invalid_full: usize,
    truncated_valid: usize,
    truncated_invalid: usize,
    empty_key_refused: usize,
}

#[test]
fn wycheproof_hmac_sha256() {
    let text = include_str!("data/wycheproof_hmac_sha256_test.json");
    let doc: Value = serde_json::from_str(text).expect("the vector file is JSON");
    assert_eq!(doc["algorithm"], "HMACSHA256");
    assert_eq!(doc["numberOfTests"], 174);

    let mut counts = Counts::default();
    let groups = doc["testGroups"]
        .as_array()
        .expect("testGroups is an array");
    assert_eq!(groups.len(), 6);
    for group in groups {
        let tag_size = group["tagSize"].as_u64().expect("tagSize is a number");
        let key_size = group["keySize"].as_u64().expect("keySize is a number");
        for case in group["tests"].as_array().expect("tests is an array") {
            counts.total += 1;
            let id = case["tcId"].as_u64().expect("tcId is a number");
            let field = |name: &str| {
                hex::decode(case[name].as_str().expect("hex field"))
                    .unwrap_or_else(|e| panic!("tcId {id}: {name} is not hex: {e}"))
            };
            let (key, msg, tag) = (field("key"), field("msg"), field("tag"));
            let tag_hex = case["tag"].as_str().expect("tag is a string");
            let result = case["result"].as_str().expect("result is a string");
            assert_eq!(key.len() * 8, key_size as usize, "tcId {id}");
            assert_eq!(tag.len() * 8, tag_size as usize, "tcId {id}");

            // An empty key would make every signature forgeable: the crate refuses it when the
            // secret is built, before any verification. (This file has none; counted anyway.)
            let key = match Secret::from_bytes(&key) {
                Ok(key) => key,
                Err(e) => {
                    assert!(key.is_empty(), "tcId {id}: non-empty key refused: {e}");
                    assert_eq!(e, SecretError::Empty, "tcId {id}");
                    counts.empty_key_refused += 1;
                    continue;
                }
            };
            let outcome = verify(&key, &msg, tag_hex);
            let expected_full = signed_tag(&key, &msg);

            match (tag_size, result) {
                (256, "valid") => {
                    counts.valid_full += 1;
                    assert_eq!(outcome, Ok(()), "tcId {id}: a valid tag was refused");
                    assert_eq!(expected_full, tag_hex, "tcId {id}: Signer disagrees");
                }
                (256, "invalid") => {
                    counts.invalid_full += 1;
                    assert_eq!(
                        outcome,
                        Err(VerifyError::NoMatch {
                            signatures: 1,
                            keys: 1
                        }),
                        "tcId {id} ({}): a modified tag was not refused",
                        case["comment"]
                    );
                    assert_ne!(expected_full, tag_hex, "tcId {id}");
                }
                (128, result) => {
                    if result == "valid" {
                        counts.truncated_valid += 1;
                        // The vector really is a correct prefix of the full MAC...
                        assert!(expected_full.starts_with(tag_hex), "tcId {id}");
                    } else {
                        assert_eq!(result, "invalid", "tcId {id}");
                        counts.truncated_invalid += 1;
                        assert!(!expected_full.starts_with(tag_hex), "tcId {id}");
                    }
                    // ...and still refused: webhook verification takes the whole tag only.
                    assert_eq!(
                        outcome,
                        Err(VerifyError::SignatureLength {
                            len: 16,
                            expected: 32
                        }),
                        "tcId {id} ({result}): a truncated tag was not refused by length"
                    );
                }
                other => panic!("tcId {id}: unexpected group/result {other:?}"),
            }
        }
    }

    eprintln!("wycheproof counts: {counts:?}");
    assert_eq!(
        counts,
        Counts {
            total: 174,
            valid_full: 33,
            invalid_full: 54,
            truncated_valid: 33,
            truncated_invalid: 54,
            empty_key_refused: 0,
        }
    );
}

/// The defence the empty-key count above relies on, shown directly.
#[test]
fn empty_key_is_refused_at_secret_construction() {
    assert_eq!(Secret::from_bytes(b"").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::from_hex("").unwrap_err(), SecretError::Empty);
}

// ---------------------------------------------------------------------------------------------
// RFC 4231, section 4
// ---------------------------------------------------------------------------------------------

struct Rfc4231 {
    case: u8,
    key: Vec<u8>,
    data: Vec<u8>,
    /// The HMAC-SHA-256 output as printed in the RFC (128 bits for test case 5).
    tag: &'static str,
}

/// RFC 4231 section 4.2–4.8, HMAC-SHA-256 rows only.
fn rfc4231_cases() -> Vec<Rfc4231> {
    vec![
        // 4.2. Test Case 1
        Rfc4231 {
            case: 1,
            key: vec![0x0b; 20],
            data: b"Hi There".to_vec(),
            tag: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        },
        // 4.3. Test Case 2: a key shorter than the length of the HMAC output.
        Rfc4231 {
            case: 2,
            key: b"Jefe".to_vec(),
            data: b"what do ya want for nothing?".to_vec(),
            tag: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        },
        // 4.4. Test Case 3: combined length of key and data larger than 64 bytes.
        Rfc4231 {
            case: 3,
            key: vec![0xaa; 20],
            data: vec![0xdd; 50],
            tag: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        },
        // 4.5. Test Case 4
        Rfc4231 {
            case: 4,
            key: (0x01..=0x19).collect(),
            data: vec![0xcd; 50],
            tag: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        },
        // 4.6. Test Case 5: output truncated to 128 bits.
        Rfc4231 {
            case: 5,
            key: vec![0x0c; 20],
            data: b"Test With Truncation".to_vec(),
            tag: "a3b6167473100ee06e0c796c2955552b",
        },
        // 4.7. Test Case 6: a key larger than the block size (hashed first).
        Rfc4231 {
            case: 6,
            key: vec![0xaa; 131],
            data: b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            tag: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        },
        // 4.8. Test Case 7: key and data larger than the block size.
        Rfc4231 {
            case: 7,
            key: vec![0xaa; 131],
            data: b"This is a test using a larger than block-size key and a larger than \
                    block-size data. The key needs to be hashed before being used by the \
                    HMAC algorithm."
                .to_vec(),
            tag: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        },
    ]
}

#[test]
fn rfc4231_hmac_sha256() {
    let cases = rfc4231_cases();
    assert_eq!(cases.len(), 7);
    let (mut full, mut truncated) = (0, 0);
    for c in cases {
        let key = Secret::from_bytes(&c.key).expect("RFC 4231 keys are non-empty");
        let signed = signed_tag(&key, &c.data);
        let outcome = verify(&key, &c.data, c.tag);
        if c.tag.len() == 64 {
            full += 1;
            assert_eq!(outcome, Ok(()), "RFC 4231 case {} refused", c.case);
            assert_eq!(signed, c.tag, "RFC 4231 case {}: Signer disagrees", c.case);
        } else {
            truncated += 1;
            assert_eq!(c.case, 5);
            assert!(signed.starts_with(c.tag), "RFC 4231 case {}", c.case);
            assert_eq!(
                outcome,
                Err(VerifyError::SignatureLength {
                    len: 16,
                    expected: 32
                }),
                "RFC 4231 case {}: a 128-bit truncated tag must be refused",
                c.case
            );
            // The full tag the Signer made for the same input is accepted.
            assert_eq!(verify(&key, &c.data, &signed), Ok(()));
        }
    }
    assert_eq!((full, truncated), (6, 1));
}

/// Case 7's data is typed with line continuations; check it is the RFC's exact 152 bytes.
#[test]
fn rfc4231_case7_data_is_exact() {
    let cases = rfc4231_cases();
    let data = &cases[6].data;
    assert_eq!(data.len(), 152);
    assert!(data.starts_with(b"This is a test using a larger than block-size key and a larger"));
    assert!(data.ends_with(b"being used by the HMAC algorithm."));
}
