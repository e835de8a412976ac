//! Secrets at rest: XChaCha20-Poly1305 under rotatable master keys.
//!
//! A store keeps every signing secret and API secret as a *sealed* value: the [`Sealer`]
//! encrypts it with the current master key of a [`MasterKeys`] set and binds it, through the
//! associated data built by [`aad`], to the row it belongs to. The master keys come from an
//! environment variable ([`MasterKeys::from_env`]) or a key file ([`MasterKeys::from_file`]),
//! never from the database they protect.
//!
//! # Threat model
//!
//! Protected:
//!
//! - **A stolen or backed-up database file.** Whoever copies the SQLite file, a snapshot or a
//!   backup gets ciphertext; without a master key it reveals no secret.
//! - **A read of the database alone** (SQL injection, a leaked dump, a read-only replica in the
//!   wrong hands): the same, since the master key is not in the database.
//! - **A row moved to another owner.** The associated data names the kind of owner, the owner
//!   (project or integrator id) and the key id, so a sealed secret copied into another
//!   project's row, or under another key id, fails to open ([`CryptError::Decrypt`]) instead of
//!   quietly verifying webhooks for the wrong project.
//!
//! Not protected:
//!
//! - **An attacker who also has a master key.** Keep the key in an environment variable or a
//!   key file *outside* the data directory, so one backup or one stolen volume never holds
//!   both. Environment variables can be read by anyone who can read the process's
//!   `/proc/<pid>/environ`; a key file with mode `600` owned by the service user is the safer
//!   choice.
//! - **An attacker who controls the running process** or can read its memory: the service
//!   needs the secrets in clear to verify signatures. Keys and opened secrets are zeroized when
//!   dropped, which limits what a later memory dump finds, nothing more.
//! - **An attacker who can write to the database.** Plaintext values (below) open in every
//!   mode so that a store can move from no master key to one, so such an attacker can plant a
//!   secret of their choosing; they can also put back an older value sealed for the same
//!   owner and key id. Encryption at rest is about confidentiality of secrets, not the
//!   integrity of the whole database.
//! - **Metadata**: ids, timestamps, the number of projects and keys, the lengths of secrets
//!   and which master key sealed each value are all visible in the database.
//! - **Plaintext mode** ([`Sealer::plaintext`]) protects nothing; it exists for operators who
//!   have not set up a master key, and the store warns about it at startup.
//!
//! # Rotation
//!
//! The first key of a [`MasterKeys`] set encrypts; every key in it decrypts. To rotate:
//!
//! 1. generate a new key and put it **in front** of the old one (`new:…,old:…`);
//! 2. restart `webhook-guard serve`, which re-seals at start every value for which
//!    [`Sealer::needs_rekey`] is true (including plaintext values left from plaintext mode),
//!    in one transaction ([`SqliteStore::rekey`](crate::store::SqliteStore::rekey)); or, with
//!    the server stopped, run `webhook-guard admin rekey` (refused while a server holds the
//!    store, which would go on sealing under the keys it started with);
//! 3. drop the old key from the list.
//!
//! Svix's self-hosted server, by contrast, encrypts with a single `main_secret` of which its
//! configuration says "Once set, it can't be changed" (`server/svix-server/config.default.toml`
//! in svix/svix-webhooks). Each sealed value here records the id of the key that sealed it, so
//! keys can be replaced without a flag day.
//!
//! # Format
//!
//! A sealed value is self-describing; every integer is one byte:
//!
//! | form      | layout                                                                       |
//! |-----------|------------------------------------------------------------------------------|
//! | encrypted | `0x01`, id length `n` (1–32), `n` bytes of master key id, 24-byte nonce, ciphertext, 16-byte tag |
//! | plaintext | `0xF0`, the secret's bytes                                                   |
//!
//! The encrypted form is AEAD_XChaCha20_Poly1305 (draft-irtf-cfrg-xchacha-03) with a random
//! 192-bit nonce from the operating system; its associated data is the header (format byte,
//! id length, id) followed by the caller's [`aad`], so the key id cannot be edited either.
//!
//! # Examples
//!
//! ```
//! use webhook_guard::store::crypt::{aad, CryptError, MasterKeyId, MasterKeys, Sealer};
//!
//! # fn main() -> Result<(), CryptError> {
//! // A CLI step writes `line` to a key file (mode 600); the server reads it back.
//! let (_, old_line) = MasterKeys::generate(MasterKeyId::new("2026-01")?)?;
//! let sealer = Sealer::encrypting(MasterKeys::parse(&old_line)?);
//!
//! let row = aad("project", "proj_1", "key_1");
//! let sealed = sealer.seal(&row, b"whsec-bytes")?;
//! assert_eq!(&sealer.open(&row, &sealed)?[..], b"whsec-bytes");
//!
//! // The same bytes pasted into another project's row do not open.
//! let moved = aad("project", "proj_2", "key_1");
//! assert!(matches!(sealer.open(&moved, &sealed), Err(CryptError::Decrypt { .. })));
//!
//! // Rotation: a new key in front, the old one kept for reading.
//! let (_, new_line) = MasterKeys::generate(MasterKeyId::new("2026-07")?)?;
//! let rotated = Sealer::encrypting(MasterKeys::parse(&format!("{}\n{}", *new_line, *old_line))?);
//! assert_eq!(&rotated.open(&row, &sealed)?[..], b"whsec-bytes");
//! assert!(rotated.needs_rekey(&sealed));
//! let resealed = rotated.seal(&row, &rotated.open(&row, &sealed)?)?;
//! assert!(!rotated.needs_rekey(&resealed));
//! assert_eq!(Sealer::sealed_with(&resealed)?.unwrap().as_str(), "2026-07");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Longest master key id, in characters.
pub const MAX_MASTER_KEY_ID_LEN: usize = 32;

/// Largest key file [`MasterKeys::from_file`] reads, in bytes: room for hundreds of keys, and a
/// bound when the path points at a large file or a device by mistake.
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;

/// Format byte of a value encrypted with XChaCha20-Poly1305 (version 1 of the layout).
const FORMAT_XCHACHA20POLY1305: u8 = 0x01;
/// Format byte of a value stored in clear by [`Sealer::plaintext`]. Far in Hamming distance
/// from the encrypted format, so a flipped bit does not turn one into the other.
const FORMAT_PLAINTEXT: u8 = 0xF0;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Domain string that opens every associated data, so it cannot collide with another use.
const AAD_DOMAIN: &[u8] = b"webhook-guard/secret/v1";

/// Base64 with the standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The name of a master key: 1 to 32 characters of `A-Z a-z 0-9 _ -`.
///
/// Not secret: it is stored in clear in front of every value the key seals, so that a value
/// can name the key it needs and keys can be rotated.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::crypt::MasterKeyId;
///
/// let id = MasterKeyId::new("2026-07")?;
/// assert_eq!(id.as_str(), "2026-07");
/// assert!(MasterKeyId::new("has space").is_err());
/// # Ok::<(), webhook_guard::store::crypt::CryptError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MasterKeyId(String);

impl MasterKeyId {
    /// Checks and wraps `id`.
    ///
    /// # Errors
    ///
    /// [`CryptError::InvalidKeyId`] when `id` is empty, longer than
    /// [`MAX_MASTER_KEY_ID_LEN`] or has a character outside `A-Z a-z 0-9 _ -`.
    pub fn new(id: &str) -> Result<Self, CryptError> {
        check_id(id).map_err(|reason| CryptError::InvalidKeyId {
            entry: None,
            reason,
        })?;
        Ok(Self(id.to_owned()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why `id` is not a master key id, naming no character of it.
fn check_id(id: &str) -> Result<(), String> {
    let len = id.chars().count();
    if len == 0 {
        return Err("the id is empty".to_owned());
    }
    if len > MAX_MASTER_KEY_ID_LEN {
        return Err(format!(
            "the id is {len} characters, longer than {MAX_MASTER_KEY_ID_LEN}"
        ));
    }
    if let Some(position) = id
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!(
            "character {} is not one of A-Z a-z 0-9 _ -",
            position + 1
        ));
    }
    Ok(())
}

/// One master key: its id and the cipher keyed with it (the cipher zeroizes its key on drop).
#[derive(Clone)]
struct MasterKey {
    id: MasterKeyId,
    cipher: XChaCha20Poly1305,
}

/// An ordered set of 32-byte master keys: the first encrypts, all of them decrypt.
///
/// Rotation puts a new key in front and keeps the old ones for reading until every value is
/// re-sealed (see the [module docs](self#rotation)). The keys are zeroized when the set is
/// dropped, and `Debug` shows only their ids.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::crypt::MasterKeys;
///
/// let keys = MasterKeys::parse(
///     "# rotated 2026-07-01\n\
///      2026-07:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\
///      2026-01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8",
/// )?;
/// assert_eq!(keys.current_id().as_str(), "2026-07");
/// assert_eq!(keys.ids().map(|id| id.as_str()).collect::<Vec<_>>(), ["2026-07", "2026-01"]);
/// assert_eq!(format!("{keys:?}"), r#"MasterKeys { ids: ["2026-07", "2026-01"] }"#);
/// # Ok::<(), webhook_guard::store::crypt::CryptError>(())
/// ```
#[derive(Clone)]
pub struct MasterKeys {
    /// Never empty; the first one is current.
    keys: Vec<MasterKey>,
}

impl MasterKeys {
    /// Parses a key list: entries `id:base64-key` separated by newlines or commas, the key
    /// being 32 bytes in standard base64 (padding optional). Blank lines and lines starting
    /// with `#` are skipped. The first entry is the current key.
    ///
    /// # Errors
    ///
    /// Entries are counted from 1, skipping blank and comment lines; no error quotes a key.
    ///
    /// - [`CryptError::Empty`]: no entry at all;
    /// - [`CryptError::MissingColon`]: an entry without `:`;
    /// - [`CryptError::InvalidKeyId`]: an id that [`MasterKeyId::new`] refuses;
    /// - [`CryptError::DuplicateKeyId`]: two entries with the same id;
    /// - [`CryptError::InvalidBase64`]: a key that is not base64;
    /// - [`CryptError::KeyLength`]: a key that is not [`MASTER_KEY_LEN`] bytes.
    pub fn parse(text: &str) -> Result<Self, CryptError> {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, entry_text) in entries.enumerate() {
            let entry = index + 1;
            let (id, key) = entry_text
                .split_once(':')
                .ok_or(CryptError::MissingColon { entry })?;
            let id = id.trim();
            check_id(id).map_err(|reason| CryptError::InvalidKeyId {
                entry: Some(entry),
                reason,
            })?;
            let id = MasterKeyId(id.to_owned());
            if keys.iter().any(|k| k.id == id) {
                return Err(CryptError::DuplicateKeyId { id });
            }
            let bytes = decode_key(entry, key.trim())?;
            keys.push(MasterKey {
                id,
                cipher: XChaCha20Poly1305::new(Key::from_slice(&bytes)),
            });
        }
        if keys.is_empty() {
            return Err(CryptError::Empty);
        }
        Ok(Self { keys })
    }

    /// Reads a key list (as for [`MasterKeys::parse`]) from the environment variable `var`;
    /// `None` when it is not set.
    ///
    /// The variable's value stays in the process environment, where this crate cannot erase
    /// it; prefer [`MasterKeys::from_file`] where the platform allows.
    ///
    /// # Errors
    ///
    /// [`CryptError::EnvNotUnicode`] when the value is not UTF-8, otherwise as for
    /// [`MasterKeys::parse`] (a variable set to an empty string is [`CryptError::Empty`]).
    pub fn from_env(var: &str) -> Result<Option<Self>, CryptError> {
        let Some(value) = std::env::var_os(var) else {
            return Ok(None);
        };
        let value = Zeroizing::new(value.into_string().map_err(|_| CryptError::EnvNotUnicode {
            var: var.to_owned(),
        })?);
        Self::parse(&value).map(Some)
    }

    /// Reads a key list (as for [`MasterKeys::parse`]) from a key file.
    ///
    /// On Unix the file must not be readable, writable or executable by group or others
    /// (`mode & 0o077 == 0`, as `chmod 600` leaves it); the check is made on the opened file,
    /// before anything is read.
    ///
    /// # Errors
    ///
    /// [`CryptError::Io`] when the file cannot be opened or read (or is not UTF-8),
    /// [`CryptError::Permissions`] when its mode lets others in,
    /// [`CryptError::KeyFileTooLarge`] past [`MAX_KEY_FILE_LEN`], otherwise as for
    /// [`MasterKeys::parse`].
    pub fn from_file(path: &Path) -> Result<Self, CryptError> {
        let io = |source| CryptError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(CryptError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        // Sized up front so the buffer holding the keys is not reallocated (and copied).
        let capacity = usize::try_from(metadata.len())
            .unwrap_or(MAX_KEY_FILE_LEN)
            .min(MAX_KEY_FILE_LEN)
            + 1;
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        (&mut file)
            .take(MAX_KEY_FILE_LEN as u64 + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() > MAX_KEY_FILE_LEN {
            return Err(CryptError::KeyFileTooLarge {
                path: path.to_owned(),
                max: MAX_KEY_FILE_LEN,
            });
        }
        Self::parse(&text)
    }

    /// Generates a fresh key with the given id from the operating system's random number
    /// generator; returns the set holding only that key and its `id:base64` line, to be
    /// written once to a key file.
    ///
    /// # Errors
    ///
    /// [`CryptError::Random`] when the operating system gives no random bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::store::crypt::{MasterKeyId, MasterKeys};
    ///
    /// let (keys, line) = MasterKeys::generate(MasterKeyId::new("k1")?)?;
    /// assert!(line.starts_with("k1:"));
    /// assert_eq!(MasterKeys::parse(&line)?.current_id(), keys.current_id());
    /// # Ok::<(), webhook_guard::store::crypt::CryptError>(())
    /// ```
    pub fn generate(id: MasterKeyId) -> Result<(Self, Zeroizing<String>), CryptError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        fill_random(&mut bytes[..])?;
        let mut line = Zeroizing::new(String::with_capacity(id.as_str().len() + 1 + 44));
        line.push_str(id.as_str());
        line.push(':');
        STANDARD.encode_string(&bytes[..], &mut line);
        let key = MasterKey {
            id,
            cipher: XChaCha20Poly1305::new(Key::from_slice(&bytes[..])),
        };
        Ok((Self { keys: vec![key] }, line))
    }

    /// The id of the key that encrypts: the first in the list.
    pub fn current_id(&self) -> &MasterKeyId {
        &self.current().id
    }

    /// The ids of all keys, current first.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &MasterKeyId> + '_ {
        self.keys.iter().map(|k| &k.id)
    }

    fn current(&self) -> &MasterKey {
        // `parse` and `generate` never build an empty set.
        &self.keys[0]
    }

    fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id.as_str() == id)
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("MasterKeys").field("ids", &ids).finish()
    }
}

/// Decodes one entry's key into exactly [`MASTER_KEY_LEN`] bytes.
fn decode_key(entry: usize, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptError> {
    // Capacity for the longest decoding up front: `decode_vec` then never reallocates.
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
    LENIENT_BASE64
        .decode_vec(text, &mut bytes)
        .map_err(|e| CryptError::InvalidBase64 {
            entry,
            // `DecodeError`'s own messages quote the offending byte: describe it by position.
            reason: match e {
                base64::DecodeError::InvalidByte(index, _) => {
                    format!("invalid character at position {}", index + 1)
                }
                base64::DecodeError::InvalidLength(_) => "wrong number of characters".to_owned(),
                base64::DecodeError::InvalidLastSymbol(index, _) => {
                    format!("invalid last character at position {}", index + 1)
                }
                base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
            },
        })?;
    if bytes.len() != MASTER_KEY_LEN {
        return Err(CryptError::KeyLength {
            entry,
            len: bytes.len(),
        });
    }
    Ok(bytes)
}

fn fill_random(dest: &mut [u8]) -> Result<(), CryptError> {
    getrandom::fill(dest).map_err(|e| CryptError::Random {
        code: e.raw_os_error(),
    })
}

/// The associated data that binds a sealed secret to its row: a domain string, then `kind`
/// (`"project"`, `"integrator"`), `owner` (the project or integrator id) and `key_id`, each
/// prefixed with its length as 8 bytes big-endian, so no two different triples encode alike
/// (`("a", "bc")` and `("ab", "c")` differ).
///
/// # Examples
///
/// ```
/// use webhook_guard::store::crypt::aad;
///
/// assert_ne!(aad("project", "a", "bc"), aad("project", "ab", "c"));
/// assert_eq!(aad("project", "p", "k"), aad("project", "p", "k"));
/// ```
pub fn aad(kind: &str, owner: &str, key_id: &str) -> Vec<u8> {
    let fields = [
        AAD_DOMAIN,
        kind.as_bytes(),
        owner.as_bytes(),
        key_id.as_bytes(),
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| 8 + f.len()).sum());
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Seals secrets for storage and opens them again: encrypting under [`MasterKeys`], or in
/// clear for operators who have no master key.
///
/// Values are self-describing (see the [format](self#format)), so any sealer opens plaintext
/// values, and an encrypting sealer opens every value sealed under one of its keys.
///
/// # Examples
///
/// ```
/// use webhook_guard::store::crypt::{aad, MasterKeyId, MasterKeys, Sealer};
///
/// let (keys, _line) = MasterKeys::generate(MasterKeyId::new("k1")?)?;
/// let sealer = Sealer::encrypting(keys);
/// let row = aad("integrator", "int_0123456789abcdef", "api");
/// let sealed = sealer.seal(&row, b"secret")?;
/// assert_eq!(&sealer.open(&row, &sealed)?[..], b"secret");
///
/// // A value stored before there was a master key still opens, and is due for a rekey.
/// let clear = Sealer::plaintext().seal(&row, b"old")?;
/// assert_eq!(&sealer.open(&row, &clear)?[..], b"old");
/// assert_eq!(Sealer::sealed_with(&clear)?, None);
/// assert!(sealer.needs_rekey(&clear));
/// # Ok::<(), webhook_guard::store::crypt::CryptError>(())
/// ```
#[derive(Clone)]
pub struct Sealer {
    /// `None` in plaintext mode.
    keys: Option<MasterKeys>,
}

impl Sealer {
    /// A sealer that encrypts under the current key of `keys` and opens values sealed under
    /// any of them.
    pub fn encrypting(keys: MasterKeys) -> Self {
        Self { keys: Some(keys) }
    }

    /// A sealer that stores secrets in clear, tagged as such. It protects nothing; it opens
    /// plaintext values only.
    pub fn plaintext() -> Self {
        Self { keys: None }
    }

    /// Whether this sealer stores secrets in clear.
    pub fn is_plaintext(&self) -> bool {
        self.keys.is_none()
    }

    /// The id of the key new values are sealed under; `None` in plaintext mode.
    pub fn current_id(&self) -> Option<&MasterKeyId> {
        self.keys.as_ref().map(MasterKeys::current_id)
    }

    /// Seals `plaintext` for the row described by `aad` (see [`aad`]).
    ///
    /// Encrypting: XChaCha20-Poly1305 under the current master key with a fresh random nonce.
    /// Plaintext mode: the bytes as they are behind a format byte; `aad` is not used.
    ///
    /// # Errors
    ///
    /// [`CryptError::Random`] when the operating system gives no random bytes for the nonce
    /// (a value is never sealed with a fixed nonce); [`CryptError::TooLong`] past 4 GiB.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptError> {
        if u32::try_from(plaintext.len()).is_err() {
            return Err(CryptError::TooLong {
                len: plaintext.len(),
            });
        }
        let Some(keys) = &self.keys else {
            let mut out = Vec::with_capacity(1 + plaintext.len());
            out.push(FORMAT_PLAINTEXT);
            out.extend_from_slice(plaintext);
            return Ok(out);
        };
        let key = keys.current();
        let id = key.id.as_str().as_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;

        // Exact capacity: the plaintext copied in is encrypted in place and never reallocated.
        let header_len = 2 + id.len();
        let body_start = header_len + NONCE_LEN;
        let mut out = Vec::with_capacity(body_start + plaintext.len() + TAG_LEN);
        out.push(FORMAT_XCHACHA20POLY1305);
        out.push(id.len() as u8); // ids are at most 32 bytes
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let associated = associated_data(&out[..header_len], aad);
        let tag = key
            .cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &associated,
                &mut out[body_start..],
            )
            .map_err(|_| CryptError::TooLong {
                len: plaintext.len(),
            })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed for the row described by `aad`.
    ///
    /// Plaintext values open in both modes, so a store that had no master key can be rekeyed
    /// to one; use [`Sealer::sealed_with`] or [`Sealer::needs_rekey`] to find them.
    ///
    /// # Errors
    ///
    /// - [`CryptError::Malformed`]: not a sealed value (truncated, unknown format, bad header);
    /// - [`CryptError::UnknownMasterKey`]: sealed under a key this sealer does not have;
    /// - [`CryptError::Decrypt`]: authentication failed: the value was tampered with, copied
    ///   from another row (other `aad`), or sealed under another key with the same id.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptError> {
        let (header_len, id) = match parse(sealed)? {
            Parsed::Plaintext(bytes) => return Ok(Zeroizing::new(bytes.to_vec())),
            Parsed::Encrypted { header_len, id } => (header_len, id),
        };
        let key = self
            .keys
            .as_ref()
            .and_then(|keys| keys.get(id))
            .ok_or_else(|| CryptError::UnknownMasterKey {
                id: MasterKeyId(id.to_owned()),
            })?;
        let nonce = &sealed[header_len..header_len + NONCE_LEN];
        let (body, tag) = sealed[header_len + NONCE_LEN..]
            .split_at(sealed.len() - header_len - NONCE_LEN - TAG_LEN);
        let mut plaintext = Zeroizing::new(body.to_vec());
        key.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &associated_data(&sealed[..header_len], aad),
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptError::Decrypt { id: key.id.clone() })?;
        Ok(plaintext)
    }

    /// The id of the master key `sealed` was encrypted under, or `None` for a plaintext value.
    ///
    /// # Errors
    ///
    /// [`CryptError::Malformed`] when `sealed` is not a sealed value.
    pub fn sealed_with(sealed: &[u8]) -> Result<Option<MasterKeyId>, CryptError> {
        Ok(match parse(sealed)? {
            Parsed::Plaintext(_) => None,
            Parsed::Encrypted { id, .. } => Some(MasterKeyId(id.to_owned())),
        })
    }

    /// Whether sealing `sealed` again would change its form: encrypting, when it is plaintext
    /// or sealed under a key other than the current one; in plaintext mode, when it is
    /// encrypted. `false` for a malformed value, which no rekey can mend ([`Sealer::open`]
    /// reports it).
    pub fn needs_rekey(&self, sealed: &[u8]) -> bool {
        match (Self::sealed_with(sealed), self.current_id()) {
            (Ok(Some(id)), Some(current)) => id != *current,
            (Ok(None), Some(_)) => true,
            (Ok(Some(_)), None) => true,
            (Ok(None), None) | (Err(_), _) => false,
        }
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keys {
            Some(keys) => f.debug_tuple("Sealer::Encrypting").field(keys).finish(),
            None => f.write_str("Sealer::Plaintext"),
        }
    }
}

/// The structure of a sealed value, checked without any key.
enum Parsed<'a> {
    Plaintext(&'a [u8]),
    /// `header_len` covers the format byte, the id length and the id; the nonce and at least a
    /// tag follow.
    Encrypted {
        header_len: usize,
        id: &'a str,
    },
}

fn parse(sealed: &[u8]) -> Result<Parsed<'_>, CryptError> {
    let malformed = |reason| Err(CryptError::Malformed { reason });
    match sealed.first() {
        None => malformed("the value is empty"),
        Some(&FORMAT_PLAINTEXT) => Ok(Parsed::Plaintext(&sealed[1..])),
        Some(&FORMAT_XCHACHA20POLY1305) => {
            let Some(&id_len) = sealed.get(1) else {
                return malformed("the value ends before the master key id");
            };
            let header_len = 2 + usize::from(id_len);
            let Some(id) = sealed.get(2..header_len) else {
                return malformed("the value ends inside the master key id");
            };
            let id = match std::str::from_utf8(id) {
                Ok(id) if check_id(id).is_ok() => id,
                _ => return malformed("the master key id is not a valid id"),
            };
            if sealed.len() < header_len + NONCE_LEN + TAG_LEN {
                return malformed("the value is shorter than a nonce and a tag");
            }
            Ok(Parsed::Encrypted { header_len, id })
        }
        Some(_) => malformed("unknown format byte"),
    }
}

/// The AEAD's associated data: the value's header, then the caller's row binding.
fn associated_data(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(aad);
    out
}

/// Why master keys could not be loaded, or a secret not be sealed or opened. Never contains a
/// key or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptError {
    /// The key list has no entry.
    #[error("no master key given: the key list is empty")]
    Empty,
    /// An entry of the key list has no `:` between id and key.
    #[error("master key entry {entry} is not `id:base64-key` (no ':')")]
    MissingColon {
        /// Entry number, from 1, not counting blank and comment lines.
        entry: usize,
    },
    /// A master key id is empty, too long, or has a character outside `A-Z a-z 0-9 _ -`.
    #[error("invalid master key id{}: {reason}", EntryLabel(*.entry))]
    InvalidKeyId {
        /// Entry number in a key list, from 1; `None` for [`MasterKeyId::new`].
        entry: Option<usize>,
        /// What is wrong, without the text itself.
        reason: String,
    },
    /// Two entries of the key list have the same id.
    #[error("master key id \"{id}\" appears more than once")]
    DuplicateKeyId {
        /// The repeated id.
        id: MasterKeyId,
    },
    /// A key is not base64.
    #[error("master key entry {entry}: the key is not valid base64: {reason}")]
    InvalidBase64 {
        /// Entry number, from 1, not counting blank and comment lines.
        entry: usize,
        /// What is wrong, by position only.
        reason: String,
    },
    /// A key does not decode to [`MASTER_KEY_LEN`] bytes.
    #[error("master key entry {entry}: the key is {len} bytes, expected 32")]
    KeyLength {
        /// Entry number, from 1, not counting blank and comment lines.
        entry: usize,
        /// Length of the decoded key.
        len: usize,
    },
    /// The environment variable holding the keys is not UTF-8.
    #[error("environment variable {var} is not valid unicode")]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The key file could not be opened or read.
    #[error("cannot read master key file {}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file is open to group or others.
    #[error(
        "master key file {} has mode {mode:04o}, which lets group or others in; \
         restrict it with `chmod 600 {}`",
        .path.display(),
        .path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is larger than [`MAX_KEY_FILE_LEN`].
    #[error("master key file {} is larger than {max} bytes", .path.display())]
    KeyFileTooLarge {
        /// The key file.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// The operating system random number generator failed.
    #[error("the operating system random number generator failed (os error {code:?})")]
    Random {
        /// The raw OS error code, when there is one.
        code: Option<i32>,
    },
    /// A secret is too long to seal.
    #[error("the secret is {len} bytes, too long to seal")]
    TooLong {
        /// Length given.
        len: usize,
    },
    /// The value was sealed under a master key this sealer does not have.
    #[error(
        "the value is sealed under master key \"{id}\", which is not among the configured \
         master keys"
    )]
    UnknownMasterKey {
        /// The key the value names.
        id: MasterKeyId,
    },
    /// Authentication failed.
    #[error(
        "the value sealed under master key \"{id}\" failed authentication: it was tampered \
         with, moved from another row, or sealed under a different key with the same id"
    )]
    Decrypt {
        /// The key the value names (and this sealer has).
        id: MasterKeyId,
    },
    /// The bytes are not a sealed value.
    #[error("the sealed value is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
}

/// Displays ` (entry N)` for a key list entry, nothing otherwise.
struct EntryLabel(Option<usize>);

impl fmt::Display for EntryLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(entry) => write!(f, " in entry {entry}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, Payload};

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn keys(text: &str) -> MasterKeys {
        MasterKeys::parse(text).unwrap()
    }

    fn sealer_a() -> Sealer {
        Sealer::encrypting(keys(&format!("a:{KEY_A}")))
    }

    fn row() -> Vec<u8> {
        aad("project", "proj_1", "key_1")
    }

    #[test]
    fn round_trip() {
        let sealer = sealer_a();
        for plaintext in [&b""[..], b"x", &[7u8; 100]] {
            let sealed = sealer.seal(&row(), plaintext).unwrap();
            assert_eq!(sealed.len(), 2 + 1 + NONCE_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(&sealer.open(&row(), &sealed).unwrap()[..], plaintext);
            assert_eq!(Sealer::sealed_with(&sealed).unwrap().unwrap().as_str(), "a");
        }
    }

    #[test]
    fn layout_is_format_id_nonce_ciphertext_tag() {
        let sealed = sealer_a().seal(&row(), b"secret").unwrap();
        assert_eq!(sealed[0], FORMAT_XCHACHA20POLY1305);
        assert_eq!(sealed[1], 1);
        assert_eq!(sealed[2], b'a');
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn wrong_aad_fails() {
        let sealer = sealer_a();
        let sealed = sealer.seal(&row(), b"secret").unwrap();
        for other in [
            aad("project", "proj_2", "key_1"),
            aad("project", "proj_1", "key_2"),
            aad("integrator", "proj_1", "key_1"),
            Vec::new(),
        ] {
            let err = sealer.open(&other, &sealed).unwrap_err();
            assert!(matches!(err, CryptError::Decrypt { ref id } if id.as_str() == "a"));
            assert!(err.to_string().contains("moved from another row"), "{err}");
        }
    }

    #[test]
    fn aad_fields_are_length_prefixed() {
        assert_ne!(aad("project", "a", "bc"), aad("project", "ab", "c"));
        assert_ne!(aad("ab", "c", ""), aad("a", "bc", ""));
        assert!(aad("k", "o", "i")
            .windows(AAD_DOMAIN.len())
            .any(|w| w == AAD_DOMAIN));
    }

    #[test]
    fn tampered_byte_anywhere_fails() {
        let sealer = sealer_a();
        let sealed = sealer.seal(&row(), b"a signing secret").unwrap();
        for index in 0..sealed.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut tampered = sealed.clone();
                tampered[index] ^= mask;
                match sealer.open(&row(), &tampered) {
                    Err(CryptError::Decrypt { .. } | CryptError::Malformed { .. }) => {}
                    // Only the header names a key: a changed id or id length names another.
                    Err(CryptError::UnknownMasterKey { .. }) if index < 3 => {}
                    other => panic!("byte {index} ^ {mask:#04x}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn truncated_at_every_length_fails_cleanly() {
        let sealer = sealer_a();
        let sealed = sealer.seal(&row(), b"a signing secret").unwrap();
        for len in 0..sealed.len() {
            match sealer.open(&row(), &sealed[..len]) {
                Err(CryptError::Decrypt { .. } | CryptError::Malformed { .. }) => {}
                other => panic!("length {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let sealer = sealer_a();
        for garbage in [
            &b""[..],
            b"\x00",
            b"hello",
            b"\x01\x00",
            b"\x01\x21",
            b"\x01\x02a ",
        ] {
            assert!(
                matches!(
                    sealer.open(&row(), garbage),
                    Err(CryptError::Malformed { .. })
                ),
                "{garbage:?}"
            );
            assert!(Sealer::sealed_with(garbage).is_err());
            assert!(!sealer.needs_rekey(garbage));
        }
    }

    #[test]
    fn unknown_master_key_id() {
        let sealed = sealer_a().seal(&row(), b"secret").unwrap();
        let other = Sealer::encrypting(keys(&format!("b:{KEY_B}")));
        let err = other.open(&row(), &sealed).unwrap_err();
        assert!(matches!(err, CryptError::UnknownMasterKey { ref id } if id.as_str() == "a"));
        assert!(matches!(
            Sealer::plaintext().open(&row(), &sealed),
            Err(CryptError::UnknownMasterKey { .. })
        ));
    }

    #[test]
    fn same_id_different_key_fails_to_decrypt() {
        let sealed = sealer_a().seal(&row(), b"secret").unwrap();
        let impostor = Sealer::encrypting(keys(&format!("a:{KEY_B}")));
        assert!(matches!(
            impostor.open(&row(), &sealed),
            Err(CryptError::Decrypt { .. })
        ));
    }

    #[test]
    fn nonces_differ_across_seals() {
        let sealer = sealer_a();
        let one = sealer.seal(&row(), b"same").unwrap();
        let two = sealer.seal(&row(), b"same").unwrap();
        assert_ne!(one[3..3 + NONCE_LEN], two[3..3 + NONCE_LEN]);
        assert_ne!(one, two);
    }

    /// Asserts that the error's message quotes no part of the key.
    fn assert_quiet(err: &CryptError, key: &str) {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(!shown.contains(&key[..8]), "{shown}");
    }

    #[test]
    fn parse_errors_name_the_problem_not_the_key() {
        let err = MasterKeys::parse("").unwrap_err();
        assert!(matches!(err, CryptError::Empty));
        let err = MasterKeys::parse("\n# only a comment, with a comma\n  ,\n").unwrap_err();
        assert!(matches!(err, CryptError::Empty), "{err}");

        let err = MasterKeys::parse(KEY_A).unwrap_err();
        assert!(matches!(err, CryptError::MissingColon { entry: 1 }));
        assert_quiet(&err, KEY_A);

        let err = MasterKeys::parse(&format!("a:{KEY_A}\nbad id:{KEY_B}")).unwrap_err();
        assert!(matches!(
            err,
            CryptError::InvalidKeyId { entry: Some(2), .. }
        ));
        assert_eq!(
            err.to_string(),
            "invalid master key id in entry 2: character 4 is not one of A-Z a-z 0-9 _ -"
        );
        assert_quiet(&err, KEY_B);
        let long = "x".repeat(33);
        let err = MasterKeys::parse(&format!("{long}:{KEY_A}")).unwrap_err();
        assert!(matches!(
            err,
            CryptError::InvalidKeyId { entry: Some(1), .. }
        ));
        let err = MasterKeys::parse(&format!(":{KEY_A}")).unwrap_err();
        assert!(matches!(err, CryptError::InvalidKeyId { .. }));
        assert_quiet(&err, KEY_A);

        let err = MasterKeys::parse(&format!("a:{KEY_A},a:{KEY_B}")).unwrap_err();
        assert!(matches!(err, CryptError::DuplicateKeyId { ref id } if id.as_str() == "a"));
        assert_quiet(&err, KEY_A);
        assert_quiet(&err, KEY_B);

        let bad = format!("{}!{}", &KEY_A[..10], &KEY_A[11..]);
        let err = MasterKeys::parse(&format!("a:{bad}")).unwrap_err();
        assert!(matches!(err, CryptError::InvalidBase64 { entry: 1, .. }));
        assert_eq!(
            err.to_string(),
            "master key entry 1: the key is not valid base64: invalid character at position 11"
        );
        assert_quiet(&err, &bad);

        let short = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="; // 31 bytes
        let err = MasterKeys::parse(&format!("a:{short}")).unwrap_err();
        assert!(matches!(err, CryptError::KeyLength { entry: 1, len: 31 }));
        assert_eq!(
            err.to_string(),
            "master key entry 1: the key is 31 bytes, expected 32"
        );
        assert_quiet(&err, short);
    }

    #[test]
    fn parse_accepts_commas_newlines_comments_and_no_padding() {
        let unpadded = KEY_B.trim_end_matches('=');
        let text = format!("# keys\r\n\r\n  new : {KEY_A} , \n# old one\nold:{unpadded}\n");
        let parsed = keys(&text);
        assert_eq!(parsed.current_id().as_str(), "new");
        assert_eq!(
            parsed.ids().map(MasterKeyId::as_str).collect::<Vec<_>>(),
            ["new", "old"]
        );
        let both = keys(&format!("x:{KEY_A},y:{KEY_B}"));
        assert_eq!(both.ids().len(), 2);
    }

    #[test]
    fn key_id_rules() {
        assert!(MasterKeyId::new("aZ09_-").is_ok());
        assert!(MasterKeyId::new(&"x".repeat(32)).is_ok());
        for bad in ["", "é", "a b", "a:b", "a/b", &"x".repeat(33)] {
            assert!(
                matches!(
                    MasterKeyId::new(bad),
                    Err(CryptError::InvalidKeyId { entry: None, .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            MasterKeyId::new("").unwrap_err().to_string(),
            "invalid master key id: the id is empty"
        );
    }

    /// A file under the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "webhook-guard-crypt-{name}-{}-{}",
                std::process::id(),
                u64::from_ne_bytes(random_bytes())
            ));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn random_bytes<const N: usize>() -> [u8; N] {
        let mut bytes = [0u8; N];
        fill_random(&mut bytes).unwrap();
        bytes
    }

    #[cfg(unix)]
    #[test]
    fn key_file_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let file = TempFile::new("perm", &format!("a:{KEY_A}\n"));
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKeys::from_file(&file.0).unwrap_err();
        assert!(
            matches!(err, CryptError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        let shown = err.to_string();
        assert!(shown.contains("0644"), "{shown}");
        assert!(shown.contains("chmod 600"), "{shown}");
        assert_quiet(&err, KEY_A);

        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).unwrap();
        let keys = MasterKeys::from_file(&file.0).unwrap();
        assert_eq!(keys.current_id().as_str(), "a");
    }

    #[cfg(unix)]
    #[test]
    fn oversized_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let mut text = format!("a:{KEY_A}\n");
        text.push_str(&"#".repeat(MAX_KEY_FILE_LEN));
        let file = TempFile::new("large", &text);
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = MasterKeys::from_file(&file.0).unwrap_err();
        assert!(matches!(
            err,
            CryptError::KeyFileTooLarge {
                max: MAX_KEY_FILE_LEN,
                ..
            }
        ));
        assert_quiet(&err, KEY_A);
    }

    #[test]
    fn missing_key_file_is_an_io_error() {
        let path = std::env::temp_dir().join("webhook-guard-crypt-no-such-file");
        let err = MasterKeys::from_file(&path).unwrap_err();
        assert!(matches!(err, CryptError::Io { .. }), "{err}");
        assert!(err.to_string().contains("webhook-guard-crypt-no-such-file"));
    }

    #[test]
    fn env_unset_is_none() {
        let var = "WEBHOOK_GUARD_CRYPT_TEST_SURELY_UNSET_4f1c";
        assert!(MasterKeys::from_env(var).unwrap().is_none());
    }

    #[test]
    fn generated_line_parses_back_to_the_same_key() {
        let (keys, line) = MasterKeys::generate(MasterKeyId::new("gen").unwrap()).unwrap();
        let sealed = Sealer::encrypting(keys).seal(&row(), b"s").unwrap();
        let reread = Sealer::encrypting(MasterKeys::parse(&line).unwrap());
        assert_eq!(&reread.open(&row(), &sealed).unwrap()[..], b"s");
        let (_, other) = MasterKeys::generate(MasterKeyId::new("gen").unwrap()).unwrap();
        assert_ne!(*line, *other);
    }

    #[test]
    fn plaintext_mode_round_trip() {
        let sealer = Sealer::plaintext();
        assert!(sealer.is_plaintext());
        assert_eq!(sealer.current_id(), None);
        let sealed = sealer.seal(&row(), b"clear").unwrap();
        assert_eq!(sealed, b"\xF0clear");
        assert_eq!(&sealer.open(&row(), &sealed).unwrap()[..], b"clear");
        assert_eq!(Sealer::sealed_with(&sealed).unwrap(), None);
        assert!(!sealer.needs_rekey(&sealed));
        // Encrypting sealers read it too, and flag it for a rekey.
        let encrypting = sealer_a();
        assert!(!encrypting.is_plaintext());
        assert_eq!(&encrypting.open(&row(), &sealed).unwrap()[..], b"clear");
        assert!(encrypting.needs_rekey(&sealed));
        // And a plaintext sealer flags encrypted values.
        assert!(sealer.needs_rekey(&encrypting.seal(&row(), b"x").unwrap()));
    }

    #[test]
    fn rekey_after_adding_a_key_in_front() {
        let old = sealer_a();
        let sealed = old.seal(&row(), b"secret").unwrap();
        assert!(!old.needs_rekey(&sealed));

        let rotated = Sealer::encrypting(keys(&format!("b:{KEY_B}\na:{KEY_A}")));
        assert_eq!(rotated.current_id().unwrap().as_str(), "b");
        assert!(rotated.needs_rekey(&sealed));
        let opened = rotated.open(&row(), &sealed).unwrap();
        assert_eq!(&opened[..], b"secret");

        let resealed = rotated.seal(&row(), &opened).unwrap();
        assert!(!rotated.needs_rekey(&resealed));
        assert_eq!(
            Sealer::sealed_with(&resealed).unwrap().unwrap().as_str(),
            "b"
        );
        // Once every value is resealed, the old key can go.
        let new_only = Sealer::encrypting(keys(&format!("b:{KEY_B}")));
        assert_eq!(&new_only.open(&row(), &resealed).unwrap()[..], b"secret");
        assert!(matches!(
            new_only.open(&row(), &sealed),
            Err(CryptError::UnknownMasterKey { .. })
        ));
    }

    #[test]
    fn debug_shows_ids_only() {
        let both = keys(&format!("b:{KEY_B}\na:{KEY_A}"));
        let shown = format!("{both:?}");
        assert_eq!(shown, r#"MasterKeys { ids: ["b", "a"] }"#);
        let sealer = Sealer::encrypting(both);
        let shown = format!("{sealer:?} {sealer:#?}");
        for key in [KEY_A, KEY_B] {
            assert!(!shown.contains(key), "{shown}");
            assert!(!shown.contains(&key[..8]), "{shown}");
        }
        assert!(shown.contains("Sealer::Encrypting"));
        assert_eq!(format!("{:?}", Sealer::plaintext()), "Sealer::Plaintext");
    }

    /// AEAD_XChaCha20_Poly1305 test vector from draft-irtf-cfrg-xchacha-03, Appendix A.3.1
    /// (the same vector as in A.1 and in the chacha20poly1305 crate's own tests), run through
    /// the crate directly to pin that it is the AEAD this module documents.
    #[test]
    fn xchacha20poly1305_draft_vector() {
        let key: Vec<u8> = (0x80..=0x9f).collect();
        let nonce: Vec<u8> = (0x40..=0x57).collect();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let plaintext: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer \
            you only one tip for the future, sunscreen would be it.";
        let ciphertext = hex::decode(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
             731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
             2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
             21f9664c97637da9768812f615c68b13b52e",
        )
        .unwrap();
        let tag = hex::decode("c0875924c1c7987947deafd8780acf49").unwrap();

        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key));
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        let sealed = cipher.encrypt(XNonce::from_slice(&nonce), payload).unwrap();
        assert_eq!(sealed[..plaintext.len()], ciphertext[..]);
        assert_eq!(sealed[plaintext.len()..], tag[..]);
        let payload = Payload {
            msg: &sealed,
            aad: &aad,
        };
        let opened = cipher.decrypt(XNonce::from_slice(&nonce), payload).unwrap();
        assert_eq!(opened, plaintext);
    }

    #[test]
    fn errors_name_the_master_key_id() {
        let err = MasterKeys::parse(&format!("k-2026:{KEY_A},k-2026:{KEY_B}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"master key id "k-2026" appears more than once"#
        );
        let sealed = sealer_a().seal(&row(), b"secret").unwrap();
        let other = Sealer::encrypting(keys(&format!("b:{KEY_B}")));
        let err = other.open(&row(), &sealed).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(r#"the value is sealed under master key "a","#));
        assert_eq!(MasterKeyId::new("2026-07").unwrap().to_string(), "2026-07");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_holds_hundreds_of_keys_up_to_its_limit_exactly() {
        use std::os::unix::fs::PermissionsExt as _;
        let mut text: String = (0..500).map(|i| format!("k{i}:{KEY_A}\n")).collect();
        assert!(text.len() < MAX_KEY_FILE_LEN);
        text.push_str(&"#".repeat(MAX_KEY_FILE_LEN - text.len()));
        assert_eq!(text.len(), 64 * 1024);
        let file = TempFile::new("limit", &text);
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).unwrap();
        let keys = MasterKeys::from_file(&file.0).unwrap();
        assert_eq!(keys.ids().len(), 500);
        assert_eq!(keys.current_id().as_str(), "k0");
    }

    #[cfg(unix)]
    #[test]
    fn empty_key_file_has_no_key() {
        use std::os::unix::fs::PermissionsExt as _;
        let file = TempFile::new("empty", "");
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = MasterKeys::from_file(&file.0).unwrap_err();
        assert!(matches!(err, CryptError::Empty), "{err}");
    }

    #[test]
    fn a_full_length_value_naming_an_invalid_id_is_malformed() {
        let sealer = sealer_a();
        for id in [&b"a b"[..], b"a:b", b"\xc3\xa9"] {
            let mut value = vec![FORMAT_XCHACHA20POLY1305, id.len() as u8];
            value.extend_from_slice(id);
            value.extend_from_slice(&[0; NONCE_LEN + TAG_LEN + 4]);
            assert!(
                matches!(
                    sealer.open(&row(), &value),
                    Err(CryptError::Malformed { .. })
                ),
                "{id:?}"
            );
            assert!(Sealer::sealed_with(&value).is_err(), "{id:?}");
            assert!(!sealer.needs_rekey(&value), "{id:?}");
        }
    }
}
