//! The SIP socket task: one task owns the UDP socket, routes datagrams to the call tasks by
//! Call-ID over bounded channels, and sends what the calls hand it. Call tasks are tracked
//! (`TaskTracker`) and stopped through a `CancellationToken`: on shutdown every call hangs up
//! (CANCEL while ringing, BYE when answered) and the socket stays open until the last call
//! task is done, so those final requests and their answers still flow. A TLS trunk gets a
//! connection task instead of the socket (`sip_tls`), with the same routing and sending.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runtime::call::routing::{EndpointStats, Inbound, route_inbound};
use crate::sip::call::Transmit;

/// Datagrams queued per call before further ones are dropped (and counted).
const CALL_QUEUE: usize = 64;
/// Datagrams queued for sending.
const SEND_QUEUE: usize = 1024;

pub struct SipEndpoint {
    local: SocketAddr,
    out: mpsc::Sender<Transmit>,
    routes: mpsc::Sender<(String, mpsc::Sender<Inbound>)>,
    token: CancellationToken,
    tracker: TaskTracker,
    stats: Arc<EndpointStats>,
    tls: bool,
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
                        route_inbound(&mut calls, &task_stats, from, &buf[..n]);
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
            tls: false,
        })
    }

    /// The endpoint for calls through `trunk_uri`: a UDP socket on `addr`, or for a `sips:` /
    /// `;transport=tls` trunk a TLS connection from `addr`'s IP to `trunk` (verified against
    /// `host`, trusting the webpki roots and `sip_tls::settings().ca_file`).
    pub async fn open(
        addr: SocketAddr,
        trunk_uri: &str,
        trunk: SocketAddr,
        host: &str,
    ) -> Result<SipEndpoint, crate::runtime::call::net::DialError> {
        use crate::runtime::call::net::DialError;
        if !crate::runtime::call::sip_tls::is_tls_uri(trunk_uri) {
            return SipEndpoint::bind(addr).await.map_err(|e| DialError::Bind {
                what: "the SIP socket",
                reason: e.to_string(),
            });
        }
        let settings = crate::runtime::call::sip_tls::settings();
        let config = crate::runtime::call::sip_tls::client_config(settings.ca_file.as_deref())?;
        let stream =
            crate::runtime::call::sip_tls::connect(addr.ip(), trunk, host, config.clone()).await?;
        let local = stream.get_ref().0.local_addr()?;
        let (out, out_rx) = mpsc::channel::<Transmit>(SEND_QUEUE);
        let (routes, routes_rx) = mpsc::channel::<(String, mpsc::Sender<Inbound>)>(64);
        let tracker = TaskTracker::new();
        let stats = Arc::new(EndpointStats::default());
        let connection = crate::runtime::call::sip_tls::Connection {
            trunk,
            server_name: host.to_string(),
            bind_ip: addr.ip(),
            config,
        };
        tracker.spawn(connection.run(stream, out_rx, routes_rx, stats.clone()));
        Ok(SipEndpoint {
            local,
            out,
            routes,
            token: CancellationToken::new(),
            tracker,
            stats,
            tls: true,
        })
    }

    /// Whether SIP goes over TLS to the trunk.
    pub fn is_tls(&self) -> bool {
        self.tls
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
