//! [`CheckedConnector`]: the gateway's connector. It resolves the upstream's name itself,
//! checks every address with the [`UpstreamPolicy`], and connects only to a checked address,
//! so a name that resolves somewhere else at connection time (DNS rebinding) is refused too.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::policy::{PolicyError, UpstreamPolicy};

/// Why a connection to an upstream was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The destination is not allowed ([`UpstreamPolicy`]).
    #[error("upstream refused by policy: {0}")]
    Refused(#[from] PolicyError),
    /// Resolving and connecting took longer than the connect timeout.
    #[error("connecting to the upstream took longer than {0:?}")]
    Timeout(Duration),
    /// The URL's scheme has no transport in this build (`https`).
    #[error("the upstream's scheme {0} is not supported")]
    Unsupported(String),
    /// Resolution or the connection failed.
    #[error("cannot connect to the upstream: {0}")]
    Io(#[from] io::Error),
}

/// A [`tower_service::Service<Uri>`] for hyper-util's pooled client that resolves, checks and
/// connects within one timeout. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct CheckedConnector {
    policy: Arc<UpstreamPolicy>,
    timeout: Duration,
}

impl CheckedConnector {
    /// A connector that allows what `policy` allows and gives resolution and connection
    /// `timeout` together.
    pub fn new(policy: Arc<UpstreamPolicy>, timeout: Duration) -> Self {
        Self { policy, timeout }
    }
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connect(&policy, &uri)).await {
                Ok(connected) => connected.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout(timeout)),
            }
        })
    }
}

async fn connect(policy: &UpstreamPolicy, uri: &Uri) -> Result<TcpStream, ConnectError> {
    let scheme = uri.scheme_str().unwrap_or("");
    if scheme != "http" {
        return Err(ConnectError::Unsupported(scheme.to_owned()));
    }
    let host = uri
        .host()
        .ok_or(PolicyError::Malformed("has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| PolicyError::Unresolved {
                host: host.to_owned(),
                reason: e.to_string(),
            })?
            .collect(),
    };
    let addrs = policy.check_resolved(host, addrs)?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no address")
    })))
}
