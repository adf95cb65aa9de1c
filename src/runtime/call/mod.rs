//! One call's I/O: the shared SIP endpoint (UDP or TLS) and its routing, the call task (`dial`),
//! the trunk's network helpers (`net`), the AI agent bridge (websocket or SIP leg) and the
//! external AMD engine's socket.

pub mod agent_bridge;
pub mod agent_ws;
pub mod amd_external;
pub mod dial;
pub mod endpoint;
pub mod net;
pub mod routing;
pub mod sip_leg;
pub mod sip_tls;
