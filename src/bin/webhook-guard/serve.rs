//! `webhook-guard serve`: the admin API and a verifying webhook route per project, on a SQLite
//! data directory or a PostgreSQL database several instances share.

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use webhook_guard::admin::{Admin, AdminBuilder, App, NewIntegrator};
use webhook_guard::metrics::Metrics;
use webhook_guard::replay::{
    MemoryGuard, Outage, PostgresGuard, RedisGuard, ReplayProtection, DEFAULT_MAX_ENTRIES,
};
use webhook_guard::server::{serve, Limits};
use webhook_guard::store::crypt::{CryptError, MasterKeyId, MasterKeys, Sealer};
use webhook_guard::store::feed::{FeedOptions, FeedSource};
use webhook_guard::store::{
    AuditRetention, PostgresOptions, PostgresStore, SqliteStore, Store, StoreError,
};

use crate::sign::shell_quote;

/// The database file inside a data directory.
pub const DATABASE: &str = "webhook-guard.db";

/// The environment variable master keys are read from (`id:base64,…`; the first encrypts).
pub const MASTER_KEYS_ENV: &str = "WEBHOOK_GUARD_MASTER_KEYS";

/// The environment variable the shared database's URL is read from when neither `--data-dir`
/// nor `--database-url` is given.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// What the key file generated beside a data directory is called: `<data-dir>.master-key`.
const KEY_FILE_SUFFIX: &str = ".master-key";

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The data directory (created with mode 0700; the database is created with mode 0600).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database several instances share (`postgres://user@host:5432/db`, or
    /// key=value settings), in place of a data directory; without either flag, DATABASE_URL is
    /// used. README: "Running several instances".
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub database_url: Option<String>,
    /// Most connections to the database one instance opens (with --database-url).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub database_pool_size: u16,
    /// A PEM file of certificates to trust for the database's, besides the system's roots (a
    /// private CA, or the server's self-signed certificate). TLS is used when --database-url
    /// says `sslmode=require`, and the certificate and the host's name are then verified.
    #[arg(long, value_name = "PATH", conflicts_with = "data_dir")]
    pub database_ca_file: Option<PathBuf>,
    /// A file of master keys (`id:base64` lines; the first encrypts, all decrypt), kept apart
    /// from the data directory; or set WEBHOOK_GUARD_MASTER_KEYS. Without either, the key file
    /// beside the data directory (`<DIR>.master-key`) is used, and created for a new store.
    /// With --database-url, every instance needs the same keys (this flag or the variable).
    #[arg(long, value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,
    /// Store secrets in plaintext when no master key is given, instead of generating one:
    /// anyone who reads the data directory then has every signing secret.
    #[arg(long, conflicts_with = "master_key_file")]
    pub insecure_plaintext_secrets: bool,
}

/// Who opens a data directory, for what it is told when a server holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    Serve,
    CreateIntegrator,
    Rekey,
}

/// The store the flags name.
pub enum Backend {
    /// A SQLite file in the data directory, held by this process alone.
    Sqlite(SqliteStore),
    /// A PostgreSQL database several instances share.
    Postgres(PostgresStore),
}

impl Backend {
    pub fn store(&self) -> &dyn Store {
        match self {
            Self::Sqlite(store) => store,
            Self::Postgres(store) => store,
        }
    }

    /// Re-seals every secret under the first master key, in one transaction.
    pub fn rekey(&self) -> Result<usize, String> {
        match self {
            Self::Sqlite(store) => store.rekey(),
            Self::Postgres(store) => store.rekey(),
        }
        .map_err(|e| e.to_string())
    }

    /// An `Admin` over the store, and the change feed it follows (PostgreSQL).
    pub fn admin(self, builder: AdminBuilder) -> Result<(Admin, Option<FeedSource>), String> {
        match self {
            Self::Sqlite(store) => Ok((builder.open(store).map_err(|e| e.to_string())?, None)),
            Self::Postgres(store) => {
                let feed = store.feed();
                let admin = builder.open(store).map_err(|e| e.to_string())?;
                Ok((admin, Some(feed)))
            }
        }
    }
}

/// A store opened from the command line.
pub struct Opened {
    pub store: Backend,
    /// Whether secrets are sealed under a master key.
    pub sealed: bool,
    /// The key file generated for this new store, if one was.
    pub generated: Option<PathBuf>,
}

impl StoreArgs {
    /// The shared database's URL: `--database-url`, else DATABASE_URL unless `--data-dir` is
    /// given (a DATABASE_URL set for something else never overrides a data directory).
    fn database_url(&self) -> Option<String> {
        self.database_url.clone().or_else(|| {
            self.data_dir
                .is_none()
                .then(|| std::env::var(DATABASE_URL_ENV).ok())
                .flatten()
                .filter(|url| !url.is_empty())
        })
    }

    /// The data directory, when the store is one.
    fn data_dir(&self) -> Result<&Path, String> {
        self.data_dir.as_deref().ok_or_else(|| {
            format!("--data-dir or --database-url (or {DATABASE_URL_ENV}) is required")
        })
    }

    /// Where the data lives, for people: the data directory, or the database (never its URL,
    /// which may hold a password).
    pub fn location(&self) -> String {
        match &self.data_dir {
            Some(dir) => dir.display().to_string(),
            None => "the PostgreSQL database of --database-url".into(),
        }
    }

    /// The flag that names the store again, for the commands printed.
    pub fn flag(&self) -> String {
        match &self.data_dir {
            Some(dir) => format!("--data-dir {}", shell_quote(&dir.display().to_string())),
            None => format!("--database-url \"${DATABASE_URL_ENV}\""),
        }
    }

    /// The database file.
    pub fn database(&self) -> Result<PathBuf, String> {
        Ok(self.data_dir()?.join(DATABASE))
    }

    /// `<data-dir>.master-key`, beside the data directory; `None` when the directory has no
    /// name to put beside (`/`, a path ending in `..`) or the store is PostgreSQL.
    pub fn default_key_file(&self) -> Option<PathBuf> {
        let data_dir = self.data_dir.as_deref()?;
        let dir = data_dir
            .canonicalize()
            .or_else(|_| std::path::absolute(data_dir))
            .ok()?;
        let mut name = dir.file_name()?.to_owned();
        name.push(KEY_FILE_SUFFIX);
        Some(dir.with_file_name(name))
    }

    /// Opens the store with the configured master keys: `--master-key-file`, else
    /// WEBHOOK_GUARD_MASTER_KEYS, else the key file beside the data directory. With none, a
    /// store holding no secret yet gets a new key file there (`serve` and `create-integrator`);
    /// plaintext only with `--insecure-plaintext-secrets`. On PostgreSQL, the keys must be
    /// given (every instance needs the same ones): nothing is generated.
    pub fn open(&self, opener: Opener) -> Result<Opened, String> {
        match self.database_url() {
            Some(url) => self.open_postgres(&url),
            None if self.database_ca_file.is_some() => Err(
                "--database-ca-file is for a PostgreSQL database: give --database-url (or set \
                 DATABASE_URL) too"
                    .to_owned(),
            ),
            None => self.open_sqlite(opener),
        }
    }

    fn open_postgres(&self, url: &str) -> Result<Opened, String> {
        let (sealer, sealed) = match self.configured_keys()? {
            Some(keys) => (Sealer::encrypting(keys), true),
            None if self.insecure_plaintext_secrets => {
                eprintln!(
                    "warning: --insecure-plaintext-secrets: secrets are stored in plaintext in {}",
                    self.location()
                );
                (Sealer::plaintext(), false)
            }
            None => {
                return Err(format!(
                    "no master key for the shared database: pass --master-key-file (the same \
                     file on every instance) or set {MASTER_KEYS_ENV}; create one with `{} admin \
                     gen-master-key --id k1 > KEYFILE && chmod 600 KEYFILE` (or pass \
                     --insecure-plaintext-secrets to store secrets in plaintext)",
                    exe()
                ))
            }
        };
        let mut options =
            PostgresOptions::default().pool_size(usize::from(self.database_pool_size));
        if let Some(path) = &self.database_ca_file {
            for cert in crate::options::pem_certificates("--database-ca-file", path)? {
                options = options.tls_root(cert);
            }
        }
        let store = PostgresStore::connect(url, sealer, options)
            .map_err(|e| format!("database (--database-url): {e}"))?;
        Ok(Opened {
            store: Backend::Postgres(store),
            sealed,
            generated: None,
        })
    }

    fn open_sqlite(&self, opener: Opener) -> Result<Opened, String> {
        let database = self.database()?;
        let data_dir = self.data_dir()?;
        if let Some(keys) = self.configured_keys()? {
            let store = self.open_with(Sealer::encrypting(keys), opener)?;
            return Ok(Opened {
                store,
                sealed: true,
                generated: None,
            });
        }
        if self.insecure_plaintext_secrets {
            eprintln!(
                "warning: --insecure-plaintext-secrets: secrets are stored in plaintext in {}",
                database.display()
            );
            let store = self.open_with(Sealer::plaintext(), opener)?;
            return Ok(Opened {
                store,
                sealed: false,
                generated: None,
            });
        }
        let default = self.default_key_file();
        let give_key = match &default {
            Some(path) => format!(
                "pass --master-key-file {} (the key file `serve` creates beside the data \
                 directory) or another file holding that key, or set {MASTER_KEYS_ENV}",
                shell_quote(&path.display().to_string())
            ),
            None => {
                format!("pass --master-key-file with the file holding it, or set {MASTER_KEYS_ENV}")
            }
        };
        // No key: look at what is stored. Under a throwaway key, which opens plaintext values
        // and names the key of sealed ones (and is never used to seal: the probe only reads).
        let probe = match fs::symlink_metadata(&database) {
            Ok(_) => {
                let id = MasterKeyId::new("no-key-given").map_err(|e| e.to_string())?;
                let (throwaway, _) = MasterKeys::generate(id).map_err(|e| e.to_string())?;
                Some(self.open_with(Sealer::encrypting(throwaway), opener)?)
            }
            Err(_) => None,
        };
        if let Some(probe) = &probe {
            match probe.store().load() {
                Ok(state) if state.integrators.is_empty() && state.projects.is_empty() => {}
                Ok(_) => {
                    return Err(format!(
                        "the secrets in {} are stored in plaintext and no master key was given: \
                         pass --insecure-plaintext-secrets to go on so, or seal them: `{exe} admin \
                         gen-master-key --id k1 > KEYFILE && chmod 600 KEYFILE`, then `{exe} admin \
                         rekey --data-dir {} --master-key-file KEYFILE`",
                        database.display(),
                        shell_quote(&data_dir.display().to_string()),
                        exe = exe(),
                    ))
                }
                Err(StoreError::Crypt(CryptError::UnknownMasterKey { id })) => {
                    return Err(format!(
                        "the secrets in {} are sealed under master key \"{id}\" and no master key \
                         was given: {give_key}",
                        database.display()
                    ))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if opener == Opener::Rekey {
            return Err(format!("no master key to rekey under: {give_key}"));
        }
        // The directory first (as the store makes it, 0700): the key file's place is beside it.
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = self.default_key_file().ok_or_else(|| {
            format!(
                "no master key given, and no place beside --data-dir {} for a new key file: pass \
                 --master-key-file, set {MASTER_KEYS_ENV}, or pass --insecure-plaintext-secrets",
                data_dir.display()
            )
        })?;
        let keys = generate_key_file(&path)?;
        // Opened while the probe still holds the lock: no other process slips in between.
        let store = self.open_with(Sealer::encrypting(keys), opener)?;
        drop(probe);
        Ok(Opened {
            store,
            sealed: true,
            generated: Some(path),
        })
    }

    fn configured_keys(&self) -> Result<Option<MasterKeys>, String> {
        if let Some(path) = &self.master_key_file {
            let dir = self.data_dir.as_deref().map(Path::canonicalize);
            if let (Ok(file), Some(Ok(dir))) = (path.canonicalize(), dir) {
                if file.starts_with(&dir) {
                    eprintln!(
                        "warning: the master key file is inside the data directory; a copy of \
                         the directory then holds both the secrets and their key"
                    );
                }
            }
            return MasterKeys::from_file(path)
                .map(Some)
                .map_err(|e| e.to_string());
        }
        if let Some(keys) = MasterKeys::from_env(MASTER_KEYS_ENV).map_err(|e| e.to_string())? {
            return Ok(Some(keys));
        }
        match self.default_key_file() {
            Some(path) if !self.insecure_plaintext_secrets && path.exists() => {
                MasterKeys::from_file(&path)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            _ => Ok(None),
        }
    }

    fn open_with(&self, sealer: Sealer, opener: Opener) -> Result<Backend, String> {
        SqliteStore::open(self.database()?, sealer)
            .map(Backend::Sqlite)
            .map_err(|e| match e {
                StoreError::Locked { pid, .. } => self.held(pid, opener),
                e => e.to_string(),
            })
    }

    /// What to do instead, when a running server holds the data directory.
    fn held(&self, pid: Option<u32>, opener: Opener) -> String {
        let dir = self.location();
        let who = match pid {
            Some(pid) => format!("a webhook-guard server (pid {pid})"),
            None => "another webhook-guard process".to_owned(),
        };
        match opener {
            Opener::Serve => format!(
                "{who} already serves data directory {dir}: one data directory, one server; stop \
                 it first, or give this one its own --data-dir"
            ),
            Opener::CreateIntegrator => format!(
                "{who} has data directory {dir} open and would not see an integrator created \
                 here: stop it, run `admin create-integrator` again, then start it (or start a \
                 new data directory with `serve --bootstrap`)"
            ),
            Opener::Rekey => format!(
                "{who} has data directory {dir} open and keeps sealing under the master keys it \
                 started with: put the new key first in the key file (keep the old one), then \
                 restart the server, which re-seals every secret under the first key when it \
                 starts (or stop it, run `admin rekey`, start it); drop the old key after that"
            ),
        }
    }
}

/// Writes a new master key to `path` (mode 0600, never over an existing file).
fn generate_key_file(path: &Path) -> Result<MasterKeys, String> {
    let id = Utc::now().format("%Y-%m-%d").to_string();
    let id = MasterKeyId::new(&id).map_err(|e| e.to_string())?;
    let (keys, line) = MasterKeys::generate(id).map_err(|e| e.to_string())?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut file| {
        file.write_all(
            format!(
                "# webhook-guard master keys: the first seals, all open\n{}\n",
                line.as_str()
            )
            .as_bytes(),
        )?;
        file.sync_all()
    });
    written.map_err(|e| format!("cannot create master key file {}: {e}", path.display()))?;
    Ok(keys)
}

/// Tells where a generated key file is and how to rotate it.
pub fn print_generated(path: &Path, store: &StoreArgs) {
    let key_file = shell_quote(&path.display().to_string());
    let data_dir = shell_quote(&store.location());
    println!(
        "Generated master key file {key_file} (mode 0600, beside the data directory, never \
         inside it):\n\
         secrets are sealed under it, and later starts read it from there. Back it up apart \
         from the data directory.\n\
         To rotate it: put `{exe} admin gen-master-key --id NEW` first in that file, keep the \
         old line, restart `serve --data-dir {data_dir}` (it re-seals every secret under the \
         first key), then delete the old line.\n",
        exe = exe()
    );
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// When the store has no integrator yet, create one with a demo project and print its
    /// credentials once (instead of running `webhook-guard admin create-integrator` first).
    #[arg(long)]
    pub bootstrap: bool,
    /// The URL senders deliver to, for schemes that sign the URL (square, twilio).
    #[arg(long, value_name = "URL")]
    pub public_base_url: Option<String>,
    /// Connections served at once; when all are taken, the one idle the longest is closed to
    /// make room, or a new one waits for a connection to finish.
    #[arg(long, value_name = "N", default_value_t = Limits::new().max_connections)]
    pub max_connections: usize,
    /// Connections one client IP address may hold at once (loopback included); more from it are
    /// closed at once. Behind a proxy that connects from one address, raise it.
    #[arg(long, value_name = "N", default_value_t = Limits::new().max_connections_per_client)]
    pub max_connections_per_client: usize,
    /// Threads serving connections, each with its own single-threaded runtime; a connection
    /// is served wholly on the thread it was handed to. Default: one per CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Seconds a connection may stay open with no request in flight (keep-alive, HTTP/2 with
    /// no stream, nothing sent yet) before it is closed (HTTP/2: GOAWAY).
    #[arg(long, value_name = "SECS", default_value_t = Limits::new().idle.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,
    /// Seconds a request, body included, may take before it is answered 408.
    #[arg(long, value_name = "SECS", default_value_t = Limits::new().request.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Seconds a request's headers (and a new connection's first byte) may take to arrive.
    #[arg(long, value_name = "SECS", default_value_t = Limits::new().header_read.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..), hide = true)]
    pub header_read_timeout_secs: u64,
    /// Days audit events are kept; older ones are pruned every hour (each pruning is itself an
    /// audit event). 0 keeps them forever.
    #[arg(long, value_name = "DAYS", default_value_t = 400)]
    pub audit_retention_days: u32,
    /// Most audit events kept per integrator; older ones are pruned every hour. 0: no cap.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub audit_max_events: u64,
    /// Admin changes one credential may make per second, on average (then 429).
    #[arg(long, value_name = "N", default_value_t = webhook_guard::admin::DEFAULT_WRITES_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_writes_per_second: u32,
    /// Milliseconds between two reads of the changes other instances made, when no
    /// notification came (with --database-url): the staleness bound while the database answers.
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub feed_poll_ms: u64,
    /// Admin changes one credential may make at once, before the rate applies.
    #[arg(long, value_name = "N", default_value_t = webhook_guard::admin::DEFAULT_WRITE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_write_burst: u32,
    /// Failed authentications one client address may make per second, on average (then 429).
    #[arg(long, value_name = "N", default_value_t = webhook_guard::admin::credentials::DEFAULT_FAILURES_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub failed_logins_per_second: u32,
    /// Failed authentications one client address may make at once, before the rate applies.
    #[arg(long, value_name = "N", default_value_t = webhook_guard::admin::credentials::DEFAULT_FAILURE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub failed_login_burst: u32,
    #[command(flatten)]
    pub gateway: crate::gateway::GatewayArgs,
    #[command(flatten)]
    pub replay: ReplayArgs,
}

/// Where handled deliveries are remembered, so each is handled once (README, "Replays and
/// duplicates").
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Where handled deliveries are remembered: memory (this process; forgotten on restart),
    /// postgres or redis (shared by every instance).
    #[arg(long, value_enum, default_value = "memory")]
    pub replay: ReplayBackend,
    /// The Redis server of `--replay redis`.
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// The PostgreSQL database of `--replay postgres` (a connection string or a URL).
    #[arg(
        long,
        value_name = "CONNINFO",
        default_value = "host=127.0.0.1 user=postgres dbname=postgres"
    )]
    pub replay_postgres_url: String,
    /// A PEM file of certificates to trust for the `--replay postgres` database's, besides
    /// the system's roots; TLS is used when --replay-postgres-url says `sslmode=require`.
    #[arg(long, value_name = "PATH")]
    pub replay_postgres_ca_file: Option<PathBuf>,
    /// Most deliveries `--replay memory` remembers; new ones are refused (503) beyond it.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub replay_max_entries: usize,
    /// Seconds a handled delivery is remembered. Default: the scheme's tolerance window plus
    /// a minute; longer (days) for schemes that sign no timestamp (GitHub, Shopify).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub replay_retention_secs: Option<u64>,
    /// Seconds a delivery being handled stays reserved if its handler never finishes.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub replay_lease_secs: u64,
    /// While the replay backend is down, handle deliveries without the duplicate check
    /// instead of answering 503.
    #[arg(long)]
    pub replay_fail_open: bool,
}

/// `--replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayBackend {
    Memory,
    Postgres,
    Redis,
}

impl ReplayArgs {
    /// The certificates of --replay-postgres-ca-file.
    fn replay_roots(&self) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
        self.replay_postgres_ca_file
            .as_deref()
            .map_or(Ok(Vec::new()), |path| {
                crate::options::pem_certificates("--replay-postgres-ca-file", path)
            })
    }

    /// The replay protection the flags ask for; within the runtime.
    pub async fn protection(&self) -> Result<ReplayProtection, String> {
        let protection = match self.replay {
            ReplayBackend::Memory => {
                ReplayProtection::new(MemoryGuard::new(self.replay_max_entries))
            }
            ReplayBackend::Redis => ReplayProtection::new(
                RedisGuard::open(&self.redis_url).map_err(|e| format!("--redis-url: {e}"))?,
            ),
            ReplayBackend::Postgres => ReplayProtection::new(
                PostgresGuard::connect_tls(&self.replay_postgres_url, &self.replay_roots()?)
                    .await
                    .map_err(|e| format!("--replay-postgres-url: {e}"))?,
            ),
        };
        let protection = protection.lease(Duration::from_secs(self.replay_lease_secs));
        let protection = match self.replay_retention_secs {
            Some(secs) => protection.retention(Duration::from_secs(secs)),
            None => protection,
        };
        Ok(match self.replay_fail_open {
            true => protection.on_outage(Outage::FailOpen),
            false => protection,
        })
    }
}

impl ServeArgs {
    /// The server's limits: the defaults, with the flags' values.
    fn limits(&self) -> Limits {
        Limits::new()
            .max_connections(self.max_connections)
            .max_connections_per_client(self.max_connections_per_client)
            .idle(Duration::from_secs(self.idle_timeout_secs))
            .request(Duration::from_secs(self.request_timeout_secs))
            .header_read(Duration::from_secs(self.header_read_timeout_secs))
            .workers(self.workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, usize::from),
                usize::from,
            ))
    }

    /// What the hourly pruning removes, as of `now`.
    fn retention(&self, now: chrono::DateTime<chrono::Utc>) -> AuditRetention {
        let older_than = (self.audit_retention_days > 0)
            .then(|| now - chrono::Duration::days(i64::from(self.audit_retention_days)));
        let keep = (self.audit_max_events > 0).then_some(self.audit_max_events);
        AuditRetention::new(older_than, keep)
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode, String> {
    let Opened {
        store,
        sealed,
        generated,
    } = args.store.open(Opener::Serve)?;
    if sealed {
        // After a master key rotation (new key first in the file): every secret moves to it
        // now, in one transaction, so the old key can be dropped once this start succeeded.
        let resealed = store.rekey()?;
        if resealed > 0 {
            tracing::info!(
                count = resealed,
                "re-sealed secrets under the first master key"
            );
        }
    }
    if let Some(path) = &generated {
        print_generated(path, &args.store);
    }
    let mut builder = Admin::builder()
        .write_rate(args.admin_writes_per_second, args.admin_write_burst)
        .failed_logins(args.failed_logins_per_second, args.failed_login_burst)
        .upstream_policy(args.gateway.policy()?);
    let gateway = args.gateway.gateway()?;
    if let Some(base) = &args.public_base_url {
        builder = builder.public_base_url(base.clone());
    }
    let (admin, feed) = store.admin(builder)?;
    let feed_options = FeedOptions::default().poll(Duration::from_millis(args.feed_poll_ms));
    let limits = args.limits();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let base = format!("http://{local}");
        let replay = args.replay.protection().await?;
        // This instance follows what the others change, and they it (PostgreSQL).
        let _following = feed.map(|source| admin.follow(source, feed_options));
        // Held while deciding to bootstrap: instances starting together on one shared store
        // bootstrap once.
        let writes = admin.store().lock_writes().map_err(|e| e.to_string())?;
        let empty = admin
            .store()
            .load()
            .map_err(|e| e.to_string())?
            .integrators
            .is_empty();
        if empty && args.bootstrap {
            let integrator = admin.create_integrator().map_err(|e| e.to_string())?;
            print_bootstrap(&admin, &integrator, &base, &args.store)?;
        }
        drop(writes);
        if empty && !args.bootstrap {
            println!(
                "No integrator yet: create one with\n  {} admin create-integrator {}\n\
                 or start with --bootstrap.",
                exe(),
                args.store.flag()
            );
        } else if !empty {
            print_next_steps(&base);
        }
        println!("webhook-guard serving on {base} (admin API under /v1, webhooks at /webhooks/{{projectId}}, console at {base}/console)");
        // API keys' last uses reach the store once a minute, and once more on shutdown.
        let flusher = admin.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                let admin = flusher.clone();
                let flushed = tokio::task::spawn_blocking(move || admin.flush_last_uses()).await;
                if let Ok(Err(e)) = flushed {
                    tracing::warn!(error = %e, "API keys' last uses not saved yet");
                }
            }
        });
        // The audit log is pruned at start and every hour.
        let pruner = admin.clone();
        let retention = move || args.retention(chrono::Utc::now());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                every.tick().await;
                let admin = pruner.clone();
                let rule = retention();
                let pruned = tokio::task::spawn_blocking(move || admin.prune_audit(rule)).await;
                if let Ok(Err(e)) = pruned {
                    tracing::warn!(error = %e, "audit events not pruned yet");
                }
            }
        });
        let app = App::new(admin.clone())
            .gateway(gateway)
            .replay(replay)
            .metrics(Metrics::new())
            .router();
        let served = serve(listener, app, limits, shutdown())
            .await
            .map_err(|e| format!("server error: {e}"));
        if let Err(e) = admin.flush_last_uses() {
            eprintln!("warning: API keys' last uses were not saved: {e}");
        }
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

pub fn exe() -> String {
    std::env::current_exe()
        .map(|p| shell_quote(&p.display().to_string()))
        .unwrap_or_else(|_| "webhook-guard".into())
}

fn print_bootstrap(
    admin: &Admin,
    integrator: &NewIntegrator,
    base: &str,
    store: &StoreArgs,
) -> Result<(), String> {
    let key = integrator.api_key.key.as_str();
    let caller = admin
        .credentials()
        .authenticate_api_key(key)
        .map_err(|_| "the new API key does not authenticate".to_owned())?;
    let demo = admin
        .create_project(&caller, Some("demo".into()), "standard-webhooks")
        .map_err(|e| e.to_string())?;
    let project = demo.project.id.as_str();
    let exe = exe();
    let (location, flag) = (store.location(), store.flag());
    println!(
        "Created integrator {id} with a demo project. These secrets are shown once:\n\
         \n\
         export WG_URL={base}\n\
         export WG_CLIENT_ID={id}\n\
         export WG_CLIENT_SECRET={secret}\n\
         export WG_API_KEY={key}\n\
         export WG_PROJECT={project}\n\
         export WG_SIGNING_SECRET={signing}\n\
         \n\
         Paste those, then try (in another shell, while this server runs):\n\
         \n\
         # sign a webhook with the project's secret and send it (200 verified)\n\
         eval \"$({exe} sign --scheme standard --secret-format raw --secret \"$WG_SIGNING_SECRET\" --body '{{\"type\":\"ping\"}}' --curl \"$WG_URL/webhooks/$WG_PROJECT\")\"\n\
         # the project and its keys (no secret)\n\
         curl -s -w '\\n' \"$WG_URL/v1/projects/$WG_PROJECT\" -H \"x-api-key: $WG_API_KEY\"\n\
         # regenerate, keeping the old secret valid for 10 minutes: the webhook above still verifies\n\
         curl -s -w '\\n' -X POST \"$WG_URL/v1/external-support/$WG_PROJECT/secret/regenerate\" -H \"x-api-key: $WG_API_KEY\" -H 'content-type: application/json' -d '{{\"oldSecretValidForSeconds\": 600}}'\n\
         # end the previous secrets now, then regenerate without grace (the platforms' default)\n\
         curl -s -w '\\n' -X DELETE \"$WG_URL/v1/external-support/$WG_PROJECT/secret/previous\" -H \"x-api-key: $WG_API_KEY\"\n\
         curl -s -w '\\n' -X POST \"$WG_URL/v1/external-support/$WG_PROJECT/secret/regenerate\" -u \"$WG_CLIENT_ID:$WG_CLIENT_SECRET\"\n\
         # the old secret is now refused (401)\n\
         eval \"$({exe} sign --scheme standard --secret-format raw --secret \"$WG_SIGNING_SECRET\" --body '{{\"type\":\"ping\"}}' --curl \"$WG_URL/webhooks/$WG_PROJECT\")\"\n\
         # API keys: create one limited to the project, list them (masked)\n\
         curl -s -w '\\n' -X POST \"$WG_URL/v1/api-keys\" -H \"x-api-key: $WG_API_KEY\" -H 'content-type: application/json' -d \"{{\\\"name\\\": \\\"ci\\\", \\\"projects\\\": [\\\"$WG_PROJECT\\\"]}}\"\n\
         curl -s -w '\\n' \"$WG_URL/v1/api-keys\" -H \"x-api-key: $WG_API_KEY\"\n\
         # the integrator's own API secret, old one valid for a minute; and the audit log\n\
         curl -s -w '\\n' -X POST \"$WG_URL/v1/integrator/regenerate-secret\" -u \"$WG_CLIENT_ID:$WG_CLIENT_SECRET\" -H 'content-type: application/json' -d '{{\"oldSecretValidForSeconds\": 60}}'\n\
         curl -s -w '\\n' \"$WG_URL/v1/audit?limit=20\" -H \"x-api-key: $WG_API_KEY\"\n\
         \n\
         The data lives in {location}; restart with the same {flag} to keep it.\n",
        id = integrator.id,
        secret = integrator.client_secret.as_str(),
        signing = demo.signing_secret.as_str(),
    );
    Ok(())
}

fn print_next_steps(base: &str) {
    println!(
        "Credentials were shown once when they were created. With WG_API_KEY set:\n\
         curl -s -w '\\n' {base}/v1/projects -H \"x-api-key: $WG_API_KEY\"\n\
         curl -s -w '\\n' -X POST {base}/v1/projects -H \"x-api-key: $WG_API_KEY\" -H 'content-type: application/json' -d '{{\"name\": \"shop\", \"scheme\": \"github\"}}'"
    );
}
