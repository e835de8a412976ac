//! The admin API as an OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types ([`document`]), served at `GET /v1/openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;
use super::wire::NAME_PATTERN;
use super::SCHEMES;
use crate::store::AuditAction;

/// The document: every route under `/v1`, its statuses, bodies and problem documents, and both
/// security schemes (`x-api-key`, Basic `clientId:clientSecret`).
///
/// # Examples
///
/// ```
/// let document = webhook_guard::admin::openapi_document();
/// assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
/// assert!(document["paths"]["/v1/api-keys"]["post"].is_object());
/// ```
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    // The schemes a project takes, from the one list of them.
    document["components"]["schemas"]["CreateProjectIn"]["properties"]["scheme"]["enum"] =
        serde_json::Value::from(SCHEMES.to_vec());
    // An upstream is a URL (utoipa's formats have no `uri`).
    for body in ["CreateProjectIn", "SetUpstreamIn"] {
        let url = &mut document["components"]["schemas"][body]["properties"]["upstreamUrl"];
        url["format"] = serde_json::Value::from("uri");
        // What `UpstreamUrl` takes: http or https, no credentials, no fragment.
        url["pattern"] = serde_json::Value::from("^https?://[^/?#@\\s]+([/?][^#\\s]*)?$");
    }
    // What every operation shares, written once: who may call it, and the answers any
    // authenticated route can give.
    if let Some(paths) = document["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(|p| p.as_object_mut())
            .flat_map(|p| p.values_mut())
        {
            shared_by_every_operation(operation);
        }
    }
    // The audit actions, from the one list of them.
    if let Some(parameters) = document["paths"]["/v1/audit"]["get"]["parameters"].as_array_mut() {
        for action in parameters.iter_mut().filter(|p| p["name"] == "action") {
            action["schema"]["enum"] = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        }
    }
    // Names as `Admin` checks them (an attribute takes only a literal).
    for body in ["CreateProjectIn", "CreateApiKeyIn"] {
        document["components"]["schemas"][body]["properties"]["name"]["pattern"] =
            serde_json::Value::from(NAME_PATTERN);
    }
    document
}

/// Adds to `operation` the security requirement (`x-api-key` or Basic) and the problem
/// answers of every route behind the API-key layer: 401, 429 and 500.
fn shared_by_every_operation(operation: &mut serde_json::Value) {
    let problem = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {
                "application/problem+json": {
                    "schema": { "$ref": "#/components/schemas/ProblemOut" }
                }
            }
        })
    };
    let responses = &mut operation["responses"];
    responses["401"] = problem("No valid credentials");
    responses["429"] = problem(
        "Too many changes from this credential, or failed logins from this address; see \
         Retry-After",
    );
    responses["500"] = problem("The store failed; nothing changed");
    operation["security"] = serde_json::json!([{ "apiKey": [] }, { "basic": [] }]);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "webhook-guard admin API",
        description = "Signing secrets, API keys and the audit log of webhook-guard serve. \
                       Errors are RFC 9457 application/problem+json documents.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::regenerate_project_secret,
        routes::end_previous_secrets,
        routes::regenerate_integrator_secret,
        routes::create_project,
        routes::list_projects,
        routes::show_project,
        routes::delete_project,
        routes::create_api_key,
        routes::list_api_keys,
        routes::delete_api_key,
        routes::audit,
        routes::set_upstream,
        routes::remove_upstream,
    ),
    modifiers(&Security)
)]
struct ApiDoc;

/// The two ways to authenticate.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key (wgk_…), shown once when it was created",
            ))),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("clientId:clientSecret, the integrator's API secret"))
                    .build(),
            ),
        );
    }
}
