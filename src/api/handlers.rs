//! Route handlers: parse and validate, one store call, shape the answer.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::dto;
use super::error::ApiError;
use super::extract::{JsonBody, ListQuery, body_bytes, content_type};
use crate::audio::prompt::decode_bytes;
use crate::campaign::status::apply;
use crate::campaign::{
    Action, CampaignStatus, Channel, is_e164, redact, validate_caller_id_strategy, validate_mode,
};
use crate::egress::redact_url;
use crate::store::{DidState, NewCampaign};

/// Most prospects per request.
pub const MAX_PHONES: usize = 10_000;
/// Most caller IDs on a campaign or in one `POST /dids`.
pub const MAX_CALLER_IDS: usize = 1_000;
/// Longest campaign name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `reason` of a suppression.
pub const MAX_REASON_CHARS: usize = 64;
/// `source` of numbers suppressed through the API.
pub const API_SOURCE: &str = "api";
/// Longest audio asset, seconds.
pub const MAX_AUDIO_SECONDS: u32 = 600;

type ApiResult = Result<Response, ApiError>;

fn object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))
}

/// An array of E.164 numbers named `field`, `min..=max` long; the first bad one is named by
/// index and value.
fn e164_list(
    obj: &Map<String, Value>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<Vec<String>, ApiError> {
    let Some(v) = obj.get(field) else {
        if min == 0 {
            return Ok(Vec::new());
        }
        return Err(ApiError::invalid(field, "is required"));
    };
    let arr = v
        .as_array()
        .ok_or_else(|| ApiError::invalid(field, "must be an array of E.164 numbers"))?;
    if arr.len() < min || arr.len() > max {
        return Err(ApiError::invalid(
            field,
            format!("must hold {min} to {max} numbers (got {})", arr.len()),
        ));
    }
    let mut out = Vec::with_capacity(arr.len());
    for (i, item) in arr.iter().enumerate() {
        match item.as_str() {
            Some(s) if is_e164(s) => out.push(s.to_string()),
            _ => {
                return Err(ApiError::invalid(
                    format!("{field}[{i}]"),
                    format!("{item} is not an E.164 number like \"+17145551001\""),
                )
                .with("index", i)
                .with("value", item.clone()));
            }
        }
    }
    Ok(out)
}

pub async fn create_campaign(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let obj = object(&body)?;
    if obj.contains_key("caller_id_strategy") {
        return Err(ApiError::invalid(
            "caller_id_strategy",
            "the field is spelled callerIdStrategy (camelCase)",
        ));
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.chars().count() > MAX_NAME_CHARS {
                return Err(ApiError::invalid(
                    "name",
                    format!("must be at most {MAX_NAME_CHARS} characters"),
                ));
            }
            Some(s.trim().to_string())
        }
        None | Some(Value::Null) => None,
        Some(_) => return Err(ApiError::invalid("name", "must be a non-empty string")),
    };
    let channel = match obj.get("channel") {
        None | Some(Value::Null) => Channel::Voice,
        Some(v) => v
            .as_str()
            .and_then(Channel::parse)
            .ok_or_else(|| ApiError::invalid("channel", "must be \"voice\" or \"sms\""))?,
    };
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => json!({}),
        Some(v) => v.clone(),
    };
    let refs = validate_mode(channel, &mode, st.max_cps)?;
    let caller_ids = e164_list(obj, "callerIds", 0, MAX_CALLER_IDS)?;
    let caller_id_strategy = match obj.get("callerIdStrategy") {
        None | Some(Value::Null) => json!({}),
        Some(v) => v.clone(),
    };
    validate_caller_id_strategy(&caller_id_strategy)?;
    let schedule = match obj.get("schedule") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => {
            crate::campaign::window::validate_schedule(channel, v)?;
            Some(v.clone())
        }
        Some(_) => return Err(ApiError::invalid("schedule", "must be a JSON object")),
    };
    let webhook_url = match obj.get("webhookUrl") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            crate::campaign::webhook::check_webhook_url(u)
                .map_err(|m| ApiError::invalid("webhookUrl", m))?;
            Some(u.clone())
        }
        Some(_) => return Err(ApiError::invalid("webhookUrl", "must be a URL string")),
    };
    for (field, asset) in [
        ("mode.voicemailAudioUrl", refs.audio_asset),
        ("mode.identificationAudioUrl", refs.identification_asset),
    ] {
        let Some(asset) = asset else { continue };
        let found = st.run(move |s| s.get_audio(&asset)).await;
        if let Err(e) = found {
            if e.status == StatusCode::NOT_FOUND {
                return Err(ApiError::invalid(
                    field,
                    "no audio asset with this id; upload it with POST /audio/upload",
                ));
            }
            return Err(e);
        }
    }
    let new = NewCampaign {
        name,
        channel,
        mode,
        caller_ids,
        caller_id_strategy,
        schedule,
        webhook_url,
    };
    let now = st.now();
    let c = st.run(move |s| s.create_campaign(new, now)).await?;
    tracing::info!(campaign = %c.id, channel = %c.channel, "campaign created");
    Ok((StatusCode::CREATED, Json(dto::campaign(&c))).into_response())
}

pub async fn list_campaigns(State(st): State<AppState>, q: ListQuery) -> ApiResult {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(CampaignStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "must be one of created, dialing, paused, completed, cancelled, failed",
            )
        })?),
    };
    let page = q.page;
    let p = st.run(move |s| s.list_campaigns(status, &page)).await?;
    Ok(Json(dto::page(&p, dto::campaign)).into_response())
}

pub async fn get_campaign(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let since = st.now() - crate::campaign::abandon::PERIOD_MS;
    let (c, answers) = st
        .run(move |s| Ok((s.get_campaign(&id)?, s.live_answers_since(&id, since)?)))
        .await?;
    // The contract's keys, then the campaign's abandonment over the last 30 days.
    let mut v = serde_json::to_value(dto::campaign(&c)).map_err(|_| ApiError::internal())?;
    let answered = answers.len() as u64;
    let abandoned = answers.iter().filter(|(_, a)| *a).count() as u64;
    if let Value::Object(m) = &mut v {
        m.insert(
            "abandonment".into(),
            json!({
                "liveAnswers30d": answered,
                "abandoned30d": abandoned,
                "rate30d": if answered == 0 { 0.0 } else { abandoned as f64 / answered as f64 },
                "maxRate": crate::campaign::abandon::max_rate_for(&c.mode, st.max_abandon_rate),
            }),
        );
    }
    Ok(Json(v).into_response())
}

pub async fn add_prospects(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let obj = object(&body)?;
    let phones = e164_list(obj, "phones", 1, MAX_PHONES)?;
    let now = st.now();
    let consents = consents_of(obj, &phones, now)?;
    let n = phones.len();
    let first = phones.first().map(|p| redact(p, st.log_phone_numbers));
    let campaign = id.clone();
    let added = st
        .run(move |s| s.add_prospects_consented(&campaign, &phones, &consents, now))
        .await?;
    tracing::info!(campaign = %id, sent = n, added, first = ?first, "prospects added");
    Ok(Json(json!({ "added": added })).into_response())
}

/// The optional `consents` object of a prospects request: a consent record per number of
/// `phones`, keyed by the number.
fn consents_of(
    obj: &Map<String, Value>,
    phones: &[String],
    now: i64,
) -> Result<std::collections::BTreeMap<String, Value>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(v) = obj.get("consents") else {
        return Ok(out);
    };
    let map = v.as_object().ok_or_else(|| {
        ApiError::invalid(
            "consents",
            "must be an object of consent records keyed by phone number",
        )
    })?;
    for (phone, c) in map {
        let shown: String = phone.chars().take(20).collect();
        let field = format!("consents[\"{shown}\"]");
        if !phones.iter().any(|p| p == phone) {
            return Err(ApiError::invalid(field, "is not one of phones"));
        }
        let c = crate::campaign::consent::validate(&field, c, now)
            .map_err(|e| ApiError::invalid(e.field, e.message))?;
        out.insert(phone.clone(), c);
    }
    Ok(out)
}

pub async fn list_prospects(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: ListQuery,
) -> ApiResult {
    let page = q.page;
    let p = st.run(move |s| s.list_prospects(&id, &page)).await?;
    Ok(Json(dto::page(&p, dto::prospect)).into_response())
}

pub async fn list_attempts(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: ListQuery,
) -> ApiResult {
    let page = q.page;
    let p = st.run(move |s| s.list_attempts(&id, &page)).await?;
    Ok(Json(dto::page(&p, dto::attempt)).into_response())
}

/// Prepares the campaign's `voicemailAudioUrl` and `identificationAudioUrl` before a start or
/// resume, so a URL that cannot be fetched or decoded fails here (422 naming the field, the
/// URL and the reason, the status unchanged) and never mid-campaign. A disallowed transition
/// is left to the store's 409.
async fn prepare_voicemail(st: &AppState, id: &str, action: Action) -> Result<(), ApiError> {
    let campaign_id = id.to_string();
    let c = st.run(move |s| s.get_campaign(&campaign_id)).await?;
    if c.channel != Channel::Voice || apply(c.status, action).is_err() {
        return Ok(());
    }
    for key in ["voicemailAudioUrl", "identificationAudioUrl"] {
        let Some(url) = c.mode.get(key).and_then(Value::as_str) else {
            continue;
        };
        match st.voicemail.prepare(url).await {
            Ok(prompt) => {
                tracing::info!(
                    campaign = %c.id,
                    field = key,
                    url = %redact_url(url),
                    duration_ms = prompt.duration_ms(),
                    gain_db = prompt.gain_db,
                    "campaign audio prepared"
                );
            }
            Err(e) => {
                tracing::warn!(campaign = %c.id, field = key, url = %e.url, reason = %e.reason, "campaign audio cannot be prepared");
                return Err(ApiError::invalid(format!("mode.{key}"), e.to_string())
                    .with("url", e.url.clone()));
            }
        }
    }
    Ok(())
}

async fn lifecycle(st: AppState, id: String, action: Action) -> ApiResult {
    if matches!(action, Action::Start | Action::Resume) {
        prepare_voicemail(&st, &id, action).await?;
    }
    let now = st.now();
    let c = st
        .run(move |s| s.transition_campaign(&id, action, now))
        .await?;
    tracing::info!(campaign = %c.id, action = action.as_str(), status = %c.status, "campaign lifecycle");
    Ok(Json(dto::lifecycle(&c)).into_response())
}

pub async fn start(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    lifecycle(st, id, Action::Start).await
}

pub async fn pause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    lifecycle(st, id, Action::Pause).await
}

pub async fn resume(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    lifecycle(st, id, Action::Resume).await
}

pub async fn cancel(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    lifecycle(st, id, Action::Cancel).await
}

pub async fn stats(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let c = st.run(move |s| s.stats(&id)).await?;
    Ok(Json(dto::Stats::from(&c)).into_response())
}

/// The public URL of an asset: from the Host (and X-Forwarded-Proto) of the upload request,
/// else the path alone.
fn asset_url(headers: &HeaderMap, id: &str) -> String {
    let path = format!("/audio/{id}/file");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']));
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    match host {
        Some(h) => format!("{proto}://{h}{path}"),
        None => path,
    }
}

fn extension_of(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 5).then(|| ext.to_ascii_lowercase())
}

/// `POST /audio/upload`: the file as the raw body (`?name=` names it) or as the `file` part of
/// a multipart form.
pub async fn upload_audio(
    State(st): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    req: Request,
) -> ApiResult {
    let headers = req.headers().clone();
    let ct = content_type(&headers).unwrap_or_default();
    let (name, ctype, bytes) = if ct == "multipart/form-data" {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(e.status(), "payload_too_large", e.body_text())
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
            }
        })?;
        let mut found = None;
        let mut name_field = None;
        loop {
            let field = mp.next_field().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(e.status(), "payload_too_large", e.body_text())
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
                }
            })?;
            let Some(field) = field else { break };
            match field.name() {
                Some("file") => {
                    let fname = field.file_name().map(str::to_string);
                    let fct = field
                        .content_type()
                        .unwrap_or("application/octet-stream")
                        .to_string();
                    let data = field.bytes().await.map_err(|e| {
                        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            ApiError::new(e.status(), "payload_too_large", e.body_text())
                        } else {
                            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
                        }
                    })?;
                    found = Some((fname, fct, data));
                }
                Some("name") => {
                    name_field = Some(field.text().await.map_err(|e| {
                        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
                    })?);
                }
                _ => {}
            }
        }
        let (fname, fct, data) =
            found.ok_or_else(|| ApiError::invalid("file", "the form has no `file` part"))?;
        let name = name_field.or(fname).unwrap_or_else(|| "upload".to_string());
        (name, fct, data)
    } else if ct.starts_with("audio/") || ct == "application/octet-stream" {
        let data = body_bytes(req).await?;
        let name = q
            .get("name")
            .cloned()
            .unwrap_or_else(|| "upload".to_string());
        (name, ct, data)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as audio/* or application/octet-stream, or as multipart/form-data with a `file` part",
        ));
    };
    if bytes.is_empty() {
        return Err(ApiError::invalid("file", "is empty"));
    }
    let ext = extension_of(&name);
    let what = name.clone();
    let data = bytes.to_vec();
    let decoded = tokio::task::spawn_blocking(move || {
        decode_bytes(&what, data, ext.as_deref(), MAX_AUDIO_SECONDS)
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| ApiError::invalid("file", e.to_string()))?;
    let frames = decoded.interleaved.len() / decoded.channels.max(1);
    let duration = (frames as f64 / f64::from(decoded.rate.max(1)) * 1000.0).round() / 1000.0;
    let now = st.now();
    let asset = st
        .run(move |s| s.create_audio(&name, &ctype, &bytes, duration, now))
        .await?;
    let url = asset_url(&headers, &asset.id);
    tracing::info!(asset = %asset.id, bytes = asset.size_bytes, duration, "audio uploaded");
    Ok((StatusCode::CREATED, Json(dto::audio(&asset, &url))).into_response())
}

pub async fn audio_file(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let (asset, data) = st.run(move |s| s.get_audio_file(&id)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type.clone()),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
        ],
        data,
    )
        .into_response())
}

pub async fn add_dids(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let obj = object(&body)?;
    let numbers = e164_list(obj, "numbers", 1, MAX_CALLER_IDS)?;
    let now = st.now();
    let added = st.run(move |s| s.add_dids(&numbers, now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(dto::DidsAddedDto {
            added: added.len(),
            data: added.iter().map(dto::did).collect(),
        }),
    )
        .into_response())
}

pub async fn list_dids(State(st): State<AppState>, q: ListQuery) -> ApiResult {
    let state =
        match q.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(DidState::parse(s).ok_or_else(|| {
                ApiError::invalid("state", "must be one of active, cooling, burned")
            })?),
        };
    let page = q.page;
    let p = st.run(move |s| s.list_dids(state, &page)).await?;
    Ok(Json(dto::page(&p, dto::did)).into_response())
}

/// `GET /nodes`: every node sharing the store, as its last heartbeat described it.
pub async fn list_nodes(State(st): State<AppState>) -> ApiResult {
    let now = (st.now_ms)();
    let nodes = st.run(|s| s.list_nodes()).await?;
    let data: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "id": n.id,
                "calls": n.calls,
                "callsPlaced": n.calls_placed,
                "cps": (n.cps * 100.0).round() / 100.0,
                "startedAt": dto::rfc3339(n.started_at_ms),
                "lastHeartbeat": dto::rfc3339(n.heartbeat_at_ms),
                "alive": now - n.heartbeat_at_ms <= 5_000,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "data": data })).into_response())
}

pub async fn list_messages(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: ListQuery,
) -> ApiResult {
    let page = q.page;
    let p = st.run(move |s| s.list_messages(&id, &page)).await?;
    Ok(Json(dto::page(&p, dto::message)).into_response())
}

pub async fn list_suppression(State(st): State<AppState>, q: ListQuery) -> ApiResult {
    let page = q.page;
    let p = st.run(move |s| s.list_suppressed(&page)).await?;
    Ok(Json(dto::page(&p, dto::suppression)).into_response())
}

/// `POST /suppression`: `{"phones": [...], "reason": "..."}`, all or nothing. Queued prospects
/// with these numbers are cancelled in every campaign, in the same transaction.
pub async fn add_suppression(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let obj = object(&body)?;
    let phones = e164_list(obj, "phones", 1, MAX_PHONES)?;
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => API_SOURCE.to_string(),
        Some(Value::String(r))
            if !r.trim().is_empty()
                && r.chars().count() <= MAX_REASON_CHARS
                && !r.chars().any(char::is_control) =>
        {
            r.trim().to_string()
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "reason",
                format!("must be a non-empty string of at most {MAX_REASON_CHARS} characters"),
            ));
        }
    };
    let now = st.now();
    let n = phones.len();
    let out = st
        .run(move |s| s.suppress(&phones, &reason, API_SOURCE, now))
        .await?;
    tracing::info!(
        sent = n,
        added = out.added,
        prospects_cancelled = out.prospects_cancelled,
        "numbers suppressed"
    );
    Ok(Json(json!({
        "added": out.added,
        "prospectsCancelled": out.prospects_cancelled,
    }))
    .into_response())
}

/// `DELETE /suppression/{phone}`: 204, or 404 when the number is not on the list.
pub async fn remove_suppression(
    State(st): State<AppState>,
    Path(phone): Path<String>,
) -> ApiResult {
    if !is_e164(&phone) {
        return Err(ApiError::invalid(
            "phone",
            "is not an E.164 number like \"+17145551001\" (write + as %2B if your client encodes it)",
        ));
    }
    let shown = redact(&phone, st.log_phone_numbers);
    let number = phone.clone();
    if !st.run(move |s| s.unsuppress(&number)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the number is not on the suppression list",
        ));
    }
    tracing::info!(phone = %shown, "number taken off the suppression list");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn openapi_json() -> Response {
    Json(super::openapi::document()).into_response()
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
