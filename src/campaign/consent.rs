//! A prospect's consent record: where it was given (`source`), when (`timestamp`, RFC 3339,
//! not in the future) and to which disclosure text (`textId`). A campaign whose `mode` has
//! `requireConsent: true` contacts only prospects that have one (the others are cancelled with
//! reason `no_consent` when added). Pure validation: errors name the field.

use serde_json::{Map, Value};

use super::FieldError;

/// Longest `source` or `textId`.
pub const MAX_TEXT: usize = 200;
/// A consent timestamp may be this far ahead of the server clock (clock skew).
pub const MAX_SKEW_MS: i64 = 5 * 60_000;

/// Checks one consent object (`field` names it in errors, e.g. `consents["+17145551001"]`)
/// and returns it normalised: exactly `source`, `timestamp` (as sent) and `textId`.
pub fn validate(field: &str, v: &Value, now_ms: i64) -> Result<Value, FieldError> {
    let obj = v.as_object().ok_or_else(|| {
        FieldError::new(field, "must be an object with source, timestamp and textId")
    })?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "source" | "timestamp" | "textId"))
    {
        let shown: String = k.chars().take(64).collect();
        return Err(FieldError::new(
            format!("{field}.{shown}"),
            "unknown field; consent has only source, timestamp and textId",
        ));
    }
    let text = |key: &str| -> Result<String, FieldError> {
        match obj.get(key) {
            Some(Value::String(s))
                if !s.trim().is_empty()
                    && s.chars().count() <= MAX_TEXT
                    && !s.chars().any(char::is_control) =>
            {
                Ok(s.trim().to_string())
            }
            None => Err(FieldError::new(format!("{field}.{key}"), "is required")),
            Some(_) => Err(FieldError::new(
                format!("{field}.{key}"),
                format!("must be a non-empty string of at most {MAX_TEXT} characters"),
            )),
        }
    };
    let source = text("source")?;
    let text_id = text("textId")?;
    let ts_field = format!("{field}.timestamp");
    let ts = match obj.get("timestamp") {
        Some(Value::String(s)) => s,
        None => return Err(FieldError::new(ts_field, "is required")),
        Some(_) => {
            return Err(FieldError::new(
                ts_field,
                "must be an RFC 3339 time like \"2026-11-01T12:00:00Z\"",
            ));
        }
    };
    let at: jiff::Timestamp = ts.parse().map_err(|_| {
        FieldError::new(
            ts_field.clone(),
            "must be an RFC 3339 time like \"2026-11-01T12:00:00Z\"",
        )
    })?;
    if at.as_millisecond() > now_ms + MAX_SKEW_MS {
        return Err(FieldError::new(ts_field, "is in the future"));
    }
    let mut out = Map::new();
    out.insert("source".into(), Value::String(source));
    out.insert("timestamp".into(), Value::String(ts.clone()));
    out.insert("textId".into(), Value::String(text_id));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_000_000_000;

    #[test]
    fn valid_and_invalid() {
        let ok =
            json!({"source": "web_form", "timestamp": "2026-11-01T12:00:00Z", "textId": "tcpa-v3"});
        assert_eq!(validate("c", &ok, NOW).unwrap(), ok);
        for (bad, field) in [
            (json!("yes"), "c"),
            (
                json!({"timestamp": "2026-11-01T12:00:00Z", "textId": "t"}),
                "c.source",
            ),
            (
                json!({"source": "", "timestamp": "2026-11-01T12:00:00Z", "textId": "t"}),
                "c.source",
            ),
            (
                json!({"source": "s", "timestamp": "yesterday", "textId": "t"}),
                "c.timestamp",
            ),
            (
                json!({"source": "s", "timestamp": "2099-01-01T00:00:00Z", "textId": "t"}),
                "c.timestamp",
            ),
            (
                json!({"source": "s", "timestamp": "2026-11-01T12:00:00Z"}),
                "c.textId",
            ),
            (
                json!({"source": "s", "timestamp": "2026-11-01T12:00:00Z", "textId": "t", "ip": "x"}),
                "c.ip",
            ),
        ] {
            assert_eq!(validate("c", &bad, NOW).unwrap_err().field, field, "{bad}");
        }
    }
}
