//! `GET /metrics` and the access log of `serve`, with and without upstreams.

mod gateway_support;

use gateway_support::{client, data_dir, deliver, send, spawn, Behaviour, Upstream};
use http::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_access_log_count_every_delivery_and_name_no_secret() {
    let upstream = Upstream::start(Behaviour::Answer(200, vec![], b"ok".to_vec()), false).await;
    let data = data_dir("metrics");
    let serve = spawn(&data, &["--upstream-allow", "127.0.0.1"]);
    let client = client();
    let forwarding = serve.project.clone();
    serve
        .set_upstream(&client, &forwarding, &upstream.url(), false)
        .await;
    let (answering, answering_secret) = serve.create_project(&client, None).await;

    let body = br#"{"type":"ping"}"#;
    assert_eq!(
        deliver(
            &client,
            &serve,
            &forwarding,
            &serve.signing_secret,
            body,
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        deliver(&client, &serve, &answering, &answering_secret, body, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        deliver(&client, &serve, &forwarding, "forged", body, &[])
            .await
            .status,
        401
    );
    assert_eq!(
        deliver(&client, &serve, "prj_attacker_text", "x", body, &[])
            .await
            .status,
        404
    );

    let metrics = send(&client, Method::GET, serve.url("/metrics"), &[], Vec::new()).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    for line in [
        format!(
            r#"webhook_guard_verifications_total{{project="{forwarding}",result="verified"}} 1"#
        ),
        format!(
            r#"webhook_guard_verifications_total{{project="{answering}",result="verified"}} 1"#
        ),
        format!(
            r#"webhook_guard_verifications_total{{project="{forwarding}",result="invalid-signature"}} 1"#
        ),
        r#"webhook_guard_verifications_total{project="-",result="unknown-project"} 1"#.into(),
        r#"webhook_guard_rejections_total{kind="invalid-signature"} 1"#.into(),
        r#"webhook_guard_rejections_total{kind="unknown-project"} 1"#.into(),
        r#"webhook_guard_forward_total{status="200"} 1"#.into(),
        "webhook_guard_forward_duration_seconds_count 1".into(),
    ] {
        assert!(text.contains(&line), "{line}\nnot in\n{text}");
    }
    assert!(
        !text.contains("prj_attacker_text"),
        "no series for forged paths"
    );

    let log = serve.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("webhook_guard::access"))
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    let forwarded = lines
        .iter()
        .find(|l| l.contains("forwarded"))
        .expect("a forwarded line");
    assert!(forwarded.contains(&forwarding), "{forwarded}");
    assert!(forwarded.contains("upstream_status=200"), "{forwarded}");
    assert!(forwarded.contains("key_id="), "{forwarded}");
    assert!(forwarded.contains("latency_us="), "{forwarded}");
    assert!(lines.iter().any(|l| l.contains("invalid-signature")));
    assert!(!log.contains(&serve.signing_secret));
    assert!(!log.contains(&answering_secret));
    assert!(!log.contains("prj_attacker_text"));
    let _ = std::fs::remove_dir_all(data);
}
