//! The web console: the platforms' settings page for API keys, projects' signing secrets, the
//! integrator's API secret and the audit log, served at `/console`.
//!
//! It is three static files embedded in the binary (`index.html`, `console.css`,
//! `console.js`) that call the admin JSON API with `fetch`; there is no second backend and
//! nothing is loaded from elsewhere. The credential pasted at sign-in stays in the page's
//! memory (never in cookies, storage or the URL) and goes out as `x-api-key` or Basic, as any
//! client's would. Every answer carries a strict Content-Security-Policy (no inline script or
//! style, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store`.
//!
//! # Examples
//!
//! ```
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = webhook_guard::admin::console::router();
//! let page = app
//!     .oneshot(http::Request::get("/console").body(axum::body::Body::empty())?)
//!     .await?;
//! assert_eq!(page.status(), 200);
//! assert_eq!(page.headers()["x-content-type-options"], "nosniff");
//! # Ok(())
//! # }
//! ```

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The Content-Security-Policy of every console answer: only this origin's files, no inline
/// script or style, no framing, forms and `<base>` pinned.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const INDEX: &str = include_str!("index.html");
const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// The console as an axum [`Router`]: `GET /console` (and `/console/`) is the page,
/// `/console/console.css` and `/console/console.js` its files; any other path under
/// `/console/` is a 404 with the same headers. Merge it with the admin [`router`](super::router).
pub fn router() -> Router {
    Router::new()
        .route("/console", get(|| file(INDEX, "text/html; charset=utf-8")))
        .route("/console/", get(|| file(INDEX, "text/html; charset=utf-8")))
        .route(
            "/console/console.css",
            get(|| file(STYLE, "text/css; charset=utf-8")),
        )
        .route(
            "/console/console.js",
            get(|| file(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route("/console/{*rest}", get(not_found))
        .layer(axum::middleware::map_response(protect))
}

async fn file(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such console file\n",
    )
        .into_response()
}

/// The security headers on every console answer.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_have_no_inline_script_or_style() {
        assert!(!INDEX.contains("style="));
        assert!(!INDEX.contains("<style"));
        assert!(!INDEX.contains("onclick="));
        assert!(!INDEX.contains("<script>"));
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("localStorage"));
        assert!(!SCRIPT.contains("sessionStorage"));
        assert!(!SCRIPT.contains("document.cookie"));
    }
}
