//! Configuration: environment variables (prefix `TRUNX_`) over an optional TOML file over
//! embedded defaults, validated once into typed values.
//!
//! Owns the list of every setting ([`KEYS`]), which the README reference and `trunx config`
//! are drawn from. It reads no environment itself: callers pass a lookup function, so tests
//! never mutate the process environment. Secrets are masked whenever the config is shown.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::egress::HostPattern;

/// One setting: its TOML key, its environment variable, default and meaning.
#[derive(Debug)]
pub struct KeySpec {
    pub key: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub doc: &'static str,
}

const fn spec(
    key: &'static str,
    env: &'static str,
    default: Option<&'static str>,
    secret: bool,
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        env,
        default,
        secret,
        doc,
    }
}

/// Every setting trunx reads.
pub const KEYS: &[KeySpec] = &[
    spec(
        "api_addr",
        "TRUNX_API_ADDR",
        Some("127.0.0.1:8080"),
        false,
        "Address the HTTP control API listens on.",
    ),
    spec(
        "database_url",
        "TRUNX_DATABASE_URL",
        Some("sqlite://trunx.db"),
        true,
        "Store: `sqlite://PATH` (file created if missing, relative to the working directory); or `postgres://USER:PASSWORD@HOST:PORT/DB` for several nodes sharing one database.",
    ),
    spec(
        "sip_addr",
        "TRUNX_SIP_ADDR",
        Some("0.0.0.0:5062"),
        false,
        "Local UDP address of the SIP user agent.",
    ),
    spec(
        "rtp_ports",
        "TRUNX_RTP_PORTS",
        Some("10000-20000"),
        false,
        "UDP port range for RTP media, `LOW-HIGH`, even LOW; each call uses an even port and the next odd one for RTCP.",
    ),
    spec(
        "trunk_uri",
        "TRUNX_TRUNK_URI",
        None,
        false,
        "SIP URI of the carrier trunk calls are sent to, e.g. `sip:trunk.example.net:5060`.",
    ),
    spec(
        "trunk_send_pai",
        "TRUNX_TRUNK_SEND_PAI",
        Some("false"),
        false,
        "`true` adds a P-Asserted-Identity header carrying the caller ID to every INVITE (trunks that authorise caller ID by PAI).",
    ),
    spec(
        "trunk_options_interval",
        "TRUNX_TRUNK_OPTIONS_INTERVAL",
        Some("30"),
        false,
        "Seconds between OPTIONS keepalives to the trunk (0 turns them off); three unanswered in a row mark the trunk down.",
    ),
    spec(
        "trunk_username",
        "TRUNX_TRUNK_USERNAME",
        None,
        false,
        "Digest username for the trunk (used on 401/407 challenges).",
    ),
    spec(
        "trunk_password",
        "TRUNX_TRUNK_PASSWORD",
        None,
        true,
        "Digest password for the trunk. Never logged or printed.",
    ),
    spec(
        "trunk_max_cps",
        "TRUNX_TRUNK_MAX_CPS",
        Some("10"),
        false,
        "Most new calls per second the trunk accepts from this node; campaigns may not ask for more.",
    ),
    spec(
        "trunk_max_concurrent",
        "TRUNX_TRUNK_MAX_CONCURRENT",
        Some("100"),
        false,
        "Most simultaneous calls on the trunk from this node.",
    ),
    spec(
        "ring_timeout",
        "TRUNX_RING_TIMEOUT",
        Some("30"),
        false,
        "Seconds a campaign call may ring before it is `noAnswer` (15 to 120; rules ask for at least 15 s / 4 rings).",
    ),
    spec(
        "agent_url",
        "TRUNX_AGENT_URL",
        None,
        false,
        "WebSocket URL (`ws://` or `wss://`) of the AI voice agent humans are bridged to.",
    ),
    spec(
        "agent_headers",
        "TRUNX_AGENT_HEADERS",
        None,
        true,
        "Extra headers sent when connecting to the agent, `Name: value` pairs separated by `;` (e.g. `Authorization: Bearer ...`). Never logged or printed.",
    ),
    spec(
        "agent_sip_username",
        "TRUNX_AGENT_SIP_USERNAME",
        None,
        false,
        "Digest user name for a SIP agent (`mode.agentSipUri`, `--agent-sip-uri`) that challenges the call.",
    ),
    spec(
        "agent_sip_password",
        "TRUNX_AGENT_SIP_PASSWORD",
        None,
        true,
        "Digest password for the SIP agent. Never logged or printed.",
    ),
    spec(
        "agent_reconnect_budget",
        "TRUNX_AGENT_RECONNECT_BUDGET",
        Some("10"),
        false,
        "Seconds (0 to 60) a lost or refused agent socket is retried while the person waits (1 s, 2 s, 4 s, 4 s ... apart); then the fallback message plays, or the call hangs up.",
    ),
    spec(
        "agent_fallback_audio",
        "TRUNX_AGENT_FALLBACK_AUDIO",
        None,
        false,
        "Audio file (WAV, MP3, FLAC or Ogg) played to a person the agent cannot take, before hanging up. Unset: hang up at once.",
    ),
    spec(
        "amd_provider",
        "ACTIVE_AMD_PROVIDER",
        Some("builtin"),
        false,
        "Answering-machine detector: `builtin` (in-process engine) or `external` (each call's audio streamed to `amd_external_url`, the built-in engine running alongside as the fallback). A campaign's `mode.amdProvider` overrides it.",
    ),
    spec(
        "amd_external_url",
        "TRUNX_AMD_EXTERNAL_URL",
        None,
        false,
        "WebSocket URL (`ws://` or `wss://`) of the external AMD engine, speaking the trunx AMD stream protocol (README, \"AMD as a service\"), e.g. another node's `trunx amd serve` at `ws://amd.example:9310/amd/v1/stream`. Required when `amd_provider` is `external`; `mode.amdExternalUrl` overrides it per campaign.",
    ),
    spec(
        "amd_external_headers",
        "TRUNX_AMD_EXTERNAL_HEADERS",
        None,
        true,
        "Extra headers sent when connecting to the external AMD engine, `Name: value` pairs separated by `;` (e.g. `Authorization: Bearer ...`). Never logged or printed.",
    ),
    spec(
        "amd_external_timeout",
        "TRUNX_AMD_EXTERNAL_TIMEOUT",
        Some("4"),
        false,
        "Seconds (0.1 to 60, decimals allowed) the external AMD engine has for its decision, counted from the first answered frame; past it, or at once if the engine fails, the built-in engine's result is used and `trunx_amd_external_fallbacks_total` counts it.",
    ),
    spec(
        "ort_dylib_path",
        "ORT_DYLIB_PATH",
        None,
        false,
        "Path of the ONNX Runtime shared library. Unset: `.ort/libonnxruntime.so.1.31.1` in the working directory, then beside the executable (`make ort` installs it).",
    ),
    spec(
        "caller_id_policy",
        "TRUNX_CALLER_ID_POLICY",
        None,
        false,
        "TOML file of caller-ID figures (any of: `health_window`, weights `weight_*`, `healthy_min`, `pulled_below`, `reduced_rate_factor`, `max_calls_per_hour`, `max_calls_per_day`, `cooling_rest_s`, ...; see `CallerIdConfig`). Unset: the defaults (50 calls, 30/25/20/15/10 %, 0.8/0.5, 30 calls/h, 100/day, 2 h rest).",
    ),
    spec(
        "rules_dir",
        "TRUNX_RULES_DIR",
        None,
        false,
        "Directory of state calling rule files (`*.toml`, the format of `data/rules/`) used instead of the rules embedded in the binary. Read once at start; a bad file stops the start with its name and field.",
    ),
    spec(
        "max_abandon_rate",
        "TRUNX_MAX_ABANDON_RATE",
        Some("0.03"),
        false,
        "Most abandoned calls per live answer a campaign may reach over a rolling 30 days (TSR 16 CFR 310.4(b)(4): 3 %). The pacer slows a campaign nearing it and pauses its dialling at it; `mode.max_abandon_rate` may lower it per campaign.",
    ),
    spec(
        "beep_model_path",
        "TRUNX_BEEP_MODEL",
        None,
        false,
        "ONNX beep-confirmation model. Unset: the model embedded in the binary (models/beep.onnx).",
    ),
    spec(
        "log_format",
        "TRUNX_LOG_FORMAT",
        Some("text"),
        false,
        "Log format: `text` or `json` (`--log-format` overrides). Levels come from `RUST_LOG`.",
    ),
    spec(
        "log_phone_numbers",
        "TRUNX_LOG_PHONE_NUMBERS",
        Some("false"),
        false,
        "`true` writes whole phone numbers to logs; by default all but the last 4 digits are masked.",
    ),
    spec(
        "public_base_url",
        "TRUNX_PUBLIC_BASE_URL",
        None,
        false,
        "Public URL of this API as clients reach it, e.g. `https://api.trunx.io`. A `voicemailAudioUrl` `<public_base_url>/audio/<id>/file` (like `http://<api_addr>/audio/<id>/file` and `/audio/<id>/file`) is read from the store, not fetched.",
    ),
    spec(
        "voicemail_max_bytes",
        "TRUNX_VOICEMAIL_MAX_BYTES",
        Some("20000000"),
        false,
        "Largest `voicemailAudioUrl` file fetched, in bytes: counted while downloading, and a larger Content-Length is refused before the body is read.",
    ),
    spec(
        "fetch_connect_timeout",
        "TRUNX_FETCH_CONNECT_TIMEOUT",
        Some("5"),
        false,
        "Seconds a fetch of `voicemailAudioUrl` waits for its TCP (and TLS) connection.",
    ),
    spec(
        "fetch_timeout",
        "TRUNX_FETCH_TIMEOUT",
        Some("30"),
        false,
        "Seconds a whole fetch of `voicemailAudioUrl` may take: lookup, redirects (at most 5) and body.",
    ),
    spec(
        "fetch_allow_hosts",
        "TRUNX_FETCH_ALLOW_HOSTS",
        None,
        false,
        "Comma-separated hosts `voicemailAudioUrl` may be fetched from: `cdn.example.com`, `*.example.com` (its subdomains) or an address. Unset: any host whose addresses are public.",
    ),
    spec(
        "fetch_allow_private",
        "TRUNX_FETCH_ALLOW_PRIVATE",
        Some("false"),
        false,
        "`true` lets fetches reach loopback, private (RFC 1918), CGNAT, unique-local and site-local addresses. Link-local (cloud metadata), unspecified, multicast, broadcast, documentation and reserved addresses are always refused.",
    ),
    spec(
        "smpp_addr",
        "TRUNX_SMPP_ADDR",
        None,
        false,
        "`HOST:PORT` of the carrier's SMPP 3.4 server (SMSC). Set: `trunx serve` sends SMS campaigns over one bind_transceiver connection (reconnected 1 s, 2 s, 4 s ... 30 s apart when lost).",
    ),
    spec(
        "smpp_system_id",
        "TRUNX_SMPP_SYSTEM_ID",
        None,
        false,
        "SMPP system_id to bind with (1 to 15 characters); required with `smpp_addr`.",
    ),
    spec(
        "smpp_password",
        "TRUNX_SMPP_PASSWORD",
        None,
        true,
        "SMPP bind password (at most 8 characters). Never logged or printed.",
    ),
    spec(
        "smpp_system_type",
        "TRUNX_SMPP_SYSTEM_TYPE",
        None,
        false,
        "SMPP system_type of the bind (at most 12 characters), if the carrier asks for one.",
    ),
    spec(
        "smpp_window",
        "TRUNX_SMPP_WINDOW",
        Some("10"),
        false,
        "Most messages on the SMPP connection awaiting the carrier's answer (1 to 100).",
    ),
    spec(
        "sms_stop_reply",
        "TRUNX_SMS_STOP_REPLY",
        Some("You are unsubscribed and will receive no more messages."),
        false,
        "The one confirmation texted to a number that opts out (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT); empty: no confirmation.",
    ),
    spec(
        "sms_help_reply",
        "TRUNX_SMS_HELP_REPLY",
        None,
        false,
        "Text sent back to HELP or INFO (your brand and how to reach you). Unset: no reply.",
    ),
    spec(
        "sms_did_per_hour",
        "TRUNX_SMS_DID_PER_HOUR",
        Some("4"),
        false,
        "Most SMS one sender DID sends in any rolling hour (compliance-relevant: carriers filter senders that text faster than a person).",
    ),
    spec(
        "sms_min_gap",
        "TRUNX_SMS_MIN_GAP",
        Some("900"),
        false,
        "Least seconds between two SMS from one DID (compliance-relevant, like `sms_did_per_hour`).",
    ),
    spec(
        "sms_gap_jitter",
        "TRUNX_SMS_GAP_JITTER",
        Some("600"),
        false,
        "Most extra seconds drawn at random after each SMS of a DID, so sends are never periodic (0 to 86400).",
    ),
    spec(
        "sms_receipt_timeout",
        "TRUNX_SMS_RECEIPT_TIMEOUT",
        Some("259200"),
        false,
        "Seconds (60 to 604800) a sent SMS waits for its delivery receipt; then it counts as failed with `no_receipt`, so the campaign can complete.",
    ),
    spec(
        "metrics_public",
        "TRUNX_METRICS_PUBLIC",
        Some("false"),
        false,
        "`true` serves `GET /metrics` without an API key (for a scraper on a trusted network); by default it needs `Authorization: Bearer KEY` like the rest of the API.",
    ),
    spec(
        "webhook_url",
        "TRUNX_WEBHOOK_URL",
        None,
        false,
        "Default `http(s)` URL (at most 2048 characters) events are POSTed to for campaigns without their own `webhookUrl`. Fetched through the same egress guard as audio (`fetch_allow_hosts`, `fetch_allow_private`).",
    ),
    spec(
        "webhook_secret",
        "TRUNX_WEBHOOK_SECRET",
        None,
        true,
        "Key of the `X-Trunx-Signature` HMAC-SHA256 on every webhook (at least 16 characters). Unset: webhooks are sent unsigned. Never logged or printed.",
    ),
    spec(
        "amd_record",
        "TRUNX_AMD_RECORD",
        Some("false"),
        false,
        "`true` keeps each answered call's first 10 s of audio (8 kHz u-law) and its AMD trace, served at `GET /attempts/:id/amd` and `/audio` and drawn by the dashboard. `trunx demo` turns it on.",
    ),
    spec(
        "amd_record_dir",
        "TRUNX_AMD_RECORD_DIR",
        Some("amd-records"),
        false,
        "Directory of the AMD records (created if missing, relative to the working directory).",
    ),
    spec(
        "amd_record_keep",
        "TRUNX_AMD_RECORD_KEEP",
        Some("1000"),
        false,
        "How many calls' AMD records are kept (1 to 1000000; the oldest are deleted), about 90 KB each.",
    ),
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid value for {key} (from {source_name}): {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unknown key {key:?} in config file {path}; known keys: {known}")]
    UnknownKey {
        key: String,
        path: String,
        known: String,
    },
}

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File(String),
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {p}"),
            Source::Env(v) => write!(f, "env {v}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdProviderKind {
    Builtin,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_addr: SocketAddr,
    pub database_url: Secret,
    pub sip_addr: SocketAddr,
    pub rtp_ports: RangeInclusive<u16>,
    pub trunk_uri: Option<String>,
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

    fn from_raw(
        raw: BTreeMap<&'static str, (Option<String>, Source)>,
    ) -> Result<Config, ConfigError> {
        let get = |key: &'static str| -> Field<'_> {
            let (value, source) = &raw[key];
            Field {
                key,
                value: value.as_deref().map(str::trim).filter(|v| !v.is_empty()),
                source,
            }
        };
        let config = Config {
            api_addr: get("api_addr").required()?.parse_with(parse_socket_addr)?,
            database_url: Secret(
                get("database_url")
                    .required()?
                    .parse_with(parse_database_url)?,
            ),
            sip_addr: get("sip_addr").required()?.parse_with(parse_socket_addr)?,
            rtp_ports: get("rtp_ports").required()?.parse_with(parse_port_range)?,
            trunk_uri: get("trunk_uri").optional(parse_sip_uri)?,
            trunk_username: get("trunk_username").optional(|v| Ok(v.to_string()))?,
            trunk_password: get("trunk_password").optional(|v| Ok(Secret(v.to_string())))?,
            trunk_max_cps: get("trunk_max_cps").required()?.parse_with(|v| {
                let cps: f64 = v.parse().map_err(|_| "not a number".to_string())?;
                if cps > 0.0 && cps <= 10_000.0 {
                    Ok(cps)
                } else {
                    Err("must be greater than 0 and at most 10000".into())
                }
            })?,
            trunk_max_concurrent: get("trunk_max_concurrent").required()?.parse_with(
                |v| match v.parse::<u32>() {
                    Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                    _ => Err("must be a whole number from 1 to 100000".into()),
                },
            )?,
            ring_timeout_s: get("ring_timeout").required()?.parse_with(|v| {
                match v.parse::<u32>() {
                    Ok(n) if (15..=120).contains(&n) => Ok(n),
                    _ => Err("must be a whole number of seconds from 15 to 120".into()),
                }
            })?,
            trunk_send_pai: get("trunk_send_pai").required()?.parse_with(parse_bool)?,
            trunk_options_interval_s: get("trunk_options_interval").required()?.parse_with(
                |v| match v.parse::<u32>() {
                    Ok(n) if n <= 3600 => Ok(n),
                    _ => Err("must be a whole number of seconds from 0 to 3600".into()),
                },
            )?,
            agent_url: get("agent_url").optional(|v| {
                if v.starts_with("ws://") || v.starts_with("wss://") {
                    Ok(v.to_string())
                } else {
                    Err("must start with ws:// or wss://".into())
                }
            })?,
            agent_headers: get("agent_headers")
                .optional(parse_headers)?
                .unwrap_or_default(),
            agent_sip_username: get("agent_sip_username").optional(|v| Ok(v.to_string()))?,
            agent_sip_password: get("agent_sip_password")
                .optional(|v| Ok(Secret(v.to_string())))?,
            agent_reconnect_budget_s: get("agent_reconnect_budget").required()?.parse_with(
                |v| match v.parse::<u32>() {
                    Ok(n) if n <= 60 => Ok(n),
                    _ => Err("must be a whole number of seconds from 0 to 60".into()),
                },
            )?,
            agent_fallback_audio: get("agent_fallback_audio").optional(|v| {
                let p = PathBuf::from(v);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err("no such file".into())
                }
            })?,
            amd_provider: get("amd_provider").required()?.parse_with(|v| match v {
                "builtin" => Ok(AmdProviderKind::Builtin),
                "external" => Ok(AmdProviderKind::External),
                _ => Err("must be `builtin` or `external`".into()),
            })?,
            amd_external_url: get("amd_external_url").optional(parse_ws_url)?,
            amd_external_headers: get("amd_external_headers")
                .optional(parse_headers)?
                .unwrap_or_default(),
            amd_external_timeout_ms: get("amd_external_timeout").required()?.parse_with(
                |v| match v.parse::<f64>() {
                    Ok(s) if (0.1..=60.0).contains(&s) => Ok((s * 1000.0).round() as u32),
                    _ => Err("must be a number of seconds from 0.1 to 60".into()),
                },
            )?,
            ort_dylib_path: get("ort_dylib_path").optional(|v| Ok(PathBuf::from(v)))?,
            beep_model_path: get("beep_model_path").optional(|v| Ok(PathBuf::from(v)))?,
            rules_dir: get("rules_dir").optional(|v| Ok(PathBuf::from(v)))?,
            max_abandon_rate: get("max_abandon_rate").required()?.parse_with(|v| {
                match v.parse::<f64>() {
                    Ok(r) if (0.0..=0.03).contains(&r) && r > 0.0 => Ok(r),
                    _ => Err("must be a fraction above 0 and at most 0.03 (3 %)".into()),
                }
            })?,
            caller_id: get("caller_id_policy")
                .optional(|v| {
                    let text = std::fs::read_to_string(v)
                        .map_err(|e| format!("cannot read the file: {e}"))?;
                    let cfg: crate::campaign::callerid::CallerIdConfig =
                        toml::from_str(&text).map_err(|e| e.message().to_string())?;
                    cfg.validate().map_err(|e| e.to_string())?;
                    Ok(cfg)
                })?
                .unwrap_or_default(),
            log_format: get("log_format").required()?.parse_with(|v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be `text` or `json`".into()),
            })?,
            log_phone_numbers: get("log_phone_numbers")
                .required()?
                .parse_with(parse_bool)?,
            public_base_url: get("public_base_url").optional(parse_public_base_url)?,
            voicemail_max_bytes: get("voicemail_max_bytes")
                .required()?
                .parse_with(|v| match v.parse::<u64>() {
                    Ok(n) if (1_000..=1_000_000_000).contains(&n) => Ok(n),
                    _ => Err("must be a whole number of bytes from 1000 to 1000000000".into()),
                })?,
            fetch_connect_timeout_s: get("fetch_connect_timeout").required()?.parse_with(|v| {
                match v.parse::<u32>() {
                    Ok(n) if (1..=120).contains(&n) => Ok(n),
                    _ => Err("must be a whole number of seconds from 1 to 120".into()),
                }
            })?,
            fetch_timeout_s: get("fetch_timeout").required()?.parse_with(|v| {
                match v.parse::<u32>() {
                    Ok(n) if (1..=600).contains(&n) => Ok(n),
                    _ => Err("must be a whole number of seconds from 1 to 600".into()),
                }
            })?,
            fetch_allow_hosts: get("fetch_allow_hosts")
                .optional(|v| v.split(',').map(HostPattern::parse).collect())?
                .unwrap_or_default(),
            fetch_allow_private: get("fetch_allow_private")
                .required()?
                .parse_with(parse_bool)?,
            smpp_addr: get("smpp_addr").optional(parse_host_port)?,
            smpp_system_id: get("smpp_system_id").optional(|v| ascii_up_to(v, 15))?,
            smpp_password: get("smpp_password").optional(|v| ascii_up_to(v, 8).map(Secret))?,
            smpp_system_type: get("smpp_system_type").optional(|v| ascii_up_to(v, 12))?,
            smpp_window: get("smpp_window")
                .required()?
                .parse_with(|v| match v.parse::<u32>() {
                    Ok(n) if (1..=100).contains(&n) => Ok(n),
                    _ => Err("must be a whole number from 1 to 100".into()),
                })?,
            sms_stop_reply: get("sms_stop_reply").optional(parse_sms_text)?,
            sms_help_reply: get("sms_help_reply").optional(parse_sms_text)?,
            sms_pacing: crate::campaign::sms_pacing::SmsPacingConfig {
                max_per_hour: get("sms_did_per_hour").required()?.parse_with(|v| {
                    match v.parse::<u32>() {
                        Ok(n) if (1..=3600).contains(&n) => Ok(n),
                        _ => Err("must be a whole number from 1 to 3600".into()),
                    }
                })?,
                min_gap_ms: get("sms_min_gap")
                    .required()?
                    .parse_with(parse_seconds_to_ms)?,
                max_jitter_ms: get("sms_gap_jitter")
                    .required()?
                    .parse_with(parse_seconds_to_ms)?,
            },
            sms_receipt_timeout_s: get("sms_receipt_timeout").required()?.parse_with(
                |v| match v.parse::<u32>() {
                    Ok(n) if (60..=604_800).contains(&n) => Ok(n),
                    _ => Err("must be a whole number of seconds from 60 to 604800".into()),
                },
            )?,
            metrics_public: get("metrics_public").required()?.parse_with(parse_bool)?,
            webhook_url: get("webhook_url").optional(|v| {
                crate::campaign::webhook::check_webhook_url(v)
                    .map(|()| v.to_string())
                    .map_err(str::to_string)
            })?,
            webhook_secret: get("webhook_secret").optional(|v| {
                if v.len() >= 16 && v.len() <= 256 {
                    Ok(Secret(v.to_string()))
                } else {
                    Err("must be 16 to 256 characters".into())
                }
            })?,
            amd_record: get("amd_record").required()?.parse_with(parse_bool)?,
            amd_record_dir: get("amd_record_dir")
                .required()?
                .parse_with(|v| Ok(PathBuf::from(v)))?,
            amd_record_keep: get("amd_record_keep").required()?.parse_with(|v| {
                match v.parse::<u32>() {
                    Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                    _ => Err("must be a whole number from 1 to 1000000".into()),
                }
            })?,
            effective: BTreeMap::new(),
        };
        if config.amd_provider == AmdProviderKind::External && config.amd_external_url.is_none() {
            let (_, source) = &raw["amd_provider"];
            return Err(ConfigError::Invalid {
                key: "amd_external_url",
                source_name: source.to_string(),
                value: String::new(),
                reason: "is required when amd_provider is `external`".into(),
            });
        }
        // What `trunx config` shows: secrets are masked here, so no Debug or log of the
        // config can carry them either.
        let effective = raw
            .into_iter()
            .map(|(key, (value, source))| {
                let secret = KEYS.iter().any(|k| k.key == key && k.secret);
                let value = value.map(|v| if secret { mask_secret(key, &v) } else { v });
                (key, (value, source))
            })
            .collect();
        Ok(Config {
            effective,
            ..config
        })
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

/// Masks a secret; for URLs only the password part is hidden so the target stays visible.
pub fn mask_secret(key: &str, value: &str) -> String {
    if key == "database_url"
        && let Some((scheme, rest)) = value.split_once("://")
    {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:****@{host}");
        }
        return value.to_string();
    }
    "****".to_string()
}

struct Field<'a> {
    key: &'static str,
    value: Option<&'a str>,
    source: &'a Source,
}

impl<'a> Field<'a> {
    fn invalid(&self, value: &str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            key: self.key,
            source_name: self.source.to_string(),
            // A rejected secret is still a secret: the error names the key, not the value.
            value: if KEYS.iter().any(|k| k.key == self.key && k.secret) && !value.is_empty() {
                "****".to_string()
            } else {
                value.to_string()
            },
            reason,
        }
    }

    fn required(self) -> Result<Self, ConfigError> {
        match self.value {
            Some(_) => Ok(self),
            None => Err(self.invalid("", "must not be empty".into())),
        }
    }

    fn parse_with<T>(self, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        let value = self.value.unwrap_or("");
        parse(value).map_err(|reason| self.invalid(value, reason))
    }

    fn optional<T>(
        self,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.value {
            None => Ok(None),
            Some(v) => parse(v).map(Some).map_err(|reason| self.invalid(v, reason)),
        }
    }
}

/// `Name: value; Name2: value2` into header pairs; names must be header tokens.
fn parse_headers(v: &str) -> Result<Vec<(String, Secret)>, String> {
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

/// A `ws://` or `wss://` URL with a host.
pub fn parse_ws_url(v: &str) -> Result<String, String> {
    let url = Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "ws" | "wss") || url.host_str().is_none() {
        return Err("must be a ws:// or wss:// URL with a host".into());
    }
    Ok(v.to_string())
}

fn parse_socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8080".to_string())
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_port_range(v: &str) -> Result<RangeInclusive<u16>, String> {
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

fn parse_database_url(v: &str) -> Result<String, String> {
    let sqlite = v.starts_with("sqlite://") || v.starts_with("sqlite:");
    if sqlite || v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(v.to_string())
    } else {
        Err("expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB".into())
    }
}

fn parse_public_base_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http(s) URL with a host, e.g. https://api.trunx.io".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no credentials, query or fragment".into());
    }
    Ok(url)
}

fn parse_sip_uri(v: &str) -> Result<String, String> {
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
fn parse_host_port(v: &str) -> Result<String, String> {
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
fn ascii_up_to(v: &str, max: usize) -> Result<String, String> {
    if v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("must be at most {max} printable ASCII characters"));
    }
    Ok(v.to_string())
}

/// A reply text: what one SMS campaign message may be (1 to 1600 characters).
fn parse_sms_text(v: &str) -> Result<String, String> {
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
fn parse_seconds_to_ms(v: &str) -> Result<i64, String> {
    match v.parse::<i64>() {
        Ok(n) if (0..=86_400).contains(&n) => Ok(n * 1000),
        _ => Err("must be a whole number of seconds from 0 to 86400".into()),
    }
}

/// Reads a flat TOML table into strings, so file and environment share one parser.
fn parse_toml(text: &str, origin: &str) -> Result<Vec<(String, String)>, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env_of(&[])).unwrap();
        assert_eq!(c.api_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url.expose(), "sqlite://trunx.db");
        assert_eq!(c.rtp_ports, 10000..=20000);
        assert_eq!(c.amd_provider, AmdProviderKind::Builtin);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(!c.log_phone_numbers);
        assert!(c.trunk_uri.is_none());
        assert_eq!(c.voicemail_max_bytes, 20_000_000);
        assert_eq!((c.fetch_connect_timeout_s, c.fetch_timeout_s), (5, 30));
        assert!(c.fetch_allow_hosts.is_empty() && !c.fetch_allow_private);
        assert!(c.public_base_url.is_none());
    }

    #[test]
    fn fetch_settings_parse_and_refuse_bad_values() {
        let c = Config::load(
            None,
            env_of(&[
                ("TRUNX_PUBLIC_BASE_URL", "https://api.trunx.io"),
                (
                    "TRUNX_FETCH_ALLOW_HOSTS",
                    "cdn.example.com, *.media.example",
                ),
                ("TRUNX_FETCH_ALLOW_PRIVATE", "true"),
                ("TRUNX_VOICEMAIL_MAX_BYTES", "5000000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.public_base_url.as_ref().map(Url::as_str),
            Some("https://api.trunx.io/")
        );
        assert_eq!(
            c.fetch_allow_hosts,
            vec![
                HostPattern::Exact("cdn.example.com".into()),
                HostPattern::Subdomains("media.example".into())
            ]
        );
        assert!(c.fetch_allow_private);
        assert_eq!(c.voicemail_max_bytes, 5_000_000);
        for (env, value, key) in [
            ("TRUNX_PUBLIC_BASE_URL", "ftp://x", "public_base_url"),
            ("TRUNX_PUBLIC_BASE_URL", "https://x/?k=1", "public_base_url"),
            ("TRUNX_FETCH_ALLOW_HOSTS", "a.com, b c", "fetch_allow_hosts"),
            ("TRUNX_FETCH_ALLOW_PRIVATE", "maybe", "fetch_allow_private"),
            ("TRUNX_VOICEMAIL_MAX_BYTES", "20MB", "voicemail_max_bytes"),
            ("TRUNX_FETCH_TIMEOUT", "0", "fetch_timeout"),
            (
                "TRUNX_FETCH_CONNECT_TIMEOUT",
                "121",
                "fetch_connect_timeout",
            ),
        ] {
            let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{env}={value}: {err}"
            );
        }
    }

    #[test]
    fn live_settings_parse_and_a_rejected_secret_is_not_echoed() {
        let c = Config::load(None, env_of(&[])).unwrap();
        assert!(!c.metrics_public && c.webhook_url.is_none() && c.webhook_secret.is_none());
        let c = Config::load(
            None,
            env_of(&[
                ("TRUNX_METRICS_PUBLIC", "true"),
                ("TRUNX_WEBHOOK_URL", "https://hooks.example.com/trunx"),
                ("TRUNX_WEBHOOK_SECRET", "0123456789abcdef0123"),
            ]),
        )
        .unwrap();
        assert!(c.metrics_public);
        assert_eq!(
            c.webhook_url.as_deref(),
            Some("https://hooks.example.com/trunx")
        );
        assert_eq!(
            c.webhook_secret.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123")
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
        for (env, value, key) in [
            ("TRUNX_WEBHOOK_URL", "ftp://x.io/h", "webhook_url"),
            ("TRUNX_METRICS_PUBLIC", "yes please", "metrics_public"),
            ("TRUNX_WEBHOOK_SECRET", "short-secret", "webhook_secret"),
        ] {
            let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{env}={value}: {err}"
            );
            if key == "webhook_secret" {
                assert!(!err.to_string().contains(value), "{err}");
            }
        }
    }

    #[test]
    fn env_overrides_file_overrides_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trunx.toml");
        std::fs::write(
            &file,
            "api_addr = \"0.0.0.0:9000\"\nsip_addr = \"127.0.0.1:5070\"\ntrunk_max_cps = 25\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), env_of(&[("TRUNX_API_ADDR", "127.0.0.1:9100")])).unwrap();
        assert_eq!(c.api_addr.port(), 9100);
        assert_eq!(c.sip_addr.port(), 5070);
        assert_eq!(c.trunk_max_cps, 25.0);
        let shown = c.render();
        assert!(
            shown.contains("api_addr = \"127.0.0.1:9100\"  # env TRUNX_API_ADDR"),
            "{shown}"
        );
        assert!(
            shown.contains("sip_addr = \"127.0.0.1:5070\"  # file"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_the_key_the_source_and_the_value() {
        let err = Config::load(None, env_of(&[("TRUNX_RTP_PORTS", "9-5")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("rtp_ports"), "{text}");
        assert!(text.contains("TRUNX_RTP_PORTS"), "{text}");
        assert!(text.contains("\"9-5\""), "{text}");

        let err = Config::load(None, env_of(&[("ACTIVE_AMD_PROVIDER", "magic")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "amd_provider",
                    ..
                }
            ),
            "{err}"
        );

        let err = Config::load(None, env_of(&[("TRUNX_API_ADDR", "localhost")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "api_addr",
                    ..
                }
            ),
            "{err}"
        );

        let err = Config::load(None, env_of(&[("TRUNX_TRUNK_URI", "http://x")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "trunk_uri",
                    ..
                }
            ),
            "{err}"
        );

        let err = Config::load(None, env_of(&[("TRUNX_TRUNK_MAX_CPS", "0")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "trunk_max_cps",
                    ..
                }
            ),
            "{err}"
        );

        let err = Config::load(None, env_of(&[("TRUNX_AGENT_URL", "http://a")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "agent_url",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn file_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "api_adr = \"1.2.3.4:5\"\n").unwrap();
        let err = Config::load(Some(&bad), env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "api_adr"));

        std::fs::write(&bad, "api_addr = [1, 2]\n").unwrap();
        assert!(matches!(
            Config::load(Some(&bad), env_of(&[])),
            Err(ConfigError::File { .. })
        ));
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            Config::load(Some(&missing), env_of(&[])),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn secrets_are_masked_in_render_and_debug() {
        let c = Config::load(
            None,
            env_of(&[
                ("TRUNX_TRUNK_PASSWORD", "hunter2"),
                ("TRUNX_DATABASE_URL", "sqlite://secret-file.db"),
            ]),
        )
        .unwrap();
        let shown = c.render();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("trunk_password = \"****\""), "{shown}");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.trunk_password.as_ref().unwrap().expose(), "hunter2");
        assert_eq!(
            mask_secret("database_url", "postgres://u:pw@db:5432/x"),
            "postgres://u:****@db:5432/x"
        );
    }

    #[test]
    fn caller_id_policy_file_sets_the_figures_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cid.toml");
        std::fs::write(&good, "max_calls_per_hour = 5\ncooling_rest_s = 600\n").unwrap();
        let path = good.display().to_string();
        let c = Config::load(None, env_of(&[("TRUNX_CALLER_ID_POLICY", &path)])).unwrap();
        assert_eq!(c.caller_id.max_calls_per_hour, 5);
        assert_eq!(c.caller_id.cooling_rest_s, 600);
        assert_eq!(c.caller_id.health_window, 50);
        assert_eq!(
            Config::load(None, env_of(&[]))
                .unwrap()
                .caller_id
                .max_calls_per_hour,
            30
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "max_calls_per_hr = 5\n").unwrap();
        let path = bad.display().to_string();
        let err = Config::load(None, env_of(&[("TRUNX_CALLER_ID_POLICY", &path)])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "caller_id_policy",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("max_calls_per_hr"), "{err}");
    }

    #[test]
    fn smpp_and_sms_settings_parse_keep_the_password_secret_and_name_bad_values() {
        let c = Config::load(None, env_of(&[])).unwrap();
        assert!(c.smpp_addr.is_none());
        assert_eq!(
            c.sms_pacing,
            crate::campaign::sms_pacing::SmsPacingConfig::default(),
            "the defaults are the contract's pacing"
        );
        assert_eq!(c.smpp_window, 10);
        assert!(c.sms_stop_reply.is_some() && c.sms_help_reply.is_none());
        let c = Config::load(
            None,
            env_of(&[
                ("TRUNX_SMPP_ADDR", "smsc.example.net:2775"),
                ("TRUNX_SMPP_SYSTEM_ID", "acme"),
                ("TRUNX_SMPP_PASSWORD", "pw5678"),
                ("TRUNX_SMS_DID_PER_HOUR", "60"),
                ("TRUNX_SMS_MIN_GAP", "0"),
                ("TRUNX_SMS_GAP_JITTER", "2"),
                ("TRUNX_SMS_HELP_REPLY", "Acme: call 555-0100"),
            ]),
        )
        .unwrap();
        assert_eq!(c.smpp_addr.as_deref(), Some("smsc.example.net:2775"));
        assert_eq!(c.smpp_password.as_ref().unwrap().expose(), "pw5678");
        assert!(!format!("{c:?}").contains("pw5678"));
        assert!(c.render().contains("smpp_password = \"****\""));
        assert_eq!(
            (
                c.sms_pacing.max_per_hour,
                c.sms_pacing.min_gap_ms,
                c.sms_pacing.max_jitter_ms
            ),
            (60, 0, 2000)
        );
        for (env, value, key) in [
            ("TRUNX_SMPP_ADDR", "smsc.example.net", "smpp_addr"),
            ("TRUNX_SMPP_ADDR", "smsc:0", "smpp_addr"),
            ("TRUNX_SMPP_SYSTEM_ID", "sixteen-chars-xx", "smpp_system_id"),
            ("TRUNX_SMPP_PASSWORD", "ninechars", "smpp_password"),
            ("TRUNX_SMPP_WINDOW", "0", "smpp_window"),
            ("TRUNX_SMS_DID_PER_HOUR", "0", "sms_did_per_hour"),
            ("TRUNX_SMS_MIN_GAP", "-1", "sms_min_gap"),
            ("TRUNX_SMS_GAP_JITTER", "86401", "sms_gap_jitter"),
        ] {
            let err = Config::load(None, env_of(&[(env, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{env}={value}: {err}"
            );
        }
    }

    #[test]
    fn agent_headers_parse_and_stay_secret() {
        let c = Config::load(
            None,
            env_of(&[(
                "TRUNX_AGENT_HEADERS",
                "Authorization: Bearer s3cr3t; X-Tenant: a",
            )]),
        )
        .unwrap();
        let h: Vec<(&str, &str)> = c
            .agent_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(h, [("Authorization", "Bearer s3cr3t"), ("X-Tenant", "a")]);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!c.render().contains("s3cr3t"));
        for bad in ["no colon", "Bad Name: x", ": x"] {
            let err = Config::load(None, env_of(&[("TRUNX_AGENT_HEADERS", bad)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "agent_headers",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_external_amd_engine_needs_a_url_and_keeps_its_headers_secret() {
        let err = Config::load(None, env_of(&[("ACTIVE_AMD_PROVIDER", "external")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "amd_external_url",
                    ..
                }
            ),
            "{err}"
        );
        let c = Config::load(
            None,
            env_of(&[
                ("ACTIVE_AMD_PROVIDER", "external"),
                (
                    "TRUNX_AMD_EXTERNAL_URL",
                    "ws://127.0.0.1:9310/amd/v1/stream",
                ),
                (
                    "TRUNX_AMD_EXTERNAL_HEADERS",
                    "Authorization: Bearer amd-s3cr3t",
                ),
                ("TRUNX_AMD_EXTERNAL_TIMEOUT", "1.5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.amd_provider, AmdProviderKind::External);
        assert_eq!(c.amd_external_timeout_ms, 1500);
        assert_eq!(c.amd_external_headers[0].1.expose(), "Bearer amd-s3cr3t");
        assert!(!format!("{c:?}").contains("amd-s3cr3t"));
        assert!(!c.render().contains("amd-s3cr3t"));
        assert!(c.render().contains("amd_external_headers = \"****\""));
        assert_eq!(
            Config::load(None, env_of(&[]))
                .unwrap()
                .amd_external_timeout_ms,
            4000
        );
        for (key, env, bad) in [
            ("amd_external_url", "TRUNX_AMD_EXTERNAL_URL", "http://x"),
            ("amd_external_timeout", "TRUNX_AMD_EXTERNAL_TIMEOUT", "0"),
            ("amd_external_timeout", "TRUNX_AMD_EXTERNAL_TIMEOUT", "61"),
        ] {
            let err = Config::load(None, env_of(&[(env, bad)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{bad}: {err}"
            );
        }
    }
}
