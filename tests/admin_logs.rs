//! Every log line the management plane writes, at every level, while it creates, regenerates,
//! authenticates, refuses and fails: none holds a secret, an API key or an API secret.
//!
//! Alone in its test binary: tracing caches each callsite's interest per process, so the
//! capturing subscriber must be the global one from the first event on.

mod admin_support;
mod log_support;

use std::sync::atomic::Ordering;

use admin_support::*;
use axum::body::Body;
use http::Request;
use log_support::Captured;

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let captured = Captured::init(tracing::Level::TRACE);

    let f = Fixture::new("logs");
    let mut secrets: Vec<String> = vec![
        f.alice.client_secret.to_string(),
        f.alice.api_key.key.to_string(),
        f.bob.client_secret.to_string(),
        f.bob.api_key.key.to_string(),
    ];
    let key = f.alice.api_key.key.to_string();
    let (project, signing) = f.project(&f.alice);
    secrets.push(signing.clone());
    let regen = format!("/v1/external-support/{project}/secret/regenerate");

    // Changes that hand out secrets.
    let (_, _, body) = f
        .send(post_json(
            &regen,
            &key,
            Some(r#"{"oldSecretValidForSeconds": 60}"#),
        ))
        .await;
    secrets.push(body["signingSecret"].as_str().unwrap().to_owned());
    let (_, _, body) = f.send(post_json("/v1/projects", &key, None)).await;
    secrets.push(body["signingSecret"].as_str().unwrap().to_owned());
    let (_, _, body) = f
        .send(post_json("/v1/api-keys", &key, Some(r#"{"name": "ci"}"#)))
        .await;
    let new_key = body["key"].as_str().unwrap().to_owned();
    secrets.push(new_key.clone());
    let integrator = Request::post("/v1/integrator/regenerate-secret")
        .header(
            "authorization",
            basic(f.alice.id.as_str(), &f.alice.client_secret),
        )
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = f.send(integrator).await;
    secrets.push(body["secret"].as_str().unwrap().to_owned());

    // Webhooks that verify and that do not.
    f.deliver(project.as_str(), &signing).await;
    f.deliver(project.as_str(), "not the secret").await;

    // Refusals: a typo'd key, a deleted key, a wrong Basic secret (which is logged nowhere).
    let mut typo = key.clone();
    typo.replace_range(10..11, if &typo[10..11] == "A" { "B" } else { "A" });
    secrets.push(typo.clone());
    f.send(get("/v1/projects", &typo)).await;
    let id = body["secret"].as_str().map(|_| new_key.clone()).unwrap();
    let record_id = f
        .admin
        .list_api_keys(&f.caller(&f.alice), None, 100)
        .unwrap()
        .items
        .into_iter()
        .find(|k| new_key.contains(k.id.as_str()))
        .unwrap()
        .id;
    f.send(delete(&format!("/v1/api-keys/{record_id}"), &key))
        .await;
    f.send(get("/v1/projects", &id)).await;
    let wrong = "wgs_wrong-secret-that-must-not-be-logged";
    secrets.push(wrong.to_owned());
    let request = Request::get("/v1/projects")
        .header("authorization", basic(f.alice.id.as_str(), wrong))
        .body(Body::empty())
        .unwrap();
    f.send(request).await;

    // A store failure.
    f.failing.store(true, Ordering::SeqCst);
    f.send(post_json(&regen, &key, None)).await;
    f.failing.store(false, Ordering::SeqCst);

    let logs = captured.text();
    assert!(
        logs.contains("admin request failed"),
        "the store failure was not logged:\n{logs}"
    );
    assert!(
        logs.lines().count() >= 5,
        "too few log lines to mean anything:\n{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the logs:\n{logs}"
        );
        // Nor its hex or any long piece of it.
        let piece = &secret[secret.len() - 24..];
        assert!(
            !logs.contains(piece),
            "part of a secret is in the logs:\n{logs}"
        );
    }
}
