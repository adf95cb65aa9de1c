//! The jitter buffer: RTP packets in, in any order and with gaps, continuous 20 ms frames of
//! linear PCM out on a steady playout clock, so the AMD sees an unbroken timeline.
//!
//! Frames are placed by RTP timestamp (frame index = timestamp / 160), played a fixed delay after
//! the arrival of the first packet. Duplicates and packets for frames already played are
//! dropped and counted; a frame missing at its playout time is concealed (the previous frame at
//! half level once, then silence). A timestamp jump beyond the buffer re-anchors the clock.
//! Bounded: at most [`CAPACITY`] frames are held. Time is an argument; nothing here sleeps.

use std::time::{Duration, Instant};

use crate::audio::g711::Law;
use crate::audio::{FRAME_SAMPLES, Frame, SampleTime};

/// Frames held at most (1.28 s of audio).
pub const CAPACITY: usize = 64;
const FRAME: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub played: u64,
    pub concealed: u64,
    pub duplicates: u64,
    pub late: u64,
    pub resyncs: u64,
    pub bad_payload: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    index: u64,
    filled: bool,
    pcm: [i16; FRAME_SAMPLES],
}

/// One frame handed to the AMD; `concealed` when the network lost it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutFrame {
    pub frame: Frame,
    pub concealed: bool,
}

/// What the buffer plays for the `run`-th frame in a row that the network lost (`run` >= 1),
/// `previous` being the last frame that arrived: that frame at half level once, then silence.
/// Public so the beep model's training data can pass through the same concealment.
pub fn conceal(previous: &[i16; FRAME_SAMPLES], run: u32) -> [i16; FRAME_SAMPLES] {
    let mut samples = [0i16; FRAME_SAMPLES];
    if run == 1 {
        for (o, p) in samples.iter_mut().zip(previous) {
            *o = p / 2;
        }
    }
    samples
}

pub struct JitterBuffer {
    delay: Duration,
    /// Frames leave as soon as they and every frame before them are here, instead of at their
    /// playout time; a missing frame still waits until its playout time to be concealed.
    early_release: bool,
    slots: Box<[Slot; CAPACITY]>,
    /// Frame index of the first frame and when it plays.
    anchor: Option<(u64, Instant)>,
    /// Next frame index to play.
    next: u64,
    /// Frames played since the start (the AMD's sample clock).
    played: u64,
    previous: [i16; FRAME_SAMPLES],
    concealing: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// `delay`: how long after the first packet's arrival its frame plays (absorbs jitter).
    pub fn new(delay: Duration) -> Self {
        JitterBuffer {
            delay,
            early_release: false,
            slots: Box::new(
                [Slot {
                    index: u64::MAX,
                    filled: false,
                    pcm: [0; FRAME_SAMPLES],
                }; CAPACITY],
            ),
            anchor: None,
            next: 0,
            played: 0,
            previous: [0; FRAME_SAMPLES],
            concealing: 0,
            stats: JitterStats::default(),
        }
    }

    /// In-order release for a consumer that analyses rather than plays (the AMD): audio is
    /// handed over the moment it is complete, so a decision is not held back by the delay that
    /// only absorbs jitter. The delay still bounds how long a gap is waited for.
    pub fn with_early_release(mut self) -> Self {
        self.early_release = true;
        self
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn deadline(&self, index: u64) -> Option<Instant> {
        let (first, at) = self.anchor?;
        let offset = index.checked_sub(first)?;
        Some(at + FRAME * offset as u32)
    }

    /// When the next frame is due, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline(self.next)
    }

    /// Accepts a packet's payload at its extended timestamp. `payload` is G.711 of `law`; one
    /// packet may carry several 20 ms frames.
    pub fn push(&mut self, now: Instant, ext_ts: u64, law: Law, payload: &[u8]) {
        if payload.is_empty() || !payload.len().is_multiple_of(FRAME_SAMPLES) {
            self.stats.bad_payload += 1;
            return;
        }
        let first_index = ext_ts / FRAME_SAMPLES as u64;
        let frames = (payload.len() / FRAME_SAMPLES) as u64;
        match self.anchor {
            None => {
                self.anchor = Some((first_index, now + self.delay));
                self.next = first_index;
            }
            Some(_) if first_index + frames > self.next + CAPACITY as u64 => {
                // Far ahead of the playout point (a timestamp jump or a restart): play from here.
                self.stats.resyncs += 1;
                self.anchor = Some((first_index, now + self.delay));
                self.next = first_index;
                for slot in self.slots.iter_mut() {
                    slot.filled = false;
                }
            }
            _ => {}
        }
        for (k, chunk) in payload.chunks_exact(FRAME_SAMPLES).enumerate() {
            let index = first_index + k as u64;
            if index < self.next {
                self.stats.late += 1;
                continue;
            }
            let slot = &mut self.slots[(index % CAPACITY as u64) as usize];
            if slot.filled && slot.index == index {
                self.stats.duplicates += 1;
                continue;
            }
            slot.index = index;
            slot.filled = true;
            law.decode_into(chunk, &mut slot.pcm);
        }
    }

    /// The next frame if its playout time has come.
    pub fn pop(&mut self, now: Instant) -> Option<PlayoutFrame> {
        let due = self.deadline(self.next)?;
        let slot = &mut self.slots[(self.next % CAPACITY as u64) as usize];
        let here = slot.filled && slot.index == self.next;
        if now < due && !(self.early_release && here) {
            return None;
        }
        let start = SampleTime(self.played * FRAME_SAMPLES as u64);
        let out = if slot.filled && slot.index == self.next {
            slot.filled = false;
            self.previous = slot.pcm;
            self.concealing = 0;
            PlayoutFrame {
                frame: Frame {
                    start,
                    samples: slot.pcm,
                },
                concealed: false,
            }
        } else {
            self.stats.concealed += 1;
            self.concealing += 1;
            let samples = conceal(&self.previous, self.concealing);
            PlayoutFrame {
                frame: Frame { start, samples },
                concealed: true,
            }
        };
        self.next += 1;
        self.played += 1;
        self.stats.played += 1;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::g711::{ulaw_decode, ulaw_encode};
    use proptest::prelude::*;

    fn payload(value: i16) -> Vec<u8> {
        vec![ulaw_encode(value); FRAME_SAMPLES]
    }

    #[test]
    fn early_release_hands_over_in_order_frames_at_once_and_waits_for_a_gap() {
        let t0 = crate::runtime::clock::now();
        let mut jb = JitterBuffer::new(Duration::from_millis(40)).with_early_release();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        jb.push(ms(0), 0, Law::Ulaw, &payload(1000));
        jb.push(ms(0), 160, Law::Ulaw, &payload(2000));
        // Both frames are complete and in order: they leave now, not 40 ms later.
        assert!(!jb.pop(ms(0)).unwrap().concealed);
        assert!(!jb.pop(ms(0)).unwrap().concealed);
        assert_eq!(jb.pop(ms(0)), None);
        // Frame 2 is missing and frame 3 is here: frame 3 waits for frame 2's playout time
        // (80 ms after the first packet), where frame 2 is concealed.
        jb.push(ms(45), 480, Law::Ulaw, &payload(4000));
        assert_eq!(jb.pop(ms(79)), None);
        assert!(jb.pop(ms(80)).unwrap().concealed);
        let third = jb.pop(ms(80)).unwrap();
        assert!(!third.concealed);
        assert_eq!(third.frame.start, SampleTime(3 * FRAME_SAMPLES as u64));
        assert_eq!(jb.stats().concealed, 1);
    }

    #[test]
    fn reorders_and_conceals_on_a_steady_clock() {
        let t0 = crate::runtime::clock::now();
        let mut jb = JitterBuffer::new(Duration::from_millis(60));
        let ms = |m: u64| t0 + Duration::from_millis(m);
        jb.push(ms(0), 0, Law::Ulaw, &payload(1000));
        jb.push(ms(25), 320, Law::Ulaw, &payload(3000)); // frame 2 before frame 1
        jb.push(ms(30), 160, Law::Ulaw, &payload(2000));
        jb.push(ms(31), 160, Law::Ulaw, &payload(2000)); // duplicate
        // frame 3 lost; frame 4 arrives.
        jb.push(ms(80), 640, Law::Ulaw, &payload(5000));
        assert_eq!(jb.pop(ms(59)), None);
        let mut out = Vec::new();
        for t in (60..=140).step_by(20) {
            out.push(jb.pop(ms(t)).unwrap());
        }
        let firsts: Vec<i16> = out.iter().map(|f| f.frame.samples[0]).collect();
        let level = |v: i16| ulaw_decode(ulaw_encode(v));
        assert_eq!(firsts[0], level(1000));
        assert_eq!(firsts[1], level(2000));
        assert_eq!(firsts[2], level(3000));
        assert!(
            out[3].concealed && firsts[3] == level(3000) / 2,
            "{firsts:?}"
        );
        assert!(!out[4].concealed && firsts[4] == level(5000));
        let starts: Vec<u64> = out.iter().map(|f| f.frame.start.samples()).collect();
        assert_eq!(starts, [0, 160, 320, 480, 640]);
        let st = jb.stats();
        assert_eq!((st.duplicates, st.concealed, st.played), (1, 1, 5));
        // A frame arriving after its slot played is late.
        jb.push(ms(150), 480, Law::Ulaw, &payload(4000));
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn a_timestamp_jump_resyncs_instead_of_playing_silence_for_minutes() {
        let t0 = crate::runtime::clock::now();
        let mut jb = JitterBuffer::new(Duration::from_millis(40));
        jb.push(t0, 0, Law::Ulaw, &payload(100));
        jb.push(t0, 160 * 100_000, Law::Ulaw, &payload(200));
        assert_eq!(jb.stats().resyncs, 1);
        let f = jb.pop(t0 + Duration::from_millis(40)).unwrap();
        assert!(!f.concealed);
        assert_eq!(f.frame.start, SampleTime(0));
    }

    #[test]
    fn bad_payload_sizes_are_counted() {
        let mut jb = JitterBuffer::new(Duration::from_millis(40));
        jb.push(crate::runtime::clock::now(), 0, Law::Ulaw, &[0xFF; 100]);
        assert_eq!(jb.stats().bad_payload, 1);
        assert_eq!(jb.next_deadline(), None);
    }

    proptest! {
        /// Whatever arrives, in whatever order: output frames are consecutive on the sample
        /// clock, never repeat a packet's frame, and the buffer never holds more than its
        /// capacity.
        #[test]
        fn output_is_ordered_duplicate_free_and_bounded(
            arrivals in prop::collection::vec((0u64..200, 0u64..2000), 1..300)
        ) {
            let t0 = crate::runtime::clock::now();
            let mut jb = JitterBuffer::new(Duration::from_millis(60));
            let mut sorted = arrivals.clone();
            sorted.sort_by_key(|a| a.1);
            let mut expected_start = 0;
            let mut real_frames = std::collections::HashSet::new();
            let mut t = 0;
            for (frame, at_ms) in sorted {
                while t <= at_ms {
                    while let Some(f) = jb.pop(t0 + Duration::from_millis(t)) {
                        prop_assert_eq!(f.frame.start.samples(), expected_start);
                        expected_start += FRAME_SAMPLES as u64;
                        if !f.concealed {
                            // Payload value identifies the frame: never played twice.
                            prop_assert!(real_frames.insert(f.frame.samples[0]));
                        }
                    }
                    t += 5;
                }
                // Each frame carries its own A-law code, so decoded levels identify frames.
                jb.push(t0 + Duration::from_millis(at_ms), frame * 160, Law::Alaw,
                    &[frame as u8; FRAME_SAMPLES]);
                let held = jb.slots.iter().filter(|s| s.filled).count();
                prop_assert!(held <= CAPACITY);
            }
        }
    }
}
