//! Turns the layered raw values into a typed [`Config`]: every setting checked in the order
//! of its field, the first invalid one reported (a secret's value masked), and the effective
//! values kept, masked, for `trunx config`. It must not read the environment or decide the
//! layering (see the module root).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::parse::{
    ascii_up_to, parse_bool, parse_database_url, parse_headers, parse_host_port, parse_port_range,
    parse_public_base_url, parse_seconds_to_ms, parse_sip_uri, parse_sms_text, parse_socket_addr,
    parse_ws_url,
};
use super::{AmdProviderKind, Config, ConfigError, KEYS, LogFormat, Secret, Source, mask_secret};
use crate::egress::HostPattern;

impl Config {
    pub(super) fn from_raw(
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
            trunk_tls_ca_file: get("trunk_tls_ca_file").optional(|v| Ok(v.into()))?,
            trunk_srtp: get("trunk_srtp")
                .required()?
                .parse_with(crate::sip::sdes::SrtpPolicy::parse)?,
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
