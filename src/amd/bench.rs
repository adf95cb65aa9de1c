//! Scoring the detector on labelled recordings: the labels format, per-call outcomes and the
//! report of `trunx bench amd` (accuracy, confusion, beep timing, decision latency, speed).
//!
//! Pure: the runtime reads the files, runs the detector and measures CPU time; this module
//! only parses labels and computes figures.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AmdEvent, AmdEventKind};

/// One row of `labels.csv`: `file,truth,beep_start_ms,beep_end_ms[,notes]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub file: String,
    pub truth: Truth,
    pub beep_ms: Option<(u64, u64)>,
    pub notes: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    Human,
    Machine,
}

impl Truth {
    pub fn as_str(self) -> &'static str {
        match self {
            Truth::Human => "human",
            Truth::Machine => "machine",
        }
    }

    pub fn parse(s: &str) -> Option<Truth> {
        match s {
            "human" => Some(Truth::Human),
            "machine" => Some(Truth::Machine),
            _ => None,
        }
    }
}

/// Header of a labels file (the notes column is optional).
pub const LABELS_HEADER: &str = "file,truth,beep_start_ms,beep_end_ms,notes";

impl Label {
    /// The row as written in `labels.csv`.
    pub fn csv_row(&self) -> String {
        let (start, end) = match self.beep_ms {
            Some((s, e)) => (s.to_string(), e.to_string()),
            None => (String::new(), String::new()),
        };
        format!(
            "{},{},{start},{end},{}",
            self.file,
            self.truth.as_str(),
            self.notes
        )
    }

    /// The `cat=NAME` of the notes, or `uncategorised`.
    pub fn category(&self) -> &str {
        self.note("cat").unwrap_or("uncategorised")
    }

    /// The value of `KEY=value` in the notes (keys separated by `;` or spaces).
    pub fn note(&self, key: &str) -> Option<&str> {
        self.notes
            .split([';', ' '])
            .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    /// End of the person's first utterance, ms from the first sample (`utt_end=MS` in the
    /// notes; set on human calls that speak).
    pub fn first_utterance_end_ms(&self) -> Option<u64> {
        self.note("utt_end").and_then(|v| v.parse().ok())
    }

    /// Every tone of the labelled beep, (start, end) ms: `tones=S-E[@HZ[/HZ]]+...` in the
    /// notes, else the one span of the beep columns. The beep end of the columns is the end of
    /// the last tone.
    pub fn beep_tones_ms(&self) -> Vec<(u64, u64)> {
        let parsed: Option<Vec<(u64, u64)>> = self.note("tones").map(|v| {
            v.split('+')
                .filter_map(|t| {
                    let span = t.split('@').next()?;
                    let (a, b) = span.split_once('-')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect()
        });
        match parsed {
            Some(t) if !t.is_empty() => t,
            _ => self.beep_ms.into_iter().collect(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error("labels line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("labels: the header must be {LABELS_HEADER} (notes optional)")]
    Header,
}

/// Renders a whole labels file (header, one row per label, trailing newline).
pub fn to_csv(labels: &[Label]) -> String {
    let mut out = String::with_capacity(64 * (labels.len() + 1));
    out.push_str(LABELS_HEADER);
    out.push('\n');
    for l in labels {
        out.push_str(&l.csv_row());
        out.push('\n');
    }
    out
}

/// Parses a labels file (header required; the notes column may be left out).
pub fn parse_labels(text: &str) -> Result<Vec<Label>, LabelError> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    if header != LABELS_HEADER && header != "file,truth,beep_start_ms,beep_end_ms" {
        return Err(LabelError::Header);
    }
    let mut labels = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| LabelError::Line {
            line: i + 1,
            reason,
        };
        let cols: Vec<&str> = line.splitn(5, ',').collect();
        if cols.len() < 4 {
            return Err(err(format!(
                "expected at least 4 columns, got {}",
                cols.len()
            )));
        }
        let truth = match cols[1].trim() {
            "human" => Truth::Human,
            "machine" => Truth::Machine,
            other => {
                return Err(err(format!(
                    "truth must be human or machine, not {other:?}"
                )));
            }
        };
        let ms = |s: &str, name: &str| -> Result<Option<u64>, LabelError> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| err(format!("{name} is not a whole number of ms: {s:?}")))
            }
        };
        let beep_ms = match (ms(cols[2], "beep_start_ms")?, ms(cols[3], "beep_end_ms")?) {
            (Some(s), Some(e)) if e > s => Some((s, e)),
            (None, None) => None,
            _ => {
                return Err(err(
                    "beep times must both be set with end > start, or both empty".into(),
                ));
            }
        };
        labels.push(Label {
            file: cols[0].trim().to_string(),
            truth,
            beep_ms,
            notes: cols
                .get(4)
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        });
    }
    Ok(labels)
}

/// What the detector said about one labelled call.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    pub label: Label,
    pub events: Vec<AmdEvent>,
    /// Audio the detector analysed before it was done (the basis of the realtime factor).
    pub analysed_ms: u64,
    /// Length of the whole recording (the "full error" of a missed beep ends here).
    pub audio_ms: u64,
}

impl CallOutcome {
    /// The first decisive event (anything but the follow-ups of `machine`).
    pub fn decision(&self) -> Option<&AmdEvent> {
        self.events.first()
    }

    /// `unknown` counts as human, everything machine-side (including fax and SIT) as machine.
    pub fn predicted(&self) -> Truth {
        match self.decision() {
            Some(e) if e.kind.is_machine_side() => Truth::Machine,
            _ => Truth::Human,
        }
    }

    /// The first reported beep (the one a dialer acts on): (beep_end_ms, event_ms).
    pub fn beep(&self) -> Option<(u64, u64)> {
        self.events.iter().find_map(|e| match e.kind {
            AmdEventKind::MachineEndBeep { beep_end, .. } => Some((beep_end.as_ms(), e.at.as_ms())),
            _ => None,
        })
    }

    /// True when the first reported beep ends within [`BEEP_MATCH_MS`] of the labelled end.
    pub fn first_beep_found(&self) -> bool {
        match (self.beep(), self.label.beep_ms) {
            (Some((end, _)), Some((_, label_end))) => end.abs_diff(label_end) <= BEEP_MATCH_MS,
            _ => false,
        }
    }

    /// Beep end error of a call with a labelled beep, counting a miss: |reported - labelled|
    /// of the first reported beep, or, when no beep was reported, the full error: the time
    /// from the labelled beep end to the end of the recording. `None` without a labelled beep.
    pub fn beep_end_error_ms(&self) -> Option<u64> {
        let (_, label_end) = self.label.beep_ms?;
        Some(match self.beep() {
            Some((end, _)) => end.abs_diff(label_end),
            None => self.audio_ms.saturating_sub(label_end),
        })
    }

    /// For a person whose first utterance end is labelled and who was judged a person
    /// (`human` or `unknown`): decision time minus that end, ms (negative when the detector
    /// decided before the person stopped).
    pub fn decision_after_speech_ms(&self) -> Option<i64> {
        if self.label.truth != Truth::Human || self.predicted() != Truth::Human {
            return None;
        }
        let end = self.label.first_utterance_end_ms()?;
        Some(self.decision()?.at.as_ms() as i64 - end as i64)
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct P50P95 {
    pub p50: f64,
    pub p95: f64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct P50P95Max {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct DecisionMs {
    pub human: P50P95,
    pub machine: P50P95,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CategoryReport {
    pub calls: usize,
    pub accuracy: f64,
    pub humans_as_machine: f64,
    pub machines_as_human: f64,
    pub beep_recall: f64,
    pub first_beep_recall: f64,
    pub false_beep_rate: f64,
    pub decision_after_speech_p50_ms: f64,
}

/// Counts of truth (rows) against the verdict (columns); `unknown` counts as human.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Confusion {
    pub human_as_human: usize,
    pub human_as_machine: usize,
    pub machine_as_human: usize,
    pub machine_as_machine: usize,
}

/// Decision latency of the people judged people.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct HumanLatency {
    /// Calls counted: truth human, a labelled first-utterance end, verdict human or unknown.
    pub calls: usize,
    /// Decision time minus the labelled end of the first utterance.
    pub after_speech: P50P95,
    /// Decision time from the first answered sample, same calls.
    pub from_start: P50P95,
}

/// The `trunx bench amd --json` object; its keys are part of the CLI contract.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BenchReport {
    /// Engine scored: `builtin` or `asterisk`.
    pub provider: String,
    pub calls: usize,
    pub accuracy: f64,
    pub confusion: Confusion,
    pub humans_as_machine: f64,
    pub machines_as_human: f64,
    /// Calls with a labelled beep where ANY reported beep ends within `BEEP_MATCH_MS`.
    pub beep_recall: f64,
    /// Calls with a labelled beep where the FIRST reported beep ends within `BEEP_MATCH_MS`
    /// of the labelled end (the end of the last tone).
    pub first_beep_recall: f64,
    /// Calls without a labelled beep on which a beep was reported.
    pub false_beep_rate: f64,
    /// Calls whose first reported beep is not within `BEEP_MATCH_MS` of a labelled beep end
    /// (with or without a labelled beep): the message would start at the wrong time.
    pub false_beeps: usize,
    /// Over ALL calls with a labelled beep: |first reported beep end - labelled end|, and for
    /// a call with no reported beep its full error, the labelled beep end to the end of the
    /// recording.
    pub beep_end_error_ms: P50P95Max,
    /// The same over the calls where a beep was reported (misses left out).
    pub beep_end_error_found_ms: P50P95Max,
    pub beep_event_delay_ms: P50P95,
    /// Human verdicts, decision time minus the labelled end of the first utterance.
    pub decision_after_speech_ms: P50P95,
    pub human_latency: HumanLatency,
    pub decision_ms: DecisionMs,
    pub realtime_factor: f64,
    pub by_category: BTreeMap<String, CategoryReport>,
}

/// A labelled beep counts as found when the reported end is this close.
pub const BEEP_MATCH_MS: u64 = 150;

/// Nearest-rank percentile; NaN for no data (serialised as null).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn p50_p95(v: &[f64]) -> P50P95 {
    P50P95 {
        p50: percentile(v, 50.0),
        p95: percentile(v, 95.0),
    }
}

fn p50_p95_max(v: &[f64]) -> P50P95Max {
    P50P95Max {
        p50: percentile(v, 50.0),
        p95: percentile(v, 95.0),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

fn confusion_counts(calls: &[&CallOutcome]) -> Confusion {
    let count = |t: Truth, p: Truth| {
        calls
            .iter()
            .filter(|c| c.label.truth == t && c.predicted() == p)
            .count()
    };
    Confusion {
        human_as_human: count(Truth::Human, Truth::Human),
        human_as_machine: count(Truth::Human, Truth::Machine),
        machine_as_human: count(Truth::Machine, Truth::Human),
        machine_as_machine: count(Truth::Machine, Truth::Machine),
    }
}

fn confusion(calls: &[&CallOutcome]) -> CategoryReport {
    let m = confusion_counts(calls);
    let with_beep: Vec<_> = calls.iter().filter(|c| c.label.beep_ms.is_some()).collect();
    let found = with_beep
        .iter()
        .filter(|c| {
            let label_end = c.label.beep_ms.map(|(_, e)| e).unwrap_or(0);
            c.events.iter().any(|e| match e.kind {
                AmdEventKind::MachineEndBeep { beep_end, .. } => {
                    beep_end.as_ms().abs_diff(label_end) <= BEEP_MATCH_MS
                }
                _ => false,
            })
        })
        .count();
    let first_found = with_beep.iter().filter(|c| c.first_beep_found()).count();
    let without_beep: Vec<_> = calls.iter().filter(|c| c.label.beep_ms.is_none()).collect();
    let false_beeps = without_beep.iter().filter(|c| c.beep().is_some()).count();
    let after: Vec<f64> = sorted(
        calls
            .iter()
            .filter_map(|c| c.decision_after_speech_ms())
            .map(|v| v as f64)
            .collect(),
    );
    CategoryReport {
        calls: calls.len(),
        accuracy: ratio(m.human_as_human + m.machine_as_machine, calls.len()),
        humans_as_machine: ratio(m.human_as_machine, m.human_as_human + m.human_as_machine),
        machines_as_human: ratio(
            m.machine_as_human,
            m.machine_as_human + m.machine_as_machine,
        ),
        beep_recall: ratio(found, with_beep.len()),
        first_beep_recall: ratio(first_found, with_beep.len()),
        false_beep_rate: ratio(false_beeps, without_beep.len()),
        decision_after_speech_p50_ms: percentile(&after, 50.0),
    }
}

/// Computes the report of `provider`. `cpu_seconds` is the CPU time the detector took for
/// all calls.
pub fn report(provider: &str, outcomes: &[CallOutcome], cpu_seconds: f64) -> BenchReport {
    let all: Vec<&CallOutcome> = outcomes.iter().collect();
    let overall = confusion(&all);
    let mut end_errors = Vec::new();
    let mut found_errors = Vec::new();
    let mut delays = Vec::new();
    let mut human_ms = Vec::new();
    let mut machine_ms = Vec::new();
    let mut after_speech = Vec::new();
    let mut from_start = Vec::new();
    let mut false_beeps = 0;
    for c in outcomes {
        if let Some(err) = c.beep_end_error_ms() {
            end_errors.push(err as f64);
        }
        if let (Some((end, at)), Some((_, label_end))) = (c.beep(), c.label.beep_ms) {
            found_errors.push(end.abs_diff(label_end) as f64);
            delays.push(at as f64 - label_end as f64);
        }
        if c.beep().is_some() && !c.first_beep_found() {
            false_beeps += 1;
        }
        if let Some(d) = c.decision() {
            match d.kind {
                AmdEventKind::Human => human_ms.push(d.at.as_ms() as f64),
                AmdEventKind::Unknown => {}
                _ => machine_ms.push(d.at.as_ms() as f64),
            }
        }
        if let (Some(after), Some(d)) = (c.decision_after_speech_ms(), c.decision()) {
            after_speech.push(after as f64);
            from_start.push(d.at.as_ms() as f64);
        }
    }
    let [
        end_errors,
        found_errors,
        delays,
        human_ms,
        machine_ms,
        after_speech,
        from_start,
    ] = [
        end_errors,
        found_errors,
        delays,
        human_ms,
        machine_ms,
        after_speech,
        from_start,
    ]
    .map(sorted);
    let mut categories: BTreeMap<String, Vec<&CallOutcome>> = BTreeMap::new();
    for c in outcomes {
        categories
            .entry(c.label.category().to_string())
            .or_default()
            .push(c);
    }
    let audio_seconds: f64 = outcomes.iter().map(|c| c.analysed_ms as f64 / 1000.0).sum();
    BenchReport {
        provider: provider.to_string(),
        calls: outcomes.len(),
        accuracy: overall.accuracy,
        confusion: confusion_counts(&all),
        humans_as_machine: overall.humans_as_machine,
        machines_as_human: overall.machines_as_human,
        beep_recall: overall.beep_recall,
        first_beep_recall: overall.first_beep_recall,
        false_beep_rate: overall.false_beep_rate,
        false_beeps,
        beep_end_error_ms: p50_p95_max(&end_errors),
        beep_end_error_found_ms: p50_p95_max(&found_errors),
        beep_event_delay_ms: p50_p95(&delays),
        decision_after_speech_ms: p50_p95(&after_speech),
        human_latency: HumanLatency {
            calls: after_speech.len(),
            after_speech: p50_p95(&after_speech),
            from_start: p50_p95(&from_start),
        },
        decision_ms: DecisionMs {
            human: p50_p95(&human_ms),
            machine: p50_p95(&machine_ms),
        },
        realtime_factor: if cpu_seconds > 0.0 {
            audio_seconds / cpu_seconds
        } else {
            f64::NAN
        },
        by_category: categories
            .into_iter()
            .map(|(k, v)| (k, confusion(&v)))
            .collect(),
    }
}

/// A readable table: the confusion matrix, beep figures, latency and per-category figures.
pub fn render_table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let m = &r.confusion;
    let _ = writeln!(
        out,
        "provider: {}   calls: {}   accuracy: {:.4}",
        r.provider, r.calls, r.accuracy
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "                 predicted human   predicted machine");
    let _ = writeln!(
        out,
        "truth human      {:>15}   {:>17}",
        m.human_as_human, m.human_as_machine
    );
    let _ = writeln!(
        out,
        "truth machine    {:>15}   {:>17}",
        m.machine_as_human, m.machine_as_machine
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "humans_as_machine {:.4}   machines_as_human {:.4}",
        r.humans_as_machine, r.machines_as_human
    );
    let _ = writeln!(
        out,
        "beep_recall {:.4}   first_beep_recall {:.4}   false_beep_rate {:.4}   false_beeps {}",
        r.beep_recall, r.first_beep_recall, r.false_beep_rate, r.false_beeps
    );
    let _ = writeln!(
        out,
        "beep end error (all labelled beeps, miss = full error) p50/p95/max {:.0}/{:.0}/{:.0} ms   (found only {:.0}/{:.0}/{:.0})   event delay p50/p95 {:.0}/{:.0} ms",
        r.beep_end_error_ms.p50,
        r.beep_end_error_ms.p95,
        r.beep_end_error_ms.max,
        r.beep_end_error_found_ms.p50,
        r.beep_end_error_found_ms.p95,
        r.beep_end_error_found_ms.max,
        r.beep_event_delay_ms.p50,
        r.beep_event_delay_ms.p95
    );
    let _ = writeln!(
        out,
        "human decision ({} calls): after the first utterance p50/p95 {:.0}/{:.0} ms   from the first sample p50/p95 {:.0}/{:.0} ms",
        r.human_latency.calls,
        r.decision_after_speech_ms.p50,
        r.decision_after_speech_ms.p95,
        r.human_latency.from_start.p50,
        r.human_latency.from_start.p95
    );
    let _ = writeln!(
        out,
        "decision ms: human p50/p95 {:.0}/{:.0}   machine p50/p95 {:.0}/{:.0}   realtime factor {:.0}",
        r.decision_ms.human.p50,
        r.decision_ms.human.p95,
        r.decision_ms.machine.p50,
        r.decision_ms.machine.p95,
        r.realtime_factor
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<24} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
        "category", "calls", "acc", "h->m", "m->h", "recall", "first", "falsebp", "after_p50"
    );
    let show = |x: f64| {
        if x.is_nan() {
            "-".to_string()
        } else {
            format!("{x:.3}")
        }
    };
    for (cat, c) in &r.by_category {
        let _ = writeln!(
            out,
            "{:<24} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
            cat,
            c.calls,
            show(c.accuracy),
            show(c.humans_as_machine),
            show(c.machines_as_human),
            show(c.beep_recall),
            show(c.first_beep_recall),
            show(c.false_beep_rate),
            if c.decision_after_speech_p50_ms.is_nan() {
                "-".to_string()
            } else {
                format!("{:.0}", c.decision_after_speech_p50_ms)
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::Cause;
    use crate::audio::SampleTime;

    fn event(kind: AmdEventKind, at_ms: u64) -> AmdEvent {
        AmdEvent {
            kind,
            at: SampleTime::from_ms(at_ms),
            confidence: 1.0,
            cause: Cause::new(format_args!("T")),
        }
    }

    #[test]
    fn labels_parse_and_reject_bad_rows() {
        let labels = parse_labels(
            "file,truth,beep_start_ms,beep_end_ms,notes\na.wav,human,,,cat=human_short\nb.wav,machine,3000,3250,cat=machine_short;beep=single\n",
        )
        .unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].category(), "human_short");
        assert_eq!(labels[1].beep_ms, Some((3000, 3250)));
        assert_eq!(labels[1].category(), "machine_short");
        assert_eq!(
            parse_labels(&to_csv(&labels)).unwrap(),
            labels,
            "to_csv and parse_labels round-trip"
        );
        assert_eq!(parse_labels("x\n"), Err(LabelError::Header));
        assert!(matches!(
            parse_labels("file,truth,beep_start_ms,beep_end_ms\na.wav,robot,,\n"),
            Err(LabelError::Line { line: 2, .. })
        ));
        assert!(
            parse_labels("file,truth,beep_start_ms,beep_end_ms\na.wav,machine,100,\n").is_err()
        );
    }

    #[test]
    fn report_counts_confusion_beeps_and_latency() {
        let label = |truth, beep: Option<(u64, u64)>, cat: &str| Label {
            file: "f".into(),
            truth,
            beep_ms: beep,
            notes: format!("cat={cat}"),
        };
        let outcomes = vec![
            CallOutcome {
                label: label(Truth::Human, None, "h"),
                events: vec![event(AmdEventKind::Human, 1200)],
                analysed_ms: 5000,
                audio_ms: 6000,
            },
            CallOutcome {
                label: label(Truth::Human, None, "h"),
                events: vec![event(AmdEventKind::Unknown, 5000)],
                analysed_ms: 5000,
                audio_ms: 6000,
            },
            CallOutcome {
                label: label(Truth::Machine, Some((4000, 4300)), "m"),
                events: vec![
                    event(AmdEventKind::Machine, 2000),
                    event(
                        AmdEventKind::MachineEndBeep {
                            beep_start: SampleTime::from_ms(4000),
                            beep_end: SampleTime::from_ms(4320),
                        },
                        4380,
                    ),
                ],
                analysed_ms: 6000,
                audio_ms: 7000,
            },
            CallOutcome {
                label: label(Truth::Machine, Some((4000, 4300)), "m"),
                events: vec![event(AmdEventKind::Human, 1500)],
                analysed_ms: 6000,
                audio_ms: 7000,
            },
        ];
        let r = report("builtin", &outcomes, 0.011);
        assert_eq!(r.calls, 4);
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.humans_as_machine, 0.0);
        assert_eq!(r.machines_as_human, 0.5);
        assert_eq!(r.beep_recall, 0.5);
        assert_eq!(r.false_beep_rate, 0.0);
        assert_eq!(r.first_beep_recall, 0.5);
        assert_eq!(r.false_beeps, 0);
        assert_eq!(
            r.confusion,
            Confusion {
                human_as_human: 2,
                human_as_machine: 0,
                machine_as_human: 1,
                machine_as_machine: 1
            }
        );
        // All labelled beeps: 20 ms for the found one, 7000 - 4300 for the missed one.
        assert_eq!(r.beep_end_error_ms.p50, 20.0);
        assert_eq!(r.beep_end_error_ms.max, 2700.0);
        assert_eq!(r.beep_end_error_found_ms.max, 20.0);
        assert_eq!(r.beep_event_delay_ms.p50, 80.0);
        assert_eq!(r.decision_ms.human.p50, 1200.0);
        assert_eq!(r.decision_ms.machine.p95, 2000.0);
        assert!((r.realtime_factor - 2000.0).abs() < 1e-6);
        assert_eq!(r.by_category["h"].accuracy, 1.0);
        let json = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "accuracy",
                "beep_end_error_found_ms",
                "beep_end_error_ms",
                "beep_event_delay_ms",
                "beep_recall",
                "by_category",
                "calls",
                "confusion",
                "decision_after_speech_ms",
                "decision_ms",
                "false_beep_rate",
                "false_beeps",
                "first_beep_recall",
                "human_latency",
                "humans_as_machine",
                "machines_as_human",
                "provider",
                "realtime_factor"
            ]
        );
        assert!(render_table(&r).contains("truth machine"));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 95.0), 4.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
