//! The value parsers of the configuration (addresses, ports, URLs, headers, texts,
//! durations) and the flat TOML reader. Each takes a string and returns a value or a reason;
//! they must not know which setting they parse or where it came from.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

use reqwest::Url;

use super::{ConfigError, Secret};

/// `Name: value; Name2: value2` into header pairs; names must be header tokens.
pub(super) fn parse_headers(v: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut out = Vec::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| "expected `Name: value` pairs separated by `;`".to_string())?;
        let name = name.trim();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err("a header name must be a token (letters, digits, `-`)".into());
        }
        let value = value.trim();
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err("a header value must not hold line breaks".into());
        }
        out.push((name.to_string(), Secret(value.to_string())));
    }
    Ok(out)
}

// The campaign layer validates `mode.amdExternalUrl` with the same rule; config builds on it.
pub use crate::campaign::mode::parse_ws_url;

pub(super) fn parse_socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080".to_string())
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub(super) fn parse_port_range(v: &str) -> Result<RangeInclusive<u16>, String> {
    let (lo, hi) = v
        .split_once('-')
        .ok_or_else(|| "expected LOW-HIGH, e.g. 10000-20000".to_string())?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| "LOW is not a port".to_string())?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| "HIGH is not a port".to_string())?;
    if lo < 1024 || !lo.is_multiple_of(2) {
        return Err("LOW must be an even port of at least 1024".into());
    }
    if hi <= lo {
        return Err("HIGH must be above LOW (each call needs an RTP and an RTCP port)".into());
    }
    Ok(lo..=hi)
}

pub(super) fn parse_database_url(v: &str) -> Result<String, String> {
    let sqlite = v.starts_with("sqlite://") || v.starts_with("sqlite:");
    if sqlite || v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(v.to_string())
    } else {
        Err("expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB".into())
    }
}

pub(super) fn parse_public_base_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http(s) URL with a host, e.g. https://api.trunx.io".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no credentials, query or fragment".into());
    }
    Ok(url)
}

pub(super) fn parse_sip_uri(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("sip:")
        .or_else(|| v.strip_prefix("sips:"))
        .ok_or_else(|| "expected a sip: URI, e.g. sip:trunk.example.net:5060".to_string())?;
    let host = rest.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("the URI has no host".into());
    }
    Ok(v.to_string())
}

/// `host:port` with a port number (the host may be a name).
pub(super) fn parse_host_port(v: &str) -> Result<String, String> {
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| "expected HOST:PORT, e.g. smsc.example.net:2775".to_string())?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("the host is empty or has spaces".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(v.to_string()),
        _ => Err("the port is not a number from 1 to 65535".into()),
    }
}

/// Printable ASCII of at most `max` characters (SMPP C-octet strings).
pub(super) fn ascii_up_to(v: &str, max: usize) -> Result<String, String> {
    if v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("must be at most {max} printable ASCII characters"));
    }
    Ok(v.to_string())
}

/// A reply text: what one SMS campaign message may be (1 to 1600 characters).
pub(super) fn parse_sms_text(v: &str) -> Result<String, String> {
    let n = v.chars().count();
    if n > crate::campaign::mode::SMS_MAX_CHARS {
        return Err(format!(
            "must be at most {} characters (got {n})",
            crate::campaign::mode::SMS_MAX_CHARS
        ));
    }
    Ok(v.to_string())
}

/// Whole seconds from 0 to 86400, as milliseconds.
pub(super) fn parse_seconds_to_ms(v: &str) -> Result<i64, String> {
    match v.parse::<i64>() {
        Ok(n) if (0..=86_400).contains(&n) => Ok(n * 1000),
        _ => Err("must be a whole number of seconds from 0 to 86400".into()),
    }
}

/// Reads a flat TOML table into strings, so file and environment share one parser.
pub(super) fn parse_toml(text: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: origin.to_string(),
        reason,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(file_error(format!(
                        "key {key:?} must be a string, number or boolean, not {}",
                        other.type_str()
                    )));
                }
            };
            Ok((key, value))
        })
        .collect()
}
