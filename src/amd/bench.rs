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
        self.notes
            .split([';', ' '])
            .find_map(|kv| kv.strip_prefix("cat="))
            .unwrap_or("uncategorised")
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

    /// The reported beep: (beep_end_ms, event_ms).
    pub fn beep(&self) -> Option<(u64, u64)> {
        self.events.iter().find_map(|e| match e.kind {
            AmdEventKind::MachineEndBeep { beep_end, .. } => Some((beep_end.as_ms(), e.at.as_ms())),
            _ => None,
        })
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
    pub false_beep_rate: f64,
}

/// The `trunx bench amd --json` object; its keys are part of the CLI contract.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BenchReport {
    pub calls: usize,
    pub accuracy: f64,
    pub humans_as_machine: f64,
    pub machines_as_human: f64,
    pub beep_recall: f64,
    pub false_beep_rate: f64,
    pub beep_end_error_ms: P50P95Max,
    pub beep_event_delay_ms: P50P95,
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

fn confusion(calls: &[&CallOutcome]) -> CategoryReport {
    let humans: Vec<_> = calls
        .iter()
        .filter(|c| c.label.truth == Truth::Human)
        .collect();
    let machines: Vec<_> = calls
        .iter()
        .filter(|c| c.label.truth == Truth::Machine)
        .collect();
    let correct = calls
        .iter()
        .filter(|c| c.predicted() == c.label.truth)
        .count();
    let with_beep: Vec<_> = calls.iter().filter(|c| c.label.beep_ms.is_some()).collect();
    let found = with_beep
        .iter()
        .filter(|c| match (c.beep(), c.label.beep_ms) {
            (Some((end, _)), Some((_, label_end))) => end.abs_diff(label_end) <= BEEP_MATCH_MS,
            _ => false,
        })
        .count();
    let without_beep: Vec<_> = calls.iter().filter(|c| c.label.beep_ms.is_none()).collect();
    let false_beeps = without_beep.iter().filter(|c| c.beep().is_some()).count();
    CategoryReport {
        calls: calls.len(),
        accuracy: ratio(correct, calls.len()),
        humans_as_machine: ratio(
            humans
                .iter()
                .filter(|c| c.predicted() == Truth::Machine)
                .count(),
            humans.len(),
        ),
        machines_as_human: ratio(
            machines
                .iter()
                .filter(|c| c.predicted() == Truth::Human)
                .count(),
            machines.len(),
        ),
        beep_recall: ratio(found, with_beep.len()),
        false_beep_rate: ratio(false_beeps, without_beep.len()),
    }
}

/// Computes the report. `cpu_seconds` is the CPU time the detector took for all calls.
pub fn report(outcomes: &[CallOutcome], cpu_seconds: f64) -> BenchReport {
    let all: Vec<&CallOutcome> = outcomes.iter().collect();
    let overall = confusion(&all);
    let mut end_errors = Vec::new();
    let mut delays = Vec::new();
    let mut human_ms = Vec::new();
    let mut machine_ms = Vec::new();
    for c in outcomes {
        if let (Some((end, at)), Some((_, label_end))) = (c.beep(), c.label.beep_ms) {
            end_errors.push(end.abs_diff(label_end) as f64);
            delays.push(at as f64 - label_end as f64);
        }
        if let Some(d) = c.decision() {
            match d.kind {
                AmdEventKind::Human => human_ms.push(d.at.as_ms() as f64),
                AmdEventKind::Unknown => {}
                _ => machine_ms.push(d.at.as_ms() as f64),
            }
        }
    }
    for v in [&mut end_errors, &mut delays, &mut human_ms, &mut machine_ms] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let mut categories: BTreeMap<String, Vec<&CallOutcome>> = BTreeMap::new();
    for c in outcomes {
        categories
            .entry(c.label.category().to_string())
            .or_default()
            .push(c);
    }
    let audio_seconds: f64 = outcomes.iter().map(|c| c.analysed_ms as f64 / 1000.0).sum();
    BenchReport {
        calls: outcomes.len(),
        accuracy: overall.accuracy,
        humans_as_machine: overall.humans_as_machine,
        machines_as_human: overall.machines_as_human,
        beep_recall: overall.beep_recall,
        false_beep_rate: overall.false_beep_rate,
        beep_end_error_ms: P50P95Max {
            p50: percentile(&end_errors, 50.0),
            p95: percentile(&end_errors, 95.0),
            max: end_errors.last().copied().unwrap_or(f64::NAN),
        },
        beep_event_delay_ms: P50P95 {
            p50: percentile(&delays, 50.0),
            p95: percentile(&delays, 95.0),
        },
        decision_ms: DecisionMs {
            human: P50P95 {
                p50: percentile(&human_ms, 50.0),
                p95: percentile(&human_ms, 95.0),
            },
            machine: P50P95 {
                p50: percentile(&machine_ms, 50.0),
                p95: percentile(&machine_ms, 95.0),
            },
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

/// A readable table: the confusion matrix, beep figures, latency and per-category accuracy.
pub fn render_table(r: &BenchReport, outcomes: &[CallOutcome]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let count = |t: Truth, p: Truth| {
        outcomes
            .iter()
            .filter(|c| c.label.truth == t && c.predicted() == p)
            .count()
    };
    let _ = writeln!(out, "calls: {}   accuracy: {:.4}", r.calls, r.accuracy);
    let _ = writeln!(out);
    let _ = writeln!(out, "                 predicted human   predicted machine");
    let _ = writeln!(
        out,
        "truth human      {:>15}   {:>17}",
        count(Truth::Human, Truth::Human),
        count(Truth::Human, Truth::Machine)
    );
    let _ = writeln!(
        out,
        "truth machine    {:>15}   {:>17}",
        count(Truth::Machine, Truth::Human),
        count(Truth::Machine, Truth::Machine)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "humans_as_machine {:.4}   machines_as_human {:.4}",
        r.humans_as_machine, r.machines_as_human
    );
    let _ = writeln!(
        out,
        "beep_recall {:.4}   false_beep_rate {:.4}   beep end error p50/p95/max {:.0}/{:.0}/{:.0} ms   event delay p50/p95 {:.0}/{:.0} ms",
        r.beep_recall,
        r.false_beep_rate,
        r.beep_end_error_ms.p50,
        r.beep_end_error_ms.p95,
        r.beep_end_error_ms.max,
        r.beep_event_delay_ms.p50,
        r.beep_event_delay_ms.p95
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
        "{:<22} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "category", "calls", "acc", "h->m", "m->h", "recall", "falsebp"
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
            "{:<22} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}",
            cat,
            c.calls,
            show(c.accuracy),
            show(c.humans_as_machine),
            show(c.machines_as_human),
            show(c.beep_recall),
            show(c.false_beep_rate)
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
            },
            CallOutcome {
                label: label(Truth::Human, None, "h"),
                events: vec![event(AmdEventKind::Unknown, 5000)],
                analysed_ms: 5000,
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
            },
            CallOutcome {
                label: label(Truth::Machine, Some((4000, 4300)), "m"),
                events: vec![event(AmdEventKind::Human, 1500)],
                analysed_ms: 6000,
            },
        ];
        let r = report(&outcomes, 0.011);
        assert_eq!(r.calls, 4);
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.humans_as_machine, 0.0);
        assert_eq!(r.machines_as_human, 0.5);
        assert_eq!(r.beep_recall, 0.5);
        assert_eq!(r.false_beep_rate, 0.0);
        assert_eq!(r.beep_end_error_ms.max, 20.0);
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
                "beep_end_error_ms",
                "beep_event_delay_ms",
                "beep_recall",
                "by_category",
                "calls",
                "decision_ms",
                "false_beep_rate",
                "humans_as_machine",
                "machines_as_human",
                "realtime_factor"
            ]
        );
        assert!(render_table(&r, &outcomes).contains("truth machine"));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 95.0), 4.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
