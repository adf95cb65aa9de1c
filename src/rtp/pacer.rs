//! The send clock: one RTP packet every 20 ms on an absolute grid from the start of sending,
//! so timing never drifts with scheduling delays, and a late wake-up never sends a burst
//! (missed slots are skipped; their time still advances the RTP timestamp).

use std::time::{Duration, Instant};

/// What to put in the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendSlot {
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// Grid slots skipped because the caller woke up late.
    pub skipped: u32,
}

pub struct Pacer {
    start: Instant,
    ptime: Duration,
    samples_per_packet: u32,
    slot: u64,
    sequence: u16,
    timestamp_base: u32,
    talkspurt: bool,
    max_lag_slots: u64,
}

impl Pacer {
    /// `sequence` and `timestamp` are the random initial values (RFC 3550 §5.1).
    pub fn new(start: Instant, sequence: u16, timestamp: u32) -> Self {
        Pacer {
            start,
            ptime: Duration::from_millis(20),
            samples_per_packet: 160,
            slot: 0,
            sequence,
            timestamp_base: timestamp,
            talkspurt: true,
            max_lag_slots: 1,
        }
    }

    /// The next packet carries the marker bit (start of a talk spurt, e.g. a new prompt).
    pub fn start_talkspurt(&mut self) {
        self.talkspurt = true;
    }

    /// Starts a talk spurt whose first packet leaves at `now` rather than at the next slot of
    /// the old grid: the grid moves earlier by less than one packet time, once, at a marker
    /// bit, where receivers re-align their playout anyway. A message dropped after a beep
    /// starts up to 20 ms sooner.
    pub fn start_talkspurt_now(&mut self, now: Instant) {
        self.talkspurt = true;
        let due = self.next_deadline();
        if due > now {
            self.start = self.start.checked_sub(due - now).unwrap_or(self.start);
        }
    }

    pub fn next_deadline(&self) -> Instant {
        self.start + self.ptime * self.slot as u32
    }

    /// The slot to send now, if its time has come. At most one per call.
    pub fn poll(&mut self, now: Instant) -> Option<SendSlot> {
        if now < self.next_deadline() {
            return None;
        }
        let behind =
            (now.duration_since(self.next_deadline()).as_nanos() / self.ptime.as_nanos()) as u64;
        let skipped = behind.saturating_sub(self.max_lag_slots);
        self.slot += skipped;
        let out = SendSlot {
            sequence: self.sequence,
            timestamp: self
                .timestamp_base
                .wrapping_add((self.slot as u32).wrapping_mul(self.samples_per_packet)),
            marker: std::mem::take(&mut self.talkspurt),
            skipped: skipped as u32,
        };
        self.slot += 1;
        self.sequence = self.sequence.wrapping_add(1);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_talkspurt_can_start_now_without_skipping_a_timestamp() {
        let t0 = crate::runtime::clock::now();
        let mut p = Pacer::new(t0, 10, 1000);
        assert!(p.poll(t0).is_some());
        // 7 ms after the first packet: the next slot is 13 ms away on the old grid.
        let now = t0 + Duration::from_millis(7);
        assert!(p.poll(now).is_none());
        p.start_talkspurt_now(now);
        let s = p.poll(now).expect("sent at once");
        assert!(s.marker);
        assert_eq!((s.sequence, s.timestamp, s.skipped), (11, 1160, 0));
        // The grid continues 20 ms after the re-anchored slot.
        assert!(p.poll(now + Duration::from_millis(19)).is_none());
        let n = p.poll(now + Duration::from_millis(20)).unwrap();
        assert_eq!((n.timestamp, n.marker), (1320, false));
    }

    #[test]
    fn grid_is_absolute_and_never_bursts() {
        let t0 = crate::runtime::clock::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let mut p = Pacer::new(t0, 65534, u32::MAX - 159);
        let a = p.poll(ms(0)).unwrap();
        assert!(a.marker);
        assert_eq!(p.poll(ms(5)), None);
        // Woken 3 ms late: still the 20 ms slot, and the next deadline stays on the grid.
        let b = p.poll(ms(23)).unwrap();
        assert_eq!((b.sequence, b.timestamp, b.marker), (65535, 0, false));
        assert_eq!(p.next_deadline(), ms(40));
        // Woken 130 ms late: slots are skipped, one packet goes out, seq stays contiguous.
        let c = p.poll(ms(170)).unwrap();
        assert_eq!(c.sequence, 0);
        assert_eq!(c.skipped, 5);
        assert_eq!(c.timestamp, (u32::MAX - 159).wrapping_add(7 * 160));
        assert_eq!(
            p.poll(ms(170)).map(|s| s.sequence),
            Some(1),
            "one lagging slot follows"
        );
        assert_eq!(p.poll(ms(170)), None);
        p.start_talkspurt();
        assert!(p.poll(ms(200)).unwrap().marker);
    }

    #[test]
    fn ten_thousand_packets_do_not_drift() {
        let t0 = crate::runtime::clock::now();
        let mut p = Pacer::new(t0, 0, 0);
        let mut now = t0;
        let mut sent = 0u64;
        // A caller that always wakes 1.3 ms after each deadline.
        while sent < 10_000 {
            now = p.next_deadline() + Duration::from_micros(1300);
            if p.poll(now).is_some() {
                sent += 1;
            }
        }
        assert_eq!(p.next_deadline(), t0 + Duration::from_millis(20 * 10_000));
        assert!(now < t0 + Duration::from_millis(20 * 10_000));
    }
}
