//! Routing received SIP messages to their calls by Call-ID: the datagram type, the socket
//! task's counters and the routing step, shared by the UDP endpoint (`endpoint`) and the TLS
//! connection (`sip_tls`). A leaf of `call`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// A datagram for one call.
#[derive(Debug)]
pub struct Inbound {
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Counters of the socket task.
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub received: AtomicU64,
    pub unrouted: AtomicU64,
    pub dropped_full: AtomicU64,
    pub sent: AtomicU64,
}

/// Hands a received message to its call by Call-ID, or drops it (counted).
pub(super) fn route_inbound(
    calls: &mut HashMap<String, mpsc::Sender<Inbound>>,
    stats: &EndpointStats,
    from: SocketAddr,
    bytes: &[u8],
) {
    stats.received.fetch_add(1, Ordering::Relaxed);
    let Some(tx) = call_id_of(bytes).and_then(|id| calls.get(id)) else {
        // Not one of our calls (a scan, a flood, a stray): never answered, so never
        // amplified.
        stats.unrouted.fetch_add(1, Ordering::Relaxed);
        crate::runtime::metrics::global()
            .sip_dropped
            .with_label_values(&["unrouted"])
            .inc();
        return;
    };
    let inbound = Inbound {
        from,
        bytes: bytes.to_vec(),
    };
    if tx.try_send(inbound).is_err() {
        stats.dropped_full.fetch_add(1, Ordering::Relaxed);
        crate::runtime::metrics::global()
            .sip_dropped
            .with_label_values(&["queue_full"])
            .inc();
    }
}

/// The Call-ID of a datagram without a full parse (`Call-ID:` or compact `i:`).
pub fn call_id_of(datagram: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(datagram).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_is_found_in_full_and_compact_form() {
        assert_eq!(
            call_id_of(b"SIP/2.0 200 OK\r\nCall-ID: abc@h\r\n\r\n"),
            Some("abc@h")
        );
        assert_eq!(
            call_id_of(b"BYE sip:x SIP/2.0\r\ni: q1\r\n\r\n"),
            Some("q1")
        );
        assert_eq!(call_id_of(b"\xff\xfe"), None);
    }
}
