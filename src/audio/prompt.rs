//! Prompt preparation: any common audio file -> 8 kHz mono, level-normalised, pre-encoded
//! 20 ms G.711 frames that every call can share.
//!
//! Decoding (symphonia: WAV of any rate/width, MP3, FLAC, Ogg Vorbis), downmixing, resampling
//! (rubato's FFT resampler) and normalisation happen once, off the call path. This module reads
//! the file it is given and nothing else; fetching URLs belongs to the runtime.

use std::io::Cursor;
use std::path::Path;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::g711::Law;
use super::{FRAME_SAMPLES, SAMPLE_RATE};

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot open audio file {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: not a supported audio file (WAV, MP3, FLAC, Ogg Vorbis): {reason}")]
    UnsupportedFormat { what: String, reason: String },
    #[error("{what}: no audio track")]
    NoAudioTrack { what: String },
    #[error("{what}: malformed audio: {reason}")]
    Malformed { what: String, reason: String },
    #[error("{what}: file is truncated ({reason})")]
    Truncated { what: String, reason: String },
    #[error("{what}: longer than the limit of {limit_s} s")]
    TooLong { what: String, limit_s: u32 },
    #[error("{what}: contains no audio samples")]
    Empty { what: String },
    #[error("{what}: is silent (level {level_dbfs:.1} dBFS)")]
    Silent { what: String, level_dbfs: f32 },
    #[error("{what}: resampling from {rate} Hz failed: {reason}")]
    Resample {
        what: String,
        rate: u32,
        reason: String,
    },
}

/// Decoded audio before conversion: interleaved f32 in -1.0..1.0.
#[derive(Clone, Debug)]
pub struct DecodedAudio {
    pub rate: u32,
    pub channels: usize,
    pub interleaved: Vec<f32>,
}

impl DecodedAudio {
    pub fn frames(&self) -> usize {
        self.interleaved.len() / self.channels.max(1)
    }

    /// Averages the channels into one.
    pub fn downmix(&self) -> Vec<f32> {
        if self.channels <= 1 {
            return self.interleaved.clone();
        }
        let scale = 1.0 / self.channels as f32;
        self.interleaved
            .chunks_exact(self.channels)
            .map(|c| c.iter().sum::<f32>() * scale)
            .collect()
    }
}

/// How a prompt is conditioned.
#[derive(Clone, Debug)]
pub struct PromptOptions {
    /// Target RMS level of the prepared prompt.
    pub target_dbfs: f32,
    /// Highest allowed peak after normalisation; the gain is lowered to respect it.
    pub peak_ceiling_dbfs: f32,
    /// Longest accepted source, so a hostile file cannot exhaust memory.
    pub max_seconds: u32,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            target_dbfs: -18.0,
            peak_ceiling_dbfs: -1.0,
            max_seconds: 600,
        }
    }
}

/// A prepared prompt: linear PCM and both G.711 encodings in 20 ms frames.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub source_rate: u32,
    pub source_channels: usize,
    /// 8 kHz mono linear PCM, padded with silence to a whole number of frames.
    pub pcm: Vec<i16>,
    pub ulaw_frames: Vec<[u8; FRAME_SAMPLES]>,
    pub alaw_frames: Vec<[u8; FRAME_SAMPLES]>,
    /// Gain applied during normalisation, in dB.
    pub gain_db: f32,
}

impl Prompt {
    /// Loads, converts and pre-encodes an audio file.
    pub fn load(path: &Path, options: &PromptOptions) -> Result<Prompt, PromptError> {
        let decoded = decode_file(path, options.max_seconds)?;
        Self::from_decoded(&path.display().to_string(), &decoded, options)
    }

    /// Same as [`Prompt::load`] for bytes already in memory (a fetched URL, an uploaded asset).
    pub fn from_bytes(
        what: &str,
        bytes: Vec<u8>,
        options: &PromptOptions,
    ) -> Result<Prompt, PromptError> {
        let decoded = decode_bytes(what, bytes, None, options.max_seconds)?;
        Self::from_decoded(what, &decoded, options)
    }

    pub fn from_decoded(
        what: &str,
        decoded: &DecodedAudio,
        options: &PromptOptions,
    ) -> Result<Prompt, PromptError> {
        let mono = decoded.downmix();
        let mut pcm8k = resample_to_8k(what, &mono, decoded.rate)?;
        let gain_db = normalise(what, &mut pcm8k, options)?;
        let padded_len = pcm8k.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
        let mut pcm: Vec<i16> = pcm8k.iter().map(|s| to_i16(*s)).collect();
        pcm.resize(padded_len, 0);
        let encode = |law: Law| {
            pcm.chunks_exact(FRAME_SAMPLES)
                .map(|chunk| {
                    let mut out = [0u8; FRAME_SAMPLES];
                    law.encode_into(chunk, &mut out);
                    out
                })
                .collect::<Vec<_>>()
        };
        Ok(Prompt {
            source_rate: decoded.rate,
            source_channels: decoded.channels,
            ulaw_frames: encode(Law::Ulaw),
            alaw_frames: encode(Law::Alaw),
            pcm,
            gain_db,
        })
    }

    pub fn duration_ms(&self) -> u64 {
        self.pcm.len() as u64 * 1000 / SAMPLE_RATE as u64
    }

    pub fn frames(&self, law: Law) -> &[[u8; FRAME_SAMPLES]] {
        match law {
            Law::Ulaw => &self.ulaw_frames,
            Law::Alaw => &self.alaw_frames,
        }
    }
}

/// Converts a float sample to i16 with saturation.
#[inline]
pub fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Decodes any supported audio file from disk.
pub fn decode_file(path: &Path, max_seconds: u32) -> Result<DecodedAudio, PromptError> {
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PromptError::Open {
        path: what.clone(),
        source,
    })?;
    let ext = path.extension().and_then(|e| e.to_str());
    decode_bytes(&what, bytes, ext, max_seconds)
}

/// Decodes any supported audio held in memory. `what` names the source in errors.
pub fn decode_bytes(
    what: &str,
    bytes: Vec<u8>,
    extension: Option<&str>,
    max_seconds: u32,
) -> Result<DecodedAudio, PromptError> {
    let malformed = |e: SymphoniaError| PromptError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    };
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| PromptError::UnsupportedFormat {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    let track =
        format
            .default_track(TrackType::Audio)
            .ok_or_else(|| PromptError::NoAudioTrack {
                what: what.to_string(),
            })?;
    let track_id = track.id;
    let expected_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .cloned()
        .ok_or_else(|| PromptError::NoAudioTrack {
            what: what.to_string(),
        })?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| PromptError::UnsupportedFormat {
            what: what.to_string(),
            reason: e.to_string(),
        })?;

    let mut rate = params.sample_rate.unwrap_or(0);
    if rate != 0 {
        check_rate(what, rate)?;
    }
    let mut channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    let mut interleaved: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    let mut cut_short = None;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                cut_short = Some(e.to_string());
                break;
            }
            Err(e) => return Err(malformed(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt packet inside an otherwise valid stream is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(malformed(e)),
        };
        rate = buffer.spec().rate();
        channels = buffer.spec().channels().count();
        check_rate(what, rate)?;
        buffer.copy_to_vec_interleaved(&mut scratch);
        interleaved.extend_from_slice(&scratch);
        let limit = max_seconds as usize * rate.max(1) as usize * channels.max(1);
        if interleaved.len() > limit {
            return Err(PromptError::TooLong {
                what: what.to_string(),
                limit_s: max_seconds,
            });
        }
    }
    if rate == 0 || channels == 0 || interleaved.is_empty() {
        return Err(match cut_short {
            Some(reason) => PromptError::Truncated {
                what: what.to_string(),
                reason,
            },
            None => PromptError::Empty {
                what: what.to_string(),
            },
        });
    }
    let decoded_frames = (interleaved.len() / channels) as u64;
    if let (Some(reason), Some(expected)) = (cut_short, expected_frames)
        && decoded_frames < expected
    {
        return Err(PromptError::Truncated {
            what: what.to_string(),
            reason: format!("{reason}; {decoded_frames} of {expected} frames present"),
        });
    }
    Ok(DecodedAudio {
        rate,
        channels,
        interleaved,
    })
}

/// The source sample rates a prompt may have. A header claiming more (fuzz/prompt_decode found
/// a WAV at 125 MHz) would make the resampler ask for gigabytes.
pub const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

fn check_rate(what: &str, rate: u32) -> Result<(), PromptError> {
    if SOURCE_RATES.contains(&rate) {
        return Ok(());
    }
    Err(PromptError::Malformed {
        what: what.to_string(),
        reason: format!(
            "sample rate {rate} Hz outside {}-{} Hz",
            SOURCE_RATES.start(),
            SOURCE_RATES.end()
        ),
    })
}

/// Resamples mono audio to 8 kHz (a copy when it already is).
pub fn resample_to_8k(what: &str, mono: &[f32], rate: u32) -> Result<Vec<f32>, PromptError> {
    check_rate(what, rate)?;
    if rate == SAMPLE_RATE {
        return Ok(mono.to_vec());
    }
    let fail = |reason: String| PromptError::Resample {
        what: what.to_string(),
        rate,
        reason,
    };
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        SAMPLE_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| fail(e.to_string()))?;
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| fail(e.to_string()))?;
    let out = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| fail(e.to_string()))?;
    Ok(out.take_data())
}

/// Scales to the target RMS without letting the peak pass the ceiling. Returns the gain in dB.
fn normalise(what: &str, pcm: &mut [f32], options: &PromptOptions) -> Result<f32, PromptError> {
    let level = super::rms_dbfs(pcm);
    if level < -70.0 {
        return Err(PromptError::Silent {
            what: what.to_string(),
            level_dbfs: level,
        });
    }
    let peak = pcm.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let wanted = 10f32.powf((options.target_dbfs - level) / 20.0);
    let ceiling = 10f32.powf(options.peak_ceiling_dbfs / 20.0) / peak.max(1e-9);
    let gain = wanted.min(ceiling);
    pcm.iter_mut().for_each(|s| *s *= gain);
    Ok(20.0 * gain.log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, seconds: f32, amp: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn resampling_keeps_a_tone_at_its_frequency() {
        let input = sine(44100, 1000.0, 1.0, 0.5);
        let out = resample_to_8k("t", &input, 44100).unwrap();
        assert!((out.len() as i64 - 8000).abs() < 10, "{}", out.len());
        // Count zero crossings in the middle to estimate frequency.
        let mid = &out[1000..7000];
        let crossings = mid
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        let freq = crossings as f32 / 2.0 / (mid.len() as f32 / 8000.0);
        assert!((freq - 1000.0).abs() < 5.0, "{freq}");
    }

    #[test]
    fn normalisation_hits_target_or_respects_peak() {
        let mut quiet = sine(8000, 440.0, 1.0, 0.01);
        let opts = PromptOptions::default();
        normalise("t", &mut quiet, &opts).unwrap();
        assert!((crate::audio::rms_dbfs(&quiet) - opts.target_dbfs).abs() < 0.1);

        // A spiky signal: the peak ceiling wins over the RMS target.
        let mut spiky = vec![0.0f32; 8000];
        spiky[100] = 0.5;
        spiky[200] = -0.5;
        spiky
            .iter_mut()
            .skip(300)
            .step_by(50)
            .for_each(|s| *s = 0.001);
        normalise("t", &mut spiky, &opts).unwrap();
        let peak = spiky.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak <= 10f32.powf(-1.0 / 20.0) + 1e-4, "{peak}");
    }

    #[test]
    fn silence_is_refused() {
        let mut silent = vec![0.0f32; 8000];
        let err = normalise("x.wav", &mut silent, &PromptOptions::default()).unwrap_err();
        assert!(matches!(err, PromptError::Silent { .. }));
    }

    #[test]
    fn garbage_bytes_are_a_typed_error() {
        let err =
            Prompt::from_bytes("junk", vec![7u8; 4096], &PromptOptions::default()).unwrap_err();
        assert!(
            matches!(err, PromptError::UnsupportedFormat { .. }),
            "{err}"
        );
        let err = Prompt::from_bytes("empty", vec![], &PromptOptions::default()).unwrap_err();
        assert!(
            matches!(err, PromptError::UnsupportedFormat { .. }),
            "{err}"
        );
    }
}
