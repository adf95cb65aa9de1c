//! The calling window of a campaign (the channel's legal window narrowed by its `schedule`)
//! and how long a number waits for it: shared by the voice dialer and the SMS sender.

use crate::campaign::window::{self, LocalWindow, WindowCheck};
use crate::store::Campaign;

/// A day in milliseconds: how long a number whose window never opens waits to be checked again.
pub(crate) const DAY_MS: i64 = 24 * 3_600_000;

/// The channel's legal window narrowed by the campaign's `schedule`.
pub(crate) fn campaign_window(c: &Campaign) -> Result<LocalWindow, String> {
    let schedule = match &c.schedule {
        Some(v) => Some(window::validate_schedule(c.channel, v).map_err(|e| e.to_string())?),
        None => None,
    };
    window::effective_window(c.channel, schedule.as_ref()).map_err(|e| e.to_string())
}

/// Whether `phone` may be called (or texted) at `now` under `rules`; if not, until when it
/// waits and why. A number whose window never opens within the look-ahead is checked again a
/// day later.
pub(crate) fn window_wait(
    window: &Result<LocalWindow, String>,
    phone: &str,
    rules: &crate::campaign::rules::RuleSet,
    now: i64,
) -> Option<(i64, String)> {
    match window {
        Err(e) => Some((now + DAY_MS, format!("unusable schedule: {e}"))),
        Ok(w) => match window::check_with_rules(phone, w, rules, now) {
            WindowCheck::Open { .. } => None,
            WindowCheck::Closed {
                opens_at_ms,
                reason,
            } => Some((
                opens_at_ms.unwrap_or(now + DAY_MS).max(now + 1_000),
                reason.to_string(),
            )),
        },
    }
}
