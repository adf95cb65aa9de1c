//! WAV I/O for 8 kHz mono 16-bit recordings (fixtures, corpus, captures) via hound.
//!
//! Reading accepts only the telephone format; any other WAV goes through
//! [`crate::audio::prompt::decode_file`], which converts.

use std::path::Path;

use super::SAMPLE_RATE;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read WAV {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: hound::Error,
    },
    #[error("cannot write WAV {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: hound::Error,
    },
    #[error(
        "WAV {path} is {rate} Hz, {channels} channel(s), {bits}-bit; expected 8000 Hz mono 16-bit"
    )]
    NotTelephoneFormat {
        path: String,
        rate: u32,
        channels: u16,
        bits: u16,
    },
}

/// Reads an 8 kHz mono 16-bit PCM WAV file.
pub fn read_telephone_wav(path: &Path) -> Result<Vec<i16>, WavError> {
    let shown = path.display().to_string();
    let reader = hound::WavReader::open(path).map_err(|source| WavError::Read {
        path: shown.clone(),
        source,
    })?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(WavError::NotTelephoneFormat {
            path: shown,
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
        });
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| WavError::Read {
            path: shown,
            source,
        })
}

/// Writes samples as an 8 kHz mono 16-bit PCM WAV file.
pub fn write_telephone_wav(path: &Path, pcm: &[i16]) -> Result<(), WavError> {
    let shown = path.display().to_string();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wrap = |source| WavError::Write {
        path: shown.clone(),
        source,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wrap)?;
    for s in pcm {
        writer.write_sample(*s).map_err(wrap)?;
    }
    writer.finalize().map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt.wav");
        let pcm: Vec<i16> = (0..8000)
            .map(|i| ((i as f32 * 0.3).sin() * 20000.0) as i16)
            .chain([i16::MIN, i16::MAX, 0, -1])
            .collect();
        write_telephone_wav(&path, &pcm).unwrap();
        assert_eq!(read_telephone_wav(&path).unwrap(), pcm);
    }

    #[test]
    fn other_formats_are_refused_with_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let err = read_telephone_wav(&path).unwrap_err().to_string();
        assert!(err.contains("44100 Hz, 2 channel(s)"), "{err}");
    }

    #[test]
    fn missing_and_garbage_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_telephone_wav(&dir.path().join("none.wav")).is_err());
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"RIFF\x10\x00\x00\x00WAVEfmt garbage").unwrap();
        assert!(read_telephone_wav(&junk).is_err());
    }
}
