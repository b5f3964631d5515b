//! [`Coalescer`]: what store completions send to one recipient, delivered
//! as one message per writer transaction instead of one per operation.
//!
//! The store writer calls each operation's completion on its own thread.
//! A completion that tells an actor (or a waiting request) about its
//! operation wakes that actor's thread: with tokio's current-thread runtime
//! that is an `eventfd` write, every time, and on the receiving side a
//! mailbox message and a handler call per operation. A batch of fifty
//! commits for one tenant would cost fifty of each.
//!
//! A `Coalescer` collects the items instead and hands them over once the
//! writer has answered the whole transaction (through
//! [`smppd_sqlite::after_answers`]), in the order they were pushed: one
//! wake-up and one message per transaction and recipient. Pushed from any
//! other thread, the items go out at once, as before.
//!
//! A coalescer made with [`Coalescer::last`] hands its items over after
//! every ordinary one of the transaction: a connection's receipt
//! acknowledgements go after its supervisor's new messages, so the
//! connection, woken once for both, answers the receipts and submits the
//! new messages in one socket write.

use std::sync::{Arc, Mutex, PoisonError};

/// Items for one recipient, delivered together (see the module header).
pub struct Coalescer<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    pending: Mutex<Vec<T>>,
    deliver: Box<dyn Fn(Vec<T>) + Send + Sync>,
    /// Delivered with [`smppd_sqlite::after_answers_last`].
    last: bool,
}

impl<T> Clone for Coalescer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static> Coalescer<T> {
    /// A coalescer that hands each collected run of items to `deliver`
    /// (typically a `do_send` of one message carrying them).
    pub fn new(deliver: impl Fn(Vec<T>) + Send + Sync + 'static) -> Self {
        Self::with_order(deliver, false)
    }

    /// Like [`Coalescer::new`], but the items are handed over after those
    /// of every coalescer made with `new` for the same transaction.
    pub fn last(deliver: impl Fn(Vec<T>) + Send + Sync + 'static) -> Self {
        Self::with_order(deliver, true)
    }

    fn with_order(deliver: impl Fn(Vec<T>) + Send + Sync + 'static, last: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                pending: Mutex::new(Vec::new()),
                deliver: Box::new(deliver),
                last,
            }),
        }
    }

    /// Queues `item`. The first item since the last delivery arranges the
    /// next one; later items ride along with it, so none waits longer than
    /// the transaction being answered.
    pub fn push(&self, item: T) {
        let first = {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.push(item);
            pending.len() == 1
        };
        if first {
            let shared = Arc::clone(&self.shared);
            if self.shared.last {
                smppd_sqlite::after_answers_last(move || shared.flush());
            } else {
                smppd_sqlite::after_answers(move || shared.flush());
            }
        }
    }
}

impl<T> Shared<T> {
    fn flush(&self) {
        let items =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if !items.is_empty() {
            (self.deliver)(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_pushed_outside_the_writer_are_delivered_at_once() {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&delivered);
        let coalescer = Coalescer::new(move |items: Vec<u32>| sink.lock().unwrap().push(items));
        coalescer.push(1);
        coalescer.push(2);
        assert_eq!(*delivered.lock().unwrap(), vec![vec![1], vec![2]]);
    }
}
