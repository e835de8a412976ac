//! The property the `admin_requests` target checks: any request to the admin API is answered
//! without a panic and without a 5xx, every refusal is an RFC 9457 problem document with the
//! HTTP status, a refused request changes nothing (the audit log does not grow), and no answer
//! holds a credential it was not created to show.
//!
//! Shared by `fuzz/fuzz_targets/admin_requests.rs` and `tests/fuzz_corpus_admin.rs` (feature
//! `admin`), so it uses only crates the main crate depends on. Input layout:
//! `[method, route, credential, content type, id length, id bytes…, body…]`.

use std::sync::OnceLock;

use axum::body::Body;
use http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt as _;
use webhook_guard::admin::{router, Admin, NewIntegrator};
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::SqliteStore;

struct World {
    admin: Admin,
    router: axum::Router,
    alice: NewIntegrator,
    project: String,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // Memory-backed when the system has it: every accepted change is an fsync.
        let base = std::path::Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("wg-fuzz-admin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(dir.join("wg.db"), Sealer::plaintext()).unwrap();
        // Rates high enough that every input reaches the handler it names rather than a 429.
        let admin = Admin::builder()
            .write_rate(u32::MAX, u32::MAX)
            .failed_logins(u32::MAX, u32::MAX)
            .open(store)
            .unwrap();
        let alice = admin.create_integrator().unwrap();
        let caller = admin
            .credentials()
            .authenticate_api_key(&alice.api_key.key)
            .unwrap();
        let project = admin
            .create_project(&caller, None, "github")
            .unwrap()
            .project
            .id
            .to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        World {
            router: router(admin.clone()),
            admin,
            alice,
            project,
            runtime,
        }
    })
}

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::DELETE, Method::PUT];

/// Route templates; `{id}` is replaced by the fuzzed id or the real project's.
const ROUTES: [&str; 10] = [
    "/v1/external-support/{id}/secret/regenerate",
    "/v1/external-support/{id}/secret/previous",
    "/v1/integrator/regenerate-secret",
    "/v1/projects",
    "/v1/projects/{id}",
    "/v1/api-keys",
    "/v1/api-keys/{id}",
    "/v1/audit?limit={id}",
    "/v1/audit?before={id}",
    "/{id}",
];

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

/// The newest audit event's sequence number: every change writes one, so a refused request
/// leaves it as it was. (Reading one row keeps each input's cost flat as the log grows.)
fn audit_head(world: &World) -> Option<u64> {
    let newest = world.admin.store().audit(&world.alice.id, None, 1).unwrap();
    newest.first().map(|event| event.seq)
}

pub fn check_admin_request(data: &[u8]) {
    let [method, route, credential, content_type, id_len, rest @ ..] = data else {
        return;
    };
    let world = world();
    let (id, body) = rest.split_at(usize::from(*id_len).min(rest.len()));
    // Half the time the id is the real project's, so the routes behind it are reached.
    let id = if id_len & 1 == 0 {
        world.project.clone()
    } else {
        url_escape(id)
    };
    let path = ROUTES[usize::from(*route) % ROUTES.len()].replace("{id}", &id);
    let method = METHODS[usize::from(*method) % METHODS.len()].clone();
    let mut request = Request::builder().method(method).uri(&path);
    match credential % 4 {
        0 => request = request.header("x-api-key", world.alice.api_key.key.as_str()),
        1 => {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                world.alice.id,
                world.alice.client_secret.as_str()
            ));
            request = request.header("authorization", format!("Basic {basic}"));
        }
        2 => {
            if let Ok(value) = http::HeaderValue::from_bytes(body) {
                request = request.header("x-api-key", value);
            }
        }
        _ => {}
    }
    if let Some(content_type) = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()] {
        request = request.header("content-type", content_type);
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return; // not a valid URI: never reaches a server
    };
    let before = audit_head(world);
    let (status, headers, answer) = world.runtime.block_on(async {
        let response = world.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, bytes)
    });
    assert!(!status.is_server_error(), "{status} for {path}");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains(world.alice.api_key.key.as_str()),
        "the API key was answered"
    );
    assert!(
        !text.contains(world.alice.client_secret.as_str()),
        "the API secret was answered"
    );
    if status.is_client_error() {
        assert_eq!(
            headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..]),
            "{status} for {path}: {text}"
        );
        let problem: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(problem["status"], status.as_u16(), "{text}");
        assert!(problem["type"]
            .as_str()
            .unwrap()
            .starts_with("tag:webhook-guard,2026:"));
        assert_eq!(
            audit_head(world),
            before,
            "a refused request changed the state: {path}"
        );
    }
}

/// Percent-escapes what a URI path or query may not hold as it is.
fn url_escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
