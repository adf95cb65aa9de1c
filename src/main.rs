//! The `trunx` command line: parses arguments, loads the configuration, sets up logging and
//! hands over to the library. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use trunx::amd::{AmdConfig, BeepModel, analyse_recording};
use trunx::config::{Config, LogFormat};
use trunx::runtime::amd::files as amd_files;
use trunx::runtime::server;

#[derive(Parser, Debug)]
#[command(
    name = "trunx",
    version,
    about = "Outbound dialer engine with in-process answering-machine detection"
)]
struct Cli {
    /// Optional TOML config file; environment variables (TRUNX_*) override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format (overrides TRUNX_LOG_FORMAT). Levels come from RUST_LOG (default info).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the version.
    Version,
    /// Print the effective configuration (secrets masked) and where each value came from.
    Config,
    /// Run the HTTP control API (address TRUNX_API_ADDR, store TRUNX_DATABASE_URL) until
    /// Ctrl-C or SIGTERM. Several nodes share one PostgreSQL store (`postgres://...`).
    Serve {
        /// This node's id among the nodes sharing the store (default: the host name).
        #[arg(long, env = "TRUNX_NODE_ID")]
        node_id: Option<String>,
    },
    /// Manage API keys (stored only as SHA-256 hashes).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Do-not-call lists in the configured store.
    #[command(subcommand)]
    Dnc(DncCommand),
    /// Run the main job on embedded defaults: a whole voice campaign against the simulated
    /// carrier, driven through the control API.
    Demo {
        /// Print only one final JSON object: {"stats": {...}, "amd_accuracy": x, "calls": n}.
        #[arg(long)]
        json: bool,
    },
    /// Place one call through the trunk.
    Dial {
        /// Number (E.164) or SIP URI to call.
        target: String,
        /// Caller ID (E.164) sent in From.
        #[arg(long)]
        from: String,
        /// Trunk URI, e.g. sip:127.0.0.1:5070 (default: the configured trunk_uri, else the host
        /// of a full sip:USER@HOST[:PORT] target).
        #[arg(long)]
        trunk: Option<String>,
        /// Digest username (default: the configured trunk_username).
        #[arg(long)]
        user: Option<String>,
        /// Digest password (default: the configured trunk_password).
        #[arg(long)]
        password: Option<String>,
        /// Ring timeout before CANCEL, e.g. 30s.
        #[arg(long, default_value = "30s", value_parser = parse_seconds)]
        ring_timeout: std::time::Duration,
        /// Message to play after the beep (machine) or at once (person): an audio file, an
        /// http(s) URL (fetched within the egress policy, like `voicemailAudioUrl`) or an
        /// `/audio/ID/file` asset of the configured store.
        #[arg(long, value_name = "FILE_OR_URL")]
        voicemail: Option<String>,
        /// Bridge a person to this AI agent (ws:// or wss://, Twilio Media Streams protocol).
        #[arg(long, value_name = "URL", conflicts_with = "agent_sip_uri")]
        agent_url: Option<String>,
        /// Bridge a person to this SIP agent instead (sip:agent@host[:port]): a second call
        /// placed at `human`, media relayed between the two.
        #[arg(long, value_name = "SIP_URI")]
        agent_sip_uri: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Confirm beeps with the fixed rules instead of the ONNX model.
        #[arg(long)]
        no_model: bool,
    },
    /// Analyse a recorded call (any audio file), or every WAV of a folder, with the
    /// answering-machine detector; `trunx amd serve` serves the detector to other systems.
    #[command(args_conflicts_with_subcommands = true)]
    Amd {
        #[command(subcommand)]
        command: Option<AmdCommand>,
        /// A recording, or a folder of WAV recordings (one line per file, in name order).
        #[arg(required = true)]
        file: Option<PathBuf>,
        /// One JSON object with the events (a folder: one object per line).
        #[arg(long)]
        json: bool,
        /// Files analysed at once for a folder (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Confirm beeps with the fixed rules instead of the ONNX model.
        #[arg(long)]
        no_model: bool,
        /// TOML file overriding AMD thresholds (field names of AmdConfig).
        #[arg(long, value_name = "FILE")]
        amd_config: Option<PathBuf>,
    },
    /// Benchmarks of whole pipelines.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the simulated carrier (a SIP UAS answering with the bundled recorded calls) until
    /// SIGINT or SIGTERM; prints its counters as JSON on exit.
    CarrierSim(trunx::tools::carrier_sim::CarrierSimArgs),
    /// Generate the labelled call corpus the AMD is measured on (seeded, deterministic).
    Corpus {
        #[command(subcommand)]
        command: trunx::tools::corpus::cli::CorpusCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AmdCommand {
    /// Serve the built-in detector until SIGINT/SIGTERM: the trunx AMD stream protocol and a
    /// FreeSWITCH mod_audio_stream/mod_audio_fork path over WebSocket, Asterisk AudioSocket
    /// over TCP, and GET /amd/v1/result/{uuid}.
    Serve {
        /// WebSocket + HTTP address (/amd/v1/stream, /freeswitch, /amd/v1/result/{uuid}).
        #[arg(long, default_value = "127.0.0.1:9310")]
        ws: std::net::SocketAddr,
        /// AudioSocket (TCP) address.
        #[arg(long, default_value = "127.0.0.1:9311")]
        audiosocket: std::net::SocketAddr,
        /// Sessions analysed at once (all paths); more are refused.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        max_sessions: u32,
        /// Confirm beeps with the fixed rules instead of the ONNX model.
        #[arg(long)]
        no_model: bool,
        /// TOML file overriding AMD thresholds (field names of AmdConfig).
        #[arg(long, value_name = "FILE")]
        amd_config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line of stdout.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke the active key with this name or id.
    Revoke { name_or_id: String },
    /// List keys (names, ids and dates; never the keys).
    List,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchProvider {
    Builtin,
    Asterisk,
}

#[derive(Subcommand, Debug)]
enum DncCommand {
    /// Import a DNC file (one E.164 or 10-digit NANP number a line, plain or gzip) as the next
    /// version of a list; queued prospects on it are cancelled with reason `dnc`.
    Import {
        file: PathBuf,
        /// The list's name, e.g. `national` or `internal`.
        #[arg(long)]
        list: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The list versions in force.
    List,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Import a generated DNC file of --lines random numbers into a fresh database and time
    /// it, the load at open and store lookups.
    Dnc {
        /// Directory for the temporary file and database (removed afterwards).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        lines: u64,
        /// Write the file gzip-compressed.
        #[arg(long)]
        gzip: bool,
    },
    /// Replay a directory of labelled calls (WAV + labels.csv) through the AMD and score it.
    Amd {
        /// Directory of calls; with --split, where the split is (default corpus/genG-SPLIT).
        dir: Option<PathBuf>,
        /// Score a fixed split (generated first unless DIR already holds exactly it).
        #[arg(long, value_enum)]
        split: Option<trunx::tools::corpus::split::Split>,
        /// Generator of the split: 1 or 2.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
        generator: u8,
        /// Engine: the built-in detector or the port of Asterisk's app_amd (amd.conf defaults).
        #[arg(long, value_enum, default_value = "builtin")]
        provider: BenchProvider,
        /// Labels file (default DIR/labels.csv): file,truth,beep_start_ms,beep_end_ms[,notes]
        #[arg(long)]
        labels: Option<PathBuf>,
        /// One JSON object with the figures.
        #[arg(long)]
        json: bool,
        /// No ONNX model: the beep rules confirm beeps and the greeting rules judge.
        #[arg(long)]
        no_model: bool,
        /// Let the greeting rules alone judge (the greeting model, on by default, is not run).
        #[arg(long, conflicts_with = "with_greeting_model")]
        no_greeting_model: bool,
        /// Let the greeting model judge even if the AMD config turns it off.
        #[arg(long)]
        with_greeting_model: bool,
        /// A greeting model file instead of the embedded one (e.g. a cross-generator model);
        /// implies --with-greeting-model.
        #[arg(long, value_name = "FILE")]
        greeting_model: Option<PathBuf>,
        /// TOML file overriding AMD thresholds (field names of AmdConfig).
        #[arg(long, value_name = "FILE")]
        amd_config: Option<PathBuf>,
        /// Also list every call: truth, events, causes, labelled and reported beep.
        #[arg(long)]
        per_call: bool,
    },
    /// The control API in-process on a fresh SQLite file: 10,000 prospects in one request,
    /// then stats reads (latency percentiles).
    Api {
        /// Directory for the temporary database (removed afterwards).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// How many 10,000-prospect requests.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// How many stats reads.
        #[arg(long, default_value_t = 10_000)]
        stats_reads: usize,
    },
    /// The whole dialer against `trunx carrier-sim` in a separate process: every call answered
    /// with a recorded human or voicemail, analysed, and given the message.
    Load {
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        /// Most calls at once (the node's trunk limit for the run).
        #[arg(long, default_value_t = 1000)]
        concurrent: u32,
        /// New calls per second (default: enough to reach --concurrent).
        #[arg(long)]
        cps: Option<f64>,
        /// The message played on every call (its length sets how long calls last).
        #[arg(long, default_value = "audio-fixtures/prompts/voicemail-10s.mp3")]
        message: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Confirm beeps with the fixed rules instead of the ONNX model.
        #[arg(long)]
        no_model: bool,
        /// With N > 1: the same load on SQLite x 1, PostgreSQL x 1 and PostgreSQL x N nodes
        /// (a throwaway PostgreSQL from the Debian package), side by side; --concurrent is
        /// per node.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
        nodes: u8,
        /// With --nodes: JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Call setups per second against a real UAS (no media): each call is hung up on answer.
    Sip {
        /// The UAS, e.g. sip:127.0.0.1:5070 or 127.0.0.1:5070.
        #[arg(long)]
        target: String,
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        #[arg(long, default_value_t = 100.0)]
        cps: f64,
        #[arg(long, default_value_t = 1000)]
        concurrent: usize,
        /// Local SIP address (default: the configured sip_addr).
        #[arg(long)]
        local: Option<std::net::SocketAddr>,
    },
    /// Write the greeting model's training set (a cue row per 100 ms of labelled calls).
    GreetingFeatures {
        /// Directories of labelled calls; each directory's name is its rows' `set`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Decision latency of the detector in-process and through `trunx amd serve` (WebSocket,
    /// AudioSocket, FreeSWITCH path), every recording of DIR streamed at its real pace.
    AmdServe {
        #[arg(default_value = "audio-fixtures/calls")]
        dir: PathBuf,
        /// Recordings used at most (all at once).
        #[arg(long, default_value_t = 40)]
        calls: usize,
        /// Confirm beeps with the fixed rules instead of the ONNX model.
        #[arg(long)]
        no_model: bool,
    },
    /// Write the beep model's training set (tone candidates of labelled calls) as CSV.
    BeepFeatures {
        /// One or more labelled corpus directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// A labels file replacing the directory's own (only with a single directory).
        #[arg(long)]
        labels: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

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
        Command::Bench(BenchCommand::Amd {
            dir,
            split,
            generator,
            provider,
            labels,
            json,
            no_model,
            no_greeting_model,
            with_greeting_model,
            greeting_model,
            amd_config,
            per_call,
        }) => {
            let dir = match split {
                Some(split) => {
                    let generator = trunx::tools::corpus::split::Generator::from_number(generator)
                        .context("--generator must be 1 or 2")?;
                    let (dir, generated) = trunx::tools::corpus::corpus2::ensure_split(
                        generator,
                        split,
                        dir.as_deref(),
                    )?;
                    if let Some(summary) = generated {
                        eprint!("{summary}");
                    }
                    dir
                }
                None => dir.context("give a directory of labelled calls, or --split")?,
            };
            let engine = match provider {
                BenchProvider::Builtin => {
                    let model = if no_model {
                        None
                    } else {
                        let model = amd_files::load_models(
                            config.ort_dylib_path.as_deref(),
                            config.beep_model_path.as_deref(),
                            greeting_model.as_deref(),
                        )?;
                        Some(if no_greeting_model {
                            model.without_greeting()
                        } else {
                            model
                        })
                    };
                    let mut amd = load_amd_config(amd_config.as_deref())?;
                    if with_greeting_model || greeting_model.is_some() {
                        amd.greeting_model = true;
                    }
                    if no_greeting_model {
                        amd.greeting_model = false;
                    }
                    amd_files::Engine::Builtin { config: amd, model }
                }
                BenchProvider::Asterisk => {
                    amd_files::Engine::Asterisk(trunx::amd::asterisk::AsteriskConfig::default())
                }
            };
            let (report, outcomes) = amd_files::bench_dir_with(&dir, labels.as_deref(), &engine)?;
            if per_call {
                for o in &outcomes {
                    let ok = if o.predicted() == o.label.truth {
                        " "
                    } else {
                        "X"
                    };
                    let beep = o
                        .label
                        .beep_ms
                        .map(|(s, e)| format!("label beep {s}-{e}"))
                        .unwrap_or_default();
                    let events: Vec<String> = o
                        .events
                        .iter()
                        .map(|e| {
                            amd_files::event_line(e)
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .collect();
                    eprintln!(
                        "{ok} {} [{}] {beep} | {}",
                        o.label.file,
                        o.label.notes,
                        events.join(" | ")
                    );
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", trunx::amd::bench::render_table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Load {
            calls,
            concurrent,
            cps,
            message,
            seed,
            no_model,
            nodes,
            json,
        }) => {
            use trunx::tools::load_bench;
            let opts = load_bench::LoadOptions {
                calls,
                concurrent,
                cps,
                message,
                seed,
                no_model,
                nodes: usize::from(nodes),
            };
            if nodes > 1 {
                let runs = load_bench::run_compared(&opts)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&runs)?);
                } else {
                    print!("{}", load_bench::render_table(&runs));
                }
            } else {
                let report = load_bench::run(&opts)?;
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(ExitCode::SUCCESS)
        }
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
        Command::Bench(BenchCommand::Dnc { dir, lines, gzip }) => {
            let report = trunx::runtime::campaigns::dnc_import::bench(&dir, lines, gzip)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Api {
            dir,
            runs,
            stats_reads,
        }) => {
            let report = trunx::tools::api_bench::run(&dir, runs, stats_reads)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Sip {
            target,
            calls,
            cps,
            concurrent,
            local,
        }) => {
            let target_addr = target
                .trim_start_matches("sip:")
                .parse()
                .with_context(|| format!("--target {target:?}: expected sip:IP:PORT"))?;
            let options = trunx::tools::sip_bench::SipBenchOptions {
                target: target_addr,
                local: local.unwrap_or(config.sip_addr),
                calls,
                cps,
                concurrent,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(trunx::tools::sip_bench::run(&options))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::GreetingFeatures { dirs, out }) => {
            let dirs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
            let (calls, rows) = trunx::runtime::amd::training::write_greeting_features(
                &dirs,
                &AmdConfig::default(),
                &out,
            )?;
            eprintln!("wrote {}: {rows} rows of {calls} calls", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::AmdServe {
            dir,
            calls,
            no_model,
        }) => {
            let model = model_unless(no_model, &config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(trunx::tools::amd_serve_bench::run(
                &dir,
                calls,
                AmdConfig::default(),
                model,
            ))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::BeepFeatures { dirs, labels, out }) => {
            if labels.is_some() && dirs.len() > 1 {
                anyhow::bail!(
                    "--labels applies to a single directory, {} given",
                    dirs.len()
                );
            }
            let (pos, neg) =
                amd_files::write_features(&dirs, labels.as_deref(), &AmdConfig::default(), &out)?;
            eprintln!(
                "wrote {}: {pos} beep and {neg} non-beep candidates",
                out.display()
            );
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

/// Durations like "30s", "1500ms" or "2m".
fn parse_seconds(v: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = v
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| v.split_at(i))
        .unwrap_or((v, "s"));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {v:?}"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit in {v:?}: use ms, s or m")),
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
