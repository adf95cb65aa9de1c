//! The SMS campaign sender: the one task that owns which prospect of a `dialing` SMS campaign
//! is texted when, from which DID, over the SMPP connection of `runtime::smpp`.
//!
//! Per campaign it claims due prospects (`Store::due_prospects`), checks the SMS window
//! (07:00-19:00 prospect-local, narrowed by the campaign's `schedule`) at claim time and again
//! just before the submit, waits for a DID the pacer allows (`campaign::sms_pacing`: per-DID
//! hourly cap, jittered gaps, shared by every campaign that uses the DID), lets the caller-ID
//! strategy choose among the ready DIDs (local presence, sticky, round robin, health: each DID's
//! SMS health comes from its delivered/failed messages and the opt-outs it drew), writes the
//! message row (`begin_message`) and only then submits. Session events become store writes:
//! accepted -> `message_accepted`, a refused submit -> `message_failed`, receipts ->
//! `message_receipt` (a receipt that arrives before its message is recorded as accepted, e.g.
//! for part 1 of 3, waits in a bounded buffer), a lost connection -> `message_requeued` for
//! every message not fully accepted. Inbound STOP-family texts put the number on the
//! suppression list with one confirmation reply; HELP gets the configured reply
//! (`sms::inbound` decides).
//!
//! Duplicate rule: a prospect is texted again only when its submit got no answer before the
//! connection ended (the SMSC may or may not have taken it; resending risks a duplicate,
//! dropping would lose a text). Everything answered is never sent twice.
//!
//! Restart recovery: messages a crash left `sending` are requeued (their submit may or may not
//! have left: same rule); `sent` ones keep waiting for their receipts, matched by carrier id.
//! It must not hold policy of its own (pacing, windows, caller ID, keyword rules live in the
//! pure modules) and never logs a whole phone number unless `log_phone_numbers` says so.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use crate::campaign::callerid::{self, CallerIdConfig, CallerIdSelector, DidView, NoCallerId};
use crate::campaign::sms_pacing::{SmsPacer, SmsPacingConfig};
use crate::campaign::window::{self, LocalWindow, WindowCheck};
use crate::campaign::{CampaignStatus, Channel, redact};
use crate::sms::inbound::{self, Replies};
use crate::sms::keywords::Keyword;
use crate::sms::receipt::ReceiptOutcome;
use crate::sms::session::{SessionEvent, SubmitRequest};
use crate::store::{Campaign, DidState, PageRequest, Prospect, Store, StoreError};

use super::server::wall_ms;
use super::smpp::{SmppClient, SmppEvent, SmppSettings, SmppStats};

#[derive(Debug, thiserror::Error)]
pub enum SmsSenderError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the sender needs from the configuration.
#[derive(Clone, Debug)]
pub struct SmsSenderSettings {
    pub smpp: SmppSettings,
    pub pacing: SmsPacingConfig,
    pub replies: Replies,
    pub log_phone_numbers: bool,
    /// How many due prospects are read per campaign at a time.
    pub claim_batch: u32,
    pub caller_id: CallerIdConfig,
    /// A `sent` message with no final receipt after this long is failed with `no_receipt`, so
    /// its campaign can complete (`sms_receipt_timeout`).
    pub receipt_timeout: Duration,
}

/// Counters of one sender run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SmsSenderStats {
    pub messages_begun: u64,
    pub accepted: u64,
    pub failed_on_submit: u64,
    pub requeued: u64,
    pub throttled: u64,
    pub receipts: u64,
    pub receipts_buffered: u64,
    pub receipts_unmatched: u64,
    pub receipts_timed_out: u64,
    pub opt_outs: u64,
    pub replies_sent: u64,
    pub deferred: u64,
    pub suppressed_at_claim: u64,
    pub connections_lost: u64,
    pub recovered_requeued: u64,
    pub store_errors: u64,
    pub smpp: SmppStats,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Receipts waiting for their message's acceptance: most kept, and for how long.
const RECEIPT_BUFFER_MAX: usize = 10_000;
const RECEIPT_BUFFER_MS: i64 = 10 * 60_000;
/// Replies waiting for a connection.
const REPLY_QUEUE_MAX: usize = 1_000;
/// Numbers whose last DID is remembered for replies.
const LAST_DID_MAX: usize = 100_000;

/// What a key in the session stands for.
enum InFlight {
    Campaign {
        message_id: String,
        campaign_id: String,
        phone: String,
    },
    Reply(SubmitRequest),
}

struct BufferedReceipt {
    delivered: bool,
    error_code: Option<String>,
    at_ms: i64,
}

struct SmsCampaign {
    campaign: Campaign,
    text: String,
    parts: u32,
    window: Result<LocalWindow, String>,
    dids: Vec<String>,
    pacer: SmsPacer,
    selector: CallerIdSelector,
    buffer: VecDeque<Prospect>,
    empty_since_ms: Option<i64>,
    /// No send before this time (pacing, no DID).
    wait_until_ms: i64,
    /// Why the campaign cannot send at all (logged once).
    blocked: Option<String>,
}

/// The sender's state: one owner, no locks.
struct Sender {
    settings: SmsSenderSettings,
    store: Arc<dyn Store>,
    stats: SmsSenderStats,
    campaigns: BTreeMap<String, SmsCampaign>,
    registered: Vec<String>,
    in_flight: HashMap<u64, InFlight>,
    next_key: u64,
    next_reference: u8,
    bound: bool,
    replies: VecDeque<SubmitRequest>,
    reply_ids: HashSet<String>,
    receipts: HashMap<String, BufferedReceipt>,
    /// Sends of the last hour (DID, time), to seed the pacer of a campaign that joins.
    recent_sends: VecDeque<(String, i64)>,
    last_did: HashMap<String, String>,
    last_sent_ms: HashMap<String, i64>,
    /// Per DID: the final messages it sent (newest last, at most the health window) and the
    /// opt-outs from numbers it texted, for the SMS health score the selector sees.
    did_outcomes: HashMap<String, VecDeque<callerid::SmsRecord>>,
    did_opt_outs: HashMap<String, VecDeque<i64>>,
    rng: StdRng,
    seed: u64,
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref()))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
}

/// Runs the sender until `stop` is cancelled: then the SMPP session unbinds, and every
/// message it did not get an answer for is requeued before this returns.
pub async fn run(
    settings: SmsSenderSettings,
    store: Arc<dyn Store>,
    stop: CancellationToken,
) -> Result<SmsSenderStats, SmsSenderError> {
    let seed = u64::from_le_bytes(super::server::os_random::<8>().unwrap_or([3; 8]));
    let mut s = Sender {
        settings: settings.clone(),
        store: store.clone(),
        stats: SmsSenderStats::default(),
        campaigns: BTreeMap::new(),
        registered: Vec::new(),
        in_flight: HashMap::new(),
        next_key: 1,
        next_reference: 1,
        bound: false,
        replies: VecDeque::new(),
        reply_ids: HashSet::new(),
        receipts: HashMap::new(),
        recent_sends: VecDeque::new(),
        last_did: HashMap::new(),
        last_sent_ms: HashMap::new(),
        did_outcomes: HashMap::new(),
        did_opt_outs: HashMap::new(),
        rng: StdRng::seed_from_u64(seed),
        seed,
    };
    s.recover(wall_ms()).await?;
    let smpp_stop = CancellationToken::new();
    let mut smpp = SmppClient::start(settings.smpp.clone(), smpp_stop.clone());
    let mut next_refresh_ms = 0i64;
    let mut next_expiry_ms = 0i64;
    loop {
        while let Some(e) = smpp.try_recv() {
            s.handle_event(e).await;
        }
        if stop.is_cancelled() {
            break;
        }
        let now = wall_ms();
        if now >= next_refresh_ms {
            next_refresh_ms = now + 500;
            s.refresh(now).await;
        }
        if now >= next_expiry_ms {
            next_expiry_ms = now + expiry_sweep_ms(settings.receipt_timeout);
            s.expire_receipts(now).await;
        }
        let wake_ms = if s.bound {
            s.send_due(&smpp).await
        } else {
            now + 250
        };
        let now = wall_ms();
        let wait = (wake_ms.min(next_refresh_ms) - now).clamp(5, 250) as u64;
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            e = smpp.recv() => if let Some(e) = e { s.handle_event(e).await },
        }
    }
    smpp_stop.cancel();
    let mut rest = Vec::new();
    let smpp_stats = smpp.finish(|e| rest.push(e)).await;
    for e in rest {
        s.handle_event(e).await;
    }
    s.stats.smpp = smpp_stats;
    Ok(s.stats)
}

/// How often `sent` messages are checked against the receipt timeout: a quarter of it,
/// between a second and a minute.
fn expiry_sweep_ms(timeout: Duration) -> i64 {
    (timeout.as_millis() as i64 / 4).clamp(1_000, 60_000)
}

impl Sender {
    /// `sent` messages whose receipt is overdue fail with `no_receipt`: the carrier took them
    /// but never said whether they arrived, and the campaign must still be able to complete.
    async fn expire_receipts(&mut self, now: i64) {
        let timeout = self.settings.receipt_timeout.as_millis() as i64;
        let live = match blocking(&self.store, |s| s.live_messages()).await {
            Ok(l) => l,
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "cannot read live messages for the receipt timeout");
                return;
            }
        };
        for m in live {
            let overdue = m.status == crate::store::MessageStatus::Sent
                && m.submitted_at_ms.unwrap_or(m.created_at_ms) + timeout <= now;
            if !overdue {
                continue;
            }
            let id = m.id.clone();
            match blocking(&self.store, move |s| {
                s.message_failed(&id, "no_receipt", now)
            })
            .await
            {
                Ok(failed) => {
                    self.record_outcome(&failed, now);
                    self.stats.receipts_timed_out += 1;
                    tracing::info!(message = %m.id, to = %self.phone_log(&m.phone),
                        "no delivery receipt in time: failed as no_receipt");
                }
                Err(e) => {
                    self.stats.store_errors += 1;
                    tracing::warn!(message = %m.id, error = %e, "cannot time out a receipt");
                }
            }
        }
    }

    /// The SMS health score of every DID with final messages (the others count as new).
    fn did_scores(&self) -> HashMap<String, f64> {
        self.did_outcomes
            .iter()
            .map(|(did, records)| {
                let since = records.front().map(|r| r.at_ms).unwrap_or(i64::MAX);
                let opt_outs = self
                    .did_opt_outs
                    .get(did)
                    .map(|t| t.iter().filter(|at| **at >= since).count())
                    .unwrap_or(0);
                let records: Vec<callerid::SmsRecord> = records.iter().copied().collect();
                (
                    did.clone(),
                    callerid::sms_health_score(&records, opt_outs, &self.settings.caller_id),
                )
            })
            .collect()
    }

    /// A message reached its final status: it counts in its DID's health.
    fn record_outcome(&mut self, m: &crate::store::Message, now: i64) {
        let window = self.settings.caller_id.health_window.max(1);
        let records = self.did_outcomes.entry(m.did.clone()).or_default();
        if records.len() >= window {
            records.pop_front();
        }
        records.push_back(callerid::SmsRecord {
            at_ms: now,
            delivered: m.status == crate::store::MessageStatus::Delivered,
        });
    }

    fn phone_log(&self, phone: &str) -> String {
        redact(phone, self.settings.log_phone_numbers)
    }

    /// Start-up: messages left `sending` are requeued, the last hour's sends seed the pacers.
    async fn recover(&mut self, now: i64) -> Result<(), StoreError> {
        let live = blocking(&self.store, |s| s.live_messages()).await?;
        for m in live {
            if m.status == crate::store::MessageStatus::Sending {
                let id = m.id.clone();
                blocking(&self.store, move |s| s.message_requeued(&id, now)).await?;
                self.stats.recovered_requeued += 1;
            }
        }
        let recent = blocking(&self.store, move |s| s.messages_since(now - HOUR_MS)).await?;
        for m in recent {
            self.recent_sends
                .push_back((m.did.clone(), m.created_at_ms));
            self.last_sent_ms.insert(m.did.clone(), m.created_at_ms);
            self.last_did.insert(m.phone, m.did);
        }
        Ok(())
    }

    /// Reloads the `dialing` SMS campaigns and the registered DIDs; idle campaigns complete.
    async fn refresh(&mut self, now: i64) {
        let listed = blocking(&self.store, |s| {
            let mut all = Vec::new();
            let mut page = PageRequest {
                limit: 500,
                after: None,
            };
            loop {
                let p = s.list_campaigns(Some(CampaignStatus::Dialing), &page)?;
                all.extend(p.items.into_iter().filter(|c| c.channel == Channel::Sms));
                match p.next_cursor {
                    Some(c) => page.after = Some(c),
                    None => break,
                }
            }
            let mut dids = Vec::new();
            let mut page = PageRequest {
                limit: 500,
                after: None,
            };
            loop {
                let p = s.list_dids(None, &page)?;
                dids.extend(
                    p.items
                        .into_iter()
                        .filter(|d| d.state != DidState::Burned)
                        .map(|d| d.number),
                );
                match p.next_cursor {
                    Some(c) => page.after = Some(c),
                    None => break,
                }
            }
            Ok((all, dids))
        })
        .await;
        let (list, registered) = match listed {
            Ok(l) => l,
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "cannot list SMS campaigns");
                return;
            }
        };
        self.registered = registered;
        while self
            .recent_sends
            .front()
            .is_some_and(|(_, t)| now - t >= HOUR_MS)
        {
            self.recent_sends.pop_front();
        }
        let live: HashSet<&str> = list.iter().map(|c| c.id.as_str()).collect();
        self.campaigns.retain(|id, _| live.contains(id.as_str()));
        for c in list {
            let dids = if c.caller_ids.is_empty() {
                self.registered.clone()
            } else {
                c.caller_ids.clone()
            };
            match self.campaigns.get_mut(&c.id) {
                Some(e) if e.dids == dids => e.campaign = c,
                _ => {
                    let entry = self.new_campaign(c, dids);
                    self.campaigns.insert(entry.campaign.id.clone(), entry);
                }
            }
        }
        let idle: Vec<String> = self
            .campaigns
            .iter()
            .filter(|(id, e)| e.buffer.is_empty() && !self.has_in_flight(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            let cid = id.clone();
            if let Ok(true) = blocking(&self.store, move |s| s.complete_if_done(&cid, now)).await {
                tracing::info!(campaign = %id, "SMS campaign completed");
                self.campaigns.remove(&id);
            }
        }
    }

    fn has_in_flight(&self, campaign: &str) -> bool {
        self.in_flight
            .values()
            .any(|f| matches!(f, InFlight::Campaign { campaign_id, .. } if campaign_id == campaign))
    }

    fn new_campaign(&mut self, c: Campaign, dids: Vec<String>) -> SmsCampaign {
        let text = c
            .mode
            .get("message")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let mut blocked = None;
        let parts = match crate::sms::text::encode_message(&text, 0) {
            Ok(m) => m.parts.len() as u32,
            Err(e) => {
                blocked = Some(format!("mode.message cannot be sent: {e}"));
                0
            }
        };
        if dids.is_empty() && blocked.is_none() {
            blocked = Some("no sender DID: set callerIds or register DIDs (POST /dids)".into());
        }
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut pacer = SmsPacer::new(dids.clone(), self.settings.pacing, self.seed)
            .or_else(|_| SmsPacer::new(dids.clone(), SmsPacingConfig::default(), self.seed))
            .expect("the default pacing figures are valid");
        for (did, at) in &self.recent_sends {
            let _ = pacer.record_send(did, *at);
        }
        if let Some(why) = &blocked {
            tracing::error!(campaign = %c.id, reason = %why, "SMS campaign held");
        }
        let schedule = match &c.schedule {
            Some(v) => window::validate_schedule(c.channel, v)
                .map(Some)
                .map_err(|e| e.to_string()),
            None => Ok(None),
        };
        let window = schedule.and_then(|s| {
            window::effective_window(Channel::Sms, s.as_ref()).map_err(|e| e.to_string())
        });
        SmsCampaign {
            campaign: c,
            text,
            parts,
            window,
            dids,
            pacer,
            selector: CallerIdSelector::new(self.settings.caller_id.clone()),
            buffer: VecDeque::new(),
            empty_since_ms: None,
            wait_until_ms: 0,
            blocked,
        }
    }

    /// Capacity for one more message in the session.
    fn has_room(&self) -> bool {
        self.in_flight.len() < self.settings.smpp.session.window
    }

    /// Sends what is due now: waiting replies first, then campaigns in turn, one message each
    /// per round. Returns when something may next be due.
    async fn send_due(&mut self, smpp: &SmppClient) -> i64 {
        let mut wake = wall_ms() + 250;
        while self.has_room() {
            let Some(req) = self.replies.pop_front() else {
                break;
            };
            let key = req.key;
            match smpp.try_submit(req.clone()) {
                Ok(()) => {
                    self.in_flight.insert(key, InFlight::Reply(req));
                }
                Err(req) => {
                    self.replies.push_front(req);
                    break;
                }
            }
        }
        loop {
            let mut progressed = false;
            let ids: Vec<String> = self.campaigns.keys().cloned().collect();
            for id in ids {
                if !self.has_room() {
                    return wake;
                }
                match self.send_one(&id, smpp).await {
                    Step::Progress => progressed = true,
                    Step::WaitUntil(t) => wake = wake.min(t),
                    Step::Idle => {}
                }
            }
            if !progressed {
                return wake;
            }
        }
    }

    /// One step of one campaign: claim and send one prospect, or say why not.
    async fn send_one(&mut self, id: &str, smpp: &SmppClient) -> Step {
        let now = wall_ms();
        let batch = self.settings.claim_batch;
        let read_due = {
            let Some(e) = self.campaigns.get_mut(id) else {
                return Step::Idle;
            };
            if e.blocked.is_some() {
                return Step::Idle;
            }
            if now < e.wait_until_ms {
                return Step::WaitUntil(e.wait_until_ms);
            }
            // Pacing first: no claim while no DID may send.
            match e.pacer.next_slot(now) {
                None => return Step::Idle,
                Some(slot) if slot.at_ms > now => {
                    e.wait_until_ms = slot.at_ms;
                    return Step::WaitUntil(slot.at_ms);
                }
                Some(_) => {}
            }
            e.buffer.is_empty() && e.empty_since_ms.is_none_or(|t| now - t >= 1000)
        };
        if read_due {
            let cid = id.to_string();
            match blocking(&self.store, move |s| s.due_prospects(&cid, now, batch)).await {
                Ok(list) if list.is_empty() => {
                    e_mut(&mut self.campaigns, id).empty_since_ms = Some(now)
                }
                Ok(list) => {
                    e_mut(&mut self.campaigns, id).empty_since_ms = None;
                    for p in list {
                        let wait = window_wait(&self.campaigns[id].window, &p.phone, now);
                        match wait {
                            None => e_mut(&mut self.campaigns, id).buffer.push_back(p),
                            Some((until, reason)) => self.defer(id, &p, until, &reason, now).await,
                        }
                    }
                }
                Err(err) => {
                    self.stats.store_errors += 1;
                    tracing::warn!(campaign = %id, error = %err, "cannot read due prospects");
                    e_mut(&mut self.campaigns, id).empty_since_ms = Some(now);
                }
            }
        }
        let Some(prospect) = e_mut(&mut self.campaigns, id).buffer.pop_front() else {
            return Step::Idle;
        };
        // Again just before the submit: the buffer may have waited past the window's end.
        let now = wall_ms();
        if let Some((until, reason)) = window_wait(&self.campaigns[id].window, &prospect.phone, now)
        {
            self.defer(id, &prospect, until, &reason, now).await;
            return Step::Progress;
        }
        let scores = self.did_scores();
        let did = {
            let e = e_mut(&mut self.campaigns, id);
            let ready: Vec<Option<i64>> = e
                .dids
                .iter()
                .map(|d| e.pacer.ready_at_ms(d).filter(|t| *t > now))
                .collect();
            let views: Vec<DidView> = e
                .dids
                .iter()
                .zip(&ready)
                .map(|(d, r)| DidView {
                    number: d,
                    score: scores.get(d.as_str()).copied().unwrap_or(1.0),
                    pulled: scores.get(d.as_str()).is_some_and(|s| {
                        callerid::classify(*s, &self.settings.caller_id)
                            == callerid::HealthBand::Pulled
                    }),
                    cooling_until_ms: *r,
                    last_used_at_ms: self.last_sent_ms.get(d).copied(),
                    recent_calls_ms: &[],
                })
                .collect();
            let strategy = callerid::strategy_from_json(&e.campaign.caller_id_strategy);
            match e
                .selector
                .select(strategy, &views, &prospect.phone, now, &mut self.rng)
            {
                Ok(choice) => choice.number,
                Err(NoCallerId::AllResting { available_at_ms }) => {
                    e.buffer.push_front(prospect);
                    e.wait_until_ms = available_at_ms;
                    return Step::WaitUntil(available_at_ms);
                }
                Err(why) => {
                    e.buffer.push_front(prospect);
                    e.wait_until_ms = now + 60_000;
                    tracing::warn!(campaign = %id, reason = %why, "no sender DID");
                    return Step::WaitUntil(now + 60_000);
                }
            }
        };
        let (cid, phone, d, parts) = (
            id.to_string(),
            prospect.phone.clone(),
            did.clone(),
            self.campaigns[id].parts,
        );
        let begun = blocking(&self.store, move |s| {
            s.begin_message(&cid, &phone, &d, parts, now)
        })
        .await;
        let message = match begun {
            Ok(m) => m,
            Err(StoreError::Suppressed { .. }) => {
                self.stats.suppressed_at_claim += 1;
                return Step::Progress;
            }
            Err(err) => {
                // Paused, cancelled or taken meanwhile: not an error of the message.
                tracing::debug!(campaign = %id, error = %err, "prospect not texted");
                return Step::Progress;
            }
        };
        self.stats.messages_begun += 1;
        for c in self.campaigns.values_mut() {
            // Every campaign sharing the DID sees the send (UnknownDid for the others).
            let _ = c.pacer.record_send(&did, now);
        }
        self.recent_sends.push_back((did.clone(), now));
        self.last_sent_ms.insert(did.clone(), now);
        if self.last_did.len() >= LAST_DID_MAX {
            self.last_did.clear();
        }
        self.last_did.insert(message.phone.clone(), did.clone());
        let key = self.take_key();
        let req = SubmitRequest {
            key,
            source: did.clone(),
            destination: message.phone.clone(),
            text: self.campaigns[id].text.clone(),
            reference: self.take_reference(),
        };
        tracing::debug!(campaign = %id, phone = %self.phone_log(&message.phone), did = %did, message = %message.id, "submitting SMS");
        match smpp.try_submit(req) {
            Ok(()) => {
                self.in_flight.insert(
                    key,
                    InFlight::Campaign {
                        message_id: message.id,
                        campaign_id: id.to_string(),
                        phone: message.phone,
                    },
                );
            }
            Err(_) => {
                // Nothing left: back to the queue at once.
                self.requeue(&message.id).await;
            }
        }
        Step::Progress
    }

    fn take_key(&mut self) -> u64 {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn take_reference(&mut self) -> u8 {
        let r = self.next_reference;
        self.next_reference = self.next_reference.wrapping_add(1).max(1);
        r
    }

    async fn defer(&mut self, id: &str, p: &Prospect, until: i64, reason: &str, now: i64) {
        self.stats.deferred += 1;
        let (cid, pid, why) = (id.to_string(), p.id.clone(), reason.to_string());
        if let Err(e) = blocking(&self.store, move |s| {
            s.defer_prospect(&cid, &pid, until, &why, now)
        })
        .await
        {
            self.stats.store_errors += 1;
            tracing::warn!(campaign = %id, error = %e, "cannot defer a prospect");
        }
    }

    async fn requeue(&mut self, message_id: &str) {
        let id = message_id.to_string();
        let now = wall_ms();
        match blocking(&self.store, move |s| s.message_requeued(&id, now)).await {
            Ok(p) => {
                self.stats.requeued += 1;
                if let Some(c) = self.campaigns.get_mut(&p.campaign_id) {
                    c.empty_since_ms = None;
                }
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(message = %message_id, error = %e, "cannot requeue a message");
            }
        }
    }

    /// A key came back unanswered (connection lost, never sent): requeue or resend.
    async fn give_back(&mut self, key: u64) {
        match self.in_flight.remove(&key) {
            Some(InFlight::Campaign { message_id, .. }) => self.requeue(&message_id).await,
            Some(InFlight::Reply(req)) => self.queue_reply(req),
            None => {}
        }
    }

    fn queue_reply(&mut self, req: SubmitRequest) {
        if self.replies.len() >= REPLY_QUEUE_MAX {
            tracing::warn!(phone = %self.phone_log(&req.destination), "reply queue full; reply dropped");
            return;
        }
        self.replies.push_back(req);
    }

    /// Records what one event means. Also used for the events that arrive after the stop
    /// (an opt-out the SMSC already had acknowledged must not be lost).
    async fn handle_event(&mut self, e: SmppEvent) {
        let now = wall_ms();
        match e {
            SmppEvent::Connected => tracing::debug!("SMPP transport connected"),
            SmppEvent::ConnectFailed { .. } => {}
            SmppEvent::Unsent { keys } => {
                for k in keys {
                    self.give_back(k).await;
                }
            }
            SmppEvent::Refused { key, reason } => match self.in_flight.remove(&key) {
                Some(InFlight::Campaign {
                    message_id, phone, ..
                }) => {
                    tracing::warn!(phone = %self.phone_log(&phone), %reason, "message refused before sending");
                    self.fail(&message_id, "refused").await;
                }
                Some(InFlight::Reply(req)) => {
                    tracing::warn!(phone = %self.phone_log(&req.destination), %reason, "reply refused before sending");
                }
                None => {}
            },
            SmppEvent::Session(ev) => match ev {
                SessionEvent::Bound { .. } => self.bound = true,
                SessionEvent::BindRejected { .. } => self.bound = false,
                SessionEvent::PartAccepted { .. } => {}
                SessionEvent::Accepted { key, message_ids } => {
                    self.accepted(key, message_ids, now).await
                }
                SessionEvent::Failed { key, status, name } => match self.in_flight.remove(&key) {
                    Some(InFlight::Campaign { message_id, .. }) => {
                        self.stats.failed_on_submit += 1;
                        let code = if name == "UNKNOWN" {
                            format!("0x{:08X}", status.0)
                        } else {
                            name.to_string()
                        };
                        self.fail(&message_id, &code).await;
                    }
                    Some(InFlight::Reply(req)) => {
                        tracing::warn!(phone = %self.phone_log(&req.destination), status = %name, "reply refused by the SMSC");
                    }
                    None => {}
                },
                SessionEvent::Throttled { .. } => self.stats.throttled += 1,
                SessionEvent::Receipt {
                    message_id,
                    outcome,
                    error_code,
                    ..
                } => self.receipt(message_id, outcome, error_code, now).await,
                SessionEvent::Inbound {
                    source,
                    destination,
                    text: _,
                    keyword,
                } => self.inbound(&source, &destination, keyword, now).await,
                SessionEvent::ConnectionLost {
                    unacknowledged,
                    reason,
                } => {
                    self.bound = false;
                    self.stats.connections_lost += 1;
                    tracing::info!(
                        ?reason,
                        unanswered = unacknowledged.len(),
                        "SMPP connection lost; unanswered messages go back to the queue"
                    );
                    for k in unacknowledged {
                        self.give_back(k).await;
                    }
                }
            },
        }
    }

    async fn fail(&mut self, message_id: &str, code: &str) {
        let (id, code, now) = (message_id.to_string(), code.to_string(), wall_ms());
        match blocking(&self.store, move |s| s.message_failed(&id, &code, now)).await {
            Ok(failed) => self.record_outcome(&failed, now),
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(message = %message_id, error = %e, "cannot record a failed message");
            }
        }
    }

    async fn accepted(&mut self, key: u64, ids: Vec<String>, now: i64) {
        match self.in_flight.remove(&key) {
            Some(InFlight::Campaign { message_id, .. }) => {
                self.stats.accepted += 1;
                let (id, carrier_ids) = (message_id.clone(), ids.clone());
                if let Err(e) = blocking(&self.store, move |s| {
                    s.message_accepted(&id, &carrier_ids, now)
                })
                .await
                {
                    self.stats.store_errors += 1;
                    tracing::warn!(message = %message_id, error = %e, "cannot record an accepted message");
                    return;
                }
                // Receipts that came before this acceptance (an early part's).
                for carrier_id in ids {
                    if let Some(r) = self.receipts.remove(&carrier_id) {
                        self.apply_receipt(carrier_id, r.delivered, r.error_code, now)
                            .await;
                    }
                }
            }
            Some(InFlight::Reply(req)) => {
                self.stats.replies_sent += 1;
                tracing::info!(phone = %self.phone_log(&req.destination), "reply sent");
                if self.reply_ids.len() >= RECEIPT_BUFFER_MAX {
                    self.reply_ids.clear();
                }
                self.reply_ids.extend(ids);
            }
            None => {}
        }
    }

    async fn receipt(
        &mut self,
        carrier_id: String,
        outcome: ReceiptOutcome,
        error_code: Option<String>,
        now: i64,
    ) {
        self.stats.receipts += 1;
        if self.reply_ids.remove(&carrier_id) {
            return;
        }
        let delivered = match outcome {
            ReceiptOutcome::Delivered => true,
            ReceiptOutcome::Failed => false,
            ReceiptOutcome::Pending => return,
        };
        self.apply_receipt(carrier_id, delivered, error_code, now)
            .await;
    }

    async fn apply_receipt(
        &mut self,
        carrier_id: String,
        delivered: bool,
        error_code: Option<String>,
        now: i64,
    ) {
        let (id, err) = (carrier_id.clone(), error_code.clone());
        match blocking(&self.store, move |s| {
            s.message_receipt(&id, delivered, err.as_deref(), now)
        })
        .await
        {
            Ok(crate::store::ReceiptOutcome::Finished(m)) => self.record_outcome(&m, now),
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                // Its message is not recorded as accepted yet (or it is not ours): keep it a
                // while, bounded.
                self.receipts
                    .retain(|_, r| now - r.at_ms < RECEIPT_BUFFER_MS);
                if self.receipts.len() >= RECEIPT_BUFFER_MAX {
                    self.stats.receipts_unmatched += 1;
                    return;
                }
                self.stats.receipts_buffered += 1;
                self.receipts.insert(
                    carrier_id,
                    BufferedReceipt {
                        delivered,
                        error_code,
                        at_ms: now,
                    },
                );
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "cannot record a receipt");
            }
        }
    }

    async fn inbound(&mut self, source: &str, destination: &str, keyword: Keyword, now: i64) {
        let Some(phone) = inbound::sender_e164(source) else {
            tracing::info!(?keyword, "inbound SMS from a non-numeric sender ignored");
            return;
        };
        let shown = self.phone_log(&phone);
        let mut newly_suppressed = false;
        if keyword == Keyword::OptOut {
            self.stats.opt_outs += 1;
            // An opt-out speaks against the DID that texted this number last.
            if let Some(did) = self.last_did.get(&phone) {
                let times = self.did_opt_outs.entry(did.clone()).or_default();
                if times.len() >= self.settings.caller_id.health_window.max(1) {
                    times.pop_front();
                }
                times.push_back(now);
            }
            let p = phone.clone();
            match blocking(&self.store, move |s| {
                s.suppress(&[p], "opt_out_sms", "smpp", now)
            })
            .await
            {
                Ok(done) => {
                    newly_suppressed = done.added > 0;
                    tracing::info!(phone = %shown, prospects_cancelled = done.prospects_cancelled, new = newly_suppressed, "opt-out by SMS: number suppressed");
                }
                Err(e) => {
                    // Not acknowledged in the store: no confirmation either (it would be false).
                    self.stats.store_errors += 1;
                    tracing::error!(phone = %shown, error = %e, "cannot suppress a number that opted out");
                    return;
                }
            }
        } else {
            tracing::info!(phone = %shown, ?keyword, "inbound SMS");
        }
        let Some(text) = inbound::reply_text(keyword, newly_suppressed, &self.settings.replies)
            .map(str::to_string)
        else {
            return;
        };
        let mut any_did = self
            .campaigns
            .values()
            .flat_map(|c| c.dids.first())
            .chain(self.registered.first())
            .next()
            .cloned();
        if any_did.is_none() {
            // DIDs registered since the last refresh count too.
            let first = blocking(&self.store, |s| {
                s.list_dids(
                    None,
                    &PageRequest {
                        limit: 100,
                        after: None,
                    },
                )
            })
            .await;
            any_did = first.ok().and_then(|p| {
                p.items
                    .into_iter()
                    .find(|d| d.state != DidState::Burned)
                    .map(|d| d.number)
            });
        }
        let Some(from) = inbound::reply_source(
            self.last_did.get(&phone).map(String::as_str),
            destination,
            any_did.as_deref(),
        ) else {
            tracing::warn!(phone = %shown, "no sender number for the reply; not sent");
            return;
        };
        let key = self.take_key();
        let req = SubmitRequest {
            key,
            source: from,
            destination: phone,
            text,
            reference: self.take_reference(),
        };
        self.queue_reply(req);
    }
}

enum Step {
    Progress,
    WaitUntil(i64),
    Idle,
}

fn e_mut<'a>(campaigns: &'a mut BTreeMap<String, SmsCampaign>, id: &str) -> &'a mut SmsCampaign {
    campaigns.get_mut(id).expect("the campaign is in the map")
}

/// Whether `phone` may be texted at `now`; if not, until when it waits and why.
fn window_wait(
    window: &Result<LocalWindow, String>,
    phone: &str,
    now: i64,
) -> Option<(i64, String)> {
    match window {
        Err(e) => Some((now + DAY_MS, format!("unusable schedule: {e}"))),
        Ok(w) => match window::check(phone, w, now) {
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
