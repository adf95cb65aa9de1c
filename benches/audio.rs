//! Hot-path audio costs: G.711 per 20 ms frame, and preparing a 10 s MP3 prompt.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use trunx::audio::FRAME_SAMPLES;
use trunx::audio::g711::Law;
use trunx::audio::prompt::{Prompt, PromptOptions};

fn g711(c: &mut Criterion) {
    let pcm: [i16; FRAME_SAMPLES] =
        std::array::from_fn(|i| ((i as f32 * 0.7).sin() * 12000.0) as i16);
    let mut codes = [0u8; FRAME_SAMPLES];
    let mut back = [0i16; FRAME_SAMPLES];
    for law in [Law::Ulaw, Law::Alaw] {
        c.bench_function(&format!("g711 {law:?} encode frame"), |b| {
            b.iter(|| law.encode_into(black_box(&pcm), black_box(&mut codes)))
        });
        law.encode_into(&pcm, &mut codes);
        c.bench_function(&format!("g711 {law:?} decode frame"), |b| {
            b.iter(|| law.decode_into(black_box(&codes), black_box(&mut back)))
        });
    }
}

fn prompt(c: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/prompts/voicemail-10s.mp3");
    let options = PromptOptions::default();
    let mut group = c.benchmark_group("prompt");
    group.sample_size(20);
    group.bench_function("load 10 s MP3 44.1 kHz", |b| {
        b.iter(|| Prompt::load(black_box(&path), &options).unwrap())
    });
    group.finish();
}

criterion_group!(benches, g711, prompt);
criterion_main!(benches);
