//! The one place trunx reads the clock. `clippy.toml` bans every other clock read, so sans-IO
//! code receives `now` as an argument and tests can run on virtual time.

use std::time::{Instant, SystemTime};

/// Monotonic now, for deadlines and durations.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// Wall-clock now, for timestamps that leave the process (records, logs, the API).
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> SystemTime {
    SystemTime::now()
}

/// CPU-free measure of elapsed seconds since `start`, for benchmarks and reports.
pub fn seconds_since(start: Instant) -> f64 {
    now().duration_since(start).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let a = now();
        let b = now();
        assert!(b >= a);
        assert!(seconds_since(a) >= 0.0);
        assert!(wall_now() > SystemTime::UNIX_EPOCH);
    }
}
