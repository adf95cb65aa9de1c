//! The SMPP socket: one task that owns the TCP connection to the SMSC and drives the sans-IO
//! [`Session`] with bytes and the clock (connect, bind, read, write, its timers through
//! `poll_timeout`, graceful unbind on stop, reconnect after [`Backoff`] delays).
//!
//! Talks to its user over two bounded channels: [`SmppClient::try_submit`] hands it messages
//! (never blocking: a full queue gives the request back) and [`SmppClient::recv`] yields
//! [`SmppEvent`]s, the session's events as they happen plus what only the socket knows
//! (connected, connect failures, requests given back unsent). Buffers are bounded: the submit
//! queue by its capacity, requests the session cannot take yet (not bound, window full,
//! throttle pause) by that same capacity (the queue is not read while any wait), inbound
//! bytes by the session's PDU limit.
//!
//! It must not decide what a message or an event means for a campaign (that is
//! `runtime::campaigns::sms_sender` and the store) nor speak SMPP itself (that is `sms::session`).
//! Credentials are never logged.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::runtime::clock;
use crate::sms::session::{Backoff, Session, SessionConfig, SessionEvent, State, SubmitRequest};

/// How to reach and bind the SMSC.
#[derive(Clone, Debug)]
pub struct SmppSettings {
    /// `host:port` of the SMSC (a name is resolved at each connect).
    pub addr: String,
    pub session: SessionConfig,
    /// How long one TCP connect may take.
    pub connect_timeout: Duration,
    /// Delays between connection attempts (reset after a successful bind).
    pub reconnect: Backoff,
    /// How long a graceful unbind on stop may take before the socket is simply closed.
    pub unbind_grace: Duration,
    /// Capacity of the submit queue and of the event queue.
    pub queue: usize,
}

impl SmppSettings {
    /// Reconnect 1 s, 2 s, 4 s ... 30 s; connect timeout 10 s; 2 s to unbind; queue of
    /// 4 x the session window.
    pub fn new(addr: impl Into<String>, session: SessionConfig) -> SmppSettings {
        let queue = session.window.max(1) * 4;
        SmppSettings {
            addr: addr.into(),
            session,
            connect_timeout: Duration::from_secs(10),
            reconnect: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            unbind_grace: Duration::from_secs(2),
            queue,
        }
    }
}

/// What the socket task reports.
#[derive(Debug)]
pub enum SmppEvent {
    /// TCP is up; the bind is on its way.
    Connected,
    /// The TCP connection could not be made; the next try is after `retry_in`.
    ConnectFailed { reason: String, retry_in: Duration },
    /// One of the session's events (bound, accepted, receipt, inbound, connection lost...).
    Session(SessionEvent),
    /// Requests that never reached the session (it was not bound, or paused) when the
    /// connection ended: nothing of them was sent. Same treatment as `ConnectionLost`'s list.
    Unsent { keys: Vec<u64> },
    /// A request the session refused for good (text or address it cannot send): nothing
    /// was sent.
    Refused { key: u64, reason: String },
}

/// Counters of one socket task's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SmppStats {
    pub connects: u64,
    pub connect_failures: u64,
    pub binds: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub malformed_pdus: u64,
}

/// The user's side of the socket task.
pub struct SmppClient {
    submits: mpsc::Sender<SubmitRequest>,
    events: mpsc::Receiver<SmppEvent>,
    task: JoinHandle<SmppStats>,
}

impl SmppClient {
    /// Starts the socket task; it runs until `stop` is cancelled (then unbinds) or the client
    /// is dropped.
    pub fn start(settings: SmppSettings, stop: CancellationToken) -> SmppClient {
        let (submit_tx, submit_rx) = mpsc::channel(settings.queue.max(1));
        let (event_tx, event_rx) = mpsc::channel(settings.queue.max(1) * 4);
        let task = tokio::spawn(run(settings, submit_rx, event_tx, stop));
        SmppClient {
            submits: submit_tx,
            events: event_rx,
            task,
        }
    }

    /// Queues a message without waiting; gives it back when the queue is full or the task
    /// has ended.
    pub fn try_submit(&self, req: SubmitRequest) -> Result<(), SubmitRequest> {
        self.submits.try_send(req).map_err(|e| match e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
        })
    }

    /// The next event; `None` once the task has ended and every event was read.
    pub async fn recv(&mut self) -> Option<SmppEvent> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SmppEvent> {
        self.events.try_recv().ok()
    }

    /// Waits for the task to end (after `stop`), handing every remaining event to `each`.
    pub async fn finish(mut self, mut each: impl FnMut(SmppEvent)) -> SmppStats {
        drop(self.submits);
        while let Some(e) = self.events.recv().await {
            each(e);
        }
        self.task.await.unwrap_or_default()
    }
}

/// Why one connection's loop ended.
enum Ended {
    /// The session closed (lost, refused, unbound): reconnect unless stopping.
    Closed,
    /// The user is gone: stop at once.
    UserGone,
}

async fn run(
    settings: SmppSettings,
    mut submits: mpsc::Receiver<SubmitRequest>,
    events: mpsc::Sender<SmppEvent>,
    stop: CancellationToken,
) -> SmppStats {
    let mut stats = SmppStats::default();
    let mut session = Session::new(settings.session.clone());
    let mut backoff = settings.reconnect.clone();
    let mut held: VecDeque<SubmitRequest> = VecDeque::new();
    let mut rng = {
        let seed = crate::runtime::clock::os_random::<8>().unwrap_or([7; 8]);
        StdRng::seed_from_u64(u64::from_le_bytes(seed))
    };
    while !stop.is_cancelled() {
        let connect = tokio::time::timeout(
            settings.connect_timeout,
            TcpStream::connect(settings.addr.as_str()),
        );
        let attempt = tokio::select! {
            _ = stop.cancelled() => break,
            r = connect => r,
        };
        let failure = match attempt {
            Ok(Ok(stream)) => {
                stats.connects += 1;
                let _ = stream.set_nodelay(true);
                if events.send(SmppEvent::Connected).await.is_err() {
                    break;
                }
                let ended = drive(
                    &settings,
                    &mut session,
                    &stream,
                    &mut submits,
                    &events,
                    &mut held,
                    &mut backoff,
                    &stop,
                    &mut stats,
                )
                .await;
                let unsent: Vec<u64> = held.drain(..).map(|r| r.key).collect();
                if !unsent.is_empty()
                    && events
                        .send(SmppEvent::Unsent { keys: unsent })
                        .await
                        .is_err()
                {
                    break;
                }
                if matches!(ended, Ended::UserGone) {
                    break;
                }
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no connection within {} s",
                settings.connect_timeout.as_secs()
            )),
        };
        if stop.is_cancelled() {
            break;
        }
        let retry_in = backoff.next_delay(rng.random::<f64>());
        if let Some(reason) = failure {
            stats.connect_failures += 1;
            tracing::warn!(addr = %settings.addr, %reason, retry_in_ms = retry_in.as_millis() as u64, "cannot connect to the SMSC");
            // Requests queued meanwhile cannot go anywhere: give them back.
            let mut unsent: Vec<u64> = held.drain(..).map(|r| r.key).collect();
            while let Ok(r) = submits.try_recv() {
                unsent.push(r.key);
            }
            if !unsent.is_empty()
                && events
                    .send(SmppEvent::Unsent { keys: unsent })
                    .await
                    .is_err()
            {
                break;
            }
            if events
                .send(SmppEvent::ConnectFailed { reason, retry_in })
                .await
                .is_err()
            {
                break;
            }
        } else {
            tracing::info!(addr = %settings.addr, retry_in_ms = retry_in.as_millis() as u64, "SMPP connection over; reconnecting");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
    // Whatever still waits in the queue was never sent.
    let mut unsent: Vec<u64> = held.drain(..).map(|r| r.key).collect();
    submits.close();
    while let Ok(r) = submits.try_recv() {
        unsent.push(r.key);
    }
    if !unsent.is_empty() {
        let _ = events.send(SmppEvent::Unsent { keys: unsent }).await;
    }
    stats.malformed_pdus = session.counters().malformed_pdus;
    stats
}

/// Writes all of `bytes` (the socket is non-blocking; waits for room).
async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One connection: bind, then pump bytes, timers and submits until the session closes.
#[allow(clippy::too_many_arguments)]
async fn drive(
    settings: &SmppSettings,
    session: &mut Session,
    stream: &TcpStream,
    submits: &mut mpsc::Receiver<SubmitRequest>,
    events: &mpsc::Sender<SmppEvent>,
    held: &mut VecDeque<SubmitRequest>,
    backoff: &mut Backoff,
    stop: &CancellationToken,
    stats: &mut SmppStats,
) -> Ended {
    session.connected(clock::now());
    let mut buf = vec![0u8; 16 * 1024];
    let mut unbind_deadline: Option<Instant> = None;
    // When a refused-for-now request may be offered again (end of a throttle pause).
    let mut held_retry_at: Option<Instant> = None;
    loop {
        let now = clock::now();
        // Requests the session could not take before: offer them again, oldest first.
        while let Some(req) = held.front() {
            match session.submit(req.clone(), now) {
                Ok(()) => {
                    held.pop_front();
                    held_retry_at = None;
                }
                Err(e) if e.is_momentary() => {
                    held_retry_at = match e {
                        crate::sms::session::SubmitRejected::Paused { until } => Some(until),
                        _ => None,
                    };
                    break;
                }
                Err(e) => {
                    let key = req.key;
                    held.pop_front();
                    if events
                        .send(SmppEvent::Refused {
                            key,
                            reason: e.to_string(),
                        })
                        .await
                        .is_err()
                    {
                        return Ended::UserGone;
                    }
                }
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            stats.bytes_out += bytes.len() as u64;
            if let Err(e) = write_all(stream, &bytes).await {
                tracing::warn!(error = %e, "SMPP write failed");
                session.disconnected(clock::now());
                break;
            }
        }
        let mut closed = false;
        while let Some(event) = session.poll_event() {
            match &event {
                SessionEvent::Bound { .. } => {
                    stats.binds += 1;
                    backoff.reset();
                    tracing::info!(addr = %settings.addr, "SMPP bound");
                }
                SessionEvent::BindRejected { name, .. } => {
                    tracing::error!(addr = %settings.addr, status = %name, "the SMSC refused the bind (check smpp_system_id / smpp_password)");
                }
                SessionEvent::ConnectionLost { reason, .. } => {
                    tracing::info!(addr = %settings.addr, ?reason, "SMPP connection lost");
                    closed = true;
                }
                _ => {}
            }
            if events.send(SmppEvent::Session(event)).await.is_err() {
                return Ended::UserGone;
            }
        }
        if closed || session.state() == State::Closed {
            // An unbind_resp or generic_nack may still be due.
            while let Some(bytes) = session.poll_transmit() {
                let _ = write_all(stream, &bytes).await;
            }
            return Ended::Closed;
        }
        let deadline = [session.poll_timeout(), unbind_deadline, held_retry_at]
            .into_iter()
            .flatten()
            .min();
        let take_submits = held.is_empty() && unbind_deadline.is_none();
        tokio::select! {
            _ = stop.cancelled(), if unbind_deadline.is_none() => {
                let now = clock::now();
                unbind_deadline = Some(now + settings.unbind_grace);
                session.unbind(now);
            }
            ready = stream.readable() => {
                if ready.is_err() {
                    session.disconnected(clock::now());
                    continue;
                }
                loop {
                    match stream.try_read(&mut buf) {
                        Ok(0) => {
                            session.disconnected(clock::now());
                            break;
                        }
                        Ok(n) => {
                            stats.bytes_in += n as u64;
                            session.on_bytes(&buf[..n], clock::now());
                            if session.state() == State::Closed {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "SMPP read failed");
                            session.disconnected(clock::now());
                            break;
                        }
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let now = clock::now();
                if unbind_deadline.is_some_and(|d| d <= now) {
                    session.disconnected(now);
                } else {
                    session.handle_timeout(now);
                }
            }
            req = submits.recv(), if take_submits => match req {
                Some(req) => match session.submit(req.clone(), clock::now()) {
                    Ok(()) => {}
                    Err(e) if e.is_momentary() => {
                        if let crate::sms::session::SubmitRejected::Paused { until } = e {
                            held_retry_at = Some(until);
                        }
                        held.push_back(req);
                    }
                    Err(e) => {
                        if events
                            .send(SmppEvent::Refused { key: req.key, reason: e.to_string() })
                            .await
                            .is_err()
                        {
                            return Ended::UserGone;
                        }
                    }
                },
                None => {
                    // The user dropped its side: unbind and end.
                    if unbind_deadline.is_none() {
                        let now = clock::now();
                        unbind_deadline = Some(now + settings.unbind_grace);
                        session.unbind(now);
                    }
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
