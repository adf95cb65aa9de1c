//! Classification of an inbound (MO) message body: opt-out, help, opt-in or anything else.
//!
//! It owns the keyword lists and the normalisation (case, spaces, surrounding punctuation). It
//! must not act on the result: suppression, the confirmation reply and the HELP reply belong to
//! the store and the runtime.
//!
//! The whole message is the keyword ("stop it please" is `Other`): a conservative reading of
//! the CTIA keyword rule that never mistakes a conversation for an opt-out. Natural-language
//! revocations ("please don't text me") need a person or a later, separate classifier.
//!
//! Opt-in choice: START and UNSTOP are `OptIn`. What that lifts is the caller's decision; the
//! defensible rule (FCC 2024 revocation order, CTIA) is that an opt-in texted from the number
//! itself lifts an opt-out that number texted, never one recorded by an operator or by voice.

/// What an inbound message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT / OPTOUT.
    OptOut,
    /// HELP, INFO.
    Help,
    /// START, UNSTOP.
    OptIn,
    Other,
}

const OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const HELP: [&str; 2] = ["HELP", "INFO"];
const OPT_IN: [&str; 2] = ["START", "UNSTOP"];

/// Longest body worth normalising: every keyword is short, so a long body is `Other` at once
/// (bounds the work on hostile input).
const MAX_KEYWORD_BODY: usize = 64;

/// Classifies `body`: case-insensitive, whitespace anywhere ignored ("opt out", " Stop "),
/// and surrounding punctuation ("STOP.", "\"Stop!\"") ignored.
pub fn classify(body: &str) -> Keyword {
    let trimmed = body.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    if trimmed.len() > MAX_KEYWORD_BODY {
        return Keyword::Other;
    }
    let normalised: String = trimmed
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    let word = normalised.as_str();
    if OPT_OUT.contains(&word) {
        Keyword::OptOut
    } else if HELP.contains(&word) {
        Keyword::Help
    } else if OPT_IN.contains(&word) {
        Keyword::OptIn
    } else {
        Keyword::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_words_in_any_case_and_spacing() {
        for body in [
            "STOP",
            "stop",
            " Stop ",
            "StopAll",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
            "Revoke",
            "OPT OUT",
            "opt out",
            "OptOut",
            "opt  out\n",
            "STOP.",
            "\"Stop!\"",
            "\u{a0}STOP\u{a0}",
        ] {
            assert_eq!(classify(body), Keyword::OptOut, "{body:?}");
        }
        // Full-width letters are other characters, not folded to ASCII.
        assert_eq!(classify("ＳＴＯＰ"), Keyword::Other);
    }

    #[test]
    fn the_whole_message_must_be_the_keyword() {
        for body in [
            "stop it please",
            "don't stop",
            "STOPPED",
            "stop?maybe",
            "",
            "   ",
            "I want to opt out of this",
        ] {
            assert_eq!(classify(body), Keyword::Other, "{body:?}");
        }
    }

    #[test]
    fn help_and_opt_in() {
        assert_eq!(classify("help"), Keyword::Help);
        assert_eq!(classify(" Info "), Keyword::Help);
        assert_eq!(classify("START"), Keyword::OptIn);
        assert_eq!(classify("un stop"), Keyword::OptIn);
        assert_eq!(classify("yes"), Keyword::Other);
    }

    #[test]
    fn long_bodies_are_other_without_work() {
        assert_eq!(
            classify(&format!("{}STOP", " ".repeat(100))),
            Keyword::OptOut
        );
        assert_eq!(
            classify(&format!("STOP{}", "x".repeat(100))),
            Keyword::Other
        );
    }
}
