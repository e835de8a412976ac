//! Who may do what on the admin API: every endpoint with an unrestricted API key, a key
//! limited to one project, and Basic `clientId:clientSecret` (README, "Permissions"). A
//! limited key acts only on its projects: it may not regenerate the integrator's API secret,
//! create, list or delete API keys, create or delete projects, or read other projects' audit
//! events. The rules live in `Admin`, so library calls meet them too.

mod admin_support;

use std::time::Duration;

use admin_support::*;
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::Value;
use webhook_guard::admin::{AdminError, MAX_AUDIT_PAGE};
use webhook_guard::store::AuditQuery;
use webhook_guard::ProjectId;

/// The three kinds of credential.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Unrestricted,
    Limited,
    Basic,
}

/// One integrator with two projects (`mine`, the limited key's, and `other`) and a key limited
/// to `mine`.
struct World {
    f: Fixture,
    mine: ProjectId,
    other: ProjectId,
    limited: String,
}

impl World {
    fn new(name: &str) -> Self {
        let f = Fixture::new(name);
        let (mine, _) = f.project(&f.alice);
        let (other, _) = f.project(&f.alice);
        let limited = f
            .admin
            .create_api_key(
                &f.caller(&f.alice),
                Some("limited".into()),
                Some(vec![mine.clone()]),
                None,
            )
            .unwrap()
            .key
            .to_string();
        Self {
            f,
            mine,
            other,
            limited,
        }
    }

    /// `request` sent as `who`.
    async fn send(
        &self,
        who: Who,
        request: http::request::Builder,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let request = match who {
            Who::Unrestricted => request.header("x-api-key", self.f.alice.api_key.key.as_str()),
            Who::Limited => request.header("x-api-key", self.limited.as_str()),
            Who::Basic => request.header(
                "authorization",
                basic(
                    self.f.alice.id.as_str(),
                    self.f.alice.client_secret.as_str(),
                ),
            ),
        };
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned())),
            None => request.body(Body::empty()),
        };
        let (status, _, body) = self.f.send(request.unwrap()).await;
        (status, body)
    }
}

/// One row of the README's table: a request, and the status each credential gets.
struct Row {
    what: &'static str,
    request: fn(&World) -> (http::request::Builder, Option<&'static str>),
    unrestricted: u16,
    limited: u16,
    basic: u16,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "regenerate its project's signing secret",
            request: |w| {
                (
                    Request::post(format!("/v1/external-support/{}/secret/regenerate", w.mine)),
                    None,
                )
            },
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "regenerate another project's signing secret",
            request: |w| {
                (
                    Request::post(format!(
                        "/v1/external-support/{}/secret/regenerate",
                        w.other
                    )),
                    None,
                )
            },
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
        Row {
            what: "end its project's previous secrets",
            request: |w| {
                (
                    Request::delete(format!("/v1/external-support/{}/secret/previous", w.mine)),
                    None,
                )
            },
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "end another project's previous secrets",
            request: |w| {
                (
                    Request::delete(format!("/v1/external-support/{}/secret/previous", w.other)),
                    None,
                )
            },
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
        Row {
            what: "regenerate the integrator's API secret",
            request: |_| (Request::post("/v1/integrator/regenerate-secret"), None),
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
        Row {
            what: "create a project",
            request: |_| {
                (
                    Request::post("/v1/projects"),
                    Some(r#"{"name": "new", "scheme": "github"}"#),
                )
            },
            unrestricted: 201,
            limited: 403,
            basic: 201,
        },
        Row {
            what: "list projects",
            request: |_| (Request::get("/v1/projects"), None),
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "show its project",
            request: |w| (Request::get(format!("/v1/projects/{}", w.mine)), None),
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "show another project",
            request: |w| (Request::get(format!("/v1/projects/{}", w.other)), None),
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
        Row {
            what: "delete its project",
            request: |w| (Request::delete(format!("/v1/projects/{}", w.mine)), None),
            unrestricted: 204,
            limited: 403,
            basic: 204,
        },
        Row {
            what: "create an API key",
            request: |_| (Request::post("/v1/api-keys"), Some(r#"{"name": "ci"}"#)),
            unrestricted: 201,
            limited: 403,
            basic: 201,
        },
        Row {
            what: "list API keys",
            request: |_| (Request::get("/v1/api-keys"), None),
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
        Row {
            what: "delete an API key",
            request: |w| {
                let id = w.f.alice.api_key.record.id;
                (Request::delete(format!("/v1/api-keys/{id}")), None)
            },
            unrestricted: 204,
            limited: 403,
            basic: 204,
        },
        Row {
            what: "read the audit log",
            request: |_| (Request::get("/v1/audit"), None),
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "read its project's audit events",
            request: |w| {
                (
                    Request::get(format!("/v1/audit?projectId={}", w.mine)),
                    None,
                )
            },
            unrestricted: 200,
            limited: 200,
            basic: 200,
        },
        Row {
            what: "read another project's audit events",
            request: |w| {
                (
                    Request::get(format!("/v1/audit?projectId={}", w.other)),
                    None,
                )
            },
            unrestricted: 200,
            limited: 403,
            basic: 200,
        },
    ]
}

#[tokio::test]
async fn every_cell_of_the_permission_table_holds_and_a_refusal_changes_nothing() {
    let rows = rows();
    assert_eq!(rows.len(), 16);
    for row in &rows {
        for (who, expected) in [
            (Who::Unrestricted, row.unrestricted),
            (Who::Limited, row.limited),
            (Who::Basic, row.basic),
        ] {
            // A world per cell: no cell sees what another changed.
            let world = World::new("permissions");
            let before = world.f.digest();
            let (request, body) = (row.request)(&world);
            let (status, answer) = world.send(who, request, body).await;
            assert_eq!(
                status.as_u16(),
                expected,
                "{} as {who:?}: {answer}",
                row.what
            );
            if expected == 403 {
                assert!(
                    answer["type"].as_str().unwrap().ends_with(":forbidden"),
                    "{answer}"
                );
                assert_eq!(world.f.digest(), before, "{} as {who:?}", row.what);
            }
        }
    }
}

#[tokio::test]
async fn a_limited_key_lists_only_its_projects() {
    let w = World::new("limited-lists");
    let (_, body) = w
        .send(Who::Limited, Request::get("/v1/projects"), None)
        .await;
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["projectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [w.mine.as_str()]);
    let (_, body) = w
        .send(Who::Unrestricted, Request::get("/v1/projects"), None)
        .await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_limited_key_reads_only_its_projects_audit_events() {
    let w = World::new("limited-audit");
    for project in [&w.mine, &w.other] {
        w.f.admin
            .regenerate_project_secret(&w.f.caller(&w.f.alice), project, Duration::ZERO)
            .unwrap();
    }
    let (_, all) = w
        .send(Who::Unrestricted, Request::get("/v1/audit"), None)
        .await;
    let (_, limited) = w.send(Who::Limited, Request::get("/v1/audit"), None).await;
    let projects = |body: &Value| -> Vec<Value> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["projectId"].clone())
            .collect()
    };
    // Everything: integrator and API-key events (no project) and both projects'.
    assert!(projects(&all).contains(&Value::Null));
    assert!(projects(&all).contains(&Value::from(w.other.as_str())));
    let limited = projects(&limited);
    assert_eq!(limited.len(), 2, "its creation and its regeneration");
    assert!(limited.iter().all(|p| p == w.mine.as_str()), "{limited:?}");
}

#[test]
fn the_rules_hold_for_library_callers_too() {
    let w = World::new("permissions-library");
    let limited =
        w.f.admin
            .credentials()
            .authenticate_api_key(&w.limited)
            .unwrap();
    let forbidden = |r: Result<(), AdminError>| {
        assert!(matches!(r, Err(AdminError::Forbidden { .. })), "{r:?}");
    };
    let admin = &w.f.admin;
    forbidden(
        admin
            .regenerate_integrator_secret(&limited, Duration::ZERO)
            .map(drop),
    );
    forbidden(admin.list_api_keys(&limited, None, 10).map(drop));
    forbidden(admin.create_api_key(&limited, None, None, None).map(drop));
    forbidden(admin.create_project(&limited, None, "github").map(drop));
    forbidden(admin.delete_project(&limited, &w.mine));
    forbidden(
        admin
            .audit(
                &limited,
                AuditQuery::page(None, MAX_AUDIT_PAGE).projects(vec![w.other.clone()]),
            )
            .map(drop),
    );
    let page = admin.list_projects(&limited, None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, w.mine);
}
