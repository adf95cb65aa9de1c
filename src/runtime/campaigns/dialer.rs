//! The campaign dialer: the one task that owns which prospect is dialled when. It claims due
//! prospects of `dialing` campaigns, paces them (`campaign::scheduler`), checks the calling
//! window and picks a caller ID just before each call, records the attempt before the INVITE
//! leaves, places the call through one shared SIP endpoint, and records the outcome and the
//! retry decision (`campaign::retry`) in one transaction when the call ends.
//!
//! Crash safety: an attempt row exists before its INVITE, so after a crash the attempts left
//! live are resolved at start-up as `failed` / `interrupted` (retried only if retries remain)
//! and no prospect can have two live calls (the store refuses a second live attempt).
//! It must not hold policy of its own: pacing, retries, windows and caller-ID choice are the
//! pure `campaign` modules; this task only feeds them time and events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::amd::{AmdConfig, BeepModel};
use crate::audio::prompt::Prompt;
use crate::call::{FlowOutcome, VoiceMode};
use crate::campaign::callerid::{
    self, CallRecord, CallerIdConfig, CallerIdSelector, DidView, HealthBand, NoCallerId,
};
use crate::campaign::retry::{AttemptEnd, after_attempt};
use crate::campaign::scheduler::{Hold, NodeLimits, Pacing};
use crate::campaign::window::{self, LocalWindow, WindowCheck};
use crate::campaign::{AmdResult, CampaignStatus, Channel, Outcome, ProspectEvent, redact};
use crate::store::{
    Attempt, AttemptResult, Campaign, DidState, DidUpdate, PageRequest, Prospect, Store, StoreError,
};

use crate::runtime::call::dial::{self, CallPlan, DialOptions, DialReport, SharedEndpoint};
use crate::runtime::call::endpoint::SipEndpoint;
use crate::runtime::call::net;

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dial(#[from] net::DialError),
    #[error("cannot bind the SIP socket {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// What the dialer needs from the configuration.
#[derive(Clone)]
pub struct DialerSettings {
    pub trunk_uri: String,
    pub sip_addr: SocketAddr,
    pub rtp_ports: RangeInclusive<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub send_pai: bool,
    /// How long a call may ring before it is `noAnswer` (at least 15 s / 4 rings by rule).
    pub ring_timeout: Duration,
    pub limits: NodeLimits,
    pub amd: AmdConfig,
    pub model: Option<BeepModel>,
    /// The node's AMD engine (`ACTIVE_AMD_PROVIDER`) and the external engine's settings;
    /// `mode.amdProvider` / `mode.amdExternalUrl` override them per campaign.
    pub amd_engines: crate::runtime::call::amd_external::AmdEngines,
    pub log_phone_numbers: bool,
    /// The AI agent humans of `ai` campaigns are bridged to (`agent_url`; `mode.agentUrl`
    /// overrides the URL per campaign).
    pub agent: Option<crate::runtime::call::agent_ws::AgentTarget>,
    /// Headers, reconnect budget and fallback message for a campaign's own `mode.agentUrl`
    /// when no global agent is configured (its URL is unused).
    pub agent_defaults: crate::runtime::call::agent_ws::AgentTarget,
    /// How many due prospects are read per campaign at a time.
    pub claim_batch: u32,
    pub caller_id: CallerIdConfig,
    /// `amd_record`: where answered calls' AMD records are kept (`None`: not kept).
    pub amd_record: Option<Arc<crate::runtime::amd::records::AmdRecordStore>>,
    /// State rules, abandonment limit and built-in identification message.
    pub compliance: crate::runtime::campaigns::compliance::ComplianceSettings,
}

/// Where prepared voicemail and identification prompts come from (prepared once per campaign
/// at start).
pub trait Messages: Send + Sync + 'static {
    /// The prepared prompt of a `voicemailAudioUrl` or `identificationAudioUrl`, if it is ready.
    fn get(&self, url: &str) -> Option<Arc<Prompt>>;
    /// Prepares a URL that is not ready (a campaign found `dialing` after a restart).
    fn prepare<'a>(
        &'a self,
        url: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move { Err(format!("{url} was not prepared at campaign start")) })
    }
}

impl Messages for crate::runtime::fetch::VoicemailLibrary {
    fn get(&self, url: &str) -> Option<Arc<Prompt>> {
        crate::runtime::fetch::VoicemailLibrary::get(self, url)
    }

    fn prepare<'a>(
        &'a self,
        url: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            crate::runtime::fetch::VoicemailLibrary::prepare(self, url)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// A campaign's `mode`, as the dialer uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct VoicePlan {
    pub calls_per_second: f64,
    pub max_retries: u32,
    pub retry_delay_ms: i64,
    pub voicemail_url: Option<String>,
    /// `mode.amdProvider`: this campaign's AMD engine instead of the node's.
    pub amd_provider: Option<crate::config::AmdProviderKind>,
    /// `mode.amdExternalUrl`: this campaign's external AMD engine.
    pub amd_external_url: Option<String>,
    pub ai: bool,
    /// `mode.agentUrl`: this campaign's agent instead of the configured one.
    pub agent_url: Option<String>,
    /// `mode.agentSipUri`: hand humans to a SIP agent (a second call) instead.
    pub agent_sip_uri: Option<String>,
    /// `mode.identificationAudioUrl`: what a person the agent did not take within 2 s hears
    /// (the built-in clip without it).
    pub identification_url: Option<String>,
}

/// Defaults where `mode` is silent: one call per second (a gentle start a carrier will not
/// flag), no retries, and a 4 h retry delay (the spec's examples).
pub fn voice_plan(mode: &Value) -> VoicePlan {
    let retry_delay_s = mode
        .get("retry_delay")
        .and_then(Value::as_str)
        .and_then(|s| crate::campaign::mode::parse_duration(s).ok())
        .unwrap_or(4 * 3600);
    VoicePlan {
        calls_per_second: mode
            .get("calls_per_second")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        max_retries: mode
            .get("max_retries")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32,
        retry_delay_ms: retry_delay_s as i64 * 1000,
        voicemail_url: mode
            .get("voicemailAudioUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        amd_provider: match mode.get("amdProvider").and_then(Value::as_str) {
            Some("external") => Some(crate::config::AmdProviderKind::External),
            Some("builtin") => Some(crate::config::AmdProviderKind::Builtin),
            _ => None,
        },
        amd_external_url: mode
            .get("amdExternalUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        ai: mode.get("ai").and_then(Value::as_bool).unwrap_or(false),
        agent_url: mode
            .get("agentUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        agent_sip_uri: mode
            .get("agentSipUri")
            .and_then(Value::as_str)
            .map(str::to_string),
        identification_url: mode
            .get("identificationAudioUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

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

/// Counters of one dialer run, for `trunx demo` and the load bench.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DialerStats {
    pub calls_placed: u64,
    pub calls_ended: u64,
    pub peak_concurrent: u32,
    pub deferred: u64,
    pub recovered_interrupted: u64,
    pub store_errors: u64,
    /// RTP frames the calls sent, and how many were late (see `DialReport::frames_late`).
    pub frames_sent: u64,
    pub frames_late: u64,
    /// How long the store's claims took: reading and leasing due prospects
    /// (`due_prospects`), and claiming one for a call (`begin_attempt`, which also takes the
    /// shared pacing tokens on PostgreSQL).
    pub lease_latency: crate::runtime::latency::LatencyHistogram,
    pub claim_latency: crate::runtime::latency::LatencyHistogram,
}

struct Ended {
    /// A person answered: when, and whether the call was abandoned (the budget's input).
    live_answer: Option<(i64, bool)>,
    campaign_id: String,
    caller_id: String,
    record: CallRecord,
    frames_sent: u64,
    frames_late: u64,
}

const DAY_MS: i64 = 24 * 3_600_000;

/// What the dialer knows of one caller ID: its recent calls (for the caps) and its last calls
/// (for the health score). Rebuilt from the attempts table at start-up.
#[derive(Clone, Debug)]
struct DidBook {
    recent_calls_ms: Vec<i64>,
    records: VecDeque<CallRecord>,
    score: f64,
    pulled: bool,
    cooling_until_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
    placed: u64,
    answered: u64,
}

/// A DID with no history is healthy (a new number starts at full score).
impl Default for DidBook {
    fn default() -> DidBook {
        DidBook {
            recent_calls_ms: Vec::new(),
            records: VecDeque::new(),
            score: 1.0,
            pulled: false,
            cooling_until_ms: None,
            last_used_at_ms: None,
            placed: 0,
            answered: 0,
        }
    }
}

impl DidBook {
    fn view<'a>(&'a self, number: &'a str) -> DidView<'a> {
        DidView {
            number,
            score: self.score,
            pulled: self.pulled,
            cooling_until_ms: self.cooling_until_ms,
            last_used_at_ms: self.last_used_at_ms,
            recent_calls_ms: &self.recent_calls_ms,
        }
    }

    fn placed(&mut self, now_ms: i64) {
        self.recent_calls_ms.retain(|t| now_ms - t < DAY_MS);
        self.recent_calls_ms.push(now_ms);
        self.last_used_at_ms = Some(now_ms);
        self.placed += 1;
    }

    fn ended(&mut self, record: CallRecord, cfg: &CallerIdConfig) {
        if record.answered {
            self.answered += 1;
        }
        self.records.push_back(record);
        while self.records.len() > cfg.health_window.max(1) {
            self.records.pop_front();
        }
        let records: Vec<CallRecord> = self.records.iter().copied().collect();
        self.score = callerid::health_score(&records, cfg);
        self.pulled = callerid::classify(self.score, cfg) == HealthBand::Pulled;
    }

    fn update(&self, now_ms: i64) -> DidUpdate {
        DidUpdate {
            state: if self.pulled {
                DidState::Burned
            } else if self.cooling_until_ms.is_some_and(|t| t > now_ms) {
                DidState::Cooling
            } else {
                DidState::Active
            },
            health_score: (self.score * 100.0).clamp(0.0, 100.0),
            placed: self.placed,
            answered: self.answered,
            cooling_until_ms: self.cooling_until_ms.filter(|t| *t > now_ms),
            last_used_at_ms: self.last_used_at_ms,
        }
    }
}

/// The health record of a finished attempt.
fn call_record(started_at_ms: i64, result: &AttemptResult) -> CallRecord {
    let answered = result.answered_ms.is_some();
    CallRecord {
        at_ms: started_at_ms,
        answered,
        duration_s: result.talk_ms.unwrap_or(0) as f64 / 1000.0,
        human: answered && result.outcome == Some(Outcome::HumanConnected),
        no_answer: result.outcome == Some(Outcome::NoAnswer),
        // 607 Unwanted and 608 Rejected are carriers' analytics labelling the call as spam.
        spam_flagged: matches!(result.sip_status, Some(607 | 608)),
    }
}

struct CampaignEntry {
    campaign: Campaign,
    plan: VoicePlan,
    /// The legal window narrowed by the campaign's `schedule`; `None` if the schedule is
    /// unusable (the campaign then dials nobody, and says why).
    window: Result<LocalWindow, String>,
    /// The campaign's message could not be prepared: no dials until this time.
    blocked_until_ms: Option<i64>,
    /// The campaign's rate shared by every node (the store's bucket) is spent until then.
    paced_until_ms: Option<i64>,
    selector: CallerIdSelector,
    buffer: VecDeque<Prospect>,
    /// No due prospect was found at this time; look again a little later.
    empty_since_ms: Option<i64>,
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

/// Runs the dialer until `stop` is cancelled; calls in flight are hung up gracefully and
/// recorded before it returns.
pub async fn run(
    settings: DialerSettings,
    store: Arc<dyn Store>,
    messages: Arc<dyn Messages>,
    stop: CancellationToken,
) -> Result<DialerStats, DialerError> {
    let mut stats = DialerStats {
        recovered_interrupted: {
            let s = store.clone();
            let now = crate::runtime::clock::wall_ms();
            tokio::task::spawn_blocking(move || recover_interrupted(s.as_ref(), now))
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))??
        },
        ..DialerStats::default()
    };
    let (trunk, host, port) = net::resolve_trunk(&settings.trunk_uri).await?;
    let endpoint = SipEndpoint::open(settings.sip_addr, &settings.trunk_uri, trunk, &host)
        .await
        .map_err(|e| match e {
            net::DialError::Bind { reason, .. } => DialerError::Bind {
                addr: settings.sip_addr,
                reason,
            },
            e => DialerError::from(e),
        })?;
    let local_ip = net::local_ip_towards(settings.sip_addr.ip(), trunk)
        .await
        .map_err(net::DialError::from)?;
    let endpoint = Arc::new(endpoint);
    let calls = TaskTracker::new();
    let calls_stop = CancellationToken::new();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Ended>();
    let mut pacing = Pacing::new(settings.limits, crate::runtime::clock::wall_ms());
    let mut campaigns: BTreeMap<String, CampaignEntry> = BTreeMap::new();
    let mut next_refresh_ms = 0i64;
    let host: Arc<str> = host.into();
    let (registered, mut books) =
        load_did_books(&store, &settings.caller_id, crate::runtime::clock::wall_ms()).await?;
    let mut rng = {
        use rand::SeedableRng;
        let seed = crate::runtime::clock::os_random::<8>().map_err(net::DialError::from)?;
        rand::rngs::StdRng::seed_from_u64(u64::from_le_bytes(seed))
    };
    let rules: &crate::campaign::rules::RuleSet = &settings.compliance.rules;

    loop {
        let now = crate::runtime::clock::wall_ms();
        while let Ok(e) = ended_rx.try_recv() {
            call_ended(
                e,
                &mut pacing,
                &mut books,
                &settings.caller_id,
                &store,
                &mut stats,
            );
        }
        if stop.is_cancelled() {
            break;
        }
        if now >= next_refresh_ms {
            next_refresh_ms = now + 250;
            refresh_campaigns(
                &messages,
                &settings.caller_id,
                settings.compliance.max_abandon_rate,
                &store,
                &mut campaigns,
                &mut pacing,
                now,
                &mut stats,
            )
            .await;
        }
        // Rounds across campaigns, one call per campaign per round, until nobody may start.
        let mut node_full = false;
        loop {
            let mut started_any = false;
            for id in pacing.round_order() {
                let Some(entry) = campaigns.get_mut(&id) else {
                    continue;
                };
                if entry.blocked_until_ms.is_some() || entry.paced_until_ms.is_some_and(|t| t > now)
                {
                    continue;
                }
                if entry.buffer.is_empty() && entry.empty_since_ms.is_none_or(|t| now - t >= 1000) {
                    let s = store.clone();
                    let cid = id.clone();
                    let batch = settings.claim_batch;
                    let asked = crate::runtime::clock::now();
                    let due =
                        tokio::task::spawn_blocking(move || s.due_prospects(&cid, now, batch))
                            .await
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                    stats
                        .lease_latency
                        .record(crate::runtime::clock::now().saturating_duration_since(asked));
                    match due {
                        Ok(list) if list.is_empty() => entry.empty_since_ms = Some(now),
                        Ok(list) => {
                            entry.empty_since_ms = None;
                            // Claim time: prospects outside their window wait with the reason
                            // while the others are dialled.
                            for p in list {
                                if let Some(why) =
                                    crate::runtime::campaigns::compliance::refusal(store.as_ref(), &entry.campaign, &p)
                                {
                                    crate::runtime::campaigns::compliance::cancel(&store, &id, &p, why, now).await;
                                    continue;
                                }
                                match window_wait(&entry.window, &p.phone, rules, now) {
                                    None => entry.buffer.push_back(p),
                                    Some((until, reason)) => {
                                        defer(&store, &id, &p, until, &reason, now, &mut stats)
                                            .await
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            stats.store_errors += 1;
                            tracing::warn!(campaign = %id, error = %e, "cannot read due prospects");
                            entry.empty_since_ms = Some(now);
                        }
                    }
                }
                if entry.buffer.is_empty() {
                    continue;
                }
                match pacing.try_start(&id, now) {
                    Ok(()) => {}
                    Err(Hold::NodeConcurrency) => {
                        node_full = true;
                        break;
                    }
                    Err(Hold::NodeRate { .. }) => {
                        node_full = true;
                        break;
                    }
                    Err(Hold::CampaignRate { .. }) => continue,
                }
                let prospect = entry.buffer.pop_front().expect("checked non-empty");
                // Again just before the INVITE: the buffer may have waited past a window's end.
                let now = crate::runtime::clock::wall_ms();
                if let Some((until, reason)) =
                    window_wait(&entry.window, &prospect.phone, rules, now)
                {
                    pacing.cancel_start(&id);
                    defer(&store, &id, &prospect, until, &reason, now, &mut stats).await;
                    continue;
                }
                let numbers: &[String] = if entry.campaign.caller_ids.is_empty() {
                    &registered
                } else {
                    &entry.campaign.caller_ids
                };
                for n in numbers {
                    books.entry(n.clone()).or_default();
                }
                let choice = {
                    let views: Vec<DidView> = numbers.iter().map(|n| books[n].view(n)).collect();
                    let strategy = callerid::strategy_from_json(&entry.campaign.caller_id_strategy);
                    entry
                        .selector
                        .select(strategy, &views, &prospect.phone, now, &mut rng)
                };
                let caller_id = match choice {
                    Ok(choice) => {
                        if let Some(c) = &choice.start_cooling
                            && let Some(b) = books.get_mut(&c.number)
                        {
                            b.cooling_until_ms = Some(c.until_ms);
                            persist_did(&store, &c.number, b.update(now));
                        }
                        choice.number
                    }
                    Err(why) => {
                        pacing.cancel_start(&id);
                        let (until, reason) = no_caller_id_wait(why, now);
                        defer(&store, &id, &prospect, until, reason, now, &mut stats).await;
                        continue;
                    }
                };
                let s = store.clone();
                let (cid, pid, cli) = (id.clone(), prospect.id.clone(), caller_id.clone());
                let audit = crate::runtime::campaigns::compliance::audit(
                    &entry.window,
                    &prospect.phone,
                    &caller_id,
                    books
                        .get(&caller_id)
                        .map_or(&[][..], |b| &b.recent_calls_ms),
                    &settings.caller_id,
                    pacing.abandonment(&id, now),
                    rules,
                    now,
                );
                let asked = crate::runtime::clock::now();
                let begun = tokio::task::spawn_blocking(move || {
                    s.begin_attempt_audited(&cid, &pid, &cli, audit, now)
                })
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?;
                stats
                    .claim_latency
                    .record(crate::runtime::clock::now().saturating_duration_since(asked));
                let attempt = match begun {
                    Ok(a) => a,
                    // The campaign's rate, shared with other nodes, is spent: this prospect
                    // goes back to the front and the campaign waits for its next token.
                    Err(StoreError::Paced { until_ms }) => {
                        pacing.cancel_start(&id);
                        entry.buffer.push_front(prospect);
                        entry.paced_until_ms = Some(until_ms);
                        continue;
                    }
                    // The caller ID's cap is spent over every node (PostgreSQL): the book
                    // takes the shared count and the prospect goes back for another choice.
                    Err(StoreError::DidLimit { recent_ms, .. }) => {
                        pacing.cancel_start(&id);
                        if let Some(b) = books.get_mut(&caller_id) {
                            b.recent_calls_ms = recent_ms;
                        }
                        entry.buffer.push_front(prospect);
                        continue;
                    }
                    Err(e) => {
                        // Paused, cancelled or taken meanwhile: not an error of the call.
                        pacing.cancel_start(&id);
                        tracing::debug!(campaign = %id, error = %e, "prospect not dialled");
                        continue;
                    }
                };
                if let Some(b) = books.get_mut(&caller_id) {
                    b.placed(now);
                }
                started_any = true;
                stats.calls_placed += 1;
                crate::runtime::nodes::call_placed();
                stats.peak_concurrent = stats.peak_concurrent.max(pacing.in_flight());
                let prompt = entry
                    .plan
                    .voicemail_url
                    .as_deref()
                    .and_then(|u| messages.get(u));
                let identification = entry.plan.ai.then(|| {
                    entry
                        .plan
                        .identification_url
                        .as_deref()
                        .and_then(|u| messages.get(u))
                        .unwrap_or_else(|| settings.compliance.identification.clone())
                });
                let job = CallJob {
                    settings: settings.clone(),
                    plan: entry.plan.clone(),
                    prompt,
                    identification,
                    attempt,
                    store: store.clone(),
                    endpoint: endpoint.clone(),
                    local_ip,
                    trunk,
                    host: host.clone(),
                    port,
                    stop: calls_stop.clone(),
                    ended: ended_tx.clone(),
                };
                calls.spawn(job.run());
            }
            if node_full || !started_any {
                break;
            }
        }
        let wake = pacing.next_wake_ms(now).clamp(now + 5, now + 50);
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis((wake - now) as u64)) => {}
            e = ended_rx.recv() => {
                if let Some(e) = e {
                    call_ended(e, &mut pacing, &mut books, &settings.caller_id, &store, &mut stats);
                }
            }
        }
    }
    // Graceful end: every live call hangs up and records its outcome.
    calls_stop.cancel();
    calls.close();
    calls.wait().await;
    while let Ok(e) = ended_rx.try_recv() {
        call_ended(
            e,
            &mut pacing,
            &mut books,
            &settings.caller_id,
            &store,
            &mut stats,
        );
    }
    if let Ok(ep) = Arc::try_unwrap(endpoint) {
        ep.shutdown().await;
    }
    Ok(stats)
}

/// Reloads the `dialing` campaigns: new ones join the pacing, paused or ended ones leave it
/// (their calls in flight finish and count), and a campaign with nothing left completes.
#[allow(clippy::too_many_arguments)]
async fn refresh_campaigns(
    messages: &Arc<dyn Messages>,
    caller_id: &CallerIdConfig,
    max_abandon_rate: f64,
    store: &Arc<dyn Store>,
    campaigns: &mut BTreeMap<String, CampaignEntry>,
    pacing: &mut Pacing,
    now: i64,
    stats: &mut DialerStats,
) {
    let s = store.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            after: None,
        };
        loop {
            let p = s.list_campaigns(Some(CampaignStatus::Dialing), &page)?;
            all.extend(p.items);
            match p.next_cursor {
                Some(c) => page.after = Some(c),
                None => break,
            }
        }
        Ok::<_, StoreError>(all)
    })
    .await;
    let list = match listed {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            stats.store_errors += 1;
            tracing::warn!(error = %e, "cannot list dialing campaigns");
            return;
        }
        Err(_) => return,
    };
    let live: Vec<String> = list.iter().map(|c| c.id.clone()).collect();
    campaigns.retain(|id, _| live.contains(id));
    for c in list {
        if c.channel != Channel::Voice {
            continue;
        }
        let plan = voice_plan(&c.mode);
        pacing.upsert_campaign(&c.id, plan.calls_per_second, now);
        match campaigns.get_mut(&c.id) {
            Some(e) => {
                e.plan = plan;
                e.window = campaign_window(&c);
                e.campaign = c;
            }
            None => {
                crate::runtime::campaigns::compliance::load_budget(store, pacing, &c, max_abandon_rate, now).await;
                campaigns.insert(
                    c.id.clone(),
                    CampaignEntry {
                        blocked_until_ms: None,
                        paced_until_ms: None,
                        window: campaign_window(&c),
                        campaign: c,
                        plan,
                        selector: CallerIdSelector::new(caller_id.clone()),
                        buffer: VecDeque::new(),
                        empty_since_ms: None,
                    },
                );
            }
        }
    }
    // A message not ready (a restart): prepare it before the campaign dials again; a failure
    // holds the campaign (it never drops a machine silently without its message, nor gives a
    // person another identification than its own) and retries.
    for (id, e) in campaigns.iter_mut() {
        if e.blocked_until_ms.is_some_and(|t| t > now) {
            continue;
        }
        let urls = [&e.plan.voicemail_url, &e.plan.identification_url];
        let mut failed = None;
        for url in urls.into_iter().flatten() {
            if messages.get(url).is_some() {
                continue;
            }
            if let Err(reason) = messages.prepare(url).await {
                failed = Some(reason);
                break;
            }
        }
        match failed {
            None => e.blocked_until_ms = None,
            Some(reason) => {
                stats.store_errors += 1;
                tracing::error!(campaign = %id, %reason, "campaign audio cannot be prepared; campaign held");
                e.blocked_until_ms = Some(now + 60_000);
            }
        }
    }
    // Campaigns with no due prospect and nothing in flight may be finished.
    let idle: Vec<String> = campaigns
        .iter()
        .filter(|(id, e)| e.buffer.is_empty() && pacing.campaign_in_flight(id) == 0)
        .map(|(id, _)| id.clone())
        .collect();
    for id in idle {
        let s = store.clone();
        let cid = id.clone();
        if let Ok(Ok(true)) =
            tokio::task::spawn_blocking(move || s.complete_if_done(&cid, now)).await
        {
            tracing::info!(campaign = %id, "campaign completed");
            campaigns.remove(&id);
            pacing.remove_campaign(&id);
        }
    }
}

/// The registered caller IDs, and what the attempts of the last week say of each.
async fn load_did_books(
    store: &Arc<dyn Store>,
    cfg: &CallerIdConfig,
    now: i64,
) -> Result<(Vec<String>, HashMap<String, DidBook>), StoreError> {
    let s = store.clone();
    let (dids, attempts) = tokio::task::spawn_blocking(move || {
        let mut dids = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            after: None,
        };
        loop {
            let p = s.list_dids(None, &page)?;
            dids.extend(p.items);
            match p.next_cursor {
                Some(c) => page.after = Some(c),
                None => break,
            }
        }
        let attempts = s.attempts_since(now - 7 * DAY_MS)?;
        Ok::<_, StoreError>((dids, attempts))
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))??;
    let mut books: HashMap<String, DidBook> = HashMap::new();
    let mut registered = Vec::new();
    for d in dids {
        let b = DidBook {
            score: d.health_score / 100.0,
            pulled: d.state == DidState::Burned,
            cooling_until_ms: d.cooling_until_ms,
            last_used_at_ms: d.last_used_at_ms,
            placed: d.calls_placed,
            answered: d.calls_answered,
            ..DidBook::default()
        };
        if d.state != DidState::Burned {
            registered.push(d.number.clone());
        }
        books.insert(d.number, b);
    }
    for a in attempts {
        let b = books.entry(a.caller_id.clone()).or_default();
        if now - a.started_at_ms < DAY_MS {
            b.recent_calls_ms.push(a.started_at_ms);
        }
        if a.ended_at_ms.is_some() {
            b.records.push_back(call_record(a.started_at_ms, &a.result));
            while b.records.len() > cfg.health_window.max(1) {
                b.records.pop_front();
            }
        }
    }
    Ok((registered, books))
}

/// The channel's legal window narrowed by the campaign's `schedule`.
pub(super) fn campaign_window(c: &Campaign) -> Result<LocalWindow, String> {
    let schedule = match &c.schedule {
        Some(v) => Some(window::validate_schedule(c.channel, v).map_err(|e| e.to_string())?),
        None => None,
    };
    window::effective_window(c.channel, schedule.as_ref()).map_err(|e| e.to_string())
}

/// Whether `phone` may be called (or texted) at `now` under `rules`; if not, until when it
/// waits and why. A number whose window never opens within the look-ahead is checked again a
/// day later.
pub(super) fn window_wait(
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

/// What to do when no caller ID can be used: wait until one is free, with the reason.
fn no_caller_id_wait(why: NoCallerId, now: i64) -> (i64, &'static str) {
    match why {
        NoCallerId::AllResting { available_at_ms } => (
            available_at_ms.max(now + 1_000),
            "every caller ID is resting (hourly/daily cap reached)",
        ),
        NoCallerId::NoDids => (now + 60_000, "no caller ID configured"),
        NoCallerId::AllPulled => (
            now + 3_600_000,
            "every caller ID is pulled for poor health (review GET /dids)",
        ),
    }
}

/// A call ended: its pacing slot frees and its caller ID's health is updated and stored.
fn call_ended(
    e: Ended,
    pacing: &mut Pacing,
    books: &mut HashMap<String, DidBook>,
    cfg: &CallerIdConfig,
    store: &Arc<dyn Store>,
    stats: &mut DialerStats,
) {
    pacing.call_ended(&e.campaign_id);
    if let Some((at, abandoned)) = e.live_answer {
        pacing.record_live_answer(&e.campaign_id, at, abandoned);
    }
    stats.calls_ended += 1;
    stats.frames_sent += e.frames_sent;
    stats.frames_late += e.frames_late;
    let book = books.entry(e.caller_id.clone()).or_default();
    book.ended(e.record, cfg);
    persist_did(store, &e.caller_id, book.update(e.record.at_ms));
}

/// Stores a caller ID's figures off the dialer task (a number not registered as a DID has
/// nothing to update).
fn persist_did(store: &Arc<dyn Store>, number: &str, update: DidUpdate) {
    let s = store.clone();
    let n = number.to_string();
    tokio::task::spawn_blocking(move || match s.update_did(&n, &update) {
        Ok(()) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "cannot store caller ID health"),
    });
}

async fn defer(
    store: &Arc<dyn Store>,
    campaign_id: &str,
    prospect: &Prospect,
    until_ms: i64,
    reason: &str,
    now: i64,
    stats: &mut DialerStats,
) {
    stats.deferred += 1;
    let s = store.clone();
    let (cid, pid, why) = (
        campaign_id.to_string(),
        prospect.id.clone(),
        reason.to_string(),
    );
    if let Ok(Err(e)) =
        tokio::task::spawn_blocking(move || s.defer_prospect(&cid, &pid, until_ms, &why, now)).await
    {
        stats.store_errors += 1;
        tracing::warn!(campaign = %campaign_id, error = %e, "cannot defer a prospect");
    }
}

struct CallJob {
    settings: DialerSettings,
    plan: VoicePlan,
    prompt: Option<Arc<Prompt>>,
    /// `ai` campaigns: the identification message (the campaign's or the built-in one).
    identification: Option<Arc<Prompt>>,
    attempt: Attempt,
    store: Arc<dyn Store>,
    endpoint: Arc<SipEndpoint>,
    local_ip: std::net::IpAddr,
    trunk: SocketAddr,
    host: Arc<str>,
    port: u16,
    stop: CancellationToken,
    ended: mpsc::UnboundedSender<Ended>,
}

impl CallJob {
    async fn run(self) {
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
                    _ if self.plan.agent_sip_uri.is_some() => Some(crate::runtime::call::agent_ws::AgentTarget {
                        sip_uri: self.plan.agent_sip_uri.clone(),
                        ..s.agent_defaults.clone()
                    }),
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
fn scopeguard_dec(gauge: &prometheus::IntGauge) -> impl Drop + '_ {
    struct Dec<'a>(&'a prometheus::IntGauge);
    impl Drop for Dec<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    Dec(gauge)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
