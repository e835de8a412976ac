//! Where the gateway may forward: upstream URLs are checked against the operator's allow list
//! when they are set (400) and again, after resolving the name, on every connection (502);
//! link-local and cloud-metadata addresses are never allowed.

mod gateway_support;

use gateway_support::{client, data_dir, deliver, spawn, Behaviour, Upstream};
use http::{HeaderMap, Method};
use webhook_guard::gateway::{Gateway, Upstream as Forwarding, UpstreamPolicy};
use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{Keyring, ProjectId, Secret, Signer, Verifier};

/// PUTs `url` as the bootstrap project's upstream; returns the status and problem document.
async fn set(serve: &gateway_support::Serve, url: &str) -> (u16, serde_json::Value) {
    let answer = serve
        .admin(
            &client(),
            Method::PUT,
            &format!("/v1/projects/{}/upstream", serve.project),
            serde_json::json!({ "upstreamUrl": url }),
        )
        .await;
    (answer.status.as_u16(), answer.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_urls_naming_forbidden_destinations_are_refused_when_set() {
    let data = data_dir("ssrf-set");
    let serve = spawn(&data, &["--upstream-allow", "10.0.0.0/8"]);
    let refused = [
        // Loopback is not on the list, as an address or as a name resolving to it.
        ("http://127.0.0.1:8080/", "not an allowed"),
        ("http://localhost:8080/", "not an allowed"),
        ("http://[::1]:8080/", "not an allowed"),
        // Metadata and link-local: never.
        ("http://169.254.169.254/latest/meta-data/", "never allowed"),
        ("http://[fe80::1]/", "never allowed"),
        ("http://[::ffff:169.254.169.254]/", "never allowed"),
        ("http://100.100.100.200/", "never allowed"),
        ("http://[fd00:ec2::254]/", "never allowed"),
        ("http://0.0.0.0:8080/", "never allowed"),
        // Malformed.
        ("http://user:secret@10.0.0.1/", "credentials"),
        ("http://user@10.0.0.1/", "credentials"),
        ("ftp://10.0.0.1/", "not http or https"),
        ("10.0.0.1:80", "not"),
        ("http://10.0.0.1/#x", "fragment"),
        ("", "not"),
    ];
    for (url, reason) in refused {
        let (status, problem) = set(&serve, url).await;
        assert_eq!(status, 400, "{url}: {problem}");
        assert_eq!(problem["field"], "upstreamUrl", "{url}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{url}: {detail}");
        assert!(
            !detail.contains("secret"),
            "the URL's password is not echoed: {detail}"
        );
    }
    // On the list: accepted (set only; nothing listens there).
    assert_eq!(set(&serve, "http://10.1.2.3:8080/in").await.0, 200);
    assert_eq!(set(&serve, "https://10.1.2.3/in").await.0, 200);

    // Creating a project with a forbidden upstream creates nothing.
    let before = serve
        .admin(
            &client(),
            Method::GET,
            "/v1/projects",
            serde_json::Value::Null,
        )
        .await
        .json()["projects"]
        .as_array()
        .unwrap()
        .len();
    let created = serve
        .admin(
            &client(),
            Method::POST,
            "/v1/projects",
            serde_json::json!({"name": "x", "upstreamUrl": "http://169.254.169.254/"}),
        )
        .await;
    assert_eq!(created.status, 400);
    let after = serve
        .admin(
            &client(),
            Method::GET,
            "/v1/projects",
            serde_json::Value::Null,
        )
        .await
        .json()["projects"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    drop(serve);

    // Allowing everything still leaves metadata and link-local out.
    let all = data_dir("ssrf-all");
    let serve = spawn(
        &all,
        &["--upstream-allow", "0.0.0.0/0", "--upstream-allow", "::/0"],
    );
    for url in [
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
    ] {
        assert_eq!(set(&serve, url).await.0, 400, "{url}");
    }
    assert_eq!(set(&serve, "http://127.0.0.1:9/").await.0, 200);
    drop(serve);

    // Without --upstream-allow nothing is allowed.
    let none = data_dir("ssrf-none");
    let serve = spawn(&none, &[]);
    assert_eq!(set(&serve, "http://127.0.0.1:9/").await.0, 400);
    drop(serve);
    for dir in [data, all, none] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_upstream_the_policy_no_longer_allows_is_refused_when_connecting() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"up".to_vec()), false).await;
    let data = data_dir("ssrf-connect");
    let client = client();
    let first = spawn(&data, &["--upstream-allow", "127.0.0.1"]);
    first
        .set_upstream(&client, &first.project, &upstream.url(), false)
        .await;
    let ok = deliver(
        &client,
        &first,
        &first.project,
        &first.signing_secret,
        b"{}",
        &[],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(upstream.count(), 1);
    let (project, secret) = (first.project.clone(), first.signing_secret.clone());
    drop(first);

    // The operator narrows the list; the stored URL is refused on connection.
    let serve = spawn(&data, &["--upstream-allow", "10.0.0.0/8"]);
    let answer = deliver(&client, &serve, &project, &secret, b"{}", &[]).await;
    assert_eq!(answer.status, 502);
    assert_eq!(
        answer.json()["type"],
        "tag:webhook-guard,2026:upstream-refused"
    );
    assert_eq!(upstream.count(), 1, "nothing reached the upstream");
    let _ = std::fs::remove_dir_all(data);
}

/// A verified delivery for the library-level forward.
fn verified() -> (HeaderMap, webhook_guard::Verified) {
    let secret = Secret::from_bytes("gateway test secret").unwrap();
    let headers = Signer::new(StandardWebhooks, secret.clone())
        .sign(b"{}")
        .unwrap();
    let verified = Verifier::new(StandardWebhooks, Keyring::new(secret))
        .verify(&headers, b"{}")
        .unwrap();
    (headers, verified)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_checks_every_address_a_name_resolves_to() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"up".to_vec()), false).await;
    let project = ProjectId::parse("prj_ssrf").unwrap();
    let (headers, verified) = verified();
    // Not checked when set: as if the name resolved elsewhere then (DNS rebinding).
    let by_name = Forwarding::new(
        format!("http://localhost:{}/", upstream.addr.port())
            .parse()
            .unwrap(),
    );
    let metadata = Forwarding::new("http://169.254.169.254/latest".parse().unwrap());

    let narrow = Gateway::builder(UpstreamPolicy::default().allow("10.0.0.0/8").unwrap())
        .build()
        .unwrap();
    for target in [&by_name, &metadata] {
        let answer = narrow
            .forward(target, &project, &verified, &headers, "{}".into())
            .await;
        assert_eq!(answer.status(), 502, "{target:?}");
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], "tag:webhook-guard,2026:upstream-refused");
    }
    let everything = Gateway::builder(
        UpstreamPolicy::default()
            .allow("0.0.0.0/0")
            .unwrap()
            .allow("::/0")
            .unwrap(),
    )
    .build()
    .unwrap();
    let answer = everything
        .forward(&metadata, &project, &verified, &headers, "{}".into())
        .await;
    assert_eq!(answer.status(), 502, "metadata stays out");
    assert_eq!(upstream.count(), 0);

    // A listed name that does not resolve is unreachable (502 upstream-unavailable).
    let nowhere = Gateway::builder(UpstreamPolicy::default().allow("nowhere.invalid").unwrap())
        .build()
        .unwrap();
    let unresolved = Forwarding::new("http://nowhere.invalid/".parse().unwrap());
    let answer = nowhere
        .forward(&unresolved, &project, &verified, &headers, "{}".into())
        .await;
    assert_eq!(answer.status(), 502);
    let body = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .unwrap()
        .to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        problem["type"],
        "tag:webhook-guard,2026:upstream-unavailable"
    );

    // Loopback allowed: the name resolves, is checked, and is connected to.
    let loopback = Gateway::builder(
        UpstreamPolicy::default()
            .allow("127.0.0.0/8")
            .unwrap()
            .allow("::1")
            .unwrap(),
    )
    .build()
    .unwrap();
    let answer = loopback
        .forward(&by_name, &project, &verified, &headers, "{}".into())
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(upstream.count(), 1);
}

#[test]
fn serve_refuses_an_allow_list_entry_that_is_neither_a_host_nor_a_range() {
    let data = data_dir("ssrf-flag");
    for entry in ["http://10.0.0.1/", "10.0.0.0/33", "a b"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_webhook-guard"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--upstream-allow",
                entry,
            ])
            .arg("--data-dir")
            .arg(&data)
            .env_remove("WEBHOOK_GUARD_MASTER_KEYS")
            .output()
            .expect("run serve");
        assert_eq!(out.status.code(), Some(2), "{entry}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--upstream-allow"), "{entry}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(data);
}
