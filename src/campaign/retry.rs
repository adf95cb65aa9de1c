//! What happens to a prospect after one attempt: done with an outcome, or back to the queue
//! for a later retry.
//!
//! Owns the retry rules of `mode.max_retries` / `mode.retry_delay`: retry no answer, busy and
//! failures that may pass later (5xx, timeouts, an attempt interrupted by a crash); never retry
//! a voicemail, a human, an invalid number, a SIT tone or a fax. Pure: `now_ms` is an argument.

use super::prospect::{AmdResult, Outcome, ProspectEvent};

/// How one attempt ended, as the dialer reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptEnd {
    pub outcome: Outcome,
    /// Why, when the outcome alone does not say it (`sit`, `fax`, `interrupted`,
    /// `auth_failed`, `timeout`, a SIP reason).
    pub cause: Option<String>,
    pub sip_status: Option<u16>,
    pub amd: Option<AmdResult>,
}

/// Causes that say the number itself is wrong or refuses us: retrying cannot help and would
/// only annoy or burn the caller ID.
const FINAL_CAUSES: [&str; 6] = [
    "sit",
    "fax",
    "invalid_number",
    "auth_failed",
    "declined",
    "forbidden",
];

/// Whether an attempt that ended this way is worth another try later.
pub fn is_retryable(end: &AttemptEnd) -> bool {
    match end.outcome {
        Outcome::NoAnswer | Outcome::Busy => true,
        Outcome::Voicemail | Outcome::HumanConnected | Outcome::Delivered => false,
        Outcome::Failed => {
            if end
                .cause
                .as_deref()
                .is_some_and(|c| FINAL_CAUSES.contains(&c))
            {
                return false;
            }
            match end.sip_status {
                // Temporarily unavailable, request timeout, and every server failure.
                Some(408 | 480 | 500..=599) => true,
                // Not found, gone, address incomplete, forbidden, decline, other 4xx/6xx:
                // the same request will fail the same way.
                Some(400..=499 | 600..=699) => false,
                // No final response: a transport timeout, or the attempt was interrupted.
                _ => true,
            }
        }
    }
}

/// The event to record for the prospect after its `attempts_made`-th attempt ended.
/// `max_retries` retries means at most `1 + max_retries` attempts.
pub fn after_attempt(
    end: &AttemptEnd,
    attempts_made: u32,
    max_retries: u32,
    retry_delay_ms: i64,
    now_ms: i64,
) -> ProspectEvent {
    if is_retryable(end) && attempts_made <= max_retries {
        ProspectEvent::RetryLater {
            outcome: end.outcome,
            amd: end.amd,
            next_attempt_at_ms: now_ms + retry_delay_ms,
        }
    } else {
        ProspectEvent::Finished {
            outcome: end.outcome,
            amd: end.amd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(outcome: Outcome, cause: Option<&str>, sip_status: Option<u16>) -> AttemptEnd {
        AttemptEnd {
            outcome,
            cause: cause.map(str::to_string),
            sip_status,
            amd: None,
        }
    }

    #[test]
    fn what_is_retried() {
        let yes = [
            end(Outcome::NoAnswer, Some("timeout"), None),
            end(Outcome::Busy, None, Some(486)),
            end(Outcome::Failed, None, Some(503)),
            end(Outcome::Failed, None, Some(480)),
            end(Outcome::Failed, None, Some(408)),
            end(Outcome::Failed, Some("timeout"), None),
            end(Outcome::Failed, Some("interrupted"), None),
        ];
        for e in &yes {
            assert!(is_retryable(e), "{e:?}");
        }
        let no = [
            end(Outcome::Voicemail, None, Some(200)),
            end(Outcome::HumanConnected, None, Some(200)),
            end(Outcome::Failed, None, Some(404)),
            end(Outcome::Failed, None, Some(484)),
            end(Outcome::Failed, None, Some(603)),
            end(Outcome::Failed, Some("sit"), Some(200)),
            end(Outcome::Failed, Some("fax"), Some(200)),
            end(Outcome::Failed, Some("auth_failed"), Some(401)),
        ];
        for e in &no {
            assert!(!is_retryable(e), "{e:?}");
        }
    }

    #[test]
    fn retries_are_bounded_and_delayed() {
        let busy = end(Outcome::Busy, None, Some(486));
        let hour = 3_600_000;
        assert_eq!(
            after_attempt(&busy, 1, 2, hour, 1_000),
            ProspectEvent::RetryLater {
                outcome: Outcome::Busy,
                amd: None,
                next_attempt_at_ms: 1_000 + hour
            }
        );
        assert!(matches!(
            after_attempt(&busy, 2, 2, hour, 0),
            ProspectEvent::RetryLater { .. }
        ));
        assert_eq!(
            after_attempt(&busy, 3, 2, hour, 0),
            ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None
            }
        );
        assert!(matches!(
            after_attempt(&busy, 1, 0, hour, 0),
            ProspectEvent::Finished { .. }
        ));
        let vm = end(Outcome::Voicemail, None, Some(200));
        assert!(matches!(
            after_attempt(&vm, 1, 5, hour, 0),
            ProspectEvent::Finished { .. }
        ));
    }
}
