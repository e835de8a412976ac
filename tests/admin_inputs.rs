//! What an adversarial review found in the admin API's inputs: races with a deletion answer
//! 404 (never 500), integral numbers written as `600.0` or `6e2` are whole numbers, every 400
//! about a field names it, path ids are taken as sent (never percent-decoded), names cannot
//! hide or reorder text, and a request with two `Content-Type` headers is refused.

mod admin_support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use admin_support::*;
use axum::body::Body;
use chrono::DateTime;
use http::{Request, StatusCode};
use webhook_guard::admin::AdminError;
use webhook_guard::ProjectId;

/// A change to one project, as `Admin` makes it.
type Call = fn(&Fixture, &ProjectId) -> Result<(), AdminError>;

/// Runs `threads` calls at once against one project, `tries` times; every status they answer.
fn race(f: &Fixture, tries: usize, calls: &[Call]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..tries {
        f.clock.advance(Duration::from_secs(60));
        let (project, _) = f.project(&f.alice);
        let barrier = Arc::new(Barrier::new(calls.len()));
        std::thread::scope(|scope| {
            let handles: Vec<_> = calls
                .iter()
                .map(|call| {
                    let barrier = Arc::clone(&barrier);
                    let project = project.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        match call(f, &project) {
                            Ok(()) => 200,
                            Err(e) => e.status().as_u16(),
                        }
                    })
                })
                .collect();
            statuses.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    statuses
}

fn delete(f: &Fixture, id: &ProjectId) -> Result<(), AdminError> {
    f.admin.delete_project(&f.caller(&f.alice), id)
}

fn regenerate(f: &Fixture, id: &ProjectId) -> Result<(), AdminError> {
    f.admin
        .regenerate_project_secret(&f.caller(&f.alice), id, Duration::from_secs(60))
        .map(drop)
}

fn end_previous(f: &Fixture, id: &ProjectId) -> Result<(), AdminError> {
    f.admin
        .end_previous_secrets(&f.caller(&f.alice), id)
        .map(drop)
}

#[test]
fn requests_racing_a_projects_deletion_answer_404_never_500() {
    let f = Fixture::new("delete-races");
    let mut all = Vec::new();
    for calls in [
        &[delete as Call; 8][..],
        &[
            delete, regenerate, regenerate, regenerate, regenerate, regenerate, regenerate,
            regenerate,
        ],
        &[
            delete,
            end_previous,
            end_previous,
            end_previous,
            end_previous,
            end_previous,
            end_previous,
            end_previous,
        ],
    ] {
        let statuses = race(&f, 20, calls);
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 404),
            "{statuses:?}"
        );
        all.extend(statuses);
    }
    // Every project was deleted exactly once.
    assert_eq!(
        f.admin
            .list_projects(&f.caller(&f.alice), None, 500)
            .unwrap()
            .items
            .len(),
        0
    );
    assert!(all.contains(&404));
}

fn regenerate_path(project: &str) -> String {
    format!("/v1/external-support/{project}/secret/regenerate")
}

#[tokio::test]
async fn integral_numbers_are_whole_numbers_and_fractions_are_refused() {
    let f = Fixture::new("integral");
    let (project, _) = f.project(&f.alice);
    let key = f.alice.api_key.key.as_str();
    // A regeneration whose grace period is written `n`.
    let regenerate = |n: &str| {
        let body = format!(r#"{{"oldSecretValidForSeconds": {n}}}"#);
        f.send(post_json(
            &regenerate_path(project.as_str()),
            key,
            Some(&body),
        ))
    };
    for n in ["600", "600.0", "6e2", "6.0E+2"] {
        f.clock.advance(Duration::from_secs(1));
        let (status, _, answer) = regenerate(n).await;
        assert_eq!(status, StatusCode::OK, "{n}: {answer}");
        let at = DateTime::parse_from_rfc3339(answer["regeneratedAt"].as_str().unwrap()).unwrap();
        let ends =
            DateTime::parse_from_rfc3339(answer["oldSecretExpiresAt"].as_str().unwrap()).unwrap();
        assert_eq!((ends - at).num_seconds(), 600, "{n}");
        // The grace keys pile up: end them before the cap.
        f.admin
            .end_previous_secrets(&f.caller(&f.alice), &project)
            .unwrap();
    }
    // Zero written as a float (either sign) is zero: the old secret ends at once.
    for n in ["0.0", "-0.0", "0e0"] {
        let (status, _, answer) = regenerate(n).await;
        assert_eq!(status, StatusCode::OK, "{n}: {answer}");
    }
    let before = f.digest();
    for n in ["600.5", "-1", "-0.5", "1e400", "3601.0"] {
        let (status, headers, answer) = regenerate(n).await;
        assert_problem(status, &headers, &answer, 400, "bad-request");
        assert_eq!(answer["field"], "oldSecretValidForSeconds", "{n}: {answer}");
    }
    assert_eq!(f.digest(), before);
    let (status, _, answer) = f
        .send(post_json(
            "/v1/api-keys",
            key,
            Some(r#"{"expiresInSeconds": 3600.0}"#),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn every_400_about_a_field_names_it() {
    let f = Fixture::new("fields");
    let key = f.alice.api_key.key.as_str();
    let before = f.digest();
    for (path, body, field) in [
        ("/v1/projects", r#"{"scheme": "carrier-pigeon"}"#, "scheme"),
        ("/v1/projects", r#"{"name": 7}"#, "name"),
        ("/v1/projects", r#"{"colour": "red"}"#, "colour"),
        (
            "/v1/api-keys",
            r#"{"expiresInSeconds": 0}"#,
            "expiresInSeconds",
        ),
        (
            "/v1/api-keys",
            r#"{"expiresInSeconds": 99999999999}"#,
            "expiresInSeconds",
        ),
        (
            "/v1/api-keys",
            r#"{"projects": ["../etc/passwd"]}"#,
            "projects",
        ),
        ("/v1/api-keys", r#"{"projects": []}"#, "projects"),
        ("/v1/api-keys", r#"{"name": "a", "name": "b"}"#, "name"),
    ] {
        let (status, headers, answer) = f.send(post_json(path, key, Some(body))).await;
        assert_problem(status, &headers, &answer, 400, "bad-request");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    // Audit actions are one list (issue 20): a name that is none of them is a 400, not an
    // empty page that looks like "nothing happened".
    let (status, headers, answer) = f.send(get("/v1/audit?action=project.renamed", key)).await;
    assert_problem(status, &headers, &answer, 400, "bad-request");
    assert_eq!(answer["field"], "action", "{answer}");
    assert_eq!(f.digest(), before);
}

#[tokio::test]
async fn path_ids_are_taken_as_sent_on_admin_and_webhook_routes_alike() {
    let f = Fixture::new("percent");
    let (project, secret) = f.project(&f.alice);
    let key = f.alice.api_key.key.as_str();
    let encoded = format!(
        "%{:02X}{}",
        project.as_str().as_bytes()[0],
        &project.as_str()[1..]
    );
    let (status, _, _) = f.send(get(&format!("/v1/projects/{project}"), key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = f.send(get(&format!("/v1/projects/{encoded}"), key)).await;
    assert_problem(status, &headers, &body, 404, "not-found");
    let (status, _, _) = f
        .send(post_json(&regenerate_path(&encoded), key, None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(f.deliver(project.as_str(), &secret).await, StatusCode::OK);
    assert_eq!(f.deliver(&encoded, &secret).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn names_that_hide_or_reorder_text_are_refused() {
    let f = Fixture::new("names");
    let key = f.alice.api_key.key.as_str();
    let before = f.digest();
    for name in [
        "",
        "   ",
        "pay\u{202E}lanigiro",
        "ad\u{200B}min",
        "bell\u{7}",
        "line\nbreak",
        "\u{2066}isolate\u{2069}",
        "bom\u{FEFF}",
        " leading",
        "trailing\u{3000}",
        &"x".repeat(201),
    ] {
        for path in ["/v1/projects", "/v1/api-keys"] {
            let body = serde_json::json!({ "name": name }).to_string();
            let (status, headers, answer) = f.send(post_json(path, key, Some(&body))).await;
            assert_problem(status, &headers, &answer, 400, "bad-request");
            assert_eq!(answer["field"], "name", "{name:?}: {answer}");
        }
        let library = f
            .admin
            .create_project(&f.caller(&f.alice), Some(name.to_owned()), "github");
        assert!(
            matches!(library, Err(AdminError::Field { field: "name", .. })),
            "{name:?}"
        );
    }
    assert_eq!(f.digest(), before);
    // Letters of any script, emoji and inner spaces are names.
    for name in [
        "Boutique Zoë",
        "店舗",
        "shop 🛍",
        "dev 👩\u{200D}💻",
        &"x".repeat(200),
    ] {
        let body = serde_json::json!({ "name": name }).to_string();
        let (status, _, answer) = f.send(post_json("/v1/projects", key, Some(&body))).await;
        assert_eq!(status, StatusCode::CREATED, "{name:?}: {answer}");
    }
}

#[tokio::test]
async fn two_content_type_headers_are_refused() {
    let f = Fixture::new("content-types");
    let before = f.digest();
    let request = Request::post("/v1/projects")
        .header("x-api-key", f.alice.api_key.key.as_str())
        .header("content-type", "application/json")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"name": "x"}"#))
        .unwrap();
    let (status, headers, body) = f.send(request).await;
    assert_problem(status, &headers, &body, 400, "bad-request");
    assert_eq!(f.digest(), before);
}

/// A request body whose stream fails after its first bytes (a client gone mid-upload).
struct Broken(bool);

impl http_body::Body for Broken {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        let sent = std::mem::replace(&mut self.0, true);
        std::task::Poll::Ready(Some(match sent {
            false => Ok(http_body::Frame::data(bytes::Bytes::from_static(
                b"{\"name\"",
            ))),
            true => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        }))
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_read_or_is_not_an_object_is_a_400_about_the_body() {
    let f = Fixture::new("whole-body");
    let key = f.alice.api_key.key.as_str();
    let projects = f.admin.store().load().unwrap().projects.len();
    let broken = Request::post("/v1/projects")
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::new(Broken(false)))
        .unwrap();
    let (status, headers, answer) = f.send(broken).await;
    assert_problem(status, &headers, &answer, 400, "bad-request");
    assert_eq!(answer["detail"], "the body could not be read", "{answer}");
    assert_eq!(f.admin.store().load().unwrap().projects.len(), projects);
    // An object without the member the endpoint needs: the body as a whole is wrong, no
    // member to name.
    let (project, _) = f.project(&f.alice);
    let before = f.digest();
    let upstream = format!("/v1/projects/{project}/upstream");
    for body in ["{}", r#"{"resign": true}"#] {
        let request = Request::put(upstream.as_str())
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, headers, answer) = f.send(request).await;
        assert_problem(status, &headers, &answer, 400, "bad-request");
        assert!(answer.get("field").is_none(), "{body}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("the body is not what this endpoint takes: "),
            "{body}: {detail}"
        );
    }
    assert_eq!(f.digest(), before);
}
