//! One do-not-call lookup in a list of 10 million numbers (the dial-time check).

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use trunx::campaign::dnc::DncSet;

fn lookup(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut numbers: Vec<u64> = (0..10_000_000)
        .map(|_| rng.random_range(12_002_000_000..=19_999_999_999u64))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let probes: Vec<String> = (0..1024)
        .map(|i| {
            let n = if i % 2 == 0 {
                numbers[(i * 9_767) % numbers.len()]
            } else {
                rng.random_range(12_002_000_000..=19_999_999_999u64)
            };
            format!("+{n}")
        })
        .collect();
    let set = DncSet::from_sorted(numbers);
    let mut i = 0usize;
    c.bench_function("dnc_lookup_10m", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(set.contains_phone(black_box(&probes[i])))
        })
    });
}

criterion_group!(benches, lookup);
criterion_main!(benches);
