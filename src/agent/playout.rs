//! The agent's audio on its way to the prospect: a bounded queue of 20 ms μ-law frames, paced
//! out by the runtime's media tick, with the agent's marks held at their place in the audio.

use std::collections::VecDeque;

use super::{Inbound, MULAW_FRAME_BYTES, MULAW_SILENCE};

/// Bounds of one call's playout queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayoutLimits {
    /// Whole frames held at most; audio beyond it is dropped and counted. The default, 30 000
    /// frames = 10 minutes, is Twilio's outbound buffer (error 31931).
    pub max_frames: usize,
    /// Marks waiting for their audio at most; further marks are dropped and counted.
    pub max_pending_marks: usize,
}

impl Default for PlayoutLimits {
    fn default() -> Self {
        PlayoutLimits {
            max_frames: 30_000,
            max_pending_marks: 1024,
        }
    }
}

/// Running totals since the call started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayoutCounters {
    /// Frames accepted into the queue (a padded utterance tail counts as one).
    pub frames_queued: u64,
    /// Frames handed to the media tick.
    pub frames_played: u64,
    /// Frames refused because the queue was at its bound.
    pub frames_dropped: u64,
    /// Frames thrown away by `clear`.
    pub frames_cleared: u64,
    /// Mark echoes handed out by [`Playout::poll_mark`].
    pub marks_echoed: u64,
    /// Marks refused because too many were pending.
    pub marks_dropped: u64,
    /// `clear` events applied.
    pub clears: u64,
    /// Well-formed agent events we do not act on.
    pub other_events: u64,
    /// Agent messages refused by `parse_inbound` (reported by the runtime).
    pub rejected_messages: u64,
}

/// Empty media ticks a partial frame waits before it is padded with silence and played. One
/// tick lets an agent that streams odd-sized chunks in real time complete the frame; after
/// two, the partial is the tail of an utterance and should not wait for the next one.
const PARTIAL_FLUSH_AFTER_EMPTY_TICKS: u8 = 2;

/// One call's playout queue. Drain rule: after every call to [`Playout::handle`],
/// [`Playout::push_mark`], [`Playout::clear`] or [`Playout::next_frame`], pop
/// [`Playout::poll_mark`] until `None` and send each name back with
/// [`AgentStream::mark`](super::AgentStream::mark).
#[derive(Debug)]
pub struct Playout {
    limits: PlayoutLimits,
    frames: VecDeque<[u8; MULAW_FRAME_BYTES]>,
    /// Bytes of a frame not yet complete; kept for the next chunk.
    partial: [u8; MULAW_FRAME_BYTES],
    partial_len: usize,
    partial_empty_ticks: u8,
    /// Position (in frames ever queued) after which each pending mark is due.
    pending_marks: VecDeque<(u64, String)>,
    due_marks: VecDeque<String>,
    /// Frames ever queued, and frames ever consumed (played or cleared): the positions marks
    /// are measured in.
    queued_position: u64,
    consumed_position: u64,
    counters: PlayoutCounters,
}

impl Playout {
    pub fn new(limits: PlayoutLimits) -> Playout {
        Playout {
            limits,
            frames: VecDeque::new(),
            partial: [MULAW_SILENCE; MULAW_FRAME_BYTES],
            partial_len: 0,
            partial_empty_ticks: 0,
            pending_marks: VecDeque::new(),
            due_marks: VecDeque::new(),
            queued_position: 0,
            consumed_position: 0,
            counters: PlayoutCounters::default(),
        }
    }

    pub fn counters(&self) -> PlayoutCounters {
        self.counters
    }

    /// Whole frames waiting to play.
    pub fn queued_frames(&self) -> usize {
        self.frames.len()
    }

    /// Applies one parsed agent message.
    pub fn handle(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Media(audio) => self.push_media(&audio),
            Inbound::Mark(name) => self.push_mark(name),
            Inbound::Clear => self.clear(),
            Inbound::Other(_) => self.counters.other_events += 1,
        }
    }

    /// Counts an agent message the runtime dropped because `parse_inbound` refused it.
    pub fn count_rejected(&mut self) {
        self.counters.rejected_messages += 1;
    }

    /// Queues μ-law audio of any length: whole frames join the queue, a remainder waits for the
    /// next chunk.
    pub fn push_media(&mut self, mut audio: &[u8]) {
        if audio.is_empty() {
            return;
        }
        self.partial_empty_ticks = 0;
        if self.partial_len > 0 {
            let take = (MULAW_FRAME_BYTES - self.partial_len).min(audio.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&audio[..take]);
            self.partial_len += take;
            audio = &audio[take..];
            if self.partial_len < MULAW_FRAME_BYTES {
                return;
            }
            let frame = self.partial;
            self.partial_len = 0;
            self.enqueue(frame);
        }
        let mut chunks = audio.chunks_exact(MULAW_FRAME_BYTES);
        for chunk in &mut chunks {
            let mut frame = [0u8; MULAW_FRAME_BYTES];
            frame.copy_from_slice(chunk);
            self.enqueue(frame);
        }
        let rest = chunks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn enqueue(&mut self, frame: [u8; MULAW_FRAME_BYTES]) {
        if self.frames.len() >= self.limits.max_frames {
            self.counters.frames_dropped += 1;
            return;
        }
        self.frames.push_back(frame);
        self.queued_position += 1;
        self.counters.frames_queued += 1;
    }

    /// Pads the partial frame with silence and queues it, so the audio before a mark is whole.
    fn flush_partial(&mut self) {
        if self.partial_len == 0 {
            return;
        }
        self.partial[self.partial_len..].fill(MULAW_SILENCE);
        let frame = self.partial;
        self.partial_len = 0;
        self.partial_empty_ticks = 0;
        self.enqueue(frame);
    }

    /// The agent's mark: due once everything queued before it has played; at once if nothing
    /// is queued.
    pub fn push_mark(&mut self, name: String) {
        self.flush_partial();
        if self.frames.is_empty() {
            self.due_marks.push_back(name);
        } else if self.pending_marks.len() >= self.limits.max_pending_marks {
            self.counters.marks_dropped += 1;
        } else {
            self.pending_marks.push_back((self.queued_position, name));
        }
    }

    /// Barge-in: drops every queued frame (and the partial one) and makes every pending mark
    /// due, in the order they were sent.
    pub fn clear(&mut self) {
        self.counters.clears += 1;
        self.counters.frames_cleared += self.frames.len() as u64;
        self.frames.clear();
        self.partial_len = 0;
        self.partial_empty_ticks = 0;
        self.consumed_position = self.queued_position;
        self.due_marks
            .extend(self.pending_marks.drain(..).map(|(_, name)| name));
    }

    /// The stream this audio belonged to is gone (the socket dropped): forgets the queued
    /// audio and the marks waiting on it without echoing them (nobody is left to hear the
    /// echo). Counted as dropped frames, not as a `clear`.
    pub fn discard(&mut self) {
        self.counters.frames_dropped += self.frames.len() as u64;
        self.frames.clear();
        self.partial_len = 0;
        self.partial_empty_ticks = 0;
        self.consumed_position = self.queued_position;
        self.pending_marks.clear();
        self.due_marks.clear();
    }

    /// The frame to send on this 20 ms tick, or `None` when nothing is queued (the caller
    /// sends silence). Marks whose audio has now all been handed out become due.
    pub fn next_frame(&mut self) -> Option<[u8; MULAW_FRAME_BYTES]> {
        if self.frames.is_empty() && self.partial_len > 0 {
            self.partial_empty_ticks += 1;
            if self.partial_empty_ticks >= PARTIAL_FLUSH_AFTER_EMPTY_TICKS {
                self.flush_partial();
            }
        }
        let frame = self.frames.pop_front()?;
        self.consumed_position += 1;
        self.counters.frames_played += 1;
        while let Some((position, _)) = self.pending_marks.front() {
            if *position > self.consumed_position {
                break;
            }
            if let Some((_, name)) = self.pending_marks.pop_front() {
                self.due_marks.push_back(name);
            }
        }
        Some(frame)
    }

    /// Next mark to echo, oldest first.
    pub fn poll_mark(&mut self) -> Option<String> {
        let name = self.due_marks.pop_front()?;
        self.counters.marks_echoed += 1;
        Some(name)
    }
}

impl Default for Playout {
    fn default() -> Self {
        Playout::new(PlayoutLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn discard_forgets_audio_and_marks_without_echoing_them() {
        let mut p = Playout::default();
        p.push_media(&[0x11; 3 * MULAW_FRAME_BYTES]);
        p.push_mark("m".into());
        p.discard();
        assert_eq!(p.next_frame(), None);
        assert_eq!(p.poll_mark(), None);
        let c = p.counters();
        assert_eq!((c.frames_dropped, c.clears, c.frames_cleared), (3, 0, 0));
        // A later stream's marks still work.
        p.push_media(&[0x22; MULAW_FRAME_BYTES]);
        p.push_mark("n".into());
        assert!(p.next_frame().is_some());
        assert_eq!(p.poll_mark().as_deref(), Some("n"));
    }

    /// Audio whose byte at offset `i` is `(start + i) % 251`, so frames are recognisable and
    /// never equal to silence by accident at a boundary.
    fn ramp(start: usize, len: usize) -> Vec<u8> {
        (start..start + len).map(|i| (i % 251) as u8).collect()
    }

    fn drain_marks(playout: &mut Playout) -> Vec<String> {
        std::iter::from_fn(|| playout.poll_mark()).collect()
    }

    #[test]
    fn odd_length_chunks_are_framed_in_order_with_remainder_kept() {
        let mut playout = Playout::default();
        let audio = ramp(0, 1000);
        // 1000 bytes in chunks of 1, 99, 333, 7 and 560: 6 whole frames + 40 bytes.
        let mut offset = 0;
        for len in [1, 99, 333, 7, 560] {
            playout.push_media(&audio[offset..offset + len]);
            offset += len;
        }
        assert_eq!(playout.queued_frames(), 6);
        let mut played = Vec::new();
        while let Some(frame) = playout.next_frame() {
            played.extend_from_slice(&frame);
        }
        assert_eq!(played, audio[..960]);
        // The 40-byte tail waits through one empty tick, then plays padded with silence.
        let tail = playout
            .next_frame()
            .expect("tail flushed on the second empty tick");
        assert_eq!(tail[..40], audio[960..]);
        assert!(tail[40..].iter().all(|&b| b == MULAW_SILENCE));
        assert_eq!(playout.next_frame(), None);
        assert_eq!(playout.counters().frames_played, 7);
    }

    #[test]
    fn a_partial_frame_completed_within_one_tick_is_not_padded() {
        let mut playout = Playout::default();
        let audio = ramp(3, 320);
        playout.push_media(&audio[..100]);
        assert_eq!(playout.next_frame(), None); // one empty tick: keep waiting
        playout.push_media(&audio[100..]);
        assert_eq!(playout.next_frame().unwrap()[..], audio[..160]);
        assert_eq!(playout.next_frame().unwrap()[..], audio[160..]);
    }

    #[test]
    fn marks_are_due_exactly_after_the_audio_before_them() {
        let mut playout = Playout::default();
        playout.push_media(&ramp(0, 3 * 160));
        playout.push_mark("a".into());
        playout.push_media(&ramp(7, 2 * 160));
        playout.push_mark("b".into());
        assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        for _ in 0..2 {
            assert!(playout.next_frame().is_some());
            assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        }
        assert!(playout.next_frame().is_some()); // third frame: "a" is due
        assert_eq!(drain_marks(&mut playout), ["a"]);
        assert!(playout.next_frame().is_some());
        assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        assert!(playout.next_frame().is_some());
        assert_eq!(drain_marks(&mut playout), ["b"]);
        assert_eq!(playout.counters().marks_echoed, 2);
    }

    #[test]
    fn mark_after_a_partial_frame_waits_for_that_audio() {
        let mut playout = Playout::default();
        let audio = ramp(0, 200);
        playout.push_media(&audio);
        playout.push_mark("end".into());
        assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        assert_eq!(playout.next_frame().unwrap()[..], audio[..160]);
        assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        let tail = playout.next_frame().unwrap();
        assert_eq!(tail[..40], audio[160..]);
        assert_eq!(drain_marks(&mut playout), ["end"]);
    }

    #[test]
    fn mark_on_idle_queue_is_due_at_once_and_marks_keep_order() {
        let mut playout = Playout::default();
        playout.push_mark("first".into());
        playout.push_mark("second".into());
        assert_eq!(drain_marks(&mut playout), ["first", "second"]);
        // Idle again after playing everything.
        playout.push_media(&ramp(0, 160));
        assert!(playout.next_frame().is_some());
        playout.push_mark("third".into());
        assert_eq!(drain_marks(&mut playout), ["third"]);
    }

    #[test]
    fn clear_mid_utterance_drops_audio_and_echoes_pending_marks_in_order() {
        let mut playout = Playout::default();
        for name in ["w1", "w2", "w3"] {
            playout.push_media(&ramp(0, 2 * 160));
            playout.push_mark(name.into());
        }
        playout.push_media(&ramp(0, 50)); // a partial frame, dropped too
        for _ in 0..3 {
            assert!(playout.next_frame().is_some());
        }
        assert_eq!(drain_marks(&mut playout), ["w1"]);
        playout.handle(Inbound::Clear);
        assert_eq!(drain_marks(&mut playout), ["w2", "w3"]);
        assert_eq!(playout.queued_frames(), 0);
        assert_eq!(playout.next_frame(), None);
        assert_eq!(playout.next_frame(), None); // the partial did not survive either
        let counters = playout.counters();
        assert_eq!(counters.clears, 1);
        assert_eq!(counters.frames_cleared, 3);
        assert_eq!(counters.frames_played, 3);
        // After the clear, marks are measured from the new audio only.
        playout.push_media(&ramp(0, 160));
        playout.push_mark("next".into());
        assert_eq!(drain_marks(&mut playout), Vec::<String>::new());
        assert!(playout.next_frame().is_some());
        assert_eq!(drain_marks(&mut playout), ["next"]);
    }

    #[test]
    fn the_bound_drops_new_audio_and_counts_it() {
        let mut playout = Playout::new(PlayoutLimits {
            max_frames: 4,
            max_pending_marks: 2,
        });
        let audio = ramp(0, 6 * 160);
        playout.push_media(&audio);
        assert_eq!(playout.queued_frames(), 4);
        assert_eq!(playout.counters().frames_dropped, 2);
        assert_eq!(playout.counters().frames_queued, 4);
        // The oldest audio is kept: what plays is the first four frames.
        assert_eq!(playout.next_frame().unwrap()[..], audio[..160]);
        playout.push_media(&ramp(0, 160));
        playout.push_media(&ramp(0, 160));
        assert_eq!(playout.counters().frames_dropped, 3);
        // Pending marks are bounded too.
        for name in ["m1", "m2", "m3"] {
            playout.push_mark(name.into());
        }
        assert_eq!(playout.counters().marks_dropped, 1);
        while playout.next_frame().is_some() {}
        assert_eq!(drain_marks(&mut playout), ["m1", "m2"]);
    }

    #[test]
    fn default_bound_is_ten_minutes_of_frames() {
        assert_eq!(
            PlayoutLimits::default().max_frames as u64 * 20,
            10 * 60 * 1000
        );
    }

    #[test]
    fn other_events_and_rejections_are_counted() {
        let mut playout = Playout::default();
        playout.handle(Inbound::Other("transcript".into()));
        playout.handle(Inbound::Other("hello".into()));
        playout.count_rejected();
        playout.handle(Inbound::Media(ramp(0, 160)));
        playout.handle(Inbound::Mark("m".into()));
        let counters = playout.counters();
        assert_eq!(counters.other_events, 2);
        assert_eq!(counters.rejected_messages, 1);
        assert_eq!(counters.frames_queued, 1);
        assert_eq!(playout.queued_frames(), 1);
    }

    proptest! {
        /// Whatever the chunking, the frames played are the bytes queued, in order, with only
        /// the last frame padded.
        #[test]
        fn framing_preserves_bytes(lens in proptest::collection::vec(0usize..500, 0..20)) {
            let total: usize = lens.iter().sum();
            let audio = ramp(11, total);
            let mut playout = Playout::default();
            let mut offset = 0;
            for len in &lens {
                playout.push_media(&audio[offset..offset + len]);
                offset += len;
            }
            playout.push_mark("end".into());
            let mut played = Vec::new();
            while let Some(frame) = playout.next_frame() {
                prop_assert!(playout.due_marks.is_empty() || playout.frames.is_empty());
                played.extend_from_slice(&frame);
            }
            prop_assert_eq!(played.len(), total.div_ceil(MULAW_FRAME_BYTES) * MULAW_FRAME_BYTES);
            prop_assert_eq!(&played[..total], &audio[..]);
            prop_assert!(played[total..].iter().all(|&b| b == MULAW_SILENCE));
            prop_assert_eq!(drain_marks(&mut playout), vec!["end".to_string()]);
        }
    }
}
