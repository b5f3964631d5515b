//! smppd's actors and SMPP logic.
//!
//! Layout:
//! - [`smpp`] — SMPP 3.4 protocol logic, free of actix: codec, session state
//!   machine, window, command_status classes, receipts, text encodings.
//! - [`registry`] — tenant id → supervisor; the arbiter threads.
//! - [`tenant`] — `TenantSupervisor`: a tenant's connections, queue window
//!   and retries.
//! - [`connection`] — `Connection`: one SMPP session on one TCP socket.
//! - [`transport`] — the socket under a session: TCP, optionally TLS.
//! - [`spec`] — the validated configuration handed to the actors.
//! - [`coalesce`] — what store completions tell one actor, delivered once
//!   per writer transaction.
//! - `simulator` (feature `simulator`) — the bundled SMSC simulator.
//!
//! Supervision tree:
//! ```text
//! Registry ──► TenantSupervisor (one per tenant)
//!                 └──► Connection (one per session of each channel)
//! ```

pub mod coalesce;
pub mod connection;
pub mod events;
pub mod lanes;
pub mod parts;
pub mod registry;
pub mod smpp;
pub mod spec;
pub mod stats;
pub mod tenant;
pub mod transport;

pub use registry::Registry;
pub use spec::{ChannelSpec, TenantSpec};
#[cfg(feature = "simulator")]
pub mod simulator;
