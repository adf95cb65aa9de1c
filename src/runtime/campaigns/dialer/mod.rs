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

mod caller_ids;
mod outcomes;
mod placing;
mod plan;
#[cfg(test)]
mod tests;

pub use outcomes::{attempt_end, recover_interrupted};
pub use plan::{VoicePlan, voice_plan};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::amd::{AmdConfig, BeepModel};
use crate::audio::prompt::Prompt;
use crate::campaign::callerid::{self, CallRecord, CallerIdConfig, CallerIdSelector, DidView};
use crate::campaign::scheduler::{Hold, NodeLimits, Pacing};
use crate::campaign::window::LocalWindow;
use crate::campaign::{CampaignStatus, Channel};
use crate::store::{Campaign, PageRequest, Prospect, Store, StoreError};

use crate::runtime::call::endpoint::SipEndpoint;
use crate::runtime::call::net;
use crate::runtime::campaigns::windows::{campaign_window, window_wait};

use caller_ids::{call_ended, load_did_books, no_caller_id_wait, persist_did};
use placing::CallJob;

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
    let (registered, mut books) = load_did_books(
        &store,
        &settings.caller_id,
        crate::runtime::clock::wall_ms(),
    )
    .await?;
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
                                if let Some(why) = crate::runtime::campaigns::compliance::refusal(
                                    store.as_ref(),
                                    &entry.campaign,
                                    &p,
                                ) {
                                    crate::runtime::campaigns::compliance::cancel(
                                        &store, &id, &p, why, now,
                                    )
                                    .await;
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
                crate::runtime::campaigns::compliance::load_budget(
                    store,
                    pacing,
                    &c,
                    max_abandon_rate,
                    now,
                )
                .await;
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
