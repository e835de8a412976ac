//! `serve` as a verifying gateway: its flags (the route itself is `admin::App`'s).

use std::time::Duration;

use webhook_guard::gateway::{Gateway, UpstreamPolicy};

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// A destination projects' upstream URLs may name: a host name, an address or a CIDR range
    /// (repeatable). Without one, no project can forward. Link-local and cloud-metadata
    /// addresses are never allowed.
    #[arg(long, value_name = "HOST|CIDR")]
    pub upstream_allow: Vec<String>,
    /// Milliseconds resolving an upstream's name and connecting to it may take.
    #[arg(long, value_name = "MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_connect_timeout_ms: u64,
    /// Milliseconds a whole forward may take (connecting and the upstream's whole answer);
    /// then the sender gets 504. Keep it below --request-timeout-secs.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_ms: u64,
    /// A PEM file of certificates to trust for https upstreams, besides the system's roots (a
    /// private CA, or a self-signed upstream's own certificate).
    #[arg(long, value_name = "PATH")]
    pub upstream_ca_file: Option<std::path::PathBuf>,
}

impl GatewayArgs {
    /// The allow list.
    pub fn policy(&self) -> Result<UpstreamPolicy, String> {
        self.upstream_allow
            .iter()
            .try_fold(UpstreamPolicy::default(), |policy, entry| {
                policy
                    .allow(entry)
                    .map_err(|e| format!("--upstream-allow: {e}"))
            })
    }

    /// The forwarding client.
    pub fn gateway(&self) -> Result<Gateway, String> {
        let mut builder = Gateway::builder(self.policy()?)
            .connect_timeout(Duration::from_millis(self.upstream_connect_timeout_ms))
            .timeout(Duration::from_millis(self.upstream_timeout_ms));
        if let Some(path) = &self.upstream_ca_file {
            for cert in crate::options::pem_certificates("--upstream-ca-file", path)? {
                builder = builder.tls_root(cert);
            }
        }
        builder
            .build()
            .map_err(|e| format!("--upstream-ca-file: {e}"))
    }
}
