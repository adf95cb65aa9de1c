//! The live surfaces: `GET /metrics` (Prometheus text) and `GET /events` (Server-Sent Events
//! of the store's event log, resumable with `Last-Event-ID`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::runtime::metrics::{self, Metrics};
use crate::runtime::webhooks::event_json;
use crate::store::StoredEvent;

/// How often an open `/events` stream looks for new events.
const EVENTS_POLL: Duration = Duration::from_millis(200);
/// Most events read per look.
const EVENTS_BATCH: u32 = 200;

pub async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, Metrics::content_type())],
        metrics::global().render(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Resume position when the client cannot send `Last-Event-ID` (an `EventSource` opened
    /// fresh); the header wins when both are given.
    after: Option<String>,
}

/// Parses a resume position: a non-negative integer of at most 18 digits.
fn position(field: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field,
            "must be the id of an event (a whole number)",
        ));
    }
    v.parse()
        .map_err(|_| ApiError::invalid(field, "must be the id of an event"))
}

/// `GET /events`: every event after `Last-Event-ID` (or `?after=`), then new ones as they are
/// committed. Without either, the stream starts with events from now on.
pub async fn events(
    State(st): State<AppState>,
    axum::Extension(live): axum::Extension<super::Live>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(position(
            "Last-Event-ID",
            v.to_str()
                .map_err(|_| ApiError::invalid("Last-Event-ID", "must be ASCII"))?,
        )?),
        None => match q.after.as_deref() {
            Some(a) => Some(position("after", a)?),
            None => None,
        },
    };
    let start = match resume {
        Some(p) => p,
        // From now on: after the newest event.
        None => st.run(|s| s.last_event_seq()).await?,
    };
    let stream = event_stream(st, start).take_until(live.stop.cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

struct Cursor {
    st: AppState,
    after: i64,
    pending: std::collections::VecDeque<StoredEvent>,
}

fn event_stream(st: AppState, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        st,
        after,
        pending: Default::default(),
    };
    stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                let ev = Event::default()
                    .id(e.seq.to_string())
                    .event(e.kind.clone())
                    .data(event_json(&e));
                return Some((Ok(ev), c));
            }
            let after = c.after;
            match c.st.run(move |s| s.events_after(after, EVENTS_BATCH)).await {
                Ok(batch) if !batch.is_empty() => {
                    c.after = batch.last().map_or(after, |e| e.seq);
                    c.pending.extend(batch);
                }
                // Nothing new, or the store failed for a moment: look again shortly.
                _ => tokio::time::sleep(EVENTS_POLL).await,
            }
        }
    })
}

/// Reads one AMD record file on the blocking pool; 404 when records are off or not kept.
async fn record_file(live: &super::Live, id: String, wav: bool) -> Result<Vec<u8>, ApiError> {
    let Some(records) = live.amd_records.clone() else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "AMD records are off on this node (set amd_record = true)",
        ));
    };
    let shown = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        if wav {
            records.wav(&id)
        } else {
            records.trace(&id)
        }
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "cannot read an AMD record");
        ApiError::internal()
    })?;
    found.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no AMD record for attempt {shown} (not answered, or pruned)"),
        )
    })
}

/// `GET /attempts/:id/amd`: the trace JSON.
pub async fn attempt_amd(
    axum::Extension(live): axum::Extension<super::Live>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let bytes = record_file(&live, id, false).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /attempts/:id/audio`: the recording as WAV.
pub async fn attempt_audio(
    axum::Extension(live): axum::Extension<super::Live>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let bytes = record_file(&live, id, true).await?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
}
