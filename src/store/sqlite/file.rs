//! The database file itself: created with mode 0600 under a temporary name, checked before
//! anything writes to it, locked for one process, and watched for being replaced or deleted.

use super::*;

/// The exclusive advisory lock on `<database>.lock`, one per process and file: stores of one
/// process on the same file share it, another process is refused.
pub(super) struct FileLock {
    /// Keeps the lock: it is released when this descriptor closes.
    _file: fs::File,
    /// The lock file's device and inode, how stores of this process find it.
    id: (u64, u64),
}

/// The locks this process holds.
pub(super) static HELD: Mutex<Vec<Weak<FileLock>>> = Mutex::new(Vec::new());

impl FileLock {
    pub(super) fn take(database: &Path) -> Result<Arc<Self>, StoreError> {
        let mut path = database.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| io(&path, e))?;
        let id = identity(&file.metadata().map_err(|e| io(&path, e))?);
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|lock| lock.strong_count() > 0);
        if let Some(lock) = held.iter().filter_map(Weak::upgrade).find(|l| l.id == id) {
            // This descriptor never held the lock: closing it releases nothing.
            return Ok(lock);
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    path: path.display().to_string(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        // The holder's pid, for the message another process shows.
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| io(&path, e))?;
        let lock = Arc::new(Self { _file: file, id });
        held.push(Arc::downgrade(&lock));
        Ok(lock)
    }
}

/// What the store knows of its open file, to notice when the file at the path is another.
pub(super) struct FileWatch {
    /// Device and inode of the file opened.
    id: (u64, u64),
    /// The largest size seen: the file never shrinks (no auto-vacuum).
    seen_len: AtomicU64,
    /// Set once the file was found deleted, replaced or truncated; it stays set.
    changed: OnceLock<String>,
}

impl FileWatch {
    pub(super) fn new(path: &Path) -> Result<Self, StoreError> {
        let metadata = fs::metadata(path).map_err(|e| io(path, e))?;
        Ok(Self {
            id: identity(&metadata),
            seen_len: AtomicU64::new(metadata.len()),
            changed: OnceLock::new(),
        })
    }

    /// Fails when the file at `path` is no longer the file opened, or lost its contents.
    pub(super) fn check(&self, path: &Path) -> Result<(), StoreError> {
        if let Some(reason) = self.changed.get() {
            return Err(changed(path, reason));
        }
        let reason = match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "deleted".to_owned(),
            Err(e) => return Err(io(path, e)),
            Ok(m) if identity(&m) != self.id => "replaced by another file".to_owned(),
            Ok(m) => {
                let seen = self.seen_len.fetch_max(m.len(), Ordering::Relaxed);
                if m.len() == 0 || m.len() < seen {
                    format!("truncated from {seen} to {} bytes", m.len())
                } else {
                    return Ok(());
                }
            }
        };
        if self.changed.set(reason.clone()).is_ok() {
            // Once, not on every request that finds it.
            tracing::error!(
                path = %path.display(),
                reason = %reason,
                "the database file changed under the open store: writes and readiness fail until it is restored and the server restarted"
            );
        }
        Err(changed(path, &reason))
    }
}

pub(super) fn changed(path: &Path, reason: &str) -> StoreError {
    StoreError::FileChanged {
        path: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

/// A file's device and inode (on other platforms: nothing to compare).
pub(super) fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (metadata.dev(), metadata.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        (0, 0)
    }
}

/// Creates the database's directory (mode `0700`) when there is none.
pub(super) fn make_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| io(dir, e))?;
        }
    }
    Ok(())
}

/// Builds a new database at a temporary name and renames it into place when complete.
pub(super) fn create(path: &Path) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".creating");
    let tmp = PathBuf::from(tmp);
    // Left over from a crash while creating: never acknowledged, never holding a change.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp, e)),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    drop(options.open(&tmp).map_err(|e| io(&tmp, e))?);
    {
        let mut conn = Connection::open(&tmp)?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
    }
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself must reach the disk.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
    }
    Ok(())
}

/// Refuses, before SQLite opens it, a file that is empty or not SQLite.
pub(super) fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut header = [0u8; 16];
    let mut file = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]).map_err(|e| io(path, e))? {
            0 => break,
            n => read += n,
        }
    }
    let reason = match read {
        0 => "the file is empty",
        16 if &header == SQLITE_HEADER => return Ok(()),
        16 => "the file is not a SQLite database",
        _ => "the file is shorter than a SQLite header",
    };
    Err(StoreError::NotADatabase {
        path: path.display().to_string(),
        reason: reason.into(),
    })
}

/// Checks an opened file before anything is written to it.
pub(super) fn check_existing(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| damaged(path, e))?;
    if app != APPLICATION_ID {
        return Err(StoreError::NotADatabase {
            path: path.display().to_string(),
            reason: format!("application_id is {app:#x}, not webhook-guard's"),
        });
    }
    let mut problems = Vec::new();
    conn.pragma_query(None, "quick_check", |r| {
        problems.push(r.get::<_, String>(0)?);
        Ok(())
    })
    .map_err(|e| damaged(path, e))?;
    if problems != ["ok"] {
        return Err(StoreError::Corrupt {
            path: path.display().to_string(),
            reason: problems.join("; "),
        });
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(super) fn damaged(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.display().to_string(),
            reason: e.to_string(),
        },
        _ => StoreError::Database(e),
    }
}

pub(super) fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}
