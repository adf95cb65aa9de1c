//! Which detector speaks for a call when an external engine is configured: the external
//! engine's decisions while it keeps its deadline, else the built-in detector's, which runs
//! alongside on the same frames.
//!
//! Owns the per-call deadline and the fallback rule, nothing else: it is fed events and `now`
//! and hands back the events the call should act on. Rules:
//! - the external engine must give its first decision within `timeout` of the first frame;
//! - after its `machine`, it must give its final event within `timeout` of the built-in
//!   detector's final event;
//! - a lost engine (socket closed or failed, frames it could not take) falls back at once.
//!
//! On fallback the built-in events not yet covered are released in order (a built-in
//! `machine` after an external one is not repeated); the fallback is reported once, for the
//! metric. A call that ends while the engine is still within its deadline takes the built-in
//! result without counting a fallback: the engine was not late.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::is_final;
use crate::amd::{AmdEvent, AmdEventKind, Cause};

/// Why the built-in detector's result was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// No decision within the deadline (a stalled or slow engine).
    Timeout,
    /// The engine's socket failed, closed or could not take the audio.
    Lost,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Timeout => "timeout",
            FallbackReason::Lost => "lost",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    External,
    Fallback,
    /// The call ended before the engine was late.
    Ended,
}

/// Built-in events a call can owe at once (machine, then its end); more are a bug upstream.
const MAX_HELD: usize = 8;

pub struct Arbiter {
    timeout: Duration,
    started: Option<Instant>,
    mode: Mode,
    held: VecDeque<AmdEvent>,
    builtin_final_at: Option<Instant>,
    ready: VecDeque<AmdEvent>,
    released_any: bool,
    released_machine: bool,
    done: bool,
    fallback: Option<FallbackReason>,
    fallback_reported: bool,
}

impl Arbiter {
    pub fn new(timeout: Duration) -> Arbiter {
        Arbiter {
            timeout,
            started: None,
            mode: Mode::External,
            held: VecDeque::new(),
            builtin_final_at: None,
            ready: VecDeque::new(),
            released_any: false,
            released_machine: false,
            done: false,
            fallback: None,
            fallback_reported: false,
        }
    }

    /// The first answered frame: the deadline starts.
    pub fn on_start(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// An event of the built-in detector.
    pub fn on_builtin(&mut self, now: Instant, e: AmdEvent) {
        if self.done {
            return;
        }
        if is_final(&e.kind) {
            self.builtin_final_at.get_or_insert(now);
        }
        match self.mode {
            Mode::External => {
                if self.held.len() < MAX_HELD {
                    self.held.push_back(e);
                }
            }
            Mode::Fallback | Mode::Ended => self.release_builtin(e),
        }
    }

    /// A decision of the external engine.
    pub fn on_external(&mut self, now: Instant, e: AmdEvent) {
        self.check_deadline(now);
        if self.mode != Mode::External || self.done {
            return;
        }
        if e.kind == AmdEventKind::Machine && self.released_machine {
            return;
        }
        self.release(e);
    }

    /// The engine is gone (socket error or close, audio it could not take).
    pub fn on_external_lost(&mut self, _now: Instant) {
        if self.mode == Mode::External && !self.done {
            self.fall_back(FallbackReason::Lost);
        }
    }

    /// The call ended: the built-in detector's remaining events (fed next through
    /// [`Arbiter::on_builtin`]) stand for it unless the engine already decided.
    pub fn on_call_end(&mut self, now: Instant) {
        self.check_deadline(now);
        if self.mode == Mode::External && !self.done {
            self.mode = Mode::Ended;
            self.drain_held();
        }
    }

    /// The next event the call should act on.
    pub fn poll_event(&mut self, now: Instant) -> Option<AmdEvent> {
        self.check_deadline(now);
        self.ready.pop_front()
    }

    /// A fallback to report (once).
    pub fn take_fallback(&mut self) -> Option<FallbackReason> {
        if self.fallback_reported {
            return None;
        }
        let f = self.fallback?;
        self.fallback_reported = true;
        Some(f)
    }

    pub fn fallback(&self) -> Option<FallbackReason> {
        self.fallback
    }

    /// When the engine is late next, if it is being waited for.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.mode != Mode::External || self.done {
            return None;
        }
        if !self.released_any {
            return self.started.map(|s| s + self.timeout);
        }
        if self.released_machine {
            return self.builtin_final_at.map(|b| b + self.timeout);
        }
        None
    }

    /// True once a final event was handed out.
    pub fn is_done(&self) -> bool {
        self.done && self.ready.is_empty()
    }

    /// Whether the engine's decisions stood for the call (no fallback, not ended early).
    pub fn external_decided(&self) -> bool {
        self.mode == Mode::External && self.done
    }

    fn check_deadline(&mut self, now: Instant) {
        if let Some(deadline) = self.next_deadline()
            && now >= deadline
        {
            self.fall_back(FallbackReason::Timeout);
        }
    }

    fn fall_back(&mut self, reason: FallbackReason) {
        self.mode = Mode::Fallback;
        self.fallback = Some(reason);
        self.drain_held();
    }

    fn drain_held(&mut self) {
        while let Some(e) = self.held.pop_front() {
            self.release_builtin(e);
        }
    }

    fn release_builtin(&mut self, e: AmdEvent) {
        if self.done {
            return;
        }
        if self.released_machine {
            match e.kind {
                AmdEventKind::Machine => return,
                // The call already acts on the engine's `machine`: a built-in `human` now
                // cannot undo that, so the greeting's end is reported as not found.
                AmdEventKind::Human | AmdEventKind::Unknown => {
                    return self.release(AmdEvent {
                        kind: AmdEventKind::BeepTimeout,
                        confidence: 0.5,
                        cause: Cause::new(format_args!("FALLBACK-{}", e.cause)),
                        ..e
                    });
                }
                _ => {}
            }
        }
        self.release(e);
    }

    fn release(&mut self, e: AmdEvent) {
        self.released_any = true;
        if e.kind == AmdEventKind::Machine {
            self.released_machine = true;
        }
        if is_final(&e.kind) {
            self.done = true;
        }
        self.ready.push_back(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::SampleTime;

    fn ev(kind: AmdEventKind, ms: u64, cause: &str) -> AmdEvent {
        AmdEvent {
            kind,
            at: SampleTime::from_ms(ms),
            confidence: 0.9,
            cause: Cause::new(format_args!("{cause}")),
        }
    }

    fn drain(a: &mut Arbiter, now: Instant) -> Vec<(&'static str, String)> {
        std::iter::from_fn(|| a.poll_event(now))
            .map(|e| (e.kind.as_str(), e.cause.to_string()))
            .collect()
    }

    const T: Duration = Duration::from_secs(4);

    #[test]
    fn the_engines_decisions_stand_when_on_time() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(T);
        a.on_start(t0);
        a.on_builtin(
            t0 + Duration::from_millis(900),
            ev(AmdEventKind::Human, 900, "B"),
        );
        assert_eq!(drain(&mut a, t0 + Duration::from_millis(900)), vec![]);
        a.on_external(
            t0 + Duration::from_millis(950),
            ev(AmdEventKind::Human, 900, "X"),
        );
        assert_eq!(
            drain(&mut a, t0 + Duration::from_millis(950)),
            vec![("human", "X".into())]
        );
        assert!(a.is_done() && a.external_decided());
        assert_eq!(a.take_fallback(), None);
        assert_eq!(drain(&mut a, t0 + T * 2), vec![]);
    }

    #[test]
    fn a_silent_engine_falls_back_at_the_deadline_once() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(T);
        a.on_start(t0);
        a.on_builtin(
            t0 + Duration::from_secs(2),
            ev(AmdEventKind::Human, 2000, "B"),
        );
        assert_eq!(a.next_deadline(), Some(t0 + T));
        assert_eq!(drain(&mut a, t0 + T - Duration::from_millis(1)), vec![]);
        assert_eq!(drain(&mut a, t0 + T), vec![("human", "B".into())]);
        assert_eq!(a.take_fallback(), Some(FallbackReason::Timeout));
        assert_eq!(a.take_fallback(), None);
        // A late answer changes nothing.
        a.on_external(t0 + T * 2, ev(AmdEventKind::Machine, 3000, "X"));
        assert_eq!(drain(&mut a, t0 + T * 2), vec![]);
        assert!(a.is_done() && !a.external_decided());
    }

    #[test]
    fn after_a_fallback_later_builtin_events_pass_straight_through() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(Duration::from_secs(1));
        a.on_start(t0);
        assert_eq!(drain(&mut a, t0 + Duration::from_secs(1)), vec![]);
        assert_eq!(a.take_fallback(), Some(FallbackReason::Timeout));
        a.on_builtin(t0, ev(AmdEventKind::Machine, 2500, "M"));
        a.on_builtin(t0, ev(AmdEventKind::MachineEndSilence, 6000, "E"));
        assert_eq!(
            drain(&mut a, t0),
            vec![("machine", "M".into()), ("machine_end_silence", "E".into())]
        );
        assert!(a.is_done());
    }

    #[test]
    fn an_engine_lost_after_machine_hands_over_the_greetings_end() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(T);
        a.on_start(t0);
        a.on_builtin(t0, ev(AmdEventKind::Machine, 2000, "BM"));
        a.on_external(t0, ev(AmdEventKind::Machine, 2000, "XM"));
        assert_eq!(drain(&mut a, t0), vec![("machine", "XM".into())]);
        assert_eq!(a.next_deadline(), None, "the built-in has not ended either");
        a.on_external_lost(t0);
        assert_eq!(a.take_fallback(), Some(FallbackReason::Lost));
        let beep = AmdEventKind::MachineEndBeep {
            beep_start: SampleTime::from_ms(5000),
            beep_end: SampleTime::from_ms(5300),
        };
        a.on_builtin(t0, ev(beep, 5320, "BEEP"));
        assert_eq!(drain(&mut a, t0), vec![("machine_end_beep", "BEEP".into())]);
    }

    #[test]
    fn a_stall_after_machine_falls_back_a_timeout_after_the_builtin_end() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(T);
        a.on_start(t0);
        a.on_external(t0, ev(AmdEventKind::Machine, 2000, "XM"));
        a.on_builtin(t0 + T, ev(AmdEventKind::Human, 2000, "BH"));
        assert_eq!(a.next_deadline(), Some(t0 + T * 2));
        assert_eq!(
            drain(&mut a, t0 + T * 2),
            vec![
                ("machine", "XM".into()),
                ("beep_timeout", "FALLBACK-BH".into())
            ]
        );
    }

    #[test]
    fn a_call_ending_early_takes_the_builtin_result_without_a_fallback() {
        let t0 = crate::runtime::clock::now();
        let mut a = Arbiter::new(T);
        a.on_start(t0);
        a.on_call_end(t0 + Duration::from_secs(1));
        a.on_builtin(t0, ev(AmdEventKind::Unknown, 1000, "HANGUP-1000"));
        assert_eq!(drain(&mut a, t0), vec![("unknown", "HANGUP-1000".into())]);
        assert_eq!(a.take_fallback(), None);
    }
}
