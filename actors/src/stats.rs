//! Per-tenant counters since the process started: cheap atomics bumped on
//! the hot path and read by `GET /v1/stats` (and later by metrics).
//!
//! They count events, not rows: a message retried after a lost session
//! can be counted as submitted twice, and an SMSC that repeats a receipt
//! is counted twice. The store holds the truth per message.

use std::sync::atomic::{AtomicU64, Ordering};

use smppd_sqlite::MessageStatus;

/// A tenant's counters.
#[derive(Debug, Default)]
pub struct TenantStats {
    /// Messages accepted (committed) over HTTP.
    pub accepted: AtomicU64,
    /// submit_sm answered ESME_ROK.
    pub submitted: AtomicU64,
    /// Submits answered with a throttling status.
    pub throttled: AtomicU64,
    /// Attempts retried (temporary error, throttle, unknown outcome).
    pub retried: AtomicU64,
    /// Final statuses reached, by status.
    pub delivered: AtomicU64,
    /// Receipt said undeliverable.
    pub undeliverable: AtomicU64,
    /// Receipt said expired, or validity ended before submit.
    pub expired: AtomicU64,
    /// Receipt said rejected.
    pub rejected: AtomicU64,
    /// We gave up, or the receipt said deleted.
    pub failed: AtomicU64,
    /// Receipt with an unknown state.
    pub unknown: AtomicU64,
}

impl TenantStats {
    /// Counts one message reaching `status` (non-final statuses are ignored).
    pub fn finished(&self, status: MessageStatus) {
        let counter = match status {
            MessageStatus::Delivered => &self.delivered,
            MessageStatus::Undeliverable => &self.undeliverable,
            MessageStatus::Expired => &self.expired,
            MessageStatus::Rejected => &self.rejected,
            MessageStatus::Failed => &self.failed,
            MessageStatus::Unknown => &self.unknown,
            MessageStatus::Queued | MessageStatus::Submitted => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy for reporting, as (name, value) pairs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let finals = [
            ("delivered", get(&self.delivered)),
            ("undeliverable", get(&self.undeliverable)),
            ("expired", get(&self.expired)),
            ("rejected", get(&self.rejected)),
            ("failed", get(&self.failed)),
            ("unknown", get(&self.unknown)),
        ];
        let mut out = vec![
            ("accepted", get(&self.accepted)),
            ("submitted", get(&self.submitted)),
            ("throttled", get(&self.throttled)),
            ("retried", get(&self.retried)),
        ];
        out.extend(finals);
        out.push(("final", finals.iter().map(|(_, v)| v).sum()));
        out
    }
}
