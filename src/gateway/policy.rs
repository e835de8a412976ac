//! Where deliveries may be forwarded: [`UpstreamUrl`] (the form of an upstream URL) and
//! [`UpstreamPolicy`] (the destinations the operator allows, checked when a URL is set and
//! again, after DNS resolution, for every connection).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use http::uri::{Scheme, Uri};

/// Longest upstream URL accepted, in bytes.
pub const MAX_UPSTREAM_URL_LEN: usize = 2048;

/// Why an upstream URL or destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The URL is not an absolute `http` or `https` URL with a host, or carries credentials or
    /// a fragment.
    #[error("is not a valid upstream URL: {0}")]
    Malformed(&'static str),
    /// The destination is never allowed (link-local, cloud metadata, unspecified, multicast).
    #[error("resolves to {0}, an address that is never allowed (link-local, metadata, unspecified or multicast)")]
    NeverAllowed(IpAddr),
    /// The destination is not on the operator's allow list (`serve --upstream-allow`).
    #[error(
        "resolves to {0}, which is not an allowed upstream destination (serve --upstream-allow)"
    )]
    NotAllowed(IpAddr),
    /// The host name did not resolve.
    #[error("host {host} cannot be resolved: {reason}")]
    Unresolved {
        /// The host.
        host: String,
        /// The resolver's message.
        reason: String,
    },
    /// An allow-list entry is neither a host name nor an address or CIDR range.
    #[error("{0:?} is not a host name, an IP address or a CIDR range")]
    BadEntry(String),
}

/// An upstream URL as the operator set it: absolute `http` or `https`, with a host, no
/// credentials and no fragment, at most [`MAX_UPSTREAM_URL_LEN`] bytes.
///
/// # Examples
///
/// ```
/// use webhook_guard::gateway::UpstreamUrl;
///
/// let url: UpstreamUrl = "http://orders.internal:8080/hooks?src=wg".parse()?;
/// assert_eq!(url.host(), "orders.internal");
/// assert_eq!(url.port(), 8080);
/// assert!("http://user:pw@orders.internal/".parse::<UpstreamUrl>().is_err());
/// assert!("ftp://orders.internal/".parse::<UpstreamUrl>().is_err());
/// # Ok::<(), webhook_guard::gateway::PolicyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    uri: Uri,
    host: String,
    port: u16,
}

impl UpstreamUrl {
    /// The URI requests are sent to.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The host, lower case; an IPv6 address without its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as an address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The URL's text.
    pub fn as_str(&self) -> String {
        self.uri.to_string()
    }
}

impl fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.uri, f)
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uri, f)
    }
}

impl FromStr for UpstreamUrl {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_UPSTREAM_URL_LEN {
            return Err(PolicyError::Malformed("longer than 2048 bytes"));
        }
        if text.contains('#') {
            return Err(PolicyError::Malformed("has a fragment"));
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| PolicyError::Malformed("not an absolute URL"))?;
        let default_port = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => 80,
            Some(s) if *s == Scheme::HTTPS => 443,
            Some(_) => return Err(PolicyError::Malformed("the scheme is not http or https")),
            None => return Err(PolicyError::Malformed("not an absolute URL")),
        };
        let authority = uri
            .authority()
            .ok_or(PolicyError::Malformed("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(PolicyError::Malformed("carries credentials"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(PolicyError::Malformed("has no host"));
        }
        let port = authority.port_u16().unwrap_or(default_port);
        if port == 0 {
            return Err(PolicyError::Malformed("port 0"));
        }
        Ok(Self { uri, host, port })
    }
}

/// An address range, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    base: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let base: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { base, prefix })
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match (self.base, addr) {
            (IpAddr::V4(base), IpAddr::V4(addr)) => {
                prefix_eq(&base.octets(), &addr.octets(), self.prefix)
            }
            (IpAddr::V6(base), IpAddr::V6(addr)) => {
                prefix_eq(&base.octets(), &addr.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let whole = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// Addresses no allow-list entry can open: link-local (where cloud metadata services live),
/// the metadata addresses of Alibaba and AWS's IPv6 endpoint, unspecified (it reaches the
/// local host), broadcast and multicast; IPv4 inside IPv6 (mapped, NAT64) is judged as IPv4.
pub fn never_allowed(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => never_allowed_v4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b, c, d] = [
                    (segments[6] >> 8) as u8,
                    segments[6] as u8,
                    (segments[7] >> 8) as u8,
                    segments[7] as u8,
                ];
                return never_allowed_v4(Ipv4Addr::new(a, b, c, d));
            }
            v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn never_allowed_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    (a == 169 && b == 254)
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
        || a == 0
        || v4.is_broadcast()
        || v4.is_multicast()
}

/// The upstream destinations the operator allows (`serve --upstream-allow HOST|CIDR`). The
/// default allows none.
///
/// A destination is allowed when its address is not [never allowed](never_allowed) and either
/// the URL's host name is on the list or the address is in a listed range. Every address a
/// name resolves to must be allowed; the gateway connects only to addresses it checked.
///
/// # Examples
///
/// ```
/// use webhook_guard::gateway::UpstreamPolicy;
///
/// let policy = UpstreamPolicy::default().allow("10.0.0.0/8")?.allow("orders.internal")?;
/// assert!(policy.check_address("x", "10.1.2.3".parse()?).is_ok());
/// assert!(policy.check_address("orders.internal", "192.0.2.7".parse()?).is_ok());
/// assert!(policy.check_address("x", "127.0.0.1".parse()?).is_err());
/// assert!(policy.check_address("orders.internal", "169.254.169.254".parse()?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamPolicy {
    hosts: Vec<String>,
    ranges: Vec<Range>,
}

impl UpstreamPolicy {
    /// Also allows `entry`: an address (`10.0.0.7`, `::1`), a range (`10.0.0.0/8`,
    /// `fd00::/8`) or a host name (`orders.internal`, matched without regard to case).
    ///
    /// # Errors
    ///
    /// [`PolicyError::BadEntry`] for anything else.
    pub fn allow(mut self, entry: &str) -> Result<Self, PolicyError> {
        let entry = entry.trim();
        if let Some(range) = Range::parse(entry) {
            self.ranges.push(range);
        } else if !entry.is_empty()
            && entry.len() <= 253
            && !entry.contains('/')
            && entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            self.hosts.push(entry.to_ascii_lowercase());
        } else {
            return Err(PolicyError::BadEntry(entry.to_owned()));
        }
        Ok(self)
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.ranges.is_empty()
    }

    /// Checks one address `host` resolved to (or `host` itself, an address).
    ///
    /// # Errors
    ///
    /// [`PolicyError::NeverAllowed`] or [`PolicyError::NotAllowed`].
    pub fn check_address(&self, host: &str, addr: IpAddr) -> Result<(), PolicyError> {
        let addr = addr.to_canonical();
        if never_allowed(addr) {
            return Err(PolicyError::NeverAllowed(addr));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            || self.ranges.iter().any(|r| r.contains(addr))
        {
            Ok(())
        } else {
            Err(PolicyError::NotAllowed(addr))
        }
    }

    /// Checks every address in `addrs` (what `host` resolved to) and returns them, or the first
    /// refusal; an empty list is refused as unresolved.
    ///
    /// # Errors
    ///
    /// As for [`check_address`](UpstreamPolicy::check_address), and
    /// [`PolicyError::Unresolved`] for no address.
    pub fn check_resolved(
        &self,
        host: &str,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, PolicyError> {
        if addrs.is_empty() {
            return Err(PolicyError::Unresolved {
                host: host.to_owned(),
                reason: "no address".into(),
            });
        }
        for addr in &addrs {
            self.check_address(host, addr.ip())?;
        }
        Ok(addrs)
    }

    /// Whether every address, IPv4 and IPv6, is in an allowed range (`0.0.0.0/0` and `::/0`):
    /// then no name needs resolving to be judged (the addresses never allowed are still refused
    /// when connecting).
    fn allows_every_address(&self) -> bool {
        let all = |v4: bool| {
            self.ranges
                .iter()
                .any(|r| r.prefix == 0 && r.base.is_ipv4() == v4)
        };
        all(true) && all(false)
    }

    /// Checks a URL when it is set: its address, or every address its name resolves to now
    /// (this blocks on DNS). A name that does not resolve yet is accepted when it is on the
    /// allow list or every address is allowed (either way it is checked again, resolved, when
    /// connecting); any other name must resolve.
    ///
    /// # Errors
    ///
    /// As for [`check_resolved`](UpstreamPolicy::check_resolved).
    pub fn check_url(&self, url: &UpstreamUrl) -> Result<(), PolicyError> {
        if let Some(ip) = url.ip() {
            return self.check_address(url.host(), ip);
        }
        let listed = self.hosts.iter().any(|h| h == url.host()) || self.allows_every_address();
        match (url.host(), url.port()).to_socket_addrs() {
            Ok(addrs) => self
                .check_resolved(url.host(), addrs.collect())
                .map(drop)
                .or_else(|e| match e {
                    PolicyError::Unresolved { .. } if listed => Ok(()),
                    e => Err(e),
                }),
            Err(_) if listed => Ok(()),
            Err(e) => Err(PolicyError::Unresolved {
                host: url.host().to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_never_allowed() {
        for addr in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            assert!(never_allowed(addr), "{addr}");
            let everything = UpstreamPolicy::default()
                .allow("0.0.0.0/0")
                .unwrap()
                .allow("::/0")
                .unwrap();
            assert!(everything.check_address("h", addr).is_err(), "{addr}");
        }
        for addr in ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "100.100.100.201"] {
            assert!(!never_allowed(addr.parse().unwrap()), "{addr}");
        }
    }

    #[test]
    fn ranges_match_by_prefix() {
        let policy = UpstreamPolicy::default()
            .allow("10.1.0.0/16")
            .unwrap()
            .allow("fd00:1::/32")
            .unwrap()
            .allow("127.0.0.1")
            .unwrap();
        let ok = |a: &str| policy.check_address("h", a.parse().unwrap()).is_ok();
        assert!(ok("10.1.255.3"));
        assert!(!ok("10.2.0.1"));
        assert!(ok("fd00:1:ffff::1"));
        assert!(!ok("fd00:2::1"));
        assert!(ok("127.0.0.1"));
        assert!(ok("::ffff:127.0.0.1"));
        assert!(!ok("127.0.0.2"));
    }

    #[test]
    fn bad_entries_are_refused() {
        for entry in ["", "10.0.0.0/33", "a b", "http://x", "::/129"] {
            assert!(UpstreamPolicy::default().allow(entry).is_err(), "{entry:?}");
        }
    }

    #[test]
    fn urls_are_http_or_https_without_credentials() {
        for bad in [
            "ftp://h/",
            "/relative",
            "http://u:p@h/",
            "http://u@h/",
            "http://h/#frag",
            "http://h:0/",
            "h:80",
        ] {
            assert!(bad.parse::<UpstreamUrl>().is_err(), "{bad}");
        }
        let url: UpstreamUrl = "https://[::1]/x?y=1".parse().unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.port(), 443);
        assert_eq!(url.ip(), Some("::1".parse().unwrap()));
        assert_eq!(url.as_str(), "https://[::1]/x?y=1");
    }
}
