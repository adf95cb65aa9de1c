//! Generator 2 on synthetic ingredients (no espeak-ng needed): deterministic, every kind,
//! labels consistent with the audio.

use super::*;

/// Fake speech: 200 Hz-ish buzz bursts as long as the text suggests; fake music: chords.
fn ingredients() -> Ingredients2 {
    let lines = script::lines();
    let tts = lines
        .iter()
        .map(|l| {
            let n = 800 + l.request.text.len() * 480;
            (0..n)
                .map(|i| {
                    let t = i as f32 / 8000.0;
                    let env = (std::f32::consts::PI * 4.0 * t).sin().abs();
                    0.3 * env * (2.0 * std::f32::consts::PI * 210.0 * t).sin().signum()
                })
                .collect()
        })
        .collect();
    let music = vec![
        (0..80_000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                0.2 * ((2.0 * std::f32::consts::PI * 262.0 * t).sin()
                    + (2.0 * std::f32::consts::PI * 330.0 * t).sin())
            })
            .collect(),
    ];
    Ingredients2 { music, tts }
}

/// Power share of `hz` in `x` (Goertzel against total energy).
fn tone_share(x: &[i16], hz: &[f32]) -> f32 {
    let total: f32 = x
        .iter()
        .map(|&s| f32::from(s).powi(2))
        .sum::<f32>()
        .max(1.0);
    let mut at = 0.0;
    for f in hz {
        let w = 2.0 * std::f32::consts::PI * f / 8000.0;
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s0 = f32::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        at += 2.0 * p / x.len() as f32;
    }
    at / total
}

#[test]
fn calls_are_deterministic_cover_every_kind_and_label_their_beeps() {
    let g = Gen2::new(&ingredients()).unwrap();
    let plan = plan(60, 9);
    assert_eq!(plan.len(), 60);
    assert_eq!(
        plan.iter().filter(|k| k.truth() == Truth::Human).count(),
        27
    );
    for k in Kind::ALL {
        assert!(plan.contains(&k), "{k:?}");
    }
    for (i, &kind) in plan.iter().enumerate() {
        let call = g.call(9, i, kind);
        let again = g.call(9, i, kind);
        assert_eq!(call.pcm, again.pcm);
        let l = &call.label;
        assert_eq!(l.category(), kind.name());
        assert!(is_call_file(&l.file), "{}", l.file);
        let tones = l.beep_tones_ms();
        assert_eq!(kind.has_beep(), l.beep_ms.is_some(), "{}", l.notes);
        if let Some((start, end)) = l.beep_ms {
            assert_eq!(tones.first().unwrap().0, start);
            assert_eq!(tones.last().unwrap().1, end);
            assert!(
                end as usize * 8 <= call.pcm.len() - 8000,
                "a tail follows the beep"
            );
        }
        if kind.truth() == Truth::Human {
            assert!(l.first_utterance_end_ms().is_some(), "{}", l.notes);
        } else {
            assert!(l.first_utterance_end_ms().is_none());
        }
        // Every labelled tone is a tone at the labelled frequencies.
        let freqs: Vec<Vec<f32>> = l
            .note("tones")
            .unwrap_or("")
            .split('+')
            .filter(|t| !t.is_empty())
            .map(|t| {
                let hz = t.split_once('@').unwrap().1;
                hz.split('/').map(|f| f.parse().unwrap()).collect()
            })
            .collect();
        assert_eq!(freqs.len(), tones.len());
        for ((a, b), hz) in tones.iter().zip(&freqs) {
            let inner = &call.pcm[(*a as usize + 10) * 8..(*b as usize - 10) * 8];
            let share = tone_share(inner, hz);
            assert!(share > 0.5, "{} tone {a}-{b} {hz:?}: {share}", l.notes);
        }
    }
}

#[test]
fn bad_ingredients_are_typed_errors() {
    let mut ing = ingredients();
    ing.tts.pop();
    assert!(matches!(
        Gen2::new(&ing),
        Err(IngredientError::TtsCount { .. })
    ));
    let mut ing = ingredients();
    ing.music.clear();
    assert!(matches!(Gen2::new(&ing), Err(IngredientError::NoMusic)));
}

#[test]
fn the_first_utterance_ends_at_the_first_long_pause() {
    let tone = |n: usize| -> Vec<f32> { (0..n).map(|i| 0.3 * (i as f32 * 0.7).sin()).collect() };
    let mut track = vec![0.0f32; 800];
    track.extend(tone(4000)); // speech 100-600 ms
    track.extend(vec![0.0; 2400]); // 300 ms breath: same utterance
    track.extend(tone(1600)); // 900-1100 ms
    track.extend(vec![0.0; 4800]); // 600 ms pause ends it
    track.extend(tone(2000));
    assert_eq!(calls::utterance_end(&track), Some(8800));
    assert_eq!(calls::utterance_end(&tone(1000)), Some(1000));
    assert_eq!(calls::utterance_end(&[0.0; 100]), None);
}
