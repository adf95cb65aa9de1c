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

/// Wall-clock Unix milliseconds.
pub fn wall_ms() -> i64 {
    wall_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Bytes from the operating system's generator.
pub fn os_random<const N: usize>() -> Result<[u8; N], std::io::Error> {
    use std::io::Read;
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// CPU-free measure of elapsed seconds since `start`, for benchmarks and reports.
pub fn seconds_since(start: Instant) -> f64 {
    now().duration_since(start).as_secs_f64()
}

/// CPU time consumed by the calling thread, in seconds (for speed figures that do not depend
/// on what else the machine is doing).
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is
    // supported on every Linux trunx runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
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
        let cpu = thread_cpu_seconds();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_seconds() > cpu);
    }
}
