//! `cargo run --release --example corpus -- generate --out /tmp/corpus` runs the corpus
//! generator without the main binary (`trunx corpus ...` does the same).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match trunx::runtime::ingredients::run_corpus_cli(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
