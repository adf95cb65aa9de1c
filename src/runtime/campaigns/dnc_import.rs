//! `trunx dnc import FILE --list NAME` and `trunx bench dnc`: a do-not-call file read (plain or
//! gzip) and imported into the configured store, and the same path timed on a generated file.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::campaign::dnc::{self, DncParse, DncReadError};
use crate::runtime::clock::os_random;
use crate::store::{DncImported, SqliteStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DncImportError {
    #[error("invalid list name: {0}")]
    Name(String),
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] DncReadError),
    #[error("no valid number in {lines} lines ({malformed} malformed)")]
    Empty { lines: u64, malformed: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the benchmark file: {0}")]
    Write(std::io::Error),
}

/// Reads `path` (plain or gzip) and imports it into `store` as the next version of `list`.
pub fn import_file(
    store: &dyn Store,
    path: &Path,
    list: &str,
    now_ms: i64,
) -> Result<(DncImported, DncParse), DncImportError> {
    dnc::validate_list_name(list).map_err(|e| DncImportError::Name(e.message))?;
    let file = std::fs::File::open(path).map_err(|source| DncImportError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let mut parsed = dnc::read(
        std::io::BufReader::with_capacity(1 << 16, file),
        dnc::MAX_NUMBERS,
    )?;
    if parsed.numbers.is_empty() {
        return Err(DncImportError::Empty {
            lines: parsed.lines,
            malformed: parsed.malformed,
        });
    }
    let numbers = std::mem::take(&mut parsed.numbers);
    let imported = store.import_dnc(list, &numbers, "cli", now_ms)?;
    Ok((imported, parsed))
}

/// `trunx bench dnc`: writes `lines` random NANP numbers (10-digit, one a line) to a file in
/// `dir`, imports it into a fresh database there, reopens the database (the load at start) and
/// times lookups; everything it wrote is removed afterwards.
pub fn bench(dir: &Path, lines: u64, gzip: bool) -> Result<Value, DncImportError> {
    let tag = u64::from_le_bytes(os_random::<8>().map_err(DncImportError::Write)?);
    let list_path = dir.join(format!("trunx-dnc-{tag:016x}.txt"));
    let db_path = dir.join(format!("trunx-dnc-{tag:016x}.db"));
    let result = bench_on(&list_path, &db_path, lines, gzip);
    let _ = std::fs::remove_file(&list_path);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    result
}

fn bench_on(
    list_path: &Path,
    db_path: &Path,
    lines: u64,
    gzip: bool,
) -> Result<Value, DncImportError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut sample = Vec::with_capacity(1000);
    {
        let file = std::fs::File::create(list_path).map_err(DncImportError::Write)?;
        let mut out: Box<dyn Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                std::io::BufWriter::new(file),
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(std::io::BufWriter::new(file))
        };
        for i in 0..lines {
            // A valid NANP number: NPA and NXX start with 2-9.
            let n: u64 = rng.random_range(200..=999u64) * 10_000_000
                + rng.random_range(200..=999u64) * 10_000
                + rng.random_range(0..=9_999u64);
            if i % (lines / 1000).max(1) == 0 && sample.len() < 1000 {
                sample.push(format!("+1{n}"));
            }
            writeln!(out, "{n}").map_err(DncImportError::Write)?;
        }
        out.flush().map_err(DncImportError::Write)?;
    }
    let bytes = std::fs::metadata(list_path).map_or(0, |m| m.len());
    let store = SqliteStore::open(db_path, 1)?;
    let started = crate::runtime::clock::now();
    let (imported, parsed) = import_file(&store, list_path, "bench", 0)?;
    let import_s = crate::runtime::clock::seconds_since(started);
    drop(store);
    let started = crate::runtime::clock::now();
    let store = SqliteStore::open(db_path, 2)?;
    let load_s = crate::runtime::clock::seconds_since(started);
    let started = crate::runtime::clock::now();
    let mut hits = 0u64;
    let rounds = 1000u64;
    for _ in 0..rounds {
        for p in &sample {
            hits += u64::from(store.dnc_hit(p).is_some());
        }
    }
    let lookup_ns = crate::runtime::clock::seconds_since(started) * 1e9
        / (rounds * sample.len() as u64).max(1) as f64;
    Ok(json!({
        "lines": parsed.lines,
        "malformed": parsed.malformed,
        "numbers": imported.list.count,
        "fileBytes": bytes,
        "gzip": gzip,
        "importSeconds": (import_s * 1000.0).round() / 1000.0,
        "numbersPerSecond": (imported.list.count as f64 / import_s).round(),
        "loadAtOpenSeconds": (load_s * 1000.0).round() / 1000.0,
        "storeLookupNs": (lookup_ns * 10.0).round() / 10.0,
        "sampleHits": hits / rounds,
        "sampleSize": sample.len(),
    }))
}
