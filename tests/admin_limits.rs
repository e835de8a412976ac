//! Bounded admin work: lists answer pages with a cursor, a credential's changes are rate
//! limited (429 with `Retry-After`), failed authentications are limited per client address,
//! the audit log is pruned by age and count (the pruning audited), and expired API keys do not
//! count toward the cap.

mod admin_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use admin_support::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use webhook_guard::admin::{Admin, AdminError, MAX_API_KEYS, MAX_PROJECTS};
use webhook_guard::store::crypt::Sealer;
use webhook_guard::store::{AuditQuery, AuditRetention, SqliteStore};
use webhook_guard::{Clock, ManualClock};

/// `GET path` pages, following `nextCursor`: every page's ids.
async fn walk(f: &Fixture, path: &str, member: &str, id: &str, key: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let (status, _, body) = f.send(get(&url, key)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages.push(
            body[member]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item[id].to_string().trim_matches('"').to_owned())
                .collect(),
        );
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["nextCursor"].is_null(), "{body}");
                return pages;
            }
        }
    }
}

#[tokio::test]
async fn projects_are_listed_a_page_at_a_time_and_every_one_once() {
    let f = Fixture::new("pages");
    let mut made = BTreeSet::new();
    for i in 0..250 {
        if i % 50 == 0 {
            // The write rate refills with time.
            f.clock.advance(Duration::from_secs(10));
        }
        made.insert(f.project(&f.alice).0.to_string());
    }
    f.project(&f.bob);
    let key = f.alice.api_key.key.as_str();
    let pages = walk(&f, "/v1/projects?limit=100", "projects", "projectId", key).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let listed: Vec<String> = pages.concat();
    let sorted: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(sorted.len(), listed.len(), "no project twice");
    assert_eq!(sorted, made, "every project of Alice's, none of Bob's");
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "in id order");
    // A last page that is exactly full names no next page.
    let pages = walk(&f, "/v1/projects?limit=125", "projects", "projectId", key).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [125, 125]);
    // Without a limit: the default page of 100.
    let (_, _, body) = f.send(get("/v1/projects", key)).await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 100);
    assert!(body["nextCursor"].is_string());
}

#[tokio::test]
async fn a_page_size_or_cursor_out_of_range_is_a_400_naming_it() {
    let f = Fixture::new("page-limits");
    let key = f.alice.api_key.key.as_str();
    for (path, field) in [
        ("/v1/projects?limit=501", "limit"),
        ("/v1/projects?limit=0", "limit"),
        ("/v1/projects?limit=ten", "limit"),
        ("/v1/projects?cursor=not%20an%20id", "cursor"),
        ("/v1/projects?color=red", "color"),
        ("/v1/projects?limit=1&limit=2", "limit"),
        ("/v1/api-keys?limit=501", "limit"),
        ("/v1/api-keys?cursor=nope", "cursor"),
        ("/v1/audit?limit=201", "limit"),
        ("/v1/audit?projectId=not%20an%20id", "projectId"),
        ("/v1/audit?cursor=1&before=2", "before"),
    ] {
        let (status, headers, body) = f.send(get(path, key)).await;
        assert_problem(status, &headers, &body, 400, "bad-request");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn api_keys_and_audit_events_are_paged_too() {
    let f = Fixture::new("pages-keys");
    let caller = f.caller(&f.alice);
    for _ in 0..4 {
        f.admin.create_api_key(&caller, None, None, None).unwrap();
    }
    let key = f.alice.api_key.key.as_str();
    let pages = walk(&f, "/v1/api-keys?limit=2", "apiKeys", "id", key).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let events = walk(&f, "/v1/audit?limit=2", "events", "seq", key).await;
    let seqs: Vec<u64> = events.concat().iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(seqs.len(), 6, "integrator, first key, 4 keys: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    // The action filter.
    let (_, _, body) = f.send(get("/v1/audit?action=api-key.created", key)).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 5);
}

/// An admin with a write rate of 1 a second and a burst of 3, on a manual clock.
fn slow_admin(dir: &TempDir) -> (Admin, ManualClock) {
    let clock = ManualClock::at_unix(NOW);
    let admin = Admin::builder()
        .clock(clock.clone())
        .write_rate(1, 3)
        .open(SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap())
        .unwrap();
    (admin, clock)
}

#[tokio::test]
async fn a_credential_past_its_write_rate_gets_429_with_retry_after_and_nothing_changes() {
    let dir = TempDir::new("write-rate");
    let (admin, clock) = slow_admin(&dir);
    let alice = admin.create_integrator().unwrap();
    let bob = admin.create_integrator().unwrap();
    let key = alice.api_key.key.as_str();
    let app = app(admin.clone());
    for _ in 0..3 {
        let (status, _, body) = send(app.clone(), post_json("/v1/projects", key, None)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let events = admin.store().audit(&alice.id, None, 100).unwrap().len();
    let (status, headers, body) = send(app.clone(), post_json("/v1/projects", key, None)).await;
    assert_problem(status, &headers, &body, 429, "rate-limited");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        admin.store().audit(&alice.id, None, 100).unwrap().len(),
        events
    );
    // Reads are not counted; another credential has its own budget.
    let (status, _, _) = send(app.clone(), get("/v1/projects", key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        app.clone(),
        post_json("/v1/projects", bob.api_key.key.as_str(), None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // A second later, one more.
    clock.advance(Duration::from_secs(1));
    let (status, _, _) = send(app.clone(), post_json("/v1/projects", key, None)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = send(app, post_json("/v1/projects", key, None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn library_callers_meet_the_write_rate_too() {
    let dir = TempDir::new("write-rate-lib");
    let (admin, _clock) = slow_admin(&dir);
    let alice = admin.create_integrator().unwrap();
    let caller = admin
        .credentials()
        .authenticate_api_key(&alice.api_key.key)
        .unwrap();
    let project = admin.create_project(&caller, None, "github").unwrap();
    let id = &project.project.id;
    for _ in 0..2 {
        admin
            .regenerate_project_secret(&caller, id, Duration::ZERO)
            .unwrap();
    }
    let refused = admin.regenerate_project_secret(&caller, id, Duration::ZERO);
    match refused {
        Err(AdminError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(1))
        }
        other => panic!("{other:?}"),
    }
}

/// `request` as if sent from `ip`.
fn from(ip: &str, mut request: Request<Body>) -> Request<Body> {
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    request
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited_without_slowing_other_addresses() {
    let f = Fixture::new("failed-logins");
    let app = f.app();
    let good = f.alice.api_key.key.as_str();
    let bad = "wgk_not-a-key";
    for i in 0..20 {
        let (status, _, _) = send(app.clone(), from("192.0.2.1", get("/v1/projects", bad))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, headers, body) =
        send(app.clone(), from("192.0.2.1", get("/v1/projects", bad))).await;
    assert_problem(status, &headers, &body, 429, "rate-limited");
    assert_eq!(headers["retry-after"], "1");
    // Another address, even with the same bad key, and a good key from it, are served.
    let (status, _, _) = send(app.clone(), from("192.0.2.2", get("/v1/projects", bad))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(app.clone(), from("192.0.2.2", get("/v1/projects", good))).await;
    assert_eq!(status, StatusCode::OK);
    // Valid requests from elsewhere never count.
    for _ in 0..50 {
        let (status, _, _) = send(app.clone(), from("192.0.2.3", get("/v1/projects", good))).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A second later the limited address may try once more.
    f.clock.advance(Duration::from_secs(1));
    let (status, _, _) = send(app.clone(), from("192.0.2.1", get("/v1/projects", good))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_audit_log_is_pruned_by_age_and_count_and_the_pruning_is_audited() {
    let f = Fixture::new("retention");
    let caller = f.caller(&f.alice);
    let (project, _) = f.project(&f.alice);
    for _ in 0..10 {
        f.clock.advance(Duration::from_secs(3600));
        f.admin
            .regenerate_project_secret(&caller, &project, Duration::ZERO)
            .unwrap();
    }
    let all = f.admin.store().audit(&f.alice.id, None, 100).unwrap();
    assert_eq!(all.len(), 13, "integrator, key, project, 10 regenerations");
    let bobs = f.admin.store().audit(&f.bob.id, None, 100).unwrap().len();
    // Older than 5 hours ago: the first 3 and the 5 oldest regenerations.
    let cutoff = f.clock.now() - chrono::Duration::hours(5) + chrono::Duration::seconds(1);
    let removed = f
        .admin
        .prune_audit(AuditRetention::new(Some(cutoff), None))
        .unwrap();
    assert_eq!(removed, 8 + bobs as u64);
    let left = f.admin.store().audit(&f.alice.id, None, 100).unwrap();
    assert_eq!(left.len(), 6, "5 regenerations and the pruning");
    assert_eq!(left[0].action, "audit.pruned");
    assert_eq!(left[0].count, Some(8));
    assert!(left[1..].iter().all(|e| e.at >= cutoff));
    // By count: the newest 3 stay, then the pruning's own event.
    let removed = f
        .admin
        .prune_audit(AuditRetention::new(None, Some(3)))
        .unwrap();
    assert!(removed >= 3);
    let left = f.admin.store().audit(&f.alice.id, None, 100).unwrap();
    assert_eq!(left.len(), 4);
    assert_eq!(left[0].count, Some(3));
    // Nothing to prune: no event.
    assert_eq!(
        f.admin
            .prune_audit(AuditRetention::new(None, Some(100)))
            .unwrap(),
        0
    );
    assert_eq!(
        f.admin.store().audit(&f.alice.id, None, 100).unwrap().len(),
        4
    );
    // The API shows how many a pruning removed.
    let (_, _, body) = f
        .send(get(
            "/v1/audit?action=audit.pruned&limit=1",
            f.alice.api_key.key.as_str(),
        ))
        .await;
    assert_eq!(body["events"][0]["count"], 3);
    let page = f
        .admin
        .audit(
            &caller,
            AuditQuery::page(None, 10).action(webhook_guard::store::AuditAction::AuditPruned),
        )
        .unwrap();
    assert_eq!(page.items.len(), 2);
}

#[tokio::test]
async fn expired_api_keys_do_not_count_toward_the_cap() {
    let f = Fixture::new("expired-cap");
    let caller = f.caller(&f.alice);
    for _ in 1..MAX_API_KEYS {
        f.admin
            .create_api_key(&caller, None, None, Some(Duration::from_secs(60)))
            .unwrap();
    }
    let full = f.admin.create_api_key(&caller, None, None, None);
    assert!(matches!(full, Err(AdminError::Conflict(_))), "{full:?}");
    // At the very instant they expire (a key is refused from its expiry on, so it stops
    // counting then too; mutation testing found the boundary unpinned).
    f.clock.advance(Duration::from_secs(60));
    let (status, _, body) = f
        .send(post_json(
            "/v1/api-keys",
            f.alice.api_key.key.as_str(),
            Some(r#"{"name": "after expiry"}"#),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// An integrator holds at most `max_projects` projects (default `MAX_PROJECTS`): one more is a
/// conflict that changes nothing, a deletion makes room, and another integrator's projects count
/// for it alone.
#[tokio::test]
async fn an_integrator_holds_at_most_max_projects() {
    let dir = TempDir::new("project-cap");
    let clock = ManualClock::at_unix(NOW);
    let admin = Admin::builder()
        .clock(clock.clone())
        .max_projects(25)
        .open(SqliteStore::open(dir.db(), Sealer::plaintext()).unwrap())
        .unwrap();
    let key = |who: &webhook_guard::admin::NewIntegrator| {
        admin
            .credentials()
            .authenticate_api_key(&who.api_key.key)
            .unwrap()
    };
    let (alice, bob) = (
        key(&admin.create_integrator().unwrap()),
        key(&admin.create_integrator().unwrap()),
    );
    // Past its write rate a credential waits: the manual clock moves on instead.
    let create = |caller| loop {
        match admin.create_project(caller, None, "github") {
            Err(AdminError::RateLimited { retry_after }) => clock.advance(retry_after),
            created => return created,
        }
    };
    let first = create(&alice).unwrap().project.id;
    for _ in 1..25 {
        create(&alice).unwrap();
    }
    let full = create(&alice);
    assert!(matches!(full, Err(AdminError::Conflict(_))), "{full:?}");
    let listed = admin.list_projects(&alice, None, 100).unwrap();
    assert_eq!(listed.items.len(), 25, "the refused one was not made");
    create(&bob).unwrap();
    clock.advance(Duration::from_secs(60));
    admin.delete_project(&alice, &first).unwrap();
    create(&alice).unwrap();
    let again = create(&alice);
    assert!(matches!(again, Err(AdminError::Conflict(_))), "{again:?}");
    // The default cap.
    let default = format!("{:?}", Admin::builder());
    assert!(
        default.contains(&format!("max_projects: {MAX_PROJECTS}")),
        "{default}"
    );
}

/// The management plane's `Debug` says what it holds and never a secret: the admin counts its
/// projects, a project shows its id and key ids, a builder its settings.
#[tokio::test]
async fn debug_output_names_what_is_held_and_no_secret() {
    let f = Fixture::new("debug");
    let caller = f.caller(&f.alice);
    let before = format!("{:?}", f.admin);
    let created = f.admin.create_project(&caller, None, "github").unwrap();
    let after = format!("{:?}", f.admin);
    let count = |shown: &str| -> usize {
        let rest = shown
            .strip_prefix("Admin { projects: ")
            .unwrap_or_else(|| panic!("{shown}"));
        rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(count(&after), count(&before) + 1, "{before} / {after}");
    let project = f.admin.project(&caller, &created.project.id).unwrap();
    let shown = format!("{project:?}");
    assert!(shown.starts_with("Project { id: "), "{shown}");
    assert!(shown.contains(created.project.id.as_str()), "{shown}");
    assert!(shown.contains(project.keys()[0].id.as_str()), "{shown}");
    let secret = created.signing_secret.to_string();
    assert!(
        !shown.contains(&secret) && !after.contains(&secret),
        "{shown}"
    );
    let builder = format!("{:?}", Admin::builder().max_keys(5));
    assert!(
        builder.starts_with("AdminBuilder { max_keys: 5"),
        "{builder}"
    );
}
