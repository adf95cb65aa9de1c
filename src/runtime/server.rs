//! Runs the control API: opens the store, binds the listener, serves the router on a tokio
//! runtime and stops gracefully on Ctrl-C or SIGTERM (in-flight requests finish, every write
//! they made is already committed). Also the OS randomness and wall time the API and the
//! `keys` commands are given.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::api::{self, AppState};
use crate::campaign::scheduler::NodeLimits;
use crate::config::Config;
use crate::runtime::campaigns::dialer::{DialerSettings, Messages};
use crate::runtime::clock::{os_random, wall_ms};
use crate::runtime::fetch::{ClientError, FetchConfig, VoicemailLibrary};
use crate::store::{self, ApiKey, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    HttpClient(#[from] ClientError),
    #[error(transparent)]
    Dialer(#[from] crate::runtime::campaigns::dialer::DialerError),
    #[error(transparent)]
    Sms(#[from] crate::runtime::campaigns::sms_sender::SmsSenderError),
    #[error(transparent)]
    Model(#[from] crate::runtime::amd::files::AmdFilesError),
    #[error("{key}: {reason}")]
    Setting { key: &'static str, reason: String },
    #[error("API key name must be 1 to 100 characters of letters, digits, '-', '_' or '.'")]
    KeyName,
    #[error(transparent)]
    Rules(#[from] crate::campaign::rules::RuleError),
}

/// Reads every `*.toml` rule file of a directory (`rules_dir`), in name order.
pub fn load_rules_dir(
    dir: &std::path::Path,
) -> Result<crate::campaign::rules::RuleSet, ServerError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, std::fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(crate::campaign::rules::RuleSet::parse(&files)?)
}

/// Opens the configured store with an id generator seeded from the OS.
pub fn open_store(config: &Config) -> Result<Box<dyn Store>, ServerError> {
    open_node_store(config, &cluster_settings(config, None))
}

/// Opens the configured store as node `cluster.node_id`.
pub fn open_node_store(
    config: &Config,
    cluster: &store::ClusterSettings,
) -> Result<Box<dyn Store>, ServerError> {
    let seed = u64::from_le_bytes(os_random::<8>()?);
    Ok(store::open(config.database_url.expose(), seed, cluster)?)
}

/// This node's identity and shared limits: `node_id` (else `TRUNX_NODE_ID`, else the host
/// name), the lease (`TRUNX_LEASE_MS`, default 10 s) and the trunk's calls per second.
pub fn cluster_settings(config: &Config, node_id: Option<&str>) -> store::ClusterSettings {
    let node_id = node_id
        .map(str::to_string)
        .or_else(|| {
            std::env::var("TRUNX_NODE_ID")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(hostname);
    let lease_ms = std::env::var("TRUNX_LEASE_MS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 1_000)
        .unwrap_or(10_000);
    store::ClusterSettings {
        node_id,
        lease_ms,
        trunk_cps: Some(config.trunk_max_cps).filter(|c| *c > 0.0),
        shared_pacing: true,
        did_limits: store::DidLimits {
            calls_per_hour: Some(config.caller_id.max_calls_per_hour),
            calls_per_day: Some(config.caller_id.max_calls_per_day),
            sms_per_hour: Some(config.sms_pacing.max_per_hour),
            sms_min_gap_ms: Some(config.sms_pacing.min_gap_ms),
        },
    }
}

/// The host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`, else `node`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into())
}

/// The API state for `store` with the wall clock and a voicemail library built from the
/// fetch settings. The dialer takes `state.voicemail` (an `Arc`) to read prepared prompts.
pub fn app_state(config: &Config, store: Arc<dyn Store>) -> Result<AppState, ServerError> {
    let voicemail = VoicemailLibrary::new(FetchConfig::from_config(config), store.clone())?;
    Ok(AppState {
        store,
        now_ms: Arc::new(wall_ms),
        max_cps: config.trunk_max_cps,
        log_phone_numbers: config.log_phone_numbers,
        voicemail: Arc::new(voicemail),
        max_abandon_rate: config.max_abandon_rate,
    })
}

/// `trunx keys create --name NAME`: stores the hash, returns the record and the key (shown
/// once by the caller, never logged).
pub fn create_key(config: &Config, name: &str) -> Result<(ApiKey, String), ServerError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(ServerError::KeyName);
    }
    let store = open_store(config)?;
    let key = api::auth::new_key(&os_random::<32>()?);
    let record = store.create_api_key(name, &api::auth::hash_key(&key), wall_ms())?;
    Ok((record, key))
}

/// `trunx keys revoke NAME|ID`.
pub fn revoke_key(config: &Config, name_or_id: &str) -> Result<ApiKey, ServerError> {
    Ok(open_store(config)?.revoke_api_key(name_or_id, wall_ms())?)
}

/// `trunx keys list`.
pub fn list_keys(config: &Config) -> Result<Vec<ApiKey>, ServerError> {
    Ok(open_store(config)?.list_api_keys()?)
}

/// The dialer's settings from the configuration (`None` without a `trunk_uri`: the API runs
/// alone and campaigns wait).
pub fn dialer_settings(config: &Config) -> Result<Option<DialerSettings>, ServerError> {
    let Some(trunk_uri) = config.trunk_uri.clone() else {
        return Ok(None);
    };
    crate::runtime::call::sip_tls::configure(crate::runtime::call::sip_tls::TrunkTls {
        ca_file: config.trunk_tls_ca_file.clone(),
        srtp: config.trunk_srtp,
    });
    let model = crate::runtime::amd::files::load_beep_model(
        config.ort_dylib_path.as_deref(),
        config.beep_model_path.as_deref(),
    )?;
    Ok(Some(DialerSettings {
        trunk_uri,
        sip_addr: config.sip_addr,
        rtp_ports: config.rtp_ports.clone(),
        username: config.trunk_username.clone(),
        password: config
            .trunk_password
            .as_ref()
            .map(|p| p.expose().to_string()),
        send_pai: config.trunk_send_pai,
        ring_timeout: std::time::Duration::from_secs(config.ring_timeout_s as u64),
        limits: NodeLimits {
            max_concurrent: config.trunk_max_concurrent,
            max_cps: config.trunk_max_cps,
        },
        amd: crate::amd::AmdConfig::default(),
        model: Some(model),
        amd_engines: crate::runtime::call::amd_external::AmdEngines::from_config(config),
        log_phone_numbers: config.log_phone_numbers,
        agent: agent_target(config, None)?,
        agent_defaults: agent_defaults(config)?,
        // Several nodes: a small lease each, so a dead node leaves little to take over.
        claim_batch: if config.database_url.expose().starts_with("postgres") {
            25
        } else {
            200
        },
        caller_id: config.caller_id.clone(),
        amd_record: amd_record_store(config)?,
        compliance: compliance_settings(config)?,
    }))
}

/// The state rules in force: every `*.toml` of `rules_dir`, else the files in the binary.
pub fn rule_set(config: &Config) -> Result<Arc<crate::campaign::rules::RuleSet>, ServerError> {
    Ok(Arc::new(match &config.rules_dir {
        Some(dir) => load_rules_dir(dir)?,
        None => crate::campaign::rules::RuleSet::embedded(),
    }))
}

/// The dialer's compliance settings from the configuration: the state rules, the
/// abandonment limit and the built-in identification message.
pub fn compliance_settings(
    config: &Config,
) -> Result<crate::runtime::campaigns::compliance::ComplianceSettings, ServerError> {
    Ok(crate::runtime::campaigns::compliance::ComplianceSettings {
        rules: rule_set(config)?,
        max_abandon_rate: config.max_abandon_rate,
        ..crate::runtime::campaigns::compliance::ComplianceSettings::default()
    })
}

/// The SMS sender's settings from the configuration (`None` without an `smpp_addr`: SMS
/// campaigns are accepted but wait).
pub fn sms_settings(
    config: &Config,
) -> Result<Option<crate::runtime::campaigns::sms_sender::SmsSenderSettings>, ServerError> {
    let Some(addr) = config.smpp_addr.clone() else {
        return Ok(None);
    };
    let system_id = config
        .smpp_system_id
        .clone()
        .ok_or_else(|| ServerError::Setting {
            key: "smpp_system_id",
            reason: "required when smpp_addr is set".into(),
        })?;
    let password = crate::sms::session::SmppPassword::new(
        config
            .smpp_password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default(),
    );
    let mut session = crate::sms::session::SessionConfig::new(system_id, password);
    session.system_type = config.smpp_system_type.clone().unwrap_or_default();
    session.window = config.smpp_window as usize;
    Ok(Some(
        crate::runtime::campaigns::sms_sender::SmsSenderSettings {
            smpp: crate::runtime::campaigns::smpp::SmppSettings::new(addr, session),
            pacing: config.sms_pacing,
            replies: crate::sms::inbound::Replies {
                stop: config.sms_stop_reply.clone(),
                help: config.sms_help_reply.clone(),
            },
            log_phone_numbers: config.log_phone_numbers,
            claim_batch: 200,
            caller_id: config.caller_id.clone(),
            receipt_timeout: std::time::Duration::from_secs(u64::from(
                config.sms_receipt_timeout_s,
            )),
            rules: rule_set(config)?,
        },
    ))
}

/// The configured agent (or `url` instead of `agent_url`) with the configured headers,
/// reconnect budget and fallback message.
pub fn agent_target(
    config: &Config,
    url: Option<String>,
) -> Result<Option<crate::runtime::call::agent_ws::AgentTarget>, ServerError> {
    let Some(url) = url.or(config.agent_url.clone()) else {
        return Ok(None);
    };
    Ok(Some(crate::runtime::call::agent_ws::AgentTarget {
        url,
        ..agent_defaults(config)?
    }))
}

/// Everything of the agent's configuration but its URL. The fallback message is prepared
/// here, once: a file that cannot be played stops start-up with the key named.
pub fn agent_defaults(
    config: &Config,
) -> Result<crate::runtime::call::agent_ws::AgentTarget, ServerError> {
    let mut t = crate::runtime::call::agent_ws::AgentTarget::new(String::new());
    t.headers = config
        .agent_headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_string()))
        .collect();
    t.reconnect.budget = std::time::Duration::from_secs(u64::from(config.agent_reconnect_budget_s));
    t.sip_username = config.agent_sip_username.clone();
    t.sip_password = config
        .agent_sip_password
        .as_ref()
        .map(|p| p.expose().to_string());
    if let Some(path) = &config.agent_fallback_audio {
        let prompt = crate::audio::prompt::Prompt::load(
            path,
            &crate::audio::prompt::PromptOptions::default(),
        )
        .map_err(|e| ServerError::Setting {
            key: "agent_fallback_audio",
            reason: format!("{}: {e}", path.display()),
        })?;
        t.fallback = Some(Arc::new(prompt));
    }
    Ok(t)
}

/// `trunx serve`: the control API and, with a trunk configured, the dialer; blocks until
/// Ctrl-C or SIGTERM, then lets calls in flight hang up and record their outcomes.
pub fn serve(config: &Config, node_id: Option<&str>) -> Result<(), ServerError> {
    let states: Vec<String> = rule_set(config)?
        .rules()
        .map(|r| format!("{} {}", r.state, r.version))
        .collect();
    tracing::info!(rules = ?states, "state calling rules loaded");
    let cluster = cluster_settings(config, node_id);
    tracing::info!(node = %cluster.node_id, "node");
    let store: Arc<dyn Store> = Arc::from(open_node_store(config, &cluster)?);
    let state = app_state(config, store.clone())?;
    let dialer = dialer_settings(config)?;
    let sms = sms_settings(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trunx")
        .build()?;
    rt.block_on(async move {
        let addr = config.api_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(addr = %listener.local_addr()?, "control API listening");
        let stop = tokio_util::sync::CancellationToken::new();
        let texting = match sms {
            Some(settings) => {
                tracing::info!(smsc = %settings.smpp.addr, "SMS sender running");
                Some(tokio::spawn(crate::runtime::campaigns::sms_sender::run(
                    settings,
                    store.clone(),
                    stop.clone(),
                )))
            }
            None => {
                tracing::info!("no smpp_addr configured: SMS campaigns are accepted but not sent");
                None
            }
        };
        let dialing = match dialer {
            Some(settings) => {
                let messages: Arc<dyn Messages> = state.voicemail.clone();
                tracing::info!(trunk = %settings.trunk_uri, "dialer running");
                Some(tokio::spawn(crate::runtime::campaigns::dialer::run(
                    settings,
                    store,
                    messages,
                    stop.clone(),
                )))
            }
            None => {
                tracing::warn!("no trunk_uri configured: campaigns are accepted but not dialled");
                None
            }
        };
        let beats = tokio::spawn(crate::runtime::nodes::run(
            cluster.node_id.clone(),
            state.store.clone(),
            stop.clone(),
        ));
        let hooks = tokio::spawn(crate::runtime::webhooks::run(
            webhook_settings(config),
            state.store.clone(),
            stop.clone(),
        ));
        let api_stop = stop.clone();
        let signal = async move {
            shutdown_signal().await;
            api_stop.cancel();
        };
        let live = api::Live {
            stop: stop.clone(),
            ..live_options(config)?
        };
        let router = api::router_live(state, live);
        serve_router(listener, router, signal).await?;
        stop.cancel();
        let _ = beats.await;
        match hooks.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => tracing::error!(error = %e, "webhook sender task failed"),
        }
        if let Some(d) = dialing {
            match d.await {
                Ok(Ok(stats)) => tracing::info!(?stats, "dialer stopped"),
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => tracing::error!(error = %e, "dialer task failed"),
            }
        }
        if let Some(t) = texting {
            match t.await {
                Ok(Ok(stats)) => tracing::info!(?stats, "SMS sender stopped"),
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => tracing::error!(error = %e, "SMS sender task failed"),
            }
        }
        tracing::info!("control API stopped");
        Ok(())
    })
}

/// The live-surface options of the configuration.
pub fn live_options(config: &Config) -> Result<api::Live, ServerError> {
    Ok(api::Live {
        metrics_public: config.metrics_public,
        amd_records: amd_record_store(config)?,
        ..api::Live::default()
    })
}

/// The AMD record directory with `amd_record` on (created if missing).
pub fn amd_record_store(
    config: &Config,
) -> Result<Option<Arc<crate::runtime::amd::records::AmdRecordStore>>, ServerError> {
    if !config.amd_record {
        return Ok(None);
    }
    crate::runtime::amd::records::AmdRecordStore::new(
        config.amd_record_dir.clone(),
        config.amd_record_keep as usize,
    )
    .map(|s| Some(Arc::new(s)))
    .map_err(|e| ServerError::Setting {
        key: "amd_record_dir",
        reason: format!("{}: {e}", config.amd_record_dir.display()),
    })
}

/// The webhook sender's settings: the default URL, the secret, the egress policy of `fetch_*`.
pub fn webhook_settings(config: &Config) -> crate::runtime::webhooks::WebhookSettings {
    crate::runtime::webhooks::WebhookSettings {
        default_url: config.webhook_url.clone(),
        secret: config
            .webhook_secret
            .as_ref()
            .map(|s| Arc::from(s.expose().as_bytes())),
        fetch: FetchConfig::from_config(config),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the API on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a caller that announces "press Ctrl-C" after the
/// call cannot lose a signal sent in between.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |name: &'static str, listener: std::io::Result<tokio::signal::unix::Signal>| async move {
            match listener {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = wait("Ctrl-C", interrupt) => tracing::info!("Ctrl-C: shutting down"),
            _ = wait("SIGTERM", terminate) => tracing::info!("SIGTERM: shutting down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn sms_settings_need_a_system_id_with_an_smsc_and_nothing_without_one() {
        assert!(sms_settings(&config(&[])).unwrap().is_none());
        let err = sms_settings(&config(&[("TRUNX_SMPP_ADDR", "127.0.0.1:2775")])).unwrap_err();
        assert!(
            matches!(
                err,
                ServerError::Setting {
                    key: "smpp_system_id",
                    ..
                }
            ),
            "{err}"
        );
        let s = sms_settings(&config(&[
            ("TRUNX_SMPP_ADDR", "127.0.0.1:2775"),
            ("TRUNX_SMPP_SYSTEM_ID", "acme"),
            ("TRUNX_SMS_RECEIPT_TIMEOUT", "3600"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.receipt_timeout, std::time::Duration::from_secs(3600));
    }

    #[test]
    fn the_agent_fallback_must_be_playable() {
        let dir = std::env::temp_dir().join(format!("trunx-fallback-{}", std::process::id()));
        std::fs::write(&dir, b"not audio").unwrap();
        let err = agent_defaults(&config(&[(
            "TRUNX_AGENT_FALLBACK_AUDIO",
            dir.to_str().unwrap(),
        )]))
        .map(|_| ())
        .unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert!(
            matches!(
                err,
                ServerError::Setting {
                    key: "agent_fallback_audio",
                    ..
                }
            ),
            "{err}"
        );
        let ok = agent_defaults(&config(&[
            (
                "TRUNX_AGENT_FALLBACK_AUDIO",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/audio-fixtures/prompts/tone1k-8k.wav"
                ),
            ),
            ("TRUNX_AGENT_RECONNECT_BUDGET", "3"),
        ]))
        .unwrap();
        assert!(ok.fallback.is_some());
        assert_eq!(ok.reconnect.budget, std::time::Duration::from_secs(3));
    }
}
