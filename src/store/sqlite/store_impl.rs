//! [`Store`] for [`SqliteStore`]: each method forwards to the file that holds its statements.
//! It must hold no SQL.

use serde_json::Value;

use super::{SqliteStore, compliance};
use crate::campaign::{Action, CampaignStatus, Counters, ProspectEvent};
use crate::store::{
    ApiKey, Attempt, AttemptResult, AudioAsset, Campaign, Did, DidState, DidUpdate, DncImported,
    DncList, Message, NewCampaign, NodeStatus, Page, PageRequest, Prospect, ReceiptOutcome, Store,
    StoreError, StoredEvent, Suppressed, Suppression, WebhookJob,
};

impl Store for SqliteStore {
    fn create_api_key(
        &self,
        name: &str,
        key_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        self.create_api_key_impl(name, key_hash, now_ms)
    }

    fn revoke_api_key(&self, name_or_id: &str, now_ms: i64) -> Result<ApiKey, StoreError> {
        self.revoke_api_key_impl(name_or_id, now_ms)
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.list_api_keys_impl()
    }

    fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        self.authenticate_impl(key_hash)
    }

    fn create_campaign(&self, new: NewCampaign, now_ms: i64) -> Result<Campaign, StoreError> {
        self.create_campaign_impl(new, now_ms)
    }

    fn get_campaign(&self, id: &str) -> Result<Campaign, StoreError> {
        self.get_campaign_impl(id)
    }

    fn list_campaigns(
        &self,
        status: Option<CampaignStatus>,
        req: &PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        self.list_campaigns_impl(status, req)
    }

    fn transition_campaign(
        &self,
        id: &str,
        action: Action,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
        self.transition_campaign_impl(id, action, now_ms)
    }

    fn add_prospects_consented(
        &self,
        campaign_id: &str,
        phones: &[String],
        consents: &std::collections::BTreeMap<String, Value>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.add_prospects_consented_impl(campaign_id, phones, consents, now_ms)
    }

    fn list_prospects(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Prospect>, StoreError> {
        self.list_prospects_impl(campaign_id, req)
    }

    fn record_prospect_event(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.record_prospect_event_impl(campaign_id, prospect_id, event, now_ms)
    }

    fn due_prospects(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Prospect>, StoreError> {
        self.due_prospects_impl(campaign_id, now_ms, limit)
    }

    fn defer_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.defer_prospect_impl(campaign_id, prospect_id, until_ms, reason, now_ms)
    }

    fn begin_attempt_audited(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        audit: serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<Attempt, StoreError> {
        self.begin_attempt_audited_impl(campaign_id, prospect_id, caller_id, audit, now_ms)
    }

    fn finish_attempt(
        &self,
        attempt_id: &str,
        result: &AttemptResult,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.finish_attempt_impl(attempt_id, result, event, now_ms)
    }

    fn live_attempts(&self) -> Result<Vec<Attempt>, StoreError> {
        self.live_attempts_impl()
    }

    fn list_attempts(
        &self,
        campaign_id: &str,
        page_req: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        self.list_attempts_impl(campaign_id, page_req)
    }

    fn attempts_since(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError> {
        self.attempts_since_impl(since_ms)
    }

    fn complete_if_done(&self, campaign_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.complete_if_done_impl(campaign_id, now_ms)
    }

    fn update_did(&self, number: &str, u: &DidUpdate) -> Result<(), StoreError> {
        self.update_did_impl(number, u)
    }

    fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_after_impl(after_seq, limit)
    }

    fn last_event_seq(&self) -> Result<i64, StoreError> {
        self.last_event_seq_impl()
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookJob>, StoreError> {
        self.due_webhooks_impl(now_ms, limit)
    }

    fn webhook_tried(
        &self,
        event_seq: i64,
        state: &str,
        next_at_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.webhook_tried_impl(event_seq, state, next_at_ms, error)
    }

    fn webhook_queue_depth(&self) -> Result<u64, StoreError> {
        self.webhook_queue_depth_impl()
    }

    fn stats(&self, campaign_id: &str) -> Result<Counters, StoreError> {
        self.stats_impl(campaign_id)
    }

    fn create_audio(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        duration_seconds: f64,
        now_ms: i64,
    ) -> Result<AudioAsset, StoreError> {
        self.create_audio_impl(name, content_type, bytes, duration_seconds, now_ms)
    }

    fn get_audio(&self, id: &str) -> Result<AudioAsset, StoreError> {
        self.get_audio_impl(id)
    }

    fn get_audio_file(&self, id: &str) -> Result<(AudioAsset, Vec<u8>), StoreError> {
        self.get_audio_file_impl(id)
    }

    fn add_dids(&self, numbers: &[String], now_ms: i64) -> Result<Vec<Did>, StoreError> {
        self.add_dids_impl(numbers, now_ms)
    }

    fn list_dids(
        &self,
        state: Option<DidState>,
        req: &PageRequest,
    ) -> Result<Page<Did>, StoreError> {
        self.list_dids_impl(state, req)
    }

    fn begin_message(
        &self,
        campaign_id: &str,
        phone: &str,
        did: &str,
        parts: u32,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.begin_message_impl(campaign_id, phone, did, parts, now_ms)
    }

    fn message_accepted(
        &self,
        message_id: &str,
        smpp_message_ids: &[String],
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.message_accepted_impl(message_id, smpp_message_ids, now_ms)
    }

    fn message_receipt(
        &self,
        smpp_message_id: &str,
        delivered: bool,
        error_code: Option<&str>,
        now_ms: i64,
    ) -> Result<ReceiptOutcome, StoreError> {
        self.message_receipt_impl(smpp_message_id, delivered, error_code, now_ms)
    }

    fn message_failed(
        &self,
        message_id: &str,
        error_code: &str,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.message_failed_impl(message_id, error_code, now_ms)
    }

    fn message_requeued(&self, message_id: &str, now_ms: i64) -> Result<Prospect, StoreError> {
        self.message_requeued_impl(message_id, now_ms)
    }

    fn live_messages(&self) -> Result<Vec<Message>, StoreError> {
        self.live_messages_impl()
    }

    fn messages_since(&self, since_ms: i64) -> Result<Vec<Message>, StoreError> {
        self.messages_since_impl(since_ms)
    }

    fn list_messages(
        &self,
        campaign_id: &str,
        page_req: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        self.list_messages_impl(campaign_id, page_req)
    }

    fn suppress(
        &self,
        phones: &[String],
        reason: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<Suppressed, StoreError> {
        self.suppress_impl(phones, reason, source, now_ms)
    }

    fn unsuppress(&self, phone: &str) -> Result<bool, StoreError> {
        self.unsuppress_impl(phone)
    }

    fn is_suppressed(&self, phone: &str) -> Result<bool, StoreError> {
        self.is_suppressed_impl(phone)
    }

    fn list_suppressed(&self, req: &PageRequest) -> Result<Page<Suppression>, StoreError> {
        self.list_suppressed_impl(req)
    }

    fn import_dnc(
        &self,
        list: &str,
        numbers: &[u64],
        source: &str,
        now_ms: i64,
    ) -> Result<DncImported, StoreError> {
        compliance::import_dnc(self, list, numbers, source, now_ms)
    }

    fn dnc_lists(&self) -> Vec<DncList> {
        self.dnc_book().lists()
    }

    fn dnc_hit(&self, phone: &str) -> Option<DncList> {
        self.dnc_book().hit(phone).cloned()
    }

    fn cancel_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        reason: &'static str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.cancel_prospect_impl(campaign_id, prospect_id, reason, now_ms)
    }

    fn live_answers_since(
        &self,
        campaign_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, bool)>, StoreError> {
        self.live_answers_since_impl(campaign_id, since_ms)
    }

    fn attempt_audit(&self, attempt_id: &str) -> Result<(Attempt, Value), StoreError> {
        compliance::attempt_audit(self, attempt_id)
    }

    fn campaign_audit(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<(Attempt, Value)>, StoreError> {
        compliance::campaign_audit(self, campaign_id, req)
    }

    fn heartbeat(&self, b: &NodeStatus) -> Result<u64, StoreError> {
        self.heartbeat_impl(b)
    }

    fn list_nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        self.list_nodes_impl()
    }
}
