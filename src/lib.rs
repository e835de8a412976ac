//! Verify signed webhooks in constant time against a hot-swappable keyring, as a Tower layer
//! or a plain library.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod clock;
mod keyring;
pub mod middleware;
pub mod scheme;
mod secret;
mod sign;
mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use keyring::{
    KeyId, KeyInfo, KeyRole, Keyring, KeyringBuilder, Rotation, RotationError, DEFAULT_MAX_GRACE,
    DEFAULT_MAX_KEYS,
};
pub use secret::{RevealedSecret, Secret, SecretError, GENERATED_SECRET_LEN, MAX_SECRET_LEN};
pub use sign::{SignError, Signer};
pub use verify::{HeaderProblem, Verified, Verifier, VerifyError, DEFAULT_TOLERANCE};
