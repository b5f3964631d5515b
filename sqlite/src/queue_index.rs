//! How a tenant's queued messages are found, without an index entry
//! written and deleted with every message.
//!
//! Schemas 3 to 20 kept a partial index `messages_queued (tenant,
//! priority, id) WHERE status = 'queued'`. Every message entered it at its
//! insert and left it at its submit, a few milliseconds later: two B-tree
//! changes per message, and each commit wrote a page of it per tenant
//! sending. Yet it is read only when a tenant's supervisor refills its
//! in-memory window from a backlog, and at start-up.
//!
//! Since schema 21 the writer keeps `message_queue (tenant, priority, id)`
//! instead, and enters a message only if it is still queued when the
//! listing sweep passes over it (see `listing`: every 50 ms, in the
//! transaction being committed, for every message above the mark in
//! `message_list_mark`). At full speed nearly every message has been
//! submitted by then and never enters the table at all. So:
//!
//! - a queued message at or below the mark is in `message_queue`, and a
//!   message in it at or below the mark is queued: the statements that
//!   move a message at or below the mark out of `queued` delete its entry
//!   ([`left`]), and a retry that puts one back enters it again
//!   ([`requeued`]);
//! - a queued message above the mark is found by a scan of the newest
//!   rowids, a fraction of a second of traffic.
//!
//! Readers take the mark and both parts in one read transaction. The
//! writer knows the mark in memory ([`swept_up_to`]). It may run ahead
//! of the database's (a sweep whose transaction then rolled back), never
//! behind it, so it only ever does a maintenance statement too many;
//! readers ignore entries above the database's mark.

use std::cell::Cell;

use crate::tx::Tx;
use rusqlite::{params, Connection};

thread_local! {
    /// Every message at or below this id has been swept (on the writer
    /// thread). Until [`keep`] says otherwise, every message is treated as
    /// swept: correct, only slower.
    static SWEPT_UP_TO: Cell<i64> = const { Cell::new(i64::MAX) };
}

/// Makes this thread (the writer) keep the mark, starting from the
/// database's.
pub(crate) fn keep(up_to: i64) {
    SWEPT_UP_TO.with(|mark| mark.set(up_to));
}

/// A sweep (in the open transaction) moved the mark to `up_to`.
pub(crate) fn swept_to(up_to: i64) {
    SWEPT_UP_TO.with(|mark| mark.set(mark.get().max(up_to)));
}

/// The writer's mark (see the module header).
fn swept_up_to() -> i64 {
    SWEPT_UP_TO.with(Cell::get)
}

/// Enters every queued message above the mark; part of the sweep.
pub(crate) const SWEEP: &str = "INSERT OR IGNORE INTO message_queue (tenant, priority, id) \
     SELECT tenant, priority, id FROM messages \
     WHERE id > (SELECT up_to FROM message_list_mark) AND status = 'queued'";

/// Message `id` of `tenant` left `queued`: its entry goes, if it has one.
pub(crate) fn left(conn: &Tx<'_>, tenant: &str, id: i64) -> rusqlite::Result<()> {
    if id <= swept_up_to() {
        conn.cached(DELETE_ENTRY)?.execute(params![tenant, id])?;
    }
    Ok(())
}

/// Deletes a message's entry: its lane is read from its row (a rowid
/// lookup on a page the status change just wrote), then one lookup of the
/// primary key. Not `priority IN (0, 1, 2)`: SQLite runs an `IN` list on
/// a key column through an ephemeral table built on every execution: 3.2
/// µs per call against 1.6 µs for this (Python's `sqlite3`, 100,000
/// deletes from 300,000 entries, the call's own overhead included).
pub(crate) const DELETE_ENTRY: &str = "DELETE FROM message_queue WHERE tenant = ?1 \
     AND priority = (SELECT priority FROM messages WHERE id = ?2) AND id = ?2";

/// Message `id` went back to `queued` (a retry): it is entered again.
pub(crate) fn requeued(conn: &Tx<'_>, id: i64) -> rusqlite::Result<()> {
    if id <= swept_up_to() {
        conn.cached(
            "INSERT OR IGNORE INTO message_queue (tenant, priority, id) \
             SELECT tenant, priority, id FROM messages WHERE id = ?1 AND status = 'queued'",
        )?
        .execute(params![id])?;
    }
    Ok(())
}

/// Queued messages at or below the mark `?1`, of one tenant's lane, with
/// id above `?4`, oldest first.
pub(crate) const SELECT_SWEPT: &str =
    "SELECT m.id, m.source, m.destination, m.body, m.attempts, m.validity_until, m.parts, \
     m.data_coding, m.send_at FROM message_queue q JOIN messages m ON m.id = q.id \
     WHERE q.tenant = ?2 AND q.priority = ?3 AND q.id > ?4 AND q.id <= ?1 \
     AND m.status = 'queued' ORDER BY q.id LIMIT ?5";

/// Queued messages above the mark `?1`, of one tenant's lane, with id
/// above `?4`, oldest first: a scan of the newest rowids.
pub(crate) const SELECT_NEWEST: &str =
    "SELECT id, source, destination, body, attempts, validity_until, parts, data_coding, \
     send_at FROM messages WHERE id > max(?1, ?4) AND tenant = ?2 AND priority = ?3 \
     AND status = 'queued' ORDER BY id LIMIT ?5";

/// How many queued messages each tenant has: the entries at or below the
/// mark and the queued messages above it, in the caller's transaction.
pub(crate) fn counts(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT tenant, COUNT(*) FROM ( \
             SELECT tenant FROM message_queue \
             WHERE id <= (SELECT up_to FROM message_list_mark) \
             UNION ALL \
             SELECT tenant FROM messages \
             WHERE id > (SELECT up_to FROM message_list_mark) AND status = 'queued') \
         GROUP BY tenant ORDER BY tenant",
    )?;
    let rows = stmt.query_map([], |row| {
        let n: i64 = row.get(1)?;
        Ok((row.get(0)?, n.max(0).unsigned_abs()))
    })?;
    rows.collect()
}
