//! `Amd::process` per 20 ms frame, beep model included (amortised over whole calls): every
//! golden call is replayed as a live call feeds it, and criterion reports time per frame
//! analysed (the rules-only run analyses slightly different frame counts; compare per frame).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trunx::amd::bench::parse_labels;
use trunx::amd::{AmdConfig, analyse_recording};
use trunx::audio::wav::read_telephone_wav;
use trunx::runtime::amd::files::load_beep_model;

fn amd(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    let labels = parse_labels(&std::fs::read_to_string(dir.join("labels.csv")).unwrap()).unwrap();
    let calls: Vec<Vec<i16>> = labels
        .iter()
        .map(|l| read_telephone_wav(&dir.join(&l.file)).unwrap())
        .collect();
    let config = AmdConfig::default();
    let model = load_beep_model(None, None).expect("make ort");
    // Frames the detector really analyses (it stops once it has decided).
    let frames: u64 = calls
        .iter()
        .map(|pcm| analyse_recording(pcm, &config, Some(model.clone())).1.hops / 2)
        .sum();
    let mut group = c.benchmark_group("amd");
    group.throughput(Throughput::Elements(frames));
    group.sample_size(10);
    group.bench_function("process per frame (golden calls, with model)", |b| {
        b.iter(|| {
            for pcm in &calls {
                black_box(analyse_recording(
                    black_box(pcm),
                    &config,
                    Some(model.clone()),
                ));
            }
        })
    });
    group.bench_function("process per frame (golden calls, rules only)", |b| {
        b.iter(|| {
            for pcm in &calls {
                black_box(analyse_recording(black_box(pcm), &config, None));
            }
        })
    });
    group.finish();
}

/// The per-call AMD record's cost per 20 ms frame (u-law encode, level sum, trace point):
/// 500 frames, the 10 s it keeps, into one preallocated recorder per iteration.
fn amd_record(c: &mut Criterion) {
    use trunx::call::amd_record::AmdRecorder;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    let labels = parse_labels(&std::fs::read_to_string(dir.join("labels.csv")).unwrap()).unwrap();
    let pcm = read_telephone_wav(&dir.join(&labels[0].file)).unwrap();
    let frames: Vec<[i16; 160]> = pcm
        .chunks_exact(160)
        .cycle()
        .take(500)
        .map(|f| f.try_into().unwrap())
        .collect();
    let mut group = c.benchmark_group("amd_record");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("push_frame per frame (10 s)", |b| {
        b.iter_batched(
            AmdRecorder::new,
            |mut r| {
                for (i, f) in frames.iter().enumerate() {
                    r.push_frame(black_box(f), i % 3 == 0, Some(0.5));
                }
                r
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, amd, amd_record);
criterion_main!(benches);
