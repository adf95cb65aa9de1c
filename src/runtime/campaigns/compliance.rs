//! The dialer's compliance gate at claim time: a prospect a rule refuses (its number on a
//! do-not-call list) is cancelled with the rule's reason instead of being buffered for a call.
//! The store checks again when the attempt is begun, just before the INVITE.
//!
//! Also owns [`ComplianceSettings`] (the state rules, the abandonment limit and the built-in
//! identification message a dialer run uses, loaded once at start and passed in its
//! settings: no process-wide state), each attempt's audit record and whether it was
//! abandoned. It must not decide a rule itself: that is `campaign::{rules, window, abandon}`.

use std::sync::Arc;

use crate::audio::prompt::Prompt;
use crate::campaign::rules::RuleSet;
use crate::store::{Campaign, DNC_REASON, Prospect, Store};

/// What a dialer run needs to stay within the rules, from the configuration.
#[derive(Clone)]
pub struct ComplianceSettings {
    /// The state calling rules in force (`rules_dir`, else the files in the binary).
    pub rules: Arc<RuleSet>,
    /// `max_abandon_rate`: no campaign's rolling 30-day abandonment may pass it.
    pub max_abandon_rate: f64,
    /// The identification message of an `ai` campaign without
    /// `mode.identificationAudioUrl` (the built-in clip, [`crate::audio::identification`]).
    pub identification: Arc<Prompt>,
}

impl Default for ComplianceSettings {
    /// The embedded rules, the legal 3 % and the built-in clip.
    fn default() -> ComplianceSettings {
        ComplianceSettings {
            rules: Arc::new(RuleSet::embedded()),
            max_abandon_rate: crate::campaign::abandon::DEFAULT_MAX_RATE,
            identification: Arc::new(
                crate::audio::identification::default_prompt()
                    .expect("the built-in identification clip is valid (tested)"),
            ),
        }
    }
}

/// The reason `campaign` may not contact `p` at all, if any.
pub(super) fn refusal(
    store: &dyn Store,
    _campaign: &Campaign,
    p: &Prospect,
) -> Option<&'static str> {
    if store.dnc_hit(&p.phone).is_some() {
        return Some(DNC_REASON);
    }
    None
}

/// Cancels a refused prospect (off the dialer task); a prospect no longer queued is left be.
pub(super) async fn cancel(
    store: &Arc<dyn Store>,
    campaign_id: &str,
    p: &Prospect,
    reason: &'static str,
    now_ms: i64,
) {
    let s = store.clone();
    let (cid, pid) = (campaign_id.to_string(), p.id.clone());
    match tokio::task::spawn_blocking(move || s.cancel_prospect(&cid, &pid, reason, now_ms)).await {
        Ok(Ok(_)) => tracing::debug!(campaign = %campaign_id, reason, "prospect cancelled"),
        Ok(Err(e)) => {
            tracing::debug!(campaign = %campaign_id, error = %e, "prospect not cancelled")
        }
        Err(_) => {}
    }
}

/// The dialer's part of an attempt's audit record (the store adds `dnc`, `suppression` and
/// `consent` in the transaction that begins the attempt): the window and state rule that
/// allowed the call at `now`, the caller ID's use against its caps, and the campaign's
/// abandonment budget.
#[allow(clippy::too_many_arguments)]
pub(super) fn audit(
    window: &Result<crate::campaign::window::LocalWindow, String>,
    phone: &str,
    caller_id: &str,
    recent_calls_ms: &[i64],
    cfg: &crate::campaign::callerid::CallerIdConfig,
    abandonment: Option<crate::campaign::abandon::BudgetPace>,
    rules: &RuleSet,
    now: i64,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let rule = rules.for_phone(phone).map(|r| {
        json!({
            "state": r.state, "name": r.name, "version": r.version, "file": r.file,
            "effective": r.effective, "frequencyCap24h": r.frequency_cap_24h,
            "callerIdNotice": r.caller_id_notice, "recordingNotice": r.recording_notice,
        })
    });
    let hour = recent_calls_ms
        .iter()
        .filter(|t| now - **t < 3_600_000)
        .count();
    let day = recent_calls_ms
        .iter()
        .filter(|t| now - **t < 86_400_000)
        .count();
    let mut m = serde_json::Map::new();
    m.insert("checkedAtMs".into(), Value::from(now));
    m.insert(
        "window".into(),
        json!({
            "window": window.as_ref().map(|w| w.to_string()).unwrap_or_default(),
            "zones": crate::campaign::window::zones_for(phone).unwrap_or(&[]),
            "open": true,
        }),
    );
    m.insert("stateRule".into(), rule.unwrap_or(Value::Null));
    m.insert(
        "callerId".into(),
        json!({
            "number": caller_id,
            "callsLastHour": hour,
            "callsLast24h": day,
            "maxPerHour": cfg.max_calls_per_hour,
            "maxPerDay": cfg.max_calls_per_day,
        }),
    );
    m.insert(
        "abandonment".into(),
        abandonment.map_or(Value::Null, |b| {
            json!({
                "liveAnswers30d": b.answered,
                "abandoned30d": b.abandoned,
                "rate30d": b.rate(),
                "maxRate": b.max_rate,
                "paceFactor": b.factor,
                "state": b.state.as_str(),
            })
        }),
    );
    m
}

/// Whether a placed call was abandoned (`None`: no person answered). The greeting ends when
/// the detector decides; the person is connected when the agent's socket opened or the message
/// (or the agent's fallback message) started; a person who hung up before the detector
/// decided left before anyone could reach them. A person who heard the identification
/// message was not taken by the agent in time: abandoned, whatever the timings say.
pub(super) fn abandoned(
    report: &crate::runtime::call::dial::DialReport,
    outcome: crate::campaign::Outcome,
) -> Option<bool> {
    use crate::campaign::abandon::is_abandoned;
    if report.answered_ms.is_none() || outcome != crate::campaign::Outcome::HumanConnected {
        return None;
    }
    if report
        .agent_stats
        .as_ref()
        .is_some_and(|s| s.identification)
    {
        return Some(true);
    }
    let greeting_end = report.amd_ms.map(|v| v as i64);
    let connected = report
        .agent_connected_ms
        .or(report.playback_start_ms)
        .map(|v| v as i64)
        .or_else(|| {
            greeting_end
                .is_none()
                .then_some(report.talk_ms.unwrap_or(0) as i64)
        });
    Some(is_abandoned(true, greeting_end, connected))
}

/// Gives a campaign joining the dialer its abandonment limit (`max_rate`: the configured one)
/// and the live answers of its last 30 days (so a restart does not reset its budget).
pub(super) async fn load_budget(
    store: &Arc<dyn Store>,
    pacing: &mut crate::campaign::scheduler::Pacing,
    c: &Campaign,
    max_rate: f64,
    now: i64,
) {
    use crate::campaign::abandon::{PERIOD_MS, max_rate_for};
    // A person on a campaign without an agent hears its prepared message at once (well within
    // the 2 s), so only a campaign that bridges people to an agent, or has no message, can
    // abandon a call: the others dial at their full speed with no budget (audit: null).
    let can_abandon = c.mode.get("ai").and_then(serde_json::Value::as_bool) == Some(true)
        || c.mode.get("voicemailAudioUrl").is_none();
    if !can_abandon {
        pacing.set_max_abandon_rate(&c.id, None);
        return;
    }
    pacing.set_max_abandon_rate(&c.id, Some(max_rate_for(&c.mode, max_rate)));
    if pacing
        .abandonment(&c.id, now)
        .is_some_and(|b| b.answered > 0)
    {
        return; // still known from before a pause (calls were in flight)
    }
    let s = store.clone();
    let id = c.id.clone();
    match tokio::task::spawn_blocking(move || s.live_answers_since(&id, now - PERIOD_MS)).await {
        Ok(Ok(answers)) => {
            for (at, a) in answers {
                pacing.record_live_answer(&c.id, at, a);
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(campaign = %c.id, error = %e, "cannot read the abandonment history")
        }
        Err(_) => {}
    }
}
