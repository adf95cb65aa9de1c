//! `labels.csv` (format and parse), the golden-subset choice and the licence text that goes
//! beside committed calls. Pure: strings in, strings out.

use super::{Category, Truth};

pub use crate::amd::bench::{LABELS_HEADER, Label, LabelError, parse_labels, to_csv};

/// The category named by `cat=` in a label's notes, else by its file name.
pub fn category_of(label: &Label) -> Option<Category> {
    let from_notes = label
        .notes
        .split(';')
        .find_map(|kv| kv.strip_prefix("cat="))
        .and_then(Category::from_name);
    from_notes.or_else(|| {
        let stem = label.file.strip_suffix(".wav")?;
        let (_, name) = stem.split_once('-')?;
        Category::from_name(name)
    })
}

/// Picks a category-stratified subset: every category first (its first call in file order,
/// or its smallest if that one is too big for a fair share of the budget), then round-robin
/// over the categories (human and machine alternating), each taking its next call in file
/// order that fits, while the byte budget and file cap allow. Returns indices into
/// `labels`, sorted.
pub fn select_golden(
    labels: &[Label],
    sizes: &[u64],
    max_bytes: u64,
    max_files: usize,
) -> Vec<usize> {
    // Human and machine categories alternate so a budget that runs out mid-round stays
    // balanced between the two truths.
    let (human, machine): (Vec<Category>, Vec<Category>) = Category::ALL
        .into_iter()
        .partition(|c| c.truth() == Truth::Human);
    let mut order = Vec::with_capacity(Category::ALL.len());
    for i in 0..human.len().max(machine.len()) {
        order.extend(human.get(i));
        order.extend(machine.get(i));
    }
    let mut groups: Vec<Vec<usize>> = order
        .iter()
        .map(|c| {
            (0..labels.len())
                .filter(|&i| category_of(&labels[i]) == Some(*c))
                .collect()
        })
        .collect();
    groups.retain(|g| !g.is_empty());
    let fair = max_bytes / groups.len().max(1) as u64 * 3 / 2;
    let size = |i: usize| sizes.get(i).copied().unwrap_or(u64::MAX);
    let mut chosen: Vec<usize> = Vec::new();
    let mut total = 0u64;
    for g in &mut groups {
        let pick = g
            .iter()
            .position(|&i| size(i) <= fair)
            .or_else(|| (0..g.len()).min_by_key(|&k| (size(g[k]), k)));
        if let Some(k) = pick {
            let i = g.remove(k);
            if total + size(i) <= max_bytes && chosen.len() < max_files {
                total += size(i);
                chosen.push(i);
            }
        }
    }
    loop {
        let mut added = false;
        for g in &mut groups {
            if chosen.len() >= max_files {
                break;
            }
            while let Some(&i) = g.first() {
                g.remove(0);
                if total + size(i) <= max_bytes {
                    total += size(i);
                    chosen.push(i);
                    added = true;
                    break;
                }
            }
        }
        if !added || chosen.len() >= max_files {
            break;
        }
    }
    chosen.sort_unstable();
    chosen
}

/// `LICENSES.md` for a directory of generated calls.
pub fn licenses_markdown() -> String {
    r#"# Licences of the generated calls

Every WAV file in this directory is a synthetic answered call made by `trunx corpus generate`
(deterministic, seeded; see `src/tools/corpus/`). Each call mixes some of the ingredients below,
then passes through a simulated telephone channel (band-pass, gain, noise, G.711, packet loss).

## Ingredients

| Ingredient | Source | Author | Licence |
|---|---|---|---|
| Voice prompts (`hello`, `vm-*`, `digits/*`, intercept messages, `beep`, `*-2tone`) | Asterisk core sounds, English, `en_US_f_Allison` (Debian package `asterisk-core-sounds-en-wav`, <http://downloads.asterisk.org/pub/telephony/sounds/>) | Recorded by Allison Smith (<http://www.theivrvoice.com>), financial contributions by Digium, Inc. | CC-BY-SA-3.0 |
| Music on hold: `macroform-cold_day`, `macroform-robot_dity`, `macroform-the_simplicity` | Asterisk MOH "opsound" (Debian package `asterisk-moh-opsound-wav`) | Paul Shuler (Macroform), <http://macroform.bandcamp.com/> | CC-BY-SA-3.0 |
| Music on hold: `manolo_camp-morning_coffee` | same | Manolo Camp, <http://ccmixter.org/people/ManoloCamp> | CC-BY-SA-3.0 |
| Music on hold: `reno_project-system` | same | Reno Project, <http://www.jamendo.com/en/album/23661> | CC-BY-SA-3.0 |
| Synthetic speech (live answers, personal and carrier greetings) | generated with the eSpeak NG text-to-speech program (GPL-3.0-or-later); the texts are trunx's own (`src/tools/corpus/script.rs`) | trunx authors | audio output of the program; no third-party material |
| Tones (beeps, SIT, fax CNG/CED/V.21, DTMF, doorbell, sung vowel), noise | synthesised by `src/tools/corpus/tones.rs` and `src/tools/corpus/channel.rs` | trunx authors | Apache-2.0 (as trunx) |

## Licence of the calls

Because they contain CC-BY-SA-3.0 material, the calls (the WAV files) and `labels.csv` are
distributed under the Creative Commons Attribution-ShareAlike 3.0 licence,
<https://creativecommons.org/licenses/by-sa/3.0/>. Attribution: "Asterisk sounds by Allison
Smith / Digium, Inc.; music by Macroform, Manolo Camp and Reno Project (Asterisk opsound MOH);
mixed into synthetic calls by the trunx project". Changes: excerpted, resampled or re-levelled,
mixed with synthetic speech, tones and noise, band-limited and G.711-coded.
"#
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(file: &str, beep: Option<(u64, u64)>) -> Label {
        Label {
            file: file.to_string(),
            truth: Truth::Machine,
            beep_ms: beep,
            notes: format!(
                "cat={};beep=dual:1400+1800",
                file[5..].trim_end_matches(".wav")
            ),
        }
    }

    #[test]
    fn csv_round_trips() {
        let labels = vec![
            label("0000-machine_short.wav", Some((3120, 3480))),
            label("0001-fax.wav", None),
        ];
        let text = to_csv(&labels);
        assert!(text.starts_with("file,truth,beep_start_ms,beep_end_ms,notes\n"));
        assert!(text.contains("0001-fax.wav,machine,,,cat=fax;"));
        assert_eq!(parse_labels(&text).unwrap(), labels);
        assert_eq!(category_of(&labels[1]), Some(Category::Fax));
    }

    #[test]
    fn bad_rows_are_typed_errors() {
        assert!(matches!(parse_labels("a,b\n"), Err(LabelError::Header)));
        let bad = format!("{LABELS_HEADER}\nx.wav,robot,,,\n");
        assert!(matches!(
            parse_labels(&bad),
            Err(LabelError::Line { line: 2, .. })
        ));
        let bad = format!("{LABELS_HEADER}\nx.wav,machine,50,10,\n");
        assert!(matches!(parse_labels(&bad), Err(LabelError::Line { .. })));
    }

    #[test]
    fn golden_covers_every_category_within_budget() {
        let mut labels = Vec::new();
        let mut sizes = Vec::new();
        for i in 0..190 {
            let c = Category::ALL[i % Category::ALL.len()];
            labels.push(label(&format!("{i:04}-{}.wav", c.name()), None));
            sizes.push(100_000 + (i as u64 * 7919) % 200_000);
        }
        let chosen = select_golden(&labels, &sizes, 4_500_000, 40);
        let total: u64 = chosen.iter().map(|&i| sizes[i]).sum();
        assert!(total <= 4_500_000);
        assert!(chosen.len() >= 19 && chosen.len() <= 40, "{}", chosen.len());
        for c in Category::ALL {
            assert!(
                chosen.iter().any(|&i| category_of(&labels[i]) == Some(c)),
                "{c:?}"
            );
        }
        assert_eq!(chosen, select_golden(&labels, &sizes, 4_500_000, 40));
    }
}
