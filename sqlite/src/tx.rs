//! [`Tx`]: the writer's connection, with the statements it runs for every
//! message kept prepared.
//!
//! rusqlite's `prepare_cached` is built for SQL that may come from
//! anywhere: every use trims the text, looks it up in an LRU map by hashing
//! and comparing the whole string, and on the way back copies it into a new
//! `Arc<str>` and hashes it again. The writer runs four or so statements per
//! message, and that bookkeeping was ~4 % of its time (about 0.4 µs per
//! message, profiled at full load). Every statement the writer runs is a
//! `&'static str` constant, so [`Tx::cached`] keys the statement by the
//! constant's address instead: a short scan of a few integers, no hashing,
//! no copy, no allocation.
//!
//! `Tx` derefs to the [`Connection`], so code that takes a `&Connection`
//! (rarely used writes, reads at open) is called with a `&Tx` unchanged and
//! keeps rusqlite's cache.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use rusqlite::{Connection, PrepFlags, Statement};

/// The writer's connection and its prepared statements (see the module
/// header). Lives as long as the writer's loop; its statements are
/// finalized when it is dropped, before the connection closes.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    /// One slot per statement, keyed by the SQL text's address and length.
    /// `None` while the statement is in use.
    statements: RefCell<Vec<(Key, Option<Statement<'c>>)>>,
}

/// Where a `&'static str` lives: two constants at the same address with the
/// same length are the same text, since static memory never changes.
type Key = (usize, usize);

fn key(sql: &'static str) -> Key {
    (sql.as_ptr() as usize, sql.len())
}

impl<'c> Tx<'c> {
    /// Wraps a connection, with no statement prepared yet.
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            statements: RefCell::new(Vec::new()),
        }
    }

    /// The prepared statement for `sql`, prepared on first use. It goes back
    /// to the connection's set when the returned guard is dropped. If the
    /// same statement is already in use further up the stack, a second one
    /// is prepared for this use and finalized after it.
    pub(crate) fn cached(&self, sql: &'static str) -> rusqlite::Result<Held<'_, 'c>> {
        let key = key(sql);
        let taken = self
            .statements
            .borrow_mut()
            .iter_mut()
            .find(|(k, _)| *k == key)
            .map(|(_, slot)| slot.take());
        let statement = match taken {
            Some(Some(statement)) => statement,
            // In use (`Some(None)`) or never prepared (`None`). Persistent,
            // as rusqlite prepares the statements it caches.
            _ => self
                .conn
                .prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
        };
        Ok(Held {
            tx: self,
            key,
            statement: Some(statement),
        })
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A statement borrowed from a [`Tx`]; derefs to the rusqlite [`Statement`].
pub(crate) struct Held<'t, 'c> {
    tx: &'t Tx<'c>,
    key: Key,
    statement: Option<Statement<'c>>,
}

impl<'c> Deref for Held<'_, 'c> {
    type Target = Statement<'c>;

    fn deref(&self) -> &Statement<'c> {
        self.statement
            .as_ref()
            .expect("a held statement is present until dropped")
    }
}

impl<'c> DerefMut for Held<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Statement<'c> {
        self.statement
            .as_mut()
            .expect("a held statement is present until dropped")
    }
}

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        let Some(statement) = self.statement.take() else {
            return;
        };
        let mut statements = self.tx.statements.borrow_mut();
        match statements.iter_mut().find(|(k, _)| *k == self.key) {
            // Its slot is free: it goes back. (Occupied: a second copy was
            // prepared while this one was in use and went back first; this
            // one is finalized here.)
            Some((_, slot @ None)) => *slot = Some(statement),
            Some(_) => {}
            None => statements.push((self.key, Some(statement))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT: &str = "SELECT COUNT(*) FROM t";
    const INSERT: &str = "INSERT INTO t (v) VALUES (?1)";

    fn connection() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        conn
    }

    fn count(tx: &Tx) -> i64 {
        tx.cached(COUNT)
            .unwrap()
            .query_row([], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_statement_is_prepared_once_and_reused() {
        let conn = connection();
        let tx = Tx::new(&conn);
        for v in 0..3 {
            tx.cached(INSERT).unwrap().execute([v]).unwrap();
        }
        assert_eq!(tx.statements.borrow().len(), 1);
        assert_eq!(count(&tx), 3);
        assert_eq!(tx.statements.borrow().len(), 2);
    }

    #[test]
    fn a_statement_in_use_is_prepared_again_for_a_nested_use() {
        let conn = connection();
        conn.execute("INSERT INTO t (v) VALUES (1), (2)", [])
            .unwrap();
        let tx = Tx::new(&conn);
        let outer = tx.cached(COUNT).unwrap();
        {
            let mut inner = tx.cached(COUNT).unwrap();
            let n: i64 = inner.query_row([], |r| r.get(0)).unwrap();
            assert_eq!(n, 2);
        }
        drop(outer);
        // The copy that went back last was finalized; one statement is kept.
        let statements = tx.statements.borrow();
        assert_eq!(statements.len(), 1);
        assert!(statements[0].1.is_some());
    }

    #[test]
    fn a_failed_statement_leaves_the_statement_reusable() {
        let conn = connection();
        conn.execute_batch("CREATE UNIQUE INDEX t_v ON t(v)")
            .unwrap();
        let tx = Tx::new(&conn);
        tx.cached(INSERT).unwrap().execute([1]).unwrap();
        assert!(tx.cached(INSERT).unwrap().execute([1]).is_err());
        tx.cached(INSERT).unwrap().execute([2]).unwrap();
        assert_eq!(count(&tx), 2);
    }
}
