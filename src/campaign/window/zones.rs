//! The number → time-zone table: libphonenumber's prefix → IANA zones data, embedded and
//! parsed once, matched by longest prefix, with the conservative country fallback (see the
//! module root). It must not decide whether a window is open.

use std::sync::LazyLock;

use jiff::tz::TimeZone;

use crate::campaign::phone::is_e164;

pub(super) const PREFIX_TIMEZONES: &str =
    include_str!("../../../data/timezones/prefix_timezones.txt");

/// Zones dropped from a country-code row when it serves as the fallback for unknown numbers
/// (see the module doc for why).
const FALLBACK_EXCLUDED_ZONES: &[(&str, &[&str])] = &[(
    "1",
    &["Pacific/Guam", "Pacific/Saipan", "Pacific/Pago_Pago"],
)];

pub(super) struct Zone {
    pub(super) name: &'static str,
    /// `None` when jiff's tzdb does not know the name (a unit test checks none is missing).
    pub(super) tz: Option<TimeZone>,
}

pub(super) struct PrefixRow {
    pub(super) prefix: &'static str,
    pub(super) names: Box<[&'static str]>,
    pub(super) zones: Box<[Zone]>,
}

pub(super) struct PrefixTable {
    /// Sorted by prefix, no duplicates.
    pub(super) rows: Vec<PrefixRow>,
    pub(super) longest_prefix: usize,
}

pub(super) static PREFIX_TABLE: LazyLock<PrefixTable> = LazyLock::new(|| {
    parse_prefix_table(PREFIX_TIMEZONES)
        .expect("the embedded data/timezones/prefix_timezones.txt parses (a unit test checks it)")
});

pub(super) fn parse_prefix_table(text: &'static str) -> Result<PrefixTable, String> {
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

pub(super) fn lookup(phone_e164: &str) -> Option<&'static PrefixRow> {
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
