//! One call analysed for a remote client (`trunx amd serve`): received audio of any chunk
//! size in, 20 ms frames through the built-in detector, decisions out.
//!
//! Owns the reframing, decoding (L16, G.711, 16 kHz L16 halved to 8 kHz) and the session's
//! audio limit. Fed the same samples, it decides exactly what `amd::analyse_recording` decides
//! on a recording: frames until the detector is done, then a padded tail and `finish`. It does
//! no I/O; the server task owns the socket.

use std::collections::VecDeque;

use super::{ClientMessage, Decision, Encoding, ProtocolError, Start, parse_client_text};
use crate::amd::Amd;
use crate::audio::g711::{alaw_decode, ulaw_decode};
use crate::audio::{FRAME_SAMPLES, Frame, SampleTime};

/// Audio analysed per session at most (the detector's analysis window and beep wait are far
/// shorter); past it the session finishes by itself.
pub const MAX_SESSION_AUDIO_MS: u64 = 120_000;

pub struct Session {
    amd: Amd,
    start: Option<Start>,
    pending: [i16; FRAME_SAMPLES],
    pending_len: usize,
    next: SampleTime,
    /// The first sample of a 16 kHz pair waiting for its second.
    half: Option<i16>,
    decisions: VecDeque<Decision>,
    finished: bool,
    decided: bool,
    max_samples: u64,
    /// Received samples (at 8 kHz).
    samples: u64,
}

impl Session {
    pub fn new(amd: Amd) -> Session {
        Session {
            amd,
            start: None,
            pending: [0; FRAME_SAMPLES],
            pending_len: 0,
            next: SampleTime::ZERO,
            half: None,
            decisions: VecDeque::new(),
            finished: false,
            decided: false,
            max_samples: MAX_SESSION_AUDIO_MS * 8,
            samples: 0,
        }
    }

    /// A lower audio limit than [`MAX_SESSION_AUDIO_MS`].
    pub fn with_max_audio_ms(mut self, ms: u64) -> Session {
        self.max_samples = ms.min(MAX_SESSION_AUDIO_MS) * 8;
        self
    }

    /// Starts the session without a start message (AudioSocket, FreeSWITCH paths).
    pub fn start(&mut self, start: Start) -> Result<(), ProtocolError> {
        if self.start.is_some() {
            return Err(ProtocolError::StartedTwice);
        }
        super::check_call_id(&start.call_id)?;
        super::check_rate(start.encoding, start.sample_rate)?;
        self.start = Some(start);
        Ok(())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.start.as_ref().map(|s| s.call_id.as_str())
    }

    /// A text message of the trunx AMD stream protocol.
    pub fn handle_text(&mut self, text: &str) -> Result<(), ProtocolError> {
        match parse_client_text(text)? {
            ClientMessage::Start(s) => self.start(s),
            ClientMessage::Media(bytes) => self.handle_audio(&bytes),
            ClientMessage::Stop => {
                self.finish();
                Ok(())
            }
            ClientMessage::Other => Ok(()),
        }
    }

    /// Audio bytes in the session's encoding.
    pub fn handle_audio(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let Some(start) = &self.start else {
            return Err(ProtocolError::NotStarted);
        };
        if bytes.len() > super::MAX_AUDIO_MESSAGE {
            return Err(ProtocolError::TooLarge(bytes.len()));
        }
        let (encoding, rate) = (start.encoding, start.sample_rate);
        match encoding {
            Encoding::L16 => {
                if !bytes.len().is_multiple_of(2) {
                    return Err(ProtocolError::OddLength);
                }
                for pair in bytes.chunks_exact(2) {
                    let s = i16::from_le_bytes([pair[0], pair[1]]);
                    if rate == 16000 {
                        match self.half.take() {
                            None => self.half = Some(s),
                            // Two 16 kHz samples averaged: a crude low-pass before halving.
                            Some(a) => self.push_sample(((a as i32 + s as i32) / 2) as i16),
                        }
                    } else {
                        self.push_sample(s);
                    }
                }
            }
            Encoding::Ulaw => bytes.iter().for_each(|&b| self.push_sample(ulaw_decode(b))),
            Encoding::Alaw => bytes.iter().for_each(|&b| self.push_sample(alaw_decode(b))),
        }
        Ok(())
    }

    /// 8 kHz linear samples.
    pub fn push_pcm(&mut self, pcm: &[i16]) {
        for &s in pcm {
            self.push_sample(s);
        }
    }

    fn push_sample(&mut self, s: i16) {
        if self.finished || self.decided {
            return;
        }
        self.pending[self.pending_len] = s;
        self.pending_len += 1;
        self.samples += 1;
        if self.pending_len == FRAME_SAMPLES {
            let frame = Frame {
                start: self.next,
                samples: self.pending,
            };
            self.pending_len = 0;
            self.next = frame.end();
            self.process(&frame);
            if self.samples >= self.max_samples {
                self.finish();
            }
        }
    }

    fn process(&mut self, frame: &Frame) {
        if self.amd.is_done() {
            return;
        }
        if let Some(e) = self.amd.process(frame) {
            self.emit(&e);
        }
    }

    fn emit(&mut self, e: &crate::amd::AmdEvent) {
        let d = Decision::from_event(self.call_id().unwrap_or(""), e);
        if d.is_final {
            self.decided = true;
        }
        self.decisions.push_back(d);
    }

    /// The call ended: the padded tail is analysed and what the detector still owes is out.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.pending_len > 0 && !self.amd.is_done() {
            let frame = Frame::from_slice(self.next, &self.pending[..self.pending_len]);
            self.pending_len = 0;
            self.process(&frame);
        }
        while let Some(e) = self.amd.finish() {
            self.emit(&e);
        }
    }

    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    /// The final decision was made (and may still wait in [`Session::poll_decision`]).
    pub fn is_decided(&self) -> bool {
        self.decided
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Audio received so far, in ms at 8 kHz.
    pub fn audio_ms(&self) -> u64 {
        self.samples / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::{AmdConfig, analyse_recording};

    fn tone_then_silence() -> Vec<i16> {
        // 1.2 s of a 400 Hz "voice" then 4 s of silence: decided well within the window.
        let mut pcm: Vec<i16> = (0..9600)
            .map(|i| ((i as f32 * 400.0 * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect();
        pcm.extend(std::iter::repeat_n(0i16, 32_003));
        pcm
    }

    fn start(call_id: &str, encoding: Encoding, sample_rate: u32) -> Start {
        Start {
            call_id: call_id.into(),
            encoding,
            sample_rate,
        }
    }

    #[test]
    fn odd_sized_chunks_decide_like_the_recording() {
        let pcm = tone_then_silence();
        let (want, _) = analyse_recording(&pcm, &AmdConfig::default(), None);
        let mut s = Session::new(Amd::new(AmdConfig::default(), None));
        s.start(start("a", Encoding::L16, 8000)).unwrap();
        let mut bytes = Vec::new();
        super::super::l16_bytes(&pcm, &mut bytes);
        for chunk in bytes.chunks(322) {
            s.handle_audio(chunk).unwrap();
        }
        s.finish();
        let got: Vec<_> = std::iter::from_fn(|| s.poll_decision())
            .map(|d| d.to_event().unwrap())
            .collect();
        let want_ms: Vec<_> = want
            .iter()
            .map(|e| (e.kind, e.at.as_ms(), e.cause))
            .collect();
        let got_ms: Vec<_> = got
            .iter()
            .map(|e| (e.kind, e.at.as_ms(), e.cause))
            .collect();
        assert_eq!(got_ms, want_ms);
        assert!(s.is_decided());
    }

    #[test]
    fn sixteen_khz_l16_is_halved() {
        let mut s = Session::new(Amd::new(AmdConfig::default(), None));
        s.start(start("a", Encoding::L16, 16000)).unwrap();
        s.handle_audio(&[0u8; 640]).unwrap();
        assert_eq!(s.audio_ms(), 20);
    }

    #[test]
    fn audio_before_start_and_odd_lengths_are_errors() {
        let mut s = Session::new(Amd::new(AmdConfig::default(), None));
        assert_eq!(s.handle_audio(&[0, 0]), Err(ProtocolError::NotStarted));
        s.start(start("a", Encoding::L16, 8000)).unwrap();
        assert_eq!(s.handle_audio(&[0, 0, 0]), Err(ProtocolError::OddLength));
        assert_eq!(
            s.start(start("b", Encoding::L16, 8000)),
            Err(ProtocolError::StartedTwice)
        );
        let big = vec![0u8; super::super::MAX_AUDIO_MESSAGE + 2];
        assert!(matches!(
            s.handle_audio(&big),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn a_session_ends_itself_at_the_audio_limit() {
        let mut s = Session::new(Amd::new(AmdConfig::default(), None)).with_max_audio_ms(1000);
        s.start(start("a", Encoding::Ulaw, 8000)).unwrap();
        s.handle_audio(&[0xffu8; 16_000]).unwrap();
        assert!(s.is_finished() && s.is_decided());
        assert_eq!(s.audio_ms(), 1000);
        let d = s.poll_decision().expect("the detector's owed decision");
        assert_eq!((d.kind.as_str(), d.is_final), ("unknown", true));
    }
}
