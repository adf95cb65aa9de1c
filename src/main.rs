//! The `trunx` command line: parses arguments, loads the configuration, sets up logging and
//! hands over to the library. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use trunx::config::{Config, LogFormat};

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
    /// Run the HTTP control API and the dialer.
    Serve,
    /// Run the main job on embedded defaults.
    Demo,
    /// Place one call through the trunk.
    Dial,
    /// Analyse recorded calls with the answering-machine detector.
    Amd,
    /// Benchmarks of whole pipelines.
    Bench,
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

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
    init_logging(format);
    match cli.command {
        Command::Version => unreachable!("handled above"),
        Command::Config => {
            print!("{}", config.render());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve | Command::Demo | Command::Dial | Command::Amd | Command::Bench => {
            eprintln!("error: this command is not built yet in this version of trunx");
            Ok(ExitCode::from(2))
        }
    }
}
