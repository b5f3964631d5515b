//! A tenant's in-memory window onto its durable queue: one lane per
//! priority, each a bounded `VecDeque` refilled from the store.
//!
//! Consistency: the store assigns ids in commit order and reports commits
//! in that order, so notifications for a lane arrive in id order. Each lane
//! keeps `cursor`, the highest id it has taken into memory; a notification
//! at or below it is a duplicate of a refill. While a lane is full
//! (`backlog`), notifications are dropped and later read back from the
//! store after `cursor`. A refill that returns fewer rows than asked for
//! has seen the end of the lane — unless a notification was dropped while
//! it ran, whose row may have been committed after the refill's snapshot;
//! then the lane stays in backlog and is read again.
//!
//! Scheduling: weighted round robin over the lanes, high : normal : bulk =
//! 8 : 3 : 1, skipping empty lanes. High goes first without starving the
//! others: with every lane full, bulk still gets one message in twelve.
//!
//! Plain data; the supervisor does the reading and the sending.

use std::collections::VecDeque;

use smppd_sqlite::{MessageId, Priority, QueuedMessage};

/// The round-robin pattern: lane indices (0 = high), 8 : 3 : 1.
const PATTERN: [usize; 12] = [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 2];

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<QueuedMessage>,
    cursor: Option<MessageId>,
    backlog: bool,
    refilling: bool,
    dropped_during_refill: bool,
}

/// What became of a committed message offered to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Now in memory.
    Taken,
    /// Already in memory (a refill read it first).
    Duplicate,
    /// The lane is full: it stays in the store and is read back later.
    Deferred,
}

/// A store read the window wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    /// Which lane.
    pub priority: Priority,
    /// Read ids after this one.
    pub after: Option<MessageId>,
    /// At most this many.
    pub limit: usize,
}

/// The lanes.
#[derive(Debug)]
pub struct Lanes {
    lanes: [Lane; 3],
    capacity: usize,
    turn: usize,
}

impl Lanes {
    /// Lanes of `capacity` messages each. Every lane starts in backlog, so
    /// the first refills resume what the store holds.
    pub fn new(capacity: usize) -> Self {
        let lane = || Lane {
            backlog: true,
            ..Lane::default()
        };
        Self {
            lanes: [lane(), lane(), lane()],
            capacity: capacity.max(1),
            turn: 0,
        }
    }

    /// A message was committed.
    pub fn offer(&mut self, message: QueuedMessage) -> Offer {
        let lane = &mut self.lanes[message.priority.index()];
        if lane.cursor.is_some_and(|c| message.id <= c) {
            return Offer::Duplicate;
        }
        if lane.backlog || lane.queue.len() >= self.capacity {
            lane.backlog = true;
            if lane.refilling {
                lane.dropped_during_refill = true;
            }
            return Offer::Deferred;
        }
        lane.cursor = Some(message.id);
        lane.queue.push_back(message);
        Offer::Taken
    }

    /// A message comes back (retry, or it could not be sent): it goes
    /// first in its lane. Never deferred: it is already below the cursor.
    pub fn push_front(&mut self, message: QueuedMessage) {
        self.lanes[message.priority.index()]
            .queue
            .push_front(message);
    }

    /// The next message by weighted round robin.
    pub fn pop_next(&mut self) -> Option<QueuedMessage> {
        for k in 0..PATTERN.len() {
            let position = (self.turn + k) % PATTERN.len();
            let lane = &mut self.lanes[PATTERN[position]];
            if let Some(message) = lane.queue.pop_front() {
                self.turn = (position + 1) % PATTERN.len();
                return Some(message);
            }
        }
        None
    }

    /// Removes and returns every message in memory whose validity ended
    /// at or before `now_ms`.
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<QueuedMessage> {
        let mut expired = Vec::new();
        for lane in &mut self.lanes {
            if lane
                .queue
                .iter()
                .any(|m| m.validity_until_ms.is_some_and(|v| v <= now_ms))
            {
                let (gone, kept): (VecDeque<_>, VecDeque<_>) = lane
                    .queue
                    .drain(..)
                    .partition(|m| m.validity_until_ms.is_some_and(|v| v <= now_ms));
                lane.queue = kept;
                expired.extend(gone);
            }
        }
        expired
    }

    /// Messages in memory, all lanes.
    pub fn len(&self) -> usize {
        self.lanes.iter().map(|l| l.queue.len()).sum()
    }

    /// True when no lane holds a message in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refills to start now: lanes in backlog, not being read, and at most
    /// half full. Each is marked as being read.
    pub fn refills_wanted(&mut self) -> Vec<Refill> {
        let capacity = self.capacity;
        Priority::ALL
            .into_iter()
            .zip(self.lanes.iter_mut())
            .filter(|(_, lane)| lane.backlog && !lane.refilling && lane.queue.len() <= capacity / 2)
            .map(|(priority, lane)| {
                lane.refilling = true;
                lane.dropped_during_refill = false;
                Refill {
                    priority,
                    after: lane.cursor,
                    limit: capacity - lane.queue.len(),
                }
            })
            .collect()
    }

    /// The rows a refill read.
    pub fn refilled(&mut self, refill: Refill, rows: Vec<QueuedMessage>) {
        let lane = &mut self.lanes[refill.priority.index()];
        lane.refilling = false;
        let complete = rows.len() < refill.limit && !lane.dropped_during_refill;
        for row in rows {
            if lane.cursor.is_some_and(|c| row.id <= c) {
                continue;
            }
            lane.cursor = Some(row.id);
            lane.queue.push_back(row);
        }
        if complete {
            lane.backlog = false;
        }
    }

    /// A refill failed; it is tried again on the next call to
    /// [`Lanes::refills_wanted`].
    pub fn refill_failed(&mut self, refill: Refill) {
        self.lanes[refill.priority.index()].refilling = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, priority: Priority) -> QueuedMessage {
        QueuedMessage {
            id: MessageId(id),
            source: "s".into(),
            destination: "d".into(),
            text: format!("{id}").into(),
            attempts: 0,
            parts: 1,
            data_coding: None,
            priority,
            validity_until_ms: None,
            send_at_ms: None,
        }
    }

    /// Lanes whose start-up refills found an empty store.
    fn empty_lanes(capacity: usize) -> Lanes {
        let mut lanes = Lanes::new(capacity);
        for refill in lanes.refills_wanted() {
            lanes.refilled(refill, Vec::new());
        }
        lanes
    }

    #[test]
    fn new_lanes_first_read_the_store() {
        let mut lanes = Lanes::new(10);
        let wanted = lanes.refills_wanted();
        assert_eq!(wanted.len(), 3);
        assert!(wanted.iter().all(|r| r.after.is_none() && r.limit == 10));
        assert!(
            lanes.refills_wanted().is_empty(),
            "no second read while one runs"
        );
        assert_eq!(lanes.offer(msg(1, Priority::Normal)), Offer::Deferred);
    }

    #[test]
    fn a_notification_already_read_by_a_refill_is_a_duplicate() {
        let mut lanes = Lanes::new(10);
        let refills = lanes.refills_wanted();
        lanes.refilled(refills[1], vec![msg(5, Priority::Normal)]);
        assert_eq!(lanes.offer(msg(5, Priority::Normal)), Offer::Duplicate);
        assert_eq!(lanes.offer(msg(6, Priority::Normal)), Offer::Taken);
        assert_eq!(lanes.len(), 2);
    }

    #[test]
    fn a_full_lane_defers_and_reads_back_from_its_cursor() {
        let mut lanes = empty_lanes(2);
        assert_eq!(lanes.offer(msg(1, Priority::Bulk)), Offer::Taken);
        assert_eq!(lanes.offer(msg(2, Priority::Bulk)), Offer::Taken);
        assert_eq!(lanes.offer(msg(3, Priority::Bulk)), Offer::Deferred);
        assert!(lanes.refills_wanted().is_empty(), "still full");
        lanes.pop_next();
        let refill = lanes.refills_wanted();
        assert_eq!(
            refill,
            vec![Refill {
                priority: Priority::Bulk,
                after: Some(MessageId(2)),
                limit: 1
            }]
        );
        lanes.refilled(refill[0], vec![msg(3, Priority::Bulk)]);
        assert_eq!(lanes.len(), 2);
    }

    #[test]
    fn a_notification_dropped_during_a_refill_keeps_the_lane_in_backlog() {
        let mut lanes = Lanes::new(10);
        let refills = lanes.refills_wanted();
        // Committed after the refill's snapshot, offered while it runs.
        assert_eq!(lanes.offer(msg(9, Priority::High)), Offer::Deferred);
        lanes.refilled(refills[0], vec![msg(8, Priority::High)]);
        let again = lanes.refills_wanted();
        assert_eq!(again.len(), 1, "the high lane is read again");
        assert_eq!(again[0].after, Some(MessageId(8)));
        lanes.refilled(again[0], vec![msg(9, Priority::High)]);
        assert_eq!(lanes.len(), 2);
        assert!(lanes.refills_wanted().is_empty());
    }

    #[test]
    fn high_goes_first_but_bulk_is_never_starved() {
        let mut lanes = empty_lanes(100);
        for i in 0..24 {
            lanes.offer(msg(1000 + i, Priority::High));
            lanes.offer(msg(2000 + i, Priority::Normal));
            lanes.offer(msg(3000 + i, Priority::Bulk));
        }
        let first: Vec<Priority> = (0..24)
            .map(|_| lanes.pop_next().unwrap().priority)
            .collect();
        let count = |p| first.iter().filter(|x| **x == p).count();
        assert_eq!(
            (
                count(Priority::High),
                count(Priority::Normal),
                count(Priority::Bulk)
            ),
            (16, 6, 2)
        );
        assert_eq!(first[0], Priority::High);
    }

    #[test]
    fn empty_lanes_are_skipped() {
        let mut lanes = empty_lanes(100);
        for i in 0..4 {
            lanes.offer(msg(3000 + i, Priority::Bulk));
        }
        assert_eq!(lanes.pop_next().unwrap().id, MessageId(3000));
        assert_eq!(lanes.pop_next().unwrap().id, MessageId(3001));
    }

    #[test]
    fn expired_messages_are_taken_out_of_every_lane() {
        let mut lanes = empty_lanes(10);
        let with_validity = |id, p, until| QueuedMessage {
            validity_until_ms: Some(until),
            ..msg(id, p)
        };
        lanes.offer(with_validity(1, Priority::High, 100));
        lanes.offer(with_validity(2, Priority::High, 300));
        lanes.offer(msg(3, Priority::Bulk));
        lanes.offer(with_validity(4, Priority::Bulk, 50));
        let gone: Vec<i64> = lanes.take_expired(200).iter().map(|m| m.id.0).collect();
        assert_eq!(gone, vec![1, 4]);
        assert_eq!(lanes.len(), 2);
    }

    #[test]
    fn a_returned_message_goes_first_in_its_lane() {
        let mut lanes = empty_lanes(10);
        lanes.offer(msg(1, Priority::Normal));
        lanes.push_front(msg(0, Priority::Normal));
        assert_eq!(lanes.pop_next().unwrap().id, MessageId(0));
    }
}
