//! SMPP 3.4, ESME side, without actix: framing ([`codec`]), the session
//! state machine ([`session`]), the window of outstanding requests
//! ([`window`]), command_status classes ([`status`]), delivery receipts
//! ([`receipt`]), text encodings ([`encoding`]) and PDU building ([`pdu`]).
//!
//! Nothing in here knows about sockets, actors or the store beyond the
//! status names; the connection actor drives it.

pub mod codec;
pub mod encoding;
pub mod pdu;
pub mod rate;
pub mod receipt;
pub mod session;
pub mod status;
pub mod time;
pub mod window;
