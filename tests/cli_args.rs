//! The `webhook-guard` binary over generated argument vectors: every subcommand, every scheme,
//! extreme and malformed numbers, odd header bytes. Whatever it is given, it answers 0 (valid,
//! or done), 1 (invalid) or 2 (usage error, with a message on stderr); it never panics (101)
//! nor dies by a signal.
#![cfg(feature = "cli")]

use std::process::{Command, Stdio};

use proptest::prelude::*;

/// Each case runs the binary once: 256 take about a second (debug build), and found the
/// `--now 8210266876799` panic in 7 runs of 8 when it was put back.
const CASES: u32 = 256;

const SCHEMES: [&str; 16] = [
    "standard", "stripe", "github", "slack", "shopify", "square", "twilio", "zoom", "linear",
    "dropbox", "paddle", "twitch", "custom", "discord", "sendgrid", "paypal",
];

/// The integers at the edges of every range the CLI or chrono has.
const EXTREMES: [&str; 14] = [
    "-9223372036854775808",
    "-1",
    "0",
    "1",
    "1700000000",
    "253402300799",
    "253402300800",
    "8210266876799",
    "8210266876800",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999999",
    "-0",
];

/// Text a user might pass anywhere: odd bytes, but no NUL (no process argument can hold one).
fn garbage() -> impl Strategy<Value = String> {
    "[\\x01-\\x7f\u{80}-\u{10ffff}]{0,16}"
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(&EXTREMES[..]).prop_map(str::to_owned),
        6 => (0..=253_402_300_799_i64).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => garbage(),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => proptest::sample::select(vec![
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-timestamp",
            "stripe-signature",
            "x-hub-signature-256",
            "x-slack-signature",
            "x-slack-request-timestamp",
            "x-zm-request-timestamp",
            "paddle-signature",
            "twitch-eventsub-message-id",
            "twitch-eventsub-message-timestamp",
            "twitch-eventsub-message-signature",
            "x-signature",
            "x-signature-ed25519",
            "x-signature-timestamp",
            "x-twilio-email-event-webhook-signature",
            "x-twilio-email-event-webhook-timestamp",
            "paypal-transmission-id",
            "paypal-transmission-time",
            "paypal-transmission-sig",
            "paypal-auth-algo",
        ])
        .prop_map(str::to_owned),
        1 => garbage(),
    ]
}

fn header() -> impl Strategy<Value = String> {
    let values = prop_oneof![
        2 => number(),
        2 => proptest::sample::select(vec![
            "sha256=00",
            "v0=00",
            "v1,AAAA",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "t=8210266876799,v1=00",
            "ts=99999999999999999;h1=00",
            "2019-11-16T10:11:12.634234626Z",
            "9999-12-31T23:59:59Z",
            "+262143-12-31T23:59:59Z",
            "-262143-01-01T00:00:00Z",
            "1970-01-01T00:00:00-23:59",
            "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==",
            "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=",
            "SHA256withRSA",
        ])
        .prop_map(str::to_owned),
        1 => garbage(),
    ];
    prop_oneof![
        20 => (header_name(), values).prop_map(|(name, value)| format!("{name}: {value}")),
        1 => garbage(),
    ]
}

/// `--flag value`, written as two arguments or as `--flag=value`, present `2 * weight` times
/// in `2 * weight + 2`.
fn flag(
    name: &'static str,
    weight: u32,
    value: BoxedStrategy<String>,
) -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        2 => Just(Vec::new()),
        weight => value
            .clone()
            .prop_map(move |v| vec![format!("--{name}"), v]),
        weight => value.prop_map(move |v| vec![format!("--{name}={v}")]),
    ]
    .boxed()
}

fn switch(name: &'static str) -> BoxedStrategy<Vec<String>> {
    prop_oneof![Just(Vec::new()), Just(vec![format!("--{name}")])].boxed()
}

fn common() -> BoxedStrategy<Vec<String>> {
    let scheme = prop_oneof![
        12 => proptest::sample::select(&SCHEMES[..]).prop_map(str::to_owned),
        1 => garbage(),
    ];
    let secret = prop_oneof![
        3 => Just("s".to_owned()),
        3 => Just("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        1 => Just("whsec_***".to_owned()),
        1 => garbage(),
    ]
    .boxed();
    let format = proptest::sample::select(vec![
        "whsec", "hex", "base64", "raw", "raw", "raw", "raw", "rot13",
    ])
    .prop_map(str::to_owned)
    .boxed();
    let url = prop_oneof![Just("https://example.com/in?x=1".to_owned()), garbage()].boxed();
    let template = prop_oneof![
        Just("{id}.{timestamp}.{body}".to_owned()),
        Just("{body".to_owned()),
        garbage()
    ]
    .boxed();
    (
        scheme,
        flag("secret", 8, secret),
        flag("secret-format", 1, format),
        flag("url", 1, url),
        flag("custom-timestamp-header", 1, header_name().boxed()),
        flag("custom-id-header", 1, header_name().boxed()),
        flag("custom-template", 1, template),
        flag("body", 4, garbage().boxed()),
    )
        .prop_map(|(scheme, a, b, c, d, e, f, g)| {
            let mut args = vec!["--scheme".to_owned(), scheme];
            for part in [a, b, c, d, e, f, g] {
                args.extend(part);
            }
            args
        })
        .boxed()
}

/// Public keys of every scheme's format (the vectors of `tests/cli_pubkey.rs`), and garbage.
fn public_key() -> BoxedStrategy<String> {
    prop_oneof![
        2 => proptest::sample::select(vec![
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
            "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=",
            "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
            "whpk_AAAA",
            "zz",
        ])
        .prop_map(str::to_owned),
        1 => garbage(),
    ]
    .boxed()
}

fn verify_args() -> impl Strategy<Value = Vec<String>> {
    let file = prop_oneof![
        Just(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/paypal_sandbox_cert.pem"
            )
            .to_owned()
        ),
        Just(file!().to_owned()),
        garbage(),
    ]
    .boxed();
    (
        common(),
        proptest::collection::vec(header(), 0..5),
        flag("now", 4, number().boxed()),
        flag("tolerance", 1, number().boxed()),
        switch("show-expected"),
        switch("json"),
        flag("public-key", 4, public_key()),
        flag("public-key-file", 1, file),
        flag("paypal-webhook-id", 1, garbage().boxed()),
    )
        .prop_map(
            |(common, headers, now, tolerance, show, json, public, file, paypal)| {
                let mut args = vec!["verify".to_owned()];
                args.extend(common);
                for h in headers {
                    args.extend(["-H".to_owned(), h]);
                }
                args.extend(now.into_iter().chain(tolerance).chain(show).chain(json));
                args.extend(public.into_iter().chain(file).chain(paypal));
                args
            },
        )
}

fn sign_args() -> impl Strategy<Value = Vec<String>> {
    let signing_key = prop_oneof![
        2 => proptest::sample::select(vec![
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=",
            "whsk_***",
        ])
        .prop_map(str::to_owned),
        1 => garbage(),
    ]
    .boxed();
    (
        common(),
        flag("timestamp", 4, number().boxed()),
        flag("id", 1, garbage().boxed()),
        flag("curl", 1, garbage().boxed()),
        switch("json"),
        flag("signing-key", 4, signing_key),
    )
        .prop_map(|(common, timestamp, id, curl, json, signing_key)| {
            let mut args = vec!["sign".to_owned()];
            args.extend(common);
            args.extend(timestamp.into_iter().chain(id).chain(curl).chain(json));
            args.extend(signing_key);
            args
        })
}

fn gen_secret_args() -> impl Strategy<Value = Vec<String>> {
    let format = prop_oneof![
        proptest::sample::select(vec!["whsec", "hex", "base64"]).prop_map(str::to_owned),
        garbage(),
    ];
    flag("format", 2, format.boxed()).prop_map(|format| {
        let mut args = vec!["gen-secret".to_owned()];
        args.extend(format);
        args
    })
}

fn any_args() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        5 => verify_args(),
        3 => sign_args(),
        1 => gen_secret_args(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // A failure is reported with its minimal argument vector; nothing is written.
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    })]

    #[test]
    fn any_arguments_exit_0_1_or_2_and_never_panic(args in any_args()) {
        let out = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
            .args(&args)
            .env_remove("WG_TEST_SECRET")
            .stdin(Stdio::null())
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let code = out.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "{args:?} exited {:?}: {stderr}", out.status);
        if code == Some(2) {
            prop_assert!(!stderr.trim().is_empty(), "{args:?}: exit 2 with nothing on stderr");
        }
    }
}
