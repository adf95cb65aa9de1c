//! When a person must hear the identification message (TSR 16 CFR 310.4(b)(4)(iii)): a person
//! who is not connected to the agent within 2 s of the end of their greeting is abandoned, and
//! the call must then play a recorded message naming the seller and a number to call back.
//!
//! [`Identification`] is armed when the detector says a person is there (`human`/`unknown`, the
//! end of the greeting), disarmed when the agent takes them, and fires once at the deadline or
//! at once when the agent gives up first. After it fires the call belongs to the message: a
//! late agent is not handed the person (the call is abandoned in law either way, and a person
//! who has heard "sorry we missed you, call us back" must not be pitched next); the message
//! plays to its end and the call hangs up.
//!
//! Owns that decision only: it must not play audio, hang up, or read the clock (time is an
//! argument). Pure.

use std::time::{Duration, Instant};

/// A person must be connected within this long after their greeting ends.
pub const GRACE: Duration = Duration::from_millis(crate::campaign::abandon::GRACE_MS as u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No person yet (or no message to play).
    Idle,
    /// A person waits for the agent until this instant.
    Waiting(Instant),
    /// The agent took the person in time.
    Connected,
    /// The message started at this instant.
    Identified(Instant),
}

/// One call's identification deadline.
#[derive(Clone, Copy, Debug)]
pub struct Identification {
    state: State,
    enabled: bool,
}

impl Identification {
    /// `enabled`: the call has an identification message to play (an `ai` campaign's call).
    pub fn new(enabled: bool) -> Identification {
        Identification {
            state: State::Idle,
            enabled,
        }
    }

    /// The detector decided a person answered at `now` (their greeting ended): they must be
    /// connected by `now + GRACE`. Only the first decision counts.
    pub fn on_greeting_end(&mut self, now: Instant) {
        if self.enabled && self.state == State::Idle {
            self.state = State::Waiting(now + GRACE);
        }
    }

    /// The agent took the person: no message. Too late once the message started.
    pub fn on_connected(&mut self) {
        if matches!(self.state, State::Idle | State::Waiting(_)) {
            self.state = State::Connected;
        }
    }

    /// The agent gave up before the deadline and there is nothing else to play: whether the
    /// message starts now (`true` once, for a waiting person).
    pub fn give_up(&mut self, now: Instant) -> bool {
        if let State::Waiting(_) = self.state {
            self.state = State::Identified(now);
            return true;
        }
        false
    }

    /// Whether the message must start now: `true` once, when the deadline has passed with
    /// the person still waiting.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.state {
            State::Waiting(deadline) if now >= deadline => {
                self.state = State::Identified(now);
                true
            }
            _ => false,
        }
    }

    /// When [`Identification::poll`] must next be called.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Waiting(d) => Some(d),
            _ => None,
        }
    }

    /// When the message started, if it did.
    pub fn identified_at(&self) -> Option<Instant> {
        match self.state {
            State::Identified(t) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn a_person_still_waiting_at_the_deadline_hears_the_message_once() {
        let t0 = crate::runtime::clock::now();
        let mut id = Identification::new(true);
        assert_eq!(id.deadline(), None);
        id.on_greeting_end(ms(t0, 1_500));
        // A second decision does not move the deadline.
        id.on_greeting_end(ms(t0, 1_900));
        assert_eq!(id.deadline(), Some(ms(t0, 3_500)));
        assert!(!id.poll(ms(t0, 3_499)));
        assert!(id.poll(ms(t0, 3_500)));
        assert!(!id.poll(ms(t0, 3_600)), "fires once");
        assert_eq!(id.identified_at(), Some(ms(t0, 3_500)));
        assert_eq!(id.deadline(), None);
        // The agent arriving now changes nothing: the message has the call.
        id.on_connected();
        assert_eq!(id.identified_at(), Some(ms(t0, 3_500)));
    }

    #[test]
    fn a_person_connected_in_time_never_hears_it() {
        let t0 = crate::runtime::clock::now();
        let mut id = Identification::new(true);
        id.on_greeting_end(ms(t0, 1_000));
        id.on_connected();
        assert_eq!(id.deadline(), None);
        assert!(!id.poll(ms(t0, 10_000)));
        assert!(!id.give_up(ms(t0, 10_000)));
        assert_eq!(id.identified_at(), None);
        // Connected before the decision (the agent was ready): the same.
        let mut id = Identification::new(true);
        id.on_connected();
        id.on_greeting_end(ms(t0, 1_000));
        assert!(!id.poll(ms(t0, 10_000)));
    }

    #[test]
    fn an_agent_giving_up_early_starts_it_at_once() {
        let t0 = crate::runtime::clock::now();
        let mut id = Identification::new(true);
        assert!(!id.give_up(t0), "no person yet");
        id.on_greeting_end(ms(t0, 1_000));
        assert!(id.give_up(ms(t0, 1_200)));
        assert_eq!(id.identified_at(), Some(ms(t0, 1_200)));
        assert!(!id.poll(ms(t0, 3_000)));
    }

    #[test]
    fn without_a_message_nothing_is_armed() {
        let t0 = crate::runtime::clock::now();
        let mut id = Identification::new(false);
        id.on_greeting_end(t0);
        assert_eq!(id.deadline(), None);
        assert!(!id.poll(ms(t0, 5_000)));
        assert!(!id.give_up(ms(t0, 5_000)));
    }
}
