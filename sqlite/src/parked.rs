//! Which receipts may wait in `pending_receipts`, known in memory by the
//! writer thread, so that a submit looks for a parked receipt only when one
//! with its SMSC id may be there.
//!
//! A receipt that comes before its `submit_sm_resp` (on another session of
//! the same account, say) is parked, and the submit takes it back out. So
//! every submit would look for one: a `SELECT` on `pending_receipts`, ~3 %
//! of the writer's time at full speed. Until this module, the writer
//! skipped the lookup only while no receipt had ever been parked since the
//! process started; with an SMSC that spreads receipts over two sessions,
//! the first overtaking receipt turned the lookup on for good.
//!
//! Now the writer counts the parked receipts of each key's hash (of tenant,
//! channel and SMSC id, as the receipt cache hashes them): a park adds one,
//! a receipt taken out removes one. A submit looks only if its key's count
//! is above zero. The counts may be too high, never too low:
//! - Rows removed by other means (pruning, a tenant deleted) keep their
//!   counts: a lookup too many.
//! - Two keys with one hash share a count: a lookup too many.
//! - A change rolled back with its transaction or savepoint is undone
//!   from the journal ([`undo_to`]), like the receipt cache's.
//!
//! Past [`LIMIT`] counted keys, counting stops and every submit looks, as
//! before; at open, the counts are read from the table.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use rusqlite::Connection;

/// Most keys counted; beyond, every submit looks (see the module header).
pub(crate) const LIMIT: usize = 65_536;

struct Parked {
    hasher: RandomState,
    /// Parked receipts per key hash; `None` past [`LIMIT`]: may be any.
    counts: Option<HashMap<u64, u32>>,
    /// Changes in the open transaction: a key hash and +1 (parked) or -1
    /// (taken out).
    journal: Vec<(u64, i8)>,
}

thread_local! {
    static PARKED: RefCell<Parked> = RefCell::new(Parked {
        hasher: RandomState::new(),
        counts: Some(HashMap::new()),
        journal: Vec::new(),
    });
}

impl Parked {
    fn key(&self, tenant: &str, channel: &str, smsc_id: &str) -> u64 {
        crate::receipt_cache::key(&self.hasher, tenant, channel, smsc_id)
    }

    /// Adds `delta` to the count of `key`; false if counting stopped.
    fn add(&mut self, key: u64, delta: i8) -> bool {
        let Some(counts) = self.counts.as_mut() else {
            return false;
        };
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add_signed(delta.into());
        if *count == 0 {
            counts.remove(&key);
        } else if counts.len() > LIMIT {
            self.counts = None;
            self.journal.clear();
            return false;
        }
        true
    }
}

/// Counts what `pending_receipts` holds, on the writer thread before it
/// starts. If the table cannot be read, every submit will look.
pub(crate) fn keep(conn: &Connection) {
    PARKED.with(|parked| {
        let parked = &mut *parked.borrow_mut();
        parked.counts = Some(HashMap::new());
        parked.journal.clear();
        if let Err(e) = count(conn, parked) {
            log::warn!("store: cannot count parked receipts ({e}); every submit looks for one");
            parked.counts = None;
        }
        parked.journal.clear();
    });
}

fn count(conn: &Connection, parked: &mut Parked) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT tenant, channel, smsc_message_id FROM pending_receipts")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (tenant, channel, id): (String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        let key = parked.key(&tenant, &channel, &id);
        if !parked.add(key, 1) {
            break;
        }
    }
    Ok(())
}

/// A receipt for this key was parked.
pub(crate) fn parked(tenant: &str, channel: &str, smsc_id: &str) {
    change(tenant, channel, smsc_id, 1);
}

/// The parked receipt for this key was taken out.
pub(crate) fn taken(tenant: &str, channel: &str, smsc_id: &str) {
    change(tenant, channel, smsc_id, -1);
}

fn change(tenant: &str, channel: &str, smsc_id: &str, delta: i8) {
    PARKED.with(|parked| {
        let parked = &mut *parked.borrow_mut();
        let key = parked.key(tenant, channel, smsc_id);
        if parked.add(key, delta) {
            parked.journal.push((key, delta));
        }
    });
}

/// Whether a receipt for this key may be parked: false only if none is.
pub(crate) fn may_be(tenant: &str, channel: &str, smsc_id: &str) -> bool {
    PARKED.with(|parked| {
        let parked = parked.borrow();
        match &parked.counts {
            None => true,
            Some(counts) => counts.contains_key(&parked.key(tenant, channel, smsc_id)),
        }
    })
}

/// Where the journal stands: [`undo_to`] it to undo what came after.
pub(crate) fn mark() -> usize {
    PARKED.with(|parked| parked.borrow().journal.len())
}

/// Undoes every change made since `mark` (a savepoint or the whole
/// transaction rolled back).
pub(crate) fn undo_to(mark: usize) {
    PARKED.with(|parked| {
        let parked = &mut *parked.borrow_mut();
        while parked.journal.len() > mark {
            let Some((key, delta)) = parked.journal.pop() else {
                break;
            };
            parked.add(key, -delta);
        }
    });
}

/// The transaction committed: its changes stay.
pub(crate) fn committed() {
    PARKED.with(|parked| parked.borrow_mut().journal.clear());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset() {
        PARKED.with(|parked| {
            let parked = &mut *parked.borrow_mut();
            parked.counts = Some(HashMap::new());
            parked.journal.clear();
        });
    }

    #[test]
    fn a_key_may_be_parked_from_its_park_until_its_receipt_is_taken_out() {
        reset();
        assert!(!may_be("t", "c", "1"));
        parked("t", "c", "1");
        committed();
        assert!(may_be("t", "c", "1"));
        assert!(!may_be("t", "c", "2"), "another id");
        assert!(!may_be("u", "c", "1"), "another tenant");
        assert!(!may_be("t", "c2", "1"), "another channel");
        taken("t", "c", "1");
        committed();
        assert!(!may_be("t", "c", "1"));
    }

    #[test]
    fn a_key_parked_twice_stays_until_both_are_taken_out() {
        reset();
        parked("t", "c", "1");
        parked("t", "c", "1");
        taken("t", "c", "1");
        assert!(may_be("t", "c", "1"));
        taken("t", "c", "1");
        assert!(!may_be("t", "c", "1"));
    }

    #[test]
    fn a_rolled_back_take_leaves_the_key_parked_and_a_rolled_back_park_does_not() {
        reset();
        parked("t", "c", "1");
        committed();
        let start = mark();
        taken("t", "c", "1");
        parked("t", "c", "2");
        assert!(!may_be("t", "c", "1"));
        undo_to(start);
        assert!(
            may_be("t", "c", "1"),
            "the take was undone: its row is back"
        );
        assert!(!may_be("t", "c", "2"), "the park was undone: no row");
        // Undoing a savepoint keeps what came before it.
        parked("t", "c", "3");
        let savepoint = mark();
        taken("t", "c", "3");
        undo_to(savepoint);
        assert!(may_be("t", "c", "3"));
    }

    #[test]
    fn past_the_limit_every_key_may_be_parked() {
        reset();
        for i in 0..=LIMIT {
            parked("t", "c", &i.to_string());
        }
        committed();
        assert!(may_be("t", "c", "never parked"));
        taken("t", "c", "0");
        assert!(may_be("t", "c", "0"), "counting stopped: a row may remain");
    }

    #[test]
    fn the_counts_are_read_from_the_table_at_open() {
        reset();
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE pending_receipts (tenant TEXT, channel TEXT, smsc_message_id TEXT);
             INSERT INTO pending_receipts VALUES ('t', 'c', 'a'), ('t', 'c', 'b');",
        )
        .unwrap();
        keep(&conn);
        assert!(may_be("t", "c", "a") && may_be("t", "c", "b"));
        assert!(!may_be("t", "c", "z"));
        // A table that cannot be read: every key may be parked.
        conn.execute_batch("DROP TABLE pending_receipts").unwrap();
        keep(&conn);
        assert!(may_be("t", "c", "z"));
    }
}
