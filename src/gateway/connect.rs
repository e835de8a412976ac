//! [`CheckedConnector`]: the gateway's connector. It resolves the upstream's name itself,
//! checks every address with the [`UpstreamPolicy`], and connects only to a checked address,
//! so a name that resolves somewhere else at connection time (DNS rebinding) is refused too.
//! `https` upstreams get TLS (rustls, HTTP/1.1) with the system's roots and any the operator
//! adds; the certificate must name the URL's host.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

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
    /// The URL's scheme is neither `http` nor `https`.
    #[error("the upstream's scheme {0} is not supported")]
    Unsupported(String),
    /// The TLS handshake failed (an untrusted certificate, or one that does not name the host).
    #[error("TLS with the upstream failed: {0}")]
    Tls(io::Error),
    /// Resolution or the connection failed.
    #[error("cannot connect to the upstream: {0}")]
    Io(#[from] io::Error),
}

/// A [`tower_service::Service<Uri>`] for hyper-util's pooled client that resolves, checks and
/// connects within one timeout. Cloning is cheap.
#[derive(Clone)]
pub struct CheckedConnector {
    policy: Arc<UpstreamPolicy>,
    timeout: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for CheckedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedConnector")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CheckedConnector {
    /// A connector that allows what `policy` allows, gives resolution, connection and the TLS
    /// handshake `timeout` together, and speaks TLS with `tls` to `https` upstreams.
    pub fn new(
        policy: Arc<UpstreamPolicy>,
        timeout: Duration,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self {
            policy,
            timeout,
            tls: TlsConnector::from(tls),
        }
    }
}

/// A connection to an upstream: plain TCP or TLS over it.
#[derive(Debug)]
pub enum UpstreamStream {
    /// `http`.
    Plain(TokioIo<TcpStream>),
    /// `https`.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl Write for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = UpstreamStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        let timeout = self.timeout;
        let tls = self.tls.clone();
        Box::pin(async move {
            match tokio::time::timeout(timeout, connect(&policy, &tls, &uri)).await {
                Ok(connected) => connected,
                Err(_) => Err(ConnectError::Timeout(timeout)),
            }
        })
    }
}

async fn connect(
    policy: &UpstreamPolicy,
    tls: &TlsConnector,
    uri: &Uri,
) -> Result<UpstreamStream, ConnectError> {
    let (secure, default_port) = match uri.scheme_str().unwrap_or("") {
        "http" => (false, 80),
        "https" => (true, 443),
        other => return Err(ConnectError::Unsupported(other.to_owned())),
    };
    let host = uri
        .host()
        .ok_or(PolicyError::Malformed("has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(default_port);
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
    let mut connected = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                connected = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = connected else {
        return Err(ConnectError::Io(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no address")
        })));
    };
    if !secure {
        return Ok(UpstreamStream::Plain(TokioIo::new(stream)));
    }
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| ConnectError::Refused(PolicyError::Malformed("not a TLS server name")))?;
    let stream = tls.connect(name, stream).await.map_err(ConnectError::Tls)?;
    Ok(UpstreamStream::Tls(Box::new(TokioIo::new(stream))))
}

/// The TLS settings for `https` upstreams: HTTP/1.1, the system's roots (when they can be
/// read) and `extra` roots.
pub(crate) fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = crate::tls::client_config(extra)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
