//! The local calling windows: [`LocalWindow`], the legal windows of the contract
//! ([`VOICE_WINDOW`], [`SMS_WINDOW`]) and a campaign's `schedule`, which may narrow them and
//! never widen them. Wall-clock minutes and days only: it must not know about numbers, time
//! zones or the clock.

use std::fmt;

use jiff::civil::DateTime;
use serde_json::Value;

use crate::campaign::mode::FieldError;
use crate::campaign::status::Channel;

pub(super) const MINUTES_PER_DAY: u16 = 24 * 60;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
pub(super) const DAY_LABELS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A daily window in local wall-clock time: `[start, end)` minutes of the day on the allowed
/// days (Monday first). It never crosses midnight; `end` may be 24:00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalWindow {
    pub(super) start_minute: u16,
    pub(super) end_minute: u16,
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
