//! The admin API's OpenAPI document: served without credentials at `GET /v1/openapi.json`,
//! OpenAPI 3.1, every route of the router with its statuses and problem documents, both
//! security schemes. (CI also validates it with openapi-spec-validator and runs schemathesis
//! against a live server: scripts/schemathesis.sh.)

mod admin_support;

use admin_support::*;
use axum::body::Body;
use http::{Request, StatusCode};

#[tokio::test]
async fn the_document_is_served_without_credentials_and_describes_every_route() {
    let f = Fixture::new("openapi");
    let (status, headers, document) = f
        .send(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let operations = [
        (
            "post",
            "/v1/external-support/{projectId}/secret/regenerate",
            "200",
        ),
        (
            "delete",
            "/v1/external-support/{projectId}/secret/previous",
            "200",
        ),
        ("post", "/v1/integrator/regenerate-secret", "200"),
        ("post", "/v1/projects", "201"),
        ("get", "/v1/projects", "200"),
        ("get", "/v1/projects/{projectId}", "200"),
        ("delete", "/v1/projects/{projectId}", "204"),
        ("post", "/v1/api-keys", "201"),
        ("get", "/v1/api-keys", "200"),
        ("delete", "/v1/api-keys/{id}", "204"),
        ("get", "/v1/audit", "200"),
        ("put", "/v1/projects/{projectId}/upstream", "200"),
        ("delete", "/v1/projects/{projectId}/upstream", "204"),
    ];
    let paths = document["paths"].as_object().unwrap();
    let count: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        count,
        operations.len(),
        "no operation undocumented or extra"
    );
    for (method, path, success) in operations {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key(success), "{method} {path}");
        for status in ["401", "429", "500"] {
            assert!(
                responses[status]["content"]["application/problem+json"].is_object(),
                "{method} {path} {status}"
            );
        }
        let security = operation["security"].as_array().unwrap();
        assert_eq!(security.len(), 2, "{method} {path}: x-api-key or Basic");
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["apiKey"]["in"], "header");
    assert_eq!(schemes["apiKey"]["name"], "x-api-key");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    let scheme_names =
        &document["components"]["schemas"]["CreateProjectIn"]["properties"]["scheme"]["enum"];
    assert_eq!(
        scheme_names.as_array().unwrap().len(),
        webhook_guard::admin::SCHEMES.len()
    );
    // The audit filter's `action` lists every action, and only it has that list.
    let parameters = document["paths"]["/v1/audit"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let actions: Vec<&str> = webhook_guard::store::AuditAction::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    let mut seen = 0;
    for parameter in parameters {
        let listed = &parameter["schema"]["enum"];
        if parameter["name"] == "action" {
            seen += 1;
            assert_eq!(*listed, serde_json::json!(actions));
        } else {
            assert_ne!(*listed, serde_json::json!(actions), "{}", parameter["name"]);
        }
    }
    assert_eq!(seen, 1, "one `action` parameter");
    assert!(
        parameters.len() > 1,
        "the audit filter has other parameters"
    );
}
