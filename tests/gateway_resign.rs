//! Re-signing forwarded deliveries with a gateway-to-upstream secret in the Standard Webhooks
//! format, so the upstream checks them with any Standard Webhooks library and one secret that
//! does not rotate with the sender's.

mod gateway_support;

use gateway_support::{client, data_dir, deliver, spawn, Behaviour, Received, Upstream};
use http::{HeaderMap, HeaderValue, Method};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, Secret, Signer, Verifier};

fn headers_of(received: &Received) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in &received.headers {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    headers
}

/// `v1,<base64 HMAC-SHA256(base64-decoded secret, "id.timestamp.body")>`, computed by
/// python3's `hmac` module: independent of this crate.
fn python_signature(whsec: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let script = "import sys,hmac,hashlib,base64\n\
        key=base64.b64decode(sys.argv[1].split('_',1)[1])\n\
        msg=sys.argv[2].encode()+b'.'+sys.argv[3].encode()+b'.'+bytes.fromhex(sys.argv[4])\n\
        print('v1,'+base64.b64encode(hmac.new(key,msg,hashlib.sha256).digest()).decode())";
    let out = std::process::Command::new("python3")
        .args(["-c", script, whsec, id, timestamp, &hex::encode(body)])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_re_signer_matches_the_published_standard_webhooks_vector() {
    // standard-webhooks/standard-webhooks, libraries' shared test vector.
    let secret = Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let at = chrono::DateTime::from_timestamp(1_614_265_330, 0).unwrap();
    let headers = Signer::new(StandardWebhooks, secret)
        .sign_at(
            br#"{"test": 2432232314}"#,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            at,
        )
        .unwrap();
    assert_eq!(
        headers["webhook-signature"],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_signed_forwards_verify_with_the_gateway_secret_and_an_independent_hmac() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"ok".to_vec()), true).await;
    let data = data_dir("resign");
    let client = client();
    let serve = spawn(&data, &["--upstream-allow", "127.0.0.1"]);
    let set = serve
        .set_upstream(&client, &serve.project, &upstream.url(), true)
        .await;
    let gateway_secret = set.json()["upstreamSecret"].as_str().unwrap().to_owned();
    assert!(gateway_secret.starts_with("whsec_"));
    assert_eq!(set.json()["upstreamResigned"], true);
    // Shown once: not in the project's view.
    let shown = serve
        .admin(
            &client,
            Method::GET,
            &format!("/v1/projects/{}", serve.project),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(shown.json()["upstreamResigned"], true);
    assert!(!String::from_utf8_lossy(&shown.body).contains(&gateway_secret[6..]));

    let body = br#"{"type":"invoice.paid","amount":1200}"#;
    let answer = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    let got = upstream.last();
    assert_eq!(got.body, body);
    let headers = headers_of(&got);
    let signature = got.one("webhook-signature");
    assert_eq!(signature.matches("v1,").count(), 1, "{signature}");

    // The crate's own verifier, with the gateway secret only.
    let gateway_key = Secret::from_whsec(&gateway_secret).unwrap();
    Verifier::new(StandardWebhooks, Keyring::new(gateway_key))
        .verify(&headers, &got.body)
        .expect("the re-signed delivery verifies with the gateway secret");
    // Not with the sender's secret: its signature was replaced.
    let vendor = Secret::from_bytes(&serve.signing_secret).unwrap();
    assert!(Verifier::new(StandardWebhooks, Keyring::new(vendor))
        .verify(&headers, &got.body)
        .is_err());
    // An independent HMAC gives the same signature.
    assert_eq!(
        python_signature(
            &gateway_secret,
            got.one("webhook-id"),
            got.one("webhook-timestamp"),
            &got.body
        ),
        signature
    );
    // The sender's webhook id is kept; the outcome headers are there too.
    assert_eq!(got.one("webhook-id"), got.one("webhook-guard-webhook-id"));
    let (project, vendor_secret) = (serve.project.clone(), serve.signing_secret.clone());
    drop(serve);

    // The gateway secret survives a restart (sealed in the store).
    let serve = spawn(&data, &["--upstream-allow", "127.0.0.1"]);
    let again = deliver(&client, &serve, &project, &vendor_secret, body, &[]).await;
    assert_eq!(again.status, 200);
    let got = upstream.last();
    Verifier::new(
        StandardWebhooks,
        Keyring::new(Secret::from_whsec(&gateway_secret).unwrap()),
    )
    .verify(&headers_of(&got), &got.body)
    .expect("still verifies after a restart");
    let _ = std::fs::remove_dir_all(data);
}
