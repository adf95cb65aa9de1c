//! SMS pacing "like a person": when each of a campaign's sender DIDs may send its next message,
//! and which DID sends to a prospect at what time given the prospect's SMS window.
//!
//! Owns the per-DID rules of the contract (~4 messages per DID per hour, 15-minute gaps):
//! * at most [`SmsPacingConfig::max_per_hour`] sends of one DID in any rolling hour (the next
//!   send waits until the oldest of the last `max_per_hour` is an hour old);
//! * at least [`SmsPacingConfig::min_gap_ms`] between two sends of one DID, plus a jitter drawn
//!   uniformly from `0..=max_jitter_ms` after each send, so the pattern is not periodic
//!   (carriers filter perfectly periodic senders);
//! * spread: the DID ready first sends; among DIDs ready at the same time the least recently
//!   used one (never used first, then list order).
//!
//! The prospect's window is the SMS window (07:00-19:00 local) through the same time-zone rules
//! as voice: [`crate::campaign::window::check`] with the window the caller passes (normally
//! `window::effective_window(Channel::Sms, schedule)`); nothing here copies those rules.
//!
//! It must not do I/O or read the clock: times are Unix milliseconds passed in, and the jitter
//! comes from a generator seeded by the caller. It does not know the store: the runtime
//! records each send it makes (and, after a restart, the recent sends of `messages_since`), and
//! re-checks the window just before the submit, as voice does before the INVITE. To combine
//! with the caller-ID strategies (local presence, sticky, health), give the selector each DID's
//! [`SmsPacer::ready_at_ms`] as its rest (`cooling_until_ms`) so only paced-ready DIDs are
//! eligible.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::window::{self, ClosedReason, LocalWindow, WindowCheck};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// The pacing figures. Defaults: 4 per hour, 15 min gaps, up to 10 min of jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsPacingConfig {
    /// Most sends of one DID in any rolling hour. Default 4 (the contract's "~4 msgs/DID/hr").
    pub max_per_hour: u32,
    /// Least time between two sends of one DID. Default 15 min (the contract's gaps).
    pub min_gap_ms: i64,
    /// Most extra wait drawn after each send. Default 10 min: with 15 min gaps this gives
    /// 15-25 min between sends, about 3 an hour, never a fixed period.
    pub max_jitter_ms: i64,
}

impl Default for SmsPacingConfig {
    fn default() -> Self {
        SmsPacingConfig {
            max_per_hour: 4,
            min_gap_ms: 15 * MINUTE_MS,
            max_jitter_ms: 10 * MINUTE_MS,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmsPacingError {
    #[error("max_per_hour must be at least 1")]
    ZeroPerHour,
    #[error("min_gap_ms and max_jitter_ms must not be negative")]
    NegativeTime,
    #[error("{0} is not one of this pacer's DIDs")]
    UnknownDid(String),
}

#[derive(Clone, Debug)]
struct DidPace {
    number: String,
    /// The most recent sends (at most `max_per_hour`), oldest first.
    sends: VecDeque<i64>,
    /// Earliest next send from the jittered gap (the hourly cap is applied on top).
    gap_ready_at_ms: i64,
}

/// A send the pacer allows: `did` may send at `at_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub did: String,
    pub at_ms: i64,
}

/// The answer for one prospect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProspectSlot {
    /// Send from `did` at `at_ms`: the DID is ready and the prospect's window is open then.
    Send(Slot),
    /// The prospect's window never opens within the look-ahead (or its zone is unknown).
    Closed { reason: ClosedReason },
    /// The pacer has no DIDs.
    NoDids,
}

/// Per-DID pacing of one campaign's senders.
#[derive(Clone, Debug)]
pub struct SmsPacer {
    cfg: SmsPacingConfig,
    dids: Vec<DidPace>,
    rng: StdRng,
}

impl SmsPacer {
    /// A pacer for these DIDs (duplicates ignored), drawing its jitter from `seed`.
    pub fn new(
        dids: impl IntoIterator<Item = String>,
        cfg: SmsPacingConfig,
        seed: u64,
    ) -> Result<SmsPacer, SmsPacingError> {
        if cfg.max_per_hour == 0 {
            return Err(SmsPacingError::ZeroPerHour);
        }
        if cfg.min_gap_ms < 0 || cfg.max_jitter_ms < 0 {
            return Err(SmsPacingError::NegativeTime);
        }
        let mut paces: Vec<DidPace> = Vec::new();
        for number in dids {
            if paces.iter().all(|d| d.number != number) {
                paces.push(DidPace {
                    number,
                    sends: VecDeque::new(),
                    gap_ready_at_ms: i64::MIN,
                });
            }
        }
        Ok(SmsPacer {
            cfg,
            dids: paces,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    pub fn config(&self) -> &SmsPacingConfig {
        &self.cfg
    }

    /// The earliest time this DID may send (any time in the past means "now").
    pub fn ready_at_ms(&self, did: &str) -> Option<i64> {
        self.dids
            .iter()
            .find(|d| d.number == did)
            .map(|d| self.ready_at(d))
    }

    fn ready_at(&self, d: &DidPace) -> i64 {
        let cap = self.cfg.max_per_hour as usize;
        let hourly = if d.sends.len() >= cap {
            d.sends[d.sends.len() - cap] + HOUR_MS
        } else {
            i64::MIN
        };
        d.gap_ready_at_ms.max(hourly)
    }

    /// The DID that may send first at or after `now_ms`, and when. `None` without DIDs.
    pub fn next_slot(&self, now_ms: i64) -> Option<Slot> {
        self.dids
            .iter()
            .enumerate()
            .min_by_key(|(i, d)| {
                let at = self.ready_at(d).max(now_ms);
                let last = d.sends.back().copied().unwrap_or(i64::MIN);
                (at, last, *i)
            })
            .map(|(_, d)| Slot {
                did: d.number.clone(),
                at_ms: self.ready_at(d).max(now_ms),
            })
    }

    /// The first send to `phone` allowed at or after `now_ms`: a ready DID and the prospect's
    /// `window` (in its local time, same rules as voice) open at once.
    pub fn next_slot_for(&self, phone: &str, window: &LocalWindow, now_ms: i64) -> ProspectSlot {
        let Some(slot) = self.next_slot(now_ms) else {
            return ProspectSlot::NoDids;
        };
        match window::check(phone, window, slot.at_ms) {
            WindowCheck::Open { .. } => ProspectSlot::Send(slot),
            WindowCheck::Closed {
                opens_at_ms: Some(opens),
                ..
            } => match self.next_slot(opens) {
                // Every DID ready at `slot.at_ms` is still ready at `opens`: pick among them.
                Some(later) => ProspectSlot::Send(later),
                None => ProspectSlot::NoDids,
            },
            WindowCheck::Closed {
                opens_at_ms: None,
                reason,
            } => ProspectSlot::Closed { reason },
        }
    }

    /// Records a send of `did` at `at_ms` and draws its next gap. Sends may be recorded out of
    /// order (a rebuild after a restart); the gap runs from the latest one.
    pub fn record_send(&mut self, did: &str, at_ms: i64) -> Result<(), SmsPacingError> {
        let cap = self.cfg.max_per_hour as usize;
        let jitter = if self.cfg.max_jitter_ms > 0 {
            self.rng.random_range(0..=self.cfg.max_jitter_ms)
        } else {
            0
        };
        let gap = self.cfg.min_gap_ms + jitter;
        let d = self
            .dids
            .iter_mut()
            .find(|d| d.number == did)
            .ok_or_else(|| SmsPacingError::UnknownDid(did.to_string()))?;
        let pos = d.sends.partition_point(|&t| t <= at_ms);
        d.sends.insert(pos, at_ms);
        while d.sends.len() > cap {
            d.sends.pop_front();
        }
        if let Some(&latest) = d.sends.back() {
            d.gap_ready_at_ms = d.gap_ready_at_ms.max(latest.saturating_add(gap));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::window::{SMS_WINDOW, VOICE_WINDOW};

    /// 2026-07-15 00:00:00 UTC (summer time in New York and London; Hawaii has none).
    const JULY_15_MS: i64 = 1_784_073_600_000;
    /// 2026-01-15 00:00:00 UTC (standard time everywhere).
    const JAN_15_MS: i64 = 1_768_435_200_000;

    fn dids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("+1212555{i:04}")).collect()
    }

    /// Runs a pacer for `span_ms`, sending whenever it allows; returns each DID's send times.
    fn simulate(pacer: &mut SmsPacer, start_ms: i64, span_ms: i64) -> Vec<(String, Vec<i64>)> {
        let mut out: Vec<(String, Vec<i64>)> = pacer
            .dids
            .iter()
            .map(|d| (d.number.clone(), Vec::new()))
            .collect();
        let mut now = start_ms;
        while let Some(slot) = pacer.next_slot(now) {
            if slot.at_ms >= start_ms + span_ms {
                break;
            }
            assert!(slot.at_ms >= now, "a slot in the past");
            pacer.record_send(&slot.did, slot.at_ms).unwrap();
            out.iter_mut()
                .find(|(d, _)| *d == slot.did)
                .unwrap()
                .1
                .push(slot.at_ms);
            now = slot.at_ms;
        }
        out
    }

    fn assert_paced(sends: &[(String, Vec<i64>)], cfg: &SmsPacingConfig) {
        for (did, times) in sends {
            for w in times.windows(2) {
                assert!(
                    w[1] - w[0] >= cfg.min_gap_ms,
                    "{did}: {} ms between two sends",
                    w[1] - w[0]
                );
            }
            // No 60-minute window [t, t + 1 h) starting at any send holds more than the cap.
            for (i, &t) in times.iter().enumerate() {
                let in_hour = times[i..].iter().take_while(|&&u| u < t + HOUR_MS).count();
                assert!(
                    in_hour <= cfg.max_per_hour as usize,
                    "{did}: {in_hour} sends in the hour from {t}"
                );
            }
        }
    }

    #[test]
    fn a_simulated_day_keeps_every_did_under_4_an_hour_15_min_apart_and_irregular() {
        let cfg = SmsPacingConfig::default();
        let mut pacer = SmsPacer::new(dids(3), cfg, 7).unwrap();
        let sends = simulate(&mut pacer, JULY_15_MS, 24 * HOUR_MS);
        assert_paced(&sends, &cfg);
        let counts: Vec<usize> = sends.iter().map(|(_, t)| t.len()).collect();
        // 15-25 min gaps: about 3 an hour, 72 a day per DID, and every DID carries its share.
        for &n in &counts {
            assert!((60..=96).contains(&n), "{counts:?}");
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 2, "uneven spread {counts:?}");
        for (did, times) in &sends {
            let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_unstable();
            gaps.dedup();
            assert!(gaps.len() > times.len() / 2, "{did}: gaps repeat: {gaps:?}");
        }
        // The DIDs interleave rather than one bursting: the first three sends use all three.
        let mut first: Vec<(i64, &str)> = sends
            .iter()
            .flat_map(|(d, t)| t.iter().map(move |&x| (x, d.as_str())))
            .collect();
        first.sort_unstable();
        let mut used: Vec<&str> = first[..3].iter().map(|(_, d)| *d).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), 3);
    }

    #[test]
    fn the_hourly_cap_binds_when_gaps_alone_would_allow_more() {
        // 10 min gaps without jitter would allow 6 an hour; the cap holds it to 4.
        let cfg = SmsPacingConfig {
            max_per_hour: 4,
            min_gap_ms: 10 * MINUTE_MS,
            max_jitter_ms: 0,
        };
        let mut pacer = SmsPacer::new(dids(1), cfg, 1).unwrap();
        let sends = simulate(&mut pacer, 0, 3 * HOUR_MS);
        let minutes: Vec<i64> = sends[0].1.iter().map(|t| t / MINUTE_MS).collect();
        assert_eq!(
            minutes,
            vec![0, 10, 20, 30, 60, 70, 80, 90, 120, 130, 140, 150]
        );
        assert_paced(&sends, &cfg);
    }

    #[test]
    fn jitter_is_seeded() {
        let cfg = SmsPacingConfig::default();
        let run = |seed| {
            simulate(
                &mut SmsPacer::new(dids(2), cfg, seed).unwrap(),
                0,
                6 * HOUR_MS,
            )
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn sends_recorded_out_of_order_rebuild_the_same_state() {
        let cfg = SmsPacingConfig {
            max_jitter_ms: 0,
            ..SmsPacingConfig::default()
        };
        let mut a = SmsPacer::new(dids(1), cfg, 1).unwrap();
        let mut b = SmsPacer::new(dids(1), cfg, 1).unwrap();
        let did = &dids(1)[0];
        for t in [0, 15, 30, 45] {
            a.record_send(did, t * MINUTE_MS).unwrap();
        }
        for t in [30, 0, 45, 15] {
            b.record_send(did, t * MINUTE_MS).unwrap();
        }
        assert_eq!(a.ready_at_ms(did), Some(60 * MINUTE_MS));
        assert_eq!(b.ready_at_ms(did), Some(60 * MINUTE_MS));
        assert_eq!(
            a.record_send("+10000000000", 0),
            Err(SmsPacingError::UnknownDid("+10000000000".into()))
        );
        assert!(
            SmsPacer::new(dids(0), cfg, 1)
                .unwrap()
                .next_slot(0)
                .is_none()
        );
        assert!(
            SmsPacer::new(
                dids(1),
                SmsPacingConfig {
                    max_per_hour: 0,
                    ..cfg
                },
                1
            )
            .is_err()
        );
    }

    fn send_at(slot: ProspectSlot) -> i64 {
        match slot {
            ProspectSlot::Send(s) => s.at_ms,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn window_edges_across_time_zones() {
        let pacer = SmsPacer::new(dids(1), SmsPacingConfig::default(), 1).unwrap();
        let h = |hours: i64, minutes: i64| hours * HOUR_MS + minutes * MINUTE_MS;
        let now = JULY_15_MS + h(10, 30);
        let new_york = "+12125551234";
        let honolulu = "+18085551234";
        let london = "+442071838750";
        // 10:30 UTC: London 11:30 BST is open; New York 06:30 EDT opens at 07:00 (11:00 UTC);
        // Honolulu 00:30 HST opens at 07:00 (17:00 UTC).
        assert_eq!(send_at(pacer.next_slot_for(london, &SMS_WINDOW, now)), now);
        assert_eq!(
            send_at(pacer.next_slot_for(new_york, &SMS_WINDOW, now)),
            JULY_15_MS + h(11, 0)
        );
        assert_eq!(
            send_at(pacer.next_slot_for(honolulu, &SMS_WINDOW, now)),
            JULY_15_MS + h(17, 0)
        );
        // The same rules with the voice window open an hour later (08:00 EDT = 12:00 UTC).
        assert_eq!(
            send_at(pacer.next_slot_for(new_york, &VOICE_WINDOW, now)),
            JULY_15_MS + h(12, 0)
        );
        // Standard time in January: New York opens at 12:00 UTC, London at 07:00 UTC.
        let jan = JAN_15_MS + h(6, 59);
        assert_eq!(
            send_at(pacer.next_slot_for(new_york, &SMS_WINDOW, jan)),
            JAN_15_MS + h(12, 0)
        );
        assert_eq!(
            send_at(pacer.next_slot_for(london, &SMS_WINDOW, jan)),
            JAN_15_MS + h(7, 0)
        );

        // Closing edges: the DID's next slot falls after 19:00 local, so the send moves to
        // 07:00 local the next day. London closes at 18:00 UTC, New York at 23:00 UTC,
        // Honolulu at 05:00 UTC the next day.
        let day2 = JULY_15_MS + 24 * HOUR_MS;
        for (phone, last_send, next_open) in [
            (london, h(17, 50), day2 + h(6, 0)),
            (new_york, h(22, 50), day2 + h(11, 0)),
            (honolulu, h(28, 50), day2 + h(17, 0)),
        ] {
            let mut p = SmsPacer::new(
                dids(1),
                SmsPacingConfig {
                    max_jitter_ms: 0,
                    ..SmsPacingConfig::default()
                },
                1,
            )
            .unwrap();
            let at = JULY_15_MS + last_send;
            p.record_send(&dids(1)[0], at).unwrap();
            // Ready at 19:05 local: past the close.
            assert_eq!(
                send_at(p.next_slot_for(phone, &SMS_WINDOW, at)),
                next_open,
                "{phone}"
            );
            // One minute earlier the last send of the day still fits at 18:59 local.
            let mut q = SmsPacer::new(dids(1), *p.config(), 1).unwrap();
            q.record_send(&dids(1)[0], at - 6 * MINUTE_MS).unwrap();
            assert_eq!(
                send_at(q.next_slot_for(phone, &SMS_WINDOW, at)),
                at + 9 * MINUTE_MS,
                "{phone}"
            );
        }
        // A number without a time zone is never sent to.
        assert!(matches!(
            pacer.next_slot_for("+9991234567", &SMS_WINDOW, now),
            ProspectSlot::Closed { .. }
        ));
    }
}
