//! What trunx does with a mobile-originated (MO) message: whose number it is, whether it is
//! answered, with what text and from which sender number. Pure decisions for
//! `runtime::campaigns::sms_sender`, which carries them out (suppression in the store, the reply through
//! the session).
//!
//! Rules: an opt-out (STOP family) is confirmed once, only when it newly put the number on
//! the suppression list (a second STOP gets no second text, as the FCC's "one confirmation"
//! rule allows at most one); HELP gets the configured reply every time; START and anything
//! else get no reply. The reply goes out from the DID that last texted the number (the
//! person answers the conversation they see), else the number the MO was sent to, else any
//! sender DID. It must not do I/O or read the clock.

use super::keywords::Keyword;

/// The configured reply texts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replies {
    /// Sent once after an opt-out; `None`: no confirmation.
    pub stop: Option<String>,
    /// Sent after HELP / INFO; `None`: no reply.
    pub help: Option<String>,
}

/// The reply to an MO classified as `keyword`; `newly_suppressed` says whether this very
/// message put the number on the list.
pub fn reply_text(keyword: Keyword, newly_suppressed: bool, replies: &Replies) -> Option<&str> {
    match keyword {
        Keyword::OptOut if newly_suppressed => replies.stop.as_deref(),
        Keyword::Help => replies.help.as_deref(),
        Keyword::OptOut | Keyword::OptIn | Keyword::Other => None,
    }
}

/// The sender's number as E.164: `+digits` as given, bare digits (an SMSC that left the TON
/// unknown) get a `+`; anything else (an alphanumeric sender, an empty field) is `None`.
pub fn sender_e164(source: &str) -> Option<String> {
    let digits = source.strip_prefix('+').unwrap_or(source);
    let ok = (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

/// Which DID a reply goes out from (see the module docs); `None` when there is none at all.
pub fn reply_source(
    last_did: Option<&str>,
    mo_destination: &str,
    any_did: Option<&str>,
) -> Option<String> {
    last_did
        .map(str::to_string)
        .or_else(|| sender_e164(mo_destination))
        .or_else(|| any_did.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies() -> Replies {
        Replies {
            stop: Some("unsubscribed".into()),
            help: Some("help text".into()),
        }
    }

    #[test]
    fn an_opt_out_is_confirmed_only_when_it_is_new() {
        let r = replies();
        assert_eq!(reply_text(Keyword::OptOut, true, &r), Some("unsubscribed"));
        assert_eq!(reply_text(Keyword::OptOut, false, &r), None);
        assert_eq!(reply_text(Keyword::Help, false, &r), Some("help text"));
        assert_eq!(reply_text(Keyword::OptIn, true, &r), None);
        assert_eq!(reply_text(Keyword::Other, true, &r), None);
        assert_eq!(
            reply_text(Keyword::OptOut, true, &Replies::default()),
            None,
            "no configured text, no reply"
        );
    }

    #[test]
    fn senders_become_e164_or_nothing() {
        assert_eq!(sender_e164("+15551234567").as_deref(), Some("+15551234567"));
        assert_eq!(sender_e164("15551234567").as_deref(), Some("+15551234567"));
        assert_eq!(sender_e164("ACME"), None);
        assert_eq!(sender_e164(""), None);
        assert_eq!(sender_e164("+1234567890123456"), None);
    }

    #[test]
    fn the_reply_comes_from_the_conversation_first() {
        assert_eq!(
            reply_source(Some("+12125550100"), "12125550199", Some("+13125550100")).as_deref(),
            Some("+12125550100")
        );
        assert_eq!(
            reply_source(None, "12125550199", Some("+13125550100")).as_deref(),
            Some("+12125550199")
        );
        assert_eq!(
            reply_source(None, "", Some("+13125550100")).as_deref(),
            Some("+13125550100")
        );
        assert_eq!(reply_source(None, "", None), None);
    }
}
