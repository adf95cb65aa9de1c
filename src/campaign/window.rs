//! Calling windows in the prospect's local time: when a number may be dialled (voice) or texted
//! (SMS), and when it next may be if not now.
//!
//! Owns three things:
//! * the legal windows of the public contract, [`VOICE_WINDOW`] 08:00–21:00 and [`SMS_WINDOW`]
//!   07:00–19:00 local time, every day, and the campaign `schedule` that may narrow them (never
//!   widen: the effective window is always the intersection, see [`validate_schedule`]);
//! * the number → time-zone table: libphonenumber's prefix → IANA zones data
//!   (`data/timezones/prefix_timezones.txt`, Apache-2.0, see `data/timezones/NOTICE`, generated
//!   by `scripts/gen_timezones.py`), embedded in the binary and matched by longest prefix
//!   ([`zones_for`]). NANP area codes that span several zones have 7-digit NPA-NXX rows;
//!   a prefix that still lists several zones is treated as "any of these";
//! * the check itself ([`check`]): a number with several candidate zones is inside its window
//!   only when it is inside it in every zone (the intersection), it opens at the first instant
//!   open in all zones and closes at the earliest close. Local times come from jiff's embedded
//!   tzdb and are computed in civil time, so DST changes are exact.
//!
//! Unknown numbers: a number matching only its country-code row gets that row's zones, i.e. the
//! intersection over the whole country (the most conservative window). For NANP (+1) the row
//! lists every NANP zone; we drop Pacific/Guam, Pacific/Saipan and Pacific/Pago_Pago from that
//! fallback (not from their own area codes 671, 670, 684, which always match first). Across the
//! date line they would shrink the fallback to an hour or two (08:00 in Guam is 18:00 the day
//! before in New York) and make any schedule narrower than that empty. What remains spans
//! Newfoundland (UTC−3:30, DST −2:30) to Hawaii and Adak (UTC−10, Adak DST −9), at most 7.5 h,
//! so the voice window keeps at least 5.5 h a day (18:00–23:30 UTC in July, 14:00–19:30 in New
//! York) and the SMS window at least 4.5 h. A number whose country code has no row at all is
//! closed with [`ClosedReason::NoTimeZone`] and no opening.
//!
//! It must not do I/O or read the clock: `now_ms` (Unix milliseconds) is an argument. The
//! caller (the dialer) evaluates it at claim time and again just before the INVITE.

use std::fmt;
use std::sync::LazyLock;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::mode::FieldError;
use super::phone::is_e164;
use super::status::Channel;

/// How far ahead [`check`] looks for the next opening; `None` beyond it.
pub const LOOKAHEAD_DAYS: i64 = 14;

const MINUTES_PER_DAY: u16 = 24 * 60;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_LABELS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A daily window in local wall-clock time: `[start, end)` minutes of the day on the allowed
/// days (Monday first). It never crosses midnight; `end` may be 24:00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalWindow {
    start_minute: u16,
    end_minute: u16,
    days: [bool; 7],
}

/// The voice window of the contract (TCPA): 08:00–21:00 local, every day.
pub const VOICE_WINDOW: LocalWindow = LocalWindow {
    start_minute: 8 * 60,
    end_minute: 21 * 60,
    days: [true; 7],
};

/// The SMS window of the contract: 07:00–19:00 local, every day.
pub const SMS_WINDOW: LocalWindow = LocalWindow {
    start_minute: 7 * 60,
    end_minute: 19 * 60,
    days: [true; 7],
};

/// The legal window of a channel, before any campaign schedule.
pub fn channel_window(channel: Channel) -> LocalWindow {
    match channel {
        Channel::Voice => VOICE_WINDOW,
        Channel::Sms => SMS_WINDOW,
    }
}

impl LocalWindow {
    /// A window, or `None` if it is empty (`start >= end`, `end` past 24:00, no day).
    pub const fn new(start_minute: u16, end_minute: u16, days: [bool; 7]) -> Option<LocalWindow> {
        let mut any_day = false;
        let mut i = 0;
        while i < 7 {
            any_day |= days[i];
            i += 1;
        }
        if start_minute < end_minute && end_minute <= MINUTES_PER_DAY && any_day {
            Some(LocalWindow {
                start_minute,
                end_minute,
                days,
            })
        } else {
            None
        }
    }

    pub const fn start_minute(&self) -> u16 {
        self.start_minute
    }

    pub const fn end_minute(&self) -> u16 {
        self.end_minute
    }

    /// Allowed days, Monday first.
    pub const fn days(&self) -> [bool; 7] {
        self.days
    }

    /// The part of both windows, or `None` if they share no minute.
    pub fn intersect(&self, other: &LocalWindow) -> Option<LocalWindow> {
        let mut days = [false; 7];
        for (i, day) in days.iter_mut().enumerate() {
            *day = self.days[i] && other.days[i];
        }
        LocalWindow::new(
            self.start_minute.max(other.start_minute),
            self.end_minute.min(other.end_minute),
            days,
        )
    }

    /// Whether a local wall-clock time is inside the window (minute resolution: 20:59:59 is
    /// inside 08:00–21:00, 21:00:00 is not).
    pub fn contains(&self, local: DateTime) -> bool {
        let day = local.weekday().to_monday_zero_offset() as usize;
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.days[day] && self.start_minute <= minute && minute < self.end_minute
    }
}

/// `08:00-21:00`, followed by the days when not every day, e.g. `09:00-17:30 mon,tue,wed`.
impl fmt::Display for LocalWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", HhMm(self.start_minute), HhMm(self.end_minute))?;
        if self.days != [true; 7] {
            let mut sep = ' ';
            for (i, _) in self.days.iter().enumerate().filter(|(_, on)| **on) {
                write!(f, "{sep}{}", DAY_NAMES[i])?;
                sep = ',';
            }
        }
        Ok(())
    }
}

struct HhMm(u16);

impl fmt::Display for HhMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

// ---------------------------------------------------------------------------------------------
// Campaign schedule

/// A campaign's `schedule`: an optional narrowing of the channel window, in the prospect's
/// local time.
///
/// JSON shape (every key optional; `{}` narrows nothing):
/// ```json
/// {"start": "09:00", "end": "17:30", "days": ["mon", "tue", "wed", "thu", "fri"]}
/// ```
/// * `start`: `"HH:MM"`, 00:00–23:59 (default 00:00); `end`: `"HH:MM"`, 00:01–24:00 (default
///   24:00); `start` must be before `end` (no window across midnight).
/// * `days`: one to seven distinct names from `mon tue wed thu fri sat sun` (default all).
/// * Any other key is rejected, not kept: a misspelt `"strat"` silently ignored would leave the
///   campaign calling at hours its owner meant to exclude.
///
/// The effective window is the channel window ∩ the schedule, so a schedule reaching outside
/// 08:00–21:00 (voice) simply ends at the legal edge; one sharing no minute with it is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    window: LocalWindow,
}

impl Schedule {
    /// The schedule as a window (missing keys filled with 00:00, 24:00, every day).
    pub fn as_window(&self) -> LocalWindow {
        self.window
    }
}

/// Checks a campaign's `schedule` object for `channel`. Errors name the field
/// (`schedule.start`, `schedule.days[2]`, …), or `schedule` itself when the schedule shares no
/// time with the channel window.
pub fn validate_schedule(channel: Channel, value: &Value) -> Result<Schedule, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("schedule", "must be a JSON object"))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "start" | "end" | "days"))
    {
        let shown: String = key.chars().take(64).collect();
        return Err(FieldError::new(
            format!("schedule.{shown}"),
            "unknown field; a schedule has only start, end and days",
        ));
    }
    let start_minute = match obj.get("start") {
        None => 0,
        Some(v) => parse_hh_mm(v)
            .filter(|m| *m < MINUTES_PER_DAY)
            .ok_or_else(|| {
                FieldError::new(
                    "schedule.start",
                    "must be a local time \"HH:MM\" from 00:00 to 23:59",
                )
            })?,
    };
    let end_minute = match obj.get("end") {
        None => MINUTES_PER_DAY,
        Some(v) => parse_hh_mm(v).filter(|m| *m > 0).ok_or_else(|| {
            FieldError::new(
                "schedule.end",
                "must be a local time \"HH:MM\" from 00:01 to 24:00",
            )
        })?,
    };
    if start_minute >= end_minute {
        return Err(FieldError::new(
            "schedule.end",
            "must be later than schedule.start (a window does not cross midnight)",
        ));
    }
    let days = match obj.get("days") {
        None => [true; 7],
        Some(v) => parse_days(v)?,
    };
    let window = LocalWindow::new(start_minute, end_minute, days)
        .expect("start < end <= 24:00 and at least one day were checked above");
    let schedule = Schedule { window };
    effective_window(channel, Some(&schedule))?;
    Ok(schedule)
}

/// The window prospects of a campaign are checked against: the channel window narrowed by the
/// schedule. Errs (naming `schedule`) when they share no minute.
pub fn effective_window(
    channel: Channel,
    schedule: Option<&Schedule>,
) -> Result<LocalWindow, FieldError> {
    let legal = channel_window(channel);
    match schedule {
        None => Ok(legal),
        Some(s) => legal.intersect(&s.window).ok_or_else(|| {
            FieldError::new(
                "schedule",
                format!(
                    "{} leaves no time inside the {} window {legal} (prospect's local time)",
                    s.window,
                    channel.as_str()
                ),
            )
        }),
    }
}

/// `"HH:MM"` (two digits each, 00–24 : 00–59, at most 24:00) as minutes of the day.
fn parse_hh_mm(v: &Value) -> Option<u16> {
    let s = v.as_str()?.as_bytes();
    if s.len() != 5 || s[2] != b':' {
        return None;
    }
    let two = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u16::from(a - b'0') * 10 + u16::from(b - b'0'))
    };
    let hours = two(s[0], s[1])?;
    let minutes = two(s[3], s[4])?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MINUTES_PER_DAY).then_some(total)
}

fn parse_days(v: &Value) -> Result<[bool; 7], FieldError> {
    let not_list = || {
        FieldError::new(
            "schedule.days",
            "must be a list of one to seven day names (mon, tue, wed, thu, fri, sat, sun)",
        )
    };
    let list = v.as_array().ok_or_else(not_list)?;
    if list.is_empty() || list.len() > 7 {
        return Err(not_list());
    }
    let mut days = [false; 7];
    for (i, item) in list.iter().enumerate() {
        let field = || format!("schedule.days[{i}]");
        let day = item
            .as_str()
            .and_then(|name| DAY_NAMES.iter().position(|d| *d == name))
            .ok_or_else(|| {
                FieldError::new(field(), "must be one of mon, tue, wed, thu, fri, sat, sun")
            })?;
        if days[day] {
            return Err(FieldError::new(
                field(),
                format!("repeats \"{}\"", DAY_NAMES[day]),
            ));
        }
        days[day] = true;
    }
    Ok(days)
}

// ---------------------------------------------------------------------------------------------
// Number -> time zones

const PREFIX_TIMEZONES: &str = include_str!("../../data/timezones/prefix_timezones.txt");

/// Zones dropped from a country-code row when it serves as the fallback for unknown numbers
/// (see the module doc for why).
const FALLBACK_EXCLUDED_ZONES: &[(&str, &[&str])] = &[(
    "1",
    &["Pacific/Guam", "Pacific/Saipan", "Pacific/Pago_Pago"],
)];

struct Zone {
    name: &'static str,
    /// `None` when jiff's tzdb does not know the name (a unit test checks none is missing).
    tz: Option<TimeZone>,
}

struct PrefixRow {
    prefix: &'static str,
    names: Box<[&'static str]>,
    zones: Box<[Zone]>,
}

struct PrefixTable {
    /// Sorted by prefix, no duplicates.
    rows: Vec<PrefixRow>,
    longest_prefix: usize,
}

static PREFIX_TABLE: LazyLock<PrefixTable> = LazyLock::new(|| {
    parse_prefix_table(PREFIX_TIMEZONES)
        .expect("the embedded data/timezones/prefix_timezones.txt parses (a unit test checks it)")
});

fn parse_prefix_table(text: &'static str) -> Result<PrefixTable, String> {
    let mut rows = Vec::with_capacity(3300);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        let (prefix, zone_list) = line.split_once('|').ok_or_else(|| bad("no '|'"))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("prefix is not digits"));
        }
        let excluded: &[&str] = FALLBACK_EXCLUDED_ZONES
            .iter()
            .find(|(p, _)| *p == prefix)
            .map_or(&[], |(_, zones)| zones);
        let names: Box<[&'static str]> = zone_list
            .split('&')
            .filter(|name| !excluded.contains(name))
            .collect();
        if names.iter().any(|name| name.is_empty()) || names.is_empty() {
            return Err(bad("empty zone name"));
        }
        rows.push(PrefixRow {
            prefix,
            zones: names
                .iter()
                .map(|&name| Zone {
                    name,
                    tz: TimeZone::get(name).ok(),
                })
                .collect(),
            names,
        });
    }
    rows.sort_by(|a, b| a.prefix.cmp(b.prefix));
    if let Some(w) = rows.windows(2).find(|w| w[0].prefix == w[1].prefix) {
        return Err(format!("prefix {} appears twice", w[0].prefix));
    }
    let longest_prefix = rows.iter().map(|r| r.prefix.len()).max().unwrap_or(0);
    Ok(PrefixTable {
        rows,
        longest_prefix,
    })
}

fn lookup(phone_e164: &str) -> Option<&'static PrefixRow> {
    if !is_e164(phone_e164) {
        return None;
    }
    let digits = &phone_e164[1..];
    let table: &'static PrefixTable = &PREFIX_TABLE;
    (1..=digits.len().min(table.longest_prefix))
        .rev()
        .find_map(|len| {
            table
                .rows
                .binary_search_by(|row| row.prefix.cmp(&digits[..len]))
                .ok()
        })
        .map(|i| &table.rows[i])
}

/// The IANA zones of an E.164 number (longest matching prefix), or `None` if the number is not
/// E.164 or its country code has no row. Several zones mean "one of these"; a number matching
/// only its country code gets the whole country (the conservative fallback).
pub fn zones_for(phone_e164: &str) -> Option<&'static [&'static str]> {
    lookup(phone_e164).map(|row| &*row.names)
}

// ---------------------------------------------------------------------------------------------
// The check

/// Whether a number may be contacted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowCheck {
    /// Inside the window in every candidate zone until `closes_at_ms` (Unix ms).
    Open { closes_at_ms: i64 },
    /// Not now. `opens_at_ms` is the first instant inside the window in every candidate zone,
    /// `None` if there is none within [`LOOKAHEAD_DAYS`] (or no zone is known at all).
    Closed {
        opens_at_ms: Option<i64>,
        reason: ClosedReason,
    },
}

/// Why a number is outside its window now. `Display` gives the text for the prospect's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClosedReason {
    /// Local time in `zone` (the first candidate zone that is closed) is outside `window`.
    OutsideWindow {
        zone: &'static str,
        local: DateTime,
        window: LocalWindow,
    },
    /// No prefix row for the number (or it is not E.164).
    NoTimeZone,
    /// The prefix names a zone the embedded tzdb lacks.
    UnknownZone { zone: &'static str },
    /// `now_ms` is outside the range of civil time jiff handles.
    TimeOutOfRange,
    /// The state rule of the number's area code (`data/rules/`) refuses this local time.
    StateRule {
        state: String,
        version: String,
        zone: &'static str,
        local: DateTime,
    },
}

impl fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosedReason::OutsideWindow {
                zone,
                local,
                window,
            } => write!(
                f,
                "outside {window} in {zone} (local {} {:02}:{:02})",
                DAY_LABELS[local.weekday().to_monday_zero_offset() as usize],
                local.hour(),
                local.minute()
            ),
            ClosedReason::NoTimeZone => f.write_str("no time zone known"),
            ClosedReason::UnknownZone { zone } => {
                write!(f, "time zone {zone} is not in the time zone database")
            }
            ClosedReason::TimeOutOfRange => f.write_str("time out of range"),
            ClosedReason::StateRule {
                state,
                version,
                zone,
                local,
            } => write!(
                f,
                "refused by the {state} calling rule {version} in {zone} (local {} {:02}:{:02})",
                DAY_LABELS[local.weekday().to_monday_zero_offset() as usize],
                local.hour(),
                local.minute()
            ),
        }
    }
}

/// Checks `phone_e164` against `window` (usually [`effective_window`]) at `now_ms` (Unix ms).
///
/// Meant for claim time and again just before the INVITE (a prospect claimed at 20:59:59 must
/// not be dialled at 21:00). A `Closed` prospect waits until `opens_at_ms` with
/// `reason.to_string()`. Cost: a few µs for one zone, about 45 µs for the 39-zone NANP
/// fallback (release build); it allocates two small vectors.
pub fn check(phone_e164: &str, window: &LocalWindow, now_ms: i64) -> WindowCheck {
    match lookup(phone_e164) {
        Some(row) => check_zones(&row.zones, window, now_ms),
        None => WindowCheck::Closed {
            opens_at_ms: None,
            reason: ClosedReason::NoTimeZone,
        },
    }
}

/// [`check`] narrowed by the state rule of the number's area code (`rules`, from
/// `data/rules/*.toml`): open only when the window is open and the rule allows the local time
/// in every candidate zone; the opening is the first instant both agree on. A number with no
/// rule gets [`check`]'s answer unchanged.
pub fn check_with_rules(
    phone_e164: &str,
    window: &LocalWindow,
    rules: &super::rules::RuleSet,
    now_ms: i64,
) -> WindowCheck {
    let base = check(phone_e164, window, now_ms);
    let (Some(rule), Some(row)) = (rules.for_phone(phone_e164), lookup(phone_e164)) else {
        return base;
    };
    let zones: Vec<(&'static str, &TimeZone)> = row
        .zones
        .iter()
        .filter_map(|z| z.tz.as_ref().map(|tz| (z.name, tz)))
        .collect();
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return base;
    };
    if zones.len() != row.zones.len() || zones.is_empty() {
        return base;
    }
    let minute = |l: DateTime| l.hour() as u16 * 60 + l.minute() as u16;
    let rule_refuses = |t: Timestamp| {
        zones.iter().find_map(|(name, tz)| {
            let l = tz.to_datetime(t);
            (!rule.allows(l.date(), minute(l))).then_some((*name, l))
        })
    };
    let open_at = |t: Timestamp| open_in_all(&zones, window, t) && rule_refuses(t).is_none();
    let open_now = open_at(now);
    // Candidates: each zone's local window and rule edges on each day of the look-ahead.
    let mut candidates = Vec::new();
    for (_, tz) in &zones {
        let today = tz.to_datetime(now).date();
        let mut day = today.yesterday().unwrap_or(today);
        for _ in 0..=LOOKAHEAD_DAYS + 1 {
            let mut edges = vec![window.start_minute, window.end_minute];
            if let Some((from, to)) = rule.hours_on(day) {
                edges.extend([from, to]);
            }
            edges.push(0);
            for m in edges {
                let civil = if m == MINUTES_PER_DAY {
                    match day.tomorrow() {
                        Ok(next) => next.at(0, 0, 0, 0),
                        Err(_) => continue,
                    }
                } else {
                    day.at((m / 60) as i8, (m % 60) as i8, 0, 0)
                };
                if let Ok(t) = tz.to_ambiguous_timestamp(civil).compatible()
                    && t > now
                {
                    candidates.push(t);
                }
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let flip = candidates
        .into_iter()
        .find(|t| open_at(*t) != open_now)
        .map(Timestamp::as_millisecond);
    if open_now {
        let closes = match base {
            WindowCheck::Open { closes_at_ms } => {
                flip.map_or(closes_at_ms, |f| f.min(closes_at_ms))
            }
            WindowCheck::Closed { .. } => now_ms,
        };
        return WindowCheck::Open {
            closes_at_ms: closes,
        };
    }
    match base {
        WindowCheck::Closed { reason, .. } => WindowCheck::Closed {
            opens_at_ms: flip,
            reason,
        },
        WindowCheck::Open { .. } => {
            let (zone, local) =
                rule_refuses(now).unwrap_or((zones[0].0, zones[0].1.to_datetime(now)));
            WindowCheck::Closed {
                opens_at_ms: flip,
                reason: ClosedReason::StateRule {
                    state: rule.state.clone(),
                    version: rule.version.clone(),
                    zone,
                    local,
                },
            }
        }
    }
}

fn check_zones(row_zones: &[Zone], window: &LocalWindow, now_ms: i64) -> WindowCheck {
    let closed = |reason| WindowCheck::Closed {
        opens_at_ms: None,
        reason,
    };
    let mut zones = Vec::with_capacity(row_zones.len());
    for zone in row_zones {
        match &zone.tz {
            Some(tz) => zones.push((zone.name, tz)),
            None => return closed(ClosedReason::UnknownZone { zone: zone.name }),
        }
    }
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return closed(ClosedReason::TimeOutOfRange);
    };
    let horizon = now.saturating_add(SignedDuration::from_hours(24 * LOOKAHEAD_DAYS));
    let Ok(horizon) = horizon else {
        return closed(ClosedReason::TimeOutOfRange);
    };

    let first_closed = zones.iter().find_map(|(name, tz)| {
        let local = tz.to_datetime(now);
        (!window.contains(local)).then_some((*name, local))
    });
    let open_now = first_closed.is_none();
    // The answer is the first instant after `now` where "open in every zone" flips.
    let flip = first_flip(&zones, window, now, horizon, open_now).map(Timestamp::as_millisecond);
    match first_closed {
        None => WindowCheck::Open {
            // Only a window open all day every day never closes: re-check at the horizon.
            closes_at_ms: flip.unwrap_or(horizon.as_millisecond()),
        },
        Some((zone, local)) => WindowCheck::Closed {
            opens_at_ms: flip,
            reason: ClosedReason::OutsideWindow {
                zone,
                local,
                window: *window,
            },
        },
    }
}

fn open_in_all(zones: &[(&str, &TimeZone)], window: &LocalWindow, t: Timestamp) -> bool {
    zones
        .iter()
        .all(|(_, tz)| window.contains(tz.to_datetime(t)))
}

/// The first instant in `(now, horizon]` where "open in every zone" differs from `open_now`.
/// Searched one day at a time, since the answer is nearly always within a day or two and the
/// candidates of a day are few (about four per zone).
fn first_flip(
    zones: &[(&str, &TimeZone)],
    window: &LocalWindow,
    now: Timestamp,
    horizon: Timestamp,
    open_now: bool,
) -> Option<Timestamp> {
    let mut candidates = Vec::with_capacity(zones.len() * 6);
    let mut lo = now;
    while lo < horizon {
        let hi = lo
            .saturating_add(SignedDuration::from_hours(24))
            .map_or(horizon, |t| t.min(horizon));
        boundary_candidates(zones, window, lo, hi, &mut candidates);
        if let Some(t) = candidates
            .iter()
            .copied()
            .find(|&t| open_in_all(zones, window, t) != open_now)
        {
            return Some(t);
        }
        lo = hi;
    }
    None
}

/// Fills `out` with every instant in `(lo, hi]` at which some zone's openness may change,
/// sorted: the instants its wall clock reaches the window's start or end on each local day
/// (both occurrences in a fall-back fold), and its UTC-offset transitions (which cover a start
/// or end skipped by a spring-forward gap). Between two consecutive candidates no zone's
/// openness changes, and openness over `[start, end)` holds from the instant it begins, so the
/// first candidate where the combined answer differs from now is exact.
fn boundary_candidates(
    zones: &[(&str, &TimeZone)],
    window: &LocalWindow,
    lo: Timestamp,
    hi: Timestamp,
    out: &mut Vec<Timestamp>,
) {
    out.clear();
    for (_, tz) in zones {
        let last_day = tz.to_datetime(hi).date();
        // From the day before: a fold can put `lo`'s wall clock past a crossing still to come.
        let first_day = tz.to_datetime(lo).date();
        let mut day = first_day.yesterday().unwrap_or(first_day);
        while day <= last_day {
            for minute in [window.start_minute, window.end_minute] {
                let civil = if minute == MINUTES_PER_DAY {
                    match day.tomorrow() {
                        Ok(next) => next.at(0, 0, 0, 0),
                        Err(_) => continue,
                    }
                } else {
                    day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                };
                let ambiguous = tz.to_ambiguous_timestamp(civil);
                out.extend(ambiguous.earlier().ok());
                out.extend(ambiguous.later().ok());
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        out.extend(
            tz.following(lo)
                .map(|transition| transition.timestamp())
                .take_while(|t| *t <= hi),
        );
    }
    out.retain(|t| lo < *t && *t <= hi);
    out.sort_unstable();
    out.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
