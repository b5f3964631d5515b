//! Per-tenant counters since the process started: cheap atomics bumped on
//! the hot path and read by `GET /v1/stats` (and later by metrics).
//!
//! They count events, not rows: a message retried after a lost session
//! can be counted as submitted twice, and an SMSC that repeats a receipt
//! is counted twice. The store holds the truth per message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// Receipt with an unknown state, or none within
    /// `engine.receipt_timeout_s`.
    pub unknown: AtomicU64,
    /// Messages made `unknown` because their receipt did not come within
    /// `engine.receipt_timeout_s` (also counted in `unknown`).
    pub receipts_timed_out: AtomicU64,
    /// Final receipts that matched no message when they came, kept in the
    /// store until a submit with their SMSC id is recorded: routine when a
    /// receipt overtakes its response, a problem when it keeps growing.
    pub receipts_unmatched: AtomicU64,
    /// HTTP accept latency (request read to commit answered).
    pub accept_latency: Histogram,
    /// submit_sm sent to submit_sm_resp received.
    pub submit_latency: Histogram,
    /// Submitted (store time) to final receipt applied.
    pub receipt_latency: Histogram,
    /// Live events of this tenant.
    pub events: crate::events::Events,
}

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// A lock-free latency histogram with fixed buckets ([`BUCKETS`] and +Inf).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            latency.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// (cumulative count per bucket incl. +Inf, sum in seconds, count).
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            cumulative,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            total,
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_per_bucket() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(1000));
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], 1, "<= 0.5 ms");
        assert_eq!(buckets[3], 2, "<= 5 ms");
        assert_eq!(buckets[BUCKETS.len() - 1], 2, "<= 300 s");
        assert_eq!(buckets[BUCKETS.len()], 3, "+Inf");
        assert!((sum - 1000.0033).abs() < 1e-6);
    }
}
