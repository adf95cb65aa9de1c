//! State calling rules as data: one TOML file per US state in `data/rules/` (embedded in the
//! binary; `rules_dir` points to a directory that replaces them), each with its sources,
//! version and effective date. A rule narrows the calling window of numbers in its state
//! (hours per weekday, holidays with no calls or other hours) and carries the notices the
//! operator must give (caller-ID and call-recording), which each attempt's audit records.
//! Changing a rule is changing its file: no code knows a state.
//!
//! File format (every key but `state`, `version` and `hours.all` optional):
//! ```toml
//! state = "TX"                      # two-letter code, as data/nanp/npa_regions.txt
//! name = "Texas"
//! version = "2026.1"                # recorded on every attempt it allowed
//! effective = "2025-09-01"
//! sources = ["Tex. Bus. & Com. Code 301.051", "..."]
//! frequency_cap_24h = 3            # calls per number per 24 h (informative; see README)
//! caller_id_notice = "..."
//! recording_notice = "all-party consent: announce the recording"
//! holidays = ["2026-12-25"]        # local dates with `hours.holiday` instead of the weekday
//! [hours]
//! all = "09:00-21:00"              # every day, unless a day below says otherwise
//! sun = "12:00-21:00"              # or "closed"
//! holiday = "closed"
//! ```
//! The rule applies in the prospect's local time, in every candidate zone of the number
//! (see [`super::window::check_with_rules`]), on top of the federal window and the campaign
//! schedule: it can only narrow them. Pure: parsing and evaluation, no I/O, and no global
//! state: the set in force is a value the runtime loads at start and hands to the dialer and
//! the SMS sender in their settings.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Deserialize;

/// The rule files shipped, embedded so the binary works anywhere.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "alabama.toml",
        include_str!("../../data/rules/alabama.toml"),
    ),
    (
        "florida.toml",
        include_str!("../../data/rules/florida.toml"),
    ),
    (
        "louisiana.toml",
        include_str!("../../data/rules/louisiana.toml"),
    ),
    (
        "mississippi.toml",
        include_str!("../../data/rules/mississippi.toml"),
    ),
    (
        "oklahoma.toml",
        include_str!("../../data/rules/oklahoma.toml"),
    ),
    ("texas.toml", include_str!("../../data/rules/texas.toml")),
    ("utah.toml", include_str!("../../data/rules/utah.toml")),
    (
        "washington.toml",
        include_str!("../../data/rules/washington.toml"),
    ),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("rule file {file}: {field}: {message}")]
pub struct RuleError {
    pub file: String,
    pub field: String,
    pub message: String,
}

/// A `[from, to)` window in minutes of the local day; `None` is closed all day.
pub type DayHours = Option<(u16, u16)>;

/// One state's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRule {
    pub state: String,
    pub name: String,
    pub version: String,
    pub effective: Option<String>,
    pub sources: Vec<String>,
    pub file: String,
    /// Monday first.
    pub days: [DayHours; 7],
    pub holiday: DayHours,
    pub holidays: Vec<Date>,
    pub frequency_cap_24h: Option<u32>,
    pub caller_id_notice: Option<String>,
    pub recording_notice: Option<String>,
}

impl StateRule {
    /// The hours of a local date (the holiday hours on a listed holiday).
    pub fn hours_on(&self, date: Date) -> DayHours {
        if self.holidays.binary_search(&date).is_ok() {
            return self.holiday;
        }
        self.days[date.weekday().to_monday_zero_offset() as usize]
    }

    /// Whether a local minute of a local date is inside the rule's hours.
    pub fn allows(&self, date: Date, minute: u16) -> bool {
        self.hours_on(date)
            .is_some_and(|(from, to)| from <= minute && minute < to)
    }
}

/// Every state rule in force, by state code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    rules: BTreeMap<String, StateRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    state: String,
    name: Option<String>,
    version: String,
    effective: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    frequency_cap_24h: Option<u32>,
    caller_id_notice: Option<String>,
    recording_notice: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    hours: BTreeMap<String, String>,
}

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_hours(v: &str) -> Option<DayHours> {
    if v == "closed" {
        return Some(None);
    }
    let (a, b) = v.split_once('-')?;
    let hm = |s: &str| -> Option<u16> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (from, to) = (hm(a)?, hm(b)?);
    (from < to).then_some(Some((from, to)))
}

impl RuleSet {
    /// Parses rule files given as (file name, text). Two files for one state are refused.
    pub fn parse(files: &[(String, String)]) -> Result<RuleSet, RuleError> {
        let mut rules = BTreeMap::new();
        for (file, text) in files {
            let err = |field: &str, message: String| RuleError {
                file: file.clone(),
                field: field.to_string(),
                message,
            };
            let raw: RuleFile = toml::from_str(text).map_err(|e| {
                err(
                    "toml",
                    e.message().to_string()
                        + &e.span()
                            .map(|s| format!(" at byte {}", s.start))
                            .unwrap_or_default(),
                )
            })?;
            if raw.state.len() != 2 || !raw.state.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(err("state", "must be a two-letter code like \"TX\"".into()));
            }
            if raw.version.trim().is_empty() {
                return Err(err("version", "must not be empty".into()));
            }
            if let Some(e) = &raw.effective {
                e.parse::<Date>()
                    .map_err(|_| err("effective", "must be a date YYYY-MM-DD".into()))?;
            }
            let mut days: [DayHours; 7] = match raw.hours.get("all") {
                Some(v) => {
                    [parse_hours(v).ok_or_else(|| {
                        err("hours.all", "must be \"HH:MM-HH:MM\" or \"closed\"".into())
                    })?; 7]
                }
                None => return Err(err("hours.all", "is required".into())),
            };
            // A listed holiday with no `hours.holiday` is closed all day.
            let mut holiday = None;
            for (k, v) in &raw.hours {
                let field = format!("hours.{k}");
                let h = parse_hours(v)
                    .ok_or_else(|| err(&field, "must be \"HH:MM-HH:MM\" or \"closed\"".into()))?;
                match k.as_str() {
                    "all" => {}
                    "holiday" => holiday = h,
                    d => match DAY_KEYS.iter().position(|x| *x == d) {
                        Some(i) => days[i] = h,
                        None => {
                            return Err(err(
                                &field,
                                "unknown key; use all, mon..sun or holiday".into(),
                            ));
                        }
                    },
                }
            }
            let mut holidays = Vec::with_capacity(raw.holidays.len());
            for (i, d) in raw.holidays.iter().enumerate() {
                holidays.push(d.parse::<Date>().map_err(|_| {
                    err(
                        &format!("holidays[{i}]"),
                        "must be a date YYYY-MM-DD".into(),
                    )
                })?);
            }
            holidays.sort_unstable();
            let rule = StateRule {
                name: raw.name.unwrap_or_else(|| raw.state.clone()),
                state: raw.state.clone(),
                version: raw.version,
                effective: raw.effective,
                sources: raw.sources,
                file: file.clone(),
                days,
                holiday,
                holidays,
                frequency_cap_24h: raw.frequency_cap_24h,
                caller_id_notice: raw.caller_id_notice,
                recording_notice: raw.recording_notice,
            };
            if let Some(prev) = rules.insert(raw.state.clone(), rule) {
                return Err(err(
                    "state",
                    format!("{} is already ruled by {}", raw.state, prev.file),
                ));
            }
        }
        Ok(RuleSet { rules })
    }

    /// The rules shipped in the binary.
    pub fn embedded() -> RuleSet {
        let files: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        RuleSet::parse(&files).expect("the embedded rule files are valid (tested)")
    }

    /// The rule of a state code, if any.
    pub fn for_state(&self, state: &str) -> Option<&StateRule> {
        self.rules.get(state)
    }

    /// The rule of an E.164 number's state (NANP area code), if any.
    pub fn for_phone(&self, phone: &str) -> Option<&StateRule> {
        super::callerid::region_of(phone).and_then(|s| self.rules.get(s))
    }

    pub fn rules(&self) -> impl Iterator<Item = &StateRule> {
        self.rules.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<RuleSet, RuleError> {
        RuleSet::parse(&[("x.toml".to_string(), text.to_string())])
    }

    #[test]
    fn embedded_files_parse() {
        let set = RuleSet::embedded();
        assert_eq!(set.rules().count(), EMBEDDED.len());
        let tx = set.for_state("TX").unwrap();
        assert_eq!(tx.days[6], Some((12 * 60, 21 * 60)));
        assert_eq!(tx.days[0], Some((9 * 60, 21 * 60)));
        assert_eq!(set.for_phone("+17135550000").unwrap().state, "TX");
        assert!(set.for_phone("+12125550000").is_none());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let e = one("state = \"TX\"\nversion = \"1\"\n[hours]\nall = \"9-21\"\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.field.as_str()), ("x.toml", "hours.all"));
        let e = one("state = \"TX\"\nversion = \"1\"\n[hours]\nall = \"09:00-21:00\"\nsunday = \"closed\"\n").unwrap_err();
        assert_eq!(e.field, "hours.sunday");
        let e = one("state = \"Texas\"\nversion = \"1\"\n[hours]\nall = \"09:00-21:00\"\n")
            .unwrap_err();
        assert_eq!(e.field, "state");
        let e = one("state = \"TX\"\nversion = \"1\"\nholidays = [\"2026-13-01\"]\n[hours]\nall = \"09:00-21:00\"\n").unwrap_err();
        assert_eq!(e.field, "holidays[0]");
        let e =
            one("state = \"TX\"\nversion = \"1\"\ncolour = 1\n[hours]\nall = \"09:00-21:00\"\n")
                .unwrap_err();
        assert_eq!(e.field, "toml");
        let ok = "state = \"TX\"\nversion = \"1\"\n[hours]\nall = \"09:00-21:00\"\n";
        let e = RuleSet::parse(&[
            ("a.toml".to_string(), ok.to_string()),
            ("b.toml".to_string(), ok.to_string()),
        ])
        .unwrap_err();
        assert_eq!((e.file.as_str(), e.field.as_str()), ("b.toml", "state"));
    }
}
