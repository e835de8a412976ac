//! The properties the fuzz targets check, as plain functions over raw bytes.
//!
//! Shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and by the stable corpus replay in
//! `tests/fuzz_corpus.rs`, so it only uses crates the main crate depends on (no `arbitrary`):
//! inputs are decoded by hand, see each function for the layout. A check fails by panicking.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use webhook_guard::middleware::WebhookLayer;
use webhook_guard::scheme::{
    Algorithm, Custom, Encoding, GitHub, Scheme, Shopify, Slack, StandardWebhooks, Stripe,
    Template, TimestampUnit,
};
use webhook_guard::{
    Keyring, ManualClock, Secret, Signer, Verified, Verifier, VerifyError, MAX_SECRET_LEN,
};

/// A fixed, random-looking secret nobody signs with: nothing may verify against it.
const UNKNOWN_SECRET: &[u8] = b"fz_7Qp2LxV9mR4tK8wZ1nB6cY3hJ5dG0s";
/// The secret the mutation and layer checks sign with.
const KNOWN_SECRET: &[u8] = b"fuzz-known-secret-2f1c9a";
/// Another secret, for "signed with the wrong key".
const OTHER_SECRET: &[u8] = b"fuzz-other-secret-77e0b3";
/// The time deliveries are signed and verified at (the Standard Webhooks vector's).
const NOW: i64 = 1_614_265_330;
const WEBHOOK_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
/// The layer's body limit.
pub const LAYER_LIMIT: usize = 4096;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// A custom scheme with everything: prefix, separator, millisecond timestamp, signed id.
fn custom_hex() -> Custom {
    Custom::new("x-signature")
        .and_then(|c| c.timestamp_header("x-timestamp", TimestampUnit::Milliseconds))
        .and_then(|c| c.id_header("x-id"))
        .map(|c| c.prefix("sha256=").separator(',').encoding(Encoding::Hex))
        .ok()
        .and_then(|c| {
            c.template(Template::parse("{id}.{timestamp}.{{}}{body}").ok()?)
                .ok()
        })
        .unwrap_or_else(|| unreachable!("valid custom scheme"))
}

/// A bare custom scheme: base64 of the body in `x-body-mac`, nothing else.
fn custom_base64() -> Custom {
    Custom::new("x-body-mac")
        .map(|c| c.encoding(Encoding::Base64))
        .unwrap_or_else(|_| unreachable!("valid header name"))
}

/// What a scheme signs, for the checks' oracles.
#[derive(Debug, Clone, Copy)]
struct Layout {
    name: &'static str,
    signature: &'static str,
    encoding: Encoding,
    /// Header holding the signed timestamp (may be the signature header, for Stripe).
    timestamp: Option<&'static str>,
    /// Header holding the id, and whether the id is signed.
    id: Option<(&'static str, bool)>,
    /// Seconds or milliseconds.
    millis: bool,
}

const LAYOUTS: [Layout; 7] = [
    Layout {
        name: "standard-webhooks",
        signature: "webhook-signature",
        encoding: Encoding::Base64,
        timestamp: Some("webhook-timestamp"),
        id: Some(("webhook-id", true)),
        millis: false,
    },
    Layout {
        name: "stripe",
        signature: "stripe-signature",
        encoding: Encoding::Hex,
        timestamp: Some("stripe-signature"),
        id: None,
        millis: false,
    },
    Layout {
        name: "github",
        signature: "x-hub-signature-256",
        encoding: Encoding::Hex,
        timestamp: None,
        id: Some(("x-github-delivery", false)),
        millis: false,
    },
    Layout {
        name: "slack",
        signature: "x-slack-signature",
        encoding: Encoding::Hex,
        timestamp: Some("x-slack-request-timestamp"),
        id: None,
        millis: false,
    },
    Layout {
        name: "shopify",
        signature: "x-shopify-hmac-sha256",
        encoding: Encoding::Base64,
        timestamp: None,
        id: Some(("x-shopify-webhook-id", false)),
        millis: false,
    },
    Layout {
        name: "custom-hex",
        signature: "x-signature",
        encoding: Encoding::Hex,
        timestamp: Some("x-timestamp"),
        id: Some(("x-id", true)),
        millis: true,
    },
    Layout {
        name: "custom-base64",
        signature: "x-body-mac",
        encoding: Encoding::Base64,
        timestamp: None,
        id: None,
        millis: false,
    },
];

fn scheme(index: usize) -> Box<dyn Scheme> {
    match index % LAYOUTS.len() {
        0 => Box::new(StandardWebhooks),
        1 => Box::new(Stripe),
        2 => Box::new(GitHub),
        3 => Box::new(Slack),
        4 => Box::new(Shopify),
        5 => Box::new(custom_hex()),
        _ => Box::new(custom_base64()),
    }
}

fn secret(bytes: &[u8]) -> Secret {
    Secret::from_bytes(bytes).unwrap_or_else(|_| unreachable!("non-empty, short"))
}

/// Every header name a built-in scheme reads, plus a few unrelated ones.
const HEADER_NAMES: [&str; 18] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-delivery",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-signature",
    "x-timestamp",
    "x-id",
    "x-body-mac",
    "content-type",
];

/// Splits `data` on 0x00.
fn fields(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0)
}

/// Checks that no error message quotes a secret or is empty.
fn check_error_text(error: &VerifyError) {
    let text = error.to_string();
    assert!(!text.is_empty());
    for secret in [UNKNOWN_SECRET, KNOWN_SECRET, OTHER_SECRET] {
        let secret = std::str::from_utf8(secret).unwrap_or_default();
        assert!(!text.contains(secret), "error quotes a secret: {text}");
    }
}

struct Verifiers {
    unknown: Vec<Verifier>,
    lenient: Vec<Verifier>,
    vendor: Vec<Verifier>,
}

fn verifiers() -> &'static Verifiers {
    static VERIFIERS: OnceLock<Verifiers> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let unknown = secret(UNKNOWN_SECRET);
        // The secrets of the vendors' published vectors, so the seeds reach the MAC compare.
        let vendor: [Secret; 7] = [
            Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_or_else(|_| unreachable!("valid whsec")),
            secret(b"webhook_secret"),
            secret(b"It's a Secret to Everybody"),
            secret(b"8f742231b10e8888abcd99yyyzzz85a5"),
            secret(b"test_secret_key"),
            secret(KNOWN_SECRET),
            secret(KNOWN_SECRET),
        ];
        let all = |f: &dyn Fn(usize) -> Verifier| (0..LAYOUTS.len()).map(f).collect::<Vec<_>>();
        Verifiers {
            unknown: all(&|i| Verifier::new(scheme(i), Keyring::new(unknown.clone()))),
            lenient: all(&|i| {
                Verifier::new(scheme(i), Keyring::new(unknown.clone())).tolerance(Duration::MAX)
            }),
            vendor: all(&|i| {
                Verifier::new(scheme(i), Keyring::new(vendor[i].clone())).tolerance(Duration::MAX)
            }),
        }
    })
}

/// `header_parsers`: arbitrary header values against every built-in scheme.
///
/// Layout: fields separated by 0x00. The first field is the body. Each further field is one
/// header: its first byte picks the name from [`HEADER_NAMES`] (modulo), the rest is the value
/// (fields whose value is not a valid header value are skipped; the same name may repeat).
///
/// Properties: no panic; nothing verifies against [`UNKNOWN_SECRET`]; errors never quote a
/// secret.
pub fn check_header_parsers(data: &[u8]) {
    let mut parts = fields(data);
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for field in parts {
        let Some((&pick, value)) = field.split_first() else {
            continue;
        };
        let name = HeaderName::from_static(HEADER_NAMES[usize::from(pick) % HEADER_NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let all = verifiers();
    let nows = [
        at(NOW),
        at(0),
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::MIN_UTC,
    ];
    for (i, layout) in LAYOUTS.iter().enumerate() {
        for now in nows {
            for verifier in [&all.unknown[i], &all.lenient[i]] {
                match verifier.verify_at(&headers, body, now) {
                    Ok(v) => panic!(
                        "{}: verified against a secret nobody signs with: {v:?}",
                        layout.name
                    ),
                    Err(e) => check_error_text(&e),
                }
            }
        }
        // The vendors' own secrets: anything may happen except a panic.
        let _ = all.vendor[i].verify_at(&headers, body, at(NOW));
    }
}

/// Every `SecretError` message, numbers left out (compared with digits removed).
const SECRET_ERROR_TEMPLATES: [&str; 10] = [
    "secret is empty",
    "secret is  bytes, longer than the -byte limit",
    "secret is not valid hex: invalid character at position ",
    "secret is not valid hex: odd number of digits",
    "secret is not valid hex: wrong length",
    "secret is not valid base64: invalid character at position ",
    "secret is not valid base64: invalid last character at position ",
    "secret is not valid base64: wrong length",
    "secret is not valid base64: invalid padding",
    "secret does not start with \"whsec_\"",
];

/// `secrets`: the `Secret` constructors on arbitrary text and bytes.
///
/// Layout: the whole input, as bytes for `from_bytes`, and (lossily) as text for the others.
///
/// Properties: no panic; a built secret has 1..=`MAX_SECRET_LEN` bytes; hex secrets decode to
/// half their digits; `from_whsec("whsec_" + s)` agrees with `from_base64(s)`; an error's
/// `Display` and `Debug` never contain the input (when it is longer than 8 characters), and a
/// secret's `Debug` never does either.
pub fn check_secrets(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let quoted = |s: &str| s.trim().chars().count() > 8;
    let check = |what: &str, input: &str, result: Result<Secret, webhook_guard::SecretError>| {
        match result {
            Ok(secret) => {
                assert!(
                    (1..=MAX_SECRET_LEN).contains(&secret.len()),
                    "{what}: secret of {} bytes",
                    secret.len()
                );
                assert!(!secret.is_empty());
                let debug = format!("{secret:?}");
                let skeleton = "Secret(<redacted>,  bytes)";
                let digitless: String = input
                    .trim()
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect();
                if quoted(input) && !skeleton.contains(&digitless) {
                    assert!(
                        !debug.contains(input.trim()),
                        "{what}: Debug shows the secret"
                    );
                }
                Some(secret.len())
            }
            Err(e) => {
                // The message is a fixed template with numbers filled in, nothing else.
                let display = e.to_string();
                let template: String = display.chars().filter(|c| !c.is_ascii_digit()).collect();
                let strip = |t: &str| {
                    t.chars()
                        .filter(|c| !c.is_ascii_digit())
                        .collect::<String>()
                };
                assert!(
                    SECRET_ERROR_TEMPLATES.iter().any(|t| strip(t) == template),
                    "{what}: unexpected error text: {display}"
                );
                // So is the `Debug`: the variant, numbers and a reason from the templates. Since
                // only digits vary, no text of the input can appear in either.
                let debug = strip(&format!("{e:?}"));
                let mut allowed = vec![
                    "Empty".to_owned(),
                    "TooLong { len: , max:  }".to_owned(),
                    "MissingWhsecPrefix".to_owned(),
                ];
                for (variant, prefix) in [
                    ("InvalidHex", "secret is not valid hex: "),
                    ("InvalidBase64", "secret is not valid base64: "),
                ] {
                    for reason in SECRET_ERROR_TEMPLATES
                        .iter()
                        .filter_map(|t| t.strip_prefix(prefix))
                    {
                        allowed.push(strip(&format!("{variant} {{ reason: {reason:?} }}")));
                    }
                }
                assert!(
                    allowed.contains(&debug),
                    "{what}: unexpected error Debug: {e:?}"
                );
                None
            }
        }
    };
    let bytes = check("from_bytes", text, Secret::from_bytes(data));
    assert_eq!(
        bytes.is_some(),
        (1..=MAX_SECRET_LEN).contains(&data.len()),
        "from_bytes accepts exactly 1..=MAX_SECRET_LEN bytes"
    );
    check("stripe", text, Stripe::secret(text));
    if let Some(len) = check("from_hex", text, Secret::from_hex(text)) {
        assert_eq!(len * 2, text.trim().len(), "from_hex length");
    }
    let b64 = check("from_base64", text, Secret::from_base64(text));
    let whsec_text = format!("whsec_{text}");
    let whsec = check("from_whsec", &whsec_text, Secret::from_whsec(&whsec_text));
    assert_eq!(
        b64, whsec,
        "from_whsec(whsec_ + s) disagrees with from_base64(s)"
    );
    check("from_whsec", text, Secret::from_whsec(text));
}

/// Replaces the byte at `range.start + pos % range.len()` of header `name`'s value with `with`.
/// `None` when the result is not a header value or nothing changes.
fn replace_in(
    headers: &HeaderMap,
    name: &str,
    range: std::ops::Range<usize>,
    pos: u8,
    with: u8,
) -> Option<(HeaderMap, Vec<u8>)> {
    if range.is_empty() {
        return None;
    }
    let mut value = headers.get(name)?.as_bytes().to_vec();
    let at = range.start + usize::from(pos) % range.len();
    if value[at] == with {
        return None;
    }
    value[at] = with;
    let mut out = headers.clone();
    out.insert(
        HeaderName::from_bytes(name.as_bytes()).ok()?,
        HeaderValue::from_bytes(&value).ok()?,
    );
    Some((out, value))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<std::ops::Range<usize>> {
    haystack
        .windows(needle.len().max(1))
        .position(|w| w == needle)
        .map(|start| start..start + needle.len())
}

/// `verify_mutations`: sign, mutate one thing, verify.
///
/// Layout: byte 0 picks the scheme, byte 1 the mutation, bytes 2 and 3 are its position and
/// byte, the rest is the body.
///
/// Properties: an unmodified delivery verifies; so do equivalent encodings of its signature
/// (hex in upper case, base64 without padding); any real change to the body, the timestamp,
/// a signed id or the signature bytes, a missing header or a duplicated one the scheme reads,
/// or the wrong key is refused.
pub fn check_verify_mutations(data: &[u8]) {
    let [pick, mutation, pos, with, body @ ..] = data else {
        return;
    };
    let index = usize::from(*pick) % LAYOUTS.len();
    let layout = LAYOUTS[index];
    let signer = Signer::new(scheme(index), secret(KNOWN_SECRET));
    let headers = signer
        .sign_at(body, WEBHOOK_ID, at(NOW))
        .unwrap_or_else(|e| panic!("{}: signing failed: {e}", layout.name));
    let verifier = Verifier::new(scheme(index), Keyring::new(secret(KNOWN_SECRET)));
    let verify = |headers: &HeaderMap, body: &[u8]| verifier.verify_at(headers, body, at(NOW));
    let name = layout.name;

    // The unmodified delivery always verifies, and reports the id when the scheme has one.
    let verified: Verified =
        verify(&headers, body).unwrap_or_else(|e| panic!("{name}: own signature refused: {e}"));
    if let Some((_, true)) = layout.id {
        assert_eq!(verified.webhook_id(), Some(WEBHOOK_ID), "{name}");
    }

    // The signature token as sent, and the tag it decodes to.
    let sig_value = headers
        .get(layout.signature)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_else(|| panic!("{name}: no signature header"));
    let mut tag = [0u8; 64];
    let token_text = std::str::from_utf8(&sig_value).unwrap_or_default();
    let token = match layout.encoding {
        Encoding::Hex => token_text.rsplit(['=', ',']).next().unwrap_or_default(),
        _ => token_text.strip_prefix("v1,").unwrap_or(token_text),
    };
    let tag_len = layout
        .encoding
        .decode(token, &mut tag)
        .unwrap_or_else(|| panic!("{name}: signer wrote an undecodable token {token:?}"));
    assert_eq!(tag_len, 32, "{name}: HMAC-SHA256 tag length");
    let tag = &tag[..tag_len];
    let token_range = find(&sig_value, token.as_bytes()).unwrap_or(0..0);

    let refused = |what: &str, result: Result<Verified, VerifyError>| {
        if let Ok(v) = result {
            panic!("{name}: accepted after {what}: {v:?}");
        }
    };

    match mutation % 12 {
        // Flip a body byte.
        0 => {
            let mut changed = body.to_vec();
            if changed.is_empty() {
                changed.push(*with);
            } else {
                let at = usize::from(*pos) % changed.len();
                changed[at] ^= with | 1;
            }
            refused("a body byte changed", verify(&headers, &changed));
        }
        // Truncate the body.
        1 => {
            if !body.is_empty() {
                let keep = usize::from(*pos) % body.len();
                refused("the body was truncated", verify(&headers, &body[..keep]));
            }
        }
        // Append to the body.
        2 => {
            let mut longer = body.to_vec();
            longer.extend(std::iter::repeat_n(*with, usize::from(*pos % 4) + 1));
            refused("bytes were appended", verify(&headers, &longer));
        }
        // Change one character of the signature token.
        3 => {
            if let Some((changed, value)) =
                replace_in(&headers, layout.signature, token_range.clone(), *pos, *with)
            {
                // What the parser will see: the header is trimmed, the token too.
                let new_token = String::from_utf8_lossy(&value[token_range.clone()]);
                let mut out = [0u8; 64];
                let same = layout
                    .encoding
                    .decode(new_token.trim(), &mut out)
                    .is_some_and(|n| &out[..n] == tag);
                let result = verify(&changed, body);
                if !same {
                    refused("the signature changed", result);
                }
            }
        }
        // Change one character of the timestamp.
        4 => {
            if let Some(ts_header) = layout.timestamp {
                let text = if layout.millis {
                    (NOW * 1000).to_string()
                } else {
                    NOW.to_string()
                };
                let value = headers
                    .get(ts_header)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if let Some(range) = find(value, text.as_bytes()) {
                    if let Some((changed, _)) = replace_in(&headers, ts_header, range, *pos, *with)
                    {
                        refused("the timestamp changed", verify(&changed, body));
                    }
                }
            }
        }
        // Change one character of the id.
        5 => {
            if let Some((id_header, signed)) = layout.id {
                let range = 0..headers.get(id_header).map_or(0, |v| v.len());
                if let Some((changed, _)) = replace_in(&headers, id_header, range, *pos, *with) {
                    let result = verify(&changed, body);
                    if signed {
                        refused("the signed id changed", result);
                    }
                }
            }
        }
        // Drop a header the scheme requires.
        6 => {
            let required: Vec<&str> = [Some(layout.signature), layout.timestamp]
                .into_iter()
                .flatten()
                .chain(layout.id.filter(|(_, signed)| *signed).map(|(h, _)| h))
                .collect();
            let drop = required[usize::from(*pos) % required.len()];
            let mut changed = headers.clone();
            changed.remove(drop);
            refused("a required header was removed", verify(&changed, body));
        }
        // Duplicate a header the scheme reads (an unsigned delivery id is not read).
        7 => {
            let unread = layout.id.filter(|(_, signed)| !signed).map(|(h, _)| h);
            let names: Vec<&HeaderName> = headers
                .keys()
                .filter(|n| Some(n.as_str()) != unread)
                .collect();
            let name_dup = names[usize::from(*pos) % names.len()].clone();
            let mut changed = headers.clone();
            if let Some(v) = headers.get(&name_dup) {
                changed.append(name_dup, v.clone());
            }
            refused("a header was duplicated", verify(&changed, body));
        }
        // Equivalent encodings verify: hex in upper case, base64 without padding.
        8 => {
            let text = String::from_utf8_lossy(&sig_value).into_owned();
            let token_now = &text[token_range.clone()];
            let equivalent = match layout.encoding {
                Encoding::Hex => token_now.to_ascii_uppercase(),
                _ => token_now.trim_end_matches('=').to_owned(),
            };
            let new_value = format!(
                "{}{}{}",
                &text[..token_range.start],
                equivalent,
                &text[token_range.end..]
            );
            let mut changed = headers.clone();
            changed.insert(
                HeaderName::from_static(layout.signature),
                HeaderValue::from_str(&new_value).unwrap_or_else(|_| unreachable!("ascii")),
            );
            verify(&changed, body).unwrap_or_else(|e| {
                panic!("{name}: equivalent encoding {new_value:?} refused: {e}")
            });
        }
        // Signed with another key.
        9 => {
            let other = Signer::new(scheme(index), secret(OTHER_SECRET))
                .sign_at(body, WEBHOOK_ID, at(NOW))
                .unwrap_or_else(|e| panic!("{name}: signing failed: {e}"));
            refused("signed with the wrong key", verify(&other, body));
        }
        // The signature of a different body.
        10 => {
            let mut other_body = body.to_vec();
            other_body.push(*with);
            let other = signer
                .sign_at(&other_body, WEBHOOK_ID, at(NOW))
                .unwrap_or_else(|e| panic!("{name}: signing failed: {e}"));
            refused("another body's signature", verify(&other, body));
        }
        // Truncate the signature token.
        _ => {
            if !token_range.is_empty() {
                let keep = usize::from(*pos) % token_range.len();
                let mut value = sig_value.clone();
                value.truncate(token_range.start + keep);
                value.extend_from_slice(&sig_value[token_range.end..]);
                let mut out = [0u8; 64];
                let same = layout
                    .encoding
                    .decode(
                        String::from_utf8_lossy(
                            &value[token_range.start..token_range.start + keep],
                        )
                        .trim(),
                        &mut out,
                    )
                    .is_some_and(|n| &out[..n] == tag);
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    let mut changed = headers.clone();
                    changed.insert(HeaderName::from_static(layout.signature), value);
                    let result = verify(&changed, body);
                    if !same {
                        refused("the signature was truncated", result);
                    }
                }
            }
        }
    }
}

/// A request body that yields fixed chunks, then optionally an error.
struct ChunkBody {
    chunks: std::collections::VecDeque<Bytes>,
    fail: bool,
    hint: Option<u64>,
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if std::mem::take(&mut this.fail) {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint.map(SizeHint::with_exact).unwrap_or_default()
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fn layers() -> &'static Vec<WebhookLayer> {
    static LAYERS: OnceLock<Vec<WebhookLayer>> = OnceLock::new();
    LAYERS.get_or_init(|| {
        (0..LAYOUTS.len())
            .map(|i| {
                let keyring = Keyring::builder()
                    .clock(ManualClock::at_unix(NOW))
                    .build(secret(KNOWN_SECRET));
                WebhookLayer::new(Verifier::new(scheme(i), keyring)).max_body_size(LAYER_LIMIT)
            })
            .collect()
    })
}

const METHODS: [&str; 6] = ["POST", "GET", "PUT", "PATCH", "DELETE", "FUZZ"];

/// `layer`: a request through `WebhookLayer` (limit [`LAYER_LIMIT`]).
///
/// Layout: byte 0 picks the scheme, byte 1 holds flags (bit 0: sign the body properly,
/// bit 1: the body reports its exact size, bit 2: the body ends with a read error, bits 3–5:
/// the method), byte 2 the `Content-Length` mode (0 none, 1 true, 2 a lie of byte 3 × 64,
/// 3 twice, 4 garbage), byte 3 the lie or the body repeat count, byte 4 the chunk size; then
/// fields separated by 0x00: the body, then headers as in [`check_header_parsers`].
///
/// Properties: no panic; the status is 200, 400, 401 or 413, and the one the inputs call for
/// (413 for a declared or actual body over the limit, 400 for a read error, 200 for a properly
/// signed delivery with no conflicting header); on 200 the inner service saw exactly the body
/// sent, with `Verified` in the extensions; otherwise it was not called and the answer is a
/// problem+json document with the same status.
pub fn check_layer(data: &[u8]) {
    use tower::ServiceExt as _;

    let [pick, flags, cl_mode, cl_byte, chunk, rest @ ..] = data else {
        return;
    };
    let index = usize::from(*pick) % LAYOUTS.len();
    let layout = LAYOUTS[index];
    let sign = flags & 1 != 0;
    let exact_hint = flags & 2 != 0;
    let fail = flags & 4 != 0;
    let method = METHODS[usize::from(flags >> 3) % METHODS.len()];

    let mut parts = fields(rest);
    let piece = parts.next().unwrap_or_default();
    // Repeating lets short inputs make bodies past the limit; capped at three limits.
    let repeat = if cl_mode % 5 == 2 {
        1
    } else {
        usize::from(*cl_byte).max(1)
    };
    let mut body = Vec::new();
    for _ in 0..repeat {
        if body.len() + piece.len() > 3 * LAYER_LIMIT {
            break;
        }
        body.extend_from_slice(piece);
    }
    let body = Bytes::from(body);

    let mut headers = HeaderMap::new();
    let mut conflicting = false;
    for field in parts {
        let Some((&pick, value)) = field.split_first() else {
            continue;
        };
        let name = HEADER_NAMES[usize::from(pick) % HEADER_NAMES.len()];
        if let Ok(value) = HeaderValue::from_bytes(value) {
            conflicting |= name != "content-type";
            headers.append(HeaderName::from_static(name), value);
        }
    }
    if sign {
        let signed = Signer::new(scheme(index), secret(KNOWN_SECRET))
            .sign_at(&body, WEBHOOK_ID, at(NOW))
            .unwrap_or_else(|e| panic!("{}: signing failed: {e}", layout.name));
        for (name, value) in &signed {
            headers.insert(name.clone(), value.clone());
        }
        // Headers the signer replaced no longer conflict; others the scheme reads still may.
        conflicting = headers.keys().any(|n| {
            !signed.contains_key(n) && n != "content-type" && HEADER_NAMES.contains(&n.as_str())
        });
    }
    let content_length = http::header::CONTENT_LENGTH;
    let declared: u64 = match cl_mode % 5 {
        1 => {
            headers.insert(content_length, HeaderValue::from(body.len()));
            body.len() as u64
        }
        2 => {
            let lie = u64::from(*cl_byte) * 64;
            headers.insert(content_length, HeaderValue::from(lie));
            lie
        }
        3 => {
            headers.append(content_length.clone(), HeaderValue::from(body.len()));
            headers.append(content_length, HeaderValue::from(body.len()));
            0
        }
        4 => {
            headers.insert(content_length, HeaderValue::from_static("12abc"));
            0
        }
        _ => 0,
    };
    let hint = exact_hint.then_some(body.len() as u64);
    let declared = declared.max(hint.unwrap_or(0));

    let chunk_size = usize::from(*chunk).max(1);
    let chunks = body
        .chunks(chunk_size)
        .map(Bytes::copy_from_slice)
        .collect();
    let mut request = Request::new(ChunkBody { chunks, fail, hint });
    *request.method_mut() = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    *request.headers_mut() = headers;

    let seen: Arc<Mutex<Option<(Bytes, bool)>>> = Arc::default();
    let inner = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |req: Request<Full<Bytes>>| {
            let seen = Arc::clone(&seen);
            async move {
                let has_verified = req.extensions().get::<Verified>().is_some();
                let bytes = req
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_else(|never| match never {});
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((bytes, has_verified));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        })
    };
    let service = tower::Layer::layer(&layers()[index], inner);
    let (status, response_body, content_type) = runtime().block_on(async move {
        let response = service
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_else(|never| match never {});
        (status, body, content_type)
    });

    let name = layout.name;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    // A body of unknown size is MACed as it streams in, for schemes that sign the body as is:
    // its headers are checked before it is read, so a header problem (400 or 401) comes before
    // the body's own (too large, read error). A declared length over the limit comes first.
    let scheme_streams = {
        let scheme = scheme(index);
        scheme.signs_body_as_is() && scheme.algorithm() == Algorithm::HmacSha256
    };
    let headers_pass = sign && !conflicting;
    let headers_first = scheme_streams && hint.is_none() && !headers_pass;
    let expected = if declared > LAYER_LIMIT as u64 {
        Some(StatusCode::PAYLOAD_TOO_LARGE)
    } else if headers_first {
        None
    } else if body.len() > LAYER_LIMIT {
        Some(StatusCode::PAYLOAD_TOO_LARGE)
    } else if fail {
        Some(StatusCode::BAD_REQUEST)
    } else if sign && !conflicting {
        Some(StatusCode::OK)
    } else {
        None
    };
    assert!(
        [200, 400, 401, 413].contains(&status.as_u16()),
        "{name}: unexpected status {status}"
    );
    if let Some(expected) = expected {
        assert_eq!(
            status,
            expected,
            "{name}: body {} bytes, declared {declared}, fail {fail}, signed {sign}",
            body.len()
        );
    }
    if status == StatusCode::OK {
        let (bytes, has_verified) =
            seen.unwrap_or_else(|| panic!("{name}: 200 without calling the inner service"));
        assert_eq!(bytes, body, "{name}: the inner service saw another body");
        assert!(has_verified, "{name}: no Verified extension");
        assert_eq!(&response_body[..], b"ok");
    } else {
        assert!(
            seen.is_none(),
            "{name}: rejected ({status}) but the inner service ran"
        );
        assert_eq!(
            content_type.as_ref().map(HeaderValue::as_bytes),
            Some(&b"application/problem+json"[..]),
            "{name}"
        );
        let problem: serde_json::Value = serde_json::from_slice(&response_body)
            .unwrap_or_else(|e| panic!("{name}: rejection body is not JSON: {e}"));
        assert_eq!(problem["status"], status.as_u16(), "{name}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        let known = std::str::from_utf8(KNOWN_SECRET).unwrap_or_default();
        assert!(
            !detail.contains(known),
            "{name}: rejection quotes the secret"
        );
    }
}
