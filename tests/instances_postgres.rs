//! Several instances on one PostgreSQL database: what one changes, the others apply within the
//! feed's bound (notifications, else the 500 ms poll), including after their listener's
//! connection was killed; concurrent writers on two instances never lose a change.

mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::HeaderMap;
use pg_support::TestDb;
use webhook_guard::admin::credentials::Caller;
use webhook_guard::admin::{Admin, NewIntegrator};
use webhook_guard::gateway::UpstreamPolicy;
use webhook_guard::scheme::GitHub;
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::feed::{FeedOptions, Follow, Listener, LISTENER_APPLICATION_NAME};
use webhook_guard::store::{PostgresOptions, PostgresStore};
use webhook_guard::{KeyRole, ProjectId, Secret, Signer};

/// How soon another instance must have applied a change.
const BOUND: Duration = Duration::from_secs(1);

struct Instance {
    admin: Admin,
    listener: Listener,
}

fn instance(db: &TestDb) -> Instance {
    instance_with(db, PostgresOptions::default())
}

fn instance_with(db: &TestDb, options: PostgresOptions) -> Instance {
    let store = PostgresStore::connect(&db.url(), Sealer::plaintext(), options).unwrap();
    let source = store.feed();
    let admin = Admin::builder()
        .write_rate(100_000, 100_000)
        .upstream_policy(UpstreamPolicy::default().allow("127.0.0.0/8").unwrap())
        .open(store)
        .unwrap();
    let listener = admin.follow(source, FeedOptions::default());
    within(Duration::from_secs(5), "the listener connects", || {
        listener.is_connected()
    });
    Instance { admin, listener }
}

/// Waits until `done`, at most `bound`; how long it took.
fn within(bound: Duration, what: &str, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn api_key_headers(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", key.parse().unwrap());
    headers
}

fn caller(admin: &Admin, who: &NewIntegrator) -> Caller {
    admin
        .credentials()
        .authenticate_api_key(&who.api_key.key)
        .unwrap()
}

fn accepts(admin: &Admin, project: &ProjectId, secret: &str) -> bool {
    let body = br#"{"action":"opened"}"#;
    let headers = Signer::new(GitHub, Secret::from_bytes(secret).unwrap())
        .sign(body)
        .unwrap();
    admin
        .projects()
        .get(project.as_str())
        .is_some_and(|verifier| verifier.verify(&headers, body).is_ok())
}

/// Two instances, an integrator made on A and a project of it; B knows both.
fn two_with_a_project(db: &TestDb) -> (Instance, Instance, NewIntegrator, ProjectId, String) {
    let a = instance(db);
    let b = instance(db);
    let who = a.admin.create_integrator().unwrap();
    let created = a
        .admin
        .create_project(&caller(&a.admin, &who), None, "github")
        .unwrap();
    let (project, secret) = (
        created.project.id.clone(),
        created.signing_secret.to_string(),
    );
    let key = api_key_headers(&who.api_key.key);
    within(BOUND, "B learns the project and the API key", || {
        accepts(&b.admin, &project, &secret) && b.admin.credentials().authenticate(&key).is_ok()
    });
    (a, b, who, project, secret)
}

#[test]
fn a_regeneration_with_grace_reaches_the_other_instance_and_the_old_secret_lasts_until_expiry() {
    let db = TestDb::new();
    let (a, b, who, project, old) = two_with_a_project(&db);
    let regenerated = a
        .admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::from_secs(2))
        .unwrap();
    let new = regenerated.secret.to_string();
    within(BOUND, "B accepts the new secret", || {
        accepts(&b.admin, &project, &new)
    });
    assert!(accepts(&b.admin, &project, &old), "the old one is in grace");
    let expires = regenerated.old_expires_at.unwrap();
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(left + Duration::from_millis(50));
    assert!(!accepts(&b.admin, &project, &old), "expired on B too");
    assert!(accepts(&b.admin, &project, &new));
}

#[test]
fn a_regeneration_without_grace_ends_the_old_secret_on_the_other_instance_within_a_second() {
    let db = TestDb::new();
    let (a, b, who, project, old) = two_with_a_project(&db);
    let new = a
        .admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap()
        .secret
        .to_string();
    within(BOUND, "B refuses the old secret", || {
        !accepts(&b.admin, &project, &old)
    });
    assert!(accepts(&b.admin, &project, &new));
}

/// Issue 21: upstream URLs (the gateway) were kept by the SQLite store only; on PostgreSQL,
/// setting one answered 500. Set on one instance, every other forwards there (re-signing with
/// the same sealed secret, loaded by an instance started later); removed, none does.
#[test]
fn an_upstream_set_on_one_instance_is_followed_by_the_others_and_kept_in_the_database() {
    let db = TestDb::new();
    let (a, b, who, project, _) = two_with_a_project(&db);
    let url = "http://127.0.0.1:9/hooks";
    let forwards = |admin: &Admin, resigns: bool| {
        admin
            .upstream(&project)
            .is_some_and(|u| u.url().as_str() == url && u.resigns() == resigns)
    };
    let shown = a
        .admin
        .set_project_upstream(&caller(&a.admin, &who), &project, url, true)
        .unwrap();
    assert!(shown.is_some_and(|secret| secret.starts_with("whsec_")));
    assert!(forwards(&a.admin, true));
    within(BOUND, "B forwards, re-signed", || forwards(&b.admin, true));
    let c = instance(&db);
    assert!(forwards(&c.admin, true), "loaded with its sealed secret");

    // Passed on as received now: the change of secret reaches the others too.
    a.admin
        .set_project_upstream(&caller(&a.admin, &who), &project, url, false)
        .unwrap();
    within(BOUND, "B forwards unsigned", || forwards(&b.admin, false));
    within(BOUND, "C forwards unsigned", || forwards(&c.admin, false));

    b.admin
        .remove_project_upstream(&caller(&b.admin, &who), &project)
        .unwrap();
    within(BOUND, "A stops forwarding", || {
        a.admin.upstream(&project).is_none()
    });
    within(BOUND, "C stops forwarding", || {
        c.admin.upstream(&project).is_none()
    });
    // The signing keys were not touched by any of it.
    assert!(c.admin.project(&caller(&c.admin, &who), &project).is_ok());
}

#[test]
fn an_api_key_deleted_on_one_instance_is_refused_by_the_other() {
    let db = TestDb::new();
    let (a, b, who, _, _) = two_with_a_project(&db);
    let key = a
        .admin
        .create_api_key(&caller(&a.admin, &who), Some("ci".into()), None, None)
        .unwrap();
    let headers = api_key_headers(&key.key);
    within(BOUND, "B accepts the new API key", || {
        b.admin.credentials().authenticate(&headers).is_ok()
    });
    a.admin
        .delete_api_key(&caller(&a.admin, &who), &key.record.id)
        .unwrap();
    within(BOUND, "B refuses the deleted API key", || {
        b.admin.credentials().authenticate(&headers).is_err()
    });
}

#[test]
fn an_integrator_secret_rotated_on_one_instance_works_on_the_other() {
    let db = TestDb::new();
    let (a, b, who, _, _) = two_with_a_project(&db);
    let basic = |secret: &str| {
        let mut headers = HeaderMap::new();
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", who.id));
        headers.insert("authorization", format!("Basic {token}").parse().unwrap());
        headers
    };
    let old = basic(&who.client_secret);
    within(BOUND, "B knows the integrator", || {
        b.admin.credentials().authenticate(&old).is_ok()
    });
    let new = a
        .admin
        .regenerate_integrator_secret(&caller(&a.admin, &who), Duration::ZERO)
        .unwrap();
    let new = basic(&new.secret);
    within(BOUND, "B accepts the new API secret", || {
        b.admin.credentials().authenticate(&new).is_ok()
    });
    assert!(b.admin.credentials().authenticate(&old).is_err());
}

#[test]
fn a_revocation_made_while_the_listener_was_cut_off_is_applied_within_the_poll_bound() {
    let db = TestDb::new();
    let (a, b, who, project, old) = two_with_a_project(&db);
    let killed = db.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{}' AND application_name = '{LISTENER_APPLICATION_NAME}'",
        db.name
    ));
    assert_eq!(killed.len(), 2, "both instances' listeners");
    a.admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap();
    // The notification went nowhere: B reconnects and reloads, or its poll catches it.
    let took = within(BOUND, "B refuses the revoked secret", || {
        !accepts(&b.admin, &project, &old)
    });
    eprintln!("applied after {took:?}");
    within(Duration::from_secs(5), "B's listener is back", || {
        b.listener.is_connected()
    });
}

#[test]
fn concurrent_regenerations_on_two_instances_form_one_chain_and_converge() {
    let db = TestDb::new();
    let (a, b, who, project, _) = two_with_a_project(&db);
    let admins = [Arc::new(a.admin.clone()), Arc::new(b.admin.clone())];
    let callers = [caller(&a.admin, &who), caller(&b.admin, &who)];
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let admin = Arc::clone(&admins[i % 2]);
            let caller = callers[i % 2].clone();
            let project = project.clone();
            std::thread::spawn(move || {
                admin.regenerate_project_secret(&caller, &project, Duration::ZERO)
            })
        })
        .collect();
    // A regeneration that finds the key changed by the other instance reloads it and retries
    // once, holding the other writers off: every one succeeds.
    let mut succeeded: Vec<String> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap().unwrap().key_id.to_string())
        .collect();
    let store = a.admin.store();
    let mut events = store
        .audit_matching(
            &who.id,
            &webhook_guard::store::AuditQuery::page(None, 200)
                .action(webhook_guard::store::AuditAction::ProjectSecretRegenerated),
        )
        .unwrap();
    events.reverse();
    assert_eq!(events.len(), 64, "one event per regeneration");
    // One chain: each regeneration replaced the key the previous one made.
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].old_keys,
            vec![pair[0].new_key.clone().unwrap()],
            "a regeneration did not start from the newest key"
        );
    }
    let mut made: Vec<String> = events.iter().filter_map(|e| e.new_key.clone()).collect();
    made.sort();
    succeeded.sort();
    assert_eq!(made, succeeded, "every success was current at some point");
    let stored = store.load_project(&project).unwrap().unwrap();
    assert_eq!(stored.keys.len(), 1);
    assert_eq!(stored.keys[0].role, KeyRole::Current);
    let current = stored.keys[0].id.clone();
    for admin in &admins {
        within(BOUND, "both instances converge", || {
            let keys = admin.project(&callers[0], &project).map(|p| p.keys());
            keys.is_ok_and(|keys| keys.len() == 1 && keys[0].id == current)
        });
    }
}

#[test]
fn an_instance_started_later_loads_the_current_state() {
    let db = TestDb::new();
    let (a, _b, who, project, _) = two_with_a_project(&db);
    let new = a
        .admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap()
        .secret
        .to_string();
    let key = a
        .admin
        .create_api_key(&caller(&a.admin, &who), None, None, None)
        .unwrap();
    let c = instance(&db);
    assert!(accepts(&c.admin, &project, &new));
    assert!(c
        .admin
        .credentials()
        .authenticate(&api_key_headers(&key.key))
        .is_ok());
    assert_eq!(c.admin.applied_seq(), a.admin.store().load().unwrap().seq);
}

#[test]
fn a_notification_wakes_the_other_instance_long_before_its_poll() {
    let db = TestDb::new();
    let a = instance(&db);
    let store =
        PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default()).unwrap();
    let source = store.feed();
    let b = Admin::builder().open(store).unwrap();
    // Polling every minute: only the notification can bring the change within the bound.
    let listener = b.follow(source, FeedOptions::default().poll(Duration::from_secs(60)));
    within(Duration::from_secs(5), "B's listener connects", || {
        listener.is_connected()
    });
    let who = a.admin.create_integrator().unwrap();
    let created = a
        .admin
        .create_project(&caller(&a.admin, &who), None, "github")
        .unwrap();
    let took = within(BOUND, "B learns the project from the notification", || {
        accepts(&b, &created.project.id, &created.signing_secret)
    });
    eprintln!("notified after {took:?}");
}

/// GET /readyz on `admin`'s router: the status.
fn readyz(admin: &Admin) -> http::StatusCode {
    use tower::ServiceExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        webhook_guard::admin::router(admin.clone())
            .oneshot(
                http::Request::get("/readyz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
    })
}

/// POST …/secret/regenerate on `admin`'s router: the status and content type.
fn regenerate_over_http(
    admin: &Admin,
    key: &str,
    project: &ProjectId,
) -> (http::StatusCode, String) {
    use tower::ServiceExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = webhook_guard::admin::router(admin.clone())
            .oneshot(
                http::Request::post(format!("/v1/external-support/{project}/secret/regenerate"))
                    .header("x-api-key", key)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status(), kind)
    })
}

#[test]
fn while_the_database_is_unreachable_instances_verify_refuse_writes_and_catch_up_after() {
    let db = TestDb::new();
    let (a, b, who, project, secret) = two_with_a_project(&db);
    let block = |allow: bool| {
        db.admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
            db.name
        ));
        if !allow {
            db.admin(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                db.name
            ));
        }
    };
    block(false);
    assert_eq!(readyz(&a.admin), http::StatusCode::SERVICE_UNAVAILABLE);
    // Several polls and reconnection attempts later, both still verify with the keys they held.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!b.listener.is_connected());
    assert!(accepts(&a.admin, &project, &secret));
    assert!(accepts(&b.admin, &project, &secret));
    // A write is refused with 503 and changes nothing.
    let err = a
        .admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap_err();
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert!(accepts(&a.admin, &project, &secret), "memory unchanged");
    assert_eq!(
        regenerate_over_http(&b.admin, &who.api_key.key, &project),
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "application/problem+json".to_owned()
        )
    );
    assert!(accepts(&b.admin, &project, &secret), "memory unchanged");
    assert_eq!(readyz(&b.admin), http::StatusCode::SERVICE_UNAVAILABLE);

    // Back: a change made on A reaches B through the feed, without a restart.
    block(true);
    let new = a
        .admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap()
        .secret
        .to_string();
    let took = within(
        Duration::from_secs(3),
        "B catches up (reconnect + reload)",
        || !accepts(&b.admin, &project, &secret) && accepts(&b.admin, &project, &new),
    );
    eprintln!("caught up after {took:?}");
    assert_eq!(readyz(&b.admin), http::StatusCode::OK);
}

#[test]
fn a_retry_holding_the_writers_off_needs_no_second_connection() {
    // One connection per instance: the retry reads and writes on the one it holds the lock on;
    // the other writers wait for it, none for themselves.
    let db = TestDb::new();
    let one = || PostgresOptions::default().pool_size(1);
    let (a, b) = (instance_with(&db, one()), instance_with(&db, one()));
    let who = a.admin.create_integrator().unwrap();
    let key = api_key_headers(&who.api_key.key);
    let projects: Vec<ProjectId> = (0..2)
        .map(|_| {
            a.admin
                .create_project(&caller(&a.admin, &who), None, "github")
                .unwrap()
                .project
                .id
        })
        .collect();
    within(BOUND, "B learns both projects", || {
        b.admin.credentials().authenticate(&key).is_ok()
            && projects
                .iter()
                .all(|p| b.admin.projects().get(p.as_str()).is_some())
    });
    let admins = [Arc::new(a.admin.clone()), Arc::new(b.admin.clone())];
    let callers = [caller(&a.admin, &who), caller(&b.admin, &who)];
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let admin = Arc::clone(&admins[i % 2]);
            let caller = callers[i % 2].clone();
            let project = projects[(i / 2) % 2].clone();
            std::thread::spawn(move || {
                admin.regenerate_project_secret(&caller, &project, Duration::ZERO)
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nobody waited for the pool's timeout"
    );
}

#[test]
fn a_dropped_listener_stops_following_and_closes_its_connection() {
    let db = TestDb::new();
    let listeners = || {
        db.admin(&format!(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = '{}' AND application_name = '{LISTENER_APPLICATION_NAME}'",
            db.name
        ))
        .len()
    };
    let a = instance(&db);
    let b = instance(&db);
    assert_eq!(listeners(), 2);
    let who = a.admin.create_integrator().unwrap();
    let created = a
        .admin
        .create_project(&caller(&a.admin, &who), None, "github")
        .unwrap();
    let project = created.project.id.clone();
    within(BOUND, "B follows", || {
        b.admin.projects().get(project.as_str()).is_some()
    });

    let Instance {
        admin: b_admin,
        listener,
    } = b;
    drop(listener);
    within(BOUND, "the dropped listener's connection is gone", || {
        listeners() == 1
    });
    // What A changes now stays unknown to B: nothing follows for it any more.
    let old = created.signing_secret.to_string();
    a.admin
        .regenerate_project_secret(&caller(&a.admin, &who), &project, Duration::ZERO)
        .unwrap();
    std::thread::sleep(2 * FeedOptions::default().poll);
    assert!(
        accepts(&b_admin, &project, &old),
        "B applied a change it no longer follows"
    );
    assert!(!accepts(&a.admin, &project, &old));
}

#[test]
fn a_feed_source_shows_where_it_connects_and_never_the_password() {
    let db = TestDb::new();
    // Trust authentication ignores the password; the settings still carry it.
    let url = format!("{} password=hunter2-not-shown", db.url());
    let store =
        PostgresStore::connect(&url, Sealer::plaintext(), PostgresOptions::default()).unwrap();
    let shown = format!("{:?}", store.feed());
    assert!(shown.starts_with("FeedSource"), "{shown}");
    assert!(shown.contains(&db.name), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// An instance that does not follow (its listener never started) is brought up to date by
/// `catch_up`, which counts the events it applied, and by `reload_all`, which also drops what
/// was deleted elsewhere.
#[test]
fn catch_up_counts_what_it_applied_and_reload_all_drops_what_was_deleted() {
    let db = TestDb::new();
    let (a, _b, who, project, secret) = two_with_a_project(&db);
    let still = |name: &str| {
        let store =
            PostgresStore::connect(&db.url(), Sealer::plaintext(), PostgresOptions::default())
                .unwrap();
        let admin = Admin::builder().open(store).unwrap();
        assert!(
            accepts(&admin, &project, &secret),
            "{name} loads the project"
        );
        admin
    };
    let (c, d) = (still("C"), still("D"));
    let who_a = caller(&a.admin, &who);
    let second = a.admin.create_project(&who_a, None, "github").unwrap();
    let second_secret = second.signing_secret.to_string();
    a.admin.delete_project(&who_a, &project).unwrap();
    let pending = c
        .store()
        .changes_since(c.applied_seq(), 1000)
        .unwrap()
        .len();
    assert!(pending >= 2, "a creation and a deletion: {pending} events");
    assert_eq!(c.catch_up().unwrap(), pending);
    assert_eq!(c.catch_up().unwrap(), 0, "nothing new");
    assert!(accepts(&c, &second.project.id, &second_secret));
    assert!(!accepts(&c, &project, &secret), "deleted on A");
    // D reloads everything instead, as its listener does after reconnecting: the same state.
    assert!(accepts(&d, &project, &secret), "D has applied nothing yet");
    <Admin as Follow>::reload_all(&d).unwrap();
    assert!(accepts(&d, &second.project.id, &second_secret));
    assert!(!accepts(&d, &project, &secret), "deleted on A");
}
