//! What the admin tests share: a data directory, an `Admin` on a manual clock, the app the
//! server runs (admin API + verifying webhook route), requests, and a digest of the state.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use webhook_guard::admin::credentials::Caller;
use webhook_guard::admin::{Admin, IntegratorId, NewIntegrator, MAX_PAGE};
use webhook_guard::scheme::GitHub;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{
    AuditEvent, AuditQuery, AuditRetention, Change, SqliteStore, State, Store, StoreError,
};
use webhook_guard::{KeyMaterial, ManualClock, ProjectId, Secret, Signer};

pub const NOW: i64 = 1_700_000_000;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "wg-{name}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(b)
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("wg.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A store that fails every change while `failing` is set (a full disk), and reads through.
pub struct Flaky {
    pub inner: SqliteStore,
    pub failing: Arc<AtomicBool>,
}

impl Store for Flaky {
    fn load(&self) -> Result<State, StoreError> {
        self.inner.load()
    }
    fn apply(&self, change: Change<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                path: "wg.db".into(),
                source: std::io::Error::other("disk full (test)"),
            });
        }
        self.inner.apply(change, event)
    }
    fn audit_matching(
        &self,
        integrator: &IntegratorId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_matching(integrator, query)
    }
    fn prune_audit(
        &self,
        integrator: &IntegratorId,
        retention: AuditRetention,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                path: "wg.db".into(),
                source: std::io::Error::other("disk full (test)"),
            });
        }
        self.inner.prune_audit(integrator, retention, event)
    }
    fn record_uses(
        &self,
        uses: &[(
            webhook_guard::admin::credentials::ApiKeyId,
            chrono::DateTime<chrono::Utc>,
        )],
    ) -> Result<(), StoreError> {
        self.inner.record_uses(uses)
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping()
    }
}

pub struct Fixture {
    pub dir: TempDir,
    pub clock: ManualClock,
    pub admin: Admin,
    pub failing: Arc<AtomicBool>,
    /// Two integrators, each with its first API key.
    pub alice: NewIntegrator,
    pub bob: NewIntegrator,
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let clock = ManualClock::at_unix(NOW);
        let failing = Arc::new(AtomicBool::new(false));
        let store = Flaky {
            inner: SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap(),
            failing: Arc::clone(&failing),
        };
        let admin = Admin::builder().clock(clock.clone()).open(store).unwrap();
        let alice = admin.create_integrator().unwrap();
        let bob = admin.create_integrator().unwrap();
        Self {
            dir,
            clock,
            admin,
            failing,
            alice,
            bob,
        }
    }

    pub fn app(&self) -> Router {
        app(self.admin.clone())
    }

    pub fn caller(&self, who: &NewIntegrator) -> Caller {
        self.admin
            .credentials()
            .authenticate_api_key(&who.api_key.key)
            .unwrap()
    }

    /// A project of `who` verified with GitHub's scheme; its id and signing secret.
    pub fn project(&self, who: &NewIntegrator) -> (ProjectId, String) {
        let created = self
            .admin
            .create_project(&self.caller(who), Some("shop".into()), "github")
            .unwrap();
        (
            created.project.id.clone(),
            created.signing_secret.to_string(),
        )
    }

    /// Sends `request` through the app: status, headers and the body as JSON (`Null` if
    /// empty, a string if not JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        send(self.app(), request).await
    }

    /// Delivers a webhook for `project` signed with `secret`: the status.
    pub async fn deliver(&self, project: &str, secret: &str) -> StatusCode {
        let body = br#"{"action":"opened"}"#;
        let headers = Signer::new(GitHub, Secret::from_bytes(secret).unwrap())
            .sign(body)
            .unwrap();
        let mut request = Request::post(format!("/webhooks/{project}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let (status, _, _) = self
            .send(request.body(Body::from(&body[..])).unwrap())
            .await;
        status
    }

    /// A digest of everything the store holds and of the keys and API keys in memory (but
    /// last-use times, which a successful authentication moves).
    pub fn digest(&self) -> String {
        let mut text = String::new();
        let state = self.admin.store().load().unwrap();
        for row in &state.integrators {
            writeln!(text, "integrator {}", row.id).unwrap();
            for key in &row.secrets {
                record(&mut text, key);
            }
        }
        for row in &state.projects {
            writeln!(
                text,
                "project {} {} {} {:?}",
                row.id, row.integrator, row.scheme, row.name
            )
            .unwrap();
            for key in &row.keys {
                record(&mut text, key);
            }
        }
        for key in &state.api_keys {
            writeln!(
                text,
                "api key {} {} {:?} {:?} {:?} {}",
                key.id,
                key.integrator,
                key.name,
                key.expires_at,
                key.projects,
                hex::encode(key.digest)
            )
            .unwrap();
        }
        for who in [&self.alice, &self.bob] {
            let events = self.admin.store().audit(&who.id, None, 10_000).unwrap();
            writeln!(text, "audit {} {}", who.id, events.len()).unwrap();
            let caller = self.caller(who);
            for project in self
                .admin
                .list_projects(&caller, None, MAX_PAGE)
                .unwrap()
                .items
            {
                // Not `last_verified`: a delivery moves it.
                let keys: Vec<_> = project
                    .keys()
                    .into_iter()
                    .map(|k| (k.id, k.role, k.created_at, k.expires_at))
                    .collect();
                writeln!(text, "memory project {} {keys:?}", project.id).unwrap();
            }
            for key in self
                .admin
                .list_api_keys(&caller, None, MAX_PAGE)
                .unwrap()
                .items
            {
                writeln!(text, "memory api key {}", key.id).unwrap();
            }
            let keyring = self.admin.credentials().integrator(&who.id).unwrap();
            let ids: Vec<_> = keyring
                .keys()
                .into_iter()
                .map(|k| (k.id, k.role, k.expires_at))
                .collect();
            writeln!(text, "memory secrets {ids:?}").unwrap();
        }
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

fn record(text: &mut String, key: &webhook_guard::KeyRecord) {
    let material = match &key.material {
        KeyMaterial::Secret(secret) => hex::encode(&*secret.reveal().into_bytes()),
        _ => "other".into(),
    };
    writeln!(
        text,
        "  key {} {:?} {:?} {:?} {}",
        key.id, key.role, key.created_at, key.expires_at, material
    )
    .unwrap();
}

/// The app `webhook-guard serve` runs: the library's.
pub fn app(admin: Admin) -> Router {
    webhook_guard::admin::app(admin)
}

pub async fn send(app: Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}

/// `POST path` with an API key and an optional JSON body.
pub fn post_json(path: &str, key: &str, body: Option<&str>) -> Request<Body> {
    let request = Request::post(path).header("x-api-key", key);
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap(),
        None => request.body(Body::empty()).unwrap(),
    }
}

pub fn get(path: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap()
}

pub fn delete(path: &str, key: &str) -> Request<Body> {
    Request::delete(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap()
}

pub fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// Asserts a problem+json answer of `status` whose `type` ends with `kind`.
pub fn assert_problem(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    expected: u16,
    kind: &str,
) {
    assert_eq!(status.as_u16(), expected, "{body}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], expected, "{body}");
    let ty = body["type"].as_str().unwrap_or_default();
    assert!(
        ty.ends_with(&format!(":{kind}")),
        "type {ty}, expected kind {kind}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}
