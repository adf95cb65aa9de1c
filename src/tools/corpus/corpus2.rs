//! Generator 2's I/O (`trunx corpus generate --generator 2`) and the fixed splits both
//! generators are benchmarked on (`trunx bench amd --split test`): loads the music and runs
//! espeak-ng for generator 2's script (cached in DIR/.ingredients), writes the calls,
//! `labels.csv`, `LICENSES.md` and a stamp naming the generator, seed and count, so a split
//! directory is reused only when it holds exactly that split.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::audio::wav::write_telephone_wav;
use crate::tools::corpus::gen2::{self, Gen2, Ingredients2};
use crate::tools::corpus::ingredients::{
    CorpusError, GenerateOptions, IngredientSources, TtsStats, generate, io_err, load_music,
    synthesise_all, write_text,
};
use crate::tools::corpus::labels;
use crate::tools::corpus::split::{Generator, Split, default_dir, split_plan};

/// Bump when generator 1's output (calls or labels) changes, so stale split directories are
/// regenerated.
pub const GEN1_REVISION: u32 = 2;
/// The same for generator 2.
pub const GEN2_REVISION: u32 = 3;
/// Name of the stamp file in a generated directory.
pub const STAMP: &str = "CORPUS_STAMP";

/// What `generate2` did.
#[derive(Clone, Debug)]
pub struct Generate2Report {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    pub per_kind: BTreeMap<&'static str, usize>,
    pub humans: usize,
    pub audio_seconds: f64,
    pub tts: TtsStats,
    /// Seconds to load the ingredients (music decoding, espeak-ng or its cache).
    pub load_seconds: f64,
    /// Seconds to make and write the calls.
    pub generate_seconds: f64,
}

impl fmt::Display for Generate2Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generator 2: wrote {} calls ({} human, {} machine; {:.0} s of audio) to {} with seed {}; ingredients {:.1} s, calls {:.1} s ({:.0}x realtime)",
            self.count,
            self.humans,
            self.count - self.humans,
            self.audio_seconds,
            self.out.display(),
            self.seed,
            self.load_seconds,
            self.generate_seconds,
            self.audio_seconds / self.generate_seconds.max(1e-9)
        )?;
        writeln!(
            f,
            "espeak-ng lines: {} from cache, {} synthesised",
            self.tts.cached, self.tts.synthesised
        )?;
        for (k, n) in &self.per_kind {
            writeln!(f, "  {k:<20} {n}")?;
        }
        Ok(())
    }
}

/// Loads generator 2's ingredients: the music tracks and its espeak-ng lines.
pub fn load_ingredients2(src: &IngredientSources) -> Result<(Ingredients2, TtsStats), CorpusError> {
    let music = load_music(src)?.into_iter().map(|(_, m)| m).collect();
    let (tts, stats) = synthesise_all(&gen2::script::tts_requests(), src)?;
    Ok((Ingredients2 { music, tts }, stats))
}

/// Generates `count` generator-2 calls into `out`.
pub fn generate2(opts: &GenerateOptions) -> Result<Generate2Report, CorpusError> {
    let started = crate::runtime::clock::now();
    std::fs::create_dir_all(&opts.out).map_err(io_err(&opts.out))?;
    let (ingredients, tts) = load_ingredients2(&opts.sources)?;
    let g = Gen2::new(&ingredients)?;
    drop(ingredients);
    let load_seconds = crate::runtime::clock::seconds_since(started);
    let made = crate::runtime::clock::now();
    let plan = gen2::plan(opts.count, opts.seed);
    let mut all = Vec::with_capacity(plan.len());
    let mut per_kind = BTreeMap::new();
    let mut samples = 0usize;
    for (index, kind) in plan.iter().enumerate() {
        let call = g.call(opts.seed, index, *kind);
        write_telephone_wav(&opts.out.join(&call.label.file), &call.pcm)?;
        samples += call.pcm.len();
        *per_kind.entry(kind.name()).or_default() += 1;
        all.push(call.label);
    }
    let keep: BTreeSet<String> = all.iter().map(|l| l.file.clone()).collect();
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&opts.out).map_err(io_err(&opts.out))? {
        let name = entry
            .map_err(io_err(&opts.out))?
            .file_name()
            .to_string_lossy()
            .to_string();
        if gen2::is_call_file(&name) && !keep.contains(&name) {
            stale.push(opts.out.join(name));
        }
    }
    for path in stale {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    write_text(&opts.out.join("labels.csv"), &labels::to_csv(&all))?;
    write_text(&opts.out.join("LICENSES.md"), &licenses2())?;
    let humans = all
        .iter()
        .filter(|l| l.truth == crate::amd::bench::Truth::Human)
        .count();
    Ok(Generate2Report {
        out: opts.out.clone(),
        count: all.len(),
        seed: opts.seed,
        per_kind,
        humans,
        audio_seconds: samples as f64 / 8000.0,
        tts,
        load_seconds,
        generate_seconds: crate::runtime::clock::seconds_since(made),
    })
}

fn stamp(generator: Generator, seed: u64, count: usize) -> String {
    let rev = match generator {
        Generator::One => GEN1_REVISION,
        Generator::Two => GEN2_REVISION,
    };
    format!(
        "generator={} seed={seed} count={count} revision={rev}\n",
        generator.number()
    )
}

/// The directory of a split, generated first unless it already holds exactly that split
/// (same stamp). Returns the directory and, when it generated, the generator's summary.
pub fn ensure_split(
    generator: Generator,
    split: Split,
    dir: Option<&Path>,
) -> Result<(PathBuf, Option<String>), CorpusError> {
    let (seed, count) = split_plan(generator, split);
    let out = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_dir(generator, split).into());
    let want = stamp(generator, seed, count);
    let have = std::fs::read_to_string(out.join(STAMP)).unwrap_or_default();
    if have == want && out.join("labels.csv").is_file() {
        return Ok((out, None));
    }
    let sources = IngredientSources::system(&out);
    let summary = generate_split(generator, split, &out, sources)?;
    Ok((out, Some(summary)))
}

/// Generates a split into `out` and stamps the directory; returns the summary.
pub fn generate_split(
    generator: Generator,
    split: Split,
    out: &Path,
    sources: IngredientSources,
) -> Result<String, CorpusError> {
    let (seed, count) = split_plan(generator, split);
    let opts = GenerateOptions {
        out: out.to_path_buf(),
        count,
        seed,
        sources,
    };
    // A stale stamp must not outlive a failed run.
    let _ = std::fs::remove_file(out.join(STAMP));
    let summary = match generator {
        Generator::One => generate(&opts)?.to_string(),
        Generator::Two => generate2(&opts)?.to_string(),
    };
    write_text(&out.join(STAMP), &stamp(generator, seed, count))?;
    Ok(summary)
}

/// `LICENSES.md` for a directory of generator-2 calls.
pub fn licenses2() -> String {
    r#"# Licences of the generated calls (generator 2)

Every WAV file here is a synthetic answered call made by `trunx corpus generate --generator 2`
(deterministic, seeded; see `src/tools/corpus/gen2/`).

| Ingredient | Source | Licence |
|---|---|---|
| Music beds: `macroform-*`, `manolo_camp-morning_coffee`, `reno_project-system` | Asterisk MOH "opsound" (Debian package `asterisk-moh-opsound-wav`) by Paul Shuler (Macroform), Manolo Camp and Reno Project | CC-BY-SA-3.0 |
| Synthetic speech | generated with eSpeak NG (GPL-3.0-or-later); texts are trunx's own (`src/tools/corpus/gen2/script.rs`) | audio output of the program |
| Beeps, tones, noise, line effects | `src/tools/corpus/gen2/` | Apache-2.0 (as trunx) |

Because they contain CC-BY-SA-3.0 music, the calls and `labels.csv` are distributed under the
Creative Commons Attribution-ShareAlike 3.0 licence. Attribution: "music by Macroform, Manolo
Camp and Reno Project (Asterisk opsound MOH); mixed into synthetic calls by the trunx project".
"#
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_split_directory_is_reused_and_a_wrong_stamp_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("labels.csv"),
            "file,truth,beep_start_ms,beep_end_ms\n",
        )
        .unwrap();
        let (seed, count) = split_plan(Generator::Two, Split::Dev);
        std::fs::write(d.join(STAMP), stamp(Generator::Two, seed, count)).unwrap();
        let (out, generated) = ensure_split(Generator::Two, Split::Dev, Some(d)).unwrap();
        assert_eq!((out.as_path(), generated), (d, None));
        // Another split's stamp is not reused: it regenerates, which fails here on purpose
        // (no music directory), and the stale stamp is gone.
        std::fs::write(d.join(STAMP), stamp(Generator::Two, seed + 1, count)).unwrap();
        let mut src = IngredientSources::system(d);
        src.moh_dir = d.join("no-music");
        let err = generate_split(Generator::Two, Split::Dev, d, src).unwrap_err();
        assert!(err.to_string().contains("music"), "{err}");
        assert!(!d.join(STAMP).exists());
    }
}
