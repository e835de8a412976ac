//! `webhook-guard`: sign webhooks, verify them with a diagnosis of why one was rejected, and
//! generate secrets. All cryptography is the library's.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use webhook_guard::Secret;

/// mimalloc: fewer cycles per request than the system allocator under `serve`'s load
/// (BENCHMARKS.md, run T).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod diagnose;
mod expected;
mod gateway;
mod options;
mod serve;
mod sign;

use options::{BodyArgs, SchemeArgs, SecretFormat};

#[derive(Debug, Parser)]
#[command(
    name = "webhook-guard",
    version,
    about = "Sign and verify webhooks; explain why one was rejected"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a fresh 32-byte secret from the OS random number generator, once.
    GenSecret {
        /// How to print it.
        #[arg(long, value_enum, default_value = "whsec")]
        format: GenFormat,
    },
    /// Print the headers a sender would send for a body (or a ready curl command).
    Sign(SignArgs),
    /// Verify a delivery; exit 0 if valid, 1 with a diagnosis if not.
    Verify(VerifyArgs),
    /// Serve the admin API and a verifying webhook route per project on a data directory.
    Serve(serve::ServeArgs),
    /// One-off steps on a data directory: create an integrator, rekey, make a master key.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GenFormat {
    Whsec,
    Hex,
    Base64,
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    #[command(flatten)]
    scheme: SchemeArgs,
    /// The signing secret (prefer --secret-env to keep it out of the shell history).
    #[arg(long, conflicts_with = "secret_env")]
    secret: Option<String>,
    /// Read the secret from this environment variable.
    #[arg(long, value_name = "NAME")]
    secret_env: Option<String>,
    /// How the secret text becomes key bytes; default: whsec for standard, raw otherwise.
    #[arg(long, value_enum)]
    secret_format: Option<SecretFormat>,
    /// The private signing key, for the public-key schemes that can be signed here: standard
    /// `whsk_…` (v1a), discord a 64-hex-digit Ed25519 seed (prefer --signing-key-env).
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["secret", "secret_env", "secret_format", "signing_key_env"])]
    signing_key: Option<String>,
    /// Read the signing key from this environment variable.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["secret", "secret_env", "secret_format"])]
    signing_key_env: Option<String>,
    /// The webhook id (default: a random msg_… id).
    #[arg(long)]
    id: Option<String>,
    /// The timestamp, Unix seconds from 0 to 253402300799 (default: now).
    #[arg(long, value_name = "SECONDS", value_parser = options::unix_time, allow_negative_numbers = true)]
    timestamp: Option<DateTime<Utc>>,
    #[command(flatten)]
    body: BodyArgs,
    /// Print a curl command that posts the signed body to URL.
    #[arg(long, value_name = "URL")]
    curl: Option<String>,
    /// Print JSON: {"headers": {...}}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    scheme: SchemeArgs,
    /// A secret to accept; repeat for several live keys (the first is treated as current).
    #[arg(long)]
    secret: Vec<String>,
    /// Read a secret from this environment variable; repeatable.
    #[arg(long, value_name = "NAME")]
    secret_env: Vec<String>,
    /// How the secret texts become key bytes; default: whsec for standard, raw otherwise.
    #[arg(long, value_enum)]
    secret_format: Option<SecretFormat>,
    /// A public key to accept, as the platform shows it: discord 64 hex digits, standard
    /// `whpk_…` (v1a), sendgrid base64 DER; repeat for several (the first is treated as current).
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["secret", "secret_env", "secret_format"])]
    public_key: Vec<String>,
    /// Read a public key from this file, in the same format (paypal: the PEM certificate from
    /// PAYPAL-CERT-URL); repeatable, after any --public-key.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["secret", "secret_env", "secret_format"])]
    public_key_file: Vec<std::path::PathBuf>,
    /// A received header, `Name: value`; repeat for each.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    body: BodyArgs,
    /// Check timestamps against this time, Unix seconds from 0 to 253402300799 (default: now).
    #[arg(long, value_name = "SECONDS", value_parser = options::unix_time, allow_negative_numbers = true)]
    now: Option<DateTime<Utc>>,
    /// Timestamp tolerance in seconds, both ways (default: the scheme's, 300 s for most).
    #[arg(long, value_name = "SECONDS", value_parser = options::tolerance, allow_negative_numbers = true)]
    tolerance: Option<Duration>,
    /// Also print the signature each secret would have produced (sensitive; not for public keys).
    #[arg(long)]
    show_expected: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::GenSecret { format } => gen_secret(format),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => diagnose::run(args),
        Command::Serve(args) => {
            // Flushes the lines still waiting when serve returns.
            let _logs = init_logs();
            serve::run(args)
        }
        Command::Admin(command) => admin::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Lines waiting for the log thread before new ones are dropped (and counted: see
/// `init_logs`).
const LOG_LINES_WAITING: usize = 128_000;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). A thread of its own writes the
/// lines, many per `write` when they come fast (as nginx's `access_log … buffer=` and Envoy's
/// access logs do), so a delivery never waits for stderr: a log reader that stalls slows no
/// delivery; past [`LOG_LINES_WAITING`] lines waiting, new lines are dropped, and a warning says
/// how many within 10 s. The guard returned writes what is left when dropped.
fn init_logs() -> tracing_appender::non_blocking::WorkerGuard {
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_WAITING)
        .lossy(true)
        .thread_name("webhook-guard-log")
        .finish(stderr);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let dropped = writer.error_counter();
    // Colours for a person at a terminal; none in a file or a pipe to a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    let _ = std::thread::Builder::new()
        .name("webhook-guard-log-check".into())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(Duration::from_secs(10));
                let now = dropped.dropped_lines();
                if now > reported {
                    tracing::warn!(
                        dropped = now - reported,
                        "log lines dropped: stderr did not keep up"
                    );
                    reported = now;
                }
            }
        });
    guard
}

fn gen_secret(format: GenFormat) -> Result<ExitCode, String> {
    let revealed = Secret::generate().map_err(|e| e.to_string())?;
    let text = match format {
        GenFormat::Whsec => revealed.into_whsec(),
        GenFormat::Hex => revealed.into_hex(),
        GenFormat::Base64 => revealed.into_base64(),
    };
    println!("{}", &*text);
    Ok(ExitCode::SUCCESS)
}
