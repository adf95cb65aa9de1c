//! Phone-number rules: what the API accepts as E.164, and how numbers appear in logs.

/// `+` then 7 to 15 digits, the first not 0 (ITU-T E.164: at most 15 digits).
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A number for logs: every digit but the last 4 masked (`+*******1001`), unless `show_all`
/// (the `log_phone_numbers` setting).
pub fn redact(number: &str, show_all: bool) -> String {
    if show_all {
        return number.to_string();
    }
    let n = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if c.is_ascii_digit() && i + 4 < n {
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        for ok in [
            "+17145551001",
            "+442071838750",
            "+2901234",
            "+123456789012345",
        ] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "17145551001",
            "+0145551001",
            "+1714555100a",
            "+1 714 555 1001",
            "+123456",
            "+1234567890123456",
            "",
            "+",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn redaction_keeps_last_four() {
        assert_eq!(redact("+17145551001", false), "+*******1001");
        assert_eq!(redact("+17145551001", true), "+17145551001");
    }
}
