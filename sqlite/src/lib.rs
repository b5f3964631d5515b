//! smppd's durable message store, on SQLite.
//!
//! Every message the gateway accepts is a row in `messages`; the HTTP 202 is
//! sent only once that row is committed. The crate is plain synchronous Rust
//! (no actix, no tokio) so it can be called from any thread and never stalls
//! an async executor.
//!
//! Layout:
//! - [`types`]: the values that cross the API (ids, statuses, records, receipts).
//! - [`schema`]: versioned migrations tracked with `PRAGMA user_version`.
//! - [`writer`]: the single writer thread and its group commit. All writes
//!   go through it, because SQLite allows one writer at a time and one
//!   transaction per row caps out far below what batching achieves.
//! - [`store`]: [`Store`], the public handle: enqueues writes for the
//!   writer, runs reads on a small pool of read-only connections (WAL lets
//!   them run beside the writer).

#![warn(missing_docs)]

mod fold;
mod listing;
mod parked;
mod queue_depth;
mod queue_index;
mod receipt_cache;
pub mod schema;
mod status_effects;
pub mod store;
mod tx;
pub mod types;
pub mod writer;

pub use store::{ApiKeyRow, DeletedTenant, Store, StoreOptions, Synchronous, TenantRow};
pub use types::{
    Balance, BatchOutcome, ErrorInfo, Idempotency, InboundRecord, MessageFilter, MessageId,
    MessageRecord, MessageStatus, NewInbound, NewMessage, PartRecord, Priority, Pruned,
    QueuedMessage, Receipt, ReceiptMatch, RenderAnswer, TimedOut, WebhookDelivery, WebhookOutcome,
    RECEIPT_TIMEOUT,
};
pub use writer::{after_answers, after_answers_last, Done, WriterStats};

use std::path::PathBuf;

/// Everything that can go wrong in the store, by cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured (missing
    /// directory, not a database, WAL refused, ...).
    #[error("cannot open store {}: {source}", path.display())]
    Open {
        /// The file we tried to open.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date, or the file was written by
    /// a newer smppd whose schema we do not know.
    #[error("schema migration failed: {reason}")]
    Migration {
        /// What went wrong, in words.
        reason: String,
        /// The SQLite error behind it, if there was one.
        #[source]
        source: Option<rusqlite::Error>,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A statement failed (or the transaction holding the operation did).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread has stopped (the store was closed): the write was not applied.
    #[error("the store writer thread has stopped")]
    WriterGone,
    /// The tenant's credit does not cover the message: nothing was stored.
    #[error("insufficient credit: {needed} needed, {available} available (micro-units)")]
    InsufficientCredit {
        /// Available balance.
        available: i64,
        /// The charge of the message.
        needed: i64,
    },
    /// The tenant already has its maximum of queued messages: nothing was
    /// stored.
    #[error("the tenant already has {limit} messages queued")]
    QuotaExceeded {
        /// The limit.
        limit: u64,
    },
    /// A row holds a value we cannot interpret (unknown status, out-of-range
    /// number, wrong column type). Reported instead of panicking.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// An API key with this digest was issued before: nothing was stored.
    #[error("that API key is in use or was used before")]
    KeyInUse,
    /// The tenant was deleted (or is being deleted): nothing was stored.
    #[error("tenant {0:?} was deleted")]
    TenantClosed(String),
}
