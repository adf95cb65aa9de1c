//! The SMS campaign sender: the one task that owns which prospect of a `dialing` SMS campaign
//! is texted when, from which DID, over the SMPP connection of `runtime::campaigns::smpp`.
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
//!
//! Here: the task loop, start-up recovery and the campaign list; `sending` chooses and submits
//! the next message; `events` turns what the session reports into store writes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use crate::campaign::callerid::{self, CallerIdConfig, CallerIdSelector, DidView, NoCallerId};
use crate::campaign::sms_pacing::{SmsPacer, SmsPacingConfig};
use crate::campaign::window::LocalWindow;
use crate::campaign::{CampaignStatus, Channel, redact};
use crate::sms::inbound::{self, Replies};
use crate::sms::keywords::Keyword;
use crate::sms::receipt::ReceiptOutcome;
use crate::sms::session::{SessionEvent, SubmitRequest};
use crate::store::{Campaign, DidState, PageRequest, Prospect, Store, StoreError};

use crate::runtime::campaigns::smpp::{SmppClient, SmppEvent, SmppSettings, SmppStats};
use crate::runtime::clock::wall_ms;

mod events;
mod sending;

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
    /// The state calling rules in force (they narrow the SMS window too).
    pub rules: Arc<crate::campaign::rules::RuleSet>,
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
    /// Per DID: no text before this time, because the store counted other nodes' texts of it
    /// (PostgreSQL, `StoreError::DidLimit`).
    shared_wait_ms: HashMap<String, i64>,
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
    let seed = u64::from_le_bytes(crate::runtime::clock::os_random::<8>().unwrap_or([3; 8]));
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
        shared_wait_ms: HashMap::new(),
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
        let window = crate::runtime::campaigns::windows::campaign_window(&c);
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
}

enum Step {
    Progress,
    WaitUntil(i64),
    Idle,
}

fn e_mut<'a>(campaigns: &'a mut BTreeMap<String, SmsCampaign>, id: &str) -> &'a mut SmsCampaign {
    campaigns.get_mut(id).expect("the campaign is in the map")
}
