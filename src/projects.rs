//! Many integrations behind one receiver: project ids and the registry of their verifiers.
//!
//! A receiver serving several projects (one per integration, tenant or sender account) keeps
//! one [`Verifier`] per project in [`Projects`], a lock-free map from [`ProjectId`] to verifier,
//! and puts [`WebhookLayer::for_projects`] in front of its webhook route: the layer reads the
//! project id from the request (a path segment or a header, [`ProjectSelector`]), verifies with
//! that project's verifier and hands the handler both [`Verified`] and the [`ProjectId`]. An
//! unknown project is answered 404 before the body is read.
//!
//! A request costs one `arc-swap` load and one hash lookup; adding or removing a project
//! publishes a new map and never blocks a request. A project's secret is rotated on its
//! [`Keyring`], which is itself hot-swappable, so a rotation does not touch the registry.
//!
//! [`Verifier`]: crate::Verifier
//! [`Verified`]: crate::Verified
//! [`Keyring`]: crate::Keyring
//! [`WebhookLayer::for_projects`]: crate::middleware::WebhookLayer::for_projects
//! [`ProjectSelector`]: crate::middleware::ProjectSelector
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::post, Extension, Router};
//! use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
//! use webhook_guard::{scheme::GitHub, Keyring, ProjectId, Projects, Secret, Verified, Verifier};
//!
//! async fn handle(
//!     Extension(project): Extension<ProjectId>,
//!     Extension(verified): Extension<Verified>,
//!     body: String,
//! ) -> String {
//!     format!("{project}: key {} verified {} bytes", verified.key_id(), body.len())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let projects = Projects::new();
//! let shop = Keyring::new(Secret::from_bytes("shop secret")?);
//! projects.insert(ProjectId::parse("shop-eu")?, Verifier::new(GitHub, shop.clone()));
//! projects.insert(
//!     ProjectId::parse("billing")?,
//!     Verifier::new(GitHub, Keyring::new(Secret::from_bytes("billing secret")?)),
//! );
//!
//! let app: Router = Router::new()
//!     .route("/webhooks/{project}", post(handle))
//!     .route_layer(WebhookLayer::for_projects(
//!         projects.clone(),
//!         ProjectSelector::path_after("/webhooks/"),
//!     ));
//!
//! // Later: a project joins, and another one rotates its secret. Neither rebuilds the router.
//! projects.insert(
//!     ProjectId::parse("crm")?,
//!     Verifier::new(GitHub, Keyring::new(Secret::from_bytes("crm secret")?)),
//! );
//! shop.rotate(Secret::from_bytes("new shop secret")?, Duration::from_secs(3600))?;
//! assert_eq!(projects.len(), 3);
//! # Ok(())
//! # }
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::keyring::random_u64;
use crate::text::ShortStr;
use crate::verify::Verifier;

/// Longest project id, in bytes.
pub const MAX_PROJECT_ID_LEN: usize = 64;

/// The non-secret name of one project (one integration): 1 to [`MAX_PROJECT_ID_LEN`] ASCII
/// letters, digits, `-` and `_`, so it is safe in a URL path, a header and a log line.
///
/// Generated ids look like `prj_3f9a0c1d2e4b5a69`.
///
/// # Examples
///
/// ```
/// use webhook_guard::ProjectId;
///
/// assert_eq!(ProjectId::parse("shop-eu")?.as_str(), "shop-eu");
/// assert!(ProjectId::parse("../etc/passwd").is_err());
/// assert!(ProjectId::random().as_str().starts_with("prj_"));
/// # Ok::<(), webhook_guard::ProjectIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(ShortStr);

/// Why a text is not a [`ProjectId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectIdError {
    /// The id is empty.
    #[error("project id is empty")]
    Empty,
    /// The id is longer than [`MAX_PROJECT_ID_LEN`].
    #[error("project id is {len} bytes long, more than the limit of {MAX_PROJECT_ID_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id has a character other than ASCII letters, digits, `-` and `_`.
    #[error("project id has a character other than ASCII letters, digits, '-' and '_'")]
    BadCharacter,
}

impl ProjectId {
    /// Checks `id` and makes it a project id.
    ///
    /// # Errors
    ///
    /// [`ProjectIdError`] for an empty or overlong id, or one with other characters.
    pub fn parse(id: &str) -> Result<Self, ProjectIdError> {
        match id.len() {
            0 => Err(ProjectIdError::Empty),
            len if len > MAX_PROJECT_ID_LEN => Err(ProjectIdError::TooLong { len }),
            _ if !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Err(ProjectIdError::BadCharacter)
            }
            _ => Ok(Self(ShortStr::new(id))),
        }
    }

    /// A fresh random id, `prj_` and 16 hex digits.
    pub fn random() -> Self {
        Self(ShortStr::new(&format!("prj_{:016x}", random_u64())))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

// `ProjectId` hashes, compares and orders exactly as its text (`ShortStr` does), so a map keyed
// by `ProjectId` can be searched with a `&str` without building an id first.
impl Borrow<str> for ProjectId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ProjectId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

type ProjectMap = HashMap<ProjectId, Arc<Verifier>>;

/// The registry of projects: each [`ProjectId`] with its [`Verifier`], shared by every clone
/// (cloning is one reference count) and read without locks.
///
/// Reads ([`get`](Projects::get)) take one `arc-swap` load and one hash lookup and never wait.
/// A write ([`insert`](Projects::insert), [`remove`](Projects::remove)) copies the map, changes
/// the copy and publishes it with `rcu`, so it costs O(n) in the number of projects and two
/// concurrent writers never lose each other's change; requests in flight keep the map they
/// loaded. Writes are rare (a project is created or deleted), so that is the right trade.
///
/// Rotating a project's secret does **not** go through the registry: the project's
/// [`Keyring`](crate::Keyring) is itself hot-swappable, and the verifier in the map holds that
/// keyring, so `keyring.rotate(..)` changes what the next request is verified with and nothing
/// in the map.
///
/// # Examples
///
/// ```
/// use webhook_guard::{scheme::StandardWebhooks, Keyring, ProjectId, Projects, Secret, Verifier};
///
/// let projects = Projects::new();
/// let id = ProjectId::parse("prj_1")?;
/// let keyring = Keyring::new(Secret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
/// assert!(projects.insert(id.clone(), Verifier::new(StandardWebhooks, keyring)).is_none());
///
/// // Looked up by the text a request carries, without parsing it into an id first.
/// assert!(projects.get("prj_1").is_some());
/// assert!(projects.get("prj_2").is_none());
///
/// assert!(projects.remove(&id).is_some());
/// assert!(projects.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Projects {
    map: Arc<ArcSwap<ProjectMap>>,
}

/// A registry of every project at once (a store read at startup): one map built, where
/// [`insert`](Projects::insert) one by one would copy it each time.
///
/// ```
/// use webhook_guard::{scheme::GitHub, Keyring, ProjectId, Projects, Secret, Verifier};
///
/// let projects: Projects = (0..3)
///     .map(|i| {
///         let keyring = Keyring::new(Secret::from_bytes(format!("secret {i}")).unwrap());
///         (ProjectId::parse(&format!("prj_{i}")).unwrap(), Verifier::new(GitHub, keyring))
///     })
///     .collect();
/// assert_eq!(projects.len(), 3);
/// ```
impl FromIterator<(ProjectId, Verifier)> for Projects {
    fn from_iter<I: IntoIterator<Item = (ProjectId, Verifier)>>(iter: I) -> Self {
        let map: ProjectMap = iter
            .into_iter()
            .map(|(id, verifier)| (id, Arc::new(verifier)))
            .collect();
        Self {
            map: Arc::new(ArcSwap::from_pointee(map)),
        }
    }
}

impl Projects {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The verifier of project `id`, if it is registered: one `arc-swap` load and one hash
    /// lookup by the id's text; never waits for a writer.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{scheme::GitHub, Keyring, ProjectId, Projects, Secret, Verifier};
    ///
    /// let projects = Projects::new();
    /// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?));
    /// projects.insert(ProjectId::parse("shop-eu")?, verifier);
    /// assert_eq!(projects.get("shop-eu").map(|v| v.scheme().name()), Some("github"));
    /// assert!(projects.get("../shop-eu").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, id: &str) -> Option<Arc<Verifier>> {
        self.map.load().get(id).cloned()
    }

    /// Registers `verifier` for project `id` and returns the verifier it replaces, if any.
    ///
    /// Copies the map (O(n) in the number of projects) and publishes the copy with `rcu`: a
    /// concurrent [`insert`](Projects::insert) or [`remove`](Projects::remove) is never lost,
    /// and readers never wait. Requests already being verified finish with the verifier they
    /// looked up.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{scheme::{GitHub, Stripe}, Keyring, ProjectId, Projects, Secret, Verifier};
    ///
    /// let projects = Projects::new();
    /// let id = ProjectId::parse("billing")?;
    /// projects.insert(id.clone(), Verifier::new(GitHub, Keyring::new(Secret::from_bytes("a")?)));
    ///
    /// // The project moved to another sender: replace its verifier.
    /// let stripe = Verifier::new(Stripe, Keyring::new(Secret::from_bytes("b")?));
    /// let replaced = projects.insert(id, stripe);
    /// assert_eq!(replaced.map(|v| v.scheme().name()), Some("github"));
    /// assert_eq!(projects.get("billing").map(|v| v.scheme().name()), Some("stripe"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&self, id: ProjectId, verifier: Verifier) -> Option<Arc<Verifier>> {
        let verifier = Arc::new(verifier);
        let before = self.map.rcu(|map| {
            let mut map = ProjectMap::clone(map);
            map.insert(id.clone(), Arc::clone(&verifier));
            map
        });
        // `rcu` returns the map its successful change was made to.
        before.get(&id).cloned()
    }

    /// Unregisters project `id` and returns its verifier, if it was registered. Its next
    /// request is answered as an unknown project.
    ///
    /// Copies the map (O(n)) and publishes the copy with `rcu`, as
    /// [`insert`](Projects::insert) does; removing an id that is not registered publishes
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{scheme::GitHub, Keyring, ProjectId, Projects, Secret, Verifier};
    ///
    /// let projects = Projects::new();
    /// let id = ProjectId::parse("shop-eu")?;
    /// projects.insert(id.clone(), Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?)));
    /// assert!(projects.remove(&id).is_some());
    /// assert!(projects.remove(&id).is_none());
    /// assert!(projects.get("shop-eu").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, id: &ProjectId) -> Option<Arc<Verifier>> {
        if !self.map.load().contains_key(id) {
            return None;
        }
        let before = self.map.rcu(|map| {
            let mut map = ProjectMap::clone(map);
            map.remove(id);
            map
        });
        before.get(id).cloned()
    }

    /// How many projects are registered.
    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    /// Whether no project is registered.
    pub fn is_empty(&self) -> bool {
        self.map.load().is_empty()
    }

    /// The registered project ids, sorted.
    pub fn ids(&self) -> Vec<ProjectId> {
        let mut ids: Vec<ProjectId> = self.map.load().keys().cloned().collect();
        ids.sort_unstable();
        ids
    }
}

impl fmt::Debug for Projects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projects")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::scheme::GitHub;
    use crate::{Keyring, Secret};

    fn verifier() -> Verifier {
        let secret = Secret::from_bytes("s").unwrap_or_else(|e| panic!("{e}"));
        Verifier::new(GitHub, Keyring::new(secret))
    }

    fn id(text: &str) -> ProjectId {
        ProjectId::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_project_id_is_found_by_its_text() {
        let long = "p".repeat(MAX_PROJECT_ID_LEN);
        let ids: HashSet<ProjectId> = [id("prj_1"), id(&long)].into_iter().collect();
        assert!(ids.contains("prj_1"));
        assert!(ids.contains(long.as_str()));
        assert!(!ids.contains("prj_2"));
    }

    #[test]
    fn concurrent_inserts_are_all_kept() {
        let projects = Projects::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let projects = projects.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        projects.insert(id(&format!("t{t}-{i}")), verifier());
                    }
                });
            }
        });
        assert_eq!(projects.len(), 200);
        assert_eq!(projects.ids().len(), 200);
        assert_eq!(format!("{projects:?}"), "Projects { len: 200, .. }");
    }

    #[test]
    fn insert_returns_the_replaced_verifier_and_remove_the_removed_one() {
        let projects = Projects::new();
        let first = projects.insert(id("a"), verifier());
        assert!(first.is_none());
        let current = projects.get("a");
        let replaced = projects.insert(id("a"), verifier());
        assert!(matches!((current, replaced), (Some(c), Some(r)) if Arc::ptr_eq(&c, &r)));
        assert_eq!(projects.len(), 1);
        assert!(projects.remove(&id("b")).is_none());
        assert!(projects.remove(&id("a")).is_some());
        assert!(projects.is_empty());
    }
}
