//! SIP over TLS to the trunk (`sips:host[:port]` or `sip:...;transport=tls`, RFC 3261 §18.3
//! and §26.2): one TLS connection (rustls with the ring provider) from the endpoint to the
//! trunk, framed by `sip::stream`, carrying every call's requests and responses.
//!
//! Owns the connection task and the trunk's TLS settings (extra trusted CA, SRTP policy). It
//! must not parse SIP beyond routing by Call-ID (the call tasks do), must not hold more than
//! one message's worth of unread bytes per connection, and never logs keys or messages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types};

use crate::runtime::call::routing::{EndpointStats, Inbound, route_inbound};
use crate::sip::call::Transmit;
use crate::sip::message::MAX_SIP_DATAGRAM;
pub use crate::sip::sdes::SrtpPolicy;
use crate::sip::stream::{StreamFramer, request_for_tls};

/// How long the TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages read from the connection, queued for routing.
const READ_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the trunk CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS connection to the trunk {addr} failed: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// The trunk's TLS settings (config `trunk_tls_ca_file`, `trunk_srtp`), set once at start.
#[derive(Clone, Debug, Default)]
pub struct TrunkTls {
    /// A PEM file of CAs trusted besides the webpki roots (a carrier's private CA).
    pub ca_file: Option<PathBuf>,
    pub srtp: SrtpPolicy,
}

static SETTINGS: RwLock<Option<TrunkTls>> = RwLock::new(None);

/// Sets the trunk's TLS settings for endpoints opened from now on.
pub fn configure(settings: TrunkTls) {
    if let Ok(mut s) = SETTINGS.write() {
        *s = Some(settings);
    }
}

pub fn settings() -> TrunkTls {
    SETTINGS
        .read()
        .ok()
        .and_then(|s| s.clone())
        .unwrap_or_default()
}

/// `sips:` or `;transport=tls`.
pub fn is_tls_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("sips:") || lower.contains(";transport=tls")
}

/// The client config: the webpki roots plus the PEM certificates of `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        use pki_types::pem::PemObject;
        let ca_err = |reason: String| TlsError::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut added = 0;
        for cert in
            pki_types::CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))?
        {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_err("no certificate in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::CaFile {
            path: ca_file.map(Path::to_path_buf).unwrap_or_default(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects from `bind_ip` to the trunk and completes the TLS handshake, verifying the
/// certificate against `server_name` (the trunk URI's host, a name or an IP address).
pub async fn connect(
    bind_ip: std::net::IpAddr,
    trunk: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let name = pki_types::ServerName::try_from(server_name.trim_matches(['[', ']']).to_string())
        .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
    let fail = |reason: String| TlsError::Connect {
        addr: trunk,
        reason,
    };
    let attempt = async {
        let socket = if trunk.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| fail(e.to_string()))?;
        if bind_ip.is_ipv4() == trunk.is_ipv4() {
            socket
                .bind(SocketAddr::new(bind_ip, 0))
                .map_err(|e| fail(e.to_string()))?;
        }
        let tcp = socket
            .connect(trunk)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("TLS handshake: {e}")))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| fail(format!("no connection within {CONNECT_TIMEOUT:?}")))?
}

/// What the reader tells the connection task.
enum Read {
    Message(Vec<u8>),
    Closed(String),
}

/// Reads framed messages until the connection ends or loses its framing.
fn spawn_reader(
    mut read: tokio::io::ReadHalf<TlsStream<TcpStream>>,
    tx: mpsc::Sender<Read>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut framer = StreamFramer::new(MAX_SIP_DATAGRAM);
        let mut buf = vec![0u8; 16 * 1024];
        let reason = loop {
            let n = match read.read(&mut buf).await {
                Ok(0) => break "closed by the trunk".to_string(),
                Ok(n) => n,
                Err(e) => break e.to_string(),
            };
            if let Err(e) = framer.push(&buf[..n]) {
                break e.to_string();
            }
            loop {
                match framer.next_message() {
                    Ok(Some(m)) => {
                        if tx.send(Read::Message(m)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Read::Closed(e.to_string())).await;
                        return;
                    }
                }
            }
        };
        let _ = tx.send(Read::Closed(reason)).await;
    })
}

/// The connection task of a TLS endpoint: routes what the trunk sends by Call-ID and writes
/// what the calls send. A lost connection is opened again for the next message sent.
pub(super) struct Connection {
    pub trunk: SocketAddr,
    pub server_name: String,
    pub bind_ip: std::net::IpAddr,
    pub config: Arc<ClientConfig>,
}

impl Connection {
    pub(super) async fn run(
        self,
        first: TlsStream<TcpStream>,
        mut out_rx: mpsc::Receiver<Transmit>,
        mut routes_rx: mpsc::Receiver<(String, mpsc::Sender<Inbound>)>,
        stats: Arc<EndpointStats>,
    ) {
        let (read_tx, mut read_rx) = mpsc::channel::<Read>(READ_QUEUE);
        let (read, write) = tokio::io::split(first);
        let mut reader = Some(spawn_reader(read, read_tx.clone()));
        let mut writer = Some(write);
        let mut calls = std::collections::HashMap::new();
        let mut routes_open = true;
        loop {
            tokio::select! {
                r = read_rx.recv() => match r {
                    Some(Read::Message(m)) => {
                        route_inbound(&mut calls, &stats, self.trunk, &m);
                    }
                    Some(Read::Closed(reason)) => {
                        tracing::warn!(trunk = %self.trunk, %reason, "SIP TLS connection lost");
                        writer = None;
                    }
                    None => {}
                },
                route = routes_rx.recv(), if routes_open => match route {
                    Some((id, tx)) => {
                        calls.retain(|_, t: &mut mpsc::Sender<_>| !t.is_closed());
                        calls.insert(id, tx);
                    }
                    None => routes_open = false,
                },
                t = out_rx.recv() => {
                    let Some(t) = t else { break };
                    if t.to != self.trunk {
                        // Only the trunk is reachable over this connection.
                        crate::runtime::metrics::global().sip_dropped.with_label_values(&["not_trunk"]).inc();
                        continue;
                    }
                    if writer.is_none() {
                        match connect(self.bind_ip, self.trunk, &self.server_name, self.config.clone()).await {
                            Ok(s) => {
                                let (read, write) = tokio::io::split(s);
                                if let Some(r) = reader.take() {
                                    r.abort();
                                }
                                reader = Some(spawn_reader(read, read_tx.clone()));
                                writer = Some(write);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "SIP TLS reconnect failed");
                                continue;
                            }
                        }
                    }
                    if let Some(w) = writer.as_mut() {
                        let bytes = request_for_tls(&t.bytes);
                        match w.write_all(&bytes).await {
                            Ok(()) => {
                                stats.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "SIP TLS write failed");
                                writer = None;
                            }
                        }
                    }
                }
            }
        }
        if let Some(mut w) = writer {
            let _ = w.shutdown().await;
        }
        if let Some(r) = reader {
            r.abort();
        }
    }
}

/// Our SDP offer under `policy`: with SRTP, a fresh random key (from the OS) in an
/// `a=crypto` line, and `RTP/SAVP` when SRTP is required. Returns the key we send with.
pub fn media_offer(
    policy: SrtpPolicy,
    plain: String,
) -> std::io::Result<(String, Option<crate::sip::sdes::SdesKey>)> {
    if !matches!(policy, SrtpPolicy::Optional | SrtpPolicy::Required) {
        return Ok((plain, None));
    }
    let key = crate::sip::sdes::SdesKey {
        tag: 1,
        key_salt: crate::runtime::clock::os_random::<{ crate::sip::sdes::KEY_SALT_LEN }>()?,
    };
    let offer = crate::sip::sdes::secure_offer(&plain, policy == SrtpPolicy::Required, &key);
    Ok((offer, Some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_trunks_are_sips_or_transport_tls_and_default_to_5061() {
        assert!(is_tls_uri("sips:trunk.example.net"));
        assert!(is_tls_uri("sip:trunk.example.net:5061;transport=TLS"));
        assert!(!is_tls_uri("sip:trunk.example.net;transport=udp"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let port = |uri: &str| {
            rt.block_on(crate::runtime::call::net::resolve_trunk(uri))
                .unwrap()
                .2
        };
        assert_eq!(port("sips:127.0.0.1"), 5061);
        assert_eq!(port("sip:127.0.0.1;transport=tls"), 5061);
        assert_eq!(port("sips:127.0.0.1:7061"), 7061);
        assert_eq!(port("sip:127.0.0.1"), 5060);
    }

    #[test]
    fn srtp_is_required_over_tls_and_off_over_udp_unless_configured() {
        assert_eq!(SrtpPolicy::Auto.effective(true), SrtpPolicy::Required);
        assert_eq!(SrtpPolicy::Auto.effective(false), SrtpPolicy::Off);
        assert_eq!(SrtpPolicy::Off.effective(true), SrtpPolicy::Off);
        assert_eq!(SrtpPolicy::parse("optional"), Ok(SrtpPolicy::Optional));
        assert!(SrtpPolicy::parse("yes").is_err());
        let (offer, key) =
            media_offer(SrtpPolicy::Required, "m=audio 4 RTP/AVP 0\r\n".into()).unwrap();
        assert!(
            offer.starts_with("m=audio 4 RTP/SAVP 0\r\na=crypto:1 "),
            "{offer}"
        );
        assert_eq!(offer.matches("a=crypto:").count(), 1);
        assert!(key.is_some());
        let (plain, none) = media_offer(SrtpPolicy::Off, "m=audio 4 RTP/AVP 0\r\n".into()).unwrap();
        assert_eq!((plain.as_str(), none), ("m=audio 4 RTP/AVP 0\r\n", None));
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = client_config(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("none.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no certificate in the file"), "{e}");
        assert!(client_config(None).is_ok());
    }
}
