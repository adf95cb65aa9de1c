//! Unit tests of the calling windows: schedules, the time-zone table, and the check across
//! zones, DST changes and state rules, at fixed instants. Tests must not read the clock.

use serde_json::{Value, json};

use super::zones::{PREFIX_TABLE, PREFIX_TIMEZONES, parse_prefix_table};
use super::*;
use crate::campaign::mode::FieldError;
use crate::campaign::status::Channel;

/// Unix ms of a UTC civil time.
fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    jiff::civil::date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Unix ms of a civil time in an IANA zone (unambiguous times only).
fn local(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
    let tz = TimeZone::get(zone).unwrap();
    tz.to_ambiguous_timestamp(jiff::civil::date(y, mo, d).at(h, mi, 0, 0))
        .unambiguous()
        .unwrap()
        .as_millisecond()
}

fn opens_at(c: &WindowCheck) -> Option<i64> {
    match c {
        WindowCheck::Closed { opens_at_ms, .. } => *opens_at_ms,
        WindowCheck::Open { .. } => panic!("expected closed, got {c:?}"),
    }
}

fn closes_at(c: &WindowCheck) -> i64 {
    match c {
        WindowCheck::Open { closes_at_ms } => *closes_at_ms,
        WindowCheck::Closed { .. } => panic!("expected open, got {c:?}"),
    }
}

fn reason(c: &WindowCheck) -> String {
    match c {
        WindowCheck::Closed { reason, .. } => reason.to_string(),
        WindowCheck::Open { .. } => panic!("expected closed, got {c:?}"),
    }
}

const NEW_YORK: &str = "+12125550100";
const LOS_ANGELES: &str = "+13105550100";
const CHICAGO: &str = "+13125550100";
const PHOENIX: &str = "+16025550100";
const HONOLULU: &str = "+18085550100";

// --- data ---

#[test]
fn embedded_table_parses_with_known_rows() {
    let table = parse_prefix_table(PREFIX_TIMEZONES).unwrap();
    assert_eq!(table.rows.len(), 3240);
    assert_eq!(
        table
            .rows
            .iter()
            .filter(|r| r.prefix.starts_with('1'))
            .count(),
        1996
    );
    assert_eq!(table.longest_prefix, 9);
    let row = |p: &str| -> Vec<&str> {
        let i = table.rows.binary_search_by(|r| r.prefix.cmp(p)).unwrap();
        table.rows[i].names.to_vec()
    };
    assert_eq!(row("1212"), ["America/New_York"]);
    assert_eq!(row("1808"), ["Pacific/Honolulu"]);
    assert_eq!(row("1602"), ["America/Phoenix"]);
    assert_eq!(row("1671"), ["Pacific/Guam"]);
    // 208 (Idaho) is split by NXX.
    assert_eq!(row("12082"), ["America/Boise", "America/Los_Angeles"]);
    assert_eq!(row("1208201"), ["America/Denver"]);
    assert_eq!(row("1208215"), ["America/Los_Angeles"]);
    assert!(
        table
            .rows
            .binary_search_by(|r| r.prefix.cmp("1208"))
            .is_err()
    );
    assert_eq!(row("441"), ["Europe/London"]);
    assert_eq!(row("441534"), ["Europe/Jersey"]);
    // The NANP fallback row without the zones across the date line.
    let nanp = row("1");
    assert!(nanp.contains(&"America/New_York") && nanp.contains(&"Pacific/Honolulu"));
    assert!(nanp.contains(&"America/Anchorage") && nanp.contains(&"America/St_Johns"));
    for dropped in ["Pacific/Guam", "Pacific/Saipan", "Pacific/Pago_Pago"] {
        assert!(!nanp.contains(&dropped), "{dropped}");
    }
    assert_eq!(nanp.len(), 42 - 3);
}

#[test]
fn every_zone_name_is_in_the_embedded_tzdb() {
    let missing: Vec<&str> = PREFIX_TABLE
        .rows
        .iter()
        .flat_map(|r| r.zones.iter())
        .filter(|z| z.tz.is_none())
        .map(|z| z.name)
        .collect();
    assert!(missing.is_empty(), "unknown to jiff: {missing:?}");
}

#[test]
fn malformed_table_lines_are_rejected() {
    assert!(parse_prefix_table("1x|America/New_York\n").is_err());
    assert!(parse_prefix_table("1212 America/New_York\n").is_err());
    assert!(parse_prefix_table("1212|\n").is_err());
    assert!(parse_prefix_table("1212|America/New_York&\n").is_err());
    assert!(parse_prefix_table("1212|A/B\n1212|C/D\n").is_err());
    let ok = parse_prefix_table("# comment\n\n1212|America/New_York\n").unwrap();
    assert_eq!(ok.rows.len(), 1);
}

#[test]
fn zones_for_uses_the_longest_prefix() {
    assert_eq!(zones_for(NEW_YORK).unwrap(), ["America/New_York"]);
    assert_eq!(zones_for("+12082015555").unwrap(), ["America/Denver"]);
    assert_eq!(zones_for("+12082155555").unwrap(), ["America/Los_Angeles"]);
    assert_eq!(
        zones_for("+12082005555").unwrap(),
        ["America/Boise", "America/Los_Angeles"]
    );
    assert_eq!(zones_for("+442071838750").unwrap(), ["Europe/London"]);
    // Not E.164, or a country code without a row.
    assert_eq!(zones_for("12125550100"), None);
    assert_eq!(zones_for("+1212555010x"), None);
    assert_eq!(zones_for("+8085550100"), None);
}

/// Every row, the fallbacks included, leaves some voice and SMS time in January and July:
/// no number is closed forever by its candidate zones alone.
#[test]
fn every_prefix_row_has_an_opening_in_winter_and_summer() {
    for row in PREFIX_TABLE.rows.iter() {
        for now in [utc(2026, 1, 15, 0, 0), utc(2026, 7, 15, 0, 0)] {
            for window in [VOICE_WINDOW, SMS_WINDOW] {
                let c = check_zones(&row.zones, &window, now);
                let ok = match &c {
                    WindowCheck::Open { .. } => true,
                    WindowCheck::Closed { opens_at_ms, .. } => opens_at_ms.is_some(),
                };
                assert!(ok, "{} {:?} {window}: {c:?}", row.prefix, row.names);
            }
        }
    }
}

// --- across zones ---

#[test]
fn new_york_and_los_angeles_at_the_same_instant() {
    // 2026-06-10 12:30 UTC = 08:30 EDT = 05:30 PDT.
    let now = utc(2026, 6, 10, 12, 30);
    let ny = check(NEW_YORK, &VOICE_WINDOW, now);
    assert_eq!(closes_at(&ny), utc(2026, 6, 11, 1, 0)); // 21:00 EDT
    let la = check(LOS_ANGELES, &VOICE_WINDOW, now);
    assert_eq!(opens_at(&la), Some(utc(2026, 6, 10, 15, 0))); // 08:00 PDT
    assert_eq!(
        reason(&la),
        "outside 08:00-21:00 in America/Los_Angeles (local Wed 05:30)"
    );
    // 2026-06-11 02:00 UTC = 22:00 EDT (closed) = 19:00 PDT (open).
    let later = utc(2026, 6, 11, 2, 0);
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, later)),
        Some(utc(2026, 6, 11, 12, 0))
    );
    assert_eq!(
        closes_at(&check(LOS_ANGELES, &VOICE_WINDOW, later)),
        utc(2026, 6, 11, 4, 0)
    );
    // Chicago, in the example of the reason text.
    let chi = check(CHICAGO, &VOICE_WINDOW, utc(2026, 6, 10, 12, 12));
    assert_eq!(
        reason(&chi),
        "outside 08:00-21:00 in America/Chicago (local Wed 07:12)"
    );
}

#[test]
fn window_edges_open_at_start_and_close_at_end() {
    let at = |h, m, s: i64| local("America/New_York", 2026, 6, 10, h, m) + s * 1000;
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, at(7, 59, 59))),
        Some(at(8, 0, 0))
    );
    assert_eq!(
        closes_at(&check(NEW_YORK, &VOICE_WINDOW, at(8, 0, 0))),
        at(21, 0, 0)
    );
    assert_eq!(
        closes_at(&check(NEW_YORK, &VOICE_WINDOW, at(20, 59, 59))),
        at(21, 0, 0)
    );
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, at(21, 0, 0))),
        Some(local("America/New_York", 2026, 6, 11, 8, 0))
    );
    // SMS: 07:00-19:00.
    assert_eq!(
        closes_at(&check(NEW_YORK, &SMS_WINDOW, at(7, 0, 0))),
        at(19, 0, 0)
    );
    assert_eq!(
        opens_at(&check(NEW_YORK, &SMS_WINDOW, at(19, 0, 0))),
        Some(local("America/New_York", 2026, 6, 11, 7, 0))
    );
}

// --- DST ---

#[test]
fn new_york_spring_forward() {
    // DST starts 2026-03-08 02:00 EST: 08:00 is 13:00 UTC the day before, 12:00 UTC that day.
    let friday_night = utc(2026, 3, 7, 3, 0); // Fri 22:00 EST
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, friday_night)),
        Some(utc(2026, 3, 7, 13, 0))
    );
    let saturday_night = utc(2026, 3, 8, 3, 0); // Sat 22:00 EST
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, saturday_night)),
        Some(utc(2026, 3, 8, 12, 0))
    );
    // Closing on the DST day is at 21:00 EDT = 01:00 UTC.
    assert_eq!(
        closes_at(&check(NEW_YORK, &VOICE_WINDOW, utc(2026, 3, 8, 12, 0))),
        utc(2026, 3, 9, 1, 0)
    );
    // 12:30 UTC that day is 08:30 EDT (open); an hour-blind offset of -5 would say 07:30.
    assert!(matches!(
        check(NEW_YORK, &VOICE_WINDOW, utc(2026, 3, 8, 12, 30)),
        WindowCheck::Open { .. }
    ));
}

#[test]
fn new_york_fall_back() {
    // DST ends 2026-11-01 02:00 EDT: 08:00 is 12:00 UTC on Oct 31, 13:00 UTC on Nov 1.
    assert_eq!(
        opens_at(&check(NEW_YORK, &VOICE_WINDOW, utc(2026, 10, 31, 3, 0))),
        Some(utc(2026, 10, 31, 12, 0))
    );
    let sat_late = utc(2026, 11, 1, 3, 0); // Sat 23:00 EDT
    let c = check(NEW_YORK, &VOICE_WINDOW, sat_late);
    assert_eq!(opens_at(&c), Some(utc(2026, 11, 1, 13, 0)));
    // 12:30 UTC on Nov 1 is 07:30 EST: still closed.
    let c = check(NEW_YORK, &VOICE_WINDOW, utc(2026, 11, 1, 12, 30));
    assert_eq!(
        reason(&c),
        "outside 08:00-21:00 in America/New_York (local Sun 07:30)"
    );
    assert_eq!(
        closes_at(&check(NEW_YORK, &VOICE_WINDOW, utc(2026, 11, 1, 13, 0))),
        utc(2026, 11, 2, 2, 0) // 21:00 EST
    );
}

/// Legal windows never touch 01:00-03:00, but the search must stay exact for any window:
/// a start skipped by the spring-forward gap opens at the transition, and a fold reopens
/// the window when the clock goes back.
#[test]
fn window_edges_inside_a_dst_gap_or_fold() {
    // 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT; 02:30 never happens.
    let early = LocalWindow::new(2 * 60 + 30, 5 * 60, [true; 7]).unwrap();
    let c = check(NEW_YORK, &early, utc(2026, 3, 8, 6, 0));
    assert_eq!(opens_at(&c), Some(utc(2026, 3, 8, 7, 0)));
    // 2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST; 01:00-02:00 happens twice.
    let night = LocalWindow::new(0, 90, [true; 7]).unwrap();
    let c = check(NEW_YORK, &night, utc(2026, 11, 1, 5, 0)); // 01:00 EDT
    assert_eq!(closes_at(&c), utc(2026, 11, 1, 5, 30)); // 01:30 EDT
    let c = check(NEW_YORK, &night, utc(2026, 11, 1, 5, 30));
    assert_eq!(opens_at(&c), Some(utc(2026, 11, 1, 6, 0))); // 01:00 EST
    let c = check(NEW_YORK, &night, utc(2026, 11, 1, 6, 0));
    assert_eq!(closes_at(&c), utc(2026, 11, 1, 6, 30)); // 01:30 EST
}

#[test]
fn phoenix_and_honolulu_keep_standard_time() {
    // Around both New York DST changes and in summer/winter, the UTC times stay put.
    for (month, day) in [(1, 15), (3, 8), (3, 9), (7, 1), (11, 1), (11, 2)] {
        // 06:00 UTC is 23:00 MST the day before (closed) and 20:00 HST (open).
        let now = utc(2026, month, day, 6, 0);
        assert_eq!(
            opens_at(&check(PHOENIX, &VOICE_WINDOW, now)),
            Some(utc(2026, month, day, 15, 0)), // 08:00 MST
            "{month}-{day}"
        );
        assert_eq!(
            closes_at(&check(HONOLULU, &VOICE_WINDOW, now)),
            utc(2026, month, day, 7, 0), // 21:00 HST
            "{month}-{day}"
        );
    }
}

// --- several zones ---

#[test]
fn split_area_code_row_with_two_zones_is_the_intersection() {
    // +1208 200-xxxx has no NPA-NXX row, so the 12082 row applies: America/Boise (MT) & America/Los_Angeles (PT).
    let number = "+12082005555";
    let boise_open = local("America/Boise", 2026, 6, 10, 8, 0); // 07:00 PDT
    let c = check(number, &VOICE_WINDOW, boise_open);
    assert_eq!(
        opens_at(&c),
        Some(local("America/Los_Angeles", 2026, 6, 10, 8, 0))
    );
    assert_eq!(
        reason(&c),
        "outside 08:00-21:00 in America/Los_Angeles (local Wed 07:00)"
    );
    // Open from 08:00 PT, closed at 21:00 MT = 20:00 PT (the earliest close).
    let c = check(
        number,
        &VOICE_WINDOW,
        local("America/Los_Angeles", 2026, 6, 10, 8, 0),
    );
    assert_eq!(closes_at(&c), local("America/Boise", 2026, 6, 10, 21, 0));
    let c = check(
        number,
        &VOICE_WINDOW,
        local("America/Boise", 2026, 6, 10, 21, 0),
    );
    assert_eq!(
        reason(&c),
        "outside 08:00-21:00 in America/Boise (local Wed 21:00)"
    );
    assert_eq!(
        opens_at(&c),
        Some(local("America/Los_Angeles", 2026, 6, 11, 8, 0))
    );
}

#[test]
fn split_area_code_nxx_wholly_in_one_zone() {
    // +1208 201: Denver only; +1208 215: Los Angeles only.
    let now = local("America/Denver", 2026, 6, 10, 8, 30); // 07:30 PDT
    assert_eq!(
        closes_at(&check("+12082015555", &VOICE_WINDOW, now)),
        local("America/Denver", 2026, 6, 10, 21, 0)
    );
    assert_eq!(
        opens_at(&check("+12082155555", &VOICE_WINDOW, now)),
        Some(local("America/Los_Angeles", 2026, 6, 10, 8, 0))
    );
}

#[test]
fn unknown_nanp_number_gets_the_conservative_window() {
    // +1 999 is no area code: only the "1" row matches.
    let unknown = "+19995550100";
    assert_eq!(zones_for(unknown).unwrap().len(), 39);
    // July: opens when Honolulu/Adak reach 08:00 local = 18:00 UTC,
    // closes when St. John's reaches 21:00 NDT = 23:30 UTC.
    let c = check(unknown, &VOICE_WINDOW, utc(2026, 7, 15, 14, 0));
    assert_eq!(opens_at(&c), Some(utc(2026, 7, 15, 18, 0)));
    let c = check(unknown, &VOICE_WINDOW, utc(2026, 7, 15, 18, 0));
    assert_eq!(closes_at(&c), utc(2026, 7, 15, 23, 30));
    // January: St. John's on NST (-3:30) closes at 00:30 UTC.
    let c = check(unknown, &VOICE_WINDOW, utc(2026, 1, 15, 18, 0));
    assert_eq!(closes_at(&c), utc(2026, 1, 16, 0, 30));
    // The same instant is open for a known New York number.
    assert!(matches!(
        check(NEW_YORK, &VOICE_WINDOW, utc(2026, 7, 15, 14, 0)),
        WindowCheck::Open { .. }
    ));
    // SMS: 17:00 UTC (07:00 HST) to 21:30 UTC (19:00 NDT) in July.
    let c = check(unknown, &SMS_WINDOW, utc(2026, 7, 15, 12, 0));
    assert_eq!(opens_at(&c), Some(utc(2026, 7, 15, 17, 0)));
    let c = check(unknown, &SMS_WINDOW, utc(2026, 7, 15, 17, 0));
    assert_eq!(closes_at(&c), utc(2026, 7, 15, 21, 30));
}

#[test]
fn unknown_country_is_closed_without_opening() {
    let c = check("+8085550100", &VOICE_WINDOW, utc(2026, 7, 15, 14, 0));
    assert_eq!(
        c,
        WindowCheck::Closed {
            opens_at_ms: None,
            reason: ClosedReason::NoTimeZone
        }
    );
    assert_eq!(reason(&c), "no time zone known");
    assert_eq!(opens_at(&check("not a number", &VOICE_WINDOW, 0)), None);
}

#[test]
fn zones_that_never_overlap_give_no_opening() {
    // Boise is an hour ahead of Los Angeles: a one-hour window is never open in both at
    // once (09:00-10:00 MT is 08:00-09:00 PT), a two-hour one is for an hour.
    let window = LocalWindow::new(9 * 60, 10 * 60, [true; 7]).unwrap();
    let c = check("+12082005555", &window, utc(2026, 6, 10, 0, 0));
    assert_eq!(opens_at(&c), None);
    let window = LocalWindow::new(9 * 60, 11 * 60, [true; 7]).unwrap();
    let c = check("+12082005555", &window, utc(2026, 6, 10, 0, 0));
    assert_eq!(
        opens_at(&c),
        Some(local("America/Los_Angeles", 2026, 6, 10, 9, 0))
    );
}

// --- schedule ---

fn schedule(channel: Channel, v: Value) -> Result<LocalWindow, FieldError> {
    let s = validate_schedule(channel, &v)?;
    effective_window(channel, Some(&s))
}

#[test]
fn schedule_narrows_hours_and_days_never_widens() {
    let w = schedule(
        Channel::Voice,
        json!({"start": "09:00", "end": "17:30", "days": ["mon", "tue", "wed", "thu", "fri"]}),
    )
    .unwrap();
    assert_eq!(w.to_string(), "09:00-17:30 mon,tue,wed,thu,fri");
    // Wider than the law: clipped to it.
    let w = schedule(Channel::Voice, json!({"start": "06:00", "end": "23:00"})).unwrap();
    assert_eq!(w, VOICE_WINDOW);
    let w = schedule(Channel::Sms, json!({"start": "06:00", "end": "24:00"})).unwrap();
    assert_eq!(w, SMS_WINDOW);
    let w = schedule(Channel::Sms, json!({"end": "12:00"})).unwrap();
    assert_eq!(w.to_string(), "07:00-12:00");
    assert_eq!(schedule(Channel::Voice, json!({})).unwrap(), VOICE_WINDOW);
    assert_eq!(
        effective_window(Channel::Voice, None).unwrap(),
        VOICE_WINDOW
    );
}

#[test]
fn schedule_hours_apply_in_local_time() {
    let w = schedule(Channel::Voice, json!({"start": "09:00", "end": "17:30"})).unwrap();
    let c = check(NEW_YORK, &w, local("America/New_York", 2026, 6, 10, 8, 30));
    assert_eq!(
        opens_at(&c),
        Some(local("America/New_York", 2026, 6, 10, 9, 0))
    );
    assert_eq!(
        reason(&c),
        "outside 09:00-17:30 in America/New_York (local Wed 08:30)"
    );
    let c = check(NEW_YORK, &w, local("America/New_York", 2026, 6, 10, 9, 0));
    assert_eq!(
        closes_at(&c),
        local("America/New_York", 2026, 6, 10, 17, 30)
    );
}

#[test]
fn weekday_schedule_opens_again_on_monday() {
    let w = schedule(
        Channel::Voice,
        json!({"start": "09:00", "end": "17:00", "days": ["mon", "tue", "wed", "thu", "fri"]}),
    )
    .unwrap();
    // Friday 2026-06-12 17:00 EDT: closed until Monday 09:00.
    let fri = local("America/New_York", 2026, 6, 12, 17, 0);
    let c = check(NEW_YORK, &w, fri);
    assert_eq!(
        opens_at(&c),
        Some(local("America/New_York", 2026, 6, 15, 9, 0))
    );
    // Saturday noon: inside the hours, outside the days.
    let c = check(NEW_YORK, &w, local("America/New_York", 2026, 6, 13, 12, 0));
    assert_eq!(
        reason(&c),
        "outside 09:00-17:00 mon,tue,wed,thu,fri in America/New_York (local Sat 12:00)"
    );
    assert_eq!(
        opens_at(&c),
        Some(local("America/New_York", 2026, 6, 15, 9, 0))
    );
    // Friday 16:00 in Honolulu (22:00 in New York): hours and days are the prospect's.
    let c = check(HONOLULU, &w, local("Pacific/Honolulu", 2026, 6, 12, 16, 0));
    assert_eq!(closes_at(&c), local("Pacific/Honolulu", 2026, 6, 12, 17, 0));
    // Sunday-only, asked on a Monday: six days ahead.
    let sun = schedule(Channel::Voice, json!({"days": ["sun"]})).unwrap();
    let c = check(
        NEW_YORK,
        &sun,
        local("America/New_York", 2026, 6, 15, 12, 0),
    );
    assert_eq!(
        opens_at(&c),
        Some(local("America/New_York", 2026, 6, 21, 8, 0))
    );
}

#[test]
fn schedule_errors_name_the_field() {
    let field = |channel, v: Value| validate_schedule(channel, &v).unwrap_err().field;
    let voice = Channel::Voice;
    assert_eq!(field(voice, json!("9-5")), "schedule");
    assert_eq!(field(voice, json!({"start": "9:00"})), "schedule.start");
    assert_eq!(field(voice, json!({"start": "24:00"})), "schedule.start");
    assert_eq!(field(voice, json!({"start": "12:60"})), "schedule.start");
    assert_eq!(field(voice, json!({"start": 9})), "schedule.start");
    assert_eq!(field(voice, json!({"end": "00:00"})), "schedule.end");
    assert_eq!(field(voice, json!({"end": "24:01"})), "schedule.end");
    assert_eq!(field(voice, json!({"end": "1７:00"})), "schedule.end");
    assert_eq!(
        field(voice, json!({"start": "17:00", "end": "09:00"})),
        "schedule.end"
    );
    assert_eq!(
        field(voice, json!({"start": "09:00", "end": "09:00"})),
        "schedule.end"
    );
    assert_eq!(field(voice, json!({"days": "mon"})), "schedule.days");
    assert_eq!(field(voice, json!({"days": []})), "schedule.days");
    assert_eq!(
        field(voice, json!({"days": ["mon", "Tue"]})),
        "schedule.days[1]"
    );
    assert_eq!(
        field(voice, json!({"days": ["mon", 2]})),
        "schedule.days[1]"
    );
    assert_eq!(
        field(voice, json!({"days": ["mon", "fri", "mon"]})),
        "schedule.days[2]"
    );
    assert_eq!(field(voice, json!({"strat": "09:00"})), "schedule.strat");
    // No minute inside the legal window.
    let e = validate_schedule(voice, &json!({"start": "21:00"})).unwrap_err();
    assert_eq!(e.field, "schedule");
    assert_eq!(
        e.message,
        "21:00-24:00 leaves no time inside the voice window 08:00-21:00 (prospect's local time)"
    );
    assert_eq!(field(voice, json!({"end": "08:00"})), "schedule");
    assert_eq!(field(Channel::Sms, json!({"start": "19:00"})), "schedule");
    assert!(validate_schedule(voice, &json!({"start": "19:00"})).is_ok());
}

#[test]
fn local_window_construction() {
    assert!(LocalWindow::new(600, 600, [true; 7]).is_none());
    assert!(LocalWindow::new(0, 1441, [true; 7]).is_none());
    assert!(LocalWindow::new(0, 60, [false; 7]).is_none());
    let weekend = LocalWindow::new(0, 1440, [false, false, false, false, false, true, true]);
    assert!(VOICE_WINDOW.intersect(&weekend.unwrap()).is_some());
    let night = LocalWindow::new(0, 8 * 60, [true; 7]).unwrap();
    assert_eq!(VOICE_WINDOW.intersect(&night), None);
    assert_eq!(channel_window(Channel::Sms), SMS_WINDOW);
}

#[test]
fn out_of_range_time_is_closed() {
    let c = check(NEW_YORK, &VOICE_WINDOW, i64::MAX);
    assert_eq!(reason(&c), "time out of range");
    assert_eq!(opens_at(&c), None);
}
