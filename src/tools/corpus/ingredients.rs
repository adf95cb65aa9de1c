//! The corpus generator's I/O: loads the Asterisk prompts and music, runs espeak-ng (with an
//! on-disk cache), feeds the pure [`crate::tools::corpus`] generator and writes the calls,
//! `labels.csv` and `LICENSES.md`; also copies a golden subset for the repository.
//!
//! Everything here is deterministic for a given seed: directory listings are sorted, the
//! espeak-ng cache is keyed by a hash of voice, arguments and text, and nothing depends on
//! the clock except the elapsed time printed in the report.
//!
//! Entry points: [`generate`] / [`golden`]; the `trunx corpus` command line is in
//! [`super::cli`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::audio::prompt::{PromptError, decode_file, resample_to_8k};
use crate::audio::wav::{WavError, write_telephone_wav};
use crate::tools::corpus::labels::{self, LabelError};
use crate::tools::corpus::script::{self, TtsRequest};
use crate::tools::corpus::{self, Category, Corpus, IngredientError, Ingredients, Truth};

/// Where Debian's `asterisk-core-sounds-en-wav` puts the English prompts.
pub const DEFAULT_SOUNDS_DIR: &str = "/usr/share/asterisk/sounds/en_US_f_Allison";
/// Where Debian's `asterisk-moh-opsound-wav` puts the music.
pub const DEFAULT_MOH_DIR: &str = "/usr/share/asterisk/moh";
/// How to get every ingredient on Debian/Ubuntu.
pub const INSTALL_HINT: &str = "apt-get install -y sox espeak-ng asterisk-core-sounds-en-wav asterisk-moh-opsound-wav (or `make deps`)";
/// Name of the espeak-ng cache directory inside the output directory.
pub const CACHE_DIR_NAME: &str = ".ingredients";
/// espeak-ng processes run at once when filling the cache.
const ESPEAK_PARALLEL: usize = 4;
/// Longest ingredient accepted (the music tracks are up to ~5.5 min).
const MAX_INGREDIENT_SECONDS: u32 = 900;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{what} not found at {path}; install the ingredients with: {INSTALL_HINT}")]
    MissingIngredient { what: String, path: String },
    #[error("cannot run {program}: {source}; install it with: {INSTALL_HINT}")]
    EspeakMissing {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("espeak-ng failed ({status}) for voice {voice} and text {text:?}: {stderr}")]
    Espeak {
        voice: String,
        text: String,
        status: String,
        stderr: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Wav(#[from] WavError),
    #[error("ingredients cannot make a corpus: {0}")]
    Ingredients(#[from] IngredientError),
    #[error("{path}: {source}")]
    Labels {
        path: String,
        #[source]
        source: LabelError,
    },
    #[error("{0}")]
    Usage(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where the ingredients come from.
#[derive(Clone, Debug)]
pub struct IngredientSources {
    pub sounds_dir: PathBuf,
    pub moh_dir: PathBuf,
    /// The espeak-ng program (looked up on PATH when bare).
    pub espeak: PathBuf,
    /// Cache of espeak-ng WAVs, keyed by [`TtsRequest::cache_key`].
    pub cache_dir: PathBuf,
}

impl IngredientSources {
    /// The Debian locations, with the cache in `out/.ingredients`.
    pub fn system(out: &Path) -> IngredientSources {
        IngredientSources {
            sounds_dir: PathBuf::from(DEFAULT_SOUNDS_DIR),
            moh_dir: PathBuf::from(DEFAULT_MOH_DIR),
            espeak: PathBuf::from("espeak-ng"),
            cache_dir: out.join(CACHE_DIR_NAME),
        }
    }
}

/// How many espeak-ng lines came from the cache and how many were synthesised now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtsStats {
    pub cached: usize,
    pub synthesised: usize,
}

/// Decodes any audio file to 8 kHz mono f32.
pub(crate) fn load_8k(path: &Path) -> Result<Vec<f32>, CorpusError> {
    let decoded = decode_file(path, MAX_INGREDIENT_SECONDS)?;
    let mono = decoded.downmix();
    Ok(resample_to_8k(
        &path.display().to_string(),
        &mono,
        decoded.rate,
    )?)
}

/// Loads every ingredient: the required prompts, all music tracks (sorted by name) and one
/// espeak-ng clip per line of the script (synthesising what the cache lacks).
pub fn load_ingredients(src: &IngredientSources) -> Result<(Ingredients, TtsStats), CorpusError> {
    if !src.sounds_dir.is_dir() {
        return Err(CorpusError::MissingIngredient {
            what: "Asterisk core sounds (en_US_f_Allison)".to_string(),
            path: src.sounds_dir.display().to_string(),
        });
    }
    let mut prompts = BTreeMap::new();
    for name in script::REQUIRED_PROMPTS {
        let path = src.sounds_dir.join(format!("{name}.wav"));
        if !path.is_file() {
            return Err(CorpusError::MissingIngredient {
                what: format!("Asterisk prompt {name}.wav"),
                path: path.display().to_string(),
            });
        }
        prompts.insert(name.to_string(), load_8k(&path)?);
    }

    let music = load_music(src)?;

    let (tts, stats) = synthesise_all(&script::tts_requests(), src)?;
    Ok((
        Ingredients {
            prompts,
            music,
            tts,
        },
        stats,
    ))
}

/// Every music track of the music-on-hold directory (sorted by name), decoded to 8 kHz.
pub(crate) fn load_music(src: &IngredientSources) -> Result<Vec<(String, Vec<f32>)>, CorpusError> {
    let missing_moh = || CorpusError::MissingIngredient {
        what: "Asterisk music on hold (opsound WAVs)".to_string(),
        path: src.moh_dir.display().to_string(),
    };
    let entries = std::fs::read_dir(&src.moh_dir).map_err(|_| missing_moh())?;
    let mut tracks: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(&src.moh_dir))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("wav") {
            tracks.push(path);
        }
    }
    tracks.sort();
    if tracks.is_empty() {
        return Err(missing_moh());
    }
    let mut music = Vec::with_capacity(tracks.len());
    for path in &tracks {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        music.push((name, load_8k(path)?));
    }
    Ok(music)
}

fn cache_path(src: &IngredientSources, req: &TtsRequest) -> PathBuf {
    src.cache_dir.join(format!("{}.wav", req.cache_key()))
}

/// Runs espeak-ng for every request whose WAV is not cached (a few processes at a time),
/// then decodes every request's WAV to 8 kHz.
pub(crate) fn synthesise_all(
    requests: &[TtsRequest],
    src: &IngredientSources,
) -> Result<(Vec<Vec<f32>>, TtsStats), CorpusError> {
    std::fs::create_dir_all(&src.cache_dir).map_err(io_err(&src.cache_dir))?;
    let mut todo: BTreeMap<String, &TtsRequest> = BTreeMap::new();
    let mut stats = TtsStats::default();
    let mut seen = BTreeSet::new();
    for req in requests {
        let key = req.cache_key();
        if !seen.insert(key.clone()) {
            continue;
        }
        let path = cache_path(src, req);
        if path.is_file() && load_8k(&path).is_ok() {
            stats.cached += 1;
        } else {
            todo.insert(key, req);
        }
    }
    let pending: Vec<&TtsRequest> = todo.into_values().collect();
    for batch in pending.chunks(ESPEAK_PARALLEL) {
        let mut children = Vec::with_capacity(batch.len());
        for req in batch {
            let tmp = src.cache_dir.join(format!("{}.tmp.wav", req.cache_key()));
            let child = Command::new(&src.espeak)
                .args(req.espeak_args())
                .arg("-w")
                .arg(&tmp)
                .arg(&req.text)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| CorpusError::EspeakMissing {
                    program: src.espeak.display().to_string(),
                    source,
                })?;
            children.push((req, tmp, child));
        }
        for (req, tmp, child) in children {
            let out = child.wait_with_output().map_err(io_err(&tmp))?;
            if !out.status.success() || !tmp.is_file() {
                return Err(CorpusError::Espeak {
                    voice: req.voice.clone(),
                    text: req.text.clone(),
                    status: out.status.to_string(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            let path = cache_path(src, req);
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            stats.synthesised += 1;
        }
    }
    prune_cache(&src.cache_dir, &seen)?;
    let mut clips = Vec::with_capacity(requests.len());
    let mut decoded: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for req in requests {
        let key = req.cache_key();
        if let Some(c) = decoded.get(&key) {
            clips.push(c.clone());
            continue;
        }
        let clip = load_8k(&cache_path(src, req))?;
        decoded.insert(key, clip.clone());
        clips.push(clip);
    }
    Ok((clips, stats))
}

/// Deletes cached espeak-ng WAVs (and leftover temporaries) no current line uses, so an edited
/// script does not grow the cache forever. Only files named like cache entries are touched.
fn prune_cache(dir: &Path, keys: &BTreeSet<String>) -> Result<(), CorpusError> {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".wav") else {
            continue;
        };
        let (key, tmp) = match stem.strip_suffix(".tmp") {
            Some(key) => (key, true),
            None => (stem, false),
        };
        let looks_like_key = key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_key && (tmp || !keys.contains(key)) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    for path in stale {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// What `generate` is asked to do.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    pub sources: IngredientSources,
}

/// What `generate` did.
#[derive(Clone, Debug)]
pub struct GenerateReport {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    pub per_category: BTreeMap<Category, usize>,
    pub humans: usize,
    pub machines: usize,
    pub audio_seconds: f64,
    pub bytes: u64,
    pub tts: TtsStats,
    pub elapsed_seconds: f64,
}

impl fmt::Display for GenerateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} calls ({} human, {} machine; {:.0} s of audio, {} bytes) to {} with seed {} in {:.1} s",
            self.count,
            self.humans,
            self.machines,
            self.audio_seconds,
            self.bytes,
            self.out.display(),
            self.seed,
            self.elapsed_seconds
        )?;
        writeln!(
            f,
            "espeak-ng lines: {} from cache, {} synthesised",
            self.tts.cached, self.tts.synthesised
        )?;
        for (c, n) in &self.per_category {
            writeln!(f, "  {:<20} {n}", c.name())?;
        }
        Ok(())
    }
}

/// True for names the generator writes (`0042-machine_decoy.wav`).
fn is_call_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".wav") else {
        return false;
    };
    let Some((num, cat)) = stem.split_once('-') else {
        return false;
    };
    num.len() >= 4 && num.bytes().all(|b| b.is_ascii_digit()) && Category::from_name(cat).is_some()
}

/// Removes call WAVs in `dir` that are not in `keep` (left over from a bigger earlier run).
fn remove_stale_calls(dir: &Path, keep: &BTreeSet<String>) -> Result<(), CorpusError> {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if is_call_file(&name) && !keep.contains(&name) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    for path in stale {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), CorpusError> {
    std::fs::write(path, text).map_err(io_err(path))
}

/// Generates `count` calls into `out` (see the module docs of [`crate::tools::corpus`]).
pub fn generate(opts: &GenerateOptions) -> Result<GenerateReport, CorpusError> {
    let started = crate::runtime::clock::now();
    std::fs::create_dir_all(&opts.out).map_err(io_err(&opts.out))?;
    let (ingredients, tts) = load_ingredients(&opts.sources)?;
    let corpus = Corpus::new(&ingredients)?;
    drop(ingredients);
    let plan = corpus::plan(opts.count, opts.seed);

    let mut labels = Vec::with_capacity(plan.len());
    let mut per_category: BTreeMap<Category, usize> = BTreeMap::new();
    let mut samples = 0usize;
    for (index, category) in plan.iter().enumerate() {
        let call = corpus.call(opts.seed, index, *category);
        let path = opts.out.join(&call.label.file);
        write_telephone_wav(&path, &call.pcm)?;
        samples += call.pcm.len();
        *per_category.entry(*category).or_default() += 1;
        labels.push(call.label);
    }
    let keep: BTreeSet<String> = labels.iter().map(|l| l.file.clone()).collect();
    remove_stale_calls(&opts.out, &keep)?;
    write_text(&opts.out.join("labels.csv"), &labels::to_csv(&labels))?;
    write_text(&opts.out.join("LICENSES.md"), &labels::licenses_markdown())?;

    let humans = labels.iter().filter(|l| l.truth == Truth::Human).count();
    Ok(GenerateReport {
        out: opts.out.clone(),
        count: labels.len(),
        seed: opts.seed,
        per_category,
        humans,
        machines: labels.len() - humans,
        audio_seconds: samples as f64 / 8000.0,
        bytes: (samples * 2 + 44 * labels.len()) as u64,
        tts,
        elapsed_seconds: crate::runtime::clock::seconds_since(started),
    })
}

/// What `golden` is asked to do.
#[derive(Clone, Debug)]
pub struct GoldenOptions {
    pub from: PathBuf,
    pub out: PathBuf,
    pub max_bytes: u64,
    pub max_files: usize,
}

/// What `golden` did.
#[derive(Clone, Debug)]
pub struct GoldenReport {
    pub out: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub per_category: BTreeMap<Category, usize>,
}

impl fmt::Display for GoldenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "copied {} calls ({} bytes of WAV) to {}",
            self.files,
            self.bytes,
            self.out.display()
        )?;
        for (c, n) in &self.per_category {
            writeln!(f, "  {:<20} {n}", c.name())?;
        }
        Ok(())
    }
}

/// Copies a category-stratified subset of a generated corpus (see
/// [`labels::select_golden`]) with its own `labels.csv` and `LICENSES.md`.
pub fn golden(opts: &GoldenOptions) -> Result<GoldenReport, CorpusError> {
    let labels_path = opts.from.join("labels.csv");
    let text = std::fs::read_to_string(&labels_path).map_err(io_err(&labels_path))?;
    let all = labels::parse_labels(&text).map_err(|source| CorpusError::Labels {
        path: labels_path.display().to_string(),
        source,
    })?;
    let mut sizes = Vec::with_capacity(all.len());
    for l in &all {
        let path = opts.from.join(&l.file);
        sizes.push(std::fs::metadata(&path).map_err(io_err(&path))?.len());
    }
    let chosen = labels::select_golden(&all, &sizes, opts.max_bytes, opts.max_files);
    if chosen.is_empty() {
        return Err(CorpusError::Usage(format!(
            "no call of {} fits in {} bytes",
            opts.from.display(),
            opts.max_bytes
        )));
    }
    std::fs::create_dir_all(&opts.out).map_err(io_err(&opts.out))?;
    let subset: Vec<labels::Label> = chosen.iter().map(|&i| all[i].clone()).collect();
    let keep: BTreeSet<String> = subset.iter().map(|l| l.file.clone()).collect();
    remove_stale_calls(&opts.out, &keep)?;
    let mut bytes = 0;
    let mut per_category: BTreeMap<Category, usize> = BTreeMap::new();
    for (&i, l) in chosen.iter().zip(&subset) {
        let to = opts.out.join(&l.file);
        std::fs::copy(opts.from.join(&l.file), &to).map_err(io_err(&to))?;
        bytes += sizes[i];
        if let Some(c) = labels::category_of(l) {
            *per_category.entry(c).or_default() += 1;
        }
    }
    write_text(&opts.out.join("labels.csv"), &labels::to_csv(&subset))?;
    write_text(&opts.out.join("LICENSES.md"), &labels::licenses_markdown())?;
    Ok(GoldenReport {
        out: opts.out.clone(),
        files: subset.len(),
        bytes,
        per_category,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_file_names_are_recognised() {
        assert!(is_call_file("0042-machine_decoy.wav"));
        assert!(is_call_file("0000-fax.wav"));
        assert!(!is_call_file("labels.csv"));
        assert!(!is_call_file("0042-notacategory.wav"));
        assert!(!is_call_file("12-fax.wav"));
    }

    #[test]
    fn missing_sounds_name_the_install_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = IngredientSources::system(dir.path());
        src.sounds_dir = dir.path().join("nope");
        let err = load_ingredients(&src).unwrap_err().to_string();
        assert!(err.contains("apt-get install -y sox espeak-ng"), "{err}");
    }

    #[test]
    fn missing_espeak_names_the_install_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = IngredientSources::system(dir.path());
        src.espeak = dir.path().join("no-such-espeak");
        let reqs = script::tts_requests();
        let err = synthesise_all(&reqs[..1], &src).unwrap_err().to_string();
        assert!(err.contains("asterisk-core-sounds-en-wav"), "{err}");
    }

    /// Runs the real generator on the installed Debian ingredients (`make deps`): a cold and
    /// a warm cache give byte-identical calls, every category shows up, the golden copy
    /// keeps its labels.
    #[test]
    fn generates_identical_corpora_from_the_system_ingredients() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let options = |out: &Path| GenerateOptions {
            out: out.to_path_buf(),
            count: 26,
            seed: 3,
            sources: IngredientSources::system(out),
        };
        let first = generate(&options(a.path())).unwrap();
        assert_eq!(first.count, 26);
        assert_eq!(first.per_category.len(), 19, "{first}");
        // Same output again from the now-warm cache, and in another directory.
        let again = generate(&options(a.path())).unwrap();
        assert_eq!(again.tts.synthesised, 0);
        generate(&options(b.path())).unwrap();
        let labels = std::fs::read_to_string(a.path().join("labels.csv")).unwrap();
        assert!(labels.starts_with("file,truth,beep_start_ms,beep_end_ms,notes\n"));
        for l in labels::parse_labels(&labels).unwrap() {
            let x = std::fs::read(a.path().join(&l.file)).unwrap();
            let y = std::fs::read(b.path().join(&l.file)).unwrap();
            assert!(x == y, "{} differs between runs", l.file);
        }
        let g = golden(&GoldenOptions {
            from: a.path().to_path_buf(),
            out: b.path().join("golden"),
            max_bytes: 1_500_000,
            max_files: 40,
        })
        .unwrap();
        assert!(g.files >= 5 && g.bytes <= 1_500_000, "{g}");
        let copied = std::fs::read_to_string(b.path().join("golden/labels.csv")).unwrap();
        assert_eq!(labels::parse_labels(&copied).unwrap().len(), g.files);
        assert!(b.path().join("golden/LICENSES.md").is_file());
    }
}
