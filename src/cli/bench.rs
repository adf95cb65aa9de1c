//! `trunx bench`: runs the benchmark subcommands (AMD scoring, the whole dialer under load,
//! the control API, SIP call setups, DNC import, the AMD service's latency, and the feature
//! files the models are trained on) and prints their reports. It hands each one to the
//! library's bench code: it must not measure or score anything itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use trunx::amd::AmdConfig;
use trunx::config::Config;
use trunx::runtime::amd::files as amd_files;

use super::args::{BenchCommand, BenchProvider};
use crate::{load_amd_config, model_unless};

/// Runs one `trunx bench` subcommand with the loaded configuration.
pub(crate) fn run(command: BenchCommand, config: &Config) -> Result<ExitCode> {
    match command {
        BenchCommand::Amd {
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
        } => {
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
        BenchCommand::Load {
            calls,
            concurrent,
            cps,
            message,
            seed,
            no_model,
            nodes,
            json,
        } => {
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
        BenchCommand::Dnc { dir, lines, gzip } => {
            let report = trunx::runtime::campaigns::dnc_import::bench(&dir, lines, gzip)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Api {
            dir,
            runs,
            stats_reads,
        } => {
            let report = trunx::tools::api_bench::run(&dir, runs, stats_reads)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Sip {
            target,
            calls,
            cps,
            concurrent,
            local,
        } => {
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
        BenchCommand::GreetingFeatures { dirs, out } => {
            let dirs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
            let (calls, rows) = trunx::runtime::amd::training::write_greeting_features(
                &dirs,
                &AmdConfig::default(),
                &out,
            )?;
            eprintln!("wrote {}: {rows} rows of {calls} calls", out.display());
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::AmdServe {
            dir,
            calls,
            no_model,
        } => {
            let model = model_unless(no_model, config)?;
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
        BenchCommand::BeepFeatures { dirs, labels, out } => {
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
    }
}
