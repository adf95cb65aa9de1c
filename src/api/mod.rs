//! The HTTP control API (axum): routes, authentication, request validation and the JSON of
//! `spec/campaign-deep-dive.txt`.
//!
//! Owns the mapping between HTTP and the store: handlers are thin (parse, validate with the
//! pure `campaign` rules, one store call, shape the answer). It must not open sockets or read
//! the clock itself: `runtime::server` serves the router, and the time and store come in
//! [`AppState`]. Store calls run on tokio's blocking pool; `voicemailAudioUrl` is fetched and
//! prepared by the runtime's [`VoicemailLibrary`] in the state. Phone numbers and keys are never
//! logged whole.

pub mod auth;
pub mod compliance;
pub mod dashboard;
pub mod dto;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod live;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::runtime::fetch::VoicemailLibrary;
use crate::store::{Store, StoreError};
use error::ApiError;

/// Unix milliseconds now; the runtime passes the wall clock, tests a fixed or stepped one.
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub now_ms: NowMs,
    /// `trunk_max_cps` of the configuration: the most `mode.calls_per_second` may ask.
    pub max_cps: f64,
    /// `log_phone_numbers` of the configuration.
    pub log_phone_numbers: bool,
    /// Prepared `voicemailAudioUrl` prompts: filled at campaign start and resume, read by the
    /// dialer with `get(url)`.
    pub voicemail: Arc<VoicemailLibrary>,
    /// `max_abandon_rate` of the configuration (`GET /campaigns/:id` shows each campaign's).
    pub max_abandon_rate: f64,
}

impl AppState {
    /// Runs one store call on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(r) => r.map_err(ApiError::from),
            Err(e) => {
                tracing::error!(error = %e, "store task failed");
                Err(ApiError::internal())
            }
        }
    }

    pub fn now(&self) -> i64 {
        (self.now_ms)()
    }
}

/// Options of the live surfaces, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// `metrics_public`: `GET /metrics` without an API key.
    pub metrics_public: bool,
    /// Cancelled at shutdown: open `/events` streams end, so the graceful shutdown does not
    /// wait on them forever.
    pub stop: tokio_util::sync::CancellationToken,
    /// `amd_record`: the per-call AMD records (`None`: off).
    pub amd_records: Option<Arc<crate::runtime::amd::records::AmdRecordStore>>,
}

/// The whole API with the default [`Live`] options. Every route but `/openapi.json` needs an
/// API key.
pub fn router(state: AppState) -> Router {
    router_live(state, Live::default())
}

/// The whole API. Every route but `/openapi.json` (and `/metrics` with `metrics_public`)
/// needs an API key.
pub fn router_live(state: AppState, live: Live) -> Router {
    use handlers::*;
    let metrics = Router::new().route("/metrics", get(live::metrics_text));
    let open = Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/", get(dashboard::index))
        .route("/dashboard/app.js", get(dashboard::app_js))
        .route("/dashboard/app.css", get(dashboard::app_css));
    let (open, metrics_protected) = if live.metrics_public {
        (open.merge(metrics), Router::new())
    } else {
        (open, metrics)
    };
    let protected = Router::new()
        .merge(metrics_protected)
        .route("/events", get(live::events))
        .route("/attempts/{id}/amd", get(live::attempt_amd))
        .route("/attempts/{id}/audio", get(live::attempt_audio))
        .route("/campaigns", post(create_campaign).get(list_campaigns))
        .route("/campaigns/{id}", get(get_campaign))
        .route(
            "/campaigns/{id}/prospects",
            post(add_prospects).get(list_prospects),
        )
        .route("/campaigns/{id}/attempts", get(list_attempts))
        .route("/campaigns/{id}/messages", get(list_messages))
        .route("/campaigns/{id}/start", post(start))
        .route("/campaigns/{id}/pause", post(pause))
        .route("/campaigns/{id}/resume", post(resume))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/stats", get(stats))
        .route(
            "/audio/upload",
            post(upload_audio).layer(DefaultBodyLimit::max(extract::AUDIO_BODY_LIMIT)),
        )
        .route("/audio/{id}/file", get(audio_file))
        .route("/dids", post(add_dids).get(list_dids))
        .route("/nodes", get(list_nodes))
        .route("/suppression", post(add_suppression).get(list_suppression))
        .route("/suppression/{phone}", delete(remove_suppression))
        .route("/dnc", get(compliance::list_dnc))
        .route("/attempts/{id}/audit", get(compliance::attempt_audit))
        .route(
            "/campaigns/{id}/audit.csv",
            get(compliance::campaign_audit_csv),
        )
        .route(
            "/dnc/{list}",
            post(compliance::import_dnc).layer(DefaultBodyLimit::disable()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    open.merge(protected)
        .layer(axum::Extension(live))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
