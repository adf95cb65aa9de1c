use super::*;
use crate::call::FlowOutcome;
use crate::campaign::Outcome;
use crate::runtime::call::dial::DialReport;

fn answered(flow: Option<FlowOutcome>, amd: Option<&'static str>) -> DialReport {
    DialReport {
        outcome: "answered",
        cause: None,
        amd,
        amd_cause: None,
        sip_status: Some(200),
        answered_ms: Some(3_000),
        amd_ms: Some(1_500),
        beep_end_ms: None,
        call_id: "c@h".into(),
        playback_start_ms: None,
        played_ms: None,
        message: None,
        machine_end: None,
        frames_sent: 0,
        frames_late: 0,
        rx_late: 0,
        rx_lost: 0,
        no_media: false,
        agent_connected_ms: None,
        agent_talk_ms: None,
        agent_end: None,
        agent_stats: None,
        amd_engine: None,
        talk_ms: Some(9_000),
        flow,
        amd_record: None,
    }
}

#[test]
fn reports_map_to_campaign_outcomes() {
    use crate::call::GreetingEnd;
    let cases = [
        (
            answered(
                Some(FlowOutcome::Voicemail {
                    end: GreetingEnd::Beep,
                    complete: true,
                }),
                Some("machine_end_beep"),
            ),
            Outcome::Voicemail,
            None,
        ),
        (
            answered(
                Some(FlowOutcome::MachineNoMessage {
                    cause: "beep_timeout",
                }),
                Some("machine"),
            ),
            Outcome::Failed,
            Some("beep_timeout"),
        ),
        (
            answered(
                Some(FlowOutcome::MachineNoMessage {
                    cause: "skip_voicemail",
                }),
                Some("machine"),
            ),
            Outcome::Voicemail,
            Some("skip_voicemail"),
        ),
        (
            answered(
                Some(FlowOutcome::HumanConnected { complete: false }),
                Some("human"),
            ),
            Outcome::HumanConnected,
            Some("hung_up_mid_message"),
        ),
        (
            answered(Some(FlowOutcome::Failed { cause: "sit" }), None),
            Outcome::Failed,
            Some("sit"),
        ),
        (
            DialReport {
                no_media: true,
                ..answered(None, None)
            },
            Outcome::Failed,
            Some("no_media"),
        ),
        (
            DialReport {
                outcome: "failed",
                sip_status: Some(404),
                cause: Some("rejected"),
                ..answered(None, None)
            },
            Outcome::Failed,
            Some("invalid_number"),
        ),
    ];
    for (report, outcome, cause) in cases {
        let (end, result) = attempt_end(&report);
        assert_eq!(end.outcome, outcome, "{report:?}");
        assert_eq!(end.cause.as_deref(), cause, "{report:?}");
        assert_eq!(result.talk_ms, Some(9_000));
    }
    // A beep timeout may be retried; an invalid number may not.
    let (bt, _) = attempt_end(&answered(
        Some(FlowOutcome::MachineNoMessage {
            cause: "beep_timeout",
        }),
        None,
    ));
    assert!(crate::campaign::retry::is_retryable(&bt));
}

#[test]
fn mode_defaults_and_values() {
    let p = voice_plan(&serde_json::json!({}));
    assert_eq!(
        (p.calls_per_second, p.max_retries, p.retry_delay_ms, p.ai),
        (1.0, 0, 4 * 3_600_000, false)
    );
    let p = voice_plan(&serde_json::json!({"calls_per_second": 5, "max_retries": 2,
        "retry_delay": "30m", "ai": true, "voicemailAudioUrl": "/audio/a/file"}));
    assert_eq!(
        (p.calls_per_second, p.max_retries, p.retry_delay_ms, p.ai),
        (5.0, 2, 1_800_000, true)
    );
    assert_eq!(p.voicemail_url.as_deref(), Some("/audio/a/file"));
}
