//! `verify --show-expected`: the headers each secret would have produced for the delivery as it
//! was received (its id and its timestamp text exactly as sent), or why they cannot be known.
//!
//! The signing is the library's: the scheme's own `signed_content` and `signature_headers`,
//! through a [`Signer`]. Only the timestamp text is taken from the received headers instead of
//! being written afresh from a parsed time, which would drop what a time cannot hold (Twitch's
//! nanoseconds, a `+00:00` offset, leading zeros) or fail outside chrono's range.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use webhook_guard::scheme::{Algorithm, Delivery, Scheme, Signature};
use webhook_guard::{Secret, SignError, Signer, VerifyError};

use super::options::SchemeArgs;

/// What `--show-expected` reports.
#[derive(Debug)]
pub(super) enum Expected {
    /// `secret #n: name: value`, for each header of each secret's signed delivery.
    Headers(Vec<String>),
    /// Why no expected signature can be given.
    Unknown(String),
}

/// The headers each of `secrets` would have produced for the received `headers` and `body`.
pub(super) fn expected(
    scheme: &SchemeArgs,
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Expected, String> {
    let probe = scheme.build()?;
    let mut delivery = Delivery::new();
    match probe.parse(headers, &mut delivery) {
        Ok(()) => {
            let received = delivery.timestamp_text();
            if received.is_none() && probe.timestamp_text(now).is_some() {
                return Ok(Expected::Unknown(
                    "the scheme signs a timestamp, and the delivery carries none".to_owned(),
                ));
            }
            // Only the text is signed; the time merely has to exist.
            let at = delivery
                .timestamp()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .unwrap_or(now);
            let id = delivery.id().unwrap_or_default();
            sign_each(scheme, secrets, received, id, at, body)
        }
        Err(error) => unparsed(scheme, secrets, body, now, &error),
    }
}

/// The expected headers when the received ones do not parse, so the id and timestamp are
/// unknown: exact all the same for the headers that do not depend on them, which shows as
/// equal headers for two different ids and timestamps. Headers that differ only by carrying
/// the id or timestamp itself are left out; any other difference means the signature depends
/// on them, and then nothing can be said.
fn unparsed(
    scheme: &SchemeArgs,
    secrets: &[Secret],
    body: &[u8],
    now: DateTime<Utc>,
    error: &VerifyError,
) -> Result<Expected, String> {
    const PROBES: [(&str, &str); 2] = [("probe-id-a", "1111111111"), ("probe-id-b", "2222222222")];
    let [(id_a, ts_a), (id_b, ts_b)] = PROBES;
    let (a, b) = match (
        sign_each(scheme, secrets, Some(ts_a), id_a, now, body)?,
        sign_each(scheme, secrets, Some(ts_b), id_b, now, body)?,
    ) {
        (Expected::Headers(a), Expected::Headers(b)) => (a, b),
        (unknown @ Expected::Unknown(_), _) | (_, unknown @ Expected::Unknown(_)) => {
            return Ok(unknown)
        }
    };
    let unknown = || {
        Expected::Unknown(format!(
            "the headers do not parse ({error}), so the webhook id or timestamp this scheme signs is unknown"
        ))
    };
    if a.len() != b.len() {
        return Ok(unknown());
    }
    let mut lines = Vec::new();
    for (a, b) in a.into_iter().zip(b) {
        if a == b {
            lines.push(a);
        } else if a.replace(id_a, "{id}").replace(ts_a, "{timestamp}")
            != b.replace(id_b, "{id}").replace(ts_b, "{timestamp}")
        {
            return Ok(unknown());
        }
    }
    Ok(if lines.is_empty() {
        unknown()
    } else {
        Expected::Headers(lines)
    })
}

fn sign_each(
    scheme: &SchemeArgs,
    secrets: &[Secret],
    timestamp: Option<&str>,
    id: &str,
    at: DateTime<Utc>,
    body: &[u8],
) -> Result<Expected, String> {
    let mut lines = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let as_received = AsReceived {
            scheme: scheme.build()?,
            timestamp: timestamp.map(str::to_owned),
        };
        let mut signer = Signer::new(as_received, secret.clone());
        if let Some(url) = &scheme.url {
            signer = signer.url(url.clone());
        }
        let signed = match signer.sign_at(body, id, at) {
            Ok(signed) => signed,
            Err(SignError::UrlRequired { .. }) => {
                return Ok(Expected::Unknown(
                    "the scheme signs the URL: pass it with --url".to_owned(),
                ))
            }
            Err(error) => return Ok(Expected::Unknown(error.to_string())),
        };
        for (name, value) in &signed {
            // Every value came from a received header or a signature encoding: visible ASCII.
            let value = value.to_str().unwrap_or_default();
            lines.push(format!("secret #{}: {name}: {value}", i + 1));
        }
    }
    Ok(Expected::Headers(lines))
}

/// A scheme that writes the timestamp text it was given rather than formatting the time, so a
/// [`Signer`] signs exactly what was received. It only signs; it never verifies.
#[derive(Debug)]
struct AsReceived {
    scheme: Box<dyn Scheme>,
    timestamp: Option<String>,
}

impl Scheme for AsReceived {
    fn name(&self) -> &'static str {
        self.scheme.name()
    }

    fn parse<'h>(
        &self,
        headers: &'h HeaderMap,
        delivery: &mut Delivery<'h>,
    ) -> Result<(), VerifyError> {
        self.scheme.parse(headers, delivery)
    }

    fn algorithm(&self) -> Algorithm {
        self.scheme.algorithm()
    }

    fn uses_url(&self) -> bool {
        self.scheme.uses_url()
    }

    fn timestamp_text(&self, at: DateTime<Utc>) -> Option<String> {
        // Only where the scheme itself writes one: Linear's lives in the body, not a header.
        let own = self.scheme.timestamp_text(at)?;
        Some(self.timestamp.clone().unwrap_or(own))
    }

    fn signed_content(&self, delivery: &Delivery<'_>, body: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.scheme.signed_content(delivery, body, out);
    }

    fn signature_headers(
        &self,
        delivery: &Delivery<'_>,
        signatures: &[Signature<'_>],
        headers: &mut HeaderMap,
    ) -> Result<(), SignError> {
        self.scheme.signature_headers(delivery, signatures, headers)
    }
}
