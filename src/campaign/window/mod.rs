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
//!
//! Files: this one holds the check; `schedule` the local windows and the campaign schedule;
//! `zones` the number → time-zone table.

use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

mod schedule;
mod zones;

use schedule::{DAY_LABELS, MINUTES_PER_DAY};
pub use schedule::{
    LocalWindow, SMS_WINDOW, Schedule, VOICE_WINDOW, channel_window, effective_window,
    validate_schedule,
};
pub use zones::zones_for;
use zones::{Zone, lookup};

/// How far ahead [`check`] looks for the next opening; `None` beyond it.
pub const LOOKAHEAD_DAYS: i64 = 14;

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
mod tests;
