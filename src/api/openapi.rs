//! The OpenAPI 3.1 document served at `/openapi.json`, built from [`ROUTES`], the table of
//! every route with its schemas and answers. A test checks that each entry is routed by
//! [`super::router`] (and so that the table and the router do not drift apart).

use serde_json::{Map, Value, json};

/// One operation of the API.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Needs `Authorization: Bearer <key>`.
    pub auth: bool,
    /// Request body: (media type, schema name).
    pub body: Option<(&'static str, &'static str)>,
    /// Query parameters by name.
    pub query: &'static [&'static str],
    /// Success status and its schema name (`""`: no JSON body).
    pub ok: (u16, &'static str),
    /// Error statuses this operation can answer.
    pub errors: &'static [u16],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<(&'static str, &'static str)>,
    query: &'static [&'static str],
    ok: (u16, &'static str),
    errors: &'static [u16],
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        auth: true,
        body,
        query,
        ok,
        errors,
    }
}

const JSON: &str = "application/json";
const LIFECYCLE_ERRORS: &[u16] = &[401, 404, 409];
/// Start and resume also prepare `voicemailAudioUrl` and `identificationAudioUrl` and answer
/// 422 when one cannot be.
const PREPARING_LIFECYCLE_ERRORS: &[u16] = &[401, 404, 409, 422];

/// Every route of the API.
pub const ROUTES: &[RouteDoc] = &[
    op(
        "post",
        "/campaigns",
        "Create a campaign",
        Some((JSON, "CampaignCreate")),
        &[],
        (201, "Campaign"),
        &[400, 401, 413, 415, 422],
    ),
    op(
        "get",
        "/campaigns",
        "List campaigns (paginated, filter by status)",
        None,
        &["limit", "cursor", "status"],
        (200, "CampaignPage"),
        &[401, 422],
    ),
    op(
        "get",
        "/campaigns/{id}",
        "Get a campaign",
        None,
        &[],
        (200, "Campaign"),
        &[401, 404],
    ),
    op(
        "post",
        "/campaigns/{id}/prospects",
        "Add 1 to 10,000 prospects (all or nothing; numbers already present are skipped)",
        Some((JSON, "ProspectsAdd")),
        &[],
        (200, "ProspectsAdded"),
        &[400, 401, 404, 409, 413, 415, 422],
    ),
    op(
        "get",
        "/campaigns/{id}/prospects",
        "List a campaign's prospects (paginated)",
        None,
        &["limit", "cursor"],
        (200, "ProspectPage"),
        &[401, 404, 422],
    ),
    op(
        "get",
        "/campaigns/{id}/attempts",
        "List a campaign's call attempts in the order they started (paginated)",
        None,
        &["limit", "cursor"],
        (200, "AttemptPage"),
        &[401, 404, 422],
    ),
    op(
        "post",
        "/campaigns/{id}/start",
        "Start (from created); mode.voicemailAudioUrl and mode.identificationAudioUrl are fetched and prepared first, 422 if one cannot be",
        None,
        &[],
        (200, "Lifecycle"),
        PREPARING_LIFECYCLE_ERRORS,
    ),
    op(
        "post",
        "/campaigns/{id}/pause",
        "Pause (from dialing)",
        None,
        &[],
        (200, "Lifecycle"),
        LIFECYCLE_ERRORS,
    ),
    op(
        "post",
        "/campaigns/{id}/resume",
        "Resume (from paused); mode.voicemailAudioUrl and mode.identificationAudioUrl are revalidated first, 422 if one cannot be prepared",
        None,
        &[],
        (200, "Lifecycle"),
        PREPARING_LIFECYCLE_ERRORS,
    ),
    op(
        "post",
        "/campaigns/{id}/cancel",
        "Cancel (from any non-terminal status); queued prospects are cancelled",
        None,
        &[],
        (200, "Lifecycle"),
        LIFECYCLE_ERRORS,
    ),
    op(
        "get",
        "/campaigns/{id}/stats",
        "Live counters of a campaign",
        None,
        &[],
        (200, "Stats"),
        &[401, 404],
    ),
    op(
        "post",
        "/audio/upload",
        "Upload an audio file (raw body or multipart `file`)",
        Some(("audio/*", "AudioFile")),
        &["name"],
        (201, "AudioAsset"),
        &[400, 401, 413, 415, 422],
    ),
    op(
        "get",
        "/audio/{id}/file",
        "Download an audio asset",
        None,
        &[],
        (200, ""),
        &[401, 404],
    ),
    op(
        "post",
        "/dids",
        "Register caller IDs (DIDs) the operator owns",
        Some((JSON, "DidsAdd")),
        &[],
        (201, "DidsAdded"),
        &[400, 401, 413, 415, 422],
    ),
    op(
        "get",
        "/dids",
        "List caller IDs with state and health",
        None,
        &["limit", "cursor", "state"],
        (200, "DidPage"),
        &[401, 422],
    ),
    op(
        "get",
        "/nodes",
        "The engine nodes sharing the store: calls in progress, calls per second, last heartbeat",
        None,
        &[],
        (200, "Nodes"),
        &[401],
    ),
    op(
        "get",
        "/campaigns/{id}/messages",
        "List a campaign's SMS messages in the order they were written (paginated)",
        None,
        &["limit", "cursor"],
        (200, "MessagePage"),
        &[401, 404, 422],
    ),
    op(
        "get",
        "/suppression",
        "List the suppression (do-not-contact) list in the order numbers were added (paginated)",
        None,
        &["limit", "cursor"],
        (200, "SuppressionPage"),
        &[401, 422],
    ),
    op(
        "post",
        "/suppression",
        "Suppress 1 to 10,000 numbers (all or nothing): never contacted again by any campaign or channel; their queued prospects are cancelled with reason suppressed",
        Some((JSON, "SuppressionAdd")),
        &[],
        (200, "SuppressionAdded"),
        &[400, 401, 413, 415, 422],
    ),
    op(
        "delete",
        "/suppression/{phone}",
        "Take a number off the suppression list (prospects already cancelled stay cancelled)",
        None,
        &[],
        (204, ""),
        &[401, 404, 422],
    ),
    op(
        "get",
        "/events",
        "Server-Sent Events of every attempt and campaign state change (`id:` = the event's seq; resume with `Last-Event-ID` or `after`)",
        None,
        &["after"],
        (200, "Event"),
        &[401, 422],
    ),
    op(
        "get",
        "/attempts/{id}/amd",
        "The AMD trace of an answered call (amd_record = true): per-100 ms level, speech flag and beep-model probability, the detector's events with causes",
        None,
        &[],
        (200, "AmdTrace"),
        &[401, 404],
    ),
    op(
        "get",
        "/attempts/{id}/audio",
        "The first 10 s of an answered call as WAV (8 kHz, 16-bit mono; amd_record = true)",
        None,
        &[],
        (200, ""),
        &[401, 404],
    ),
    op(
        "get",
        "/metrics",
        "Prometheus text format (no key needed with metrics_public)",
        None,
        &[],
        (200, ""),
        &[401],
    ),
    op(
        "get",
        "/attempts/{id}/audit",
        "What allowed an attempt when it was dialled: calling window and state rule version, DNC list versions checked, suppression check, caller-ID use against its caps, abandonment budget, consent",
        None,
        &[],
        (200, "AttemptAudit"),
        &[401, 404],
    ),
    op(
        "get",
        "/campaigns/{id}/audit.csv",
        "Every attempt of a campaign with its audit record, as CSV (text/csv, one header row)",
        None,
        &[],
        (200, ""),
        &[401, 404],
    ),
    op(
        "get",
        "/dnc",
        "The do-not-call list versions in force",
        None,
        &[],
        (200, "DncLists"),
        &[401],
    ),
    op(
        "post",
        "/dnc/{list}",
        "Import a do-not-call list as the list's next version: the body (streamed, at most 512 MiB, plain text or gzip) holds one number a line, E.164 or 10-digit NANP; blank and # lines are ignored, malformed lines counted and reported; queued prospects on the list are cancelled with reason dnc",
        Some(("text/plain", "DncFile")),
        &[],
        (201, "DncImported"),
        &[400, 401, 413, 422],
    ),
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        auth: false,
        body: None,
        query: &[],
        ok: (200, ""),
        errors: &[],
    },
];

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn query_param(name: &str) -> Value {
    let (schema, desc) = match name {
        "limit" => (
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
            "Page size",
        ),
        "cursor" => (json!({"type": "string"}), "nextCursor of the previous page"),
        "status" => (
            json!({"type": "string", "enum": ["created", "dialing", "paused", "completed", "cancelled", "failed"]}),
            "Only campaigns with this status",
        ),
        "state" => (
            json!({"type": "string", "enum": ["active", "cooling", "burned"]}),
            "Only caller IDs in this state",
        ),
        "name" => (json!({"type": "string"}), "Name of a raw-body upload"),
        "after" => (
            json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
            "Resume after this event seq (the Last-Event-ID header wins)",
        ),
        _ => (json!({"type": "string"}), ""),
    };
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": desc})
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut o = Map::new();
        o.insert("summary".into(), r.summary.into());
        let mut params: Vec<Value> = Vec::new();
        for name in path_params(r.path) {
            let schema = if name == "phone" {
                json!({"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$"})
            } else {
                json!({"type": "string"})
            };
            params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
        params.extend(r.query.iter().map(|q| query_param(q)));
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        if let Some((media, schema)) = r.body {
            let mut content = Map::new();
            content.insert(media.into(), json!({ "schema": reference(schema) }));
            if media != JSON {
                content.insert("multipart/form-data".into(), json!({"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "name": {"type": "string"}}, "required": ["file"]}}));
            }
            o.insert(
                "requestBody".into(),
                json!({"required": true, "content": content}),
            );
        }
        let mut responses = Map::new();
        let ok = if r.path == "/events" {
            json!({"description": "An event stream; each `data:` is one Event", "content": {"text/event-stream": {"schema": reference(r.ok.1)}}})
        } else if r.path == "/attempts/{id}/audio" {
            json!({"description": "WAV", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}})
        } else if r.path == "/metrics" {
            json!({"description": "Prometheus text exposition format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}})
        } else if r.ok.1.is_empty() {
            json!({"description": "OK"})
        } else {
            json!({"description": "OK", "content": {JSON: {"schema": reference(r.ok.1)}}})
        };
        responses.insert(r.ok.0.to_string(), ok);
        for code in r.errors {
            responses.insert(
                code.to_string(),
                json!({"description": error_description(*code), "content": {JSON: {"schema": reference("Error")}}}),
            );
        }
        o.insert("responses".into(), Value::Object(responses));
        if !r.auth {
            o.insert("security".into(), json!([]));
        }
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(r.method.into(), Value::Object(o));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "trunx control API", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": {
            "event": {"post": {
                "summary": "One POST per event to the campaign's webhookUrl (or the node's webhook_url), retried with backoff until a 2xx; at least once, deduplicate by X-Trunx-Event-Id",
                "parameters": [
                    {"name": "X-Trunx-Event-Id", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The event id (idempotency id)"},
                    {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string"}, "description": "Same as X-Trunx-Event-Id"},
                    {"name": "X-Trunx-Event-Type", "in": "header", "required": true, "schema": {"type": "string"}},
                    {"name": "X-Trunx-Signature", "in": "header", "required": false, "schema": {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]{64}$"}, "description": "With webhook_secret: t=UNIX,v1=hex(HMAC-SHA256(secret, \"UNIX.\" + raw body))"}
                ],
                "requestBody": {"required": true, "content": {JSON: {"schema": reference("Event")}}},
                "responses": {"2XX": {"description": "Delivered"}, "default": {"description": "Retried later"}}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

/// The `{name}` segments of a path.
pub fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn error_description(code: u16) -> &'static str {
    match code {
        400 => "Malformed JSON",
        401 => "Missing or invalid API key",
        404 => "Unknown id",
        409 => "Wrong campaign status (the current status is in error.status)",
        413 => "Body over the size limit",
        415 => "Wrong Content-Type",
        422 => "Invalid field (named in error.field)",
        _ => "Error",
    }
}

fn schemas() -> Value {
    let e164 = json!({"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$"});
    let ts = json!({"type": "string", "format": "date-time"});
    let count = json!({"type": "integer", "minimum": 0});
    let stats_keys = [
        "total",
        "queued",
        "dialing",
        "completed",
        "failed",
        "cancelled",
        "noAnswer",
        "busy",
        "voicemail",
        "humanConnected",
        "sending",
        "sent",
        "delivered",
        "progress",
    ];
    let mut stats_props = Map::new();
    for k in stats_keys {
        stats_props.insert(k.into(), count.clone());
    }
    let status = json!({"type": "string", "enum": ["created", "dialing", "paused", "completed", "cancelled", "failed"]});
    let channel = json!({"type": "string", "enum": ["voice", "sms"], "default": "voice"});
    let mode = json!({
        "type": "object",
        "description": "Flexible: known fields are validated by channel, unknown fields are kept.",
        "properties": {
            "ai": {"type": "boolean"},
            "voicemailAudioUrl": {"type": "string"},
            "identificationAudioUrl": {"type": "string", "description": "ai campaigns only: http(s) URL or /audio/<id>/file of the identification message (seller's name and a callback number) played to a person the agent has not taken within 2 s of their greeting, before hanging up (TSR 16 CFR 310.4(b)(4)(iii)); absent: the built-in clip. Prepared at start and resume, 422 if it cannot be"},
            "calls_per_second": {"type": "number", "exclusiveMinimum": 0},
            "max_retries": {"type": "integer", "minimum": 0, "maximum": 20},
            "retry_delay": {"type": "string", "examples": ["4h", "30m", "90s"]},
            "message": {"type": "string", "minLength": 1, "maxLength": 1600, "description": "Required for sms"},
            "amdProvider": {"type": "string", "enum": ["builtin", "external"], "description": "Voice: this campaign's AMD engine instead of the node's ACTIVE_AMD_PROVIDER. external streams each answered call to the external engine (trunx AMD stream protocol); the built-in engine decides when it is late (amd_external_timeout) or fails."},
            "amdExternalUrl": {"type": "string", "format": "uri", "maxLength": 2048, "description": "Voice, with amdProvider external: ws:// or wss:// URL of this campaign's external AMD engine (e.g. ws://amd.example:9310/amd/v1/stream) instead of amd_external_url."}
        },
        "additionalProperties": true
    });
    let strategy = json!({
        "type": "object",
        "properties": {
            "selection": {"type": "string", "enum": ["round_robin", "random", "health_score", "sticky"]},
            "local_presence": {"type": "boolean"}
        },
        "additionalProperties": true
    });
    let webhook_url = json!({"type": "string", "format": "uri", "maxLength": 2048, "description": "http(s) URL the campaign's events are POSTed to; absent: the node's webhook_url"});
    let page = |item: &str| json!({"type": "object", "required": ["data", "nextCursor"], "properties": {"data": {"type": "array", "items": reference(item)}, "nextCursor": {"type": ["string", "null"]}}});
    let mut schemas = json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}, "index": {"type": "integer"}, "value": {}, "status": status}}}},
        "CampaignCreate": {"type": "object", "properties": {"name": {"type": "string", "description": "Defaults to the campaign id"}, "channel": channel, "mode": mode, "callerIds": {"type": "array", "items": e164}, "callerIdStrategy": strategy, "schedule": {"type": "object"}, "webhookUrl": webhook_url}},
        "Campaign": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "channel": channel, "status": status, "mode": mode, "callerIds": {"type": "array", "items": e164}, "callerIdStrategy": strategy, "schedule": {"type": ["object", "null"]}, "webhookUrl": webhook_url, "createdAt": ts, "updatedAt": ts}},
        "Event": {"type": "object", "required": ["id", "seq", "type", "createdAt", "campaignId", "data"], "properties": {
            "id": {"type": "string", "description": "Idempotency id, evt_ + 24 hex digits"},
            "seq": {"type": "integer", "description": "Position in the event log (the SSE id)"},
            "type": {"type": "string", "enum": ["attempt.started", "attempt.ended", "campaign.status"]},
            "createdAt": ts,
            "campaignId": {"type": "string"},
            "data": {"oneOf": [reference("AttemptEventData"), reference("CampaignStatusEventData")]}
        }},
        "AttemptEventData": {"type": "object", "required": ["attemptId", "prospectId", "phone", "attempt", "prospectStatus"], "properties": {
            "attemptId": {"type": "string"}, "prospectId": {"type": "string"}, "phone": e164, "attempt": count,
            "callerId": e164, "prospectStatus": {"type": "string"},
            "outcome": {"type": ["string", "null"], "enum": ["noAnswer", "busy", "voicemail", "humanConnected", "failed", null]},
            "cause": {"type": ["string", "null"]}, "sipStatus": {"type": ["integer", "null"]},
            "amdResult": {"type": ["string", "null"], "enum": ["human", "machine", "machine_end_beep", "unknown", null]},
            "amdCause": {"type": ["string", "null"]}, "amdMs": {"type": ["integer", "null"]},
            "nextAttemptAt": {"type": ["string", "null"], "format": "date-time"}
        }, "description": "attempt.started has callerId; attempt.ended has the outcome fields"},
        "AmdTrace": {"type": "object", "required": ["attemptId", "sampleRate", "blockMs", "audioMs", "points", "events"], "properties": {
            "attemptId": {"type": "string"},
            "amdResult": {"type": ["string", "null"], "enum": ["human", "machine", "machine_end_beep", "unknown", null]},
            "amdMs": {"type": ["integer", "null"], "description": "The recorded decision time, ms after the answer"},
            "outcome": {"type": ["string", "null"]},
            "sampleRate": {"type": "integer", "const": 8000},
            "blockMs": {"type": "integer", "const": 100},
            "audioMs": {"type": "integer", "maximum": 10000},
            "points": {"type": "array", "items": {"type": "object", "properties": {
                "tMs": {"type": "integer"}, "levelDb": {"type": "number"}, "speech": {"type": "boolean"},
                "modelProbability": {"type": ["number", "null"]}
            }}},
            "events": {"type": "array", "items": {"type": "object", "properties": {
                "atMs": {"type": "integer"}, "kind": {"type": "string"},
                "result": {"type": ["string", "null"]}, "cause": {"type": "string"},
                "confidence": {"type": "number"},
                "beepStartMs": {"type": ["integer", "null"]}, "beepEndMs": {"type": ["integer", "null"]}
            }}}
        }},
        "CampaignStatusEventData": {"type": "object", "required": ["status", "previousStatus", "action"], "properties": {
            "status": status, "previousStatus": status,
            "action": {"type": "string", "enum": ["start", "pause", "resume", "cancel", "complete"]}
        }},
        "CampaignPage": page("Campaign"),
        "Lifecycle": {"type": "object", "required": ["id", "name", "status", "channel"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "status": status, "channel": channel}},
        "ProspectsAdd": {"type": "object", "required": ["phones"], "properties": {"phones": {"type": "array", "minItems": 1, "maxItems": 10000, "items": e164}, "consents": {"type": "object", "description": "Optional consent record per number of phones, keyed by the number", "additionalProperties": reference("Consent")}}},
        "ProspectsAdded": {"type": "object", "required": ["added"], "properties": {"added": count}},
        "Prospect": {"type": "object", "properties": {"id": {"type": "string"}, "phone": e164, "status": {"type": "string", "enum": ["queued", "dialing", "sending", "sent", "completed", "cancelled"]}, "attempts": count, "lastOutcome": {"type": ["string", "null"], "enum": ["noAnswer", "busy", "voicemail", "humanConnected", "failed", "delivered", null]}, "amdResult": {"type": ["string", "null"], "enum": ["human", "machine", "machine_end_beep", "unknown", null]}, "nextAttemptAt": {"type": ["string", "null"], "format": "date-time"}, "waitReason": {"type": ["string", "null"]}, "createdAt": ts, "updatedAt": ts}},
        "ProspectPage": page("Prospect"),
        "Attempt": {"type": "object", "properties": {"id": {"type": "string"}, "prospectId": {"type": "string"}, "phone": e164, "attempt": count, "callerId": e164, "startedAt": ts, "endedAt": {"type": ["string", "null"], "format": "date-time"}, "outcome": {"type": ["string", "null"], "enum": ["noAnswer", "busy", "voicemail", "humanConnected", "failed", "delivered", null]}, "cause": {"type": ["string", "null"]}, "sipStatus": {"type": ["integer", "null"]}, "answeredMs": {"type": ["integer", "null"]}, "amdResult": {"type": ["string", "null"], "enum": ["human", "machine", "machine_end_beep", "unknown", null]}, "amdCause": {"type": ["string", "null"]}, "amdMs": {"type": ["integer", "null"]}, "machineEnd": {"type": ["string", "null"], "enum": ["beep", "silence", null]}, "playbackStartMs": {"type": ["integer", "null"]}, "playedMs": {"type": ["integer", "null"]}, "talkMs": {"type": ["integer", "null"]}, "agentConnectedMs": {"type": ["integer", "null"]}, "agentTalkMs": {"type": ["integer", "null"]}, "agentReconnects": {"type": ["integer", "null"]}, "agentEnd": {"type": ["string", "null"]}}},
        "AttemptPage": page("Attempt"),
        "Stats": {"type": "object", "required": stats_keys, "properties": stats_props, "additionalProperties": false},
        "AudioFile": {"type": "string", "format": "binary"},
        "AudioAsset": {"type": "object", "required": ["id", "name", "url", "durationSeconds"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "url": {"type": "string"}, "durationSeconds": {"type": "number"}}},
        "DidsAdd": {"type": "object", "required": ["numbers"], "properties": {"numbers": {"type": "array", "minItems": 1, "maxItems": 1000, "items": e164}}},
        "Did": {"type": "object", "properties": {"id": {"type": "string"}, "number": e164, "state": {"type": "string", "enum": ["active", "cooling", "burned"]}, "healthScore": {"type": "number"}, "callsPlaced": count, "callsAnswered": count, "answerRate": {"type": ["number", "null"]}, "coolingUntil": {"type": ["string", "null"]}, "lastUsedAt": {"type": ["string", "null"]}, "createdAt": ts}},
        "DidsAdded": {"type": "object", "properties": {"added": count, "data": {"type": "array", "items": reference("Did")}}},
        "DidPage": page("Did"),
        "Node": {"type": "object", "required": ["id", "calls", "cps", "lastHeartbeat", "alive"], "properties": {"id": {"type": "string"}, "calls": count, "callsPlaced": count, "cps": {"type": "number"}, "startedAt": ts, "lastHeartbeat": ts, "alive": {"type": "boolean", "description": "A heartbeat within the last 5 s"}}},
        "Nodes": {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": reference("Node")}}},
        "Message": {"type": "object", "properties": {"id": {"type": "string"}, "prospectId": {"type": "string"}, "phone": e164, "did": e164, "parts": count, "messageIds": {"type": "array", "items": {"type": "string"}}, "status": {"type": "string", "enum": ["sending", "sent", "delivered", "failed", "requeued"]}, "errorCode": {"type": ["string", "null"]}, "submittedAt": {"type": ["string", "null"], "format": "date-time"}, "receiptAt": {"type": ["string", "null"], "format": "date-time"}, "createdAt": ts}},
        "MessagePage": page("Message"),
        "SuppressionAdd": {"type": "object", "required": ["phones"], "properties": {"phones": {"type": "array", "minItems": 1, "maxItems": 10000, "items": e164}, "reason": {"type": "string", "minLength": 1, "maxLength": 64, "default": "api"}}},
        "SuppressionAdded": {"type": "object", "required": ["added", "prospectsCancelled"], "properties": {"added": count, "prospectsCancelled": count}},
        "Suppression": {"type": "object", "properties": {"phone": e164, "reason": {"type": "string"}, "source": {"type": "string"}, "createdAt": ts}},
        "SuppressionPage": page("Suppression"),
    });
    if let (Value::Object(all), Value::Object(more)) =
        (&mut schemas, compliance_schemas(&ts, &count))
    {
        all.extend(more);
    }
    schemas
}

/// The schemas of the compliance routes (issue 20).
fn compliance_schemas(ts: &Value, count: &Value) -> Value {
    json!({
        "Consent": {"type": "object", "required": ["source", "timestamp", "textId"], "properties": {"source": {"type": "string", "maxLength": 200}, "timestamp": ts, "textId": {"type": "string", "maxLength": 200}}, "additionalProperties": false},
        "AttemptAudit": {"type": "object", "required": ["attempt", "audit"], "properties": {"attempt": reference("Attempt"), "audit": {"type": "object", "properties": {"checkedAtMs": {"type": "integer"}, "window": {"type": "object"}, "stateRule": {"type": ["object", "null"]}, "dnc": {"type": "array", "items": {"type": "object"}}, "suppression": {"type": "string"}, "callerId": {"type": "object"}, "abandonment": {"type": ["object", "null"]}, "consent": {"type": ["object", "null"]}, "abandoned": {"type": "boolean"}}}}},
        "DncFile": {"type": "string", "description": "One number a line (E.164 or 10-digit NANP), plain or gzip (detected by its magic bytes)"},
        "DncImported": {"type": "object", "required": ["list", "version", "importedAt", "count", "lines", "malformed"], "properties": {"list": {"type": "string"}, "version": count, "importedAt": ts, "count": count, "lines": count, "ignored": count, "malformed": count, "malformedLines": {"type": "array", "items": count}, "duplicates": count, "prospectsCancelled": count}},
        "DncList": {"type": "object", "properties": {"list": {"type": "string"}, "version": count, "importedAt": ts, "count": count, "source": {"type": "string"}}},
        "DncLists": {"type": "object", "properties": {"data": {"type": "array", "items": reference("DncList")}}},
    })
}
