//! API keys and integrator API secrets: the token format, and `ApiKeyLayer` answering every
//! kind of good and bad credential, through the public API only.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};
use webhook_guard::admin::credentials::{
    check_api_key, generate_api_key, generate_client_secret, mask_api_key, ApiKeyError, ApiKeyId,
    ApiKeyLayer, ApiKeyRow, ApiKeyService, AuthFailure, Caller, CredentialId, Credentials,
};
use webhook_guard::admin::IntegratorId;
use webhook_guard::{Clock, Keyring, ManualClock, ProjectId, Secret};
use zeroize::Zeroizing;

const NOW: i64 = 1_700_000_000;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PATH: &str = "/v1/projects?limit=5";

/// A 32-bit number as 6 base62 digits, big-endian, written independently of the crate.
fn base62_u32(mut value: u32) -> String {
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

/// `body` with a correct checksum appended.
fn with_checksum(body: &str) -> String {
    format!("{body}{}", base62_u32(crc32fast::hash(body.as_bytes())))
}

struct Setup {
    clock: ManualClock,
    credentials: Credentials,
}

impl Setup {
    fn new() -> Self {
        let clock = ManualClock::at_unix(NOW);
        Self {
            credentials: Credentials::with_clock(clock.clone()),
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A new key of `integrator`, changed by `edit` before it is inserted.
    fn key_with(
        &self,
        integrator: &IntegratorId,
        edit: impl FnOnce(&mut ApiKeyRow),
    ) -> (ApiKeyId, Zeroizing<String>) {
        let (id, token, digest) = generate_api_key().unwrap();
        let mut record = ApiKeyRow::new(id, integrator.clone(), digest, self.now());
        edit(&mut record);
        self.credentials.insert_api_key(record);
        (id, token)
    }

    fn key(&self, integrator: &IntegratorId) -> (ApiKeyId, Zeroizing<String>) {
        self.key_with(integrator, |_| {})
    }

    /// A new integrator with one API secret; returns its keyring too.
    fn integrator(&self) -> (IntegratorId, Zeroizing<String>, Keyring) {
        let id = IntegratorId::random();
        let (secret, digest) = generate_client_secret().unwrap();
        let keyring = Keyring::builder()
            .clock(self.clock.clone())
            .build(Secret::from_bytes(digest).unwrap());
        self.credentials
            .insert_integrator(id.clone(), keyring.clone());
        (id, secret, keyring)
    }

    /// The layer around a service that answers 200 with the caller in the response's
    /// extensions.
    fn app(
        &self,
    ) -> ApiKeyService<
        impl tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
    > {
        ApiKeyLayer::new(self.credentials.clone())
            .realm("test-realm")
            .scope("admin:test")
            .layer(service_fn(|request: Request<Body>| async move {
                let mut response = Response::new(Body::from("ok"));
                if let Some(caller) = request.extensions().get::<Caller>() {
                    response.extensions_mut().insert(caller.clone());
                }
                Ok::<_, Infallible>(response)
            }))
    }

    async fn send(&self, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(PATH);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// The caller of a request that must be let through.
    async fn caller(&self, headers: &[(&str, &str)]) -> Caller {
        let response = self.send(headers).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.extensions().get::<Caller>().cloned().unwrap()
    }

    /// The problem document of a request that must be refused with 401; `presented` must not
    /// appear in the answer.
    async fn refused(&self, headers: &[(&str, &str)], presented: &str) -> (HeaderMap, Value) {
        let response = self.send(headers).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let (headers, document) = problem(response, presented).await;
        assert_eq!(document["status"], 401);
        assert_eq!(document["type"], "tag:webhook-guard,2026:unauthorized");
        assert_eq!(document["realm"], "test-realm");
        assert_eq!(document["scope"], "admin:test");
        assert_eq!(document["instance"], "/v1/projects");
        (headers, document)
    }
}

/// Reads a problem+json answer; its body must not contain `presented`.
async fn problem(response: Response, presented: &str) -> (HeaderMap, Value) {
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(!presented.is_empty());
    assert!(!text.contains(presented), "{text}");
    for value in headers.values() {
        assert!(!value.to_str().unwrap_or_default().contains(presented));
    }
    (headers, serde_json::from_str(text).unwrap())
}

fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

fn assert_basic_challenge(headers: &HeaderMap) {
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Basic realm="test-realm", charset="UTF-8""#
    );
}

// ---- format ----

#[test]
fn api_key_is_prefix_id_secret_checksum_in_base62_of_fixed_length() {
    for _ in 0..100 {
        let (id, token, _) = generate_api_key().unwrap();
        assert_eq!(token.len(), 65);
        assert!(token.starts_with("wgk_"));
        assert!(token[4..].bytes().all(|b| BASE62.contains(&b)));
        assert_eq!(&token[4..16], id.as_str());
        assert_eq!(*token, with_checksum(&token[..59]));
    }
}

#[test]
fn client_secret_is_prefix_secret_checksum_in_base62_of_fixed_length() {
    for _ in 0..100 {
        let (secret, digest) = generate_client_secret().unwrap();
        assert_eq!(secret.len(), 53);
        assert!(secret.starts_with("wgs_"));
        assert!(secret[4..].bytes().all(|b| BASE62.contains(&b)));
        assert_eq!(*secret, with_checksum(&secret[..47]));
        assert_ne!(digest, [0; 32]);
    }
}

#[test]
fn the_digest_is_of_the_whole_token_and_keys_differ() {
    let (id, token, digest) = generate_api_key().unwrap();
    assert_eq!(check_api_key(&token).unwrap(), (id, digest));
    let (other_id, other, other_digest) = generate_api_key().unwrap();
    assert_ne!(id, other_id);
    assert_ne!(token, other);
    assert_ne!(digest, other_digest);
}

#[test]
fn format_errors_are_found_without_a_lookup_in_order() {
    let (_, token, _) = generate_api_key().unwrap();
    assert_eq!(
        check_api_key(&token.replacen("wgk_", "ghp_", 1)),
        Err(ApiKeyError::WrongPrefix { expected: "wgk_" })
    );
    let (secret, _) = generate_client_secret().unwrap();
    assert_eq!(
        check_api_key(&secret),
        Err(ApiKeyError::WrongPrefix { expected: "wgk_" })
    );
    assert_eq!(
        check_api_key(&token[..64]),
        Err(ApiKeyError::WrongLength {
            len: 64,
            expected: 65
        })
    );
    assert_eq!(
        check_api_key(&format!("{}-{}", &token[..20], &token[21..])),
        Err(ApiKeyError::BadCharacter { position: 20 })
    );
    let swapped = format!("{}{}{}", &token[..30], &token[31..32], &token[30..31]);
    let swapped = format!("{swapped}{}", &token[32..]);
    if swapped != *token {
        assert_eq!(check_api_key(&swapped), Err(ApiKeyError::ChecksumMismatch));
    }
}

#[test]
fn errors_never_show_the_token() {
    let (_, token, _) = generate_api_key().unwrap();
    let secret_part = &token[16..59];
    for bad in [
        token[..64].to_string(),
        format!("{}!{}", &token[..20], &token[21..]),
        format!(
            "{}{}",
            &token[..64],
            if token.ends_with('0') { '1' } else { '0' }
        ),
        format!("x{}", &token[1..]),
    ] {
        let error = check_api_key(&bad).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(secret_part), "{shown}");
        assert!(!shown.contains(&token[4..16]), "{shown}");
    }
}

#[test]
fn every_single_character_substitution_is_refused_by_checksum_or_charset() {
    let (_, token, _) = generate_api_key().unwrap();
    let others = BASE62
        .iter()
        .map(|&b| char::from(b))
        .chain(['_', '-', ' ', 'é', '\0']);
    let others: Vec<char> = others.collect();
    for position in 0..token.len() {
        for &c in &others {
            if token.as_bytes()[position] == c as u8 && c.is_ascii() {
                continue;
            }
            let mut typo = token[..position].to_string();
            typo.push(c);
            typo.push_str(&token[position + 1..]);
            assert!(
                check_api_key(&typo).is_err(),
                "{c:?} at {position} was accepted"
            );
        }
    }
}

proptest! {
    #[test]
    fn generated_keys_pass_and_any_substitution_is_refused(position in 0usize..65, c in any::<char>()) {
        let (id, token, digest) = generate_api_key().unwrap();
        prop_assert_eq!(check_api_key(&token), Ok((id, digest)));
        let original = char::from(token.as_bytes()[position]);
        prop_assume!(c != original);
        let mut typo = token[..position].to_string();
        typo.push(c);
        typo.push_str(&token[position + 1..]);
        let refused = matches!(
            check_api_key(&typo),
            Err(ApiKeyError::ChecksumMismatch
                | ApiKeyError::BadCharacter { .. }
                | ApiKeyError::WrongPrefix { .. }
                | ApiKeyError::WrongLength { .. })
        );
        prop_assert!(refused);
    }
}

#[test]
fn key_ids_are_exactly_12_base62_characters() {
    assert_eq!(
        ApiKeyId::parse("abcDEF012345").unwrap().as_str(),
        "abcDEF012345"
    );
    assert_eq!(
        ApiKeyId::parse("abcDEF012345").unwrap().to_string(),
        "abcDEF012345"
    );
    assert_eq!(
        format!("{:?}", ApiKeyId::parse("abcDEF012345").unwrap()),
        "\"abcDEF012345\""
    );
    for bad in [
        "",
        "abcDEF01234",
        "abcDEF0123456",
        "abcDEF01234_",
        "abcDEF01234é",
    ] {
        assert!(ApiKeyId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_masked_key_shows_the_id_and_nothing_of_the_secret() {
    let (id, token, _) = generate_api_key().unwrap();
    let masked = mask_api_key(&id);
    assert_eq!(masked, format!("wgk_{id}…"));
    assert!(!masked.contains(&token[16..20]));
}

#[test]
fn a_record_debug_redacts_the_digest() {
    let (id, _, digest) = generate_api_key().unwrap();
    let record = ApiKeyRow::new(id, IntegratorId::random(), digest, Utc::now());
    let shown = format!("{record:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains(&format!("{digest:?}")));
    assert!(!shown.contains(&hex::encode(digest)));
}

// ---- the layer: API keys ----

#[tokio::test]
async fn good_key_is_let_through_with_its_integrator_and_credential() {
    let setup = Setup::new();
    let integrator = IntegratorId::random();
    let (id, token) = setup.key(&integrator);
    let caller = setup.caller(&[("x-api-key", &token)]).await;
    assert_eq!(caller.integrator(), &integrator);
    assert_eq!(caller.credential(), &CredentialId::ApiKey(id));
    assert_eq!(caller.projects(), None);
}

#[tokio::test]
async fn the_layer_works_in_an_axum_router() {
    let setup = Setup::new();
    let integrator = IntegratorId::random();
    let (_, token) = setup.key(&integrator);
    let app =
        Router::new()
            .route(
                "/v1/whoami",
                get(|Extension(caller): Extension<Caller>| async move {
                    caller.integrator().to_string()
                }),
            )
            .route_layer(ApiKeyLayer::new(setup.credentials.clone()));
    let request = |token: &str| {
        Request::get("/v1/whoami")
            .header("x-api-key", token)
            .body(Body::empty())
            .unwrap()
    };
    let response = app.clone().oneshot(request(&token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, integrator.as_str());
    // The last character changed (always: a token ending in "0" gets a "1").
    let last = if token.ends_with('0') { "1" } else { "0" };
    let bad = format!("{}{last}", &token[..64]);
    let response = app.oneshot(request(&bad)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, document) = problem(response, &bad).await;
    assert_eq!(document["realm"], "webhook-guard");
    assert_eq!(document["scope"], "admin");
}

#[tokio::test]
async fn missing_credentials_are_a_401_problem_with_realm_scope_and_instance() {
    let setup = Setup::new();
    let (headers, document) = setup.refused(&[], "wgk_").await;
    assert_challenges_name_the_api_key_first(&headers);
    assert_eq!(document["title"], "Unauthorized");
    assert_eq!(
        setup
            .credentials
            .authenticate(&HeaderMap::new())
            .unwrap_err(),
        AuthFailure::Missing
    );
}

#[tokio::test]
async fn a_checksum_typo_is_refused() {
    let setup = Setup::new();
    let (_, token) = setup.key(&IntegratorId::random());
    let last = if token.ends_with('0') { "1" } else { "0" };
    let typo = format!("{}{last}", &token[..64]);
    let (headers, _) = setup.refused(&[("x-api-key", &typo)], &typo[4..]).await;
    assert_challenges_name_the_api_key_first(&headers);
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_str(&typo).unwrap());
    let failure = setup.credentials.authenticate(&headers).unwrap_err();
    assert!(matches!(failure, AuthFailure::ApiKey { .. }));
    assert!(!failure.to_string().contains(&typo[4..]));
}

#[tokio::test]
async fn an_unknown_key_id_is_refused() {
    let setup = Setup::new();
    setup.key(&IntegratorId::random());
    let (_, stranger, _) = generate_api_key().unwrap();
    setup
        .refused(&[("x-api-key", &stranger)], &stranger[4..])
        .await;
}

#[tokio::test]
async fn a_known_id_with_another_keys_secret_is_refused() {
    let setup = Setup::new();
    let integrator = IntegratorId::random();
    let (id, _) = setup.key(&integrator);
    let (_, other) = setup.key(&integrator);
    let forged = with_checksum(&format!("wgk_{id}{}", &other[16..59]));
    assert!(check_api_key(&forged).is_ok(), "the format passes");
    setup
        .refused(&[("x-api-key", &forged)], &forged[16..])
        .await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let setup = Setup::new();
    let expires = setup.now() + Duration::from_secs(60);
    let (_, token) = setup.key_with(&IntegratorId::random(), |r| r.expires_at = Some(expires));
    setup.caller(&[("x-api-key", &token)]).await;
    setup.clock.advance(Duration::from_secs(59));
    setup.caller(&[("x-api-key", &token)]).await;
    setup.clock.advance(Duration::from_secs(1));
    setup.refused(&[("x-api-key", &token)], &token[4..]).await;
}

#[tokio::test]
async fn a_removed_key_fails_on_the_very_next_request() {
    let setup = Setup::new();
    let (id, token) = setup.key(&IntegratorId::random());
    let app = setup.app();
    let request = || {
        Request::get(PATH)
            .header("x-api-key", token.as_str())
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.clone().oneshot(request()).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(setup.credentials.remove_api_key(&id));
    assert!(!setup.credentials.remove_api_key(&id));
    let response = app.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_duplicated_x_api_key_is_refused() {
    let setup = Setup::new();
    let (_, token) = setup.key(&IntegratorId::random());
    setup
        .refused(&[("x-api-key", &token), ("x-api-key", &token)], &token[4..])
        .await;
}

#[tokio::test]
async fn an_api_key_goes_before_basic() {
    let setup = Setup::new();
    let (integrator, secret, _) = setup.integrator();
    let (id, token) = setup.key(&integrator);
    let basic = basic(integrator.as_str(), &secret);
    let caller = setup
        .caller(&[("x-api-key", &token), ("authorization", &basic)])
        .await;
    assert_eq!(caller.credential(), &CredentialId::ApiKey(id));
}

// ---- the layer: Basic with the integrator's API secret ----

#[tokio::test]
async fn basic_with_the_api_secret_is_let_through() {
    let setup = Setup::new();
    let (integrator, secret, keyring) = setup.integrator();
    let caller = setup
        .caller(&[("authorization", &basic(integrator.as_str(), &secret))])
        .await;
    assert_eq!(caller.integrator(), &integrator);
    assert_eq!(
        caller.credential(),
        &CredentialId::ClientSecret(keyring.current_id())
    );
    assert_eq!(caller.projects(), None);
}

#[tokio::test]
async fn basic_with_a_wrong_secret_is_refused_with_a_basic_challenge() {
    let setup = Setup::new();
    let (integrator, _, _) = setup.integrator();
    let (wrong, _) = generate_client_secret().unwrap();
    let (headers, _) = setup
        .refused(
            &[("authorization", &basic(integrator.as_str(), &wrong))],
            &wrong[4..],
        )
        .await;
    assert_basic_challenge(&headers);
}

#[tokio::test]
async fn basic_with_an_unknown_client_id_is_refused() {
    let setup = Setup::new();
    let (_, secret, _) = setup.integrator();
    let (headers, _) = setup
        .refused(
            &[(
                "authorization",
                &basic(IntegratorId::random().as_str(), &secret),
            )],
            &secret[4..],
        )
        .await;
    assert_basic_challenge(&headers);
}

#[tokio::test]
async fn basic_with_bad_base64_is_refused() {
    let setup = Setup::new();
    let (headers, _) = setup
        .refused(&[("authorization", "Basic not*base64!")], "not*base64!")
        .await;
    assert_basic_challenge(&headers);
}

#[tokio::test]
async fn basic_without_a_colon_is_refused() {
    let setup = Setup::new();
    let (integrator, secret, _) = setup.integrator();
    let value = format!(
        "Basic {}",
        STANDARD.encode(format!("{}{}", integrator.as_str(), secret.as_str()))
    );
    let (headers, _) = setup
        .refused(&[("authorization", &value)], &secret[4..])
        .await;
    assert_basic_challenge(&headers);
}

#[tokio::test]
async fn basic_that_is_not_utf8_is_refused() {
    let setup = Setup::new();
    let (integrator, _, _) = setup.integrator();
    let mut raw = format!("{}:", integrator.as_str()).into_bytes();
    raw.extend([0xff, 0xfe]);
    let value = format!("Basic {}", STANDARD.encode(raw));
    let (headers, _) = setup
        .refused(&[("authorization", &value)], "\u{fffd}")
        .await;
    assert_basic_challenge(&headers);
}

#[tokio::test]
async fn the_basic_scheme_is_case_insensitive() {
    let setup = Setup::new();
    let (integrator, secret, _) = setup.integrator();
    let encoded = STANDARD.encode(format!("{}:{}", integrator.as_str(), secret.as_str()));
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let caller = setup
            .caller(&[("authorization", &format!("{scheme} {encoded}"))])
            .await;
        assert_eq!(caller.integrator(), &integrator);
    }
}

#[tokio::test]
async fn another_authorization_scheme_is_refused_with_the_api_key_challenge_first() {
    let setup = Setup::new();
    let (_, token) = setup.key(&IntegratorId::random());
    let bearer = format!("Bearer {}", token.as_str());
    let (headers, _) = setup
        .refused(&[("authorization", &bearer)], &token[4..])
        .await;
    assert_challenges_name_the_api_key_first(&headers);
}

#[tokio::test]
async fn a_rotated_api_secret_keeps_the_old_one_during_the_grace_period_only() {
    let setup = Setup::new();
    let (integrator, old, keyring) = setup.integrator();
    let old_key = keyring.current_id();
    let (new, digest) = generate_client_secret().unwrap();
    let rotation = keyring
        .rotate(
            Secret::from_bytes(digest).unwrap(),
            Duration::from_secs(600),
        )
        .unwrap();
    // The credentials hold the same keyring: the rotation is seen at once.
    let old_basic = basic(integrator.as_str(), &old);
    let new_basic = basic(integrator.as_str(), &new);
    let caller = setup.caller(&[("authorization", &old_basic)]).await;
    assert_eq!(caller.credential(), &CredentialId::ClientSecret(old_key));
    let caller = setup.caller(&[("authorization", &new_basic)]).await;
    assert_eq!(
        caller.credential(),
        &CredentialId::ClientSecret(rotation.new_key.clone())
    );
    setup.clock.advance(Duration::from_secs(601));
    let (headers, _) = setup
        .refused(&[("authorization", &old_basic)], &old[4..])
        .await;
    assert_basic_challenge(&headers);
    let caller = setup.caller(&[("authorization", &new_basic)]).await;
    assert_eq!(
        caller.credential(),
        &CredentialId::ClientSecret(rotation.new_key)
    );
    assert!(setup.credentials.integrator(&integrator).is_some());
    assert!(setup.credentials.remove_integrator(&integrator));
    setup
        .refused(&[("authorization", &new_basic)], &new[4..])
        .await;
}

// ---- what a caller may do ----

#[tokio::test]
async fn a_key_limited_to_a_project_is_forbidden_other_projects() {
    let setup = Setup::new();
    let (a, b) = (
        ProjectId::parse("A").unwrap(),
        ProjectId::parse("B").unwrap(),
    );
    let (_, token) = setup.key_with(&IntegratorId::random(), |r| {
        r.projects = Some(vec![a.clone()])
    });
    let caller = setup.caller(&[("x-api-key", &token)]).await;
    assert_eq!(caller.projects(), Some(&[a.clone()][..]));
    assert!(caller.require_project(&a).is_ok());
    let problem = caller.require_project(&b).unwrap_err();
    assert_eq!(problem.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem.document()["scope"], "project:B");
    let response = axum::response::IntoResponse::into_response(problem);
    let (_, document) = self::problem(response, &token[4..]).await;
    assert_eq!(document["status"], 403);
    assert_eq!(document["scope"], "project:B");
}

#[tokio::test]
async fn an_unrestricted_key_may_act_on_every_project() {
    let setup = Setup::new();
    let (_, token) = setup.key(&IntegratorId::random());
    let caller = setup.caller(&[("x-api-key", &token)]).await;
    assert!(caller
        .require_project(&ProjectId::parse("any").unwrap())
        .is_ok());
}

#[tokio::test]
async fn a_key_of_one_integrator_never_yields_a_caller_of_another() {
    let setup = Setup::new();
    let (x, x_secret, _) = setup.integrator();
    let (y, y_secret, _) = setup.integrator();
    let (_, x_token) = setup.key(&x);
    let (_, y_token) = setup.key(&y);
    assert_eq!(
        setup.caller(&[("x-api-key", &x_token)]).await.integrator(),
        &x
    );
    assert_eq!(
        setup.caller(&[("x-api-key", &y_token)]).await.integrator(),
        &y
    );
    // X's API secret presented as Y's, and the other way round.
    setup
        .refused(
            &[("authorization", &basic(y.as_str(), &x_secret))],
            &x_secret[4..],
        )
        .await;
    setup
        .refused(
            &[("authorization", &basic(x.as_str(), &y_secret))],
            &y_secret[4..],
        )
        .await;
    assert_eq!(setup.credentials.api_keys(&x).len(), 1);
    assert_eq!(setup.credentials.api_keys(&x)[0].integrator, x);
}

#[tokio::test]
async fn last_used_is_recorded_after_a_use() {
    let setup = Setup::new();
    let integrator = IntegratorId::random();
    let (id, token) = setup.key(&integrator);
    assert_eq!(setup.credentials.api_keys(&integrator)[0].last_used, None);
    setup.clock.advance(Duration::from_secs(30));
    setup.caller(&[("x-api-key", &token)]).await;
    let records = setup.credentials.api_keys(&integrator);
    assert_eq!(records[0].id, id);
    assert_eq!(records[0].last_used.map(|t| t.timestamp()), Some(NOW + 30));
}

#[test]
fn api_keys_are_listed_by_creation_time_then_id() {
    let setup = Setup::new();
    let integrator = IntegratorId::random();
    let mut made = Vec::new();
    for offset in [20u64, 0, 10, 0] {
        let created = setup.now() + Duration::from_secs(offset);
        let (id, _) = setup.key_with(&integrator, |r| r.created_at = created);
        made.push((created, id));
    }
    setup.key(&IntegratorId::random());
    made.sort();
    let listed: Vec<_> = setup
        .credentials
        .api_keys(&integrator)
        .into_iter()
        .map(|r| (r.created_at, r.id))
        .collect();
    assert_eq!(listed, made);
}

/// Every 401 carries challenges (RFC 9110 §11.6.1): when Basic was not tried, the `x-api-key`
/// scheme first, then Basic with the realm.
fn assert_challenges_name_the_api_key_first(headers: &HeaderMap) {
    let challenges: Vec<&str> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"ApiKey realm="test-realm", header="x-api-key""#,
            r#"Basic realm="test-realm", charset="UTF-8""#
        ]
    );
}

#[tokio::test]
async fn a_layer_renamed_after_its_failure_limit_is_set_keeps_that_limit() {
    let setup = Setup::new();
    let app = Router::new()
        .route("/v1/whoami", get(|| async { "ok" }))
        .route_layer(
            ApiKeyLayer::new(setup.credentials.clone())
                .failed_attempts(1, 3)
                .realm("elsewhere")
                .scope("tools"),
        );
    let attempt = || {
        let mut request = Request::get("/v1/whoami")
            .header("x-api-key", "wgk_not-a-key")
            .body(Body::empty())
            .unwrap();
        let from: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(from));
        request
    };
    for i in 0..3 {
        let response = app.clone().oneshot(attempt()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.contains(r#"realm="elsewhere""#), "{challenge}");
    }
    let response = app.oneshot(attempt()).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a burst of 3, kept through realm() and scope()"
    );
}

/// A service that is never ready (a full concurrency limit, a pool with no connection).
#[derive(Clone)]
struct NeverReady;

impl tower::Service<Request<Body>> for NeverReady {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Pending
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        unreachable!("never ready, never called")
    }
}

#[test]
fn the_layer_is_ready_only_when_the_service_behind_it_is() {
    use tower::Service as _;
    let setup = Setup::new();
    let mut service = ApiKeyLayer::new(setup.credentials.clone()).layer(NeverReady);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(service.poll_ready(&mut cx).is_pending());
    let mut ready =
        ApiKeyLayer::new(setup.credentials.clone()).layer(service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
    assert!(matches!(
        ready.poll_ready(&mut cx),
        std::task::Poll::Ready(Ok(()))
    ));
}
