use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::Response;
use http_body_util::Full;
use tower_layer::Layer;

use super::budget::{Budget, LargeBodies, DEFAULT_MAX_BUFFERED_BYTES};
use super::report::{RejectionReport, DEFAULT_REJECTION_SUMMARY_EVERY};
use super::{ProjectSelector, Rejection, WebhookService};
use crate::clock::{Clock, SystemClock};
use crate::projects::{ProjectId, Projects};
use crate::replay::ReplayProtection;
use crate::verify::Verifier;

/// Default body limit: 1 MiB. Most deliveries are a few KiB, but a GitHub push with many
/// commits or a Shopify order with many lines runs to hundreds (GitHub caps payloads at 25 MB):
/// lower it to what your senders send. Memory across requests is bounded by
/// [`WebhookLayer::max_buffered_bytes`], not by this limit.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// Default for [`WebhookLayer::stream_from`]: bodies announced at 16 KiB or more, or not
/// announced, are MACed as they arrive. Below it, receiving is faster than setting up the
/// per-key MACs saves (see BENCHMARKS.md).
pub const DEFAULT_STREAM_FROM: u64 = 16 * 1024;

type RejectionFn = dyn Fn(Rejection) -> Response<Full<Bytes>> + Send + Sync;

/// Applies [`WebhookService`] to a service: verify, then pass on or reject.
///
/// See the [module docs](crate::middleware) for examples.
#[derive(Clone)]
pub struct WebhookLayer {
    pub(crate) config: Arc<Config>,
}

pub(crate) struct Config {
    pub(crate) verifiers: Verifiers,
    pub(crate) max_body_size: usize,
    pub(crate) stream_from: Option<u64>,
    pub(crate) on_rejection: Option<Arc<RejectionFn>>,
    pub(crate) detailed_rejections: bool,
    pub(crate) report: RejectionReport,
    pub(crate) budget: Arc<Budget>,
    pub(crate) large: Arc<LargeBodies>,
    pub(crate) replay: Option<ReplayProtection>,
}

/// Where a request's verifier comes from.
#[derive(Clone)]
pub(crate) enum Verifiers {
    /// Every request: [`WebhookLayer::new`].
    One(Arc<Verifier>),
    /// The project the request names: [`WebhookLayer::for_projects`].
    Projects {
        projects: Projects,
        select: ProjectSelector,
    },
}

impl Verifiers {
    /// The verifier for this request, looked up once (one `arc-swap` load for a project), and
    /// the project it belongs to.
    pub(crate) fn resolve(
        &self,
        parts: &Parts,
    ) -> Result<(Arc<Verifier>, Option<ProjectId>), Rejection> {
        match self {
            Self::One(verifier) => Ok((Arc::clone(verifier), None)),
            Self::Projects { projects, select } => {
                let unknown = |id| Rejection::UnknownProject { id };
                let text = select.select(parts).ok_or_else(|| unknown(None))?;
                let id = ProjectId::parse(text).map_err(|_| unknown(None))?;
                match projects.get(id.as_str()) {
                    Some(verifier) => Ok((verifier, Some(id))),
                    None => Err(unknown(Some(id))),
                }
            }
        }
    }
}

impl fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(verifier) => fmt::Debug::fmt(verifier, f),
            Self::Projects { projects, select } => f
                .debug_struct("Projects")
                .field("projects", projects)
                .field("select", select)
                .finish(),
        }
    }
}

/// `Retry-After` of a 503 for a full budget: bodies in flight finish within a few seconds.
const RETRY_AFTER_SECS: u64 = 2;

impl Config {
    pub(crate) fn over_capacity(&self) -> Rejection {
        Rejection::OverCapacity {
            max: self.budget.max(),
            retry_after: RETRY_AFTER_SECS,
        }
    }

    /// Answers `rejection`, logged and counted; `verifier` is the request's, `None` when it has
    /// none (an unknown project).
    pub(crate) fn reject(
        &self,
        verifier: Option<&Verifier>,
        rejection: Rejection,
    ) -> Response<Full<Bytes>> {
        let scheme = verifier.map_or("none", |v| v.scheme().name());
        let status = rejection.status().as_u16();
        let transport = match &rejection {
            Rejection::BodyRead { reason } => reason.as_str(),
            _ => "",
        };
        let kind = rejection.kind();
        tracing::debug!(
            scheme,
            status,
            kind,
            reason = %rejection,
            transport,
            current_key = verifier.map(|v| tracing::field::display(v.keyring().current_id())),
            "webhook rejected"
        );
        let now = match verifier {
            Some(verifier) => verifier.now().now.secs(),
            None => SystemClock.unix_now().0,
        };
        self.report.record(kind, now, scheme);
        match &self.on_rejection {
            Some(f) => f(rejection),
            None if self.detailed_rejections => rejection.into_detailed_response(),
            None => rejection.into_response(),
        }
    }
}

impl WebhookLayer {
    /// A layer verifying with `verifier`, with a 1 MiB body limit and problem+json rejections.
    pub fn new(verifier: Verifier) -> Self {
        Self::with(Verifiers::One(Arc::new(verifier)))
    }

    /// A layer verifying each request with the verifier of the project it names: `select` says
    /// where the project id is (a path segment or a header), `projects` maps it to its
    /// [`Verifier`]. The settings and their defaults are those of [`new`](WebhookLayer::new).
    ///
    /// The verifier is looked up once per request, before its body is read (one `arc-swap`
    /// load), and used for the whole request. A request that names no project, names it twice
    /// or invalidly, or names one that is not in `projects` is answered 404
    /// ([`Rejection::UnknownProject`]) without reading its body or using the body budget. On
    /// success the inner service finds the [`ProjectId`] in the request's extensions beside
    /// [`Verified`](crate::Verified).
    ///
    /// `projects` is shared, not copied: projects inserted or removed later are served or
    /// refused from their next request, and a project's keyring rotates as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::Full;
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use webhook_guard::middleware::{ProjectSelector, WebhookLayer};
    /// use webhook_guard::{scheme::GitHub, Keyring, ProjectId, Projects, Secret, Signer, Verifier};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let secret = Secret::from_bytes("It's a Secret to Everybody")?;
    /// let projects = Projects::new();
    /// projects.insert(ProjectId::parse("prj_1")?, Verifier::new(GitHub, Keyring::new(secret.clone())));
    ///
    /// let layer = WebhookLayer::for_projects(projects, ProjectSelector::path_after("/webhooks/"));
    /// let service = layer.layer(service_fn(|request: Request<Full<Bytes>>| async move {
    ///     let project = request.extensions().get::<ProjectId>().map(ProjectId::to_string);
    ///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(project.unwrap_or_default()))))
    /// }));
    ///
    /// let headers = Signer::new(GitHub, secret).sign(b"{}")?;
    /// let mut request = Request::post("/webhooks/prj_1").body(Full::new(Bytes::from("{}")))?;
    /// *request.headers_mut() = headers.clone();
    /// assert_eq!(service.clone().oneshot(request).await?.status(), StatusCode::OK);
    ///
    /// let mut request = Request::post("/webhooks/prj_2").body(Full::new(Bytes::from("{}")))?;
    /// *request.headers_mut() = headers;
    /// assert_eq!(service.oneshot(request).await?.status(), StatusCode::NOT_FOUND);
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_projects(projects: Projects, select: ProjectSelector) -> Self {
        Self::with(Verifiers::Projects { projects, select })
    }

    fn with(verifiers: Verifiers) -> Self {
        Self {
            config: Arc::new(Config {
                verifiers,
                max_body_size: DEFAULT_MAX_BODY_SIZE,
                stream_from: Some(DEFAULT_STREAM_FROM),
                on_rejection: None,
                detailed_rejections: false,
                report: RejectionReport::new(DEFAULT_REJECTION_SUMMARY_EVERY),
                budget: Budget::new(DEFAULT_MAX_BUFFERED_BYTES),
                large: LargeBodies::per_cpu(),
                replay: None,
            }),
        }
    }

    /// Most bytes of request bodies that all requests through this layer (and its clones) may
    /// hold at once. A request reserves its announced `Content-Length` before reading (refused at
    /// once when it does not fit; a large body when its turn to be read comes, see
    /// [`max_large_bodies`](Self::max_large_bodies)) and every frame as it arrives; what it
    /// holds is given back when the inner service is done. A request that finds the budget used
    /// up is answered 503 with `Retry-After` ([`Rejection::OverCapacity`]), so a flood of large
    /// or held bodies costs at most this much memory instead of exhausting the process. Large
    /// bodies waiting their turn hold none of it, so they cannot crowd small deliveries out.
    /// Default: [`DEFAULT_MAX_BUFFERED_BYTES`] (64 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{middleware::WebhookLayer, scheme::Stripe, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(Stripe, Keyring::new(Secret::from_bytes("s")?));
    /// // At most 16 bodies of 256 KiB in memory at once.
    /// let layer = WebhookLayer::new(verifier)
    ///     .max_body_size(256 * 1024)
    ///     .max_buffered_bytes(4 * 1024 * 1024);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn max_buffered_bytes(mut self, max: usize) -> Self {
        self.config_mut().budget = Budget::new(max);
        self
    }

    /// How many large bodies ([`LARGE_BODY`](super::LARGE_BODY) bytes or more, announced or received) requests
    /// through this layer (and its clones) read and verify at once. The others wait their turn
    /// in arrival order with their bytes unread, so TCP pauses their senders and they cost no
    /// CPU and no [`max_buffered_bytes`](Self::max_buffered_bytes): a flood of large forged
    /// deliveries takes at most `max` workers' worth of HMAC and, while `max` bodies of the
    /// largest size fit in it, never fills the budget small deliveries need (BENCHMARKS.md,
    /// "Fairness"). How long one waits is bounded by the
    /// server's request timeout. Default: one per CPU (`std::thread::available_parallelism`);
    /// at least 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{middleware::WebhookLayer, scheme::GitHub, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?));
    /// // One large body at a time, whatever the machine.
    /// let layer = WebhookLayer::new(verifier).max_large_bodies(1);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn max_large_bodies(mut self, max: usize) -> Self {
        self.config_mut().large = LargeBodies::new(max);
        self
    }

    /// Largest body accepted, in bytes. Default: [`DEFAULT_MAX_BODY_SIZE`] (1 MiB).
    pub fn max_body_size(mut self, limit: usize) -> Self {
        self.config_mut().max_body_size = limit;
        self
    }

    /// Bodies announced (`Content-Length`, or the body's exact size) at `from` bytes or more,
    /// or not announced, are MACed frame by frame as they arrive, for schemes that allow it,
    /// and their headers are checked before the body is read (see the
    /// [module docs](crate::middleware)). `None` buffers every body and verifies it once
    /// complete. Default: [`DEFAULT_STREAM_FROM`] (16 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{middleware::WebhookLayer, scheme::GitHub, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?));
    /// // Always read the whole body first, then verify.
    /// let layer = WebhookLayer::new(verifier).stream_from(None);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn stream_from(mut self, from: Option<u64>) -> Self {
        self.config_mut().stream_from = from;
        self
    }

    /// Sends each rejection's specific text as the problem `detail` ("timestamp is 600s old,
    /// beyond the 300s tolerance", "no signature matched: 1 signature(s) checked against 2 live
    /// key(s)") instead of one sentence per problem type. For development: the specific text
    /// tells outsiders the server's clock, the tolerance and whether a rotation is in its grace
    /// period. It is always logged at debug. Default: `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use webhook_guard::{middleware::WebhookLayer, scheme::GitHub, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?));
    /// let layer = WebhookLayer::new(verifier)
    ///     .detailed_rejections(cfg!(debug_assertions));
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn detailed_rejections(mut self, detailed: bool) -> Self {
        self.config_mut().detailed_rejections = detailed;
        self
    }

    /// How often, at most, rejections are summed up in one `warn` line (counts by kind, written
    /// with the first rejection after the interval). Each rejection is logged at `debug` with its
    /// specific reason, so forged traffic cannot flood the logs at the default level. Default:
    /// [`DEFAULT_REJECTION_SUMMARY_EVERY`] (60 s).
    pub fn rejection_summary_every(mut self, every: Duration) -> Self {
        self.config_mut().report = RejectionReport::new(every);
        self
    }

    /// Replaces the rejection response. Default: [`Rejection::into_response`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use http_body_util::Full;
    /// use webhook_guard::{middleware::WebhookLayer, scheme::Shopify, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(Shopify, Keyring::new(Secret::from_bytes("s")?));
    /// // Tell the sender nothing beyond the status.
    /// let layer = WebhookLayer::new(verifier).on_rejection(|rejection| {
    ///     let mut response = Response::new(Full::new(Bytes::new()));
    ///     *response.status_mut() = rejection.status();
    ///     response
    /// });
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn on_rejection<F>(mut self, f: F) -> Self
    where
        F: Fn(Rejection) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        self.config_mut().on_rejection = Some(Arc::new(f));
        self
    }

    /// Handles each verified delivery once: after the signature and timestamp verified, the
    /// delivery's key is reserved in `protection`'s guard before the inner service is called,
    /// marked done when it answers 2xx and released when it fails (non-2xx, an error, a panic,
    /// its future dropped). A copy of a delivery already handled is answered 200 with
    /// `webhook-guard-duplicate: true` without calling the inner service; one arriving while
    /// another copy is being handled gets 409 `duplicate-in-progress` with `Retry-After`. With
    /// [`for_projects`](WebhookLayer::for_projects), the project is part of the key. Handshake
    /// answers (Twitch, Zoom, Discord) are not guarded. See [`crate::replay`]. Default: off.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_guard::middleware::WebhookLayer;
    /// use webhook_guard::replay::{MemoryGuard, Outage, ReplayProtection};
    /// use webhook_guard::{scheme::GitHub, Keyring, Secret, Verifier};
    ///
    /// let verifier = Verifier::new(GitHub, Keyring::new(Secret::from_bytes("s")?));
    /// // GitHub signs no timestamp: remember deliveries for three days.
    /// let protection = ReplayProtection::new(MemoryGuard::new(1_000_000))
    ///     .retention(Duration::from_secs(72 * 3600))
    ///     .lease(Duration::from_secs(30))
    ///     .on_outage(Outage::FailClosed);
    /// let layer = WebhookLayer::new(verifier).replay_protection(protection);
    /// # Ok::<(), webhook_guard::SecretError>(())
    /// ```
    pub fn replay_protection(mut self, protection: ReplayProtection) -> Self {
        self.config_mut().replay = Some(protection);
        self
    }

    fn config_mut(&mut self) -> &mut Config {
        // Builder methods run before the layer is shared; clone the config if it already is.
        if Arc::get_mut(&mut self.config).is_none() {
            self.config = Arc::new(Config {
                verifiers: self.config.verifiers.clone(),
                max_body_size: self.config.max_body_size,
                stream_from: self.config.stream_from,
                on_rejection: self.config.on_rejection.clone(),
                detailed_rejections: self.config.detailed_rejections,
                report: RejectionReport::new(self.config.report.every()),
                budget: Budget::new(self.config.budget.max()),
                large: LargeBodies::new(self.config.large.max()),
                replay: self.config.replay.clone(),
            });
        }
        Arc::get_mut(&mut self.config).unwrap_or_else(|| unreachable!("just made unique"))
    }
}

impl<S> Layer<S> for WebhookLayer {
    type Service = WebhookService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WebhookService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for WebhookLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayer")
            .field("verifier", &self.config.verifiers)
            .field("max_body_size", &self.config.max_body_size)
            .field("stream_from", &self.config.stream_from)
            .field("max_large_bodies", &self.config.large.max())
            .field("on_rejection", &self.config.on_rejection.is_some())
            .field("detailed_rejections", &self.config.detailed_rejections)
            .field("max_buffered_bytes", &self.config.budget.max())
            .field("replay", &self.config.replay)
            .finish()
    }
}
