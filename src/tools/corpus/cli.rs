//! `trunx corpus ...`: the command line of the corpus generators (generator 1 in
//! [`super::ingredients`], generator 2 and the fixed splits in [`super::corpus2`]).
//!
//! Entry points: [`run_corpus_cli`] (argument list after `corpus`), or [`CorpusCommand`] +
//! [`run`] for embedding in a clap tree.

use std::path::PathBuf;

use crate::tools::corpus::corpus2;
use crate::tools::corpus::ingredients::{
    CorpusError, DEFAULT_MOH_DIR, DEFAULT_SOUNDS_DIR, GenerateOptions, GoldenOptions,
    IngredientSources, generate, golden,
};

/// `trunx corpus ...` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum CorpusCommand {
    /// Generate a labelled corpus of answered calls (WAV + labels.csv).
    Generate {
        /// Output directory (the espeak-ng cache goes in DIR/.ingredients); with --split the
        /// default is corpus/genG-SPLIT.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Which generator: 1 (the original) or 2 (the independent one, `corpus::gen2`).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        generator: u8,
        /// A fixed split (seed and count of `corpus::split`) instead of --seed/--count.
        #[arg(long, value_enum, conflicts_with_all = ["count", "seed"])]
        split: Option<crate::tools::corpus::split::Split>,
        /// Number of calls (default 320).
        #[arg(long)]
        count: Option<usize>,
        /// Seed (default 7); the same seed gives byte-identical output.
        #[arg(long)]
        seed: Option<u64>,
        /// Asterisk English prompts.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_SOUNDS_DIR)]
        sounds_dir: PathBuf,
        /// Asterisk music on hold.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_MOH_DIR)]
        moh_dir: PathBuf,
    },
    /// Copy a category-stratified subset of a corpus (for committing as golden calls).
    Golden {
        /// A directory written by `corpus generate`.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Destination, e.g. audio-fixtures/calls.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Byte budget for the copied WAVs.
        #[arg(long, default_value_t = 4_500_000)]
        max_bytes: u64,
        /// Most calls to copy.
        #[arg(long, default_value_t = 40)]
        max_files: usize,
    },
}

/// Standalone parser for the `corpus` subcommand's arguments.
#[derive(clap::Parser, Debug)]
#[command(
    name = "trunx corpus",
    about = "Generate the labelled answered-call corpus"
)]
pub struct CorpusCli {
    #[command(subcommand)]
    pub command: CorpusCommand,
}

/// Runs one corpus subcommand and returns the summary to print.
pub fn run(command: CorpusCommand) -> Result<String, CorpusError> {
    match command {
        CorpusCommand::Generate {
            out,
            generator,
            split,
            count,
            seed,
            sounds_dir,
            moh_dir,
        } => {
            use crate::tools::corpus::split::{Generator, default_dir};
            let generator = Generator::from_number(generator)
                .ok_or_else(|| CorpusError::Usage("--generator must be 1 or 2".into()))?;
            if let Some(split) = split {
                let out = out.unwrap_or_else(|| default_dir(generator, split).into());
                let mut sources = IngredientSources::system(&out);
                sources.sounds_dir = sounds_dir;
                sources.moh_dir = moh_dir;
                return corpus2::generate_split(generator, split, &out, sources);
            }
            let out = out.ok_or_else(|| {
                CorpusError::Usage("--out DIR is required without --split".into())
            })?;
            let mut sources = IngredientSources::system(&out);
            sources.sounds_dir = sounds_dir;
            sources.moh_dir = moh_dir;
            let opts = GenerateOptions {
                out,
                count: count.unwrap_or(320),
                seed: seed.unwrap_or(7),
                sources,
            };
            match generator {
                Generator::One => Ok(generate(&opts)?.to_string()),
                Generator::Two => Ok(corpus2::generate2(&opts)?.to_string()),
            }
        }
        CorpusCommand::Golden {
            from,
            out,
            max_bytes,
            max_files,
        } => Ok(golden(&GoldenOptions {
            from,
            out,
            max_bytes,
            max_files,
        })?
        .to_string()),
    }
}

/// `trunx corpus <args>`: `args` are the words after `corpus`, e.g.
/// `["generate", "--out", "corpus"]`. Prints the summary on success.
pub fn run_corpus_cli(args: &[String]) -> Result<(), String> {
    use clap::Parser;
    let argv = std::iter::once("trunx corpus".to_string()).chain(args.iter().cloned());
    let cli = match CorpusCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version: print and succeed.
            print!("{e}");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    let summary = run(cli.command).map_err(|e| e.to_string())?;
    print!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_usage_errors_are_reported() {
        let err = run_corpus_cli(&["generate".to_string()]).unwrap_err();
        assert!(err.contains("--out"), "{err}");
    }
}
