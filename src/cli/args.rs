//! The `trunx` command line's arguments (clap derive): every subcommand and option, with the
//! help text `trunx --help` prints, and the value parsers they need. It only describes and
//! parses arguments: it must not load the configuration, open a store or run anything (that is
//! `main.rs` and `bench`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "trunx",
    version,
    about = "Outbound dialer engine with in-process answering-machine detection"
)]
pub(crate) struct Cli {
    /// Optional TOML config file; environment variables (TRUNX_*) override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Log format (overrides TRUNX_LOG_FORMAT). Levels come from RUST_LOG (default info).
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
pub(crate) enum AmdCommand {
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
pub(crate) enum KeysCommand {
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
pub(crate) enum BenchProvider {
    Builtin,
    Asterisk,
}

#[derive(Subcommand, Debug)]
pub(crate) enum DncCommand {
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
pub(crate) enum BenchCommand {
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
