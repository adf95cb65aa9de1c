//! Configuration: environment variables (prefix `TRUNX_`) over an optional TOML file over
//! embedded defaults, validated once into typed values.
//!
//! Owns the list of every setting ([`KEYS`]), which the README reference and `trunx config`
//! are drawn from. It reads no environment itself: callers pass a lookup function, so tests
//! never mutate the process environment. Secrets are masked whenever the config is shown.
//!
//! Files: this one holds [`Config`] and how a file and the environment are layered into it;
//! `keys` the settings table ([`KEYS`]); `values` the public value types and errors;
//! `validate` the check of every raw value into its typed field; `parse` the value parsers
//! and the TOML reader.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::egress::HostPattern;

mod keys;
mod parse;
mod validate;
mod values;

pub use keys::{KEYS, KeySpec};
use parse::parse_toml;
pub use parse::parse_ws_url;
pub use values::{AmdProviderKind, ConfigError, LogFormat, Secret, Source, mask_secret};

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_addr: SocketAddr,
    pub database_url: Secret,
    pub sip_addr: SocketAddr,
    pub rtp_ports: RangeInclusive<u16>,
    pub trunk_uri: Option<String>,
    pub trunk_tls_ca_file: Option<std::path::PathBuf>,
    pub trunk_srtp: crate::sip::sdes::SrtpPolicy,
    pub trunk_username: Option<String>,
    pub trunk_password: Option<Secret>,
    pub trunk_max_cps: f64,
    pub trunk_max_concurrent: u32,
    pub ring_timeout_s: u32,
    pub trunk_send_pai: bool,
    pub trunk_options_interval_s: u32,
    pub agent_url: Option<String>,
    /// Parsed `agent_headers` (values are secrets: never logged).
    pub agent_headers: Vec<(String, Secret)>,
    pub agent_sip_username: Option<String>,
    pub agent_sip_password: Option<Secret>,
    pub agent_reconnect_budget_s: u32,
    pub agent_fallback_audio: Option<PathBuf>,
    pub amd_provider: AmdProviderKind,
    /// `amd_external_url`: where the external AMD engine listens.
    pub amd_external_url: Option<String>,
    /// Parsed `amd_external_headers` (values are secrets: never logged).
    pub amd_external_headers: Vec<(String, Secret)>,
    /// `amd_external_timeout` in milliseconds.
    pub amd_external_timeout_ms: u32,
    pub ort_dylib_path: Option<PathBuf>,
    pub beep_model_path: Option<PathBuf>,
    pub rules_dir: Option<PathBuf>,
    pub max_abandon_rate: f64,
    pub caller_id: crate::campaign::callerid::CallerIdConfig,
    pub log_format: LogFormat,
    pub log_phone_numbers: bool,
    pub public_base_url: Option<Url>,
    pub voicemail_max_bytes: u64,
    pub fetch_connect_timeout_s: u32,
    pub fetch_timeout_s: u32,
    /// Empty: any host.
    pub fetch_allow_hosts: Vec<HostPattern>,
    pub fetch_allow_private: bool,
    /// `host:port` of the SMSC; `None`: no SMS sender.
    pub smpp_addr: Option<String>,
    pub smpp_system_id: Option<String>,
    pub smpp_password: Option<Secret>,
    pub smpp_system_type: Option<String>,
    pub smpp_window: u32,
    pub sms_stop_reply: Option<String>,
    pub sms_help_reply: Option<String>,
    /// Seconds a sent SMS waits for its receipt before it is failed as `no_receipt`.
    pub sms_receipt_timeout_s: u32,
    /// Per-DID SMS pacing (`sms_did_per_hour`, `sms_min_gap`, `sms_gap_jitter`).
    pub sms_pacing: crate::campaign::sms_pacing::SmsPacingConfig,
    /// `GET /metrics` without an API key.
    pub metrics_public: bool,
    /// The node's default webhook URL.
    pub webhook_url: Option<String>,
    /// The webhook signing key.
    pub webhook_secret: Option<Secret>,
    /// Keep per-call AMD records.
    pub amd_record: bool,
    pub amd_record_dir: PathBuf,
    pub amd_record_keep: u32,
    /// Each effective raw value and where it came from, for `trunx config`.
    effective: BTreeMap<&'static str, (Option<String>, Source)>,
}

impl Config {
    /// Builds the configuration from defaults, then the TOML file, then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Self::from_toml_str(&text, &path.display().to_string(), env)
            }
            None => Self::from_entries(Vec::new(), "", env),
        }
    }

    /// Same as [`Config::load`] for TOML text already in memory; `origin` names it in errors.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::from_entries(parse_toml(text, origin)?, origin, env)
    }

    fn from_entries(
        entries: Vec<(String, String)>,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut raw: BTreeMap<&'static str, (Option<String>, Source)> = KEYS
            .iter()
            .map(|k| (k.key, (k.default.map(str::to_string), Source::Default)))
            .collect();
        for (key, value) in entries {
            let spec =
                KEYS.iter()
                    .find(|k| k.key == key)
                    .ok_or_else(|| ConfigError::UnknownKey {
                        key: key.clone(),
                        path: origin.to_string(),
                        known: KEYS.iter().map(|k| k.key).collect::<Vec<_>>().join(", "),
                    })?;
            raw.insert(spec.key, (Some(value), Source::File(origin.to_string())));
        }
        for spec in KEYS {
            if let Some(value) = env(spec.env) {
                raw.insert(spec.key, (Some(value), Source::Env(spec.env)));
            }
        }
        Self::from_raw(raw)
    }

    /// The effective configuration as `key = "value"  # source` lines, secrets masked.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for spec in KEYS {
            let (value, source) = &self.effective[spec.key];
            let shown = match value {
                None => "(unset)".to_string(),
                Some(v) => format!("{v:?}"),
            };
            out.push_str(&format!("{} = {}  # {}\n", spec.key, shown, source));
        }
        out
    }
}

#[cfg(test)]
mod tests;
