//! Persistence behind one interface, [`Store`]: API keys, campaigns with their stats counters,
//! prospects, call attempts, SMS messages, the suppression (do-not-contact) list, audio assets
//! and caller IDs (DIDs).
//!
//! Owns the data model and its transactions: every method is one transaction, committed before
//! it returns, so an API response never reports a write that could still be lost, and no
//! request half-applies. Campaign rules come from the pure `campaign` module and are applied
//! inside those transactions; stats are counters updated with each prospect change, never a
//! scan. The default backend is SQLite ([`sqlite::SqliteStore`], WAL, migrations at open); the
//! trait says nothing SQLite-specific so a PostgreSQL backend can implement it later.
//! It must not know HTTP, read the clock (times are `now_ms` arguments, Unix milliseconds) or
//! make its own randomness (ids come from the generator it is given).
//!
//! Suppression is enforced here, not by callers: no prospect is ever `queued` with a suppressed
//! number. Suppressing a number cancels its queued prospects in every campaign (reason
//! `suppressed`, counted in `cancelled`), a prospect added for a suppressed number is stored
//! already cancelled, a prospect that would go back to the queue (a retry, a requeued SMS) is
//! cancelled instead, and the claims (`begin_attempt`, `begin_message`) refuse a suppressed
//! number with [`StoreError::Suppressed`] as a last guard. Removing a number from the list does
//! not revive prospects already cancelled.

pub mod ids;
pub mod postgres;
pub mod sqlite;

use serde_json::Value;

use crate::campaign::prospect::ProspectTransitionError;
use crate::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus,
};

pub use postgres::{ClusterSettings, PgStore};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("cannot {action} a campaign that is {current}")]
    WrongStatus {
        action: &'static str,
        current: CampaignStatus,
    },
    #[error(transparent)]
    Prospect(#[from] ProspectTransitionError),
    #[error("{what} {value:?} already exists")]
    Duplicate { what: &'static str, value: String },
    #[error("invalid database URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("database error: {0}")]
    Backend(String),
    /// Two writers collided (a serialization failure or a deadlock); the transaction was
    /// rolled back and may be tried again.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// Another live node holds the prospect's lease (it read the prospect to dial it).
    #[error("prospect {prospect_id} is leased to node {node}")]
    Leased { prospect_id: String, node: String },
    /// The campaign's (or the trunk's) calls-per-second budget, shared by every node, is
    /// spent until `until_ms`; nothing was written.
    #[error("calls-per-second budget spent until {until_ms}")]
    Paced { until_ms: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The number is on the suppression list; the prospect was cancelled instead of claimed.
    #[error("the number is on the suppression list; prospect {prospect_id} cancelled")]
    Suppressed { prospect_id: String },
    /// A compliance rule refused the prospect (reason `dnc`: on a do-not-call list); it was
    /// cancelled with that reason instead of claimed.
    #[error("prospect {prospect_id} cancelled: {reason}")]
    Blocked {
        prospect_id: String,
        reason: &'static str,
    },
    /// An SMS operation on a voice campaign (or the reverse).
    #[error("campaign {id} is a {channel} campaign")]
    WrongChannel { id: String, channel: Channel },
    /// A message is not in a state that allows the operation.
    #[error("message {id} is {status}, cannot {action}")]
    MessageState {
        id: String,
        status: MessageStatus,
        action: &'static str,
    },
}

/// Reason stored on a prospect (its `wait_reason`) cancelled because its number is suppressed.
pub const SUPPRESSED_REASON: &str = "suppressed";
/// Reason stored on a prospect cancelled because its number is on a do-not-call list.
pub const DNC_REASON: &str = "dnc";
/// Reason stored on a prospect of a `requireConsent` campaign that has no consent record.
pub const NO_CONSENT_REASON: &str = "no_consent";

/// One version of a do-not-call list: what every attempt records it was checked against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DncList {
    pub name: String,
    /// 1 for the first import of the list, one more for each import after.
    pub version: u32,
    pub imported_at_ms: i64,
    /// Distinct numbers in this version.
    pub count: u64,
    /// Who imported it (`api`, `cli`).
    pub source: String,
}

/// What a DNC import changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DncImported {
    pub list: DncList,
    /// Queued prospects cancelled with reason `dnc`, over all campaigns.
    pub prospects_cancelled: u64,
}

/// Where an SMS message is. `requeued` is the audit trace of a submit that got no answer
/// before the connection dropped: the prospect went back to the queue and its resend is a new
/// message row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Sending,
    Sent,
    Delivered,
    Failed,
    Requeued,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 5] = [
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Requeued,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Requeued => "requeued",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Waiting for the carrier (submit answer or delivery receipt).
    pub fn is_live(self) -> bool {
        matches!(self, MessageStatus::Sending | MessageStatus::Sent)
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SMS message to one prospect (all its parts): the audit row of the SMS sender, written
/// before the first submit_sm leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub campaign_id: String,
    pub prospect_id: String,
    pub phone: String,
    /// The sender DID.
    pub did: String,
    /// Number of SMS parts (1 unless the text needed concatenation).
    pub parts: u32,
    /// The carrier's message id of each part, in part order (empty until accepted).
    pub smpp_message_ids: Vec<String>,
    pub status: MessageStatus,
    /// The carrier's error: submit_sm_resp command_status, or the receipt's `err:` field.
    pub error_code: Option<String>,
    /// When the carrier accepted every part.
    pub submitted_at_ms: Option<i64>,
    /// When the final receipt arrived (or the message failed).
    pub receipt_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// What one delivery receipt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The message is now final (`delivered` or `failed`), the prospect completed.
    Finished(Message),
    /// This part is recorded as delivered; other parts still wait for theirs.
    PartDelivered(Message),
    /// The message was already final (a duplicate or late receipt): nothing changed.
    AlreadyFinal(Message),
}

/// A number on the suppression list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// E.164.
    pub phone: String,
    /// Why, e.g. `opt_out_sms` (an inbound STOP) or `api`.
    pub reason: String,
    /// Who put it there, e.g. `api` or `smpp` (an MO message).
    pub source: String,
    pub created_at_ms: i64,
}

/// What a `suppress` call changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// Numbers newly on the list (already listed ones keep their first entry).
    pub added: u64,
    /// Queued prospects cancelled with reason `suppressed`, over all campaigns.
    pub prospects_cancelled: u64,
}

/// One engine node sharing the store, as its last heartbeat described it (`GET /nodes`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub id: String,
    pub started_at_ms: i64,
    pub heartbeat_at_ms: i64,
    /// Calls in progress on the node.
    pub calls: u64,
    /// Calls the node placed since it started.
    pub calls_placed: u64,
    /// Calls per second the node placed over the last heartbeat interval.
    pub cps: f64,
}

/// A stored API key (the key itself is never stored, only its SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A campaign as created, with its current status.
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub channel: Channel,
    pub status: CampaignStatus,
    /// The `mode` object as the client sent it (unknown keys kept).
    pub mode: Value,
    pub caller_ids: Vec<String>,
    /// The `callerIdStrategy` object as the client sent it.
    pub caller_id_strategy: Value,
    pub schedule: Option<Value>,
    /// `webhookUrl`: where this campaign's events are POSTed (else the node's `webhook_url`).
    pub webhook_url: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A validated campaign to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCampaign {
    /// `None`: the campaign is named after its id.
    pub name: Option<String>,
    pub channel: Channel,
    pub mode: Value,
    pub caller_ids: Vec<String>,
    pub caller_id_strategy: Value,
    pub schedule: Option<Value>,
    /// `webhookUrl` (checked by the caller).
    pub webhook_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prospect {
    pub id: String,
    pub campaign_id: String,
    pub phone: String,
    pub status: ProspectStatus,
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    pub amd_result: Option<AmdResult>,
    pub next_attempt_at_ms: Option<i64>,
    /// Why a queued prospect waits past its turn (outside its calling window, no caller ID).
    pub wait_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One call attempt to one prospect: the audit row of the dialer. It is written before the
/// INVITE leaves (`ended_at_ms` empty while the call is live) and completed when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub campaign_id: String,
    pub prospect_id: String,
    pub phone: String,
    /// 1 for the first attempt to this prospect.
    pub number: u32,
    pub caller_id: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub result: AttemptResult,
}

/// What an attempt found; empty while it is live.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptResult {
    pub outcome: Option<Outcome>,
    pub cause: Option<String>,
    pub sip_status: Option<u16>,
    pub sip_call_id: Option<String>,
    /// Milliseconds after the INVITE.
    pub answered_ms: Option<i64>,
    pub amd_result: Option<AmdResult>,
    pub amd_cause: Option<String>,
    /// Milliseconds of answered audio before the first decision.
    pub amd_ms: Option<i64>,
    /// How the end of a machine greeting was found: `beep` or `silence`.
    pub machine_end: Option<String>,
    pub playback_start_ms: Option<i64>,
    pub played_ms: Option<i64>,
    /// Answered talk time in milliseconds.
    pub talk_ms: Option<i64>,
    /// The AI agent bridge: ms from the answer to the agent's connection, ms it talked with
    /// the person, reconnects, and why the bridge ended (or never began).
    pub agent_connected_ms: Option<i64>,
    pub agent_talk_ms: Option<i64>,
    pub agent_reconnects: Option<i64>,
    pub agent_end: Option<String>,
    /// A person answered and was not connected to the agent or the message within 2 s of
    /// the end of their greeting (`campaign::abandon`); `None` when no person answered.
    pub abandoned: Option<bool>,
}

/// A change to a caller ID's health figures, computed by the dialer.
#[derive(Clone, Debug, PartialEq)]
pub struct DidUpdate {
    pub state: DidState,
    pub health_score: f64,
    pub placed: u64,
    pub answered: u64,
    pub cooling_until_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AudioAsset {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub duration_seconds: f64,
    pub created_at_ms: i64,
}

/// Health state of a caller ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DidState {
    Active,
    Cooling,
    Burned,
}

impl DidState {
    pub const ALL: [DidState; 3] = [DidState::Active, DidState::Cooling, DidState::Burned];

    pub fn as_str(self) -> &'static str {
        match self {
            DidState::Active => "active",
            DidState::Cooling => "cooling",
            DidState::Burned => "burned",
        }
    }

    pub fn parse(s: &str) -> Option<DidState> {
        DidState::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A caller ID the operator owns, with its health figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Did {
    pub id: String,
    pub number: String,
    pub state: DidState,
    /// 0-100; starts at 100, lowered by the dialer from answer rates and carrier signals.
    pub health_score: f64,
    pub calls_placed: u64,
    pub calls_answered: u64,
    pub cooling_until_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// One recorded state change (`attempt.started`, `attempt.ended`, `campaign.status`), written
/// in the transaction of the change itself. `seq` orders events and is the SSE id; `id` is the
/// idempotency id receivers deduplicate by.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub campaign_id: String,
    pub data: Value,
    pub created_at_ms: i64,
}

/// A webhook delivery to try.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookJob {
    pub event: StoredEvent,
    /// The campaign's `webhookUrl`; `None`: the node's default applies.
    pub url: Option<String>,
    /// Tries so far.
    pub tries: u32,
}

/// Keyset pagination: at most `limit` items after the opaque `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Position after which to start (from a previous page's `next_cursor`).
    pub after: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items may follow.
    pub next_cursor: Option<i64>,
}

/// Everything trunx persists. Each method is one committed transaction.
pub trait Store: Send + Sync {
    /// Stores a new key's SHA-256 under `name` (unique among keys not revoked).
    fn create_api_key(
        &self,
        name: &str,
        key_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError>;
    /// Revokes the active key with this name or id.
    fn revoke_api_key(&self, name_or_id: &str, now_ms: i64) -> Result<ApiKey, StoreError>;
    fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The active key with this hash, if any.
    fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError>;

    fn create_campaign(&self, new: NewCampaign, now_ms: i64) -> Result<Campaign, StoreError>;
    fn get_campaign(&self, id: &str) -> Result<Campaign, StoreError>;
    fn list_campaigns(
        &self,
        status: Option<CampaignStatus>,
        page: &PageRequest,
    ) -> Result<Page<Campaign>, StoreError>;
    /// Applies a lifecycle action (see `campaign::status::apply`); `cancel` also cancels every
    /// queued prospect, in the same transaction.
    fn transition_campaign(
        &self,
        id: &str,
        action: Action,
        now_ms: i64,
    ) -> Result<Campaign, StoreError>;

    /// Adds the numbers not already in the campaign (valid E.164, checked by the caller) as
    /// queued prospects; returns how many were added. Only while `created` or `paused`.
    fn add_prospects(
        &self,
        campaign_id: &str,
        phones: &[String],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.add_prospects_consented(campaign_id, phones, &Default::default(), now_ms)
    }
    /// [`Store::add_prospects`] with the consent record (validated JSON) of some numbers. In
    /// a campaign whose `mode.requireConsent` is true a number without one is stored already
    /// cancelled with reason `no_consent`.
    fn add_prospects_consented(
        &self,
        campaign_id: &str,
        phones: &[String],
        consents: &std::collections::BTreeMap<String, Value>,
        now_ms: i64,
    ) -> Result<u64, StoreError>;
    fn list_prospects(
        &self,
        campaign_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Prospect>, StoreError>;
    /// Records what happened to one prospect (the dialer's entry point) and updates the
    /// campaign's counters in the same transaction.
    fn record_prospect_event(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError>;
    /// Queued prospects of a campaign whose turn has come (`next_attempt_at` empty or past),
    /// oldest turn first.
    fn due_prospects(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Prospect>, StoreError>;
    /// Moves a queued prospect's turn to `until_ms` with the reason (no state change, no
    /// attempt counted).
    fn defer_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError>;
    /// Starts an attempt: the prospect goes `dialing` (one more attempt) and the attempt row
    /// is written, in one transaction, before any INVITE. Refused unless the campaign is
    /// `dialing` and the prospect `queued`, so a prospect never has two live calls.
    fn begin_attempt(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        now_ms: i64,
    ) -> Result<Attempt, StoreError> {
        self.begin_attempt_audited(
            campaign_id,
            prospect_id,
            caller_id,
            serde_json::Map::new(),
            now_ms,
        )
    }
    /// Ends a live attempt with its result and applies `event` to the prospect (and the
    /// counters) in one transaction; the campaign becomes `completed` when nothing is left
    /// to dial. Ending an attempt twice is refused.
    fn finish_attempt(
        &self,
        attempt_id: &str,
        result: &AttemptResult,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError>;
    /// Attempts left live (by a crash), for recovery at start-up.
    fn live_attempts(&self) -> Result<Vec<Attempt>, StoreError>;
    /// A campaign's attempts in the order they started.
    fn list_attempts(
        &self,
        campaign_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError>;
    /// Attempts started with any caller ID since `since_ms` (to rebuild the caller-ID caps
    /// and health after a restart), oldest first.
    fn attempts_since(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError>;
    /// Marks a `dialing` campaign `completed` when no prospect is queued or in a call;
    /// returns whether it did.
    fn complete_if_done(&self, campaign_id: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Stores a caller ID's health figures.
    fn update_did(&self, number: &str, update: &DidUpdate) -> Result<(), StoreError>;

    /// The campaign's counters: one row read, no scan.
    fn stats(&self, campaign_id: &str) -> Result<Counters, StoreError>;

    /// Events after position `after_seq` (0: from the first), oldest first, at most `limit`
    /// (`GET /events` and its `Last-Event-ID` resume).
    fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;
    /// Position of the newest event (0 when there is none).
    fn last_event_seq(&self) -> Result<i64, StoreError>;
    /// Webhook deliveries due at `now_ms` (pending, `next_at` reached), oldest first, with the
    /// campaign's `webhookUrl`.
    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookJob>, StoreError>;
    /// Records a try of the event's delivery: `Some(next_at)` keeps it pending until then;
    /// `None` ends it with `state` (`delivered`, `failed`, `refused`, `no_url`).
    fn webhook_tried(
        &self,
        event_seq: i64,
        state: &str,
        next_at_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Deliveries still pending.
    fn webhook_queue_depth(&self) -> Result<u64, StoreError>;

    fn create_audio(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        duration_seconds: f64,
        now_ms: i64,
    ) -> Result<AudioAsset, StoreError>;
    fn get_audio(&self, id: &str) -> Result<AudioAsset, StoreError>;
    fn get_audio_file(&self, id: &str) -> Result<(AudioAsset, Vec<u8>), StoreError>;

    /// Registers the numbers not already registered; returns the new ones.
    fn add_dids(&self, numbers: &[String], now_ms: i64) -> Result<Vec<Did>, StoreError>;
    fn list_dids(
        &self,
        state: Option<DidState>,
        page: &PageRequest,
    ) -> Result<Page<Did>, StoreError>;

    /// Starts an SMS to the prospect with this number in an `sms` campaign: the prospect goes
    /// `sending` (one more attempt, counter `sending` + 1) and the message row is written, in
    /// one transaction, before any submit_sm. Refused unless the campaign is `dialing` and the
    /// prospect `queued`; a suppressed number is cancelled instead ([`StoreError::Suppressed`]).
    fn begin_message(
        &self,
        campaign_id: &str,
        phone: &str,
        did: &str,
        parts: u32,
        now_ms: i64,
    ) -> Result<Message, StoreError>;
    /// The carrier accepted every part (`sending` -> `sent`), with their message ids in part
    /// order.
    fn message_accepted(
        &self,
        message_id: &str,
        smpp_message_ids: &[String],
        now_ms: i64,
    ) -> Result<Message, StoreError>;
    /// A delivery receipt for one part, by the carrier's message id. A failed part fails the
    /// message; the message is delivered when every part is. Final: the prospect completes
    /// (`delivered` or `failed`) and the campaign completes when nothing is left.
    fn message_receipt(
        &self,
        smpp_message_id: &str,
        delivered: bool,
        error_code: Option<&str>,
        now_ms: i64,
    ) -> Result<ReceiptOutcome, StoreError>;
    /// A live message failed for good (a permanent submit error, a receipt that never came).
    fn message_failed(
        &self,
        message_id: &str,
        error_code: &str,
        now_ms: i64,
    ) -> Result<Message, StoreError>;
    /// A `sending` message got no answer before the connection dropped: it becomes
    /// `requeued`, the prospect goes back to `queued` (its attempt not counted) so it is sent
    /// again as a new message. Cancelled instead when the number was suppressed meanwhile or
    /// the campaign ended.
    fn message_requeued(&self, message_id: &str, now_ms: i64) -> Result<Prospect, StoreError>;
    /// Messages still `sending` or `sent`, for recovery at start-up.
    fn live_messages(&self) -> Result<Vec<Message>, StoreError>;
    /// Messages written since `since_ms` (to rebuild per-DID pacing after a restart), oldest
    /// first.
    fn messages_since(&self, since_ms: i64) -> Result<Vec<Message>, StoreError>;
    /// A campaign's messages in the order they were written.
    fn list_messages(
        &self,
        campaign_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;

    /// Puts numbers on the suppression list and cancels their queued prospects in every
    /// campaign, in one transaction (all or nothing).
    fn suppress(
        &self,
        phones: &[String],
        reason: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<Suppressed, StoreError>;
    /// Takes a number off the list; `false` if it was not on it. Prospects already cancelled
    /// stay cancelled.
    fn unsuppress(&self, phone: &str) -> Result<bool, StoreError>;
    fn is_suppressed(&self, phone: &str) -> Result<bool, StoreError>;
    /// The list in the order numbers were added.
    fn list_suppressed(&self, page: &PageRequest) -> Result<Page<Suppression>, StoreError>;

    /// Replaces the do-not-call list `list` by `numbers` (E.164 digits as `u64`, sorted, no
    /// duplicates) as its next version, then cancels the queued prospects it holds in every
    /// campaign (reason `dnc`). The new version takes effect at once, in memory too; until
    /// the last number is written the previous version stays in force.
    fn import_dnc(
        &self,
        list: &str,
        numbers: &[u64],
        source: &str,
        now_ms: i64,
    ) -> Result<DncImported, StoreError>;
    /// The versions in force, one per list, by name.
    fn dnc_lists(&self) -> Vec<DncList>;
    /// The first list in force holding this number (a memory lookup, no database read).
    fn dnc_hit(&self, phone: &str) -> Option<DncList>;
    /// Cancels a `queued` prospect with a compliance `reason` (`dnc`, `no_consent`).
    fn cancel_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        reason: &'static str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError>;
    /// Starts an attempt like [`Store::begin_attempt`] and stores `audit` (what allowed the
    /// call) with it, adding the store's own checks: `dnc` (every list version checked) and
    /// `suppression`.
    fn begin_attempt_audited(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        audit: serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<Attempt, StoreError>;
    /// The live answers (start time, abandoned) of a campaign's attempts started since
    /// `since_ms`, oldest first: its abandonment rate and the pacer's budget after a restart.
    fn live_answers_since(
        &self,
        campaign_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, bool)>, StoreError>;
    /// An attempt and its audit record.
    fn attempt_audit(&self, attempt_id: &str) -> Result<(Attempt, Value), StoreError>;
    /// A campaign's attempts with their audit records, in the order they started.
    fn campaign_audit(
        &self,
        campaign_id: &str,
        page: &PageRequest,
    ) -> Result<Page<(Attempt, Value)>, StoreError>;

    /// Writes this node's heartbeat row; on a shared store also renews the node's leases and
    /// ends the live attempts of nodes whose lease ran out (`failed` / `node_lost`, never
    /// re-dialled). Returns how many such attempts it ended.
    fn heartbeat(&self, node: &NodeStatus) -> Result<u64, StoreError>;
    /// Every node that ever beat, by id.
    fn list_nodes(&self) -> Result<Vec<NodeStatus>, StoreError>;
}

/// Opens the store a `database_url` names: `sqlite://PATH` (or `sqlite:PATH`), or
/// `postgres://...` / `postgresql://...` for several nodes (`cluster` names this node).
pub fn open(
    database_url: &str,
    seed: u64,
    cluster: &ClusterSettings,
) -> Result<Box<dyn Store>, StoreError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(Box::new(PgStore::open(
            database_url,
            seed,
            cluster.clone(),
        )?));
    }
    Ok(Box::new(open_sqlite(database_url, seed)?))
}

/// Opens a `sqlite://PATH` (or `sqlite:PATH`) store.
pub fn open_sqlite(database_url: &str, seed: u64) -> Result<SqliteStore, StoreError> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Url {
            url: database_url.to_string(),
            reason: "expected sqlite://PATH or postgres://...".into(),
        })?;
    if path.is_empty() {
        return Err(StoreError::Url {
            url: database_url.to_string(),
            reason: "the path is empty".into(),
        });
    }
    SqliteStore::open(std::path::Path::new(path), seed)
}
