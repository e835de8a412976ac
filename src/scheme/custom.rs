//! A scheme described by configuration: any sender that puts a hex or base64 HMAC-SHA256 in a
//! header, optionally with a prefix, a timestamp header, an id header and its own layout of the
//! signed content.

use std::fmt;

use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName};

use super::{
    headers, malformed, out_joined, required, value, Delivery, Encoding, Scheme, Signature,
};
use crate::error::SignError;
use crate::error::{HeaderProblem, VerifyError};

/// The unit of a timestamp header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampUnit {
    /// Whole seconds since the Unix epoch.
    #[default]
    Seconds,
    /// Milliseconds since the Unix epoch.
    Milliseconds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Id,
    Timestamp,
    Body,
}

impl Part {
    /// The placeholder's name, `None` for literal text.
    fn placeholder(&self) -> Option<&'static str> {
        match self {
            Self::Literal(_) => None,
            Self::Id => Some("id"),
            Self::Timestamp => Some("timestamp"),
            Self::Body => Some("body"),
        }
    }
}

/// The layout of the signed content, such as `{timestamp}.{body}`.
///
/// Placeholders are `{id}`, `{timestamp}` (as the sender wrote it) and `{body}` (exactly once);
/// everything else is literal text, with `{{` and `}}` for literal braces.
///
/// # Examples
///
/// ```
/// use webhook_guard::scheme::Template;
///
/// let template = Template::parse("v0:{timestamp}:{body}")?;
/// assert!(template.uses_timestamp());
/// assert!(Template::parse("{timestamp}").is_err()); // no {body}
/// # Ok::<(), webhook_guard::scheme::TemplateError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    text: String,
}

impl Template {
    /// Parses a layout.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] for an unknown placeholder, an unclosed brace, a `{body}` count other
    /// than one, or two placeholders with nothing between them (`{id}{timestamp}`; only
    /// `{timestamp}{body}` and `{body}{timestamp}` are allowed, see
    /// [`TemplateError::AdjacentPlaceholders`]).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") || rest.starts_with("}}") {
                literal.push(rest.as_bytes()[0]);
                rest = &rest[2..];
            } else if c == '{' {
                let end = rest.find('}').ok_or(TemplateError::Unclosed {
                    at: text.len() - rest.len(),
                })?;
                let part = match &rest[1..end] {
                    "id" => Part::Id,
                    "timestamp" => Part::Timestamp,
                    "body" => Part::Body,
                    other => {
                        return Err(TemplateError::UnknownPlaceholder {
                            name: other.to_owned(),
                        })
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(part);
                rest = &rest[end + 1..];
            } else if c == '}' {
                return Err(TemplateError::Unopened {
                    at: text.len() - rest.len(),
                });
            } else {
                literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        let bodies = parts.iter().filter(|p| **p == Part::Body).count();
        if bodies != 1 {
            return Err(TemplateError::BodyCount { count: bodies });
        }
        // With no literal between two placeholders, where one ends and the next begins is not
        // signed: `{id}{body}` signed for id `evt_1` and body `0{...}` also verifies id `evt_10`
        // and body `{...}`. A canonical timestamp next to the body is the exception: moving a
        // digit across changes it tenfold, far outside any tolerance (`{timestamp}{body}` is
        // Discord's and SendGrid's layout).
        for pair in parts.windows(2) {
            if let [first, second] = pair {
                let timestamp_and_body = matches!(
                    (first, second),
                    (Part::Timestamp, Part::Body) | (Part::Body, Part::Timestamp)
                );
                if let (Some(a), Some(b), false) = (
                    first.placeholder(),
                    second.placeholder(),
                    timestamp_and_body,
                ) {
                    return Err(TemplateError::AdjacentPlaceholders {
                        first: a,
                        second: b,
                    });
                }
            }
        }
        Ok(Self {
            parts,
            text: text.to_owned(),
        })
    }

    /// True when the layout contains `{timestamp}`.
    pub fn uses_timestamp(&self) -> bool {
        self.parts.contains(&Part::Timestamp)
    }

    /// True when the layout contains `{id}`.
    pub fn uses_id(&self) -> bool {
        self.parts.contains(&Part::Id)
    }
}

impl Default for Template {
    /// `{body}`: the body alone.
    fn default() -> Self {
        Self {
            parts: vec![Part::Body],
            text: "{body}".to_owned(),
        }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.text).finish()
    }
}

/// Why a [`Template`] could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A placeholder other than `{id}`, `{timestamp}` or `{body}`.
    #[error("unknown placeholder {{{name}}}; use {{id}}, {{timestamp}} or {{body}}")]
    UnknownPlaceholder {
        /// The name inside the braces.
        name: String,
    },
    /// A `{` with no `}` after it.
    #[error("unclosed '{{' at byte {at}")]
    Unclosed {
        /// Byte offset.
        at: usize,
    },
    /// A lone `}`.
    #[error("'}}' without '{{' at byte {at}; write '}}}}' for a literal brace")]
    Unopened {
        /// Byte offset.
        at: usize,
    },
    /// Two placeholders follow each other with no literal text between them (other than
    /// `{timestamp}` next to `{body}`), so the boundary between their values is not signed.
    #[error("{{{first}}} is followed directly by {{{second}}}; put a separator between them")]
    AdjacentPlaceholders {
        /// The first placeholder's name.
        first: &'static str,
        /// The second placeholder's name.
        second: &'static str,
    },
    /// `{body}` must appear exactly once.
    #[error("the template has {count} {{body}} placeholders; it needs exactly one")]
    BodyCount {
        /// How many there were.
        count: usize,
    },
    /// A timestamp or id header is read but the template does not sign it: the verifier would
    /// check a value an attacker can change.
    #[error(
        "a {placeholder} header is configured but the template does not sign {{{placeholder}}}"
    )]
    Unsigned {
        /// `id` or `timestamp`.
        placeholder: &'static str,
    },
    /// The template uses `{timestamp}` or `{id}` but the scheme has no header for it.
    #[error("the template uses {{{placeholder}}} but no {placeholder} header is configured")]
    NoHeaderFor {
        /// `id` or `timestamp`.
        placeholder: &'static str,
    },
}

/// A scheme set up by configuration.
///
/// Defaults: hex, no prefix, one signature, no timestamp, no id, signed content `{body}`.
///
/// # Examples
///
/// A platform that sends `X-Signature: sha256=<hex of HMAC(secret, "{timestamp}.{body}")>` and
/// `X-Timestamp` in milliseconds:
///
/// ```
/// use webhook_guard::scheme::{Custom, Encoding, Template, TimestampUnit};
/// use webhook_guard::{Keyring, Secret, Signer, Verifier};
///
/// let scheme = Custom::new("x-signature")?
///     .prefix("sha256=")
///     .encoding(Encoding::Hex)
///     .timestamp_header("x-timestamp", TimestampUnit::Milliseconds)?
///     .template(Template::parse("{timestamp}.{body}")?)?;
///
/// let secret = Secret::from_bytes("signing secret")?;
/// let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
/// let headers = Signer::new(scheme.clone(), secret.clone()).sign_at(b"{}", "", at)?;
/// assert_eq!(headers["x-timestamp"], "1700000000000");
/// Verifier::new(scheme, Keyring::new(secret)).verify_at(&headers, b"{}", at)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Custom {
    signature: HeaderName,
    prefix: String,
    encoding: Encoding,
    separator: Option<char>,
    timestamp: Option<(HeaderName, TimestampUnit)>,
    id: Option<HeaderName>,
    template: Template,
}

impl Custom {
    /// A scheme whose signature is in header `name`.
    ///
    /// # Errors
    ///
    /// [`http::Error`] when `name` is not a valid header name.
    pub fn new(name: &str) -> Result<Self, http::Error> {
        Ok(Self {
            signature: HeaderName::try_from(name)?,
            prefix: String::new(),
            encoding: Encoding::Hex,
            separator: None,
            timestamp: None,
            id: None,
            template: Template::default(),
        })
    }

    /// Text before the signature, such as `sha256=`; required when set. Default: none.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How the signature is encoded. Default: [`Encoding::Hex`].
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Accepts several signatures in the header, separated by `separator` (each with the
    /// prefix), as senders in the middle of a rotation send. Default: one signature.
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = Some(separator);
        self
    }

    /// Reads the timestamp from header `name`, required and checked against the verifier's
    /// tolerance. The [template](Custom::template) must then sign `{timestamp}` (set it after
    /// this call); an unsigned timestamp protects nothing, so verification refuses to run
    /// without it ([`VerifyError::Misconfigured`]). Default: none.
    ///
    /// # Errors
    ///
    /// [`http::Error`] when `name` is not a valid header name.
    pub fn timestamp_header(
        mut self,
        name: &str,
        unit: TimestampUnit,
    ) -> Result<Self, http::Error> {
        self.timestamp = Some((HeaderName::try_from(name)?, unit));
        Ok(self)
    }

    /// Reads the webhook id from header `name`, required when set; the template must sign
    /// `{id}`, as for [`timestamp_header`](Custom::timestamp_header). Default: none.
    ///
    /// # Errors
    ///
    /// [`http::Error`] when `name` is not a valid header name.
    pub fn id_header(mut self, name: &str) -> Result<Self, http::Error> {
        self.id = Some(HeaderName::try_from(name)?);
        Ok(self)
    }

    /// The layout of the signed content. Default: `{body}`.
    ///
    /// # Errors
    ///
    /// [`TemplateError::NoHeaderFor`] when the template uses `{timestamp}` or `{id}` and no
    /// header for it was set before this call; [`TemplateError::Unsigned`] when a timestamp or
    /// id header was set and the template does not sign it.
    pub fn template(mut self, template: Template) -> Result<Self, TemplateError> {
        if template.uses_timestamp() && self.timestamp.is_none() {
            return Err(TemplateError::NoHeaderFor {
                placeholder: "timestamp",
            });
        }
        if template.uses_id() && self.id.is_none() {
            return Err(TemplateError::NoHeaderFor { placeholder: "id" });
        }
        if self.timestamp.is_some() && !template.uses_timestamp() {
            return Err(TemplateError::Unsigned {
                placeholder: "timestamp",
            });
        }
        if self.id.is_some() && !template.uses_id() {
            return Err(TemplateError::Unsigned { placeholder: "id" });
        }
        self.template = template;
        Ok(self)
    }

    fn push<'h>(&self, delivery: &mut Delivery<'h>, item: &'h str) -> Result<(), VerifyError> {
        let sig = item
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or_else(|| {
                malformed(
                    &self.signature,
                    HeaderProblem::MissingPrefixText {
                        prefix: self.prefix.clone(),
                    },
                )
            })?;
        delivery.push_signature(&self.signature, sig, self.encoding)
    }
}

impl Scheme for Custom {
    fn signs_body_as_is(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "custom"
    }

    fn parse<'h>(
        &self,
        map: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        if self.timestamp.is_some() && !self.template.uses_timestamp() {
            return Err(VerifyError::Misconfigured {
                problem: "the custom scheme reads a timestamp header its template does not sign",
            });
        }
        if self.id.is_some() && !self.template.uses_id() {
            return Err(VerifyError::Misconfigured {
                problem: "the custom scheme reads an id header its template does not sign",
            });
        }
        // One pass for all three; a header the scheme does not read is asked for under the
        // signature's name, and its slot ignored.
        let timestamp_name = self
            .timestamp
            .as_ref()
            .map_or(&self.signature, |(name, _)| name);
        let id_name = self.id.as_ref().unwrap_or(&self.signature);
        let [text, timestamp, id] = headers(map, [&self.signature, timestamp_name, id_name]);
        let text = required(text?, &self.signature)?;
        match self.separator {
            Some(sep) => {
                for item in text.split(sep).filter(|item| !item.trim().is_empty()) {
                    self.push(delivery, item)?;
                }
                if delivery.signature_count() == 0 {
                    return Err(malformed(&self.signature, HeaderProblem::EmptySignature));
                }
            }
            None => self.push(delivery, text)?,
        }
        if let Some((name, unit)) = &self.timestamp {
            delivery.set_timestamp_in(name, required(timestamp?, name)?, *unit)?;
        }
        if let Some(name) = &self.id {
            delivery.set_id(required(id?, name)?);
        }
        Ok(())
    }

    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        self.timestamp.as_ref().map(|(_, unit)| match unit {
            TimestampUnit::Seconds => at.timestamp().to_string(),
            TimestampUnit::Milliseconds => at.timestamp_millis().to_string(),
        })
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        // The parts around the body are fed joined (see `out_joined`); a template of more
        // than eight parts on a side is fed part by part.
        let mut side = arrayvec::ArrayVec::<&[u8], 8>::new();
        for part in &self.template.parts {
            let bytes = match part {
                Part::Literal(bytes) => &bytes[..],
                Part::Id => delivery.id().unwrap_or_default().as_bytes(),
                Part::Timestamp => delivery.timestamp_text().unwrap_or_default().as_bytes(),
                Part::Body => {
                    out_joined(&side, out);
                    side.clear();
                    out(body);
                    continue;
                }
            };
            if let Err(full) = side.try_push(bytes) {
                out_joined(&side, out);
                side.clear();
                out(full.element());
            }
        }
        out_joined(&side, out);
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        let count = if self.separator.is_some() {
            signatures.len()
        } else {
            1
        };
        let mut text = String::new();
        for (i, sig) in signatures.iter().take(count).enumerate() {
            if let (Some(sep), true) = (self.separator, i > 0) {
                text.push(sep);
            }
            text.push_str(&self.prefix);
            text.push_str(&self.encoding.encode(sig.bytes));
        }
        headers.insert(self.signature.clone(), value(&self.signature, &text)?);
        if let Some((name, _)) = &self.timestamp {
            headers.insert(
                name.clone(),
                value(name, delivery.timestamp_text().unwrap_or_default())?,
            );
        }
        if let (Some(name), Some(id)) = (&self.id, delivery.id()) {
            headers.insert(name.clone(), value(name, id)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_header_may_serve_as_both_timestamp_and_id() {
        use crate::{Keyring, Secret, Signer, Verifier};
        let scheme = || {
            Custom::new("x-sig")
                .and_then(|c| c.timestamp_header("x-meta", TimestampUnit::Seconds))
                .and_then(|c| c.id_header("x-meta"))
                .unwrap()
                .template(Template::parse("{id}.{timestamp}.{body}").unwrap())
                .unwrap()
        };
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let secret = || Secret::from_bytes("s").unwrap();
        let headers = Signer::new(scheme(), secret())
            .sign_at(b"{}", "1700000000", at)
            .unwrap();
        let verified = Verifier::new(scheme(), Keyring::new(secret()))
            .verify_at(&headers, b"{}", at)
            .unwrap();
        assert_eq!(verified.webhook_id(), Some("1700000000"));
        assert_eq!(verified.timestamp(), Some(at));
    }

    #[test]
    fn templates_parse_into_parts() {
        let t = Template::parse("v0:{timestamp}:{body}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal(b"v0:".to_vec().into()),
                Part::Timestamp,
                Part::Literal(b":".to_vec().into()),
                Part::Body
            ]
        );
        let t = Template::parse("{{{id}}}{body}").unwrap();
        assert_eq!(t.parts[0], Part::Literal(b"{".to_vec().into()));
        assert_eq!(t.parts[1], Part::Id);
        assert_eq!(t.parts[2], Part::Literal(b"}".to_vec().into()));
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(
            Template::parse("{body}{body}"),
            Err(TemplateError::BodyCount { count: 2 })
        );
        assert_eq!(
            Template::parse("{body"),
            Err(TemplateError::Unclosed { at: 0 })
        );
        assert_eq!(
            Template::parse("a}{body}"),
            Err(TemplateError::Unopened { at: 1 })
        );
        assert!(matches!(
            Template::parse("{nonce}.{body}"),
            Err(TemplateError::UnknownPlaceholder { .. })
        ));
        let no_ts = Custom::new("x-sig").unwrap();
        assert_eq!(
            no_ts
                .template(Template::parse("{timestamp}{body}").unwrap())
                .unwrap_err(),
            TemplateError::NoHeaderFor {
                placeholder: "timestamp"
            }
        );
    }
}
