//! Property tests for every built-in scheme: what a `Signer` produces a `Verifier` accepts, and
//! any single change to what was signed (body, signature, timestamp, id) or to the time of
//! arrival is refused. Unknown signature versions are ignored, and arbitrary header text never
//! panics nor verifies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use webhook_guard::scheme::{
    Custom, Encoding, GitHub, Scheme, Shopify, Slack, StandardWebhooks, Stripe, Template,
    TimestampUnit,
};
use webhook_guard::{
    HeaderProblem, KeyId, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier, VerifyError,
};

/// The fixed "now" every delivery is verified at (unless a test moves it).
const NOW: i64 = 1_700_000_000;
/// The verifier's default tolerance, both ways.
const TOLERANCE: i64 = 300;

const CASES: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standard,
    Stripe,
    GitHub,
    Slack,
    Shopify,
    Custom,
}

const ALL: [Kind; 6] = [
    Kind::Standard,
    Kind::Stripe,
    Kind::GitHub,
    Kind::Slack,
    Kind::Shopify,
    Kind::Custom,
];

/// Where a scheme writes its signature: the header, the text just before the encoded
/// signature, and the encoding.
struct SigSpot {
    header: &'static str,
    marker: &'static str,
    encoding: Encoding,
}

impl Kind {
    fn scheme(self) -> Box<dyn Scheme> {
        match self {
            Kind::Standard => Box::new(StandardWebhooks),
            Kind::Stripe => Box::new(Stripe),
            Kind::GitHub => Box::new(GitHub),
            Kind::Slack => Box::new(Slack),
            Kind::Shopify => Box::new(Shopify),
            Kind::Custom => Box::new(
                Custom::new("x-custom-signature")
                    .unwrap()
                    .prefix("sha256=")
                    .encoding(Encoding::Hex)
                    .timestamp_header("x-custom-timestamp", TimestampUnit::Seconds)
                    .unwrap()
                    .id_header("x-custom-id")
                    .unwrap()
                    .template(Template::parse("{id}.{timestamp}.{body}").unwrap())
                    .unwrap(),
            ),
        }
    }

    fn sig_spot(self) -> SigSpot {
        let (header, marker, encoding) = match self {
            Kind::Standard => ("webhook-signature", "v1,", Encoding::Base64),
            Kind::Stripe => ("stripe-signature", "v1=", Encoding::Hex),
            Kind::GitHub => ("x-hub-signature-256", "sha256=", Encoding::Hex),
            Kind::Slack => ("x-slack-signature", "v0=", Encoding::Hex),
            Kind::Shopify => ("x-shopify-hmac-sha256", "", Encoding::Base64),
            Kind::Custom => ("x-custom-signature", "sha256=", Encoding::Hex),
        };
        SigSpot {
            header,
            marker,
            encoding,
        }
    }

    /// The header holding the timestamp on its own, for schemes that sign one (Stripe's is a
    /// field of its signature header).
    fn timestamp_header(self) -> Option<&'static str> {
        match self {
            Kind::Standard => Some("webhook-timestamp"),
            Kind::Slack => Some("x-slack-request-timestamp"),
            Kind::Custom => Some("x-custom-timestamp"),
            Kind::Stripe | Kind::GitHub | Kind::Shopify => None,
        }
    }

    fn signs_timestamp(self) -> bool {
        !matches!(self, Kind::GitHub | Kind::Shopify)
    }

    /// The id header, and whether the id is signed.
    fn id_header(self) -> Option<(&'static str, bool)> {
        match self {
            Kind::Standard => Some(("webhook-id", true)),
            Kind::Custom => Some(("x-custom-id", true)),
            Kind::GitHub => Some(("x-github-delivery", false)),
            Kind::Shopify => Some(("x-shopify-webhook-id", false)),
            Kind::Stripe | Kind::Slack => None,
        }
    }

    /// Every header the scheme reads.
    fn header_names(self) -> &'static [&'static str] {
        match self {
            Kind::Standard => &[
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "svix-id",
                "svix-timestamp",
                "svix-signature",
            ],
            Kind::Stripe => &["stripe-signature"],
            Kind::GitHub => &["x-hub-signature-256"],
            Kind::Slack => &["x-slack-signature", "x-slack-request-timestamp"],
            Kind::Shopify => &["x-shopify-hmac-sha256"],
            Kind::Custom => &["x-custom-signature", "x-custom-timestamp", "x-custom-id"],
        }
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

struct Fixture {
    signer: Signer,
    verifier: Verifier,
    key_id: KeyId,
}

impl Fixture {
    fn new(kind: Kind, secret: &[u8]) -> Self {
        let secret = Secret::from_bytes(secret).unwrap();
        let keyring = Keyring::builder()
            .clock(ManualClock::at_unix(NOW))
            .key_id(KeyId::new("k-prop"))
            .build(secret.clone());
        Self {
            signer: Signer::new(kind.scheme(), secret),
            verifier: Verifier::new(kind.scheme(), keyring),
            key_id: KeyId::new("k-prop"),
        }
    }

    fn sign(&self, body: &[u8], id: &str, ts: i64) -> HeaderMap {
        self.signer.sign_at(body, id, at(ts)).unwrap()
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<webhook_guard::Verified, VerifyError> {
        self.verifier.verify_at(headers, body, at(NOW))
    }
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers[name].to_str().unwrap().to_owned()
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    headers.insert(
        HeaderName::try_from(name).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
}

/// The encoded signature in `headers` (the first one, for lists).
fn encoded_signature(kind: Kind, headers: &HeaderMap) -> String {
    let spot = kind.sig_spot();
    let value = text(headers, spot.header);
    let start = value.find(spot.marker).unwrap() + spot.marker.len();
    value[start..].split([',', ' ']).next().unwrap().to_owned()
}

fn decoded_signature(kind: Kind, headers: &HeaderMap) -> Vec<u8> {
    let spot = kind.sig_spot();
    let mut out = [0u8; 64];
    let len = spot
        .encoding
        .decode(&encoded_signature(kind, headers), &mut out)
        .unwrap();
    out[..len].to_vec()
}

fn replace_signature(kind: Kind, headers: &mut HeaderMap, sig: &[u8]) {
    let spot = kind.sig_spot();
    let old = encoded_signature(kind, headers);
    let value = text(headers, spot.header).replacen(&old, &spot.encoding.encode(sig), 1);
    set(headers, spot.header, &value);
}

/// Replaces the signed timestamp text by `new`.
fn replace_timestamp(kind: Kind, headers: &mut HeaderMap, old: i64, new: &str) {
    match kind.timestamp_header() {
        Some(name) => set(headers, name, new),
        None => {
            assert_eq!(kind, Kind::Stripe);
            let value = text(headers, "stripe-signature").replacen(
                &format!("t={old},"),
                &format!("t={new},"),
                1,
            );
            set(headers, "stripe-signature", &value);
        }
    }
}

fn no_match() -> VerifyError {
    VerifyError::NoMatch {
        signatures: 1,
        keys: 1,
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(ALL.to_vec())
}

/// The schemes that sign a timestamp.
fn timestamped_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(
        ALL.iter()
            .copied()
            .filter(|k| k.signs_timestamp())
            .collect::<Vec<_>>(),
    )
}

/// The schemes that carry a webhook id.
fn kind_with_id() -> impl Strategy<Value = Kind> {
    prop::sample::select(
        ALL.iter()
            .copied()
            .filter(|k| k.id_header().is_some())
            .collect::<Vec<_>>(),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..256)
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..64)
}

/// Visible ASCII, what a header value carries without trimming.
fn webhook_id() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

/// A timestamp within the default tolerance of `NOW`, boundaries included.
fn timestamp() -> impl Strategy<Value = i64> {
    (NOW - TOLERANCE)..=(NOW + TOLERANCE)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // Only the two test files may be written; a failure is reported with its minimal case.
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_deliveries_verify(
        kind in kind(), body in body(), secret in secret(), id in webhook_id(), ts in timestamp(),
    ) {
        let f = Fixture::new(kind, &secret);
        let headers = f.sign(&body, &id, ts);
        let verified = f.verify(&headers, &body).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        prop_assert_eq!(verified.key_id(), &f.key_id);
        prop_assert_eq!(verified.role(), KeyRole::Current);
        let expected_ts = kind.signs_timestamp().then(|| at(ts));
        prop_assert_eq!(verified.timestamp(), expected_ts);
        // Only a signed id is reported.
        let expected_id = kind.id_header().filter(|(_, signed)| *signed).map(|_| id.as_str());
        prop_assert_eq!(verified.webhook_id(), expected_id);
    }

    #[test]
    fn flipping_a_body_bit_rejects(
        kind in kind(),
        body in prop::collection::vec(any::<u8>(), 1..256),
        secret in secret(), id in webhook_id(), ts in timestamp(),
        index in any::<prop::sample::Index>(), bit in 0u8..8,
    ) {
        let f = Fixture::new(kind, &secret);
        let headers = f.sign(&body, &id, ts);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= 1 << bit;
        prop_assert_eq!(f.verify(&headers, &tampered), Err(no_match()));
    }

    #[test]
    fn flipping_a_signature_bit_rejects(
        kind in kind(), body in body(), secret in secret(), id in webhook_id(), ts in timestamp(),
        bit in 0usize..256,
    ) {
        let f = Fixture::new(kind, &secret);
        let mut headers = f.sign(&body, &id, ts);
        let mut sig = decoded_signature(kind, &headers);
        prop_assert_eq!(sig.len(), 32);
        sig[bit / 8] ^= 1 << (bit % 8);
        replace_signature(kind, &mut headers, &sig);
        prop_assert_eq!(decoded_signature(kind, &headers), sig);
        prop_assert_eq!(f.verify(&headers, &body), Err(no_match()));
    }

    #[test]
    fn changing_the_timestamp_rejects(
        kind in timestamped_kind(), body in body(), secret in secret(), id in webhook_id(),
        ts in timestamp(), other in timestamp(), zeros in 0usize..3,
    ) {
        // Another time is refused as unsigned; the same or another time written with leading
        // zeros is refused as malformed before any key is tried (one number, one text).
        prop_assume!(other != ts || zeros > 0);
        let f = Fixture::new(kind, &secret);
        let mut headers = f.sign(&body, &id, ts);
        let new = format!("{}{other}", "0".repeat(zeros));
        replace_timestamp(kind, &mut headers, ts, &new);
        let outcome = f.verify(&headers, &body);
        if zeros > 0 {
            let bad = matches!(
                outcome,
                Err(VerifyError::MalformedHeader { problem: HeaderProblem::BadTimestamp, .. })
            );
            prop_assert!(bad, "{:?}", outcome);
        } else {
            prop_assert_eq!(outcome, Err(no_match()));
        }
    }

    #[test]
    fn changing_the_id_rejects_when_signed(
        kind in kind_with_id(), body in body(), secret in secret(), id in webhook_id(),
        other in webhook_id(), ts in timestamp(),
    ) {
        prop_assume!(other != id);
        let (name, signed) = kind.id_header().unwrap();
        let f = Fixture::new(kind, &secret);
        let mut headers = f.sign(&body, &id, ts);
        set(&mut headers, name, &other);
        let result = f.verify(&headers, &body);
        if signed {
            prop_assert_eq!(result, Err(no_match()));
        } else {
            // GitHub and Shopify do not sign their delivery id, so it is not reported either.
            let verified = result.unwrap();
            prop_assert_eq!(verified.webhook_id(), None);
        }
    }

    #[test]
    fn arriving_outside_the_tolerance_rejects_with_the_exact_skew(
        kind in kind(), body in body(), secret in secret(), id in webhook_id(),
        beyond in 1i64..1_000_000, future in any::<bool>(),
    ) {
        let f = Fixture::new(kind, &secret);
        let headers = f.sign(&body, &id, NOW);
        let skew = TOLERANCE + beyond;
        let now = if future { NOW - skew } else { NOW + skew };
        let result = f.verifier.verify_at(&headers, &body, at(now));
        let tolerance = Duration::from_secs(TOLERANCE as u64);
        let skew = Duration::from_secs(skew as u64);
        if !kind.signs_timestamp() {
            // No timestamp, no age: the signature alone decides.
            prop_assert!(result.is_ok(), "{:?}: {:?}", kind, result);
        } else if future {
            prop_assert_eq!(result, Err(VerifyError::TimestampInFuture { ahead: skew, tolerance }));
        } else {
            prop_assert_eq!(result, Err(VerifyError::TimestampTooOld { age: skew, tolerance }));
        }
        // One second inside the edge still verifies.
        let edge = if future { NOW - TOLERANCE } else { NOW + TOLERANCE };
        prop_assert!(f.verifier.verify_at(&headers, &body, at(edge)).is_ok());
    }
}

/// An entry of a version Standard Webhooks does not verify here.
fn unknown_standard_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..80)
            .prop_map(|b| format!("v2,{}", Encoding::Base64.encode(&b))),
        // `v1a` is verified against Ed25519 keys (feature `ed25519`); `v1b` is unknown.
        "[A-Za-z0-9+/=,]{0,88}".prop_map(|s| format!("v1b,{s}")),
        ("v[02-9][a-z0-9]{0,3}", "[!-+\\--~]{0,40}").prop_map(|(v, s)| format!("{v},{s}")),
    ]
}

/// A field Stripe's libraries ignore: `v0` (legacy test mode) or an unknown scheme.
fn unknown_stripe_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| format!("v0={}", hex::encode(b))),
        "[!-+\\--~]{0,40}".prop_map(|s| format!("zz={s}")),
        ("[a-z][a-z0-9]{0,3}", "[!-+\\--~]{0,40}")
            .prop_filter("not a field Stripe reads", |(k, _)| k != "t" && k != "v1")
            .prop_map(|(k, v)| format!("{k}={v}")),
    ]
}

/// `items` with `extra` inserted at the positions in `at`.
fn interleave(mut items: Vec<String>, extra: Vec<(prop::sample::Index, String)>) -> Vec<String> {
    for (i, e) in extra {
        let pos = i.index(items.len() + 1);
        items.insert(pos, e);
    }
    items
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unknown_standard_webhooks_versions_are_ignored(
        body in body(), secret in secret(), id in webhook_id(), ts in timestamp(),
        tamper in any::<bool>(),
        extra in prop::collection::vec((any::<prop::sample::Index>(), unknown_standard_entry()), 1..8),
    ) {
        let f = Fixture::new(Kind::Standard, &secret);
        let mut headers = f.sign(&body, &id, ts);
        let mut checked = body.clone();
        if tamper {
            checked.push(0);
        }
        let before = f.verify(&headers, &checked);
        prop_assert_eq!(before.is_ok(), !tamper);
        let list = text(&headers, "webhook-signature");
        let items = interleave(list.split(' ').map(str::to_owned).collect(), extra);
        set(&mut headers, "webhook-signature", &items.join(" "));
        prop_assert_eq!(f.verify(&headers, &checked), before);
    }

    #[test]
    fn unknown_stripe_fields_are_ignored(
        body in body(), secret in secret(), ts in timestamp(), tamper in any::<bool>(),
        extra in prop::collection::vec((any::<prop::sample::Index>(), unknown_stripe_entry()), 1..8),
    ) {
        let f = Fixture::new(Kind::Stripe, &secret);
        let mut headers = f.sign(&body, "evt", ts);
        let mut checked = body.clone();
        if tamper {
            checked.push(0);
        }
        let before = f.verify(&headers, &checked);
        prop_assert_eq!(before.is_ok(), !tamper);
        let value = text(&headers, "stripe-signature");
        let items = interleave(value.split(',').map(str::to_owned).collect(), extra);
        set(&mut headers, "stripe-signature", &items.join(","));
        prop_assert_eq!(f.verify(&headers, &checked), before);
    }
}

/// Printable ASCII, any shape.
fn printable() -> impl Strategy<Value = String> {
    "[ -~]{0,120}"
}

/// A value shaped like the real thing for `name`, with random parts, so parsing gets as far as
/// comparing MACs.
fn plausible(name: &'static str) -> BoxedStrategy<String> {
    let ts = prop_oneof![
        6 => timestamp().prop_map(|t| t.to_string()),
        1 => "[0-9]{0,20}",
        1 => printable()
    ];
    // Mostly MAC-sized, so parsing gets as far as the comparison.
    let sig_bytes = || {
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 32),
            1 => prop::collection::vec(any::<u8>(), 0..70),
        ]
    };
    let hex_sig = sig_bytes().prop_map(hex::encode);
    let b64_sig = sig_bytes().prop_map(|b| Encoding::Base64.encode(&b));
    match name {
        "webhook-signature" | "svix-signature" => prop::collection::vec(
            prop_oneof![
                6 => b64_sig.prop_map(|s| format!("v1,{s}")),
                2 => unknown_standard_entry(),
                1 => printable(),
            ],
            0..5,
        )
        .prop_map(|v| v.join(" "))
        .boxed(),
        "webhook-timestamp"
        | "svix-timestamp"
        | "x-slack-request-timestamp"
        | "x-custom-timestamp" => ts.boxed(),
        "stripe-signature" => (
            prop::option::weighted(0.9, ts.prop_map(|t| format!("t={t}"))),
            prop::collection::vec(
                prop_oneof![
                    6 => hex_sig.prop_map(|s| format!("v1={s}")),
                    2 => unknown_stripe_entry(),
                    1 => printable(),
                ],
                0..5,
            ),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(t, mut items, at)| {
                if let Some(t) = t {
                    let pos = at.index(items.len() + 1);
                    items.insert(pos, t);
                }
                items.join(",")
            })
            .boxed(),
        "x-hub-signature-256" | "x-custom-signature" => {
            hex_sig.prop_map(|s| format!("sha256={s}")).boxed()
        }
        "x-slack-signature" => hex_sig.prop_map(|s| format!("v0={s}")).boxed(),
        "x-shopify-hmac-sha256" => b64_sig.boxed(),
        _ => webhook_id().boxed(),
    }
}

/// For each of `kind`'s headers: absent, arbitrary printable text, or plausible text.
fn random_headers(kind: Kind) -> impl Strategy<Value = Vec<(&'static str, Option<String>)>> {
    kind.header_names()
        .iter()
        .map(|&name| {
            prop_oneof![
                1 => Just(None),
                1 => printable().prop_map(Some),
                8 => plausible(name).prop_map(Some),
            ]
            .prop_map(move |v| (name, v))
        })
        .collect::<Vec<_>>()
}

fn kind_and_headers() -> impl Strategy<Value = (Kind, Vec<(&'static str, Option<String>)>)> {
    kind().prop_flat_map(|k| (Just(k), random_headers(k)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_headers_never_verify(
        (kind, values) in kind_and_headers(), secret in secret(), body in body(),
        duplicate in prop::option::weighted(0.1, any::<prop::sample::Index>()),
    ) {
        let f = Fixture::new(kind, &secret);
        let mut headers = HeaderMap::new();
        for (name, value) in &values {
            if let Some(value) = value {
                set(&mut headers, name, value);
            }
        }
        if let Some(i) = duplicate {
            let (name, _) = values[i.index(values.len())];
            headers.append(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        let result = f.verify(&headers, &body);
        prop_assert!(result.is_err(), "{:?} verified random headers {:?}", kind, headers);
    }

    #[test]
    fn non_ascii_header_bytes_never_verify(
        kind in kind(), secret in secret(), body in body(),
        raw in prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..80),
        which in any::<prop::sample::Index>(),
    ) {
        let f = Fixture::new(kind, &secret);
        let mut headers = f.sign(&body, "msg_1", NOW);
        let names = kind.header_names();
        let name = names[which.index(names.len())];
        headers.insert(HeaderName::from_static(name), HeaderValue::from_bytes(&raw).unwrap());
        let result = f.verify(&headers, &body);
        // Svix's names are read only when the Standard Webhooks signature header is absent.
        if raw.iter().any(|b| *b >= 0x80) && !name.starts_with("svix-") {
            prop_assert_eq!(
                result,
                Err(VerifyError::MalformedHeader {
                    name: HeaderName::from_static(name),
                    problem: HeaderProblem::NotAscii,
                })
            );
        }
    }
}
