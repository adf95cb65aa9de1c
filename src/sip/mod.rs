//! Sans-IO SIP user agent parts. So far: SDP offer/answer (`sdp`) and digest authentication
//! (`digest`). Transactions, dialogs and the endpoint come next; like these, they take input
//! and `now` as arguments and never touch a socket, a task or the clock.

pub mod call;
pub mod digest;
pub mod message;
pub mod sdp;
