//! `webhook-guard sign`.

use std::process::ExitCode;

use webhook_guard::{KeyMaterial, Signer};

use super::options::{secret_texts, KeyKind};
use super::SignArgs;

pub(super) fn run(args: SignArgs) -> Result<ExitCode, String> {
    let key = key(&args)?;
    let scheme = args.scheme.build()?;
    let body = args.body.read()?;
    let at = args.timestamp.unwrap_or_else(chrono::Utc::now);
    let id = match args.id {
        Some(id) => id,
        None => format!("msg_{:016x}", getrandom::u64().map_err(|e| e.to_string())?),
    };
    let mut signer = Signer::new(scheme, key);
    if let Some(url) = &args.scheme.url {
        signer = signer.url(url.clone());
    }
    let headers = signer.sign_at(&body, &id, at).map_err(|e| e.to_string())?;
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    if args.json {
        let map: serde_json::Map<_, _> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        println!("{}", serde_json::json!({ "headers": map }));
    } else if let Some(url) = args.curl {
        let mut cmd = format!("curl -i -X POST {}", shell_quote(&url));
        for (k, v) in &pairs {
            cmd.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
        }
        match std::str::from_utf8(&body) {
            Ok(text) => cmd.push_str(&format!(" --data-binary {}", shell_quote(text))),
            Err(_) => cmd.push_str(" --data-binary @BODY_FILE"),
        }
        println!("{cmd}");
    } else {
        for (k, v) in &pairs {
            println!("{k}: {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The key to sign with: a secret for the HMAC schemes (and Standard Webhooks `v1`), a
/// signing key for Discord and Standard Webhooks `v1a`; none for the schemes whose senders alone
/// hold the private key.
fn key(args: &SignArgs) -> Result<KeyMaterial, String> {
    let scheme = args.scheme.scheme;
    if let Some(why) = scheme.cannot_sign() {
        return Err(why);
    }
    let signing = match (&args.signing_key, &args.signing_key_env) {
        (Some(text), _) => Some((text.clone(), "--signing-key".to_owned())),
        (None, Some(name)) => {
            let text = std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set or not UTF-8"))?;
            Some((text, format!("--signing-key-env {name}")))
        }
        (None, None) => None,
    };
    if let Some((text, flag)) = signing {
        return scheme.signing_key(&text, &flag).map(KeyMaterial::from);
    }
    if scheme.key_kind() == KeyKind::Public {
        return Err(format!(
            "scheme {} signs with a private key, not a shared secret: give --signing-key (an Ed25519 seed, 64 hex digits) or --signing-key-env",
            scheme.name()
        ));
    }
    let format = args
        .secret_format
        .unwrap_or_else(|| args.scheme.default_secret_format());
    let texts = secret_texts(args.secret.as_slice(), args.secret_env.as_slice())?;
    let text = texts
        .first()
        .ok_or("no secret: give --secret or --secret-env")?;
    format.parse(text).map(KeyMaterial::from)
}

/// Quotes for a POSIX shell: single quotes, with embedded ones closed and escaped.
/// `text` as one shell word, in single quotes.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
