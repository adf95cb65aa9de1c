//! What a placed call comes to: the campaign outcome and the attempt's audit fields of a
//! call report, and the recovery of attempts a crash left live.

use std::collections::HashMap;

use crate::call::FlowOutcome;
use crate::campaign::retry::{AttemptEnd, after_attempt};
use crate::campaign::{AmdResult, Outcome};
use crate::store::{AttemptResult, Store, StoreError};

use crate::runtime::call::dial::DialReport;

use super::plan::{VoicePlan, voice_plan};

/// The campaign outcome of one placed call, and the audit fields of its attempt row.
pub fn attempt_end(report: &DialReport) -> (AttemptEnd, AttemptResult) {
    let amd = report.amd.and_then(AmdResult::parse);
    let (outcome, cause): (Outcome, Option<String>) = match report.outcome {
        "answered" if report.no_media => (Outcome::Failed, Some("no_media".into())),
        "answered" => match report.flow {
            Some(FlowOutcome::Voicemail { complete, .. }) => (
                Outcome::Voicemail,
                (!complete).then(|| "hung_up_mid_message".to_string()),
            ),
            // The greeting never ended within the beep timeout: nothing was deposited, so it
            // is not counted as a voicemail (a later attempt may leave the message).
            Some(FlowOutcome::MachineNoMessage {
                cause: "beep_timeout",
            }) => (Outcome::Failed, Some("beep_timeout".to_string())),
            // A machine and no message to leave (skip voicemail): the machine was reached.
            Some(FlowOutcome::MachineNoMessage { cause }) => {
                (Outcome::Voicemail, Some(cause.to_string()))
            }
            Some(FlowOutcome::HumanConnected { complete }) => (
                Outcome::HumanConnected,
                (!complete).then(|| "hung_up_mid_message".to_string()),
            ),
            Some(FlowOutcome::Failed { cause }) => (Outcome::Failed, Some(cause.to_string())),
            // Hung up by the callee before the detector decided anything conclusive.
            None => match amd {
                Some(AmdResult::Machine | AmdResult::MachineEndBeep) => {
                    (Outcome::Voicemail, Some("hung_up_during_amd".into()))
                }
                _ => (Outcome::HumanConnected, Some("hung_up_during_amd".into())),
            },
        },
        "busy" => (Outcome::Busy, None),
        "noAnswer" => (Outcome::NoAnswer, report.cause.map(str::to_string)),
        "cancelled" => (Outcome::Failed, Some("interrupted".into())),
        _ => (
            Outcome::Failed,
            Some(
                match report.sip_status {
                    Some(404 | 484 | 410 | 604) => "invalid_number",
                    Some(603) => "declined",
                    Some(403) => "forbidden",
                    _ => report.cause.unwrap_or("failed"),
                }
                .to_string(),
            ),
        ),
    };
    let end = AttemptEnd {
        outcome,
        cause: cause.clone(),
        sip_status: report.sip_status,
        amd,
    };
    let result = AttemptResult {
        outcome: Some(outcome),
        cause,
        sip_status: report.sip_status,
        sip_call_id: Some(report.call_id.clone()),
        answered_ms: report.answered_ms.map(|v| v as i64),
        amd_result: amd,
        amd_cause: report.amd_cause.clone(),
        amd_ms: report.amd_ms.map(|v| v as i64),
        machine_end: report.machine_end.map(str::to_string),
        playback_start_ms: report.playback_start_ms.map(|v| v as i64),
        played_ms: report.played_ms.map(|v| v as i64),
        talk_ms: report.talk_ms.map(|v| v as i64),
        agent_connected_ms: report.agent_connected_ms.map(|v| v as i64),
        agent_talk_ms: report.agent_talk_ms.map(|v| v as i64),
        agent_reconnects: report.agent_stats.as_ref().map(|s| i64::from(s.reconnects)),
        agent_end: report.agent_end.clone(),
        abandoned: crate::runtime::campaigns::compliance::abandoned(report, outcome),
    };
    (end, result)
}

/// Resolves attempts a crash left live: `failed` / `interrupted`, retried only if retries
/// remain. Returns how many it resolved.
pub fn recover_interrupted(store: &dyn Store, now_ms: i64) -> Result<u64, StoreError> {
    let live = store.live_attempts()?;
    let mut plans: HashMap<String, VoicePlan> = HashMap::new();
    for a in &live {
        if !plans.contains_key(&a.campaign_id) {
            let c = store.get_campaign(&a.campaign_id)?;
            plans.insert(a.campaign_id.clone(), voice_plan(&c.mode));
        }
        let plan = &plans[&a.campaign_id];
        let end = AttemptEnd {
            outcome: Outcome::Failed,
            cause: Some("interrupted".into()),
            sip_status: None,
            amd: None,
        };
        let event = after_attempt(
            &end,
            a.number,
            plan.max_retries,
            plan.retry_delay_ms,
            now_ms,
        );
        let result = AttemptResult {
            outcome: Some(Outcome::Failed),
            cause: Some("interrupted".into()),
            ..AttemptResult::default()
        };
        store.finish_attempt(&a.id, &result, &event, now_ms)?;
    }
    Ok(live.len() as u64)
}
