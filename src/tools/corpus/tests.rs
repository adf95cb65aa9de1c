//! Corpus tests on synthetic ingredients (speech-shaped noise instead of the real prompts and
//! espeak lines), so they need no files.

use super::*;
use crate::audio::rms_dbfs;
use rand::Rng;

/// Speech-shaped noise: pink noise gated by a 4-6 Hz syllable envelope, ~70 ms per character.
fn fake_speech(rng: &mut StdRng, chars: usize) -> Vec<f32> {
    let len = (chars.max(3) * 70 * 8).min(14 * 8000);
    let rate = rng.random_range(4.0f32..6.0);
    let mut pcm = channel::noise(rng, channel::NoiseColour::Pink, len, -20.0);
    for (i, v) in pcm.iter_mut().enumerate() {
        let t = i as f32 / 8000.0;
        *v *= (std::f32::consts::PI * rate * t).sin().abs();
    }
    let mut padded = vec![0.0f32; 400];
    padded.extend(pcm);
    padded.extend(std::iter::repeat_n(0.0, 400));
    padded
}

pub(super) fn fake_ingredients() -> Ingredients {
    let mut rng = StdRng::seed_from_u64(99);
    let mut prompts = BTreeMap::new();
    for name in script::REQUIRED_PROMPTS {
        let pcm = match *name {
            "beep" => {
                let mut b = vec![0.0f32; 200];
                b.extend(
                    (0..3400)
                        .map(|i| 0.12 * (std::f32::consts::TAU * 690.0 * i as f32 / 8000.0).sin()),
                );
                b.extend(std::iter::repeat_n(0.0, 200));
                b
            }
            "ascending-2tone" | "descending-2tone" => (0..1600)
                .map(|i| {
                    let hz = if i < 800 { 440.0 } else { 860.0 };
                    0.25 * (std::f32::consts::TAU * hz * i as f32 / 8000.0).sin()
                })
                .collect(),
            _ => fake_speech(&mut rng, if name.starts_with("digits") { 5 } else { 30 }),
        };
        prompts.insert(name.to_string(), pcm);
    }
    let tts = script::tts_requests()
        .iter()
        .map(|r| fake_speech(&mut rng, r.text.len()))
        .collect();
    let music = vec![(
        "tones".to_string(),
        (0..40 * 8000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                0.1 * (std::f32::consts::TAU * 330.0 * t).sin()
                    + 0.05 * (std::f32::consts::TAU * 523.0 * t).sin() * (t * 2.0).sin()
            })
            .collect(),
    )];
    Ingredients {
        prompts,
        music,
        tts,
    }
}

fn goertzel_dbfs(x: &[f32], hz: f32) -> f32 {
    let w = std::f32::consts::TAU * hz / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    let amp = 2.0 * power.sqrt() / x.len() as f32;
    20.0 * (amp / std::f32::consts::SQRT_2).max(1e-10).log10()
}

fn note<'a>(label: &'a Label, key: &str) -> Option<&'a str> {
    label
        .notes
        .split(';')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Frequencies of a beep from its `beep=` note.
fn beep_freqs(label: &Label) -> Vec<f32> {
    let desc = note(label, "beep").unwrap_or_default();
    if desc.starts_with("recorded") {
        return vec![690.0];
    }
    desc.split(':')
        .nth(1)
        .unwrap_or_default()
        .split(['+', '/'])
        .filter_map(|f| f.parse().ok())
        .collect()
}

#[test]
fn plan_covers_every_category_for_320_calls() {
    let p = plan(320, 7);
    assert_eq!(p.len(), 320);
    for c in Category::ALL {
        let n = p.iter().filter(|x| **x == c).count();
        assert!(n >= 12, "{c:?}: {n}");
    }
    let humans = p.iter().filter(|c| c.truth() == Truth::Human).count();
    assert_eq!(humans, 144);
    assert_eq!(p, plan(320, 7));
    assert_ne!(p, plan(320, 8));
    // Small plans still add up.
    assert_eq!(plan(5, 1).len(), 5);
    assert!(plan(0, 1).is_empty());
}

#[test]
fn same_seed_same_call_different_seed_different_call() {
    let corpus = Corpus::new(&fake_ingredients()).unwrap();
    for (i, c) in Category::ALL.iter().enumerate() {
        let a = corpus.call(7, i, *c);
        let b = corpus.call(7, i, *c);
        assert_eq!(a.pcm, b.pcm, "{c:?}");
        assert_eq!(a.label, b.label);
        let other = corpus.call(8, i, *c);
        assert_ne!(a.pcm, other.pcm, "{c:?}");
    }
}

#[test]
fn every_category_makes_a_plausible_labelled_call() {
    let corpus = Corpus::new(&fake_ingredients()).unwrap();
    for (k, c) in Category::ALL.iter().enumerate() {
        for rep in 0..3 {
            let index = k * 3 + rep;
            let call = corpus.call(3, index, *c);
            let l = &call.label;
            assert_eq!(l.file, file_name(index, *c));
            assert_eq!(l.truth, c.truth());
            assert_eq!(labels::category_of(l), Some(*c));
            assert_eq!(l.beep_ms.is_some(), c.has_beep(), "{c:?}");
            assert!(!l.notes.contains(','));
            let secs = call.pcm.len() as f32 / 8000.0;
            assert!((3.0..40.0).contains(&secs), "{c:?} lasts {secs} s");
            if let Some((s, e)) = l.beep_ms {
                let len = e - s;
                assert!((80..=2000).contains(&len), "{c:?} beep {len} ms");
                // At least 1.5 s of audio after the beep.
                assert!(call.pcm.len() as u64 / 8 >= e + 1500);
            }
            if *c == Category::HumanShort {
                assert!((5.0..=7.2).contains(&secs), "{secs}");
            }
        }
    }
}

#[test]
fn beep_energy_is_inside_the_labelled_span_after_the_channel() {
    let corpus = Corpus::new(&fake_ingredients()).unwrap();
    let beep_cats = [
        Category::MachineShort,
        Category::MachineLong,
        Category::MachineMusic,
        Category::MachineLate,
        Category::MachineBeepSingle,
        Category::MachineBeepDual,
        Category::MachineBeepSeq,
        Category::MachineBeepTriple,
        Category::MachineDecoy,
    ];
    let mut checked = 0;
    for (k, c) in beep_cats.iter().enumerate() {
        for rep in 0..6 {
            let call = corpus.call(11, 100 + k * 6 + rep, *c);
            let (s, e) = call.label.beep_ms.unwrap();
            let freqs = beep_freqs(&call.label);
            assert!(!freqs.is_empty(), "{}", call.label.notes);
            let x: Vec<f32> = call.pcm.iter().map(|&v| f32::from(v) / 32768.0).collect();
            let at = |ms: u64| (ms * 8) as usize;
            // 5 ms windows, tone power at the loudest of the beep's frequencies.
            let power = |from_ms: u64| {
                let w = &x[at(from_ms)..at(from_ms + 5)];
                freqs
                    .iter()
                    .map(|f| goertzel_dbfs(w, *f))
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            let peak = (s..e - 5).map(power).fold(f32::NEG_INFINITY, f32::max);
            // The first and last tone are on right inside the edges...
            for ms in [s + 5, s + 10, e - 15, e - 10] {
                assert!(
                    power(ms) > peak - 14.0,
                    "{}: weak at {ms} ms ({} vs {peak}) [{s},{e}]",
                    call.label.notes,
                    power(ms)
                );
            }
            // ...and nothing of them is outside (5 ms of tolerance for the filter).
            for ms in (s.saturating_sub(90)..s - 5).chain(e + 5..e + 200) {
                if ms + 5 > (x.len() / 8) as u64 {
                    break;
                }
                assert!(
                    power(ms) < peak - 18.0,
                    "{}: tone at {ms} ms ({} vs {peak}) outside [{s},{e}]",
                    call.label.notes,
                    power(ms)
                );
            }
            // The reported level is the level in the file (single, unramped tones).
            let desc = note(&call.label, "beep").unwrap();
            let ramped = call.label.notes.contains("ramp=") || call.label.notes.contains("drift=");
            if desc.starts_with("single") && !ramped && e - s >= 100 {
                let hz = freqs[0];
                let mid = &x[at(s + 20)..at(e - 20)];
                let said: f32 = note(&call.label, "beep_dbfs").unwrap().parse().unwrap();
                let band = channel::band_pass_gain_db(f64::from(hz)) as f32;
                let got = goertzel_dbfs(mid, hz) - band;
                assert!((got - said).abs() < 1.5, "{}: {got} dBFS", call.label.notes);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 54);
}

#[test]
fn human_calls_have_speech_and_machine_calls_have_greetings() {
    let corpus = Corpus::new(&fake_ingredients()).unwrap();
    for (i, c) in [Category::HumanSilent, Category::MachineLate]
        .iter()
        .enumerate()
    {
        let call = corpus.call(5, i, *c);
        let x: Vec<f32> = call.pcm.iter().map(|&v| f32::from(v) / 32768.0).collect();
        // Both start with at least 2 s of near silence.
        assert!(rms_dbfs(&x[..2 * 8000]) < -40.0, "{c:?}");
        assert!(rms_dbfs(&x) > -50.0, "{c:?}");
    }
}

#[test]
fn missing_ingredients_are_named() {
    let mut ing = fake_ingredients();
    ing.prompts.remove("vm-intro");
    assert_eq!(
        Corpus::new(&ing).err(),
        Some(IngredientError::MissingPrompt("vm-intro".into()))
    );
    let mut ing = fake_ingredients();
    ing.tts.pop();
    assert!(matches!(
        Corpus::new(&ing).err(),
        Some(IngredientError::TtsCount { .. })
    ));
    let mut ing = fake_ingredients();
    ing.music.clear();
    assert_eq!(Corpus::new(&ing).err(), Some(IngredientError::NoMusic));
}
