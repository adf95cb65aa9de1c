//! Where the per-call AMD records live on disk: `DIR/ATTEMPT.ulaw` (8 kHz u-law, at most
//! 10 s) and `DIR/ATTEMPT.json` (the trace), written when the attempt ends; only the newest
//! `amd_record_keep` calls are kept, so the disk used is bounded (about 80 KB + 10 KB a call).

use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::call::amd_record::AmdRecord;

/// The record directory and how many calls it keeps.
#[derive(Debug)]
pub struct AmdRecordStore {
    dir: PathBuf,
    keep: usize,
}

/// Attempt ids are `att_` + letters and digits; anything else is never a file name here.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the call's attempt row says about the decision, saved beside the trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decision<'a> {
    pub amd_result: Option<&'a str>,
    pub amd_ms: Option<i64>,
    pub outcome: Option<&'a str>,
}

impl AmdRecordStore {
    /// Creates the directory if needed.
    pub fn new(dir: PathBuf, keep: usize) -> io::Result<AmdRecordStore> {
        std::fs::create_dir_all(&dir)?;
        Ok(AmdRecordStore {
            dir,
            keep: keep.max(1),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Writes one call's record (each file through a temporary name and a rename, so a
    /// reader never sees half a file), then drops the oldest calls beyond `keep`.
    pub fn save(&self, attempt_id: &str, d: Decision<'_>, rec: &AmdRecord) -> io::Result<()> {
        if !valid_id(attempt_id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad attempt id",
            ));
        }
        let trace = json!({
            "attemptId": attempt_id,
            "amdResult": d.amd_result,
            "amdMs": d.amd_ms,
            "outcome": d.outcome,
            "sampleRate": rec.trace.sample_rate,
            "blockMs": rec.trace.block_ms,
            "audioMs": rec.trace.audio_ms,
            "points": rec.trace.points,
            "events": rec.trace.events,
        });
        write_atomic(&self.path(attempt_id, "ulaw"), &rec.ulaw)?;
        write_atomic(&self.path(attempt_id, "json"), trace.to_string().as_bytes())?;
        self.prune()
    }

    fn prune(&self) -> io::Result<()> {
        let mut traces: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if traces.len() <= self.keep {
            return Ok(());
        }
        traces.sort();
        let excess = traces.len() - self.keep;
        for (_, path) in traces.into_iter().take(excess) {
            let _ = std::fs::remove_file(path.with_extension("ulaw"));
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// The trace JSON of an attempt, if kept.
    pub fn trace(&self, attempt_id: &str) -> io::Result<Option<Vec<u8>>> {
        if !valid_id(attempt_id) {
            return Ok(None);
        }
        read_optional(&self.path(attempt_id, "json"))
    }

    /// The recording of an attempt as a 16-bit PCM WAV (8 kHz mono), if kept.
    pub fn wav(&self, attempt_id: &str) -> io::Result<Option<Vec<u8>>> {
        if !valid_id(attempt_id) {
            return Ok(None);
        }
        let Some(ulaw) = read_optional(&self.path(attempt_id, "ulaw"))? else {
            return Ok(None);
        };
        let mut out = io::Cursor::new(Vec::with_capacity(44 + ulaw.len() * 2));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).map_err(io::Error::other)?;
        for &c in &ulaw {
            w.write_sample(crate::audio::g711::ulaw_decode(c))
                .map_err(io::Error::other)?;
        }
        w.finalize().map_err(io::Error::other)?;
        Ok(Some(out.into_inner()))
    }
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::amd_record::AmdRecorder;

    #[test]
    fn records_are_saved_read_back_as_wav_and_pruned_to_the_newest() {
        let dir = std::env::temp_dir().join(format!("trunx-amdrec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = AmdRecordStore::new(dir.clone(), 2).unwrap();
        let mut r = AmdRecorder::new();
        for _ in 0..10 {
            r.push_frame(&[1000; 160], true, None);
        }
        let rec = r.finish();
        for (i, id) in ["att_a", "att_b", "att_c"].into_iter().enumerate() {
            store
                .save(
                    id,
                    Decision {
                        amd_result: Some("human"),
                        amd_ms: Some(120),
                        outcome: Some("humanConnected"),
                    },
                    &rec,
                )
                .unwrap();
            // Distinct ages without sleeping: a is the oldest.
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            for ext in ["json", "ulaw"] {
                let f = std::fs::File::options()
                    .write(true)
                    .open(dir.join(format!("{id}.{ext}")))
                    .unwrap();
                f.set_modified(when).unwrap();
            }
        }
        assert!(
            store.trace("att_a").unwrap().is_none(),
            "the oldest is pruned"
        );
        let t: serde_json::Value =
            serde_json::from_slice(&store.trace("att_c").unwrap().unwrap()).unwrap();
        assert_eq!(t["amdMs"], 120);
        assert_eq!(t["audioMs"], 200);
        assert_eq!(t["points"].as_array().unwrap().len(), 2);
        let wav = store.wav("att_b").unwrap().unwrap();
        let reader = hound::WavReader::new(io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.len(), 1600);
        assert!(store.trace("../etc/passwd").unwrap().is_none());
        assert!(store.save("../x", Decision::default(), &rec).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
