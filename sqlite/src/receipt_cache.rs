//! Recent submits awaiting their delivery receipt, kept in memory by the
//! writer thread so that most receipts never need the durable SMSC-id index.
//!
//! A receipt names its message only by the SMSC's id, so it is matched
//! through an index on that id. Many SMSCs hand out ids in no order (random
//! UUIDs): each submit then puts its index entry on a random page of a
//! large B-tree, and every commit writes one more 4 KiB page per message to
//! the WAL, and again at the checkpoint. Measured with the simulator
//! handing out UUIDs, one tenant fell from 32.5k to 21.6k msg/s, the writer
//! from 14.6 to 26.6 µs per message.
//!
//! Most receipts come within seconds of their submit. So the writer keeps
//! the SMSC ids of its recent submits here, keyed by (tenant, channel, SMSC
//! id) like the index, and a message, or a part of a long message, is
//! entered in the index (`smsc_lookup_id` of `messages` or
//! `message_parts`) only if it leaves this cache still awaiting its
//! receipt:
//! - The cache holds at most `StoreOptions::receipt_cache` entries
//!   ([`CAPACITY`] by default). Beyond that, the oldest
//!   are written to the index ("spilled") inside the transaction, before
//!   its `COMMIT`.
//! - The cache is lost with the process. At open, before the writer starts,
//!   the store indexes every message and part still awaiting its receipt,
//!   found through the partial indexes `messages_submitted` and
//!   `message_parts_awaiting_receipt`.
//!
//! So a receipt finds its message whether it comes a millisecond or a week
//! later, before or after a restart.
//!
//! The cache changes as the writer's statements run, and must change back
//! when their transaction or savepoint rolls back. Every change is
//! journaled until the transaction ends; rolling back replays the journal
//! backwards. Each writer thread has its own cache (a thread-local), so
//! two stores in one process never share one.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use crate::tx::Tx;
use rusqlite::{params, Connection};

/// Most submits the cache remembers by default: a hash, a target and a
/// queue slot each, about 5 MiB of RSS reserved at start. At 30,000
/// messages/s that is about 2 s of traffic: receipts slower than that under
/// full load are matched through the index instead.
pub(crate) const CAPACITY: usize = 65_536;

/// A hash of (tenant, channel, SMSC id). Two keys that collide are handled
/// like one SMSC id given to two messages: the older is indexed, and every
/// match is checked against the row's own columns.
type Key = u64;

/// What a receipt is for: a message, or one part of a long message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    /// The message id.
    pub(crate) message: i64,
    /// The part (from 1) of a long message; 0 for a one-part message.
    pub(crate) part: u16,
}

impl Target {
    /// A one-part message.
    pub(crate) fn message(id: i64) -> Target {
        Target {
            message: id,
            part: 0,
        }
    }

    /// Part `part` (from 1) of long message `message`.
    pub(crate) fn part(message: i64, part: i64) -> Target {
        Target {
            message,
            part: u16::try_from(part).unwrap_or(u16::MAX),
        }
    }
}

/// What [`lookup`] found, with its key, so that [`finished`] need not hash
/// the SMSC id again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remembered {
    key: Key,
    /// What the SMSC id was last submitted for.
    pub(crate) target: Target,
}

/// What a key points to, and whether that has its final status (then its
/// eviction needs no index entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    target: Target,
    done: bool,
}

/// One change, with what undoes it.
enum Change {
    /// `key` was set; it held `replaced` before.
    Set { key: Key, replaced: Option<Slot> },
    /// The oldest entry was evicted; the map held `slot` for it if it was
    /// still live.
    Popped {
        key: Key,
        target: Target,
        slot: Option<Slot>,
    },
}

struct Cache {
    /// Most entries kept (live or stale) once a transaction ends.
    capacity: usize,
    hasher: RandomState,
    /// What each key points to.
    slots: HashMap<Key, Slot>,
    /// Keys in the order they were set, oldest first. An entry whose key no
    /// longer points to its target (it was set again) is stale.
    order: VecDeque<(Key, Target)>,
    /// Changes since the transaction began.
    journal: Vec<Change>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        capacity: CAPACITY,
        hasher: RandomState::new(),
        slots: HashMap::new(),
        order: VecDeque::new(),
        journal: Vec::new(),
    });
}

impl Cache {
    fn key(&self, tenant: &str, channel: &str, smsc_id: &str) -> Key {
        key(&self.hasher, tenant, channel, smsc_id)
    }
}

/// The hash of (tenant, channel, SMSC id) under `hasher`: how the writer
/// keys what it keeps in memory per receipt key (here, and in `parked`).
pub(crate) fn key(hasher: &RandomState, tenant: &str, channel: &str, smsc_id: &str) -> Key {
    // The NULs keep ("ab", "c") apart from ("a", "bc").
    hasher.hash_one((tenant, '\0', channel, '\0', smsc_id))
}

/// Enters `target` in the durable SMSC-id index if it still awaits its
/// receipt; returns whether it did.
fn index(conn: &Tx<'_>, target: Target) -> rusqlite::Result<bool> {
    let changed = if target.part == 0 {
        conn.cached(
            "UPDATE messages SET smsc_lookup_id = smsc_message_id \
             WHERE id = ?1 AND status = 'submitted' AND smsc_lookup_id IS NULL",
        )?
        .execute(params![target.message])?
    } else {
        conn.cached(
            "UPDATE message_parts SET smsc_lookup_id = smsc_message_id \
             WHERE message_id = ?1 AND part = ?2 AND status = 'submitted' \
             AND smsc_lookup_id IS NULL",
        )?
        .execute(params![target.message, target.part])?
    };
    Ok(changed > 0)
}

/// Remembers that `target` was submitted as `smsc_id` on `channel`; `done`
/// if that already gave it its final status (its receipt came first).
/// Whatever was remembered under the same key before is indexed, if it
/// still awaits its receipt, since the cache can no longer find it.
pub(crate) fn remember(
    conn: &Tx<'_>,
    tenant: &str,
    channel: &str,
    smsc_id: &str,
    target: Target,
    done: bool,
) -> rusqlite::Result<()> {
    let replaced = CACHE.with(|cache| {
        let cache = &mut *cache.borrow_mut();
        let key = cache.key(tenant, channel, smsc_id);
        let replaced = cache.slots.insert(key, Slot { target, done });
        cache.order.push_back((key, target));
        cache.journal.push(Change::Set { key, replaced });
        replaced
    });
    match replaced {
        Some(older) if !older.done && older.target != target => {
            index(conn, older.target)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Notes that `target`, found `remembered`, got its final status:
/// evicting it then needs no index entry. Does nothing if the cache
/// pointed elsewhere, or no longer points there.
pub(crate) fn finished(remembered: Option<Remembered>, target: Target) {
    let Some(Remembered { key, .. }) = remembered.filter(|r| r.target == target) else {
        return;
    };
    CACHE.with(|cache| {
        let cache = &mut *cache.borrow_mut();
        if let Some(slot) = cache.slots.get_mut(&key) {
            if slot.target == target && !slot.done {
                let replaced = *slot;
                slot.done = true;
                cache.journal.push(Change::Set {
                    key,
                    replaced: Some(replaced),
                });
            }
        }
    });
}

/// What was last submitted as `smsc_id` on `channel`, if remembered.
/// Check it against the row: a hash collision can point elsewhere.
pub(crate) fn lookup(tenant: &str, channel: &str, smsc_id: &str) -> Option<Remembered> {
    CACHE.with(|cache| {
        let cache = cache.borrow();
        let key = cache.key(tenant, channel, smsc_id);
        cache.slots.get(&key).map(|slot| Remembered {
            key,
            target: slot.target,
        })
    })
}

/// Number of entries in the queue (live or stale).
#[cfg(test)]
fn queued() -> usize {
    CACHE.with(|cache| cache.borrow().order.len())
}

/// Entries a transaction can add before its spill: one per operation
/// (ten per long message at most), and a transaction holds at most a
/// batch (512 by default). Reserved up front with the capacity, so the
/// tables never grow by doubling.
const SLACK: usize = 8_192;

/// Sets how many entries this thread's cache keeps, and reserves room for
/// them (the memory is touched only as entries come).
pub(crate) fn set_capacity(capacity: usize) {
    CACHE.with(|cache| {
        let cache = &mut *cache.borrow_mut();
        cache.capacity = capacity;
        let room = capacity.saturating_add(SLACK);
        cache.slots.reserve(room);
        cache.order.reserve(room);
    });
}

/// Evicts the oldest entries while the cache holds more than its capacity,
/// indexing those still awaiting their receipt; runs inside the writer's
/// open transaction. Returns how many it indexed. If that fails, the cache
/// keeps them all: rows already indexed are only findable twice.
pub(crate) fn spill_overflow(conn: &Tx<'_>) -> rusqlite::Result<u64> {
    let capacity = CACHE.with(|cache| cache.borrow().capacity);
    let before = mark();
    spill_beyond(conn, capacity).inspect_err(|_| undo_to(before))
}

fn spill_beyond(conn: &Tx<'_>, capacity: usize) -> rusqlite::Result<u64> {
    let mut indexed = 0;
    loop {
        let popped = CACHE.with(|cache| {
            let cache = &mut *cache.borrow_mut();
            if cache.order.len() <= capacity {
                return None;
            }
            let (key, target) = cache.order.pop_front()?;
            let slot = cache
                .slots
                .get(&key)
                .copied()
                .filter(|slot| slot.target == target);
            if slot.is_some() {
                cache.slots.remove(&key);
            }
            cache.journal.push(Change::Popped { key, target, slot });
            Some((slot.is_some_and(|slot| !slot.done), target))
        });
        match popped {
            None => return Ok(indexed),
            // Stale, or final: nothing to keep.
            Some((false, _)) => {}
            // Not indexed if its receipt came and the cache was not told
            // (a status set by other means): nothing to index then.
            Some((true, target)) => indexed += u64::from(index(conn, target)?),
        }
    }
}

/// Where the journal stands: [`undo_to`] it to undo what came after.
pub(crate) fn mark() -> usize {
    CACHE.with(|cache| cache.borrow().journal.len())
}

/// Undoes every change made since `mark` (a savepoint or the whole
/// transaction rolled back).
pub(crate) fn undo_to(mark: usize) {
    CACHE.with(|cache| {
        let cache = &mut *cache.borrow_mut();
        while cache.journal.len() > mark {
            let Some(change) = cache.journal.pop() else {
                break;
            };
            match change {
                Change::Set { key, replaced } => {
                    // Its queue entry stays, stale unless `replaced` is back.
                    match replaced {
                        Some(slot) => cache.slots.insert(key, slot),
                        None => cache.slots.remove(&key),
                    };
                }
                Change::Popped { key, target, slot } => {
                    if let Some(slot) = slot {
                        cache.slots.insert(key, slot);
                    }
                    cache.order.push_front((key, target));
                }
            }
        }
    });
}

/// The transaction committed: its changes stay.
pub(crate) fn committed() {
    CACHE.with(|cache| cache.borrow_mut().journal.clear());
}

/// Indexes every message and part still awaiting its receipt: run at open,
/// before the writer starts, since the cache that held them died with the
/// last process. Returns how many.
pub(crate) fn index_awaiting(conn: &Connection) -> rusqlite::Result<usize> {
    let messages = conn.execute(
        "UPDATE messages INDEXED BY messages_submitted SET smsc_lookup_id = smsc_message_id \
         WHERE status = 'submitted' AND smsc_lookup_id IS NULL AND smsc_message_id IS NOT NULL",
        [],
    )?;
    let parts = conn.execute(
        "UPDATE message_parts INDEXED BY message_parts_awaiting_receipt \
         SET smsc_lookup_id = smsc_message_id \
         WHERE status = 'submitted' AND smsc_lookup_id IS NULL",
        [],
    )?;
    Ok(messages + parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        crate::schema::migrated_in_memory()
    }

    /// `remember`s message `id` of acme/main under `smsc_id`, not done.
    fn remember_message(conn: &Connection, smsc_id: &str, id: i64) {
        remember(
            &Tx::new(conn),
            "acme",
            "main",
            smsc_id,
            Target::message(id),
            false,
        )
        .unwrap();
    }

    fn submitted(conn: &Connection, id: i64, smsc_id: &str) {
        conn.execute(
            "INSERT INTO messages (id, tenant, source, destination, body, status, channel, \
             smsc_message_id, created_at, updated_at) \
             VALUES (?1, 'acme', 's', 'd', 'b', 'submitted', 'main', ?2, 1, 1)",
            params![id, smsc_id],
        )
        .unwrap();
        remember_message(conn, smsc_id, id);
    }

    /// What the cache holds for `smsc_id` of `tenant` on `channel`.
    fn target(tenant: &str, channel: &str, smsc_id: &str) -> Option<Target> {
        lookup(tenant, channel, smsc_id).map(|r| r.target)
    }

    fn indexed(conn: &Connection, smsc_id: &str) -> Vec<i64> {
        conn.prepare(
            "SELECT id FROM messages WHERE tenant = 'acme' AND channel = 'main' \
             AND smsc_lookup_id = ?1 ORDER BY id",
        )
        .unwrap()
        .query_map(params![smsc_id], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_remembered_submit_is_found_only_under_its_own_tenant_and_channel() {
        let conn = connection();
        remember_message(&conn, "x1", 7);
        assert_eq!(target("acme", "main", "x1"), Some(Target::message(7)));
        assert_eq!(target("other", "main", "x1"), None);
        assert_eq!(target("acme", "backup", "x1"), None);
        assert_eq!(target("acme", "mai", "nx1"), None);
    }

    #[test]
    fn an_smsc_id_given_again_points_to_the_newer_message_and_indexes_the_older() {
        let conn = connection();
        submitted(&conn, 7, "x1");
        submitted(&conn, 8, "x1");
        assert_eq!(target("acme", "main", "x1"), Some(Target::message(8)));
        assert_eq!(indexed(&conn, "x1"), [7]);
    }

    #[test]
    fn rolling_back_restores_the_cache_as_it_was_at_the_mark() {
        let conn = connection();
        remember_message(&conn, "a", 1);
        committed();
        let mark = mark();
        remember_message(&conn, "a", 2);
        remember_message(&conn, "b", 3);
        finished(lookup("acme", "main", "b"), Target::message(3));
        undo_to(mark);
        assert_eq!(target("acme", "main", "a"), Some(Target::message(1)));
        assert_eq!(target("acme", "main", "b"), None);
    }

    #[test]
    fn the_oldest_submits_beyond_capacity_are_indexed_if_still_awaiting_their_receipt() {
        let conn = connection();
        for (id, smsc_id) in [(1, "s1"), (2, "s2"), (3, "s3")] {
            submitted(&conn, id, smsc_id);
        }
        conn.execute("UPDATE messages SET status = 'delivered' WHERE id = 2", [])
            .unwrap();
        assert_eq!(
            spill_beyond(&Tx::new(&conn), 1).unwrap(),
            1,
            "only s1 awaited its receipt"
        );
        assert_eq!(indexed(&conn, "s1"), [1]);
        assert!(
            indexed(&conn, "s2").is_empty(),
            "a final message needs no index"
        );
        assert!(
            indexed(&conn, "s3").is_empty(),
            "within capacity: stays in memory"
        );
        assert_eq!(target("acme", "main", "s1"), None);
        assert_eq!(target("acme", "main", "s2"), None);
        assert_eq!(target("acme", "main", "s3"), Some(Target::message(3)));
        assert_eq!(queued(), 1);
    }

    #[test]
    fn a_submit_whose_final_receipt_came_is_evicted_without_a_statement() {
        let conn = connection();
        submitted(&conn, 1, "s1");
        finished(lookup("acme", "main", "s1"), Target::message(1));
        assert_eq!(
            target("acme", "main", "s1"),
            Some(Target::message(1)),
            "still matched while remembered"
        );
        // A row still 'submitted' would be indexed if the cache thought it
        // awaited a receipt: it does not, so nothing is written.
        spill_beyond(&Tx::new(&conn), 0).unwrap();
        assert!(indexed(&conn, "s1").is_empty());
        assert_eq!(target("acme", "main", "s1"), None);
    }

    #[test]
    fn an_eviction_rolled_back_puts_its_entries_back() {
        let conn = connection();
        submitted(&conn, 1, "s1");
        submitted(&conn, 2, "s2");
        committed();
        let mark = mark();
        spill_beyond(&Tx::new(&conn), 0).unwrap();
        assert_eq!(queued(), 0);
        undo_to(mark);
        assert_eq!(queued(), 2);
        assert_eq!(target("acme", "main", "s1"), Some(Target::message(1)));
        assert_eq!(target("acme", "main", "s2"), Some(Target::message(2)));
    }

    #[test]
    fn a_spill_the_database_refuses_keeps_every_entry_in_the_cache() {
        let conn = connection();
        submitted(&conn, 1, "s1");
        submitted(&conn, 2, "s2");
        committed();
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE UPDATE OF smsc_lookup_id ON messages \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
        set_capacity(0);
        assert!(spill_overflow(&Tx::new(&conn)).is_err());
        assert_eq!(queued(), 2);
        assert_eq!(target("acme", "main", "s1"), Some(Target::message(1)));
        assert_eq!(target("acme", "main", "s2"), Some(Target::message(2)));
    }

    #[test]
    fn opening_indexes_every_message_still_awaiting_its_receipt() {
        let conn = connection();
        submitted(&conn, 1, "s1");
        submitted(&conn, 2, "s2");
        conn.execute("UPDATE messages SET status = 'delivered' WHERE id = 2", [])
            .unwrap();
        assert_eq!(index_awaiting(&conn).unwrap(), 1);
        assert_eq!(indexed(&conn, "s1"), [1]);
        assert!(indexed(&conn, "s2").is_empty());
    }
}
