//! The `webhook-guard` binary for the public-key schemes (Discord, Standard Webhooks `v1a`,
//! SendGrid, PayPal), on the vectors `tests/vectors_public_key.rs` checks through the library:
//! `verify --public-key` accepts them and diagnoses their tampered copies as for HMAC, `sign
//! --signing-key` reproduces them where a receiver's tool can sign at all.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(args)
        .env_remove("WG_TEST_SIGNING_KEY")
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `verify --scheme scheme --now now --body body`, the headers as `-H`, then `extra`.
fn verify(scheme: &str, now: &str, headers: &[(&str, &str)], body: &str, extra: &[&str]) -> Output {
    let lines: Vec<String> = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let mut args = vec!["verify", "--scheme", scheme, "--now", now, "--body", body];
    for line in &lines {
        args.extend(["-H", line]);
    }
    args.extend(extra);
    run(&args)
}

fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}{}",
        stdout(out),
        stderr(out)
    );
}

// Source: standard-webhooks/standard-webhooks, libraries/go/webhook_asymmetric_test.go,
// TestAsymmetricWebhookSign (the key is the base64 of a 32-byte Ed25519 seed).
const V1A_KEY: &str = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
const V1A_SIG: &str =
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_BODY: &str = r#"{"test": 2432232314}"#;
// Computed: V1A_KEY's public key as `whpk_` (checked against the library below).
const V1A_PUBLIC: &str = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=";

fn v1a_headers() -> [(&'static str, &'static str); 3] {
    [
        ("webhook-id", SW_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", V1A_SIG),
    ]
}

// Computed: an Ed25519 key from the seed 00 01 … 1f signing Discord's PING body
// (discord-interactions-js's pingRequestBody) at timestamp 1700000000; Ed25519 is deterministic.
const DISCORD_PUBLIC: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const DISCORD_BODY: &str = r#"{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}"#;
const DISCORD_SIG: &str = "81d7269c4a7ffcec3d0e612cbf333e052282a6d3c913296937ebc937bdc7821690ce825568ac2f91057bd34a640c1ddfca8faeeda4446b68f663d61d753c6102";
// The seed 00 01 … 1f of DISCORD_PUBLIC, as `--signing-key` takes it.
const DISCORD_SEED: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// Computed: the Ed25519 public key of the seed 07 07 … 07, another valid key.
const OTHER_ED25519: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

fn discord_headers() -> [(&'static str, &'static str); 2] {
    [
        ("x-signature-ed25519", DISCORD_SIG),
        ("x-signature-timestamp", "1700000000"),
    ]
}

// Source: sendgrid/sendgrid-python test/unit/test_eventwebhook.py (payload ends in CRLF).
const SG_PY_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
const SG_PY_SIG: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
const SG_PY_BODY: &str = "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";

fn sg_py_headers() -> [(&'static str, &'static str); 2] {
    [
        ("x-twilio-email-event-webhook-signature", SG_PY_SIG),
        ("x-twilio-email-event-webhook-timestamp", "1600112502"),
    ]
}

// Source: sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js, with the
// test's wrong key too.
const SG_JS_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
const SG_JS_WRONG_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==";
const SG_JS_SIG: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
const SG_JS_BODY: &str =
    r#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;

fn sg_js_headers() -> [(&'static str, &'static str); 2] {
    [
        ("x-twilio-email-event-webhook-signature", SG_JS_SIG),
        ("x-twilio-email-event-webhook-timestamp", "1588788367"),
    ]
}

// Source: PayPal's SDK sample webhook (WebhookEvent.verify samples and tests, copied in many
// repositories; docs/vendor-vectors.md §11) and the sandbox certificate its PAYPAL-CERT-URL served
// (expired in 2017: only its key is used, as pinned).
const PAYPAL_CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/paypal_sandbox_cert.pem"
);
const PAYPAL_BODY: &str = include_str!("data/paypal_event_body.json");
const PAYPAL_WEBHOOK_ID: &str = "4JH86294D6297924G";
// 2015-05-18T15:45:13Z, the transmission time.
const PAYPAL_SENT: &str = "1431963913";

fn paypal_headers() -> [(&'static str, &'static str); 5] {
    [
        ("paypal-transmission-id", "dfb3be50-fd74-11e4-8bf3-77339302725b"),
        ("paypal-transmission-time", "2015-05-18T15:45:13Z"),
        ("paypal-auth-algo", "sha256"),
        ("paypal-cert-url", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"),
        ("paypal-transmission-sig", "thy4/U002quzxFavHPwbfJGcc46E8rc5jzgyeafWm5mICTBdY/8rl7WJpn8JA0GKA+oDTPsSruqusw+XXg5RLAP7ip53Euh9Xu3UbUhQFX7UgwzE2FeYoY6lyRMiiiQLzy9BvHfIzNIVhPad4KnC339dr6y2l+mN8ALgI4GCdIh3/SoJO5wE64Bh/ueWtt8EVuvsvXfda2Le5a2TrOI9vLEzsm9GS79hAR/5oLexNz8UiZr045Mr5ObroH4w4oNfmkTaDk9Rj0G19uvISs5QzgmBpauKr7Nw++JI0pr/v5mFctQkoWJSGfBGzPRXawrvIIVHQ9Wer48GR2g9ZiApWg=="),
    ]
}

const PAYPAL_KEY: [&str; 4] = [
    "--public-key-file",
    PAYPAL_CERT,
    "--paypal-webhook-id",
    PAYPAL_WEBHOOK_ID,
];

const VALID: &str = "valid: signature matches public key #1 (current)";

#[test]
fn the_computed_keys_are_the_vectors_own() {
    use webhook_guard::{PublicKey, SigningKey};
    let v1a = SigningKey::from_whsk(V1A_KEY).unwrap().public_key();
    assert_eq!(PublicKey::from_whpk(V1A_PUBLIC).unwrap(), v1a);
    let seed: Vec<u8> = (0u8..32).collect();
    assert_eq!(hex::encode(&seed), DISCORD_SEED);
    let discord = SigningKey::ed25519_seed(&seed).unwrap().public_key();
    assert_eq!(PublicKey::ed25519_hex(DISCORD_PUBLIC).unwrap(), discord);
    let other = SigningKey::ed25519_seed(&[7; 32]).unwrap().public_key();
    assert_eq!(PublicKey::ed25519_hex(OTHER_ED25519).unwrap(), other);
}

#[test]
fn verify_accepts_every_public_key_vector() {
    let v1a = ["--public-key", V1A_PUBLIC];
    let out = verify("standard", "1614265330", &v1a_headers(), SW_BODY, &v1a);
    assert_exit(&out, 0, "standard v1a");
    assert_eq!(stdout(&out).trim(), VALID);

    let discord = ["--public-key", DISCORD_PUBLIC];
    let out = verify(
        "discord",
        "1700000000",
        &discord_headers(),
        DISCORD_BODY,
        &discord,
    );
    assert_exit(&out, 0, "discord");
    assert_eq!(stdout(&out).trim(), VALID);

    let key = ["--public-key", SG_PY_KEY];
    let out = verify("sendgrid", "1600112502", &sg_py_headers(), SG_PY_BODY, &key);
    assert_exit(&out, 0, "sendgrid-python");
    let key = ["--public-key", SG_JS_KEY];
    let out = verify("sendgrid", "1588788367", &sg_js_headers(), SG_JS_BODY, &key);
    assert_exit(&out, 0, "sendgrid-nodejs");
    assert_eq!(stdout(&out).trim(), VALID);

    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        PAYPAL_BODY,
        &PAYPAL_KEY,
    );
    assert_exit(&out, 0, "paypal");
    assert_eq!(stdout(&out).trim(), VALID);
    // The certificate's text works as --public-key too (with `=`: PEM starts with hyphens).
    let pem = std::fs::read_to_string(PAYPAL_CERT).unwrap();
    let inline = format!("--public-key={pem}");
    let args = [
        inline.as_str(),
        "--paypal-webhook-id",
        PAYPAL_WEBHOOK_ID,
        "--json",
    ];
    let out = verify("paypal", PAYPAL_SENT, &paypal_headers(), PAYPAL_BODY, &args);
    assert_exit(&out, 0, "paypal inline");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"valid": true, "public_key": 1, "role": "current", "expected": []})
    );
}

#[test]
fn verify_reports_which_of_several_public_keys_matched() {
    let keys = [
        "--public-key",
        OTHER_ED25519,
        "--public-key",
        DISCORD_PUBLIC,
    ];
    let out = verify(
        "discord",
        "1700000000",
        &discord_headers(),
        DISCORD_BODY,
        &keys,
    );
    assert_exit(&out, 0, "discord, second key");
    assert_eq!(
        stdout(&out).trim(),
        "valid: signature matches public key #2 (grace)"
    );
}

#[test]
fn a_tampered_delivery_exits_1_with_the_same_diagnosis_as_for_hmac() {
    // A trailing newline added after signing.
    let key = ["--public-key", DISCORD_PUBLIC];
    let added = format!("{DISCORD_BODY}\n");
    let out = verify("discord", "1700000000", &discord_headers(), &added, &key);
    assert_exit(&out, 1, "discord + newline");
    let text = stdout(&out);
    assert!(
        text.contains("no signature matched any of 1 key(s)"),
        "{text}"
    );
    assert!(
        text.contains("hint: the signature matches the body WITHOUT its trailing newline"),
        "{text}"
    );

    // Re-serialized JSON: the receiver's framework wrote it back Python-style.
    let spaced = DISCORD_BODY.replace(',', ", ").replace(':', ": ");
    let out = verify("discord", "1700000000", &discord_headers(), &spaced, &key);
    assert_exit(&out, 1, "discord re-serialized");
    assert!(
        stdout(&out).contains("matches the compact JSON encoding"),
        "{}",
        stdout(&out)
    );

    // SendGrid's CRLF, lost on the way.
    let key = ["--public-key", SG_PY_KEY];
    let lost = SG_PY_BODY.trim_end();
    let out = verify("sendgrid", "1600112502", &sg_py_headers(), lost, &key);
    assert_exit(&out, 1, "sendgrid without CRLF");
    assert!(
        stdout(&out).contains("WITH a trailing CRLF"),
        "{}",
        stdout(&out)
    );

    // Timestamp skew against the tolerance.
    let key = ["--public-key", V1A_PUBLIC];
    let out = verify("standard", "1614265730", &v1a_headers(), SW_BODY, &key);
    assert_exit(&out, 1, "v1a 400 s late");
    assert!(
        stdout(&out).contains("timestamp is 400s old, beyond the 300s tolerance"),
        "{}",
        stdout(&out)
    );
    let mut wider = key.to_vec();
    wider.extend(["--tolerance", "500"]);
    let out = verify("standard", "1614265730", &v1a_headers(), SW_BODY, &wider);
    assert_exit(&out, 0, "v1a within --tolerance 500");

    // One byte changed: no fix to suggest, only the refusal.
    let mut changed = PAYPAL_BODY.to_owned();
    changed.replace_range(10..11, "X");
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        &changed,
        &PAYPAL_KEY,
    );
    assert_exit(&out, 1, "paypal changed");
    assert!(!stdout(&out).contains("hint:"), "{}", stdout(&out));
    let added = format!("{PAYPAL_BODY}\n");
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        &added,
        &PAYPAL_KEY,
    );
    assert!(
        stdout(&out).contains("WITHOUT its trailing newline"),
        "{}",
        stdout(&out)
    );
    // Another webhook's id is another message.
    let mut other = PAYPAL_KEY;
    other[3] = "4JH86294D6297924H";
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        PAYPAL_BODY,
        &other,
    );
    assert_exit(&out, 1, "paypal, another webhook id");

    // The JSON report carries the diagnosis.
    let json = ["--public-key", V1A_PUBLIC, "--json"];
    let out = verify("standard", "1614265330", &v1a_headers(), "{}", &json);
    assert_exit(&out, 1, "v1a other body, json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert!(report["error"]
        .as_str()
        .unwrap()
        .starts_with("no signature matched"));
}

#[test]
fn a_wrong_public_key_exits_1() {
    let key = ["--public-key", SG_JS_WRONG_KEY];
    let out = verify("sendgrid", "1588788367", &sg_js_headers(), SG_JS_BODY, &key);
    assert_exit(&out, 1, "sendgrid-nodejs wrong key");
    assert!(stdout(&out).contains("no signature matched any of 1 key(s)"));
    let key = ["--public-key", OTHER_ED25519];
    let out = verify(
        "discord",
        "1700000000",
        &discord_headers(),
        DISCORD_BODY,
        &key,
    );
    assert_exit(&out, 1, "discord other key");
    // OTHER_ED25519 as `whpk_`.
    let key = [
        "--public-key",
        "whpk_6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=",
    ];
    let out = verify("standard", "1614265330", &v1a_headers(), SW_BODY, &key);
    assert_exit(&out, 1, "v1a other key");
}

#[test]
fn show_expected_says_public_key_schemes_cannot_show_one() {
    let key = ["--public-key", DISCORD_PUBLIC, "--show-expected"];
    let out = verify("discord", "1700000000", &discord_headers(), "{}", &key);
    assert_exit(&out, 1, "discord --show-expected");
    assert!(
        stdout(&out).contains("expected: cannot compute the expected signature: public-key schemes cannot show an expected signature"),
        "{}",
        stdout(&out)
    );
    let json = ["--public-key", V1A_PUBLIC, "--show-expected", "--json"];
    let out = verify("standard", "1614265330", &v1a_headers(), SW_BODY, &json);
    assert_exit(&out, 0, "v1a --show-expected --json");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["expected_unavailable"]
        .as_str()
        .unwrap()
        .starts_with("public-key schemes cannot show an expected signature"));
}

#[test]
fn missing_or_bad_public_keys_exit_2_naming_the_flag() {
    let cases: [(&str, &[&str], &[&str]); 10] = [
        ("discord", &[], &["--public-key"]),
        ("sendgrid", &[], &["--public-key"]),
        (
            "paypal",
            &["--paypal-webhook-id", "x"],
            &["--public-key-file"],
        ),
        ("discord", &["--secret", "s"], &["--public-key"]),
        ("standard", &[], &["--secret", "--public-key"]),
        (
            "discord",
            &["--public-key", "zz"],
            &["--public-key", "not valid hex", "64 hex digits"],
        ),
        (
            "standard",
            &["--public-key", V1A_KEY],
            &["--public-key", "\"whpk_\""],
        ),
        (
            "sendgrid",
            &["--public-key", "AAAA"],
            &["--public-key", "P-256"],
        ),
        (
            "github",
            &["--public-key", DISCORD_PUBLIC],
            &["--public-key", "--secret"],
        ),
        (
            "standard",
            &["--public-key", V1A_PUBLIC, "--secret", "s"],
            &["--public-key", "--secret"],
        ),
    ];
    for (scheme, extra, needles) in cases {
        let out = verify(scheme, "1700000000", &[], "{}", extra);
        let err = stderr(&out);
        assert_exit(&out, 2, &format!("{scheme} {extra:?}"));
        for needle in needles {
            assert!(err.contains(needle), "{scheme} {extra:?}: {err}");
        }
        // A signing key given by mistake is never echoed.
        assert!(
            !err.contains("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk"),
            "{err}"
        );
    }
    // PayPal names its other flags: the webhook id, and a file that cannot be read.
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        PAYPAL_BODY,
        &["--public-key-file", PAYPAL_CERT],
    );
    assert_exit(&out, 2, "paypal without webhook id");
    assert!(stderr(&out).contains("--paypal-webhook-id"));
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        PAYPAL_BODY,
        &["--public-key-file", "/nonexistent/cert.pem"],
    );
    assert_exit(&out, 2, "paypal unreadable certificate");
    assert!(stderr(&out).contains("--public-key-file /nonexistent/cert.pem"));
    let out = verify(
        "paypal",
        PAYPAL_SENT,
        &paypal_headers(),
        PAYPAL_BODY,
        &["--public-key-file", file!(), "--paypal-webhook-id", "x"],
    );
    assert_exit(&out, 2, "paypal, not a certificate");
    assert!(stderr(&out).contains("PEM certificate"), "{}", stderr(&out));
}

/// `sign` with `args`, its output lines as `(name, value)`.
fn sign(args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["sign"];
    all.extend(args);
    let out = run(&all);
    assert_exit(&out, 0, &format!("{args:?}"));
    stdout(&out)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn sign_with_a_signing_key_reproduces_the_vectors_and_verifies() {
    let signed = sign(&[
        "--scheme",
        "standard",
        "--signing-key",
        V1A_KEY,
        "--id",
        SW_ID,
        "--timestamp",
        "1614265330",
        "--body",
        SW_BODY,
    ]);
    let expected = v1a_headers().map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(signed, expected);
    let key = ["--public-key", V1A_PUBLIC];
    let out = verify("standard", "1614265330", &pairs(&signed), SW_BODY, &key);
    assert_exit(&out, 0, "standard v1a round trip");

    let signed = sign(&[
        "--scheme",
        "discord",
        "--signing-key",
        DISCORD_SEED,
        "--timestamp",
        "1700000000",
        "--body",
        DISCORD_BODY,
    ]);
    let expected = discord_headers().map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(signed, expected);

    // A fresh body, the key from the environment, signed now: verifies now.
    let out = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "sign",
            "--scheme",
            "discord",
            "--signing-key-env",
            "WG_TEST_SIGNING_KEY",
            "--body",
            r#"{"type":2}"#,
        ])
        .env("WG_TEST_SIGNING_KEY", DISCORD_SEED)
        .output()
        .unwrap();
    assert_exit(&out, 0, "discord --signing-key-env");
    let mut args = vec![
        "verify",
        "--scheme",
        "discord",
        "--public-key",
        DISCORD_PUBLIC,
        "--body",
        r#"{"type":2}"#,
    ];
    let text = stdout(&out);
    for line in text.lines() {
        args.extend(["-H", line]);
    }
    let out = run(&args);
    assert_exit(&out, 0, "discord round trip");
    assert_eq!(stdout(&out).trim(), VALID);
}

#[test]
fn sign_refuses_sendgrid_and_paypal_whose_senders_alone_hold_the_key() {
    for scheme in ["sendgrid", "paypal"] {
        for extra in [
            &[][..],
            &["--signing-key", DISCORD_SEED],
            &["--secret", "s"],
        ] {
            let mut args = vec!["sign", "--scheme", scheme, "--body", "{}"];
            args.extend(extra);
            let out = run(&args);
            assert_exit(&out, 2, &format!("{args:?}"));
            let err = stderr(&out);
            assert!(
                err.contains(&format!(
                    "scheme {scheme} cannot be signed here: the sender signs with a key only it has"
                )),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn sign_key_flags_name_themselves() {
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--scheme", "discord"], &["--signing-key"]),
        (
            &["--scheme", "discord", "--secret", "s"],
            &["--signing-key"],
        ),
        (
            &["--scheme", "github", "--signing-key", DISCORD_SEED],
            &["--signing-key", "--secret"],
        ),
        (
            &[
                "--scheme",
                "standard",
                "--signing-key",
                V1A_KEY,
                "--secret",
                "s",
            ],
            &["--signing-key", "--secret"],
        ),
        (
            &["--scheme", "discord", "--signing-key", "0001"],
            &["--signing-key", "key is 2 bytes, expected 32"],
        ),
        (
            &["--scheme", "standard", "--signing-key", "whsk_***"],
            &["--signing-key", "not valid base64"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["sign", "--body", "{}"];
        all.extend(args);
        let out = run(&all);
        let err = stderr(&out);
        assert_exit(&out, 2, &format!("{args:?}"));
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert!(!err.contains("***"), "{err}");
    }
    let out = run(&[
        "sign",
        "--scheme",
        "discord",
        "--signing-key-env",
        "WG_TEST_SIGNING_KEY",
        "--body",
        "{}",
    ]);
    assert_exit(&out, 2, "unset --signing-key-env");
    assert!(stderr(&out).contains("WG_TEST_SIGNING_KEY is not set"));
}
