//! The `webhook-guard` binary, run as a user would: every subcommand, every scheme, and every
//! diagnosis triggered on purpose.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args(args)
        .env_remove("WG_TEST_SECRET")
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Signs `body` and returns the `-H` arguments for verify.
fn sign(scheme: &str, secret: &str, body: &str, ts: &str) -> Vec<String> {
    let out = run(&[
        "sign",
        "--scheme",
        scheme,
        "--secret",
        secret,
        "--id",
        "msg_cli",
        "--timestamp",
        ts,
        "--body",
        body,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .flat_map(|line| ["-H".to_owned(), line.to_owned()])
        .collect()
}

fn verify(scheme: &str, secret: &str, headers: &[String], body: &str, extra: &[&str]) -> Output {
    verify_at("1700000010", scheme, secret, headers, body, extra)
}

fn verify_at(
    now: &str,
    scheme: &str,
    secret: &str,
    headers: &[String],
    body: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "verify", "--scheme", scheme, "--secret", secret, "--body", body, "--now", now,
    ];
    args.extend(headers.iter().map(String::as_str));
    args.extend(extra);
    run(&args)
}

const SW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn gen_secret_prints_each_format_once_and_fresh() {
    let a = stdout(&run(&["gen-secret"]));
    let b = stdout(&run(&["gen-secret"]));
    assert!(a.starts_with("whsec_") && a.trim().len() == 6 + 44, "{a}");
    assert_ne!(a, b);
    let hex = stdout(&run(&["gen-secret", "--format", "hex"]));
    assert_eq!(hex.trim().len(), 64);
    assert!(hex.trim().bytes().all(|c| c.is_ascii_hexdigit()));
    let b64 = stdout(&run(&["gen-secret", "--format", "base64"]));
    assert_eq!(b64.trim().len(), 44);
}

#[test]
fn sign_reproduces_published_vectors() {
    // GitHub docs, "Validating webhook deliveries".
    let out = run(&[
        "sign",
        "--scheme",
        "github",
        "--secret",
        "It's a Secret to Everybody",
        "--body",
        "Hello, World!",
    ]);
    assert!(stdout(&out).contains(
        "x-hub-signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    ));
    // standard-webhooks reference test "sign function works".
    let out = run(&[
        "sign",
        "--scheme",
        "standard",
        "--secret",
        SW,
        "--id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "--timestamp",
        "1614265330",
        "--body",
        r#"{"test": 2432232314}"#,
    ]);
    assert!(
        stdout(&out).contains("webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );
}

#[test]
fn sign_then_verify_round_trips_for_every_scheme() {
    for (scheme, secret) in [
        ("standard", SW),
        ("stripe", "whsec_test_secret"),
        ("github", "gh secret"),
        ("slack", "slack secret"),
        ("shopify", "shopify secret"),
        ("custom", "custom secret"),
    ] {
        let headers = sign(scheme, secret, "{\"ok\":true}", "1700000000");
        let out = verify(scheme, secret, &headers, "{\"ok\":true}", &[]);
        assert_eq!(out.status.code(), Some(0), "{scheme}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("valid: signature matches secret #1 (current)"),
            "{scheme}"
        );
        let out = verify(
            scheme,
            "another secret",
            &headers,
            "{\"ok\":true}",
            &["--secret-format", "raw"],
        );
        assert_eq!(out.status.code(), Some(1), "{scheme}");
    }
}

#[test]
fn verify_reports_which_of_several_secrets_matched() {
    let headers = sign("stripe", "old", "{}", "1700000000");
    let mut args = vec![
        "verify",
        "--scheme",
        "stripe",
        "--secret",
        "new",
        "--secret",
        "old",
        "--body",
        "{}",
        "--now",
        "1700000000",
    ];
    args.extend(headers.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        "valid: signature matches secret #2 (grace)"
    );
}

#[test]
fn diagnoses_a_trailing_newline_added_after_signing() {
    let headers = sign("github", "s", "{\"a\":1}", "1700000000");
    let out = verify("github", "s", &headers, "{\"a\":1}\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("no signature matched any of 1 key(s)"),
        "{text}"
    );
    assert!(text.contains("WITHOUT its trailing newline"), "{text}");
}

#[test]
fn diagnoses_a_lost_trailing_newline() {
    let headers = sign("github", "s", "{\"a\":1}\n", "1700000000");
    let text = stdout(&verify("github", "s", &headers, "{\"a\":1}", &[]));
    assert!(text.contains("WITH a trailing newline"), "{text}");
}

#[test]
fn diagnoses_line_ending_swaps() {
    let headers = sign("github", "s", "a\nb\n", "1700000000");
    let text = stdout(&verify("github", "s", &headers, "a\r\nb\r\n", &[]));
    assert!(text.contains("CRLF line endings turned into LF"), "{text}");
    let headers = sign("github", "s", "a\r\nb", "1700000000");
    let text = stdout(&verify("github", "s", &headers, "a\nb", &[]));
    assert!(text.contains("LF line endings turned into CRLF"), "{text}");
}

#[test]
fn diagnoses_re_serialized_json() {
    // Sender signed compact JSON; the receiver's framework pretty-printed it.
    let headers = sign("shopify", "s", r#"{"b":2,"a":[1,2]}"#, "1700000000");
    let pretty = "{\n  \"b\": 2,\n  \"a\": [\n    1,\n    2\n  ]\n}";
    let text = stdout(&verify("shopify", "s", &headers, pretty, &[]));
    assert!(text.contains("matches the compact JSON encoding"), "{text}");
    // Sender signed Python-style JSON; the receiver compacted it.
    let headers = sign("shopify", "s", r#"{"b": 2, "a": [1, 2]}"#, "1700000000");
    let text = stdout(&verify(
        "shopify",
        "s",
        &headers,
        r#"{"b":2,"a":[1,2]}"#,
        &[],
    ));
    assert!(text.contains("Python json.dumps-style"), "{text}");
}

#[test]
fn diagnoses_timestamp_skew_against_the_tolerance() {
    let headers = sign("slack", "s", "x", "1700000000");
    let mut args = vec![
        "verify",
        "--scheme",
        "slack",
        "--secret",
        "s",
        "--body",
        "x",
        "--now",
        "1700000400",
    ];
    args.extend(headers.iter().map(String::as_str));
    let text = stdout(&run(&args));
    assert!(
        text.contains("timestamp is 400s old, beyond the 300s tolerance"),
        "{text}"
    );
    args.extend(["--tolerance", "500"]);
    assert_eq!(run(&args).status.code(), Some(0));
    let mut ahead = vec![
        "verify",
        "--scheme",
        "slack",
        "--secret",
        "s",
        "--body",
        "x",
        "--now",
        "1699999000",
    ];
    ahead.extend(headers.iter().map(String::as_str));
    assert!(stdout(&run(&ahead))
        .contains("timestamp is 1000s in the future, beyond the 300s tolerance"));
}

#[test]
fn diagnoses_missing_and_malformed_headers() {
    let out = run(&[
        "verify", "--scheme", "github", "--secret", "s", "--body", "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("missing header x-hub-signature-256"));
    let out = run(&[
        "verify",
        "--scheme",
        "github",
        "--secret",
        "s",
        "--body",
        "x",
        "-H",
        "X-Hub-Signature-256: sha1=abcd",
    ]);
    assert!(stdout(&out)
        .contains(r#"malformed header x-hub-signature-256: does not start with "sha256=""#));
    let out = run(&[
        "verify",
        "--scheme",
        "stripe",
        "--secret",
        "s",
        "--body",
        "x",
        "-H",
        "Stripe-Signature: t=1,v1=zz",
    ]);
    assert!(stdout(&out).contains("malformed header stripe-signature: signature is not valid hex"));
}

#[test]
fn diagnoses_a_secret_in_the_wrong_format() {
    let headers = sign("standard", SW, "{}", "1700000000");
    let out = verify("standard", SW, &headers, "{}", &["--secret-format", "raw"]);
    assert!(
        stdout(&out).contains("pass --secret-format whsec"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn never_prints_secret_or_expected_signature_unless_asked() {
    let headers = sign("github", "topsecret", "body", "1700000000");
    let expected = headers[1]
        .trim_start_matches("x-hub-signature-256: ")
        .to_owned();
    let out = verify("github", "topsecret", &headers, "tampered", &[]);
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("topsecret"));
    let tampered_sig = verify(
        "github",
        "topsecret",
        &headers,
        "body",
        &["--show-expected"],
    );
    assert!(stdout(&tampered_sig).contains(&expected));
}

#[test]
fn json_output_for_sign_and_verify() {
    let out = run(&[
        "sign", "--scheme", "github", "--secret", "s", "--body", "x", "--json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sig = value["headers"]["x-hub-signature-256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sig.starts_with("sha256="));
    let header = format!("x-hub-signature-256: {sig}");
    let ok = run(&[
        "verify", "--scheme", "github", "--secret", "s", "--body", "x", "-H", &header, "--json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(value["valid"], true);
    assert_eq!(value["secret"], 1);
    let bad = run(&[
        "verify", "--scheme", "github", "--secret", "s", "--body", "x\n", "-H", &header, "--json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(value["valid"], false);
    assert!(value["diagnosis"][0]
        .as_str()
        .unwrap()
        .contains("trailing newline"));
}

#[test]
fn secret_from_environment_and_body_from_file_or_stdin() {
    let dir = std::env::temp_dir().join(format!("wg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.json");
    std::fs::write(&file, b"{\"from\":\"file\"}\n").unwrap();
    let file = file.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "sign",
            "--scheme",
            "github",
            "--secret-env",
            "WG_TEST_SECRET",
            "--body-file",
            file,
        ])
        .env("WG_TEST_SECRET", "env secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let header = stdout(&out).lines().next().unwrap().to_owned();
    // The same bytes on stdin verify.
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
        .args([
            "verify",
            "--scheme",
            "github",
            "--secret-env",
            "WG_TEST_SECRET",
            "-H",
            &header,
        ])
        .env("WG_TEST_SECRET", "env secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"from\":\"file\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // A missing variable is a usage error (exit 2) naming it.
    let out = run(&[
        "sign",
        "--scheme",
        "github",
        "--secret-env",
        "WG_TEST_SECRET",
        "--body",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WG_TEST_SECRET is not set"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn curl_output_is_a_runnable_command() {
    let out = run(&[
        "sign",
        "--scheme",
        "stripe",
        "--secret",
        "s",
        "--timestamp",
        "1700000000",
        "--body",
        "it's",
        "--curl",
        "http://127.0.0.1:3000/webhooks",
    ]);
    let cmd = stdout(&out);
    assert!(cmd.starts_with("curl -i -X POST 'http://127.0.0.1:3000/webhooks' -H 'stripe-signature: t=1700000000,v1="), "{cmd}");
    assert!(
        cmd.trim_end().ends_with(r"--data-binary 'it'\''s'"),
        "{cmd}"
    );
}

#[test]
fn bad_secret_encoding_is_a_clear_usage_error() {
    let out = run(&[
        "sign",
        "--scheme",
        "standard",
        "--secret",
        "whsec_***",
        "--body",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret is not valid base64"), "{err}");
    assert!(!err.contains("***"), "{err}");
}

#[test]
fn every_further_scheme_round_trips_and_url_schemes_need_the_url() {
    let url = "https://hooks.example.com/in?x=1";
    for scheme in [
        "square", "twilio", "zoom", "linear", "dropbox", "paddle", "twitch",
    ] {
        let body = r#"{"webhookTimestamp":1700000000000,"ok":true}"#;
        let out = run(&[
            "sign",
            "--scheme",
            scheme,
            "--secret",
            "s3cret",
            "--url",
            url,
            "--id",
            "msg_1",
            "--timestamp",
            "1700000000",
            "--body",
            body,
        ]);
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut args = vec![
            "verify",
            "--scheme",
            scheme,
            "--secret",
            "s3cret",
            "--url",
            url,
            "--body",
            body,
            "--now",
            "1700000010",
        ];
        let lines = stdout(&out);
        let headers: Vec<String> = lines.lines().map(str::to_owned).collect();
        for h in &headers {
            args.extend(["-H", h.as_str()]);
        }
        let ok = run(&args);
        assert_eq!(ok.status.code(), Some(0), "{scheme}: {}", stdout(&ok));
    }
    let out = run(&[
        "verify",
        "--scheme",
        "square",
        "--secret",
        "k",
        "-H",
        "x-square-hmacsha256-signature: AAAA",
        "--body",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("pass it with --url"),
        "{}",
        stdout(&out)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn now_beyond_the_calendar_is_a_usage_error_not_a_panic() {
    // The review's command (E12): it panicked in the grace-key arithmetic.
    let out = run(&[
        "verify",
        "--scheme",
        "github",
        "--secret",
        "a",
        "--now",
        "8210266876799",
        "-H",
        "x-hub-signature-256: sha256=00",
        "--body",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("--now"), "{err}");
    assert!(first.contains("out of range"), "{err}");
    assert!(first.contains("from 0 to 253402300799"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn time_flags_name_themselves_and_their_range_at_every_extreme() {
    let too_far = [
        i64::MIN.to_string(),
        "-1".to_owned(),
        "253402300800".to_owned(),
        "8210266876799".to_owned(),
        i64::MAX.to_string(),
        u64::MAX.to_string(),
        "1e9".to_owned(),
    ];
    for value in &too_far {
        let verify = run(&[
            "verify", "--scheme", "github", "--secret", "a", "--body", "x", "--now", value,
        ]);
        let sign = run(&[
            "sign",
            "--scheme",
            "twitch",
            "--secret",
            "a",
            "--body",
            "x",
            "--timestamp",
            value,
        ]);
        for (out, flag) in [(verify, "--now"), (sign, "--timestamp")] {
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
            assert!(err.contains(flag), "{flag} {value}: {err}");
            assert!(
                err.contains("from 0 to 253402300799"),
                "{flag} {value}: {err}"
            );
        }
    }
    // Both ends of the range work: the last second signs and verifies.
    let headers = sign("twitch", "a", "x", "253402300799");
    assert!(headers.iter().any(|h| h.ends_with("9999-12-31T23:59:59Z")));
    let mut args = vec![
        "verify", "--scheme", "twitch", "--secret", "a", "--body", "x", "--now",
    ];
    args.push("253402300799");
    args.extend(headers.iter().map(String::as_str));
    assert_eq!(run(&args).status.code(), Some(0));
    let headers = sign("stripe", "a", "x", "0");
    let mut args = vec![
        "verify", "--scheme", "stripe", "--secret", "a", "--body", "x", "--now", "0",
    ];
    args.extend(headers.iter().map(String::as_str));
    assert_eq!(run(&args).status.code(), Some(0));
}

#[test]
fn tolerance_takes_any_whole_seconds_and_names_its_range_otherwise() {
    let headers = sign("slack", "s", "x", "1");
    let mut args = vec![
        "verify",
        "--scheme",
        "slack",
        "--secret",
        "s",
        "--body",
        "x",
        "--now",
        "253402300799",
        "--tolerance",
    ];
    args.push("18446744073709551615");
    args.extend(headers.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for value in ["-1", "18446744073709551616", "ten"] {
        let out = run(&[
            "verify",
            "--scheme",
            "slack",
            "--secret",
            "s",
            "--body",
            "x",
            "--tolerance",
            value,
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains("--tolerance"), "{value}: {err}");
        assert!(
            err.contains("from 0 to 18446744073709551615"),
            "{value}: {err}"
        );
    }
}

/// The value of the `expected secret #n: name: value` line for `name`.
fn expected_value(out: &Output, secret: usize, name: &str) -> Option<String> {
    let prefix = format!("expected secret #{secret}: {name}: ");
    stdout(out)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn show_expected_signs_twitch_nanoseconds_as_received() {
    // E13: the time was re-formatted to whole seconds before signing.
    let text = "2019-11-16T10:11:12.634234626Z";
    let at = chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    let secret = webhook_guard::Secret::from_bytes("s3cRe7-twitch").unwrap();
    let signed = webhook_guard::Signer::new(webhook_guard::scheme::Twitch, secret)
        .sign_at(b"{}", "e76c6bd4-55c9-4987-8304-da1588d8988b", at)
        .unwrap();
    assert_eq!(signed["twitch-eventsub-message-timestamp"], text);
    let mut args = vec![
        "verify".to_owned(),
        "--scheme".to_owned(),
        "twitch".to_owned(),
        "--secret".to_owned(),
        "not-it".to_owned(),
        "--secret".to_owned(),
        "s3cRe7-twitch".to_owned(),
        "--body".to_owned(),
        "{}".to_owned(),
        "--now".to_owned(),
        "1573899072".to_owned(),
        "--show-expected".to_owned(),
    ];
    for (name, value) in &signed {
        args.extend([
            "-H".to_owned(),
            format!("{name}: {}", value.to_str().unwrap()),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let received = signed["twitch-eventsub-message-signature"]
        .to_str()
        .unwrap();
    let sig = "twitch-eventsub-message-signature";
    assert_eq!(expected_value(&out, 2, sig).as_deref(), Some(received));
    assert_ne!(expected_value(&out, 1, sig).as_deref(), Some(received));
    let ts = "twitch-eventsub-message-timestamp";
    assert_eq!(expected_value(&out, 2, ts).as_deref(), Some(text));
    assert_eq!(
        expected_value(&out, 2, "twitch-eventsub-message-id").as_deref(),
        Some("e76c6bd4-55c9-4987-8304-da1588d8988b")
    );
}

#[test]
fn show_expected_signs_a_timestamp_text_no_signer_writes_and_it_verifies() {
    // An offset instead of `Z`: the signature printed for it, sent back, verifies.
    let headers = |sig: &str| {
        vec![
            "-H".to_owned(),
            "twitch-eventsub-message-id: m1".to_owned(),
            "-H".to_owned(),
            "twitch-eventsub-message-timestamp: 2019-11-16T10:11:12.5+00:00".to_owned(),
            "-H".to_owned(),
            format!("twitch-eventsub-message-signature: {sig}"),
        ]
    };
    let zeros = format!("sha256={}", "0".repeat(64));
    let out = verify("twitch", "k", &headers(&zeros), "{}", &["--show-expected"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let ts = expected_value(&out, 1, "twitch-eventsub-message-timestamp");
    assert_eq!(ts.as_deref(), Some("2019-11-16T10:11:12.5+00:00"));
    let sig = expected_value(&out, 1, "twitch-eventsub-message-signature").unwrap();
    let out = verify_at("1573899072", "twitch", "k", &headers(&sig), "{}", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn show_expected_keeps_a_standard_timestamp_beyond_chrono_as_received() {
    // E13: 99999999999999 s is past chrono's last second; the expected signature was made
    // over --now's time instead and showed its timestamp.
    let headers = |sig: &str| {
        vec![
            "-H".to_owned(),
            "webhook-id: msg_far".to_owned(),
            "-H".to_owned(),
            "webhook-timestamp: 99999999999999".to_owned(),
            "-H".to_owned(),
            format!("webhook-signature: {sig}"),
        ]
    };
    let zeros = format!("v1,{}=", "A".repeat(43));
    let show = ["--show-expected"];
    let out = verify_at("0", "standard", SW, &headers(&zeros), "{}", &show);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("timestamp is 99999999999999s in the future"),
        "{text}"
    );
    assert!(!text.contains("webhook-timestamp: 0\n"), "{text}");
    let ts = expected_value(&out, 1, "webhook-timestamp");
    assert_eq!(ts.as_deref(), Some("99999999999999"), "{text}");
    assert_eq!(
        expected_value(&out, 1, "webhook-id").as_deref(),
        Some("msg_far")
    );
    // The signature printed is over the received text: with the clock check out of the way,
    // it verifies.
    let sig = expected_value(&out, 1, "webhook-signature").unwrap();
    let any_skew = ["--tolerance", "18446744073709551615"];
    let out = verify_at("0", "standard", SW, &headers(&sig), "{}", &any_skew);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn show_expected_says_so_when_it_cannot_know_what_was_signed() {
    // No id and no timestamp received, and the scheme signs both: no guess.
    let out = verify(
        "standard",
        SW,
        &["-H".to_owned(), "webhook-signature: v1,AAAA".to_owned()],
        "{}",
        &["--show-expected"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("expected: cannot compute the expected signature: the headers do not parse (missing header webhook-id)"),
        "{text}"
    );
    assert!(!text.contains("expected secret #"), "{text}");
    let json = verify("standard", SW, &[], "{}", &["--show-expected", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["expected"], serde_json::json!([]));
    assert!(value["expected_unavailable"]
        .as_str()
        .unwrap()
        .contains("webhook id or timestamp"));
    // A scheme that signs only the body needs nothing from the headers.
    let signed = sign("github", "s", "x", "1700000000");
    let out = verify("github", "s", &[], "x", &["--show-expected"]);
    let expected = expected_value(&out, 1, "x-hub-signature-256").unwrap();
    assert_eq!(signed[1], format!("x-hub-signature-256: {expected}"));
    // One that signs the URL says it needs it, and verify still answers 1, not a usage error.
    let out = run(&[
        "verify",
        "--scheme",
        "square",
        "--secret",
        "k",
        "-H",
        "x-square-hmacsha256-signature: AAAA",
        "--body",
        "x",
        "--show-expected",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("expected: cannot compute the expected signature: the scheme signs the URL: pass it with --url"));
}
