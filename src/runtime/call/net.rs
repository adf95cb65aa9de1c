//! The trunk's network side of a call, shared by the call task (`dial`) and the SIP agent leg
//! (`sip_leg`): resolving the trunk, the local address towards it, binding RTP port pairs, and
//! where our RTP goes. A leaf: it imports no other call module but `sip_tls` (URI scheme, errors).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use tokio::net::UdpSocket;

use crate::rtp::RtpReceiver;
use crate::runtime::call::sip_tls;
use crate::runtime::clock;

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("invalid trunk {0:?}: expected sip:HOST[:PORT] or sips:HOST[:PORT]")]
    Trunk(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot bind {what}: {reason}")]
    Bind { what: &'static str, reason: String },
    #[error("no free RTP port in {0:?}")]
    NoRtpPort(RangeInclusive<u16>),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] sip_tls::TlsError),
}

/// Resolves `sip:host[:port]` to an address.
pub async fn resolve_trunk(trunk: &str) -> Result<(SocketAddr, String, u16), DialError> {
    let (host, port) = host_port(trunk)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| DialError::Resolve {
            host: host.clone(),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| DialError::Resolve {
            host: host.clone(),
            reason: "no address".into(),
        })?;
    Ok((addr, host, port))
}

/// The source address this host uses towards `trunk` when bound to `bind_ip`.
pub async fn local_ip_towards(bind_ip: IpAddr, trunk: SocketAddr) -> std::io::Result<IpAddr> {
    if bind_ip.is_unspecified() {
        let probe = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?;
        probe.connect(trunk).await?;
        Ok(probe.local_addr()?.ip())
    } else {
        Ok(bind_ip)
    }
}

/// The next hop of a full SIP URI target (`sip:USER@HOST[:PORT][;params]`) dialled with no
/// trunk configured: its host, as `sip:HOST[:PORT]`. A bare number or a URI without a user part
/// has no next hop of its own.
pub fn direct_next_hop(target: &str) -> Option<String> {
    let rest = target.strip_prefix("sip:")?;
    let (user, hostport) = rest.rsplit_once('@')?;
    let hostport = hostport.split([';', '?']).next().unwrap_or(hostport);
    if user.is_empty() || hostport.is_empty() {
        return None;
    }
    let uri = format!("sip:{hostport}");
    host_port(&uri).ok().map(|_| uri)
}

fn host_port(trunk: &str) -> Result<(String, u16), DialError> {
    let rest = trunk
        .strip_prefix("sip:")
        .or_else(|| trunk.strip_prefix("sips:"))
        .ok_or_else(|| DialError::Trunk(trunk.to_string()))?;
    let default_port = if sip_tls::is_tls_uri(trunk) {
        5061
    } else {
        5060
    };
    let hostport = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = hostport.split(';').next().unwrap_or(hostport);
    match hostport.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse().map_err(|_| DialError::Trunk(trunk.to_string()))?,
        )),
        None => Ok((hostport.to_string(), default_port)),
    }
}

/// An even RTP port and the odd RTCP port above it (RFC 3550 §11).
pub(crate) async fn bind_rtp(
    ip: IpAddr,
    ports: &RangeInclusive<u16>,
) -> Result<(UdpSocket, UdpSocket), DialError> {
    let start = *ports.start() & !1;
    let pairs = (*ports.end()).saturating_sub(start).div_ceil(2) as u64;
    // Rotate through the range from a random place instead of taking the lowest free pair: a
    // port freed by an ended call (or left by a crashed process) may still receive its far
    // end's media for a while, and a new call on it would hear two streams.
    let first = next_rtp_pair();
    for i in 0..pairs {
        let port = start + (((first + i) % pairs) * 2) as u16;
        if let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)).await
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await
        {
            return Ok((rtp, rtcp));
        }
    }
    Err(DialError::NoRtpPort(ports.clone()))
}

/// The next RTP port pair (an index into any range) to try: a counter of the process, started
/// at a random place so a restarted process does not begin where the last one did.
fn next_rtp_pair() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    NEXT.get_or_init(|| {
        let nanos = clock::wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        AtomicU64::new(u64::from(nanos >> 4) % 65_536)
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// Where our RTP goes: symmetric RTP answers where the media comes from once it does, else
/// the address the SDP named.
pub(crate) fn media_target(receiver: Option<&RtpReceiver>, sdp: SocketAddr) -> SocketAddr {
    receiver.and_then(|r| r.remote()).unwrap_or(sdp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_uris() {
        assert_eq!(
            host_port("sip:127.0.0.1:5070").unwrap(),
            ("127.0.0.1".into(), 5070)
        );
        assert_eq!(
            host_port("sip:trunk.example.net").unwrap(),
            ("trunk.example.net".into(), 5060)
        );
        assert_eq!(
            host_port("sip:u@h:5080;transport=udp").unwrap(),
            ("h".into(), 5080)
        );
        assert!(host_port("http://x").is_err());
    }

    #[test]
    fn a_full_sip_uri_is_its_own_next_hop() {
        assert_eq!(
            direct_next_hop("sip:+15551230001@127.0.0.1:5062").as_deref(),
            Some("sip:127.0.0.1:5062")
        );
        assert_eq!(
            direct_next_hop("sip:alice@pbx.example.net;transport=udp?x=1").as_deref(),
            Some("sip:pbx.example.net")
        );
        assert_eq!(direct_next_hop("+15551230001"), None);
        assert_eq!(direct_next_hop("sip:pbx.example.net"), None);
        assert_eq!(direct_next_hop("sip:@h"), None);
        assert_eq!(direct_next_hop("sip:u@h:notaport"), None);
    }

    #[tokio::test]
    async fn a_freed_rtp_pair_is_not_taken_again_by_the_next_call() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let range = 36_400..=36_439;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            let (rtp, rtcp) = bind_rtp(ip, &range).await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            assert_eq!(rtcp.local_addr().unwrap().port(), port + 1);
            assert!(range.contains(&port) && port % 2 == 0, "{port}");
            // Each pair is freed at once, yet the next call takes another one.
            assert!(seen.insert(port), "{port} taken twice in {seen:?}");
        }
    }
}
