//! One placed call: the call task that dials through the shared endpoint, plays the
//! campaign's message or bridges the agent, and records the attempt's end.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::prompt::Prompt;
use crate::call::VoiceMode;
use crate::campaign::retry::{AttemptEnd, after_attempt};
use crate::campaign::{Outcome, ProspectEvent, redact};
use crate::store::{Attempt, AttemptResult, Store, StoreError};

use crate::runtime::call::dial::{self, CallPlan, DialOptions, SharedEndpoint};
use crate::runtime::call::endpoint::SipEndpoint;

use super::caller_ids::call_record;
use super::outcomes::attempt_end;
use super::plan::VoicePlan;
use super::{DialerSettings, Ended};

pub(super) struct CallJob {
    pub(super) settings: DialerSettings,
    pub(super) plan: VoicePlan,
    pub(super) prompt: Option<Arc<Prompt>>,
    /// `ai` campaigns: the identification message (the campaign's or the built-in one).
    pub(super) identification: Option<Arc<Prompt>>,
    pub(super) attempt: Attempt,
    pub(super) store: Arc<dyn Store>,
    pub(super) endpoint: Arc<SipEndpoint>,
    pub(super) local_ip: std::net::IpAddr,
    pub(super) trunk: SocketAddr,
    pub(super) host: Arc<str>,
    pub(super) port: u16,
    pub(super) stop: CancellationToken,
    pub(super) ended: mpsc::UnboundedSender<Ended>,
}

impl CallJob {
    pub(super) async fn run(self) {
        let metrics = crate::runtime::metrics::global();
        metrics.active_calls.inc();
        let _active = scopeguard_dec(&metrics.active_calls);
        let s = &self.settings;
        let phone_log = redact(&self.attempt.phone, s.log_phone_numbers);
        let opts = DialOptions {
            target: self.attempt.phone.clone(),
            from: self.attempt.caller_id.clone(),
            trunk: s.trunk_uri.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            ring_timeout: s.ring_timeout,
            sip_addr: s.sip_addr,
            rtp_ports: s.rtp_ports.clone(),
            send_pai: s.send_pai,
            voicemail: self.prompt.clone(),
            agent: if self.plan.ai {
                (match (&s.agent, &self.plan.agent_url) {
                    _ if self.plan.agent_sip_uri.is_some() => {
                        Some(crate::runtime::call::agent_ws::AgentTarget {
                            sip_uri: self.plan.agent_sip_uri.clone(),
                            ..s.agent_defaults.clone()
                        })
                    }
                    (Some(t), None) => Some(t.clone()),
                    (Some(t), Some(u)) => Some(crate::runtime::call::agent_ws::AgentTarget {
                        url: u.clone(),
                        ..t.clone()
                    }),
                    (None, Some(u)) => Some(crate::runtime::call::agent_ws::AgentTarget {
                        url: u.clone(),
                        ..s.agent_defaults.clone()
                    }),
                    (None, None) => None,
                })
                .map(|t| crate::runtime::call::agent_ws::AgentTarget {
                    identification: self.identification.clone(),
                    ..t
                })
            } else {
                None
            },
            campaign_id: Some(self.attempt.campaign_id.clone()),
        };
        let shared = SharedEndpoint {
            endpoint: &self.endpoint,
            local_ip: self.local_ip,
            trunk: self.trunk,
            trunk_host: &self.host,
            trunk_port: self.port,
        };
        let plan = CallPlan {
            mode: VoiceMode {
                has_message: self.prompt.is_some(),
                ai: self.plan.ai,
            },
        };
        let external = s.amd_engines.for_campaign(
            self.plan.amd_provider,
            self.plan.amd_external_url.as_deref(),
        );
        let mut report = dial::run_call_with(
            &shared,
            &opts,
            Some(plan),
            &s.amd,
            s.model.clone(),
            external,
            self.stop.clone(),
        )
        .await;
        let (end, result) = match &report {
            Ok(r) => attempt_end(r),
            Err(e) => {
                let end = AttemptEnd {
                    outcome: Outcome::Failed,
                    cause: Some("local_error".into()),
                    sip_status: None,
                    amd: None,
                };
                tracing::warn!(attempt = %self.attempt.id, error = %e, "call could not be placed");
                let result = AttemptResult {
                    outcome: Some(Outcome::Failed),
                    cause: Some(format!("local_error: {e}")),
                    ..AttemptResult::default()
                };
                (end, result)
            }
        };
        let now = crate::runtime::clock::wall_ms();
        let event: ProspectEvent = after_attempt(
            &end,
            self.attempt.number,
            self.plan.max_retries,
            self.plan.retry_delay_ms,
            now,
        );
        tracing::info!(
            attempt = %self.attempt.id,
            phone = %phone_log,
            outcome = end.outcome.as_str(),
            cause = end.cause.as_deref().unwrap_or(""),
            amd = end.amd.map(|a| a.as_str()).unwrap_or(""),
            "call ended"
        );
        metrics.call_ended(&crate::runtime::metrics::CallMetrics {
            outcome: end.outcome.as_str(),
            amd: end.amd.map(|a| a.as_str()),
            amd_ms: result.amd_ms.map(|v| v.max(0) as u64),
            sip_status: end.sip_status,
            no_response: report.as_ref().is_ok_and(|r| {
                r.outcome == "failed" && r.cause == Some("timeout") && r.sip_status.is_none()
            }),
            rx_late: report.as_ref().map_or(0, |r| r.rx_late),
            rx_lost: report.as_ref().map_or(0, |r| r.rx_lost),
            tx_late: report.as_ref().map_or(0, |r| r.frames_late),
        });
        let record = call_record(self.attempt.started_at_ms, &result);
        let result_amd_ms = result.amd_ms;
        let abandoned = result.abandoned;
        let store = self.store.clone();
        let attempt_id = self.attempt.id.clone();
        let finished = tokio::task::spawn_blocking(move || {
            store.finish_attempt(&attempt_id, &result, &event, now)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = finished.map_err(|e| StoreError::Backend(e.to_string())) {
            // The attempt stays live in the store and is resolved as interrupted at the
            // next start: the outcome is not lost silently, and nobody is dialled twice.
            tracing::error!(attempt = %self.attempt.id, error = %e, "cannot record the outcome");
        }
        let rec = report.as_mut().ok().and_then(|r| r.amd_record.take());
        if let (Some(records), Some(rec)) = (s.amd_record.clone(), rec) {
            let id = self.attempt.id.clone();
            let (amd_result, amd_ms) = (end.amd.map(|a| a.as_str()), result_amd_ms);
            let outcome = end.outcome.as_str();
            let saved = tokio::task::spawn_blocking(move || {
                records.save(
                    &id,
                    crate::runtime::amd::records::Decision {
                        amd_result,
                        amd_ms,
                        outcome: Some(outcome),
                    },
                    &rec,
                )
            })
            .await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(attempt = %self.attempt.id, error = %e, "cannot keep the AMD record");
            }
        }
        let _ = self.ended.send(Ended {
            live_answer: abandoned.map(|a| (self.attempt.started_at_ms, a)),
            campaign_id: self.attempt.campaign_id.clone(),
            caller_id: self.attempt.caller_id.clone(),
            record,
            frames_sent: report.as_ref().map_or(0, |r| r.frames_sent),
            frames_late: report.as_ref().map_or(0, |r| r.frames_late),
        });
    }
}

/// Lowers `gauge` by one when dropped (a call task ends however it ends).
pub(super) fn scopeguard_dec(gauge: &prometheus::IntGauge) -> impl Drop + '_ {
    struct Dec<'a>(&'a prometheus::IntGauge);
    impl Drop for Dec<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    Dec(gauge)
}
