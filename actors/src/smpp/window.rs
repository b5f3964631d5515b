//! The window of outstanding requests on one SMPP session.
//!
//! SMPP lets a client have several requests in flight, matched to their
//! responses by sequence number. The window bounds how many (the SMSC's
//! configured limit; exceeding it gets ESME_RTHROTTLED or a dropped link) and
//! remembers when each request expires. Two timeouts are distinct, as in
//! cloudhopper-smpp: *waiting for a slot* is the caller's business (it simply
//! does not get one from [`Window::try_reserve`]), while a *request's response
//! expiry* lives here and surfaces through [`Window::expire`].
//!
//! Pure data structure: no clock of its own, no I/O, no actix.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Outstanding requests keyed by sequence number.
#[derive(Debug)]
pub struct Window<T> {
    capacity: usize,
    expiry: Duration,
    slots: HashMap<u32, Slot<T>>,
}

#[derive(Debug)]
struct Slot<T> {
    deadline: Instant,
    item: T,
}

/// Why a request could not enter the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// All slots are taken.
    Full,
    /// The sequence number is already outstanding (a wrapped counter met a
    /// request that never got its answer).
    Duplicate,
}

impl<T> Window<T> {
    /// A window of `capacity` slots whose requests expire `expiry` after they
    /// were reserved.
    pub fn new(capacity: usize, expiry: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            expiry,
            slots: HashMap::with_capacity(capacity.max(1)),
        }
    }

    /// Takes a slot for request `seq`, sent at `now`.
    pub fn try_reserve(
        &mut self,
        seq: u32,
        item: T,
        now: Instant,
    ) -> Result<(), (ReserveError, T)> {
        if self.slots.len() >= self.capacity {
            return Err((ReserveError::Full, item));
        }
        if self.slots.contains_key(&seq) {
            return Err((ReserveError::Duplicate, item));
        }
        self.slots.insert(
            seq,
            Slot {
                deadline: now + self.expiry,
                item,
            },
        );
        Ok(())
    }

    /// The response for `seq` arrived: frees its slot and hands back the
    /// request. `None` for a response nobody is waiting for (already
    /// expired, or never sent).
    pub fn complete(&mut self, seq: u32) -> Option<T> {
        self.slots.remove(&seq).map(|s| s.item)
    }

    /// Removes and returns every request whose deadline is at or before
    /// `now`, oldest first. Their outcome is unknown.
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, T)> {
        let mut expired: Vec<u32> = self
            .slots
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        expired.sort_by_key(|seq| self.slots[seq].deadline);
        expired
            .into_iter()
            .filter_map(|seq| self.slots.remove(&seq).map(|s| (seq, s.item)))
            .collect()
    }

    /// Empties the window (the session died): every request's outcome is
    /// unknown.
    pub fn drain(&mut self) -> Vec<(u32, T)> {
        self.slots.drain().map(|(seq, s)| (seq, s.item)).collect()
    }

    /// The earliest deadline, to schedule the next expiry check.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.values().map(|s| s.deadline).min()
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Maximum requests in flight.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots still free.
    pub fn free(&self) -> usize {
        self.capacity - self.slots.len()
    }

    /// Iterates over the outstanding requests (for bookkeeping, e.g. an
    /// early DLR looking for its submit).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots.iter().map(|(seq, s)| (*seq, &s.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRY: Duration = Duration::from_secs(10);

    #[test]
    fn a_full_window_refuses_a_reservation_and_returns_the_item() {
        let now = Instant::now();
        let mut w = Window::new(2, EXPIRY);
        w.try_reserve(1, "a", now).unwrap();
        w.try_reserve(2, "b", now).unwrap();
        assert_eq!(w.try_reserve(3, "c", now), Err((ReserveError::Full, "c")));
        assert_eq!(w.free(), 0);
    }

    #[test]
    fn completing_a_request_frees_its_slot() {
        let now = Instant::now();
        let mut w = Window::new(1, EXPIRY);
        w.try_reserve(1, "a", now).unwrap();
        assert_eq!(w.complete(1), Some("a"));
        assert_eq!(
            w.complete(1),
            None,
            "a second response for the same seq is ignored"
        );
        assert!(w.try_reserve(2, "b", now).is_ok());
    }

    #[test]
    fn a_duplicate_sequence_number_is_refused() {
        let now = Instant::now();
        let mut w = Window::new(4, EXPIRY);
        w.try_reserve(9, "a", now).unwrap();
        assert_eq!(
            w.try_reserve(9, "b", now),
            Err((ReserveError::Duplicate, "b"))
        );
    }

    #[test]
    fn requests_expire_at_their_deadline_oldest_first() {
        let t0 = Instant::now();
        let mut w = Window::new(4, EXPIRY);
        w.try_reserve(2, "second", t0 + Duration::from_secs(1))
            .unwrap();
        w.try_reserve(1, "first", t0).unwrap();
        w.try_reserve(3, "third", t0 + Duration::from_secs(5))
            .unwrap();
        assert!(w.expire(t0 + EXPIRY - Duration::from_millis(1)).is_empty());
        assert_eq!(w.next_deadline(), Some(t0 + EXPIRY));
        let expired = w.expire(t0 + EXPIRY + Duration::from_secs(1));
        assert_eq!(expired, vec![(1, "first"), (2, "second")]);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn draining_returns_everything_in_flight() {
        let now = Instant::now();
        let mut w = Window::new(3, EXPIRY);
        w.try_reserve(1, 'a', now).unwrap();
        w.try_reserve(2, 'b', now).unwrap();
        let mut drained = w.drain();
        drained.sort();
        assert_eq!(drained, vec![(1, 'a'), (2, 'b')]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }
}
