//! The SIP socket task: one task owns the UDP socket, routes datagrams to the call tasks by
//! Call-ID over bounded channels, and sends what the calls hand it. Call tasks are tracked
//! (`TaskTracker`) and stopped through a `CancellationToken`: on shutdown every call hangs up
//! (CANCEL while ringing, BYE when answered) and the socket stays open until the last call
//! task is done, so those final requests and their answers still flow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sip::call::Transmit;

/// Datagrams queued per call before further ones are dropped (and counted).
const CALL_QUEUE: usize = 64;
/// Datagrams queued for sending.
const SEND_QUEUE: usize = 1024;

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

pub struct SipEndpoint {
    local: SocketAddr,
    out: mpsc::Sender<Transmit>,
    routes: mpsc::Sender<(String, mpsc::Sender<Inbound>)>,
    token: CancellationToken,
    tracker: TaskTracker,
    stats: Arc<EndpointStats>,
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

impl SipEndpoint {
    /// Binds the socket and starts its task.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<SipEndpoint> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let (out, mut out_rx) = mpsc::channel::<Transmit>(SEND_QUEUE);
        let (routes, mut routes_rx) = mpsc::channel::<(String, mpsc::Sender<Inbound>)>(64);
        let tracker = TaskTracker::new();
        let stats = Arc::new(EndpointStats::default());
        let task_stats = stats.clone();
        tracker.spawn(async move {
            let mut calls: HashMap<String, mpsc::Sender<Inbound>> = HashMap::new();
            let mut buf = vec![0u8; 65_535];
            let mut routes_open = true;
            loop {
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { continue };
                        task_stats.received.fetch_add(1, Ordering::Relaxed);
                        let Some(tx) = call_id_of(&buf[..n]).and_then(|id| calls.get(id)) else {
                            // Not one of our calls (a scan, a flood, a stray): never
                            // answered, so never amplified.
                            task_stats.unrouted.fetch_add(1, Ordering::Relaxed);
                            super::metrics::global().sip_dropped.with_label_values(&["unrouted"]).inc();
                            continue;
                        };
                        let inbound = Inbound { from, bytes: buf[..n].to_vec() };
                        if tx.try_send(inbound).is_err() {
                            task_stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                            super::metrics::global().sip_dropped.with_label_values(&["queue_full"]).inc();
                        }
                    }
                    route = routes_rx.recv(), if routes_open => {
                        match route {
                            Some((id, tx)) => {
                                calls.retain(|_, t| !t.is_closed());
                                calls.insert(id, tx);
                            }
                            None => routes_open = false,
                        }
                    }
                    t = out_rx.recv() => {
                        // Every sender gone: the endpoint and all its calls are finished.
                        let Some(t) = t else { break };
                        if socket.send_to(&t.bytes, t.to).await.is_ok() {
                            task_stats.sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        Ok(SipEndpoint {
            local,
            out,
            routes,
            token: CancellationToken::new(),
            tracker,
            stats,
        })
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// An owned handle for placing further calls from inside a call task (the SIP agent leg).
    pub fn handle(&self) -> EndpointHandle {
        EndpointHandle {
            local: self.local,
            out: self.out.clone(),
            routes: self.routes.clone(),
        }
    }

    /// Routes datagrams of `call_id` to the returned receiver.
    pub async fn register(&self, call_id: &str) -> mpsc::Receiver<Inbound> {
        let (tx, rx) = mpsc::channel(CALL_QUEUE);
        let _ = self.routes.send((call_id.to_string(), tx)).await;
        rx
    }

    /// Where a call task queues its datagrams.
    pub fn sender(&self) -> mpsc::Sender<Transmit> {
        self.out.clone()
    }

    /// Cancelled when the endpoint shuts down: call tasks hang up then.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Runs a call task under the endpoint's tracker.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Asks every call to hang up, waits for the call tasks, then for the socket task.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.close();
        drop(self.out);
        drop(self.routes);
        self.tracker.wait().await;
    }
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

/// What a call task needs of the endpoint to place a call of its own: routing and sending.
#[derive(Clone)]
pub struct EndpointHandle {
    local: SocketAddr,
    out: mpsc::Sender<Transmit>,
    routes: mpsc::Sender<(String, mpsc::Sender<Inbound>)>,
}

impl EndpointHandle {
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Routes datagrams of `call_id` to the returned receiver.
    pub async fn register(&self, call_id: &str) -> mpsc::Receiver<Inbound> {
        let (tx, rx) = mpsc::channel(CALL_QUEUE);
        let _ = self.routes.send((call_id.to_string(), tx)).await;
        rx
    }

    pub fn sender(&self) -> mpsc::Sender<Transmit> {
        self.out.clone()
    }
}
