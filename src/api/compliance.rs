//! Compliance routes: do-not-call list imports (a streamed upload, plain or gzip) and the
//! list versions in force; the audit record of an attempt and a campaign's audit as CSV.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::campaign::dnc::{self, DncParse, DncReadError};
use crate::store::{Attempt, DncImported, PageRequest};

/// Largest DNC upload, in bytes, counted as it streams (10 million numbers are about 120 MB
/// plain, 45 MB gzip).
pub const DNC_BODY_LIMIT: u64 = 512 * 1024 * 1024;

type ApiResult = Result<Response, ApiError>;

/// Reads body chunks handed over by the request task; an `Err` chunk aborts the read so a
/// cut or oversized upload is never imported as if it had ended there.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// `POST /dnc/{list}`: the body is the list, one number a line (E.164 or 10-digit NANP),
/// plain or gzip. Replaces the list as its next version.
pub async fn import_dnc(
    State(st): State<AppState>,
    Path(list): Path<String>,
    req: Request,
) -> ApiResult {
    dnc::validate_list_name(&list).map_err(|e| ApiError::invalid(e.field, e.message))?;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > DNC_BODY_LIMIT
    {
        return Err(too_large());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let reader = ChunkReader {
        rx,
        current: bytes::Bytes::new(),
    };
    let parse = tokio::task::spawn_blocking(move || {
        dnc::read(
            std::io::BufReader::with_capacity(1 << 16, reader),
            dnc::MAX_NUMBERS,
        )
    });
    let mut body = req.into_body().into_data_stream();
    let mut seen = 0u64;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("cannot read the body: {e}"),
                ));
                break;
            }
        };
        seen += chunk.len() as u64;
        if seen > DNC_BODY_LIMIT {
            failure = Some(too_large());
            break;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            break; // the parser stopped (too many numbers): its error is reported below
        }
    }
    if failure.is_some() {
        let _ = tx.send(Err("upload aborted".into())).await;
    }
    drop(tx);
    let parsed = parse.await.map_err(|_| ApiError::internal())?;
    if let Some(f) = failure {
        return Err(f);
    }
    let mut parsed: DncParse = parsed.map_err(|e| match e {
        DncReadError::TooMany { .. } => ApiError::invalid("body", e.to_string()),
        DncReadError::Io(io) => ApiError::invalid("body", format!("not a readable list: {io}")),
    })?;
    if parsed.numbers.is_empty() {
        return Err(ApiError::invalid(
            "body",
            format!(
                "no valid number in {} lines ({} malformed)",
                parsed.lines, parsed.malformed
            ),
        ));
    }
    let now = st.now();
    let numbers = std::mem::take(&mut parsed.numbers);
    let name = list.clone();
    let imported = st
        .run(move |s| s.import_dnc(&name, &numbers, "api", now))
        .await?;
    tracing::info!(
        list = %list,
        version = imported.list.version,
        count = imported.list.count,
        malformed = parsed.malformed,
        prospects_cancelled = imported.prospects_cancelled,
        "DNC list imported"
    );
    Ok((StatusCode::CREATED, Json(import_report(&imported, &parsed))).into_response())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("a DNC upload is at most {DNC_BODY_LIMIT} bytes"),
    )
}

/// The answer to an import (also printed by `trunx dnc import --json`).
pub fn import_report(imported: &DncImported, parsed: &DncParse) -> Value {
    json!({
        "list": imported.list.name,
        "version": imported.list.version,
        "importedAt": super::dto::rfc3339(imported.list.imported_at_ms),
        "count": imported.list.count,
        "lines": parsed.lines,
        "ignored": parsed.ignored,
        "malformed": parsed.malformed,
        "malformedLines": parsed.malformed_lines,
        "duplicates": parsed.accepted - imported.list.count,
        "prospectsCancelled": imported.prospects_cancelled,
    })
}

/// `GET /dnc`: the list versions in force.
pub async fn list_dnc(State(st): State<AppState>) -> ApiResult {
    let lists = st.run(|s| Ok(s.dnc_lists())).await?;
    let data: Vec<Value> = lists
        .iter()
        .map(|l| {
            json!({"list": l.name, "version": l.version,
                "importedAt": super::dto::rfc3339(l.imported_at_ms), "count": l.count,
                "source": l.source})
        })
        .collect();
    Ok(Json(json!({ "data": data })).into_response())
}

/// `GET /attempts/{id}/audit`: what allowed the attempt when it was dialled.
pub async fn attempt_audit(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let (a, audit) = st.run(move |s| s.attempt_audit(&id)).await?;
    Ok(Json(json!({
        "attempt": super::dto::attempt(&a),
        "audit": audit,
    }))
    .into_response())
}

/// Columns of the audit CSV, in order.
pub const AUDIT_CSV_COLUMNS: &[&str] = &[
    "attemptId",
    "prospectId",
    "phone",
    "attempt",
    "startedAt",
    "endedAt",
    "outcome",
    "abandoned",
    "window",
    "zones",
    "stateRule",
    "stateRuleVersion",
    "dncLists",
    "suppression",
    "callerId",
    "callerIdCallsLastHour",
    "callerIdCallsLast24h",
    "callerIdMaxPerHour",
    "callerIdMaxPerDay",
    "abandonRate30d",
    "abandonBudget",
    "consentSource",
    "consentTimestamp",
    "consentTextId",
];

/// One CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `-` or
/// `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
fn csv_field(out: &mut String, v: &str) {
    let v: std::borrow::Cow<str> = if v.starts_with(['=', '-', '@']) {
        format!("'{v}").into()
    } else {
        v.into()
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One attempt's audit as CSV cells, in [`AUDIT_CSV_COLUMNS`] order.
pub fn audit_row(a: &Attempt, audit: &Value) -> Vec<String> {
    let dnc = audit["dnc"]
        .as_array()
        .map(|lists| {
            lists
                .iter()
                .map(|l| {
                    format!(
                        "{}@v{} {}",
                        text(&l["name"]),
                        text(&l["version"]),
                        l["importedAtMs"]
                            .as_i64()
                            .map(super::dto::rfc3339)
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let zones = audit["window"]["zones"]
        .as_array()
        .map(|z| z.iter().map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    vec![
        a.id.clone(),
        a.prospect_id.clone(),
        a.phone.clone(),
        a.number.to_string(),
        super::dto::rfc3339(a.started_at_ms),
        a.ended_at_ms.map(super::dto::rfc3339).unwrap_or_default(),
        a.result
            .outcome
            .map(|o| o.as_str().to_string())
            .unwrap_or_default(),
        text(&audit["abandoned"]),
        text(&audit["window"]["window"]),
        zones,
        text(&audit["stateRule"]["state"]),
        text(&audit["stateRule"]["version"]),
        dnc,
        text(&audit["suppression"]),
        text(&audit["callerId"]["number"]),
        text(&audit["callerId"]["callsLastHour"]),
        text(&audit["callerId"]["callsLast24h"]),
        text(&audit["callerId"]["maxPerHour"]),
        text(&audit["callerId"]["maxPerDay"]),
        text(&audit["abandonment"]["rate30d"]),
        text(&audit["abandonment"]["state"]),
        text(&audit["consent"]["source"]),
        text(&audit["consent"]["timestamp"]),
        text(&audit["consent"]["textId"]),
    ]
}

/// `GET /campaigns/{id}/audit.csv`: every attempt of the campaign with its audit, in the
/// order they started (read page by page).
pub async fn campaign_audit_csv(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let csv = st
        .run(move |s| {
            let mut out = String::new();
            out.push_str(&AUDIT_CSV_COLUMNS.join(","));
            out.push_str("\r\n");
            let mut req = PageRequest {
                limit: 1000,
                after: None,
            };
            loop {
                let page = s.campaign_audit(&id, &req)?;
                for (a, audit) in &page.items {
                    for (i, cell) in audit_row(a, audit).iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        csv_field(&mut out, cell);
                    }
                    out.push_str("\r\n");
                }
                match page.next_cursor {
                    Some(c) => req.after = Some(c),
                    None => break,
                }
            }
            Ok(out)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}
