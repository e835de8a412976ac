//! What every `Store` must do, written once over a [`Backend`] and run by each store's test file
//! (tests/store_sqlite.rs, tests/store_postgres.rs).
//!
//! Times are kept to the nanosecond by both stores (SQLite `INTEGER`, PostgreSQL `bigint`
//! nanoseconds since the epoch), so the round trip is checked to the nanosecond.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use webhook_guard::admin::IntegratorId;
use webhook_guard::store::crypt::{MasterKeys, Sealer};
use webhook_guard::store::{
    ApiKeyId, ApiKeyRow, AuditAction, AuditEvent, AuditQuery, AuditRetention, Change,
    IntegratorRow, ProjectRow, Store, StoreError,
};
use webhook_guard::{KeyMaterial, KeyRecord, Keyring, ManualClock, ProjectId, Secret};

/// A store under test and raw access to its tables, as an attacker with the database would
/// have.
pub trait Backend {
    type Store: Store;

    /// Opens (or reopens) the store with `sealer`.
    fn open(&self, sealer: Sealer) -> Self::Store;

    /// Every sealed key material as stored.
    fn materials(&self) -> Vec<Vec<u8>>;

    /// Copies the current key's sealed material of project `from` over project `to`'s.
    fn copy_current_key(&self, from: &str, to: &str);
}

pub const KEY_A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_B: &str = "b:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

pub fn sealer(keys: &str) -> Sealer {
    Sealer::encrypting(MasterKeys::parse(keys).unwrap())
}

/// A time with nanoseconds, so a store that drops them is caught.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 123_456_789).unwrap()
}

pub fn keys(clock: &ManualClock, grace: bool) -> Vec<KeyRecord> {
    let keyring = Keyring::builder()
        .clock(clock.clone())
        .build(Secret::from_bytes("first secret").unwrap());
    if grace {
        keyring
            .rotate(
                Secret::from_bytes("second secret").unwrap(),
                Duration::from_secs(600),
            )
            .unwrap();
    }
    keyring.export()
}

pub fn clock() -> ManualClock {
    // Nanoseconds in the keys' times too.
    let clock = ManualClock::at_unix(1_700_000_000);
    clock.advance(Duration::from_nanos(987_654_321));
    clock
}

pub fn integrator(id: &IntegratorId, clock: &ManualClock) -> IntegratorRow {
    IntegratorRow::new(id.clone(), at(1_700_000_000), keys(clock, false))
}

pub fn project(id: &ProjectId, owner: &IntegratorId, clock: &ManualClock) -> ProjectRow {
    ProjectRow::new(
        id.clone(),
        owner.clone(),
        Some("shop".into()),
        "github".into(),
        at(1_700_000_001),
        keys(clock, true),
    )
}

pub fn event(owner: &IntegratorId, action: &str) -> AuditEvent {
    let action = action.parse().expect("a known audit action");
    AuditEvent::new(at(1_700_000_002), owner.clone(), "cli", action)
}

fn pid(id: &str) -> ProjectId {
    ProjectId::parse(id).unwrap()
}

/// A store with integrator `int_a` and its project `prj_a` (two keys).
pub fn seeded<B: Backend>(backend: &B, sealer: Sealer) -> (B::Store, IntegratorId, ProjectId) {
    let clock = clock();
    let store = backend.open(sealer);
    let owner = IntegratorId::new("int_a");
    let id = pid("prj_a");
    store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    store
        .apply(
            Change::CreateProject(&project(&id, &owner, &clock)),
            &event(&owner, "project.created").project(&id),
        )
        .unwrap();
    (store, owner, id)
}

fn material(record: &KeyRecord) -> Vec<u8> {
    match &record.material {
        KeyMaterial::Secret(s) => s.reveal().into_bytes().to_vec(),
        _ => unreachable!("stores keep shared secrets"),
    }
}

fn same_keys(a: &[KeyRecord], b: &[KeyRecord]) {
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        assert_eq!(
            (&a.id, a.role, a.created_at, a.expires_at, material(a)),
            (&b.id, b.role, b.created_at, b.expires_at, material(b))
        );
    }
}

fn api_key(id: &str, owner: &IntegratorId) -> ApiKeyRow {
    let mut row = ApiKeyRow::new(ApiKeyId::parse(id).unwrap(), owner.clone(), [7; 32], at(5));
    row.name = Some("deploys".into());
    row.expires_at = Some(at(1_800_000_000));
    row.projects = Some(vec![pid("prj_a"), pid("prj_b")]);
    row
}

/// Every row, every field, back as written, to the nanosecond; after reopening too.
pub fn every_row_reads_back_to_the_nanosecond<B: Backend>(backend: &B) {
    let clock = clock();
    let store = backend.open(sealer(KEY_A));
    let (owner, id) = (IntegratorId::new("int_a"), pid("prj_a"));
    let written_integrator = integrator(&owner, &clock);
    let written_project = project(&id, &owner, &clock);
    store
        .apply(
            Change::CreateIntegrator(&written_integrator),
            &event(&owner, "integrator.created"),
        )
        .unwrap();
    store
        .apply(
            Change::CreateProject(&written_project),
            &event(&owner, "project.created"),
        )
        .unwrap();
    let key = api_key("7GkQ2mZp9aXc", &owner);
    let mut plain = ApiKeyRow::new(
        ApiKeyId::parse("AAAAAAAAAAAA").unwrap(),
        owner.clone(),
        [9; 32],
        at(6),
    );
    plain.name = None;
    let mut full = event(&owner, "api-key.created")
        .project(&id)
        .old_keys(["k1", "k2"])
        .new_key("7GkQ2mZp9aXc")
        .grace(600, Some(at(1_700_000_600)));
    full.count = Some(3);
    let seq = store.apply(Change::CreateApiKey(&key), &full).unwrap();
    store
        .apply(
            Change::CreateApiKey(&plain),
            &event(&owner, "api-key.created"),
        )
        .unwrap();
    store.record_uses(&[(key.id, at(1_700_000_100))]).unwrap();
    drop(store);

    let store = backend.open(sealer(KEY_A));
    let state = store.load().unwrap();
    assert_eq!(state.integrators.len(), 1);
    let i = &state.integrators[0];
    assert_eq!(
        (&i.id, i.created_at),
        (&owner, written_integrator.created_at)
    );
    same_keys(&i.secrets, &written_integrator.secrets);

    assert_eq!(state.projects.len(), 1);
    let p = &state.projects[0];
    assert_eq!(
        (&p.id, &p.integrator, &p.name, &p.scheme, p.created_at),
        (
            &id,
            &owner,
            &written_project.name,
            &written_project.scheme,
            at(1_700_000_001)
        )
    );
    same_keys(&p.keys, &written_project.keys);
    assert!(
        p.keys[1].expires_at.is_some(),
        "the grace key's end is kept"
    );

    assert_eq!(state.api_keys.len(), 2);
    let k = state.api_keys.iter().find(|k| k.id == key.id).unwrap();
    assert_eq!(
        (
            &k.integrator,
            &k.name,
            k.digest,
            k.created_at,
            k.expires_at,
            &k.projects,
            k.last_used
        ),
        (
            &owner,
            &key.name,
            key.digest,
            key.created_at,
            key.expires_at,
            &key.projects,
            Some(at(1_700_000_100))
        )
    );
    let k = state.api_keys.iter().find(|k| k.id == plain.id).unwrap();
    assert_eq!(
        (&k.name, k.expires_at, &k.projects, k.last_used),
        (&None, None, &None, None)
    );

    let events = store.audit(&owner, None, 10).unwrap();
    let back = events.iter().find(|e| e.seq == seq).unwrap();
    let mut expected = full.clone();
    expected.seq = seq;
    assert_eq!(back, &expected);
}

/// A change that does not fit what is stored fails with a typed error, and neither the rows nor
/// the audit log change.
pub fn a_change_that_does_not_fit_changes_nothing_and_logs_nothing<B: Backend>(backend: &B) {
    let (store, owner, id) = seeded(backend, Sealer::plaintext());
    let clock = clock();
    let stranger = IntegratorId::new("int_b");
    let events = store.audit(&owner, None, 100).unwrap().len();
    // Another integrator cannot change the project, even knowing its id.
    let err = store
        .apply(
            Change::SetProjectKeys {
                integrator: &stranger,
                project: &id,
                keys: &keys(&clock, false),
            },
            &event(&stranger, "project.secret.regenerated"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "project" }),
        "{err}"
    );
    let err = store
        .apply(
            Change::DeleteProject {
                integrator: &stranger,
                project: &id,
            },
            &event(&stranger, "project.deleted"),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // The same project twice: the keys written before the insert failed are rolled back too.
    let err = store
        .apply(
            Change::CreateProject(&project(&id, &owner, &clock)),
            &event(&owner, "project.created"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Exists { what: "project" }),
        "{err}"
    );
    // The same integrator twice.
    let err = store
        .apply(
            Change::CreateIntegrator(&integrator(&owner, &clock)),
            &event(&owner, "integrator.created"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Exists { what: "integrator" }),
        "{err}"
    );
    // An API key of nobody, an API key twice, deleting one that is not there.
    let err = store
        .apply(
            Change::CreateApiKey(&api_key("7GkQ2mZp9aXc", &stranger)),
            &event(&stranger, "api-key.created"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "integrator" }),
        "{err}"
    );
    let key = api_key("7GkQ2mZp9aXc", &owner);
    store
        .apply(
            Change::CreateApiKey(&key),
            &event(&owner, "api-key.created"),
        )
        .unwrap();
    let events = events + 1;
    let err = store
        .apply(
            Change::CreateApiKey(&key),
            &event(&owner, "api-key.created"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Exists { what: "API key" }),
        "{err}"
    );
    let err = store
        .apply(
            Change::DeleteApiKey {
                integrator: &stranger,
                id: &key.id,
            },
            &event(&stranger, "api-key.deleted"),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "API key" }),
        "{err}"
    );
    assert_eq!(store.audit(&owner, None, 100).unwrap().len(), events);
    assert!(store.audit(&stranger, None, 100).unwrap().is_empty());
    let state = store.load().unwrap();
    assert_eq!(state.projects[0].keys.len(), 2);
    assert_eq!(state.integrators.len(), 1);
    assert_eq!(state.api_keys.len(), 1);
}

/// Pages run newest first with a cursor; the project and action filters select.
pub fn audit_pages_and_filters<B: Backend>(backend: &B) {
    let (store, owner, id) = seeded(backend, Sealer::plaintext());
    let clock = clock();
    let other = pid("prj_b");
    store
        .apply(
            Change::CreateProject(&project(&other, &owner, &clock)),
            &event(&owner, "project.created").project(&other),
        )
        .unwrap();
    for i in 0..5 {
        let project = if i % 2 == 0 { &id } else { &other };
        store
            .apply(
                Change::SetProjectKeys {
                    integrator: &owner,
                    project,
                    keys: &keys(&clock, false),
                },
                &event(&owner, "project.secret.regenerated").project(project),
            )
            .unwrap();
    }
    // 8 events: integrator.created, 2 × project.created, 5 regenerations.
    let first = store.audit(&owner, None, 3).unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0].seq > w[1].seq));
    let second = store.audit(&owner, Some(first[2].seq), 3).unwrap();
    assert_eq!(second.len(), 3);
    assert!(second[0].seq < first[2].seq);
    let third = store.audit(&owner, Some(second[2].seq), 3).unwrap();
    assert_eq!(third.len(), 2, "8 events: 3 + 3 + 2");
    assert_eq!(third[1].action, "integrator.created");

    let of_a = store
        .audit_matching(
            &owner,
            &AuditQuery::page(None, 100).projects(vec![id.clone()]),
        )
        .unwrap();
    assert_eq!(of_a.len(), 4, "created + 3 regenerations");
    assert!(of_a.iter().all(|e| e.project.as_ref() == Some(&id)));
    let both = store
        .audit_matching(
            &owner,
            &AuditQuery::page(None, 100).projects(vec![id.clone(), other.clone()]),
        )
        .unwrap();
    assert_eq!(both.len(), 7, "events of no project are left out");
    let regenerated_b = store
        .audit_matching(
            &owner,
            &AuditQuery::page(None, 100)
                .projects(vec![other.clone()])
                .action(AuditAction::ProjectSecretRegenerated),
        )
        .unwrap();
    assert_eq!(regenerated_b.len(), 2);
    let paged = store
        .audit_matching(
            &owner,
            &AuditQuery::page(Some(regenerated_b[0].seq), 100)
                .action(AuditAction::ProjectSecretRegenerated),
        )
        .unwrap();
    assert!(paged.iter().all(|e| e.seq < regenerated_b[0].seq));
    assert_eq!(paged.len(), 3, "the regenerations before b's newest");
    assert!(store
        .audit_matching(
            &owner,
            &AuditQuery::page(None, 100).action(AuditAction::ProjectUpstreamRemoved)
        )
        .unwrap()
        .is_empty());
}

/// Pruning removes what the retention selects, only of that integrator, and records how many
/// with one event; removing nothing records nothing.
pub fn prune_audit_removes_what_retention_selects_and_says_how_many<B: Backend>(backend: &B) {
    let (store, owner, id) = seeded(backend, Sealer::plaintext());
    let clock = clock();
    let other = IntegratorId::new("int_b");
    store
        .apply(
            Change::CreateIntegrator(&integrator(&other, &clock)),
            &event(&other, "integrator.created"),
        )
        .unwrap();
    for secs in [10, 20, 30, 40] {
        let mut e = event(&owner, "project.secret.regenerated").project(&id);
        e.at = at(1_700_001_000 + secs);
        store
            .apply(
                Change::SetProjectKeys {
                    integrator: &owner,
                    project: &id,
                    keys: &keys(&clock, false),
                },
                &e,
            )
            .unwrap();
    }
    // 6 events of int_a: 2 at 1_700_000_002, 4 later.
    let pruning = AuditEvent::new(
        at(1_700_002_000),
        owner.clone(),
        "retention",
        AuditAction::AuditPruned,
    );
    let removed = store
        .prune_audit(
            &owner,
            AuditRetention::new(Some(at(1_700_001_000)), None),
            &pruning,
        )
        .unwrap();
    assert_eq!(removed, 2);
    let events = store.audit(&owner, None, 100).unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].action, "audit.pruned");
    assert_eq!(events[0].count, Some(2));
    let removed = store
        .prune_audit(&owner, AuditRetention::new(None, Some(2)), &pruning)
        .unwrap();
    assert_eq!(removed, 3);
    let events = store.audit(&owner, None, 100).unwrap();
    assert_eq!(events.len(), 3, "the 2 kept and the new pruning event");
    assert_eq!(events[0].count, Some(3));
    // Nothing to remove: no event.
    let removed = store
        .prune_audit(&owner, AuditRetention::new(None, Some(100)), &pruning)
        .unwrap();
    assert_eq!(removed, 0);
    assert_eq!(store.audit(&owner, None, 100).unwrap().len(), 3);
    assert_eq!(
        store.audit(&other, None, 100).unwrap().len(),
        1,
        "another integrator's log is its own"
    );
}

/// Uses move `last_used` forward only; unknown keys are skipped; no audit event.
pub fn record_uses_moves_last_used_forward_only<B: Backend>(backend: &B) {
    let (store, owner, _) = seeded(backend, Sealer::plaintext());
    let key = api_key("7GkQ2mZp9aXc", &owner);
    store
        .apply(
            Change::CreateApiKey(&key),
            &event(&owner, "api-key.created"),
        )
        .unwrap();
    let events = store.audit(&owner, None, 100).unwrap().len();
    let gone = ApiKeyId::parse("ZZZZZZZZZZZZ").unwrap();
    store
        .record_uses(&[(key.id, at(1_700_000_200)), (gone, at(1_700_000_300))])
        .unwrap();
    store.record_uses(&[(key.id, at(1_700_000_100))]).unwrap();
    store.record_uses(&[]).unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.api_keys.len(), 1);
    assert_eq!(state.api_keys[0].last_used, Some(at(1_700_000_200)));
    assert_eq!(store.audit(&owner, None, 100).unwrap().len(), events);
}

/// Sealed secrets are not in the table in clear, read back with the key, and not without it.
pub fn sealed_secrets_are_not_readable_in_the_table<B: Backend>(backend: &B) {
    let (store, _, _) = seeded(backend, sealer(KEY_A));
    drop(store);
    let materials = backend.materials();
    assert_eq!(
        materials.len(),
        3,
        "one integrator secret, two project keys"
    );
    for secret in [&b"first secret"[..], b"second secret"] {
        assert!(
            !materials
                .iter()
                .any(|m| m.windows(secret.len()).any(|w| w == secret)),
            "a secret is in the table in clear"
        );
    }
    let store = backend.open(sealer(KEY_A));
    assert_eq!(store.load().unwrap().projects[0].keys.len(), 2);
    drop(store);
    let store = backend.open(sealer(KEY_B));
    let err = store.load().unwrap_err();
    assert!(matches!(err, StoreError::Crypt(_)), "{err}");
}

/// A sealed value copied to another project's row does not open: the owner and key id are its
/// associated data.
pub fn a_secret_moved_to_another_project_fails_to_open<B: Backend>(backend: &B) {
    let (store, owner, _) = seeded(backend, sealer(KEY_A));
    let clock = clock();
    let other = pid("prj_b");
    store
        .apply(
            Change::CreateProject(&project(&other, &owner, &clock)),
            &event(&owner, "project.created"),
        )
        .unwrap();
    store.load().unwrap();
    drop(store);
    backend.copy_current_key("prj_a", "prj_b");
    let store = backend.open(sealer(KEY_A));
    let err = store.load().unwrap_err();
    assert!(matches!(err, StoreError::Crypt(_)), "{err}");
}

/// A follower reads the log after a sequence number, oldest first, and single rows as they
/// stand; the state says which event it includes last.
pub fn changes_since_and_single_rows_read_what_is_stored<B: Backend>(backend: &B) {
    let (store, owner, id) = seeded(backend, Sealer::plaintext());
    let key = api_key("7GkQ2mZp9aXc", &owner);
    store
        .apply(
            Change::CreateApiKey(&key),
            &event(&owner, "api-key.created"),
        )
        .unwrap();
    let all = store.changes_since(0, 100).unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["integrator.created", "project.created", "api-key.created"]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.changes_since(all[0].seq, 1).unwrap(),
        all[1..2].to_vec()
    );
    assert!(store.changes_since(all[2].seq, 100).unwrap().is_empty());
    assert_eq!(store.load().unwrap().seq, all[2].seq);

    let project = store.load_project(&id).unwrap().unwrap();
    assert_eq!((&project.id, project.keys.len()), (&id, 2));
    assert!(store.load_project(&pid("prj_zz")).unwrap().is_none());
    let integrator = store.load_integrator(&owner).unwrap().unwrap();
    assert_eq!(integrator.secrets.len(), 1);
    assert!(store
        .load_integrator(&IntegratorId::new("int_zz"))
        .unwrap()
        .is_none());
    assert_eq!(
        store.load_api_key(&key.id).unwrap().unwrap().projects,
        key.projects
    );
    store
        .apply(
            Change::DeleteApiKey {
                integrator: &owner,
                id: &key.id,
            },
            &event(&owner, "api-key.deleted"),
        )
        .unwrap();
    assert!(store.load_api_key(&key.id).unwrap().is_none());
}
