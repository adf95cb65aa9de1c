//! The webhook sender: reads due deliveries from the store's outbox, POSTs each event's JSON
//! (signed, with its idempotency id) through the egress-checked HTTP client, and records the
//! result: delivered, retried later with backoff (`campaign::webhook::next_try`), or ended
//! (refused by the egress policy, no URL, given up). Rows live in the store, so a restart
//! resumes where it stopped: delivery is at least once, receivers deduplicate by
//! `X-Trunx-Event-Id`.
//!
//! One task, one delivery at a time, in event order. Never logs the secret, and logs URLs
//! redacted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api::dto::rfc3339;
use crate::campaign::webhook::{self, Retry};
use crate::egress::redact_url;
use crate::runtime::clock::wall_ms;
use crate::runtime::fetch::{self, ClientError, FetchConfig};
use crate::store::{Store, StoredEvent, WebhookJob};

/// How often the outbox is looked at when idle.
const POLL: Duration = Duration::from_millis(200);
/// Most deliveries read per look.
const BATCH: u32 = 50;
/// Longest a receiver may take to answer one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the sender needs.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// `webhook_url`: for campaigns without their own.
    pub default_url: Option<String>,
    /// `webhook_secret` (never logged).
    pub secret: Option<Arc<[u8]>>,
    /// The egress policy and connect timeout of `fetch_*`.
    pub fetch: FetchConfig,
}

/// The JSON body of one event, as POSTed and as sent on `GET /events`: the envelope
/// (`id`, `seq`, `type`, `createdAt`, `campaignId`) around the event's `data`.
pub fn event_json(e: &StoredEvent) -> String {
    json!({
        "id": e.id,
        "seq": e.seq,
        "type": e.kind,
        "createdAt": rfc3339(e.created_at_ms),
        "campaignId": e.campaign_id,
        "data": e.data,
    })
    .to_string()
}

/// How one try ended.
enum Tried {
    Delivered,
    /// Worth trying again.
    Failed(String),
    /// Never worth trying again (the egress policy refused the URL).
    Refused(String),
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Option<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(s.as_ref())).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "webhook outbox: store error");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook outbox: store task failed");
            None
        }
    }
}

/// Runs until `stop`: delivers every pending event, oldest first.
pub async fn run(
    settings: WebhookSettings,
    store: Arc<dyn Store>,
    stop: CancellationToken,
) -> Result<(), ClientError> {
    let client = fetch::checked_client(&settings.fetch)?;
    let metrics = crate::runtime::metrics::global();
    loop {
        if let Some(depth) = blocking(&store, |s| s.webhook_queue_depth()).await {
            metrics.webhook_queue.set(depth.min(i64::MAX as u64) as i64);
        }
        let now = wall_ms();
        let due = blocking(&store, move |s| s.due_webhooks(now, BATCH))
            .await
            .unwrap_or_default();
        for job in due {
            if stop.is_cancelled() {
                return Ok(());
            }
            deliver(&settings, &client, &store, job).await;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn deliver(
    settings: &WebhookSettings,
    client: &reqwest::Client,
    store: &Arc<dyn Store>,
    job: WebhookJob,
) {
    let metrics = crate::runtime::metrics::global();
    let seq = job.event.seq;
    let Some(url) = job.url.clone().or_else(|| settings.default_url.clone()) else {
        let _ = blocking(store, move |s| s.webhook_tried(seq, "no_url", None, None)).await;
        return;
    };
    let shown = redact_url(&url);
    let tried = post(settings, client, &url, &job.event).await;
    let now = wall_ms();
    let (state, next_at, error, result) = match tried {
        Tried::Delivered => ("delivered", None, None, "delivered"),
        Tried::Refused(why) => {
            tracing::warn!(event = %job.event.id, url = %shown, reason = %why,
                "webhook refused by the egress policy");
            ("refused", None, Some(why), "refused")
        }
        Tried::Failed(why) => {
            let tries = job.tries.saturating_add(1);
            match webhook::next_try(tries, job.event.created_at_ms, now) {
                Retry::At(at) => {
                    tracing::info!(event = %job.event.id, url = %shown, tries, reason = %why,
                        retry_in_ms = at - now, "webhook not delivered, will retry");
                    ("pending", Some(at), Some(why), "failed")
                }
                Retry::GiveUp => {
                    tracing::warn!(event = %job.event.id, url = %shown, tries, reason = %why,
                        "webhook given up");
                    ("failed", None, Some(why), "failed")
                }
            }
        }
    };
    metrics
        .webhook_deliveries
        .with_label_values(&[result])
        .inc();
    let _ = blocking(store, move |s| {
        s.webhook_tried(seq, state, next_at, error.as_deref())
    })
    .await;
}

async fn post(
    settings: &WebhookSettings,
    client: &reqwest::Client,
    url: &str,
    event: &StoredEvent,
) -> Tried {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Tried::Refused(format!("not a valid URL ({e})")),
    };
    if let Err(e) = settings.fetch.policy.check_url(&parsed) {
        return Tried::Refused(e.to_string());
    }
    let body = event_json(event);
    let mut req = client
        .post(parsed)
        .timeout(POST_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Trunx-Event-Id", &event.id)
        .header("Idempotency-Key", &event.id)
        .header("X-Trunx-Event-Type", &event.kind);
    if let Some(secret) = &settings.secret {
        let t = wall_ms().div_euclid(1000);
        req = req.header(
            "X-Trunx-Signature",
            webhook::signature(secret, t, body.as_bytes()),
        );
    }
    match req.body(body).send().await {
        Ok(resp) if webhook::delivered(resp.status().as_u16()) => Tried::Delivered,
        Ok(resp) => Tried::Failed(format!("HTTP status {}", resp.status().as_u16())),
        Err(e) => match fetch::refusal(&e) {
            Some(why) => Tried::Refused(why),
            None => Tried::Failed(fetch::error_chain(&e)),
        },
    }
}
