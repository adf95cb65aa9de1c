//! State calling rules as data (issue 20): every shipped rule file allows one dial and refuses
//! another, and a rule change is a change of its file only.

// --- State rules as data ----------------------------------------------------------------

/// Unix ms of a civil time in an IANA zone.
fn local(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    jiff::tz::TimeZone::get(zone)
        .unwrap()
        .to_ambiguous_timestamp(jiff::civil::date(y, mo, d).at(h, mi, 0, 0))
        .compatible()
        .unwrap()
        .as_millisecond()
}

fn is_open(c: &trunx::campaign::window::WindowCheck) -> bool {
    matches!(c, trunx::campaign::window::WindowCheck::Open { .. })
}

/// One case of a rule file: a number of its state, a local time the federal window allows
/// and the rule allows, and one the federal window allows but the rule refuses.
struct RuleCase {
    file: &'static str,
    phone: &'static str,
    zone: &'static str,
    allowed: (i16, i8, i8, i8, i8),
    refused: (i16, i8, i8, i8, i8),
}

// 2026-12-05 is a Saturday, 2026-12-06 a Sunday, 2026-12-07 a Monday.
const RULE_CASES: &[RuleCase] = &[
    RuleCase {
        file: "alabama.toml",
        phone: "+12055550123",
        zone: "America/Chicago",
        allowed: (2026, 12, 7, 10, 0),
        refused: (2026, 12, 25, 10, 0),
    }, // Christmas
    RuleCase {
        file: "florida.toml",
        phone: "+13055550123",
        zone: "America/New_York",
        allowed: (2026, 12, 7, 19, 59),
        refused: (2026, 12, 7, 20, 0),
    },
    RuleCase {
        file: "louisiana.toml",
        phone: "+15045550123",
        zone: "America/Chicago",
        allowed: (2026, 12, 5, 10, 0),
        refused: (2026, 12, 6, 10, 0),
    }, // Sunday
    RuleCase {
        file: "mississippi.toml",
        phone: "+16015550123",
        zone: "America/Chicago",
        allowed: (2026, 12, 5, 19, 30),
        refused: (2026, 12, 6, 12, 0),
    }, // Sunday
    RuleCase {
        file: "oklahoma.toml",
        phone: "+14055550123",
        zone: "America/Chicago",
        allowed: (2026, 12, 7, 8, 0),
        refused: (2026, 12, 7, 20, 30),
    },
    RuleCase {
        file: "texas.toml",
        phone: "+17135550123",
        zone: "America/Chicago",
        allowed: (2026, 12, 6, 12, 30),
        refused: (2026, 12, 6, 10, 0),
    }, // Sunday morning
    RuleCase {
        file: "utah.toml",
        phone: "+18015550123",
        zone: "America/Denver",
        allowed: (2026, 12, 7, 20, 30),
        refused: (2026, 7, 24, 10, 0),
    }, // Pioneer Day
    RuleCase {
        file: "washington.toml",
        phone: "+12065550123",
        zone: "America/Los_Angeles",
        allowed: (2026, 12, 5, 8, 0),
        refused: (2026, 12, 5, 20, 15),
    },
];

#[test]
fn every_rule_file_allows_one_dial_and_refuses_another() {
    use trunx::campaign::rules::{EMBEDDED, RuleSet};
    use trunx::campaign::window::{
        ClosedReason, VOICE_WINDOW, WindowCheck, check, check_with_rules,
    };
    let rules = RuleSet::embedded();
    for (file, _) in EMBEDDED {
        assert!(
            RULE_CASES.iter().any(|c| c.file == *file),
            "{file} has no test case"
        );
    }
    for c in RULE_CASES {
        let rule = rules.for_phone(c.phone).unwrap();
        assert_eq!(rule.file, c.file);
        let (y, mo, d, h, mi) = c.allowed;
        let at = local(c.zone, y, mo, d, h, mi);
        assert!(
            is_open(&check_with_rules(c.phone, &VOICE_WINDOW, &rules, at)),
            "{}: {:?} should be allowed",
            c.file,
            c.allowed
        );
        let (y, mo, d, h, mi) = c.refused;
        let at = local(c.zone, y, mo, d, h, mi);
        // The federal window alone would allow it: the refusal is the rule's.
        assert!(is_open(&check(c.phone, &VOICE_WINDOW, at)), "{}", c.file);
        match check_with_rules(c.phone, &VOICE_WINDOW, &rules, at) {
            WindowCheck::Closed {
                opens_at_ms: Some(opens),
                reason: ClosedReason::StateRule { state, version, .. },
            } => {
                assert_eq!(
                    (state.as_str(), version.as_str()),
                    (rule.state.as_str(), "2026.1")
                );
                assert!(opens > at, "{}", c.file);
                // The opening it gives is allowed, and a minute before it is not.
                assert!(
                    is_open(&check_with_rules(c.phone, &VOICE_WINDOW, &rules, opens)),
                    "{}",
                    c.file
                );
                assert!(
                    !is_open(&check_with_rules(
                        c.phone,
                        &VOICE_WINDOW,
                        &rules,
                        opens - 60_000
                    )),
                    "{}",
                    c.file
                );
            }
            other => panic!(
                "{}: {:?} should be refused, got {other:?}",
                c.file, c.refused
            ),
        }
    }
    // Texas on a Sunday morning opens at noon local time.
    let sunday_10 = local("America/Chicago", 2026, 12, 6, 10, 0);
    match check_with_rules("+17135550123", &VOICE_WINDOW, &rules, sunday_10) {
        WindowCheck::Closed { opens_at_ms, .. } => assert_eq!(
            opens_at_ms,
            Some(local("America/Chicago", 2026, 12, 6, 12, 0))
        ),
        other => panic!("{other:?}"),
    }
    // A state without a rule file keeps the federal window.
    let ny_evening = local("America/New_York", 2026, 12, 6, 20, 30);
    assert!(is_open(&check_with_rules(
        "+12125550123",
        &VOICE_WINDOW,
        &rules,
        ny_evening
    )));
}

#[test]
fn a_rule_change_is_a_data_change() {
    use trunx::campaign::rules::RuleSet;
    use trunx::campaign::window::{VOICE_WINDOW, check_with_rules};
    let texas = include_str!("../data/rules/texas.toml");
    let sunday_10 = local("America/Chicago", 2026, 12, 6, 10, 0);
    let shipped = RuleSet::parse(&[("texas.toml".into(), texas.into())]).unwrap();
    assert!(!is_open(&check_with_rules(
        "+17135550123",
        &VOICE_WINDOW,
        &shipped,
        sunday_10
    )));
    let edited = texas
        .replace("sun = \"12:00-21:00\"", "sun = \"09:00-21:00\"")
        .replace("version = \"2026.1\"", "version = \"2026.2\"");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("texas.toml"), edited).unwrap();
    let loaded = trunx::runtime::server::load_rules_dir(dir.path()).unwrap();
    assert_eq!(loaded.for_state("TX").unwrap().version, "2026.2");
    assert!(is_open(&check_with_rules(
        "+17135550123",
        &VOICE_WINDOW,
        &loaded,
        sunday_10
    )));
    // A broken file names itself and the field.
    std::fs::write(
        dir.path().join("texas.toml"),
        "state = \"TX\"\nversion = \"x\"\n[hours]\nall = \"9 to 5\"\n",
    )
    .unwrap();
    let e = trunx::runtime::server::load_rules_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("texas.toml") && e.contains("hours.all"), "{e}");
}
