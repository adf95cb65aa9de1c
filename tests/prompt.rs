//! Prompt decoding of every supported container, checked by measuring a 1 kHz tone after
//! conversion to 8 kHz: its frequency, its level before and after normalisation, and purity.

use std::path::{Path, PathBuf};

use trunx::audio::g711::{Law, ulaw_decode};
use trunx::audio::prompt::{Prompt, PromptError, PromptOptions, decode_file, resample_to_8k};
use trunx::audio::{FRAME_SAMPLES, rms_dbfs};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("audio-fixtures/prompts")
        .join(name)
}

/// Estimates the frequency of a pure tone by counting zero crossings with interpolation.
fn tone_frequency(pcm: &[f32], rate: f32) -> f32 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0;
    for i in 1..pcm.len() {
        if pcm[i - 1] < 0.0 && pcm[i] >= 0.0 {
            let t = (i - 1) as f32 + pcm[i - 1] / (pcm[i - 1] - pcm[i]);
            if first.is_none() {
                first = Some(t);
            } else {
                count += 1;
            }
            last = t;
        }
    }
    count as f32 * rate / (last - first.unwrap())
}

/// Power at `freq` relative to total power (1.0 = a pure tone), via a Goertzel filter.
fn purity(pcm: &[f32], freq: f32, rate: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for x in pcm {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let tone_power = 2.0 * power / (pcm.len() as f32 * pcm.len() as f32);
    let total = pcm.iter().map(|x| x * x).sum::<f32>() / pcm.len() as f32;
    tone_power / total
}

fn check_tone(name: &str, expected_rate: u32, expected_channels: usize) {
    let path = fixture(name);
    let decoded = decode_file(&path, 60).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded.rate, expected_rate, "{name}");
    assert_eq!(decoded.channels, expected_channels, "{name}");
    let mono = decoded.downmix();
    let at8k = resample_to_8k(name, &mono, decoded.rate).unwrap();
    // The fixtures hold 1.0 s; MP3 adds encoder delay/padding (about 30 ms).
    let seconds = at8k.len() as f32 / 8000.0;
    assert!((0.99..1.1).contains(&seconds), "{name}: {seconds} s");
    let middle = &at8k[800..at8k.len() - 800];
    let freq = tone_frequency(middle, 8000.0);
    assert!((freq - 1000.0).abs() < 2.0, "{name}: measured {freq} Hz");
    // Source level: a 0.5-amplitude sine is -9.03 dBFS RMS.
    let level = rms_dbfs(middle);
    assert!((level + 9.03).abs() < 0.5, "{name}: level {level} dBFS");
    let p = purity(middle, 1000.0, 8000.0);
    assert!(p > 0.98, "{name}: purity {p}");

    let options = PromptOptions::default();
    let prompt = Prompt::load(&path, &options).unwrap();
    assert_eq!(prompt.pcm.len() % FRAME_SAMPLES, 0);
    assert_eq!(prompt.ulaw_frames.len(), prompt.pcm.len() / FRAME_SAMPLES);
    assert_eq!(prompt.alaw_frames.len(), prompt.ulaw_frames.len());
    let pcm: Vec<f32> = prompt.pcm.iter().map(|s| *s as f32 / 32768.0).collect();
    let middle = &pcm[800..7200];
    let level = rms_dbfs(middle);
    assert!(
        (level - options.target_dbfs).abs() < 0.5,
        "{name}: normalised {level}"
    );
    assert!(
        (tone_frequency(middle, 8000.0) - 1000.0).abs() < 2.0,
        "{name}"
    );
    // The μ-law frames decode back to the prompt within G.711 quantisation.
    let frame = &prompt.frames(Law::Ulaw)[20];
    for (i, code) in frame.iter().enumerate() {
        let original = prompt.pcm[20 * FRAME_SAMPLES + i] as i32;
        let decoded = ulaw_decode(*code) as i32;
        assert!(
            (original - decoded).abs() <= original.abs() / 16 + 16,
            "{name}"
        );
    }
}

#[test]
fn wav_44k1_stereo_16bit() {
    check_tone("tone1k-44k1-stereo.wav", 44100, 2);
}

#[test]
fn wav_48k_24bit() {
    check_tone("tone1k-48k-24bit.wav", 48000, 1);
}

#[test]
fn wav_8k_needs_no_resampling() {
    check_tone("tone1k-8k.wav", 8000, 1);
}

#[test]
fn mp3_44k1() {
    check_tone("tone1k-44k1.mp3", 44100, 2);
}

#[test]
fn flac_16k() {
    check_tone("tone1k-16k.flac", 16000, 1);
}

#[test]
fn ogg_vorbis_22k() {
    check_tone("tone1k-22k.ogg", 22050, 1);
}

#[test]
fn ten_second_mp3_prompt_has_the_right_length() {
    let prompt = Prompt::load(&fixture("voicemail-10s.mp3"), &PromptOptions::default()).unwrap();
    let ms = prompt.duration_ms();
    assert!((11_400..11_700).contains(&ms), "{ms} ms");
    assert_eq!(prompt.source_rate, 44100);
}

#[test]
fn truncated_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "tone1k-44k1-stereo.wav",
        "tone1k-16k.flac",
        "tone1k-22k.ogg",
        "tone1k-44k1.mp3",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        // Header-only and cut-in-half variants.
        for cut in [40usize, bytes.len() / 2] {
            let path = dir.path().join(format!("cut-{cut}-{name}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            match Prompt::load(&path, &PromptOptions::default()) {
                Err(
                    PromptError::Truncated { .. }
                    | PromptError::Malformed { .. }
                    | PromptError::UnsupportedFormat { .. }
                    | PromptError::Empty { .. }
                    | PromptError::NoAudioTrack { .. },
                ) => {}
                // Frame-based formats may decode the complete frames before the cut, but
                // never more audio than was there.
                Ok(prompt) if name.ends_with(".mp3") || name.ends_with(".ogg") => {
                    assert!(prompt.duration_ms() < 800, "{name} cut at {cut}");
                }
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn too_long_sources_are_refused() {
    let err = Prompt::load(
        &fixture("voicemail-10s.mp3"),
        &PromptOptions {
            max_seconds: 5,
            ..PromptOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, PromptError::TooLong { limit_s: 5, .. }),
        "{err}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = Prompt::load(Path::new("/nonexistent/x.wav"), &PromptOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
}
