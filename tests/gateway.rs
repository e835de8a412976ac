//! `webhook-guard serve` as a verifying gateway: what reaches the upstream, what the sender
//! gets back, and what happens when the upstream fails. The real binary, a test upstream on a
//! free loopback port that counts what it receives.

mod gateway_support;

use std::time::Duration;

use gateway_support::{client, data_dir, deliver, send, sign, spawn, Behaviour, Upstream};
use http::Method;

const ALLOW_LOOPBACK: [&str; 2] = ["--upstream-allow", "127.0.0.1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_delivery_arrives_byte_identical_with_the_outcome_headers_only_from_the_gateway()
{
    let upstream = Upstream::start(
        Behaviour::Answer(
            201,
            vec![
                ("content-type", "text/x-test".into()),
                ("x-upstream", "yes".into()),
            ],
            b"accepted \x00\xff 123".to_vec(),
        ),
        true,
    )
    .await;
    let data = data_dir("identical");
    let serve = spawn(&data, &ALLOW_LOOPBACK);
    let client = client();
    let shown = serve
        .set_upstream(&client, &serve.project, &upstream.url(), false)
        .await;
    let key_id = shown.json()["keys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(shown.json()["upstreamUrl"], upstream.url());

    // Bytes a re-encoder would change: odd spacing, escapes, a NUL, invalid UTF-8.
    let body: &[u8] = b"{ \"type\" :\"ping\",\t\"n\": 1.50, \"s\": \"\\u00e9\" }\x00\xfe\r\n";
    let signed = sign(&serve.signing_secret, body);
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    headers.extend([
        ("x-vendor-event", "order.paid"),
        ("webhook-guard-key-id", "forged-key"),
        ("webhook-guard-key-role", "current"),
        ("webhook-guard-webhook-id", "forged-id"),
        ("webhook-guard-anything", "forged"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "connection-only"),
    ]);
    let url = serve.url(&format!("/webhooks/{}", serve.project));
    let answer = send(&client, Method::POST, url, &headers, body.to_vec()).await;
    // The upstream's answer comes back as it is.
    assert_eq!(answer.status, 201);
    assert_eq!(&answer.body[..], b"accepted \x00\xff 123");
    assert_eq!(answer.headers["content-type"], "text/x-test");
    assert_eq!(answer.headers["x-upstream"], "yes");

    assert_eq!(upstream.count(), 1);
    let got = upstream.last();
    assert_eq!(got.head, "POST /hooks/in?src=wg HTTP/1.1");
    assert_eq!(got.body, body, "the body arrives byte for byte");
    assert_eq!(got.one("content-length"), body.len().to_string());
    assert_eq!(got.one("host"), upstream.addr.to_string());
    assert_eq!(got.one("x-vendor-event"), "order.paid");
    // The sender's own signature headers are passed on as they were.
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert_eq!(got.one(name), signed[name].to_str().unwrap());
    }
    // Outcome headers: the gateway's, once each; the sender's copies are gone.
    assert_eq!(got.one("webhook-guard-key-id"), key_id);
    assert_eq!(got.one("webhook-guard-key-role"), "current");
    assert_eq!(got.one("webhook-guard-project-id"), serve.project);
    assert_eq!(
        got.one("webhook-guard-webhook-id"),
        signed["webhook-id"].to_str().unwrap()
    );
    assert_eq!(
        got.one("webhook-guard-timestamp"),
        signed["webhook-timestamp"].to_str().unwrap()
    );
    assert!(got.all("webhook-guard-anything").is_empty());
    // Hop-by-hop headers, and those the sender's Connection named, stay behind.
    assert!(got.all("x-hop").is_empty());
    assert!(got.all("connection").iter().all(|v| !v.contains("x-hop")));
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_and_expired_deliveries_never_reach_the_upstream() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"ok".to_vec()), false).await;
    let data = data_dir("forged");
    let serve = spawn(&data, &ALLOW_LOOPBACK);
    let client = client();
    serve
        .set_upstream(&client, &serve.project, &upstream.url(), false)
        .await;
    let url = serve.url(&format!("/webhooks/{}", serve.project));
    let body = br#"{"type":"ping"}"#;

    // Forged: signed with another secret.
    let forged = deliver(&client, &serve, &serve.project, "not-the-secret", body, &[]).await;
    assert_eq!(forged.status, 401);
    // Tampered: signed, then one byte changed.
    let signed = sign(&serve.signing_secret, body);
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let tampered = send(
        &client,
        Method::POST,
        url.clone(),
        &headers,
        br#"{"type":"pong"}"#.to_vec(),
    )
    .await;
    assert_eq!(tampered.status, 401);
    // Expired: signed an hour ago.
    let old = webhook_guard::Signer::new(
        webhook_guard::scheme::StandardWebhooks,
        webhook_guard::Secret::from_bytes(&serve.signing_secret).unwrap(),
    )
    .sign_at(
        body,
        "msg_old",
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .unwrap();
    let headers: Vec<(&str, &str)> = old
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let expired = send(&client, Method::POST, url.clone(), &headers, body.to_vec()).await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.json()["type"],
        "tag:webhook-guard,2026:timestamp-out-of-tolerance"
    );
    // Unsigned.
    let unsigned = send(&client, Method::POST, url, &[], body.to_vec()).await;
    assert_eq!(unsigned.status, 400);
    assert_eq!(upstream.count(), 0, "nothing unverified was forwarded");

    // The same route forwards a good one.
    let good = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(good.status, 200);
    assert_eq!(upstream.count(), 1);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_get_502_or_504_once_and_other_projects_keep_being_served() {
    let healthy = Upstream::start(Behaviour::Answer(202, vec![], b"fine".to_vec()), false).await;
    let slow = Upstream::start(Behaviour::Slow(Duration::from_secs(3)), false).await;
    let closing = Upstream::start(Behaviour::CloseMidResponse, false).await;
    let failing = Upstream::start(
        Behaviour::Answer(
            500,
            vec![("content-type", "application/json".into())],
            br#"{"error":"db down"}"#.to_vec(),
        ),
        false,
    )
    .await;
    let redirecting = Upstream::start(
        Behaviour::Answer(
            302,
            vec![("location", "http://169.254.169.254/latest".into())],
            Vec::new(),
        ),
        false,
    )
    .await;
    // A port with nothing listening.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let data = data_dir("failures");
    let serve = spawn(
        &data,
        &[
            "--upstream-allow",
            "127.0.0.1",
            "--upstream-timeout-ms",
            "800",
        ],
    );
    let client = client();
    let body = br#"{"type":"ping"}"#;
    let mut projects = Vec::new();
    for url in [
        healthy.url(),
        format!("http://{down}/"),
        slow.url(),
        closing.url(),
        failing.url(),
        redirecting.url(),
    ] {
        projects.push(serve.create_project(&client, Some(&url)).await);
    }
    let answer = |i: usize| {
        let (project, secret) = projects[i].clone();
        let client = client.clone();
        let serve = &serve;
        async move { deliver(&client, serve, &project, &secret, body, &[]).await }
    };
    let problem = |a: &gateway_support::Answer| {
        assert_eq!(a.headers["content-type"], "application/problem+json");
        a.json()["type"].as_str().unwrap().to_owned()
    };

    let ok = answer(0).await;
    assert_eq!((ok.status.as_u16(), &ok.body[..]), (202, &b"fine"[..]));

    let refused = answer(1).await;
    assert_eq!(refused.status, 502);
    assert_eq!(
        problem(&refused),
        "tag:webhook-guard,2026:upstream-unavailable"
    );

    let started = std::time::Instant::now();
    let timed_out = answer(2).await;
    assert_eq!(timed_out.status, 504);
    assert_eq!(
        problem(&timed_out),
        "tag:webhook-guard,2026:upstream-timeout"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );

    let broken = answer(3).await;
    assert_eq!(broken.status, 502);
    assert_eq!(
        problem(&broken),
        "tag:webhook-guard,2026:upstream-unavailable"
    );

    let server_error = answer(4).await;
    assert_eq!(
        server_error.status, 500,
        "the upstream's 500 is passed through"
    );
    assert_eq!(&server_error.body[..], br#"{"error":"db down"}"#);

    let redirect = answer(5).await;
    assert_eq!(
        redirect.status, 302,
        "a redirect is passed back, not followed"
    );
    assert_eq!(
        redirect.headers["location"],
        "http://169.254.169.254/latest"
    );

    // No retries of the gateway's own: each failing upstream saw the delivery once.
    assert_eq!(slow.count(), 1);
    assert_eq!(closing.count(), 1);
    assert_eq!(failing.count(), 1);
    assert_eq!(redirecting.count(), 1);

    // The healthy project is served throughout, also while another upstream hangs.
    let (hanging, again) = tokio::join!(answer(2), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        (answer(0).await, started.elapsed())
    });
    assert_eq!(again.0.status, 202);
    assert!(again.1 < Duration::from_millis(700), "{:?}", again.1);
    assert_eq!(hanging.status, 504);
    assert_eq!(healthy.count(), 2);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_upstream_the_route_answers_as_before_and_deleting_one_restores_that() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"up".to_vec()), false).await;
    let data = data_dir("none");
    let serve = spawn(&data, &ALLOW_LOOPBACK);
    let client = client();
    let body = br#"{"type":"ping"}"#;
    let plain = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.json()["verified"], true);
    assert_eq!(plain.json()["projectId"], serve.project.as_str());

    serve
        .set_upstream(&client, &serve.project, &upstream.url(), false)
        .await;
    let forwarded = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(&forwarded.body[..], b"up");

    let removed = serve
        .admin(
            &client,
            Method::DELETE,
            &format!("/v1/projects/{}/upstream", serve.project),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(removed.status, 204);
    let shown = serve
        .admin(
            &client,
            Method::GET,
            &format!("/v1/projects/{}", serve.project),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(shown.json()["upstreamUrl"], serde_json::Value::Null);
    let after = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(after.json()["verified"], true);
    assert_eq!(upstream.count(), 1);

    // Changes are audited.
    let audit = serve
        .admin(
            &client,
            Method::GET,
            "/v1/audit?limit=5",
            serde_json::Value::Null,
        )
        .await;
    let actions: Vec<String> = audit.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"project.upstream.set".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"project.upstream.removed".to_owned()),
        "{actions:?}"
    );
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_survives_a_restart() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"up".to_vec()), false).await;
    let data = data_dir("restart");
    let client = client();
    let (project, secret) = {
        let serve = spawn(&data, &ALLOW_LOOPBACK);
        serve
            .set_upstream(&client, &serve.project, &upstream.url(), false)
            .await;
        (serve.project.clone(), serve.signing_secret.clone())
    };
    let serve = spawn(&data, &ALLOW_LOOPBACK);
    let answer = deliver(&client, &serve, &project, &secret, b"{}", &[]).await;
    assert_eq!(
        (answer.status.as_u16(), &answer.body[..]),
        (200, &b"up"[..])
    );
    assert_eq!(upstream.count(), 1);
    let _ = std::fs::remove_dir_all(data);
}
