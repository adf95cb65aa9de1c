//! Prospect states, the events the dialer reports, and the stats counters.
//!
//! Stats are the sum over prospects of [`contribution`]: each prospect adds 1 to `total` and
//! to exactly one of `queued`, `dialing`, `sending`, `sent`, `completed`, `cancelled`, and a
//! completed prospect adds 1 to exactly one outcome key. A change of state changes the
//! counters by `contribution(new) - contribution(old)`, applied in the same transaction as
//! the change, so the spec's invariants hold by construction:
//! `total = queued + dialing + sending + sent + completed + cancelled` (for voice
//! `sending = sent = 0`, the spec's `total = queued + dialing + completed + cancelled`),
//! `completed = noAnswer + busy + voicemail + humanConnected + failed + delivered`.
//! A prospect waiting for a retry is `queued`; its last outcome is not counted until final.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProspectStatus {
    Queued,
    Dialing,
    Sending,
    Sent,
    Completed,
    Cancelled,
}

impl ProspectStatus {
    pub const ALL: [ProspectStatus; 6] = [
        ProspectStatus::Queued,
        ProspectStatus::Dialing,
        ProspectStatus::Sending,
        ProspectStatus::Sent,
        ProspectStatus::Completed,
        ProspectStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProspectStatus::Queued => "queued",
            ProspectStatus::Dialing => "dialing",
            ProspectStatus::Sending => "sending",
            ProspectStatus::Sent => "sent",
            ProspectStatus::Completed => "completed",
            ProspectStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ProspectStatus> {
        ProspectStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ProspectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one attempt, spelled as the stats key it counts under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    NoAnswer,
    Busy,
    Voicemail,
    HumanConnected,
    Failed,
    Delivered,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Voicemail,
        Outcome::HumanConnected,
        Outcome::Failed,
        Outcome::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoAnswer => "noAnswer",
            Outcome::Busy => "busy",
            Outcome::Voicemail => "voicemail",
            Outcome::HumanConnected => "humanConnected",
            Outcome::Failed => "failed",
            Outcome::Delivered => "delivered",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The AMD result strings of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmdResult {
    Human,
    Machine,
    MachineEndBeep,
    Unknown,
}

impl AmdResult {
    pub const ALL: [AmdResult; 4] = [
        AmdResult::Human,
        AmdResult::Machine,
        AmdResult::MachineEndBeep,
        AmdResult::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AmdResult::Human => "human",
            AmdResult::Machine => "machine",
            AmdResult::MachineEndBeep => "machine_end_beep",
            AmdResult::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AmdResult> {
        AmdResult::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What the stats counters need to know of one prospect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProspectState {
    pub status: ProspectStatus,
    pub last_outcome: Option<Outcome>,
}

impl ProspectState {
    pub const NEW: ProspectState = ProspectState {
        status: ProspectStatus::Queued,
        last_outcome: None,
    };
}

/// What the dialer reports about one prospect.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProspectEvent {
    /// A voice attempt began (counts an attempt).
    Dialing,
    /// An SMS attempt began (counts an attempt).
    Sending,
    /// The SMS left; waiting for the delivery receipt.
    Sent,
    /// The prospect is done with this outcome.
    Finished {
        outcome: Outcome,
        amd: Option<AmdResult>,
    },
    /// The attempt ended with `outcome`; the prospect goes back to the queue until
    /// `next_attempt_at_ms` (Unix milliseconds).
    RetryLater {
        outcome: Outcome,
        amd: Option<AmdResult>,
        next_attempt_at_ms: i64,
    },
    /// Taken out of the queue before it was dialed or sent.
    Cancel,
}

impl ProspectEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ProspectEvent::Dialing => "dialing",
            ProspectEvent::Sending => "sending",
            ProspectEvent::Sent => "sent",
            ProspectEvent::Finished { .. } => "finished",
            ProspectEvent::RetryLater { .. } => "retry",
            ProspectEvent::Cancel => "cancel",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} prospect cannot take the event {event}")]
pub struct ProspectTransitionError {
    pub from: ProspectStatus,
    pub event: &'static str,
}

/// The next state of a prospect, or an error for an event that does not fit its state.
pub fn apply(
    state: ProspectState,
    event: &ProspectEvent,
) -> Result<ProspectState, ProspectTransitionError> {
    use ProspectStatus::*;
    let err = || ProspectTransitionError {
        from: state.status,
        event: event.name(),
    };
    let next = match (*event, state.status) {
        (ProspectEvent::Dialing, Queued) => ProspectState {
            status: Dialing,
            ..state
        },
        (ProspectEvent::Sending, Queued) => ProspectState {
            status: Sending,
            ..state
        },
        (ProspectEvent::Sent, Sending) => ProspectState {
            status: Sent,
            ..state
        },
        (ProspectEvent::Finished { outcome, .. }, Dialing | Sending | Sent) => ProspectState {
            status: Completed,
            last_outcome: Some(outcome),
        },
        (ProspectEvent::RetryLater { outcome, .. }, Dialing | Sending | Sent) => ProspectState {
            status: Queued,
            last_outcome: Some(outcome),
        },
        (ProspectEvent::Cancel, Queued) => ProspectState {
            status: Cancelled,
            ..state
        },
        _ => return Err(err()),
    };
    Ok(next)
}

/// The stats counters (every key of the spec's stats object but `progress`, which is derived).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: i64,
    pub queued: i64,
    pub dialing: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub no_answer: i64,
    pub busy: i64,
    pub voicemail: i64,
    pub human_connected: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
}

impl Counters {
    /// `floor(100 * completed / total)`, 0 for an empty campaign.
    pub fn progress(&self) -> i64 {
        if self.total <= 0 {
            0
        } else {
            (100 * self.completed.max(0)) / self.total
        }
    }

    pub fn add(&mut self, o: &Counters) {
        self.total += o.total;
        self.queued += o.queued;
        self.dialing += o.dialing;
        self.completed += o.completed;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
        self.no_answer += o.no_answer;
        self.busy += o.busy;
        self.voicemail += o.voicemail;
        self.human_connected += o.human_connected;
        self.sending += o.sending;
        self.sent += o.sent;
        self.delivered += o.delivered;
    }

    pub fn scaled(&self, k: i64) -> Counters {
        Counters {
            total: self.total * k,
            queued: self.queued * k,
            dialing: self.dialing * k,
            completed: self.completed * k,
            failed: self.failed * k,
            cancelled: self.cancelled * k,
            no_answer: self.no_answer * k,
            busy: self.busy * k,
            voicemail: self.voicemail * k,
            human_connected: self.human_connected * k,
            sending: self.sending * k,
            sent: self.sent * k,
            delivered: self.delivered * k,
        }
    }

    /// The change of the counters when one prospect goes from `old` to `new`.
    pub fn delta(old: ProspectState, new: ProspectState) -> Counters {
        let mut d = contribution(new);
        d.add(&contribution(old).scaled(-1));
        d
    }

    /// The spec's partition invariants (see the module docs).
    pub fn invariants_hold(&self) -> bool {
        self.total
            == self.queued
                + self.dialing
                + self.sending
                + self.sent
                + self.completed
                + self.cancelled
            && self.completed
                == self.no_answer
                    + self.busy
                    + self.voicemail
                    + self.human_connected
                    + self.failed
                    + self.delivered
    }
}

/// What one prospect adds to the counters.
pub fn contribution(state: ProspectState) -> Counters {
    let mut c = Counters {
        total: 1,
        ..Counters::default()
    };
    match state.status {
        ProspectStatus::Queued => c.queued = 1,
        ProspectStatus::Dialing => c.dialing = 1,
        ProspectStatus::Sending => c.sending = 1,
        ProspectStatus::Sent => c.sent = 1,
        ProspectStatus::Cancelled => c.cancelled = 1,
        ProspectStatus::Completed => {
            c.completed = 1;
            match state.last_outcome.unwrap_or(Outcome::Failed) {
                Outcome::NoAnswer => c.no_answer = 1,
                Outcome::Busy => c.busy = 1,
                Outcome::Voicemail => c.voicemail = 1,
                Outcome::HumanConnected => c.human_connected = 1,
                Outcome::Failed => c.failed = 1,
                Outcome::Delivered => c.delivered = 1,
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_counts_as_queued_and_final_outcome_counts_once() {
        let mut total = contribution(ProspectState::NEW);
        let mut s = ProspectState::NEW;
        for ev in [
            ProspectEvent::Dialing,
            ProspectEvent::RetryLater {
                outcome: Outcome::NoAnswer,
                amd: None,
                next_attempt_at_ms: 1,
            },
        ] {
            let n = apply(s, &ev).unwrap();
            total.add(&Counters::delta(s, n));
            s = n;
        }
        assert_eq!(total.queued, 1);
        assert_eq!(total.no_answer, 0);
        for ev in [
            ProspectEvent::Dialing,
            ProspectEvent::Finished {
                outcome: Outcome::Voicemail,
                amd: Some(AmdResult::MachineEndBeep),
            },
        ] {
            let n = apply(s, &ev).unwrap();
            total.add(&Counters::delta(s, n));
            s = n;
        }
        assert_eq!(total.completed, 1);
        assert_eq!(total.voicemail, 1);
        assert_eq!(total.queued, 0);
        assert!(total.invariants_hold());
        assert_eq!(total.progress(), 100);
        assert!(apply(s, &ProspectEvent::Dialing).is_err());
    }

    #[test]
    fn progress_floors() {
        let c = Counters {
            total: 5000,
            completed: 2890,
            ..Counters::default()
        };
        assert_eq!(c.progress(), 57);
        assert_eq!(Counters::default().progress(), 0);
    }
}
