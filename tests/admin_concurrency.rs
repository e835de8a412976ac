//! 64 regenerations of one project at once: they take turns, none is lost, the log has all 64
//! in one chain, and every secret handed out verifies a webhook.

mod admin_support;

use std::time::Duration;

use admin_support::*;
use http::StatusCode;
use webhook_guard::admin::Admin;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::SqliteStore;
use webhook_guard::{KeyRole, ManualClock};

const N: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_regenerations_are_serialized_and_none_is_lost() {
    let dir = TempDir::new("concurrent");
    let clock = ManualClock::at_unix(NOW);
    let store = SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap();
    // Room for every key: each regeneration keeps the one before it for a minute.
    let admin = Admin::builder()
        .clock(clock.clone())
        .max_keys(N + 1)
        .open(store)
        .unwrap();
    let alice = admin.create_integrator().unwrap();
    let key = alice.api_key.key.to_string();
    let caller = admin.credentials().authenticate_api_key(&key).unwrap();
    let project = admin
        .create_project(&caller, None, "github")
        .unwrap()
        .project
        .id;
    let path = format!("/v1/external-support/{project}/secret/regenerate");

    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let app = app(admin.clone());
            let request = post_json(&path, &key, Some(r#"{"oldSecretValidForSeconds": 60}"#));
            tokio::spawn(async move { send(app, request).await })
        })
        .collect();
    let mut secrets = Vec::new();
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        secrets.push(body["signingSecret"].as_str().unwrap().to_owned());
    }

    // Exactly one current key, and every secret handed out is live.
    let keys = admin.project(&caller, &project).unwrap().keys();
    assert_eq!(
        keys.iter().filter(|k| k.role == KeyRole::Current).count(),
        1
    );
    assert_eq!(keys.len(), N + 1);
    let f = AppFor(app(admin.clone()));
    for secret in &secrets {
        assert_eq!(f.deliver(project.as_str(), secret).await, StatusCode::OK);
    }

    // 64 events, each rotating away the key the one before it made: one chain, no lost update.
    let mut events: Vec<_> = admin
        .store()
        .audit(caller.integrator(), None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "project.secret.regenerated")
        .collect();
    assert_eq!(events.len(), N);
    events.reverse();
    for pair in events.windows(2) {
        assert_eq!(pair[1].old_keys, vec![pair[0].new_key.clone().unwrap()]);
    }

    // After a minute only the key of the last event is left, and exactly one secret verifies.
    clock.advance(Duration::from_secs(60));
    let keys = admin.project(&caller, &project).unwrap().keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(Some(keys[0].id.to_string()), events[N - 1].new_key);
    let mut verified = 0;
    for secret in &secrets {
        if f.deliver(project.as_str(), secret).await == StatusCode::OK {
            verified += 1;
        }
    }
    assert_eq!(verified, 1);
}

/// Delivers through an app without a whole fixture.
struct AppFor(axum::Router);

impl AppFor {
    async fn deliver(&self, project: &str, secret: &str) -> StatusCode {
        use webhook_guard::{scheme::GitHub, Secret, Signer};
        let body = br#"{"action":"opened"}"#;
        let headers = Signer::new(GitHub, Secret::from_bytes(secret).unwrap())
            .sign(body)
            .unwrap();
        let mut request = http::Request::post(format!("/webhooks/{project}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        send(
            self.0.clone(),
            request.body(axum::body::Body::from(&body[..])).unwrap(),
        )
        .await
        .0
    }
}
