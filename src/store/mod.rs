//! Persistence behind one interface, [`Store`]: API keys, campaigns with their stats counters,
//! prospects, audio assets and caller IDs (DIDs).
//!
//! Owns the data model and its transactions: every method is one transaction, committed before
//! it returns, so an API response never reports a write that could still be lost, and no
//! request half-applies. Campaign rules come from the pure `campaign` module and are applied
//! inside those transactions; stats are counters updated with each prospect change, never a
//! scan. The default backend is SQLite ([`sqlite::SqliteStore`], WAL, migrations at open); the
//! trait says nothing SQLite-specific so a PostgreSQL backend can implement it later.
//! It must not know HTTP, read the clock (times are `now_ms` arguments, Unix milliseconds) or
//! make its own randomness (ids come from the generator it is given).

pub mod ids;
pub mod sqlite;

use serde_json::Value;

use crate::campaign::prospect::ProspectTransitionError;
use crate::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus,
};

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
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
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
    ) -> Result<Attempt, StoreError>;
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
}

/// Opens the store a `database_url` names (`sqlite://PATH` or `sqlite:PATH`).
pub fn open(database_url: &str, seed: u64) -> Result<SqliteStore, StoreError> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Url {
            url: database_url.to_string(),
            reason: "expected sqlite://PATH".into(),
        })?;
    if path.is_empty() {
        return Err(StoreError::Url {
            url: database_url.to_string(),
            reason: "the path is empty".into(),
        });
    }
    SqliteStore::open(std::path::Path::new(path), seed)
}
