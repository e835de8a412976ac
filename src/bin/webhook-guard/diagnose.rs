//! `webhook-guard verify`: verify, and when it fails, say why in terms a receiver can act on.

use std::process::ExitCode;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use webhook_guard::scheme::Scheme;
use webhook_guard::{KeyId, KeyMaterial, KeyRole, Keyring, Secret, Verifier, VerifyError};

use super::expected::{expected, Expected};
use super::options::{public_keys, secret_texts, KeyKind, SecretFormat, MAX_UNIX_TIME};
use super::VerifyArgs;

/// The keys a delivery is checked against, as given.
enum Keys {
    /// Shared secrets, with their texts and format (to try the other formats as hints).
    Secrets {
        secrets: Vec<Secret>,
        texts: Vec<String>,
        format: SecretFormat,
    },
    /// Public keys.
    Public(Vec<KeyMaterial>),
}

impl Keys {
    fn resolve(args: &VerifyArgs) -> Result<Self, String> {
        let scheme = args.scheme.scheme;
        let public_given = !args.public_key.is_empty() || !args.public_key_file.is_empty();
        let secret_given = !args.secret.is_empty() || !args.secret_env.is_empty();
        match scheme.key_kind() {
            KeyKind::Public | KeyKind::Both if public_given => {
                let keys = public_keys(scheme, &args.public_key, &args.public_key_file)?;
                Ok(Self::Public(keys.into_iter().map(KeyMaterial::from).collect()))
            }
            KeyKind::Public => Err(scheme.needs_public_key()),
            KeyKind::Both if !secret_given => Err(
                "no key: give --secret or --secret-env (v1, whsec_…), or --public-key (v1a, whpk_…)"
                    .to_owned(),
            ),
            KeyKind::Secret if public_given => Err(scheme.takes_no_public_key(
                if args.public_key.is_empty() {
                    "--public-key-file"
                } else {
                    "--public-key"
                },
            )),
            KeyKind::Secret | KeyKind::Both => {
                let format = args
                    .secret_format
                    .unwrap_or_else(|| args.scheme.default_secret_format());
                let texts = secret_texts(&args.secret, &args.secret_env)?;
                let secrets = texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        format
                            .parse(t)
                            .map_err(|e| format!("secret #{}: {e}", i + 1))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self::Secrets {
                    secrets,
                    texts,
                    format,
                })
            }
        }
    }

    fn materials(&self) -> Vec<KeyMaterial> {
        match self {
            Self::Secrets { secrets, .. } => {
                secrets.iter().cloned().map(KeyMaterial::from).collect()
            }
            Self::Public(keys) => keys.clone(),
        }
    }

    /// What a key is called in the report.
    fn noun(&self) -> &'static str {
        match self {
            Self::Secrets { .. } => "secret",
            Self::Public(_) => "public key",
        }
    }
}

pub(super) fn run(args: VerifyArgs) -> Result<ExitCode, String> {
    let keys = Keys::resolve(&args)?;
    let materials = keys.materials();
    let headers = parse_headers(&args.headers)?;
    let body = args.body.read()?;
    let now = args.now.unwrap_or_else(chrono::Utc::now);
    let tolerance = args.tolerance;
    let url = args.scheme.url.as_deref();
    let check = |keys: &[KeyMaterial], body: &[u8]| -> Result<Result<usize, VerifyError>, String> {
        let scheme = args.scheme.build()?;
        verify_with(scheme, keys, tolerance, url, &headers, body, now)
    };

    let outcome = check(&materials, &body)?;
    let (expected, unknown) = match (&keys, args.show_expected) {
        (_, false) => (Vec::new(), None),
        (Keys::Public(_), true) => (
            Vec::new(),
            Some("public-key schemes cannot show an expected signature: only the sender's private key makes one".to_owned()),
        ),
        (Keys::Secrets { secrets, .. }, true) => {
            match expected(&args.scheme, secrets, &headers, &body, now)? {
                Expected::Headers(lines) => (lines, None),
                Expected::Unknown(why) => (Vec::new(), Some(why)),
            }
        }
    };
    let noun = keys.noun();
    match outcome {
        Ok(index) => {
            let role = if index == 0 { "current" } else { "grace" };
            if args.json {
                let mut report = json!({"valid": true, noun.replace(' ', "_"): index + 1, "role": role, "expected": expected});
                if let Some(why) = &unknown {
                    report["expected_unavailable"] = json!(why);
                }
                println!("{report}");
            } else {
                println!("valid: signature matches {noun} #{} ({role})", index + 1);
                print_expected(&expected, unknown.as_deref());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let hints = match &error {
                VerifyError::UrlRequired { .. } => vec![
                    "this scheme signs the URL the sender posted to: pass it with --url (exactly as configured at the sender, query included)".to_owned(),
                ],
                VerifyError::NoMatch { .. } | VerifyError::SignatureLength { .. } => {
                    near_misses(&check, &materials, &keys, &body)?
                }
                _ => Vec::new(),
            };
            if args.json {
                let mut report = json!({
                    "valid": false,
                    "error": error.to_string(),
                    "diagnosis": hints,
                    "expected": expected,
                });
                if let Some(why) = &unknown {
                    report["expected_unavailable"] = json!(why);
                }
                println!("{report}");
            } else {
                println!("invalid: {error}");
                if matches!(error, VerifyError::NoMatch { .. }) {
                    println!("no signature matched any of {} key(s)", materials.len());
                }
                for hint in &hints {
                    println!("hint: {hint}");
                }
                print_expected(&expected, unknown.as_deref());
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Verifies with `keys` (the first current, the rest grace), returning the matching index;
/// the outer error is a usage error.
fn verify_with(
    scheme: Box<dyn Scheme>,
    keys: &[KeyMaterial],
    tolerance: Option<Duration>,
    url: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<usize, VerifyError>, String> {
    let Some((current, grace)) = keys.split_first() else {
        return Err("no key: give --secret, --secret-env or --public-key".to_owned());
    };
    let clock = webhook_guard::ManualClock::new(now);
    let keyring = Keyring::builder()
        .clock(clock)
        .max_keys(keys.len().max(1))
        .max_grace(Duration::from_secs(3650 * 86_400))
        .key_id(KeyId::new("1"))
        .build(current.clone());
    // Grace keys last ten years past `now`, which --now's range keeps representable.
    let far = now
        .checked_add_signed(chrono::TimeDelta::days(3650))
        .ok_or_else(|| {
            format!(
                "--now {} is too late: give Unix seconds from 0 to {MAX_UNIX_TIME}",
                now.timestamp()
            )
        })?;
    let mut ids = vec![keyring.current_id()];
    for key in grace {
        // Cannot fail: the expiry is in the future and max_keys fits every key.
        ids.push(
            keyring
                .add_grace_key(key.clone(), far)
                .unwrap_or_else(|_| KeyId::new("?")),
        );
    }
    let mut verifier = Verifier::new(scheme, keyring);
    if let Some(tolerance) = tolerance {
        verifier = verifier.tolerance(tolerance);
    }
    let verified = match url {
        Some(url) => verifier.verify_url_at(url, headers, body, now),
        None => verifier.verify_at(headers, body, now),
    };
    Ok(verified.map(|verified| {
        let index = ids
            .iter()
            .position(|id| id == verified.key_id())
            .unwrap_or(0);
        debug_assert_eq!(index == 0, verified.role() == KeyRole::Current);
        index
    }))
}

type Check<'a> = dyn Fn(&[KeyMaterial], &[u8]) -> Result<Result<usize, VerifyError>, String> + 'a;

/// Bodies and keys that differ from what was given in the ways receivers commonly get wrong;
/// each that would have verified becomes a hint.
fn near_misses(
    check: &Check<'_>,
    materials: &[KeyMaterial],
    keys: &Keys,
    body: &[u8],
) -> Result<Vec<String>, String> {
    let mut hints = Vec::new();
    // Each distinct body is tried once, so one fix is not reported under two names.
    let mut tried = vec![body.to_vec()];
    let mut try_body = |candidate: Option<Vec<u8>>, hint: &str| -> Result<(), String> {
        if let Some(candidate) = candidate {
            if !tried.contains(&candidate) {
                if check(materials, &candidate)?.is_ok() {
                    hints.push(hint.to_owned());
                }
                tried.push(candidate);
            }
        }
        Ok(())
    };
    try_body(
        body.strip_suffix(b"\n").map(|b| b.strip_suffix(b"\r").unwrap_or(b).to_vec()),
        "the signature matches the body WITHOUT its trailing newline: something added one after signing (an editor, `echo`, or a client)",
    )?;
    try_body(
        (!body.ends_with(b"\n")).then(|| [body, b"\n"].concat()),
        "the signature matches the body WITH a trailing newline: the sender signed one that was lost (use --body-file with the exact bytes)",
    )?;
    try_body(
        (!body.ends_with(b"\n")).then(|| [body, b"\r\n"].concat()),
        "the signature matches the body WITH a trailing CRLF (\\r\\n): the sender signed one that was lost, as SendGrid's bodies end with one (use --body-file with the exact bytes)",
    )?;
    try_body(
        body.windows(2)
            .any(|w| w == b"\r\n")
            .then(|| replace(body, b"\r\n", b"\n")),
        "the signature matches the body with CRLF line endings turned into LF: the line endings were changed in transit or when saving",
    )?;
    try_body(
        (body.contains(&b'\n') && !body.windows(2).any(|w| w == b"\r\n"))
            .then(|| replace(body, b"\n", b"\r\n")),
        "the signature matches the body with LF line endings turned into CRLF: the line endings were changed in transit or when saving",
    )?;
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let encodings = [
            ("compact", serde_json::to_vec(&value).ok()),
            ("pretty-printed", serde_json::to_vec_pretty(&value).ok()),
            (
                "Python json.dumps-style (\", \" and \": \")",
                python_style(&value),
            ),
        ];
        for (style, encoded) in encodings {
            try_body(
                encoded,
                &format!("the body was re-serialized: the signature matches the {style} JSON encoding of it. Verify the raw bytes as received, before any JSON parsing"),
            )?;
        }
    }
    let Keys::Secrets { texts, format, .. } = keys else {
        return Ok(hints);
    };
    let format = *format;
    for other in SecretFormat::ALL.into_iter().filter(|f| *f != format) {
        let Ok(alternatives) = texts
            .iter()
            .map(|t| other.parse(t).map(KeyMaterial::from))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        if check(&alternatives, body)?.is_ok() {
            hints.push(format!(
                "the signature matches when the secret is read as {} instead of {}: pass --secret-format {}",
                other.name(),
                format.name(),
                other.name()
            ));
        }
    }
    Ok(hints)
}

/// JSON as Python's `json.dumps` writes it by default: `, ` and `: ` separators.
fn python_style(value: &serde_json::Value) -> Option<Vec<u8>> {
    use serde::Serialize as _;
    use std::io::Write;

    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    value.serialize(&mut ser).ok()?;
    Some(out)
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().saturating_add(body.len() / 16));
    let mut rest = body;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Prints `--show-expected`'s answer, if it was asked for.
fn print_expected(expected: &[String], unknown: Option<&str>) {
    for line in expected {
        println!("expected {line}");
    }
    if let Some(why) = unknown {
        println!("expected: cannot compute the expected signature: {why}");
    }
}

fn parse_headers(raw: &[String]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for line in raw {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("-H {line:?}: expected `Name: value`"))?;
        let name = HeaderName::try_from(name.trim())
            .map_err(|_| format!("-H {line:?}: {:?} is not a valid header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("-H {line:?}: the value is not a valid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}
