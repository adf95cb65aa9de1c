//! Sans-IO SIP user agent client: `message` (parsing via rsip), `call` (one outbound call:
//! INVITE/CANCEL/BYE transactions, RFC 3261 timers, dialog, digest retry, outcomes),
//! `keepalive` (OPTIONS to the trunk, up/down), `digest` (RFC 7616 auth) and `sdp`
//! (offer/answer), `sdes` (SRTP keys in SDP) and `stream` (framing over TCP/TLS). Everything
//! takes input and `now` as arguments and hands back datagrams,
//! events and deadlines; it never touches a socket, a task or the clock.

pub mod call;
pub mod digest;
pub mod keepalive;
pub mod message;
pub mod sdes;
pub mod sdp;
pub mod stream;
