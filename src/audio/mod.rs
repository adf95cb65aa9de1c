//! Pure audio: the 8 kHz sample clock, 20 ms frames, G.711, WAV I/O, content sniffing and prompt
//! preparation.
//!
//! Owns the representation of telephone audio inside trunx. It must not touch sockets, tasks or
//! the clock; file reads happen only in [`prompt`] and [`wav`] when asked to load a file.

pub mod g711;
pub mod identification;
pub mod player;
pub mod prompt;
pub mod sniff;
pub mod wav;

/// Telephone sample rate used everywhere inside trunx.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 160;
/// Duration of one frame in milliseconds.
pub const FRAME_MS: u64 = 20;

/// Audio time as a count of samples at 8 kHz since a reference (for AMD: the first answered
/// sample). Using samples instead of wall time keeps decisions on a recording exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SampleTime(pub u64);

impl SampleTime {
    pub const ZERO: SampleTime = SampleTime(0);

    pub const fn from_ms(ms: u64) -> Self {
        SampleTime(ms * (SAMPLE_RATE as u64) / 1000)
    }

    pub const fn as_ms(self) -> u64 {
        self.0 * 1000 / SAMPLE_RATE as u64
    }

    pub const fn samples(self) -> u64 {
        self.0
    }

    pub const fn saturating_sub(self, other: SampleTime) -> SampleTime {
        SampleTime(self.0.saturating_sub(other.0))
    }
}

impl std::ops::Add<u64> for SampleTime {
    type Output = SampleTime;
    fn add(self, samples: u64) -> SampleTime {
        SampleTime(self.0 + samples)
    }
}

/// 20 ms of 16-bit linear PCM at 8 kHz, stamped with the time of its first sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub start: SampleTime,
    pub samples: [i16; FRAME_SAMPLES],
}

impl Frame {
    pub const fn silent(start: SampleTime) -> Self {
        Frame {
            start,
            samples: [0; FRAME_SAMPLES],
        }
    }

    /// Builds a frame from up to 160 samples; a short tail is padded with silence.
    pub fn from_slice(start: SampleTime, pcm: &[i16]) -> Self {
        let mut frame = Frame::silent(start);
        let n = pcm.len().min(FRAME_SAMPLES);
        frame.samples[..n].copy_from_slice(&pcm[..n]);
        frame
    }

    /// Time just after the last sample of this frame.
    pub const fn end(&self) -> SampleTime {
        SampleTime(self.start.0 + FRAME_SAMPLES as u64)
    }
}

/// Splits a whole recording into consecutive frames starting at sample 0 (the tail padded).
pub fn frames_of(pcm: &[i16]) -> impl Iterator<Item = Frame> + '_ {
    pcm.chunks(FRAME_SAMPLES)
        .enumerate()
        .map(|(i, chunk)| Frame::from_slice(SampleTime((i * FRAME_SAMPLES) as u64), chunk))
}

/// Level of a block of samples in dBFS (RMS of samples scaled to -1.0..1.0).
pub fn rms_dbfs(pcm: &[f32]) -> f32 {
    if pcm.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean_sq = pcm.iter().map(|s| s * s).sum::<f32>() / pcm.len() as f32;
    10.0 * mean_sq.max(1e-20).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_time_converts_ms_both_ways() {
        assert_eq!(SampleTime::from_ms(20).samples(), 160);
        assert_eq!(SampleTime(8000).as_ms(), 1000);
        assert_eq!(SampleTime::from_ms(1234).as_ms(), 1234);
    }

    #[test]
    fn frames_of_pads_the_tail_and_stamps_start_times() {
        let pcm: Vec<i16> = (0..400).map(|i| i as i16).collect();
        let frames: Vec<Frame> = frames_of(&pcm).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].start, SampleTime(320));
        assert_eq!(frames[2].samples[79], 399);
        assert_eq!(frames[2].samples[80], 0);
        assert_eq!(frames[1].end(), SampleTime(320));
    }
}
