//! How a tenant's messages are found for `GET /v1/messages`, without an
//! index entry written with every message.
//!
//! Schemas 5 to 19 kept an index `messages_tenant (tenant, id)`. Each new
//! message's entry lands at its tenant's end of that index, so every
//! commit wrote one page of it per tenant sending: with ten tenants, ten
//! pages where one tenant needs one. It was most of what ten tenants cost
//! more than one (a probe without it: the writer 14.1 → 11.4 µs per
//! message with ten tenants, 31,403 → 36,284 msg/s).
//!
//! Since schema 20 the writer enters messages in `message_list (tenant,
//! id)` in bulk instead: every [`SWEEP_EVERY`], in the transaction it is
//! committing, it adds every message above the mark in
//! `message_list_mark`, then moves the mark. A tenant's entries of one
//! sweep are neighbours in `message_list`, so a sweep writes about a page
//! per tenant, not one per tenant per commit. (Sorting them by tenant
//! first saved nothing measurable; sweeping every 200 ms instead of 50
//! made the writer's pauses long enough to show in the accept p99.)
//!
//! The same sweep enters the messages it passes that are still queued in
//! `message_queue`, which the supervisors' refills read (`queue_index`).
//!
//! A listing reads, in one read transaction, the mark, then the messages
//! above it (the last fraction of a second, a range of rowids) and, for
//! the rest of the page, `message_list` joined to `messages`: both
//! newest first, both bounded by the page size.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::tx::Tx;
use rusqlite::{params, Connection};

/// How often the writer enters new messages in `message_list`: a listing
/// scans at most this much of the newest traffic without an index.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(50);

thread_local! {
    /// When this writer thread last swept (`None`: not yet).
    static LAST_SWEEP: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether a sweep is due (the writer's clock, this thread's last sweep).
pub(crate) fn due(now: Instant) -> bool {
    LAST_SWEEP.with(|last| {
        last.get()
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
    })
}

/// Enters every message above the mark in `message_list`, and those still
/// queued in `message_queue` (see `queue_index`), and moves the mark to
/// the newest message, in the open transaction; returns how many it listed.
/// Inside a savepoint: if it fails, nothing of it stays and the
/// transaction goes on (the next sweep takes these messages too).
pub(crate) fn sweep(conn: &Tx<'_>, now: Instant) -> rusqlite::Result<usize> {
    LAST_SWEEP.with(|last| last.set(Some(now)));
    conn.execute_batch("SAVEPOINT sweep")?;
    let swept = (|| {
        conn.cached(crate::queue_index::SWEEP)?.execute([])?;
        let entered = conn
            .cached(
                "INSERT OR IGNORE INTO message_list (tenant, id) \
                 SELECT tenant, id FROM messages \
                 WHERE id > (SELECT up_to FROM message_list_mark)",
            )?
            .execute([])?;
        if entered == 0 {
            return Ok((0, None));
        }
        let newest: i64 = conn
            .cached("SELECT MAX(id) FROM messages")?
            .query_row([], |row| row.get(0))?;
        conn.cached("UPDATE message_list_mark SET up_to = ?1")?
            .execute([newest])?;
        Ok((entered, Some(newest)))
    })();
    match swept {
        Ok((entered, newest)) => {
            if let Some(newest) = newest {
                // Before the release: the writer's mark may run ahead of
                // the database's, never behind (see `queue_index`).
                crate::queue_index::swept_to(newest);
            }
            conn.execute_batch("RELEASE sweep")?;
            Ok(entered)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO sweep; RELEASE sweep")?;
            Err(e)
        }
    }
}

/// The mark: every message with an id at or below it is in
/// `message_list` (unless deleted).
pub(crate) fn up_to(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT up_to FROM message_list_mark")?
        .query_row([], |row| row.get(0))
}

/// Deletes the tenant's messages: those in `message_list` through it,
/// those above the mark by rowid, and the tenant's `message_list`
/// entries; returns how many messages.
pub(crate) fn delete_tenant_messages(conn: &Connection, tenant: &str) -> rusqlite::Result<usize> {
    let listed = conn
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (SELECT id FROM message_list WHERE tenant = ?1)",
        )?
        .execute(params![tenant])?;
    let newest = conn
        .prepare_cached(
            "DELETE FROM messages WHERE id > (SELECT up_to FROM message_list_mark) \
             AND tenant = ?1",
        )?
        .execute(params![tenant])?;
    conn.prepare_cached("DELETE FROM message_list WHERE tenant = ?1")?
        .execute(params![tenant])?;
    Ok(listed + newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sweep_undoes_itself_and_leaves_the_transaction_going() {
        let conn = crate::schema::migrated_in_memory();
        conn.execute_batch(
            "BEGIN;
             INSERT INTO messages (id, tenant, source, destination, body, status, created_at,
                                   updated_at) VALUES (7, 't', 's', 'd', 'b', 'queued', 0, 0);
             DROP TABLE message_list;",
        )
        .unwrap();
        assert!(sweep(&Tx::new(&conn), Instant::now()).is_err());
        assert!(!conn.is_autocommit(), "the transaction is still open");
        assert_eq!(up_to(&conn).unwrap(), 0, "the mark did not move");
        let kept: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1, "the transaction's own work stays");
    }

    #[test]
    fn a_sweep_lists_the_new_messages_and_moves_the_mark() {
        let conn = crate::schema::migrated_in_memory();
        conn.execute_batch(
            "INSERT INTO messages (id, tenant, source, destination, body, status, created_at,
                                   updated_at)
             VALUES (5, 'a', 's', 'd', 'b', 'queued', 0, 0), (6, 'b', 's', 'd', 'b', 'queued', 0, 0);",
        )
        .unwrap();
        assert_eq!(sweep(&Tx::new(&conn), Instant::now()).unwrap(), 2);
        assert_eq!(up_to(&conn).unwrap(), 6);
        assert_eq!(
            sweep(&Tx::new(&conn), Instant::now()).unwrap(),
            0,
            "nothing new"
        );
    }
}
