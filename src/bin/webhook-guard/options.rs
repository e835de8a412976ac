//! Command-line options shared by `sign` and `verify`, turned into library types.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use webhook_guard::scheme::{
    Custom, Discord, Encoding, PayPal, Scheme, SendGrid, Template, TimestampUnit,
};
use webhook_guard::{PublicKey, Secret, SigningKey};

/// A built-in scheme or a custom one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeName {
    /// Standard Webhooks / Svix (webhook-id, webhook-timestamp, webhook-signature).
    Standard,
    /// Stripe-Signature.
    Stripe,
    /// X-Hub-Signature-256.
    Github,
    /// X-Slack-Signature.
    Slack,
    /// X-Shopify-Hmac-Sha256.
    Shopify,
    /// x-square-hmacsha256-signature (needs --url).
    Square,
    /// X-Twilio-Signature, HMAC-SHA1 (needs --url).
    Twilio,
    /// x-zm-signature.
    Zoom,
    /// Linear-Signature (timestamp in the body).
    Linear,
    /// X-Dropbox-Signature.
    Dropbox,
    /// Paddle-Signature.
    Paddle,
    /// Twitch-Eventsub-Message-Signature.
    Twitch,
    /// Described by the --custom-* options.
    Custom,
    /// X-Signature-Ed25519 (a public key: 64 hex digits).
    Discord,
    /// X-Twilio-Email-Event-Webhook-Signature (a public key: base64 DER).
    Sendgrid,
    /// PAYPAL-TRANSMISSION-SIG (a PEM certificate; needs --paypal-webhook-id).
    Paypal,
}

/// What kind of key a scheme is verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Shared secrets only.
    Secret,
    /// Public keys only.
    Public,
    /// Either: Standard Webhooks `v1` (secrets) or `v1a` (Ed25519 public keys).
    Both,
}

impl SchemeName {
    /// The kind of key this scheme verifies with.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Self::Standard => KeyKind::Both,
            Self::Discord | Self::Sendgrid | Self::Paypal => KeyKind::Public,
            _ => KeyKind::Secret,
        }
    }

    /// The name `--scheme` takes.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// A public key as this scheme's platform shows it, with what it should look like when it
    /// is not; `flag` names where it came from. Messages never quote the key.
    pub fn public_key(self, text: &str, flag: &str) -> Result<PublicKey, String> {
        let (parsed, looks) = match self {
            Self::Discord => (
                PublicKey::ed25519_hex(text),
                "64 hex digits, the application's Public Key",
            ),
            Self::Standard => (PublicKey::from_whpk(text), "whpk_ and base64"),
            Self::Sendgrid => (
                PublicKey::p256_der_base64(text),
                "the Event Webhook verification key, base64 DER",
            ),
            Self::Paypal => (
                PublicKey::rsa_certificate_pem(text),
                "PayPal's PEM certificate, from PAYPAL-CERT-URL",
            ),
            _ => return Err(self.takes_no_public_key(flag)),
        };
        parsed.map_err(|e| format!("{flag}: {e} (scheme {} takes {looks})", self.name()))
    }

    /// A signing key as this scheme's senders keep it; `flag` names where it came from.
    /// Messages never quote the key.
    pub fn signing_key(self, text: &str, flag: &str) -> Result<SigningKey, String> {
        if let Some(why) = self.cannot_sign() {
            return Err(why);
        }
        let (parsed, looks) = match self {
            Self::Discord => (
                hex::decode(text.trim())
                    .map_err(|_| "key is not valid hex".to_owned())
                    .and_then(|seed| {
                        let seed = zeroize::Zeroizing::new(seed);
                        SigningKey::ed25519_seed(&seed).map_err(|e| e.to_string())
                    }),
                "an Ed25519 seed, 64 hex digits",
            ),
            Self::Standard => (
                SigningKey::from_whsk(text).map_err(|e| e.to_string()),
                "whsk_ and base64",
            ),
            _ => {
                return Err(format!(
                    "scheme {} signs with a shared secret, not a signing key: give --secret or --secret-env instead of {flag}",
                    self.name()
                ))
            }
        };
        parsed.map_err(|e| format!("{flag}: {e} (scheme {} takes {looks})", self.name()))
    }

    /// Why `sign` refuses this scheme, if it does: its signatures are made with a private key
    /// only the sender has, and the library signs with none.
    pub fn cannot_sign(self) -> Option<String> {
        let (vendor, key, flag) = match self {
            Self::Sendgrid => ("SendGrid", "an ECDSA P-256", "--public-key"),
            Self::Paypal => ("PayPal", "an RSA", "--public-key-file"),
            _ => return None,
        };
        Some(format!(
            "scheme {name} cannot be signed here: the sender signs with a key only it has ({vendor}, {key} private key); verify its deliveries with `verify --scheme {name} {flag} …`",
            name = self.name()
        ))
    }

    /// The error for a shared-secret scheme given a public key by `flag`.
    pub fn takes_no_public_key(self, flag: &str) -> String {
        format!(
            "scheme {} verifies with a shared secret, not a public key: give --secret or --secret-env instead of {flag}",
            self.name()
        )
    }

    /// The error for a public-key scheme given no public key (perhaps a secret instead).
    pub fn needs_public_key(self) -> String {
        let what = match self {
            Self::Paypal => "--public-key-file with PayPal's PEM certificate",
            Self::Discord => "--public-key with the application's Public Key (64 hex digits)",
            Self::Sendgrid => "--public-key with the Event Webhook verification key (base64 DER)",
            _ => "--public-key",
        };
        format!(
            "scheme {} verifies with a public key, not a shared secret: give {what}",
            self.name()
        )
    }
}

/// How the secret text is turned into key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretFormat {
    /// `whsec_` + base64, decoded (Standard Webhooks).
    Whsec,
    /// Hex, decoded.
    Hex,
    /// Base64, decoded.
    Base64,
    /// The text itself as bytes (Stripe, GitHub, Slack, Shopify).
    Raw,
}

impl SecretFormat {
    pub fn parse(self, text: &str) -> Result<Secret, String> {
        let parsed = match self {
            Self::Whsec => Secret::from_whsec(text),
            Self::Hex => Secret::from_hex(text),
            Self::Base64 => Secret::from_base64(text),
            Self::Raw => Secret::from_bytes(text),
        };
        parsed.map_err(|e| format!("{e} (--secret-format {})", self.name()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Whsec => "whsec",
            Self::Hex => "hex",
            Self::Base64 => "base64",
            Self::Raw => "raw",
        }
    }

    pub const ALL: [Self; 4] = [Self::Whsec, Self::Hex, Self::Base64, Self::Raw];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingName {
    Hex,
    Base64,
}

/// Which scheme, and for `custom`, how it is laid out.
#[derive(Debug, Args)]
pub struct SchemeArgs {
    /// The signature scheme.
    #[arg(long, value_enum)]
    pub scheme: SchemeName,
    /// The full URL the sender posts to, for schemes that sign it (square, twilio).
    #[arg(long)]
    pub url: Option<String>,
    /// Custom scheme: the signature header.
    #[arg(long, value_name = "NAME", default_value = "x-signature")]
    pub custom_header: String,
    /// Custom scheme: text before the signature, such as `sha256=`.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub custom_prefix: String,
    /// Custom scheme: the signature's encoding.
    #[arg(long, value_enum, default_value = "hex")]
    pub custom_encoding: EncodingName,
    /// Custom scheme: the timestamp header (Unix seconds), if any.
    #[arg(long, value_name = "NAME")]
    pub custom_timestamp_header: Option<String>,
    /// Custom scheme: the id header, if any.
    #[arg(long, value_name = "NAME")]
    pub custom_id_header: Option<String>,
    /// Custom scheme: the signed content, with {id}, {timestamp} and {body}.
    #[arg(long, value_name = "TEMPLATE", default_value = "{body}")]
    pub custom_template: String,
    /// PayPal: the webhook id PayPal gave your endpoint (it is signed, but not sent).
    #[arg(long, value_name = "ID")]
    pub paypal_webhook_id: Option<String>,
}

impl SchemeArgs {
    pub fn build(&self) -> Result<Box<dyn Scheme>, String> {
        Ok(match self.scheme {
            SchemeName::Custom => Box::new(self.custom()?),
            SchemeName::Discord => Box::new(Discord),
            SchemeName::Sendgrid => Box::new(SendGrid),
            SchemeName::Paypal => Box::new(PayPal::new(self.paypal_webhook_id.as_deref().ok_or(
                "scheme paypal signs the webhook id PayPal gave your endpoint: pass it with --paypal-webhook-id",
            )?)),
            // Every other scheme needs only a secret: the library's one list of them.
            other => {
                let value = other.to_possible_value().ok_or("a hidden scheme name")?;
                webhook_guard::scheme::by_name(value.get_name())
                    .ok_or_else(|| format!("scheme {} is not built in", value.get_name()))?
            }
        })
    }

    fn custom(&self) -> Result<Custom, String> {
        let bad_name = |e: http::Error| format!("invalid header name: {e}");
        let mut scheme = Custom::new(&self.custom_header)
            .map_err(bad_name)?
            .prefix(self.custom_prefix.clone())
            .encoding(match self.custom_encoding {
                EncodingName::Hex => Encoding::Hex,
                EncodingName::Base64 => Encoding::Base64,
            });
        if let Some(name) = &self.custom_timestamp_header {
            scheme = scheme
                .timestamp_header(name, TimestampUnit::Seconds)
                .map_err(bad_name)?;
        }
        if let Some(name) = &self.custom_id_header {
            scheme = scheme.id_header(name).map_err(bad_name)?;
        }
        let template = Template::parse(&self.custom_template)
            .map_err(|e| format!("--custom-template: {e}"))?;
        scheme
            .template(template)
            .map_err(|e| format!("--custom-template: {e}"))
    }

    /// The usual secret format of the scheme's platform.
    pub fn default_secret_format(&self) -> SecretFormat {
        match self.scheme {
            SchemeName::Standard => SecretFormat::Whsec,
            _ => SecretFormat::Raw,
        }
    }
}

/// Where the body comes from.
#[derive(Debug, Args)]
pub struct BodyArgs {
    /// The body as text.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from a file (bytes as they are); without --body or --body-file, stdin.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
}

impl BodyArgs {
    pub fn read(&self) -> Result<Vec<u8>, String> {
        if let Some(body) = &self.body {
            return Ok(body.clone().into_bytes());
        }
        if let Some(path) = &self.body_file {
            return std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        }
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| format!("cannot read the body from stdin: {e}"))?;
        Ok(body)
    }
}

/// Resolves `--secret` values and `--secret-env` names, in that order, to their texts.
pub fn secret_texts(secrets: &[String], envs: &[String]) -> Result<Vec<String>, String> {
    let mut texts = secrets.to_vec();
    for name in envs {
        let text = std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set or not UTF-8"))?;
        texts.push(text);
    }
    if texts.is_empty() {
        return Err("no secret: give --secret or --secret-env".to_owned());
    }
    Ok(texts)
}

/// Reads `--public-key` values, then `--public-key-file` files, as `scheme` shows its public
/// keys; each error names its flag.
pub fn public_keys(
    scheme: SchemeName,
    values: &[String],
    files: &[PathBuf],
) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::with_capacity(values.len() + files.len());
    for (i, text) in values.iter().enumerate() {
        let flag = match values.len() {
            1 => "--public-key".to_owned(),
            _ => format!("--public-key #{}", i + 1),
        };
        keys.push(scheme.public_key(text, &flag)?);
    }
    for path in files {
        let flag = format!("--public-key-file {}", path.display());
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{flag}: cannot read it: {e}"))?;
        keys.push(scheme.public_key(&text, &flag)?);
    }
    Ok(keys)
}

/// Latest time `--now` and `--timestamp` accept, 9999-12-31T23:59:59Z: the last second RFC 3339
/// (four-digit years) can write, so every scheme's timestamp text for it is valid, and a grace
/// period of years after it is still a `DateTime`.
pub const MAX_UNIX_TIME: i64 = 253_402_300_799;

/// Parses a `--now` or `--timestamp` value: Unix seconds from 0 to [`MAX_UNIX_TIME`].
pub fn unix_time(text: &str) -> Result<DateTime<Utc>, String> {
    let range = format!("Unix seconds from 0 to {MAX_UNIX_TIME} (9999-12-31T23:59:59Z)");
    whole_number(text, &range)?
        .parse::<i64>()
        .ok()
        .filter(|secs| (0..=MAX_UNIX_TIME).contains(secs))
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| format!("out of range: give {range}"))
}

/// Parses a `--tolerance` value: whole seconds from 0 to `u64::MAX`.
pub fn tolerance(text: &str) -> Result<Duration, String> {
    let range = format!("whole seconds from 0 to {}", u64::MAX);
    whole_number(text, &range)?
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("out of range: give {range}"))
}

/// `text` without surrounding white space, if it is a whole number of any size, so a number
/// too large is told apart from one that is not a number at all.
fn whole_number<'t>(text: &'t str, range: &str) -> Result<&'t str, String> {
    let text = text.trim();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not a whole number: give {range}"));
    }
    Ok(text)
}

/// The certificates of the PEM file `path` names, for the flag `flag`.
///
/// # Errors
///
/// A message naming the flag and the file: unreadable, not PEM, or holding no certificate.
pub fn pem_certificates(
    flag: &str,
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{flag} {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{flag} {shown}: no certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_accepts_exactly_its_range() {
        assert_eq!(unix_time("0").map(|t| t.timestamp()), Ok(0));
        assert_eq!(
            unix_time("253402300799").map(|t| t.timestamp()),
            Ok(MAX_UNIX_TIME)
        );
        for bad in [
            "-1",
            "253402300800",
            "8210266876799",
            "-9223372036854775808",
            "18446744073709551615",
            "",
            "1e9",
        ] {
            let error = unix_time(bad).unwrap_err();
            assert!(error.contains("from 0 to 253402300799"), "{bad}: {error}");
        }
        assert!(unix_time("-1").unwrap_err().starts_with("out of range"));
        assert!(unix_time(&"9".repeat(60))
            .unwrap_err()
            .starts_with("out of range"));
        assert!(unix_time("1e9")
            .unwrap_err()
            .starts_with("not a whole number"));
    }

    #[test]
    fn tolerance_accepts_every_u64_and_nothing_else() {
        assert_eq!(
            tolerance("18446744073709551615"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert!(tolerance("-1").is_err());
        assert!(tolerance("18446744073709551616").is_err());
    }
}
