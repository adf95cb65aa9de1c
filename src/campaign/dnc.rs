//! Do-not-call lists: parsing a DNC file and the set a dial is checked against.
//!
//! A DNC file has one number a line: E.164 (`+17145551001`) or a 10-digit NANP number
//! (`7145551001`, also `714-555-1001` or the registry's `714,5551001`); blank lines and lines
//! starting with `#` are ignored, anything else is counted as malformed (its line number kept
//! for the report) and skipped. Numbers are kept as the `u64` of their E.164 digits
//! (`+17145551001` -> `17_145_551_001`).
//!
//! [`DncSet`] is a sorted, de-duplicated `Vec<u64>` with an index of NANP numbers by NPA-NXX
//! (the first six digits after the `1`): a lookup reads one index slot and binary-searches a
//! bucket of at most 10,000 numbers (14 comparisons), so its cost does not grow with the list
//! (`benches/dnc.rs`). Numbers outside the NANP are binary-searched in the whole vector.
//!
//! Pure: no I/O, no clock. The store persists lists and keeps one [`DncSet`] per list in memory.

use std::io::BufRead;

/// First and last+1 E.164 value of the NANP (`+1NPANXXXXXX`).
const NANP_LO: u64 = 10_000_000_000;
const NANP_HI: u64 = 20_000_000_000;
/// One bucket per NPA-NXX.
const BUCKET: u64 = 10_000;
const BUCKETS: usize = ((NANP_HI - NANP_LO) / BUCKET) as usize;
/// Malformed line numbers kept for a report (the count is always exact).
pub const MALFORMED_SAMPLE: usize = 20;
/// Longest line considered (a longer one is malformed).
const MAX_LINE: usize = 64;

/// Most numbers one list may hold.
pub const MAX_NUMBERS: u64 = 200_000_000;

/// A list name: 1 to 64 ASCII letters, digits, `-`, `_` or `.` (e.g. `national`, `internal`).
pub fn validate_list_name(name: &str) -> Result<(), super::FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(super::FieldError::new(
            "list",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// The `u64` of an E.164 number's digits (`+17145551001` -> 17145551001), `None` if the text
/// is not E.164 (see [`crate::campaign::is_e164`]).
pub fn e164_value(phone: &str) -> Option<u64> {
    if !super::phone::is_e164(phone) {
        return None;
    }
    phone[1..].parse().ok()
}

/// One DNC line as a number, `Ok(None)` for a blank or comment line, `Err(())` if malformed.
/// A 10-digit number is NANP (area code and exchange must start with 2-9); `+` starts E.164.
/// Spaces, `-`, `.`, `(`, `)` and `,` between digits are ignored.
#[allow(clippy::result_unit_err)]
pub fn parse_line(line: &[u8]) -> Result<Option<u64>, ()> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(());
    }
    let (plus, rest) = match line.split_first() {
        Some((b'+', rest)) => (true, rest),
        _ => (false, line),
    };
    let mut value: u64 = 0;
    let mut digits = 0usize;
    let mut first = None;
    for &b in rest {
        match b {
            b'0'..=b'9' => {
                if digits == 15 {
                    return Err(());
                }
                first.get_or_insert(b);
                value = value * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b' ' | b'-' | b'.' | b'(' | b')' | b',' if digits > 0 || !plus => {}
            _ => return Err(()),
        }
    }
    if plus {
        if !(7..=15).contains(&digits) || first == Some(b'0') {
            return Err(());
        }
        return Ok(Some(value));
    }
    // 10-digit NANP: NPA and NXX start with 2-9.
    let npa_first = value / 1_000_000_000;
    let nxx_first = (value / 1_000_000) % 10;
    if digits == 10 && npa_first >= 2 && nxx_first >= 2 {
        return Ok(Some(NANP_LO + value));
    }
    Err(())
}

/// What reading a DNC file found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DncParse {
    /// Sorted, without duplicates.
    pub numbers: Vec<u64>,
    pub lines: u64,
    /// Numbers read (before removing duplicates).
    pub accepted: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// The first [`MALFORMED_SAMPLE`] malformed line numbers (1-based).
    pub malformed_lines: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DncReadError {
    #[error("cannot read the DNC file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the DNC file has more than {max} numbers")]
    TooMany { max: u64 },
}

/// Reads a DNC file (plain or gzip, told apart by the gzip magic bytes) of at most `max`
/// numbers.
pub fn read<R: BufRead>(mut input: R, max: u64) -> Result<DncParse, DncReadError> {
    let gz = input.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        let dec = flate2::bufread::MultiGzDecoder::new(input);
        read_plain(std::io::BufReader::with_capacity(1 << 16, dec), max)
    } else {
        read_plain(input, max)
    }
}

fn read_plain<R: BufRead>(mut input: R, max: u64) -> Result<DncParse, DncReadError> {
    let mut out = DncParse::default();
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        out.lines += 1;
        match parse_line(&line) {
            Ok(Some(n)) => {
                if out.accepted == max {
                    return Err(DncReadError::TooMany { max });
                }
                out.accepted += 1;
                out.numbers.push(n);
            }
            Ok(None) => out.ignored += 1,
            Err(()) => {
                out.malformed += 1;
                if out.malformed_lines.len() < MALFORMED_SAMPLE {
                    out.malformed_lines.push(out.lines);
                }
            }
        }
    }
    out.numbers.sort_unstable();
    out.numbers.dedup();
    Ok(out)
}

/// A set of numbers checked in constant time (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct DncSet {
    numbers: Vec<u64>,
    /// `index[b]..index[b + 1]` is the range of NANP bucket `b` in `numbers`; empty when the
    /// set holds no NANP number.
    index: Vec<u32>,
    nanp: std::ops::Range<usize>,
}

impl DncSet {
    /// A set of sorted, de-duplicated numbers (as [`DncParse::numbers`]).
    pub fn from_sorted(numbers: Vec<u64>) -> DncSet {
        debug_assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        let lo = numbers.partition_point(|&n| n < NANP_LO);
        let hi = numbers.partition_point(|&n| n < NANP_HI);
        let mut index = Vec::new();
        if hi > lo && numbers.len() < u32::MAX as usize {
            index = vec![0u32; BUCKETS + 1];
            let mut i = lo;
            for (b, slot) in index.iter_mut().enumerate() {
                let bound = NANP_LO + b as u64 * BUCKET;
                while i < hi && numbers[i] < bound {
                    i += 1;
                }
                *slot = i as u32;
            }
        }
        DncSet {
            numbers,
            index,
            nanp: lo..hi,
        }
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// The numbers, sorted.
    pub fn numbers(&self) -> &[u64] {
        &self.numbers
    }

    pub fn contains(&self, n: u64) -> bool {
        if (NANP_LO..NANP_HI).contains(&n) && !self.index.is_empty() {
            let b = ((n - NANP_LO) / BUCKET) as usize;
            let (s, e) = (self.index[b] as usize, self.index[b + 1] as usize);
            return self.numbers[s..e].binary_search(&n).is_ok();
        }
        if (NANP_LO..NANP_HI).contains(&n) {
            return self.numbers[self.nanp.clone()].binary_search(&n).is_ok();
        }
        self.numbers.binary_search(&n).is_ok()
    }

    /// Whether an E.164 number is in the set (anything else is not).
    pub fn contains_phone(&self, phone: &str) -> bool {
        e164_value(phone).is_some_and(|n| self.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse_line(b"+17145551001\n"), Ok(Some(17_145_551_001)));
        assert_eq!(parse_line(b"7145551001\r\n"), Ok(Some(17_145_551_001)));
        assert_eq!(parse_line(b"714-555-1001"), Ok(Some(17_145_551_001)));
        assert_eq!(parse_line(b"714,5551001"), Ok(Some(17_145_551_001)));
        assert_eq!(parse_line(b"(714) 555.1001"), Ok(Some(17_145_551_001)));
        assert_eq!(parse_line(b"+442071838750"), Ok(Some(442_071_838_750)));
        assert_eq!(parse_line(b""), Ok(None));
        assert_eq!(parse_line(b"   \t"), Ok(None));
        assert_eq!(parse_line(b"# national registry"), Ok(None));
        for bad in [
            &b"17145551001"[..],
            b"1145551001",
            b"7141551001",
            b"714555100",
            b"+0145551001",
            b"+123456",
            b"+1234567890123456",
            b"714555100x",
            b"+ 7145551001",
            b"phone",
        ] {
            assert_eq!(
                parse_line(bad),
                Err(()),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn read_counts_and_sorts() {
        let text = b"# list\n7145551002\n+17145551001\n\nbad\n7145551002\n+442071838750";
        let p = read(&text[..], 100).unwrap();
        assert_eq!(
            p.numbers,
            vec![17_145_551_001, 17_145_551_002, 442_071_838_750]
        );
        assert_eq!((p.lines, p.accepted, p.ignored, p.malformed), (7, 4, 2, 1));
        assert_eq!(p.malformed_lines, vec![5]);
        assert!(matches!(
            read(&text[..], 3),
            Err(DncReadError::TooMany { max: 3 })
        ));
    }

    #[test]
    fn read_gzip() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"7145551001\n+12125550000\n").unwrap();
        let bytes = gz.finish().unwrap();
        let p = read(&bytes[..], 10).unwrap();
        assert_eq!(p.numbers, vec![12_125_550_000, 17_145_551_001]);
    }

    #[test]
    fn set_membership() {
        let mut v: Vec<u64> = (0..5000u64).map(|i| 17_145_550_000 + i * 3).collect();
        v.push(12_015_550_000);
        v.push(19_999_999_999);
        v.push(442_071_838_750);
        v.push(3_312_345_678);
        v.sort_unstable();
        let set = DncSet::from_sorted(v.clone());
        for n in &v {
            assert!(set.contains(*n), "{n}");
        }
        for n in [
            17_145_550_001,
            12_015_550_001,
            10_000_000_000,
            442_071_838_751,
            1,
        ] {
            assert!(!set.contains(n), "{n}");
        }
        assert!(set.contains_phone("+17145550003"));
        assert!(!set.contains_phone("7145550003"));
        let only_intl = DncSet::from_sorted(vec![442_071_838_750]);
        assert!(only_intl.contains(442_071_838_750));
        assert!(!only_intl.contains(17_145_550_000));
    }
}
