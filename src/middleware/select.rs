use std::fmt;

use http::request::Parts;
use http::HeaderName;

/// Where [`WebhookLayer::for_projects`](super::WebhookLayer::for_projects) finds a request's
/// project id.
///
/// A request whose id cannot be found (no such path segment or header, the header given twice,
/// a value that is not a valid [`ProjectId`](crate::ProjectId)) or names a project that is not
/// registered is answered 404 ([`Rejection::UnknownProject`](super::Rejection::UnknownProject))
/// before its body is read.
///
/// # Examples
///
/// ```
/// use http::HeaderName;
/// use webhook_guard::middleware::ProjectSelector;
///
/// // `/webhooks/prj_1` and `/webhooks/prj_1/github` are both project `prj_1`.
/// let by_path = ProjectSelector::path_after("/webhooks/");
/// // `X-Project: prj_1`, exactly once.
/// let by_header = ProjectSelector::header(HeaderName::from_static("x-project"));
/// ```
#[derive(Clone)]
pub struct ProjectSelector(Select);

#[derive(Clone)]
enum Select {
    PathAfter(&'static str),
    Header(HeaderName),
}

impl ProjectSelector {
    /// The path segment right after `prefix`, up to the next `/` or the end of the path:
    /// `path_after("/webhooks/")` reads `prj_1` from `/webhooks/prj_1` and from
    /// `/webhooks/prj_1/github`. A path that does not start with `prefix`, or has nothing after
    /// it, names no project. The segment is taken as it is in the URI, not percent-decoded (a
    /// valid [`ProjectId`](crate::ProjectId) needs no encoding). The path is the request URI's
    /// path as the layer sees it: inside an axum `Router::nest`, that is the path after the
    /// nesting prefix.
    pub fn path_after(prefix: &'static str) -> Self {
        Self(Select::PathAfter(prefix))
    }

    /// The value of header `name`, which must appear exactly once: a request that sends it
    /// twice names no project, so a proxy adding a second value cannot redirect a delivery.
    pub fn header(name: HeaderName) -> Self {
        Self(Select::Header(name))
    }

    /// The project id text the request carries, not checked yet.
    pub(crate) fn select<'a>(&self, parts: &'a Parts) -> Option<&'a str> {
        match &self.0 {
            Select::PathAfter(prefix) => {
                let rest = parts.uri.path().strip_prefix(prefix)?;
                let segment = rest.split('/').next().unwrap_or(rest);
                Some(segment).filter(|s| !s.is_empty())
            }
            Select::Header(name) => {
                let mut values = parts.headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (Some(value), None) => value.to_str().ok(),
                    _ => None,
                }
            }
        }
    }
}

impl fmt::Debug for ProjectSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Select::PathAfter(prefix) => f.debug_tuple("PathAfter").field(prefix).finish(),
            Select::Header(name) => f.debug_tuple("Header").field(name).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&'static str, &'static str)]) -> Parts {
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn path_after_reads_one_segment() {
        let select = ProjectSelector::path_after("/webhooks/");
        for (uri, expected) in [
            ("/webhooks/prj_1", Some("prj_1")),
            ("/webhooks/prj_1/github", Some("prj_1")),
            ("/webhooks/prj_1?x=1", Some("prj_1")),
            ("https://h.example/webhooks/prj_1", Some("prj_1")),
            ("/webhooks/", None),
            ("/webhooks//x", None),
            ("/webhooks", None),
            ("/other/prj_1", None),
        ] {
            assert_eq!(select.select(&parts(uri, &[])), expected, "{uri}");
        }
    }

    #[test]
    fn header_must_appear_once() {
        let select = ProjectSelector::header(HeaderName::from_static("x-project"));
        assert_eq!(select.select(&parts("/", &[("x-project", "a")])), Some("a"));
        assert_eq!(select.select(&parts("/", &[])), None);
        let twice = parts("/", &[("x-project", "a"), ("x-project", "a")]);
        assert_eq!(select.select(&twice), None);
    }
}
