//! Verified bodies as typed JSON, shared by the axum and actix-web extractors: one reading of
//! the bytes and one 400 answer naming the path of the field that failed.

use serde::de::DeserializeOwned;

/// `body` as one JSON `T` and nothing after it, as `serde_json::from_slice` reads it; on failure,
/// the path of the field that failed (`.` for the whole body) and serde's error.
pub(crate) fn deserialize<T: DeserializeOwned>(
    body: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| (e.path().to_string(), e.into_inner()))?;
    deserializer.end().map_err(|e| (".".to_owned(), e))?;
    Ok(value)
}

/// The 400 answer to a verified body that is not the expected JSON: the path of the field and
/// serde's message (what was expected, and the line and column), nothing more of the body.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn invalid_json(
    path: &str,
    error: &serde_json::Error,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    use crate::problem::{Kind, Problem};
    Problem::new(
        &Kind::INVALID_JSON,
        format!("the verified body is not the expected JSON at `{path}`: {error}"),
    )
    .with("path", path)
    .into_http_response()
}
