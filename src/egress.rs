//! Egress policy: which URLs and addresses trunx may fetch (`voicemailAudioUrl`,
//! `identificationAudioUrl`), which URLs name this server's own audio assets, and how URLs are
//! shown in logs and errors.
//!
//! Owns the pure decisions only: scheme and host checks, the table of refused address ranges
//! (IPv4 and IPv6, including IPv4 embedded in IPv6), the allow-list, and URL redaction. It must
//! not resolve names, open sockets or read the clock: `runtime::fetch` resolves, asks
//! [`EgressPolicy::check_ip`] about every address before connecting, and connects only to the
//! addresses that passed, so a DNS answer cannot change between check and use.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// Why an address is not a public unicast address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressRange {
    /// 0.0.0.0/32, `::` (connecting to it reaches the local host on Linux).
    Unspecified,
    /// 0.0.0.0/8 ("this network").
    ThisNetwork,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918).
    Private,
    /// 100.64.0.0/10 (RFC 6598 carrier-grade NAT).
    SharedCgnat,
    /// 169.254.0.0/16, fe80::/10 (cloud metadata services live here).
    LinkLocal,
    /// fc00::/7 (RFC 4193).
    UniqueLocal,
    /// fec0::/10 (deprecated, still routed internally by some networks).
    SiteLocal,
    /// 192.0.0.0/24 (IETF protocol assignments).
    ProtocolAssignments,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 (reserved for future use).
    Reserved,
    /// 255.255.255.255.
    Broadcast,
    /// 100::/64 (discard-only).
    DiscardOnly,
}

impl AddressRange {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressRange::Unspecified => "unspecified",
            AddressRange::ThisNetwork => "this network",
            AddressRange::Loopback => "loopback",
            AddressRange::Private => "private",
            AddressRange::SharedCgnat => "shared CGNAT",
            AddressRange::LinkLocal => "link-local",
            AddressRange::UniqueLocal => "unique local",
            AddressRange::SiteLocal => "site-local",
            AddressRange::ProtocolAssignments => "IETF protocol assignments",
            AddressRange::Documentation => "documentation",
            AddressRange::Benchmarking => "benchmarking",
            AddressRange::Multicast => "multicast",
            AddressRange::Reserved => "reserved",
            AddressRange::Broadcast => "broadcast",
            AddressRange::DiscardOnly => "discard-only",
        }
    }

    /// Ranges `fetch_allow_private` opens: unicast networks an operator may run an asset
    /// server on. Link-local stays closed (169.254.169.254 and its kin are cloud metadata
    /// services, never asset servers), and so does everything that is not unicast.
    pub fn is_internal_unicast(self) -> bool {
        matches!(
            self,
            AddressRange::Loopback
                | AddressRange::Private
                | AddressRange::SharedCgnat
                | AddressRange::UniqueLocal
                | AddressRange::SiteLocal
        )
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v6_in(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The special range an IPv4 address belongs to, or `None` for a public unicast address.
pub fn classify_v4(ip: Ipv4Addr) -> Option<AddressRange> {
    use AddressRange::*;
    let table: [([u8; 4], u32, AddressRange); 19] = [
        ([0, 0, 0, 0], 32, Unspecified),
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 8, ThisNetwork),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([192, 0, 0, 0], 24, ProtocolAssignments),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
        // 6to4 relay anycast (RFC 7526, deprecated): never an asset server.
        ([192, 88, 99, 0], 24, Reserved),
        // AS112 and other well-known sinks are public; nothing else to add for v4.
        ([192, 0, 0, 0], 29, ProtocolAssignments),
        ([192, 0, 0, 170], 31, ProtocolAssignments),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| v4_in(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

/// The IPv4 address an IPv6 address carries, for the forms a connection would reach over
/// IPv4 (or through a local translator): IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and local-use NAT64 `64:ff9b:1::/48`.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return Some(tail);
    }
    // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
    if s[..6] == [0; 6] && u128::from(ip) > 1 {
        return Some(tail);
    }
    if v6_in(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
        || v6_in(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        return Some(tail);
    }
    None
}

/// The special range an IPv6 address belongs to, or `None` for a public unicast address.
/// Embedded IPv4 addresses are judged as IPv4.
pub fn classify_v6(ip: Ipv6Addr) -> Option<AddressRange> {
    use AddressRange::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let table: [([u16; 8], u32, AddressRange); 9] = [
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, SiteLocal),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UniqueLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, Documentation),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Documentation),
        ([0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48, Benchmarking),
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, DiscardOnly),
        // 2001::/23 holds Teredo (2001::/32) and other IETF assignments; none serve audio, and
        // Teredo would tunnel to an address we cannot check.
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, ProtocolAssignments),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| v6_in(ip, *net, *prefix))
        .map(|(_, _, range)| *range)
}

/// The special range of any address, or `None` for a public unicast address.
pub fn classify(ip: IpAddr) -> Option<AddressRange> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The host of a URL: an address (numeric spellings already normalised by the URL parser) or
/// a lower-case name without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlHost {
    Ip(IpAddr),
    Domain(String),
}

pub fn url_host(url: &Url) -> Option<UrlHost> {
    let host = url.host_str().filter(|h| !h.is_empty())?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse()
            .ok()
            .map(|ip: Ipv6Addr| UrlHost::Ip(IpAddr::V6(ip)));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Some(UrlHost::Ip(IpAddr::V4(v4)));
    }
    Some(UrlHost::Domain(
        host.trim_end_matches('.').to_ascii_lowercase(),
    ))
}

/// A refusal of the policy, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("not a valid URL ({reason})")]
    InvalidUrl { reason: String },
    #[error("scheme {scheme}: is not allowed (only http and https)")]
    Scheme { scheme: String },
    #[error("host {host} is not in fetch_allow_hosts")]
    HostNotAllowed { host: String },
    #[error("refused address {addr} ({range}); set fetch_allow_private to allow it")]
    RefusedInternal { addr: IpAddr, range: AddressRange },
    #[error("refused address {addr} ({range})")]
    Refused { addr: IpAddr, range: AddressRange },
}

/// One entry of `fetch_allow_hosts`: an exact host name or address, or `*.domain` for every
/// name below `domain` (not `domain` itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    /// Parses one entry; host names are compared in lower case, IPv6 entries may be bracketed.
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let entry = entry.trim().to_ascii_lowercase();
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        };
        if let Some(domain) = entry.strip_prefix("*.") {
            if valid(domain) && !domain.contains(':') {
                return Ok(HostPattern::Subdomains(domain.to_string()));
            }
        } else {
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if valid(bare) {
                return Ok(HostPattern::Exact(bare.to_string()));
            }
        }
        Err(format!(
            "{entry:?} is not a host name, an address or *.domain"
        ))
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// Which hosts and addresses may be fetched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Empty: any host (whose addresses pass the range check).
    pub allow_hosts: Vec<HostPattern>,
    /// Opens the internal unicast ranges ([`AddressRange::is_internal_unicast`]).
    pub allow_private: bool,
}

impl EgressPolicy {
    /// Checks the scheme and the host name of `url` (not its addresses). An IP literal host
    /// is also checked against the ranges here, since no lookup will happen for it.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(EgressError::Scheme {
                    scheme: other.to_string(),
                });
            }
        }
        let host = url_host(url).ok_or_else(|| EgressError::InvalidUrl {
            reason: "no host".into(),
        })?;
        match host {
            UrlHost::Ip(ip) => {
                self.check_host(&ip.to_string())?;
                self.check_ip(ip)
            }
            UrlHost::Domain(name) => self.check_host(&name),
        }
    }

    /// Checks a host name (lower case, IPv6 without brackets) against the allow-list.
    pub fn check_host(&self, host: &str) -> Result<(), EgressError> {
        let host = host.trim_end_matches('.');
        if self.allow_hosts.is_empty() || self.allow_hosts.iter().any(|p| p.matches(host)) {
            Ok(())
        } else {
            Err(EgressError::HostNotAllowed {
                host: host.to_string(),
            })
        }
    }

    /// Checks one address a connection would go to.
    pub fn check_ip(&self, addr: IpAddr) -> Result<(), EgressError> {
        match classify(addr) {
            None => Ok(()),
            Some(range) if range.is_internal_unicast() && self.allow_private => Ok(()),
            Some(range) if range.is_internal_unicast() => {
                Err(EgressError::RefusedInternal { addr, range })
            }
            Some(range) => Err(EgressError::Refused { addr, range }),
        }
    }

    /// Checks every address of a lookup: one refused address refuses the host (a name that
    /// mixes public and internal answers is treated as hostile), and an empty answer is an
    /// error of the caller.
    pub fn check_all(&self, addrs: &[SocketAddr]) -> Result<(), EgressError> {
        addrs.iter().try_for_each(|a| self.check_ip(a.ip()))
    }
}

/// The origins under which a URL is this server's own: `public_base_url` and the listen
/// address of the API. Asset URLs there are read from the store instead of fetched (the API
/// wants a key, and fetching ourselves over HTTP would be a detour through the network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalOrigins {
    /// `public_base_url`: scheme, host, port and an optional path prefix must all match.
    pub public_base: Option<Url>,
    /// `api_addr`: `http://IP:PORT` with that IP; when the API listens on a loopback or the
    /// unspecified address, `localhost` and loopback IPs at that port match too.
    pub listen: SocketAddr,
}

impl LocalOrigins {
    /// The asset id of `url` if it names `/audio/<id>/file` of this server: the relative path
    /// itself, or an absolute URL under one of the origins. The query is ignored.
    pub fn asset_id(&self, url: &str) -> Option<String> {
        if url.starts_with('/') {
            return asset_path_id(url.split(['?', '#']).next().unwrap_or(""), "");
        }
        let parsed = Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        if let Some(base) = &self.public_base
            && base.scheme() == parsed.scheme()
            && base.host_str() == parsed.host_str()
            && base.port_or_known_default() == parsed.port_or_known_default()
            && let Some(id) = asset_path_id(parsed.path(), base.path().trim_end_matches('/'))
        {
            return Some(id);
        }
        if parsed.scheme() == "http" && parsed.port_or_known_default() == Some(self.listen.port()) {
            let listen_ip = self.listen.ip();
            let wildcard_or_loopback = listen_ip.is_unspecified() || listen_ip.is_loopback();
            let host_matches = match url_host(&parsed) {
                Some(UrlHost::Ip(ip)) => {
                    ip == listen_ip || (wildcard_or_loopback && ip.is_loopback())
                }
                Some(UrlHost::Domain(d)) => wildcard_or_loopback && d == "localhost",
                None => false,
            };
            if host_matches {
                return asset_path_id(parsed.path(), "");
            }
        }
        None
    }
}

fn asset_path_id(path: &str, prefix: &str) -> Option<String> {
    let id = path
        .strip_prefix(prefix)?
        .strip_prefix("/audio/")?
        .strip_suffix("/file")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// `url` for logs and errors: userinfo becomes `***@` and every query value `***`, so tokens
/// and signatures never reach a log line or an API answer. Unparseable input is cut at the
/// first `?` and `@`-prefixed credentials are dropped.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        let head = url.split(['?', '#']).next().unwrap_or("");
        return match head.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((auth, path)) if auth.contains('@') => {
                    let host = auth.rsplit('@').next().unwrap_or("");
                    format!("{scheme}://***@{host}/{path}")
                }
                None if rest.contains('@') => {
                    format!("{scheme}://***@{}", rest.rsplit('@').next().unwrap_or(""))
                }
                _ => head.to_string(),
            },
            None => head.to_string(),
        };
    };
    let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    if had_userinfo {
        // Both calls only fail for URLs that cannot have credentials, which had none.
        let _ = parsed.set_password(None);
        let _ = parsed.set_username("***");
    }
    if parsed.query().is_some() {
        let keys: Vec<String> = parsed
            .query_pairs()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        parsed.set_query(Some(&keys.join("&")));
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> Option<AddressRange> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_v4_range_is_classified() {
        use AddressRange::*;
        let cases = [
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("169.254.169.254", Some(LinkLocal)),
            ("192.0.0.8", Some(ProtocolAssignments)),
            ("192.0.2.10", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.99", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("224.0.0.251", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.88.99.1", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            // Public neighbours of each range.
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("11.0.0.1", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.167.255.255", None),
            ("192.169.0.0", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.253.255.255", None),
            ("126.255.255.255", None),
            ("128.0.0.0", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("223.255.255.255", None),
            ("192.0.1.1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(range(ip), want, "{ip}");
        }
    }

    #[test]
    fn every_v6_range_is_classified_and_embedded_v4_is_judged_as_v4() {
        use AddressRange::*;
        let cases = [
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fe80::1", Some(LinkLocal)),
            ("febf:ffff::1", Some(LinkLocal)),
            ("fec0::1", Some(SiteLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(UniqueLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff:0fff::1", Some(Documentation)),
            ("2001:2::1", Some(Benchmarking)),
            ("100::1", Some(DiscardOnly)),
            ("2001:0::1", Some(ProtocolAssignments)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::10.0.0.1", Some(Private)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b:1::c0a8:1", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::1", None),
            ("2001:4860::8888", None),
            ("3fff:1000::1", None),
            ("fbff:ffff::1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(range(ip), want, "{ip}");
        }
    }

    #[test]
    fn allow_private_opens_only_internal_unicast() {
        let strict = EgressPolicy::default();
        let open = EgressPolicy {
            allow_private: true,
            ..EgressPolicy::default()
        };
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "100.64.0.1",
            "fd00::1",
            "fec0::1",
            "::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                matches!(
                    strict.check_ip(ip),
                    Err(EgressError::RefusedInternal { .. })
                ),
                "{ip}"
            );
            assert_eq!(open.check_ip(ip), Ok(()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "169.254.169.254",
            "fe80::1",
            "224.0.0.1",
            "192.0.2.1",
            "255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                matches!(open.check_ip(ip), Err(EgressError::Refused { .. })),
                "{ip}"
            );
        }
        assert_eq!(strict.check_ip("93.184.215.14".parse().unwrap()), Ok(()));
        let err = strict.check_ip("10.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused address 10.0.0.1 (private); set fetch_allow_private to allow it"
        );
    }

    #[test]
    fn a_lookup_with_one_internal_answer_is_refused() {
        let p = EgressPolicy::default();
        let public: SocketAddr = "93.184.215.14:80".parse().unwrap();
        let internal: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(p.check_all(&[public]), Ok(()));
        assert!(p.check_all(&[public, internal]).is_err());
    }

    #[test]
    fn urls_schemes_hosts_and_literals() {
        let p = EgressPolicy {
            allow_hosts: vec![
                HostPattern::parse("cdn.example.com").unwrap(),
                HostPattern::parse("*.media.example").unwrap(),
                HostPattern::parse("[2606:4700::1]").unwrap(),
                HostPattern::parse("10.0.0.1").unwrap(),
            ],
            allow_private: false,
        };
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(p.check_url(&url("https://cdn.example.com/a.mp3")), Ok(()));
        assert_eq!(p.check_url(&url("https://CDN.Example.com./a.mp3")), Ok(()));
        assert_eq!(p.check_url(&url("http://a.media.example/x")), Ok(()));
        assert_eq!(p.check_url(&url("http://[2606:4700::1]/x")), Ok(()));
        assert!(matches!(
            p.check_url(&url("http://media.example/x")),
            Err(EgressError::HostNotAllowed { .. })
        ));
        assert!(matches!(
            p.check_url(&url("http://evilmedia.example/x")),
            Err(EgressError::HostNotAllowed { .. })
        ));
        assert!(matches!(
            p.check_url(&url("ftp://cdn.example.com/a.mp3")),
            Err(EgressError::Scheme { .. })
        ));
        assert!(matches!(
            p.check_url(&url("file:///etc/passwd")),
            Err(EgressError::Scheme { .. })
        ));
        // Allowed by name, refused by range: both must pass.
        assert!(matches!(
            p.check_url(&url("http://10.0.0.1/a.wav")),
            Err(EgressError::RefusedInternal { .. })
        ));
        let any = EgressPolicy::default();
        // Numeric host spellings are normalised to the address they mean.
        for literal in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                matches!(
                    any.check_url(&url(literal)),
                    Err(EgressError::RefusedInternal {
                        range: AddressRange::Loopback,
                        ..
                    })
                ),
                "{literal}"
            );
        }
        assert!(HostPattern::parse("a b").is_err());
        assert!(HostPattern::parse("*.").is_err());
    }

    #[test]
    fn asset_urls_of_this_server() {
        let origins = LocalOrigins {
            public_base: Some(Url::parse("https://api.trunx.io").unwrap()),
            listen: "0.0.0.0:8080".parse().unwrap(),
        };
        let id = |u: &str| origins.asset_id(u);
        assert_eq!(id("/audio/aud_1/file").as_deref(), Some("aud_1"));
        assert_eq!(
            id("https://api.trunx.io/audio/aud_001/file").as_deref(),
            Some("aud_001")
        );
        assert_eq!(
            id("https://api.trunx.io:443/audio/aud_001/file?x=1").as_deref(),
            Some("aud_001")
        );
        assert_eq!(
            id("http://127.0.0.1:8080/audio/aud_2/file").as_deref(),
            Some("aud_2")
        );
        assert_eq!(
            id("http://localhost:8080/audio/aud_3/file").as_deref(),
            Some("aud_3")
        );
        assert_eq!(
            id("http://[::1]:8080/audio/aud_4/file").as_deref(),
            Some("aud_4")
        );
        for other in [
            "http://api.trunx.io/audio/aud_001/file",
            "https://api.trunx.io:8443/audio/aud_001/file",
            "https://cdn.trunx.io/audio/aud_001/file",
            "https://api.trunx.io/audio/aud_001/file/extra",
            "https://api.trunx.io/audio//file",
            "https://api.trunx.io/media/aud_001/file",
            "http://127.0.0.1:8081/audio/aud_2/file",
            "http://10.0.0.1:8080/audio/aud_2/file",
            "/audio/a/b/file",
        ] {
            assert_eq!(id(other), None, "{other}");
        }
        let prefixed = LocalOrigins {
            public_base: Some(Url::parse("https://example.net/dialer/").unwrap()),
            listen: "10.0.0.5:9000".parse().unwrap(),
        };
        assert_eq!(
            prefixed
                .asset_id("https://example.net/dialer/audio/aud_9/file")
                .as_deref(),
            Some("aud_9")
        );
        assert_eq!(
            prefixed.asset_id("https://example.net/audio/aud_9/file"),
            None
        );
        assert_eq!(
            prefixed
                .asset_id("http://10.0.0.5:9000/audio/aud_8/file")
                .as_deref(),
            Some("aud_8")
        );
        // A specific listen IP does not make every loopback URL ours.
        assert_eq!(
            prefixed.asset_id("http://127.0.0.1:9000/audio/a/file"),
            None
        );
        assert_eq!(
            prefixed.asset_id("http://localhost:9000/audio/a/file"),
            None
        );
    }

    #[test]
    fn redaction_hides_credentials_and_query_values() {
        assert_eq!(
            redact_url("https://user:pw@cdn.example.com/a.mp3?token=s3cr3t&x=1#f"),
            "https://***@cdn.example.com/a.mp3?token=***&x=***"
        );
        assert_eq!(
            redact_url("https://cdn.example.com/a.mp3"),
            "https://cdn.example.com/a.mp3"
        );
        let broken = redact_url("http://u:p@[bad/a?sig=1");
        assert!(
            !broken.contains("u:p") && !broken.contains("sig=1"),
            "{broken}"
        );
    }
}
