//! How many messages each tenant has `queued`, counted by the writer thread.
//!
//! The count is what `max_in_flight` is checked against at every insert, and
//! what `smppd_queue_depth` shows. Schemas 3 to 17 kept it in a table,
//! `tenant_counters`, updated by triggers on `messages`: one statement more
//! for every insert and for every submit. Those statements cost about 2 µs
//! of the writer's 15 µs per message (measured with and without them on the
//! same schema), and the single writer is what limits the engine.
//!
//! Every write goes through the writer thread, so the writer can keep the
//! count itself: the statements that move a message into or out of `queued`
//! (insert, submit, retry, final, tenant deletion) call [`add`] with what
//! they changed. It is counted afresh from `messages` at every open
//! ([`count`], through `message_queue` and the newest rowids), so nothing of
//! it needs to be durable. Like the receipt cache, each change is journaled
//! until its transaction ends and undone if the transaction or savepoint
//! rolls back; readers on other threads see the count as of the last
//! commit ([`Depths`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

/// The committed count per tenant, shared with the store's readers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Depths(Arc<RwLock<HashMap<String, u64>>>);

impl Depths {
    /// The tenant's queued messages as of the last commit.
    pub(crate) fn get(&self, tenant: &str) -> u64 {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(tenant).copied().unwrap_or(0)
    }

    /// The tenants with queued messages as of the last commit, sorted.
    pub(crate) fn tenants(&self) -> Vec<String> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut tenants: Vec<String> = map
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(tenant, _)| tenant.clone())
            .collect();
        tenants.sort();
        tenants
    }
}

/// Counts each tenant's queued messages, at open (see `queue_index`).
pub(crate) fn count(conn: &Connection) -> rusqlite::Result<Depths> {
    let map = crate::queue_index::counts(conn)?.into_iter().collect();
    Ok(Depths(Arc::new(RwLock::new(map))))
}

struct Counter {
    /// Including the open transaction's changes.
    current: HashMap<Rc<str>, u64>,
    /// Changes since the transaction began: the tenant and what it held before.
    journal: Vec<(Rc<str>, u64)>,
    /// Where commits are published.
    published: Depths,
}

thread_local! {
    static COUNTER: RefCell<Counter> = RefCell::new(Counter {
        current: HashMap::new(),
        journal: Vec::new(),
        published: Depths::default(),
    });
}

/// Makes this thread (the writer) the keeper of `depths`.
pub(crate) fn keep(depths: Depths) {
    COUNTER.with(|counter| {
        let counter = &mut *counter.borrow_mut();
        counter.current = depths
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(tenant, &n)| (Rc::from(tenant.as_str()), n))
            .collect();
        counter.journal.clear();
        counter.published = depths;
    });
}

/// The tenant's queued messages, the open transaction's changes included.
pub(crate) fn get(tenant: &str) -> u64 {
    COUNTER.with(|counter| counter.borrow().current.get(tenant).copied().unwrap_or(0))
}

/// `delta` messages of `tenant` entered (or, negative, left) `queued`.
pub(crate) fn add(tenant: &str, delta: i64) {
    COUNTER.with(|counter| {
        let counter = &mut *counter.borrow_mut();
        let key = match counter.current.get_key_value(tenant) {
            Some((key, _)) => Rc::clone(key),
            None => Rc::from(tenant),
        };
        let slot = counter.current.entry(Rc::clone(&key)).or_insert(0);
        counter.journal.push((key, *slot));
        *slot = slot.saturating_add_signed(delta);
    });
}

/// Where the journal stands: [`undo_to`] it to undo what came after.
pub(crate) fn mark() -> usize {
    COUNTER.with(|counter| counter.borrow().journal.len())
}

/// Undoes every change made since `mark` (a savepoint or the whole
/// transaction rolled back).
pub(crate) fn undo_to(mark: usize) {
    COUNTER.with(|counter| {
        let counter = &mut *counter.borrow_mut();
        while counter.journal.len() > mark {
            let Some((tenant, before)) = counter.journal.pop() else {
                break;
            };
            counter.current.insert(tenant, before);
        }
    });
}

/// The transaction committed: its changes stay, and readers see them.
pub(crate) fn committed() {
    COUNTER.with(|counter| {
        let counter = &mut *counter.borrow_mut();
        if counter.journal.is_empty() {
            return;
        }
        let mut published = counter
            .published
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (tenant, _) in counter.journal.drain(..) {
            let now = counter.current.get(&tenant).copied().unwrap_or(0);
            match published.get_mut(&*tenant) {
                Some(slot) => *slot = now,
                None => {
                    published.insert(tenant.to_string(), now);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Depths {
        let depths = Depths::default();
        keep(depths.clone());
        depths
    }

    #[test]
    fn readers_see_a_change_only_once_it_is_committed() {
        let depths = fresh();
        add("acme", 2);
        assert_eq!(get("acme"), 2, "the writer sees its own transaction");
        assert_eq!(depths.get("acme"), 0, "readers do not, yet");
        committed();
        assert_eq!(depths.get("acme"), 2);
    }

    #[test]
    fn a_rollback_restores_the_count_before_it() {
        let depths = fresh();
        add("acme", 3);
        committed();
        add("acme", 1);
        let savepoint = mark();
        add("acme", -2);
        add("globex", 1);
        undo_to(savepoint);
        assert_eq!((get("acme"), get("globex")), (4, 0));
        undo_to(0);
        committed();
        assert_eq!((depths.get("acme"), depths.get("globex")), (3, 0));
    }

    #[test]
    fn the_count_never_goes_below_zero() {
        let depths = fresh();
        add("acme", -1);
        committed();
        assert_eq!(depths.get("acme"), 0);
    }
}
