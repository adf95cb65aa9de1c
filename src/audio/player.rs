//! The prompt player: a cursor over a prepared prompt's 20 ms G.711 frames. The RTP sender
//! asks it for one frame per slot of its 20 ms grid; the first frame of the talk spurt carries
//! the marker bit. Prompts are prepared once and shared (`Arc`) by every call that plays them;
//! nothing is decoded on the call path.

use std::sync::Arc;

use super::FRAME_SAMPLES;
use super::g711::Law;
use super::prompt::Prompt;

pub struct Player {
    prompt: Arc<Prompt>,
    law: Law,
    next: usize,
}

impl Player {
    pub fn new(prompt: Arc<Prompt>, law: Law) -> Self {
        Player {
            prompt,
            law,
            next: 0,
        }
    }

    /// The next frame and whether it starts the talk spurt (RTP marker), or `None` when the
    /// prompt has been played to its end.
    pub fn next_frame(&mut self) -> Option<(&[u8; FRAME_SAMPLES], bool)> {
        let frame = self.prompt.frames(self.law).get(self.next)?;
        let marker = self.next == 0;
        self.next += 1;
        Some((frame, marker))
    }

    /// Skips frames whose send slots were missed (the pacer skipped them), so the message
    /// stays in step with the wall clock instead of drifting late.
    pub fn skip(&mut self, frames: usize) {
        self.next = (self.next + frames).min(self.prompt.frames(self.law).len());
    }

    pub fn played_ms(&self) -> u64 {
        self.next as u64 * 20
    }

    pub fn duration_ms(&self) -> u64 {
        self.prompt.frames(self.law).len() as u64 * 20
    }

    pub fn is_finished(&self) -> bool {
        self.next >= self.prompt.frames(self.law).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::prompt::{DecodedAudio, PromptOptions};

    fn prompt(frames: usize) -> Arc<Prompt> {
        let n = frames * FRAME_SAMPLES;
        let decoded = DecodedAudio {
            rate: 8000,
            channels: 1,
            interleaved: (0..n).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect(),
        };
        Arc::new(Prompt::from_decoded("t", &decoded, &PromptOptions::default()).unwrap())
    }

    #[test]
    fn plays_every_frame_once_with_the_marker_first() {
        let p = prompt(10);
        let mut player = Player::new(p.clone(), Law::Alaw);
        let mut markers = Vec::new();
        let mut n = 0;
        while let Some((frame, marker)) = player.next_frame() {
            assert_eq!(frame, &p.alaw_frames[n]);
            markers.push(marker);
            n += 1;
        }
        assert_eq!(n, 10);
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(markers[0]);
        assert!(player.is_finished());
        assert_eq!((player.played_ms(), player.duration_ms()), (200, 200));
    }

    #[test]
    fn skipped_slots_keep_the_message_on_time() {
        let mut player = Player::new(prompt(10), Law::Ulaw);
        player.next_frame();
        player.skip(3);
        assert_eq!(player.played_ms(), 80);
        player.skip(100);
        assert!(player.is_finished() && player.next_frame().is_none());
    }
}
