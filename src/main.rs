//! The `trunx` command line: parses arguments (`cli::args`), loads the configuration, sets up
//! logging and hands over to the library (`trunx bench` through `cli::bench`). Nothing else
//! lives here.

mod cli;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use trunx::amd::{AmdConfig, BeepModel, analyse_recording};
use trunx::config::{Config, LogFormat};
use trunx::runtime::amd::files as amd_files;
use trunx::runtime::server;

use cli::args::{AmdCommand, BenchCommand, Cli, Command, DncCommand, KeysCommand, LogFormatArg};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    Config::load(cli.config.as_deref(), |name| std::env::var(name).ok())
        .context("invalid configuration")
}

fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Version = cli.command {
        println!("trunx {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(&cli)?;
    let format = match cli.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log_format,
    };
    // The demo draws a progress bar: only warnings interrupt it unless RUST_LOG says more.
    let default_level = if matches!(
        cli.command,
        Command::Demo { .. } | Command::Bench(BenchCommand::Load { .. })
    ) {
        "warn"
    } else {
        "info"
    };
    init_logging(format, default_level);
    match cli.command {
        Command::Version => unreachable!("handled above"),
        Command::Config => {
            print!("{}", config.render());
            Ok(ExitCode::SUCCESS)
        }
        Command::Amd {
            command:
                Some(AmdCommand::Serve {
                    ws,
                    audiosocket,
                    max_sessions,
                    no_model,
                    amd_config,
                }),
            ..
        } => {
            trunx::runtime::amd::serve::run_until_signal(
                trunx::runtime::amd::serve::ServeOptions {
                    ws,
                    audiosocket,
                    max_sessions: max_sessions as usize,
                    amd: load_amd_config(amd_config.as_deref())?,
                    model: model_unless(no_model, &config)?,
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Amd {
            command: None,
            file,
            json,
            jobs,
            no_model,
            amd_config,
        } => {
            let file = file.context("give a recording or a folder of recordings")?;
            let model = model_unless(no_model, &config)?;
            let amd_config = load_amd_config(amd_config.as_deref())?;
            if file.is_dir() {
                let jobs = jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                let stdout = std::io::stdout();
                let (n, failed) = trunx::runtime::amd::batch::run(
                    &file,
                    &amd_config,
                    model,
                    jobs,
                    json,
                    &mut stdout.lock(),
                )?;
                eprintln!("{n} recordings analysed, {failed} unreadable");
                return Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let pcm = amd_files::read_call_audio(&file)?;
            let (events, _) = analyse_recording(&pcm, &amd_config, model);
            if json {
                let out = serde_json::json!({
                    "file": file.display().to_string(),
                    "audio_ms": pcm.len() / 8,
                    "events": events.iter().map(amd_files::event_json).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{} ({} ms)", file.display(), pcm.len() / 8);
                for e in &events {
                    println!("  {}", amd_files::event_line(e));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(command) => cli::bench::run(command, &config),
        Command::Dnc(DncCommand::Import { file, list, json }) => {
            let store = server::open_store(&config)?;
            let (imported, parsed) = trunx::runtime::campaigns::dnc_import::import_file(
                store.as_ref(),
                &file,
                &list,
                trunx::runtime::clock::wall_ms(),
            )?;
            let report = trunx::api::compliance::import_report(&imported, &parsed);
            if json {
                println!("{report}");
            } else {
                println!(
                    "imported {} version {}: {} numbers from {} lines ({} ignored, {} malformed{}); {} queued prospects cancelled",
                    imported.list.name,
                    imported.list.version,
                    imported.list.count,
                    parsed.lines,
                    parsed.ignored,
                    parsed.malformed,
                    if parsed.malformed_lines.is_empty() {
                        String::new()
                    } else {
                        format!(", first at lines {:?}", parsed.malformed_lines)
                    },
                    imported.prospects_cancelled
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dnc(DncCommand::List) => {
            let store = server::open_store(&config)?;
            for l in store.dnc_lists() {
                println!(
                    "{}\tversion {}\t{} numbers\t{}",
                    l.name, l.version, l.count, l.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { json } => {
            trunx::tools::demo::run(json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CarrierSim(args) => {
            trunx::tools::carrier_sim::run_until_signal(&args, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Corpus { command } => {
            print!("{}", trunx::tools::corpus::cli::run(command)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { node_id } => {
            server::serve(&config, node_id.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Create { name }) => {
            let (record, key) = server::create_key(&config, &name)?;
            println!("created API key {} ({})", record.name, record.id);
            println!("store it now: it is shown only once");
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Revoke { name_or_id }) => {
            let record = server::revoke_key(&config, &name_or_id)?;
            println!("revoked API key {} ({})", record.name, record.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::List) => {
            for k in server::list_keys(&config)? {
                let state = if k.revoked_at_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{state}", k.id, k.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dial {
            target,
            from,
            trunk,
            user,
            password,
            ring_timeout,
            voicemail,
            agent_url,
            agent_sip_uri,
            json,
            no_model,
        } => {
            let model = model_unless(no_model, &config)?;
            let agent = match agent_sip_uri {
                Some(uri) => Some(trunx::runtime::call::agent_ws::AgentTarget {
                    sip_uri: Some(uri),
                    ..trunx::runtime::server::agent_defaults(&config)?
                }),
                None => trunx::runtime::server::agent_target(&config, agent_url)?,
            };
            // A configured trunk stays the next hop (an outbound proxy); with none, a full
            // `sip:USER@HOST[:PORT]` target is dialled directly.
            let trunk = trunk
                .or(config.trunk_uri.clone())
                .or_else(|| trunx::runtime::call::net::direct_next_hop(&target))
                .context(
                    "no trunk: pass --trunk sip:HOST:PORT, set TRUNX_TRUNK_URI, \
                     or dial a full sip:USER@HOST[:PORT] URI",
                )?;
            trunx::runtime::call::sip_tls::configure(trunx::runtime::call::sip_tls::TrunkTls {
                ca_file: config.trunk_tls_ca_file.clone(),
                srtp: config.trunk_srtp,
            });
            let options = trunx::runtime::call::dial::DialOptions {
                target,
                from,
                trunk,
                username: user.or(config.trunk_username.clone()),
                password: password.or(config
                    .trunk_password
                    .as_ref()
                    .map(|p| p.expose().to_string())),
                ring_timeout,
                sip_addr: config.sip_addr,
                rtp_ports: config.rtp_ports.clone(),
                send_pai: config.trunk_send_pai,
                voicemail: match &voicemail {
                    None => None,
                    // A URL is fetched and prepared exactly as at campaign start (egress policy,
                    // size cap, sniffing); `/audio/:id/file` comes from the configured store.
                    Some(url)
                        if url.starts_with("http://")
                            || url.starts_with("https://")
                            || url.starts_with("/audio/") =>
                    {
                        let store: std::sync::Arc<dyn trunx::store::Store> =
                            std::sync::Arc::from(trunx::runtime::server::open_store(&config)?);
                        let library = trunx::runtime::fetch::VoicemailLibrary::new(
                            trunx::runtime::fetch::FetchConfig::from_config(&config),
                            store,
                        )?;
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        Some(
                            rt.block_on(library.prepare(url))
                                .map_err(|e| anyhow::anyhow!("--voicemail {e}"))?,
                        )
                    }
                    Some(path) => Some(std::sync::Arc::new(trunx::audio::prompt::Prompt::load(
                        std::path::Path::new(path),
                        &trunx::audio::prompt::PromptOptions::default(),
                    )?)),
                },
                agent,
                campaign_id: None,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(async {
                // Ctrl-C hangs up gracefully instead of leaving the far end ringing.
                let stop = tokio_util::sync::CancellationToken::new();
                let on_signal = stop.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        on_signal.cancel();
                    }
                });
                // ACTIVE_AMD_PROVIDER=external: the call's audio also goes to the external
                // engine, whose decision stands unless it is late or fails.
                let external = trunx::runtime::call::amd_external::AmdEngines::from_config(&config)
                    .for_campaign(None, None);
                trunx::runtime::call::dial::dial_with_engine(
                    &options,
                    &AmdConfig::default(),
                    model,
                    external,
                    stop,
                )
                .await
            })?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} (SIP {}), AMD {} {} at {} ms, beep end {} ms, Call-ID {}",
                    report.outcome,
                    report
                        .sip_status
                        .map(|s| s.to_string())
                        .unwrap_or("-".into()),
                    report.amd.unwrap_or("-"),
                    report.amd_cause.as_deref().unwrap_or(""),
                    report.amd_ms.map(|m| m.to_string()).unwrap_or("-".into()),
                    report
                        .beep_end_ms
                        .map(|m| m.to_string())
                        .unwrap_or("-".into()),
                    report.call_id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_amd_config(path: Option<&std::path::Path>) -> Result<AmdConfig> {
    let Some(path) = path else {
        return Ok(AmdConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read AMD config {}", path.display()))?;
    Ok(AmdConfig::from_toml(&path.display().to_string(), &text)?)
}

fn model_unless(no_model: bool, config: &Config) -> Result<Option<BeepModel>> {
    if no_model {
        return Ok(None);
    }
    Ok(Some(amd_files::load_beep_model(
        config.ort_dylib_path.as_deref(),
        config.beep_model_path.as_deref(),
    )?))
}
