//! The carrier simulator's own record of who was called and when: new calls per number (a
//! number called twice means a dialer dialled a prospect twice) and the most new calls within
//! one second, by arrival time at the carrier. Kept by the SIP task, published as counters.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::MediaCounters;

/// Who was called and when, for the "dialled twice" and calls-per-second counters.
#[derive(Default)]
pub(super) struct CallArrivals {
    per_number: HashMap<String, u64>,
    last_second: std::collections::VecDeque<Instant>,
}

impl CallArrivals {
    /// A new call arrived (its INVITE is `datagram`).
    pub(super) fn new_call(&mut self, datagram: &[u8], now: Instant, out: &MediaCounters) {
        let line = datagram.split(|b| *b == b'\r').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let number = line
            .split_once("sip:")
            .map(|(_, rest)| {
                rest.split(['@', ';', '>', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        let n = self.per_number.entry(number).or_insert(0);
        *n += 1;
        if *n == 2 {
            out.numbers_called_twice.fetch_add(1, Ordering::Relaxed);
        }
        out.max_calls_per_number.fetch_max(*n, Ordering::Relaxed);
        self.last_second.push_back(now);
        while self
            .last_second
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.last_second.pop_front();
        }
        out.peak_calls_per_second
            .fetch_max(self.last_second.len() as u64, Ordering::Relaxed);
    }
}
