//! The dialer's compliance gate at claim time: a prospect a rule refuses (its number on a
//! do-not-call list) is cancelled with the rule's reason instead of being buffered for a call.
//! The store checks again when the attempt is begun, just before the INVITE.

use std::sync::Arc;

use crate::store::{Campaign, DNC_REASON, Prospect, Store};

/// The reason `campaign` may not contact `p` at all, if any.
pub(super) fn refusal(
    store: &dyn Store,
    _campaign: &Campaign,
    p: &Prospect,
) -> Option<&'static str> {
    if store.dnc_hit(&p.phone).is_some() {
        return Some(DNC_REASON);
    }
    None
}

/// Cancels a refused prospect (off the dialer task); a prospect no longer queued is left be.
pub(super) async fn cancel(
    store: &Arc<dyn Store>,
    campaign_id: &str,
    p: &Prospect,
    reason: &'static str,
    now_ms: i64,
) {
    let s = store.clone();
    let (cid, pid) = (campaign_id.to_string(), p.id.clone());
    match tokio::task::spawn_blocking(move || s.cancel_prospect(&cid, &pid, reason, now_ms)).await {
        Ok(Ok(_)) => tracing::debug!(campaign = %campaign_id, reason, "prospect cancelled"),
        Ok(Err(e)) => {
            tracing::debug!(campaign = %campaign_id, error = %e, "prospect not cancelled")
        }
        Err(_) => {}
    }
}
