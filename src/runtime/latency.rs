//! A fixed-size latency histogram for the dialer's store calls (`bench load` reads its
//! percentiles). Eight buckets per power of two of microseconds (about 9 % wide), up to
//! 2^24 µs (16.8 s); recording never allocates.
//!
//! Must not: read the clock (callers pass the measured duration).

use std::time::Duration;

const PER_OCTAVE: usize = 8;
const BUCKETS: usize = 24 * PER_OCTAVE + 1;

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            counts: [0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    let i = ((us as f64).log2() * PER_OCTAVE as f64).floor() as usize;
    i.min(BUCKETS - 1)
}

/// The upper edge of bucket `i`, in microseconds.
fn upper_us(i: usize) -> f64 {
    2f64.powf((i + 1) as f64 / PER_OCTAVE as f64)
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        self.counts[bucket(d.as_micros().min(u128::from(u64::MAX)) as u64)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds another histogram's samples (several nodes' calls together).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The `p`-th percentile (nearest rank) in milliseconds, as its bucket's upper edge (at
    /// most ~9 % high); `None` without samples.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_us(i) / 1000.0);
            }
        }
        Some(upper_us(BUCKETS - 1) / 1000.0)
    }
}

/// Serialised as its summary: `{count, p50Ms, p99Ms}`.
impl serde::Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("LatencyHistogram", 3)?;
        st.serialize_field("count", &self.total)?;
        st.serialize_field("p50Ms", &self.percentile_ms(50.0))?;
        st.serialize_field("p99Ms", &self.percentile_ms(99.0))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_land_within_a_bucket_of_the_truth() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile_ms(50.0), None);
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us * 10));
        }
        let p50 = h.percentile_ms(50.0).unwrap();
        let p99 = h.percentile_ms(99.0).unwrap();
        assert!((5.0..=5.5).contains(&p50), "{p50}");
        assert!((9.9..=10.9).contains(&p99), "{p99}");
        let mut two = LatencyHistogram::default();
        two.record(Duration::from_secs(100));
        two.merge(&h);
        assert_eq!(two.count(), 1001);
        assert!(two.percentile_ms(100.0).unwrap() > 16_000.0);
    }
}
