//! OPTIONS keepalive to the trunk and the trunk's up/down state. Any final response proves the
//! trunk alive (a 404 or 405 still means it answers); a probe unanswered until Timer F counts as
//! a failure, and `down_after` failures in a row mark it down. Sans-IO like the rest of `sip`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::call::{Timers, Transmit};
use super::message::{self, Incoming};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkState {
    Unknown,
    Up,
    Down,
}

#[derive(Clone, Debug)]
pub struct KeepaliveParams {
    pub trunk_uri: String,
    pub local: SocketAddr,
    pub trunk: SocketAddr,
    pub interval: Duration,
    pub down_after: u32,
    pub timers: Timers,
    pub call_id: String,
    pub seed: u64,
}

struct Probe {
    branch: String,
    bytes: Vec<u8>,
    next_retransmit: Instant,
    retransmit_interval: Duration,
    deadline: Instant,
}

pub struct TrunkMonitor {
    p: KeepaliveParams,
    state: TrunkState,
    failures: u32,
    cseq: u32,
    next_probe: Instant,
    probe: Option<Probe>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TrunkState>,
    last_status: Option<u16>,
}

impl TrunkMonitor {
    /// The first probe goes out at `now`.
    pub fn new(now: Instant, p: KeepaliveParams) -> Self {
        TrunkMonitor {
            p,
            state: TrunkState::Unknown,
            failures: 0,
            cseq: 0,
            next_probe: now,
            probe: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_status: None,
        }
    }

    pub fn state(&self) -> TrunkState {
        self.state
    }

    /// Status of the last answer to a probe.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// State changes, in order.
    pub fn poll_event(&mut self) -> Option<TrunkState> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Instant {
        match &self.probe {
            Some(p) => p.next_retransmit.min(p.deadline),
            None => self.next_probe,
        }
    }

    fn set_state(&mut self, state: TrunkState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(state);
        }
    }

    fn send_probe(&mut self, now: Instant) {
        self.cseq += 1;
        let branch = format!(
            "z9hG4bK{:016x}",
            self.p
                .seed
                .wrapping_add((self.cseq as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
        );
        let bytes = format!(
            "OPTIONS {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:trunx@{}>;tag=ka{:x}\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: {} OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
            self.p.trunk_uri, self.p.local, self.p.local, self.p.seed, self.p.trunk_uri, self.p.call_id, self.cseq
        )
        .into_bytes();
        self.transmits.push_back(Transmit {
            to: self.p.trunk,
            bytes: bytes.clone(),
        });
        self.probe = Some(Probe {
            branch,
            bytes,
            next_retransmit: now + self.p.timers.t1,
            retransmit_interval: self.p.timers.t1,
            deadline: now + self.p.timers.t1 * 64,
        });
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let t2 = self.p.timers.t2;
        match self.probe.as_mut() {
            None if now >= self.next_probe => self.send_probe(now),
            None => {}
            Some(p) if now >= p.deadline => {
                self.probe = None;
                self.failures += 1;
                self.next_probe = now + self.p.interval;
                if self.failures >= self.p.down_after {
                    self.set_state(TrunkState::Down);
                }
            }
            Some(p) if now >= p.next_retransmit => {
                p.retransmit_interval = (p.retransmit_interval * 2).min(t2);
                p.next_retransmit = now + p.retransmit_interval;
                let bytes = p.bytes.clone();
                self.transmits.push_back(Transmit {
                    to: self.p.trunk,
                    bytes,
                });
            }
            Some(_) => {}
        }
    }

    /// Feeds a datagram; returns false when it was not an answer to our probe.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> bool {
        let Ok(Incoming::Response(r)) = message::parse(datagram) else {
            return false;
        };
        let ours = self
            .probe
            .as_ref()
            .is_some_and(|p| p.branch == r.branch && r.cseq_method == "OPTIONS");
        if !ours {
            return false;
        }
        if r.status >= 200 {
            self.probe = None;
            self.failures = 0;
            self.last_status = Some(r.status);
            self.next_probe = now + self.p.interval;
            self.set_state(TrunkState::Up);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(now: Instant) -> TrunkMonitor {
        TrunkMonitor::new(
            now,
            KeepaliveParams {
                trunk_uri: "sip:127.0.0.1:5070".into(),
                local: "127.0.0.1:5062".parse().unwrap(),
                trunk: "127.0.0.1:5070".parse().unwrap(),
                interval: Duration::from_secs(30),
                down_after: 3,
                timers: Timers::default(),
                call_id: "ka@trunx".into(),
                seed: 9,
            },
        )
    }

    fn answer(probe: &[u8], status: u16) -> Vec<u8> {
        let Incoming::Request(r) = message::parse(probe).unwrap() else {
            panic!()
        };
        format!(
            "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=t\r\nCall-ID: {}\r\nCSeq: {} OPTIONS\r\nContent-Length: 0\r\n\r\n",
            r.vias[0], r.from, r.to, r.call_id, r.cseq
        )
        .into_bytes()
    }

    #[test]
    fn up_on_any_final_answer_down_after_three_silent_probes_up_again() {
        let t0 = crate::runtime::clock::now();
        let mut m = monitor(t0);
        m.handle_timeout(t0);
        let probe = m.poll_transmit().unwrap();
        assert!(
            probe
                .bytes
                .starts_with(b"OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\n")
        );
        assert!(m.handle_datagram(t0, &answer(&probe.bytes, 405)));
        assert_eq!(
            (m.state(), m.poll_event()),
            (TrunkState::Up, Some(TrunkState::Up))
        );
        assert_eq!(m.poll_timeout(), t0 + Duration::from_secs(30));

        // Silence from now on: each probe retransmits on Timer E and fails at Timer F.
        let mut now = t0 + Duration::from_secs(30);
        let mut sent = 0;
        while m.state() != TrunkState::Down {
            now = m.poll_timeout().max(now);
            m.handle_timeout(now);
            while m.poll_transmit().is_some() {
                sent += 1;
            }
            assert!(now < t0 + Duration::from_secs(300), "never marked down");
        }
        assert_eq!(m.poll_event(), Some(TrunkState::Down));
        // Three probes of 11 transmissions each (0, .5, 1.5, 3.5, 7.5, then every 4 s to 32 s).
        assert_eq!(sent, 33);
        // The trunk comes back.
        now = m.poll_timeout();
        m.handle_timeout(now);
        let probe = m.poll_transmit().unwrap();
        assert!(m.handle_datagram(now, &answer(&probe.bytes, 200)));
        assert_eq!(m.poll_event(), Some(TrunkState::Up));
        assert_eq!(m.last_status(), Some(200));
    }

    #[test]
    fn other_traffic_is_not_taken_for_an_answer() {
        let t0 = crate::runtime::clock::now();
        let mut m = monitor(t0);
        m.handle_timeout(t0);
        let probe = m.poll_transmit().unwrap();
        let mut other = answer(&probe.bytes, 200);
        let text = String::from_utf8(other)
            .unwrap()
            .replace("branch=z9hG4bK", "branch=z9hG4bKx");
        other = text.into_bytes();
        assert!(!m.handle_datagram(t0, &other));
        assert!(!m.handle_datagram(t0, b"junk"));
        assert_eq!(m.state(), TrunkState::Unknown);
    }
}
