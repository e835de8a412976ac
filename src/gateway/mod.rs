//! Forwarding verified deliveries upstream: `webhook-guard serve` as a verifying gateway.
//!
//! A project may have an [`Upstream`]: a URL the operator's [`UpstreamPolicy`] allows. A
//! delivery to `/webhooks/{projectId}` that the [`WebhookLayer`](crate::middleware::WebhookLayer)
//! verified is sent there by [`Gateway::forward`]: the same body bytes, the sender's headers
//! without hop-by-hop ones, and headers naming the outcome, set by the gateway only (the
//! sender's headers starting with `webhook-guard-` are removed first):
//!
//! | header | value |
//! |---|---|
//! | `webhook-guard-project-id` | the project |
//! | `webhook-guard-key-id` | the id of the key whose signature matched |
//! | `webhook-guard-key-role` | `current` or `grace` |
//! | `webhook-guard-webhook-id` | the signed webhook id, for schemes that sign one |
//! | `webhook-guard-timestamp` | the signed timestamp (Unix seconds), for schemes that sign one |
//!
//! The upstream's status, headers and body come back to the sender as they are (a `3xx` too:
//! redirects are not followed). A forward is tried once. Failures are problem documents:
//!
//! | what happened | status | problem type |
//! |---|---|---|
//! | the upstream refused the connection or the TLS handshake, closed it early, or answered with a body over the limit | 502 | `upstream-unavailable` |
//! | its address is not allowed (checked again on every new connection) | 502 | `upstream-refused` |
//! | connecting, or the whole answer, took longer than the timeout | 504 | `upstream-timeout` |
//!
//! # Where deliveries may go
//!
//! Forwarding lets whoever sets an upstream URL make the gateway send requests, so the
//! destinations are the operator's to allow (`serve --upstream-allow HOST|CIDR`): a URL is
//! checked when it is set (its name resolved and every address checked; `400` otherwise), and
//! again on every connection: the [`CheckedConnector`] resolves the name itself, checks every
//! address, and connects only to a checked one, so a name that later resolves elsewhere is
//! refused. Link-local and cloud-metadata addresses (`169.254.0.0/16`, `fe80::/10`,
//! `100.100.100.200`, `fd00:ec2::254`) are [never allowed](never_allowed), whatever the list
//! says.
//!
//! `https` upstreams get TLS (rustls, HTTP/1.1) checked against the system's roots and those
//! added with [`GatewayBuilder::tls_root`].

mod access;
mod connect;
mod forward;
mod policy;

pub use access::{marked_rejection, AccessLog, Rejected};
pub use connect::{CheckedConnector, ConnectError, UpstreamStream};
pub use forward::{
    Delivered, Gateway, GatewayBuilder, Upstream, KEY_ID_HEADER, KEY_ROLE_HEADER,
    PROJECT_ID_HEADER, TIMESTAMP_HEADER, WEBHOOK_ID_HEADER,
};
pub use policy::{never_allowed, PolicyError, UpstreamPolicy, UpstreamUrl, MAX_UPSTREAM_URL_LEN};
