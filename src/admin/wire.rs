//! What the admin API reads and writes: serde types, one per request body and answer.
//!
//! Requests refuse unknown and repeated members (`deny_unknown_fields`; serde's derive refuses
//! a member named twice), so a proxy and this server cannot read one body two ways. Answers
//! name their members in camelCase, as the platforms' API does; times are RFC 3339 UTC with
//! milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// The characters `Admin` refuses in names, as a character-class body.
macro_rules! hidden {
    () => {
        "\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u206F\\u3164\\uFEFF\\uFFA0\\uFFF0-\\uFFFB"
    };
}

/// The spaces a name may not begin or end with, as a character-class body.
macro_rules! spaces {
    () => {
        " \\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000"
    };
}

use super::credentials::{mask_api_key, ApiKeyRow};
use super::plane::{Project, Regenerated};
use crate::keyring::KeyRole;
use crate::store::AuditEvent;

/// The rule of `Admin`'s name check as a JSON Schema pattern: no control, bidirectional or
/// invisible character, no space at either end (lengths are `minLength`/`maxLength`).
pub(crate) const NAME_PATTERN: &str = concat!(
    "^[^",
    hidden!(),
    spaces!(),
    "](?:[^",
    hidden!(),
    "]*[^",
    hidden!(),
    spaces!(),
    "])?$"
);

/// A time as the API writes it: RFC 3339, UTC, milliseconds.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A whole number of seconds, written as any JSON number with no fraction (`600`, `600.0`,
/// `6e2`): JSON Schema counts those as integers, and the platforms document the field as a
/// number. Fractions and negative numbers are refused.
fn whole_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    let value = number.as_f64().unwrap_or(f64::NAN);
    if value < 0.0 {
        return Err(D::Error::custom("must not be negative"));
    }
    if value.fract() != 0.0 || !value.is_finite() || value > 1e15 {
        return Err(D::Error::custom(
            "must be a whole number of seconds (no fraction)",
        ));
    }
    Ok(Some(value as u64))
}

/// A member that, when present, must not be `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// `POST /v1/external-support/{projectId}/secret/regenerate` and
/// `POST /v1/integrator/regenerate-secret`: how long the old secret stays valid.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RegenerateIn {
    /// 0 to 3600; absent or 0 ends the old secret at once.
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(value_type = u64, minimum = 0, maximum = 3600)]
    pub old_secret_valid_for_seconds: Option<u64>,
}

/// `POST /v1/projects`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateProjectIn {
    /// A label for people: 1 to 200 characters, no control, bidirectional or invisible ones,
    /// no space at either end.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// The scheme its webhooks are signed with; `standard-webhooks` when absent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, example = "github")]
    pub scheme: Option<String>,
    /// Where its verified deliveries are forwarded (an `http` or `https` URL without
    /// credentials, to a destination the operator allows: `--upstream-allow`); answered by the
    /// gateway when absent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub upstream_url: Option<String>,
}

/// `PUT /v1/projects/{projectId}/upstream`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SetUpstreamIn {
    /// Where the project's verified deliveries are forwarded.
    pub upstream_url: String,
    /// Re-sign forwarded deliveries (Standard Webhooks) with a new gateway-to-upstream secret.
    #[serde(default)]
    pub resign: bool,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateApiKeyIn {
    /// A label for people: 1 to 200 characters, no control, bidirectional or invisible ones,
    /// no space at either end.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// The projects the key is limited to (1 to 100); every project when absent or null.
    #[serde(default)]
    #[schema(value_type = Option<Vec<ProjectIdText>>, min_items = 1, max_items = 100)]
    pub projects: Option<Vec<String>>,
    /// The key's lifetime in seconds (at most 366 days); no expiry when absent.
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(value_type = u64, minimum = 1, maximum = 31622400)]
    pub expires_in_seconds: Option<u64>,
}

/// A project id as the API takes it: 1 to 64 ASCII letters, digits, `-` and `_` (the server
/// makes `prj_` and 16 hex digits).
#[derive(ToSchema)]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
pub(crate) struct ProjectIdText(#[allow(dead_code)] String);

/// A project's new signing secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectSecretOut<'a> {
    pub signing_secret: &'a str,
    #[schema(format = DateTime)]
    pub regenerated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub old_secret_expires_at: Option<String>,
}

impl<'a> From<&'a Regenerated> for ProjectSecretOut<'a> {
    fn from(done: &'a Regenerated) -> Self {
        Self {
            signing_secret: done.secret.as_str(),
            regenerated_at: time(done.at),
            old_secret_expires_at: done.old_expires_at.map(time),
        }
    }
}

/// The integrator's new API secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntegratorSecretOut<'a> {
    pub secret: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub old_secret_expires_at: Option<String>,
}

impl<'a> From<&'a Regenerated> for IntegratorSecretOut<'a> {
    fn from(done: &'a Regenerated) -> Self {
        Self {
            secret: done.secret.as_str(),
            old_secret_expires_at: done.old_expires_at.map(time),
        }
    }
}

/// The grace keys that `DELETE …/secret/previous` ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndedOut {
    pub ended_key_ids: Vec<String>,
}

/// One live signing key of a project (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyOut {
    pub id: String,
    /// `current` or `grace`.
    pub role: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_verified_at: Option<String>,
}

/// A project, with its signing secret when it was just created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectOut<'a> {
    pub project_id: &'a str,
    pub name: Option<&'a str>,
    pub scheme: &'a str,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub webhook_path: String,
    pub keys: Vec<KeyOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<&'a str>,
    /// Where verified deliveries are forwarded (`null`: answered by the gateway).
    pub upstream_url: Option<String>,
    /// Whether forwarded deliveries are re-signed with the gateway-to-upstream secret.
    pub upstream_resigned: bool,
    /// The gateway-to-upstream secret, shown once when it is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_secret: Option<&'a str>,
}

impl<'a> From<&'a Project> for ProjectOut<'a> {
    fn from(project: &'a Project) -> Self {
        let keys = project
            .keys()
            .into_iter()
            .map(|key| KeyOut {
                id: key.id.to_string(),
                role: match key.role {
                    KeyRole::Current => "current",
                    KeyRole::Grace => "grace",
                },
                created_at: time(key.created_at),
                expires_at: key.expires_at.map(time),
                last_verified_at: key.last_verified.map(time),
            })
            .collect();
        Self {
            project_id: project.id.as_str(),
            name: project.name.as_deref(),
            scheme: &project.scheme,
            created_at: time(project.created_at),
            webhook_path: format!("/webhooks/{}", project.id),
            keys,
            signing_secret: None,
            upstream_url: project.upstream().map(|u| u.url().as_str()),
            upstream_resigned: project.upstream().is_some_and(|u| u.resigns()),
            upstream_secret: None,
        }
    }
}

/// A page of projects.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectsOut<'a> {
    pub projects: Vec<ProjectOut<'a>>,
    pub next_cursor: Option<String>,
}

/// An API key as listed (masked), or as created (with the key, shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyOut<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    /// The masked key (`wgk_<id>…`), or the whole key once when created.
    pub key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    pub projects: Option<Vec<&'a str>>,
}

impl<'a> From<&'a ApiKeyRow> for ApiKeyOut<'a> {
    fn from(key: &'a ApiKeyRow) -> Self {
        Self {
            id: key.id.as_str(),
            name: key.name.as_deref(),
            key: mask_api_key(&key.id),
            created_at: time(key.created_at),
            expires_at: key.expires_at.map(time),
            last_used_at: key.last_used.map(time),
            projects: key
                .projects
                .as_ref()
                .map(|ids| ids.iter().map(|id| id.as_str()).collect()),
        }
    }
}

/// A page of API keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeysOut<'a> {
    pub api_keys: Vec<ApiKeyOut<'a>>,
    pub next_cursor: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditEventOut<'a> {
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: &'a str,
    pub action: &'a str,
    pub project_id: Option<&'a str>,
    pub old_key_ids: &'a [String],
    pub new_key_id: Option<&'a str>,
    pub grace_seconds: Option<u64>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl<'a> From<&'a AuditEvent> for AuditEventOut<'a> {
    fn from(event: &'a AuditEvent) -> Self {
        Self {
            seq: event.seq,
            at: time(event.at),
            actor: &event.actor,
            action: event.action.as_str(),
            project_id: event.project.as_ref().map(|id| id.as_str()),
            old_key_ids: &event.old_keys,
            new_key_id: event.new_key.as_deref(),
            grace_seconds: event.grace_secs,
            expires_at: event.expires_at.map(time),
            count: event.count,
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditOut<'a> {
    pub events: Vec<AuditEventOut<'a>>,
    pub next_cursor: Option<String>,
}

/// An RFC 9457 problem document, as every error of the admin API is answered
/// (`application/problem+json`). Only `type`, `title`, `status` and `detail` are always there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProblemOut {
    /// `tag:webhook-guard,2026:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The path of the request that failed.
    pub instance: Option<String>,
    /// The request field or parameter at fault (400).
    pub field: Option<String>,
    /// The realm of the credentials asked for (401).
    pub realm: Option<String>,
    /// The scope the credentials lack (401, 403).
    pub scope: Option<String>,
    /// `project`, `apiKey` or `integrator` (404).
    pub resource_type: Option<String>,
    /// The id that names nothing the caller may see (404).
    pub resource_id: Option<String>,
    /// Seconds to wait before trying again (429).
    pub retry_after: Option<u64>,
}
