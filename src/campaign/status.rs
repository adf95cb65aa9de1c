//! The campaign status machine of the spec's lifecycle table, and the two channels.

use std::fmt;

/// `voice` (the default) or `sms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Voice,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Voice, Channel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Campaign statuses, spelled as in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CampaignStatus {
    Created,
    Dialing,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 6] = [
        CampaignStatus::Created,
        CampaignStatus::Dialing,
        CampaignStatus::Paused,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
        CampaignStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Created => "created",
            CampaignStatus::Dialing => "dialing",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
            CampaignStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        CampaignStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// `completed`, `cancelled` and `failed` allow no action.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CampaignStatus::Completed | CampaignStatus::Cancelled | CampaignStatus::Failed
        )
    }

    /// Prospects may be added only while the campaign is `created` or `paused`.
    pub fn accepts_prospects(self) -> bool {
        matches!(self, CampaignStatus::Created | CampaignStatus::Paused)
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle endpoints: `POST /campaigns/:id/{start,pause,resume,cancel}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a campaign that is {current}")]
pub struct TransitionError {
    pub action: &'static str,
    pub current: CampaignStatus,
}

/// The spec's table: start from created, pause from dialing, resume from paused, cancel from
/// any non-terminal status. Anything else is refused with the current status.
pub fn apply(current: CampaignStatus, action: Action) -> Result<CampaignStatus, TransitionError> {
    use CampaignStatus::*;
    let next = match (action, current) {
        (Action::Start, Created) => Dialing,
        (Action::Pause, Dialing) => Paused,
        (Action::Resume, Paused) => Dialing,
        (Action::Cancel, s) if !s.is_terminal() => Cancelled,
        _ => {
            return Err(TransitionError {
                action: action.as_str(),
                current,
            });
        }
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_table_exactly() {
        use Action::*;
        use CampaignStatus::*;
        let allowed = [
            (Created, Start, Dialing),
            (Created, Cancel, Cancelled),
            (Dialing, Pause, Paused),
            (Dialing, Cancel, Cancelled),
            (Paused, Resume, Dialing),
            (Paused, Cancel, Cancelled),
        ];
        for s in CampaignStatus::ALL {
            for a in [Start, Pause, Resume, Cancel] {
                let expect = allowed
                    .iter()
                    .find(|(f, x, _)| *f == s && *x == a)
                    .map(|t| t.2);
                match (apply(s, a), expect) {
                    (Ok(n), Some(e)) => assert_eq!(n, e),
                    (Err(e), None) => assert_eq!(e.current, s),
                    (got, want) => panic!("{s} {a:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in CampaignStatus::ALL {
            assert_eq!(CampaignStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
        assert_eq!(Channel::parse("fax"), None);
    }
}
