//! Pure campaign policy: the campaign status machine, prospect states and the stats counters
//! they contribute to, `mode` / `callerIdStrategy` validation, and phone-number rules.
//!
//! Owns the rules of the public contract (`spec/campaign-deep-dive.txt`) that do not need
//! storage. It must not do I/O: no database, no clock (times are arguments), no tasks. The
//! store applies these functions inside its transactions; the API maps their errors to HTTP.

pub mod abandon;
pub mod callerid;
pub mod consent;
pub mod dnc;
pub mod mode;
pub mod phone;
pub mod prospect;
pub mod retry;
pub mod rules;
pub mod scheduler;
pub mod sms_pacing;
pub mod status;
pub mod webhook;
pub mod window;

pub use mode::{FieldError, validate_caller_id_strategy, validate_mode};
pub use phone::{is_e164, redact};
pub use prospect::{AmdResult, Counters, Outcome, ProspectEvent, ProspectState, ProspectStatus};
pub use status::{Action, CampaignStatus, Channel, TransitionError};
