//! Receive-side RTP session state: the remote SSRC, sequence and timestamp extension across
//! wrap-around, and the RFC 3550 reception statistics (loss, interarrival jitter) that go into
//! RTCP reports. A new SSRC restarts the session; the caller is told so it can resync.

use std::time::Instant;

use super::packet::RtpPacket;

/// Largest forward jump still taken as the same stream (RFC 3550 A.1 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// Largest backward step still taken as reordering (RFC 3550 A.1 MAX_MISORDER).
const MAX_MISORDER: u16 = 100;

/// Where a packet sits in the extended (64-bit) sequence and timestamp space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub ext_seq: u64,
    pub ext_ts: u64,
    /// The stream restarted (new SSRC or a sequence jump): downstream state must resync.
    pub restarted: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    pub ssrc: u32,
    pub received: u64,
    pub expected: u64,
    pub highest_ext_seq: u64,
    /// RFC 3550 interarrival jitter, in timestamp units.
    pub jitter: u32,
    pub restarts: u32,
}

impl ReceiveStats {
    pub fn lost(&self) -> i64 {
        self.expected as i64 - self.received as i64
    }
}

#[derive(Debug)]
pub struct ReceiveSession {
    clock_rate: u32,
    ssrc: Option<u32>,
    base_seq: u64,
    max_seq: u64,
    max_ts: u64,
    received: u64,
    restarts: u32,
    jitter: f64,
    last_transit: Option<f64>,
    start: Option<Instant>,
}

impl ReceiveSession {
    pub fn new(clock_rate: u32) -> Self {
        ReceiveSession {
            clock_rate,
            ssrc: None,
            base_seq: 0,
            max_seq: 0,
            max_ts: 0,
            received: 0,
            restarts: 0,
            jitter: 0.0,
            last_transit: None,
            start: None,
        }
    }

    fn restart(&mut self, p: &RtpPacket) -> Placed {
        if self.ssrc.is_some() {
            self.restarts += 1;
        }
        self.ssrc = Some(p.ssrc);
        // Keep the extended spaces monotonic across restarts so downstream ordering holds:
        // the new stream starts one cycle above everything seen so far.
        let seq_base = (self.max_seq >> 16).wrapping_add(1) << 16;
        let ts_base = (self.max_ts >> 32).wrapping_add(1) << 32;
        let ext_seq = seq_base | p.sequence as u64;
        let ext_ts = ts_base | p.timestamp as u64;
        self.base_seq = ext_seq;
        self.max_seq = ext_seq;
        self.max_ts = ext_ts;
        self.received = 1;
        self.jitter = 0.0;
        self.last_transit = None;
        Placed {
            ext_seq,
            ext_ts,
            restarted: true,
        }
    }

    /// Places a packet (or returns `None` for a stale duplicate far behind the stream).
    pub fn place(&mut self, now: Instant, p: &RtpPacket) -> Option<Placed> {
        self.start.get_or_insert(now);
        let placed = match self.ssrc {
            Some(ssrc) if ssrc == p.ssrc => {
                let highest = self.max_seq as u16;
                let delta = p.sequence.wrapping_sub(highest);
                let ext_seq = if delta < MAX_DROPOUT {
                    // In order, possibly with a gap; wrap adds a cycle.
                    let cycle = if p.sequence < highest {
                        (self.max_seq >> 16) + 1
                    } else {
                        self.max_seq >> 16
                    };
                    (cycle << 16) | p.sequence as u64
                } else if delta > u16::MAX - MAX_MISORDER {
                    // Late or duplicate: belongs to this or the previous cycle.
                    let cycle = if p.sequence > highest {
                        (self.max_seq >> 16).saturating_sub(1)
                    } else {
                        self.max_seq >> 16
                    };
                    let ext = (cycle << 16) | p.sequence as u64;
                    if ext < self.base_seq {
                        return None;
                    }
                    ext
                } else {
                    // A jump too large for loss or reordering: the sender restarted.
                    return Some(self.restart(p));
                };
                let ext_ts = extend_ts(self.max_ts, p.timestamp);
                self.max_seq = self.max_seq.max(ext_seq);
                self.max_ts = self.max_ts.max(ext_ts);
                self.received += 1;
                Placed {
                    ext_seq,
                    ext_ts,
                    restarted: false,
                }
            }
            _ => self.restart(p),
        };
        self.update_jitter(now, placed.ext_ts);
        Some(placed)
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16 with D the change in transit time.
    fn update_jitter(&mut self, now: Instant, ext_ts: u64) {
        let start = self.start.unwrap_or(now);
        let arrival = now.duration_since(start).as_secs_f64() * self.clock_rate as f64;
        let transit = arrival - ext_ts as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    pub fn stats(&self) -> ReceiveStats {
        ReceiveStats {
            ssrc: self.ssrc.unwrap_or(0),
            received: self.received,
            expected: if self.ssrc.is_some() {
                self.max_seq - self.base_seq + 1
            } else {
                0
            },
            highest_ext_seq: self.max_seq,
            jitter: self.jitter as u32,
            restarts: self.restarts,
        }
    }
}

/// Extends a 32-bit timestamp next to the highest extended timestamp seen.
fn extend_ts(max_ts: u64, ts: u32) -> u64 {
    let base = max_ts & !0xFFFF_FFFF;
    let candidate = base | ts as u64;
    let half = 1u64 << 31;
    if candidate + half < max_ts {
        candidate + (1 << 32)
    } else if candidate > max_ts + half && base > 0 {
        candidate - (1 << 32)
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(seq: u16, ts: u32, ssrc: u32) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: ts,
            ssrc,
            payload: bytes::Bytes::from_static(&[0xFF; 160]),
        }
    }

    #[test]
    fn sequence_and_timestamp_extend_across_wrap() {
        let t0 = crate::runtime::clock::now();
        let mut s = ReceiveSession::new(8000);
        let mut ts = u32::MAX - 320;
        let mut last = None;
        for i in 0..6u16 {
            let seq = 65533u16.wrapping_add(i);
            let p = s
                .place(t0 + Duration::from_millis(20 * i as u64), &pkt(seq, ts, 7))
                .unwrap();
            if let Some((ls, lt)) = last {
                assert_eq!(p.ext_seq, ls + 1);
                assert_eq!(p.ext_ts, lt + 160);
            }
            last = Some((p.ext_seq, p.ext_ts));
            ts = ts.wrapping_add(160);
        }
        let st = s.stats();
        assert_eq!((st.received, st.expected, st.lost()), (6, 6, 0));
    }

    #[test]
    fn loss_and_reordering_are_counted() {
        let t0 = crate::runtime::clock::now();
        let mut s = ReceiveSession::new(8000);
        for seq in [10u16, 11, 13, 12, 16] {
            s.place(t0, &pkt(seq, seq as u32 * 160, 1)).unwrap();
        }
        let st = s.stats();
        assert_eq!((st.received, st.expected, st.lost()), (5, 7, 2));
        // A duplicate far behind the start of the stream is refused.
        assert!(s.place(t0, &pkt(5, 800, 1)).is_none());
    }

    #[test]
    fn a_new_ssrc_restarts_above_the_old_stream() {
        let t0 = crate::runtime::clock::now();
        let mut s = ReceiveSession::new(8000);
        let a = s.place(t0, &pkt(60000, 1000, 1)).unwrap();
        let b = s.place(t0, &pkt(5, 50, 2)).unwrap();
        assert!(b.restarted && b.ext_seq > a.ext_seq && b.ext_ts > a.ext_ts);
        let c = s.place(t0, &pkt(30000, 9000, 2)).unwrap();
        assert!(c.restarted, "a jump of 29995 is a restart");
        assert_eq!(s.stats().restarts, 2);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let t0 = crate::runtime::clock::now();
        let mut s = ReceiveSession::new(8000);
        // Every other packet 10 ms late: |D| = 80 timestamp units each time.
        for i in 0..400u64 {
            let late = if i % 2 == 1 { 10 } else { 0 };
            let at = t0 + Duration::from_millis(20 * i + late);
            s.place(at, &pkt(i as u16, (i * 160) as u32, 3)).unwrap();
        }
        let j = s.stats().jitter;
        assert!((75..=81).contains(&j), "{j}");
    }
}
