//! The single writer thread and its group commit.
//!
//! SQLite allows one writer at a time, and a transaction per row tops out
//! around 40 k rows/s here while 500 rows per transaction reach ~300 k/s
//! (see the SQLite section of shared/docs/ecosystem.md). So one thread owns
//! the only write connection; callers enqueue jobs on a channel. The thread blocks for the first
//! job, takes whatever else is already queued (up to `max_batch`), runs them
//! all in one `BEGIN IMMEDIATE … COMMIT`, and only then calls each job's
//! completion. There is no timer: while one commit runs, the next batch
//! queues up by itself, so batches grow exactly as fast as load does and a
//! lone write is never delayed.
//!
//! One operation that fails (a duplicate id, a corrupt row, a quota
//! refusal) reports its own error while the rest of the batch still
//! commits. A `SAVEPOINT` around every operation would give that, but costs
//! two statements and a sub-journal of every page touched per operation, a
//! tenth of the writer's time. So a batch first runs optimistically, without
//! savepoints. An operation that fails before changing anything (the usual
//! refusal: SQLite undoes a failing statement by itself) needs nothing
//! undone. Only one that fails *after* changing rows forces the slow path:
//! the transaction is rolled back and the batch replayed with a savepoint
//! around each operation, which is why operations must be replayable
//! (`FnMut`, touching nothing but the connection).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{ffi, Connection};

use crate::fold::{self, Fold, Link};
use crate::tx::Tx;
use crate::StoreError;
use crate::{listing, parked, queue_depth, receipt_cache};

/// Completion callbacks run ON THE WRITER THREAD after the transaction that
/// holds the op committed (or failed). They must be cheap and must not block
/// (callers send on a channel / actor address).
///
/// The one exception: a write submitted after the store was closed is
/// answered with [`StoreError::WriterGone`] on the caller's own thread.
pub type Done<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send + 'static>;

/// Counters kept by the writer thread, to check that group commit happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Operations handled (including failed ones and `flush` markers).
    pub ops: u64,
    /// Nanoseconds the writer spent running batches (statements, commits
    /// with their fsync, completions) rather than waiting for work. Its
    /// rate is the writer's utilisation: near 1 s per second, the single
    /// writer is what limits the engine.
    pub busy_ns: u64,
    /// Submits entered in the SMSC-id index because they left the receipt
    /// cache still awaiting their receipt (see `receipt_cache`). If this
    /// grows with traffic, receipts come later than the cache reaches.
    pub receipts_indexed: u64,
}

/// Shared, lock-free storage for [`WriterStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    transactions: AtomicU64,
    ops: AtomicU64,
    busy_ns: AtomicU64,
    receipts_indexed: AtomicU64,
    /// Jobs handed to the writer and not yet answered.
    pub(crate) pending: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            receipts_indexed: self.receipts_indexed.load(Ordering::Relaxed),
        }
    }
}

/// The current time in unix milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One queued write, type-erased so the channel can carry every kind.
pub(crate) type Job = Box<dyn Operation>;

/// A write as the writer thread sees it: run it, then tell its caller how
/// the transaction ended.
pub(crate) trait Operation: Send {
    /// Applies the change on the writer connection, inside the open
    /// transaction. Returns false if it failed (its error is kept for `finish`).
    /// May be called again after a rollback: each run replaces the last.
    fn run(&mut self, conn: &Tx, now_ms: i64) -> bool;
    /// Fails the operation without running it.
    fn reject(&mut self, error: StoreError);
    /// Calls the completion: the operation's own error if it had one, else the
    /// transaction's outcome (`Err` means nothing it did is durable).
    fn finish(self: Box<Self>, txn: Result<(), &rusqlite::Error>);
    /// Its submit/receipt pairing, if it can take part in one (see `fold`).
    fn link(&mut self) -> Option<&mut Link>;
    /// The transaction it ran in was rolled back: nothing it handed on
    /// through its pairing holds any more.
    fn rolled_back(&mut self);
}

/// Builds a [`Job`] from the SQL work to do and the caller's completion.
///
/// `work` may run more than once (see the module header): it must leave
/// everything but the connection as it found it.
pub(crate) fn job<T, F>(mut work: F, done: Done<T>) -> Job
where
    T: Send + 'static,
    F: FnMut(&Tx, i64) -> Result<T, StoreError> + Send + 'static,
{
    linked_job(
        None,
        move |conn: &Tx, now, _: Option<&Fold>| work(conn, now),
        done,
    )
}

/// A [`job`] that, with a `link`, can be paired with another in its batch
/// (see `fold`): `work` gets the pairing's shared [`Fold`] when it has one.
pub(crate) fn linked_job<T, F>(link: Option<Link>, work: F, done: Done<T>) -> Job
where
    T: Send + 'static,
    F: FnMut(&Tx, i64, Option<&Fold>) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(Op {
        work,
        link,
        rejected: false,
        result: None,
        done: Some(done),
    })
}

struct Op<T, F> {
    work: F,
    link: Option<Link>,
    /// Failed without running ([`Operation::reject`]): never run it now.
    rejected: bool,
    result: Option<Result<T, StoreError>>,
    /// Taken when called. If an `Op` is dropped with it still here (the
    /// channel closed, the writer died), `Drop` answers `WriterGone`, so no
    /// caller ever waits forever for an answer.
    done: Option<Done<T>>,
}

impl<T, F> Operation for Op<T, F>
where
    T: Send + 'static,
    F: FnMut(&Tx, i64, Option<&Fold>) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Tx, now_ms: i64) -> bool {
        if self.rejected {
            return false;
        }
        let fold = self.link.as_ref().and_then(|link| link.fold.as_deref());
        let result = (self.work)(conn, now_ms, fold);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reject(&mut self, error: StoreError) {
        self.rejected = true;
        self.result = Some(Err(error));
    }

    fn finish(mut self: Box<Self>, txn: Result<(), &rusqlite::Error>) {
        let outcome = match (self.result.take(), txn) {
            (Some(Err(own)), _) => Err(own),
            (_, Err(txn_error)) => Err(StoreError::Sqlite(share_error(txn_error))),
            (Some(Ok(value)), Ok(())) => Ok(value),
            // Never ran, yet the transaction committed: cannot happen, but an
            // honest "not applied" beats a panic.
            (None, Ok(())) => Err(StoreError::WriterGone),
        };
        if let Some(done) = self.done.take() {
            deliver(done, outcome);
        }
    }

    fn link(&mut self) -> Option<&mut Link> {
        self.link.as_mut()
    }

    fn rolled_back(&mut self) {
        if let Some(fold) = self.link.as_ref().and_then(|link| link.fold.as_ref()) {
            fold.clear();
        }
    }
}

impl<T, F> Drop for Op<T, F> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            deliver(done, Err(StoreError::WriterGone));
        }
    }
}

/// Calls a completion, containing a panic in it: a buggy callback must not
/// take down the writer thread (and with it every other tenant's writes).
fn deliver<T>(done: Done<T>, outcome: Result<T, StoreError>) {
    if catch_unwind(AssertUnwindSafe(move || done(outcome))).is_err() {
        log::error!("a store completion callback panicked; the writer carries on");
    }
}

/// Copies an error for each operation of a batch that failed as a whole
/// (`rusqlite::Error` is not `Clone`). SQLite failures keep their codes;
/// anything else becomes a generic SQLite error carrying the message.
fn share_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

fn execute(conn: &Tx, sql: &'static str) -> Result<(), rusqlite::Error> {
    conn.cached(sql)?.execute([])?;
    Ok(())
}

/// Rolls back the open transaction, if SQLite has not already done so.
fn rollback(conn: &Tx) {
    if !conn.is_autocommit() {
        if let Err(e) = execute(conn, "ROLLBACK") {
            log::error!("store writer: ROLLBACK failed: {e}");
        }
    }
}

/// Where the writer's in-memory state (the receipt cache and the queue
/// depths) stands within the open transaction, to undo what came after
/// when SQLite undoes its part: for the writer's own savepoints, and for
/// any an operation opens inside itself.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    receipts: usize,
    depths: usize,
    parked: usize,
}

impl Mark {
    /// Now.
    pub(crate) fn take() -> Mark {
        Mark {
            receipts: receipt_cache::mark(),
            depths: queue_depth::mark(),
            parked: parked::mark(),
        }
    }

    /// The start of the transaction.
    const START: Mark = Mark {
        receipts: 0,
        depths: 0,
        parked: 0,
    };

    /// Undoes what changed since.
    pub(crate) fn undo(self) {
        receipt_cache::undo_to(self.receipts);
        queue_depth::undo_to(self.depths);
        parked::undo_to(self.parked);
    }
}

/// Rolls back the open transaction, which held `group`.
fn roll_back_group(conn: &Tx, group: &mut [Job]) {
    rollback(conn);
    Mark::START.undo();
    for job in group {
        job.rolled_back();
    }
}

/// Something a completion asked to run after its transaction's answers.
type FollowUp = Box<dyn FnOnce()>;

/// What completions asked to run after their transaction's answers: first
/// the follow-ups of [`after_answers`], then those of
/// [`after_answers_last`], each list in the order asked.
#[derive(Default)]
struct FollowUps {
    first: Vec<FollowUp>,
    last: Vec<FollowUp>,
}

thread_local! {
    /// While the writer thread calls a group's completions: what they asked
    /// to run once all of them have been called.
    static AFTER_ANSWERS: RefCell<Option<FollowUps>> = const { RefCell::new(None) };
}

/// Runs `f` once the writer has called every completion of the
/// transaction it is answering, in the order they asked; called anywhere
/// else (a completion answered on the caller's own thread), runs `f` now.
///
/// For completions that hand their answer to another thread: each can
/// queue its answer and ask for one wake-up of that thread here, so a
/// batch answering fifty requests waiting on one thread wakes it once,
/// not fifty times.
pub fn after_answers(f: impl FnOnce() + 'static) {
    follow_up(Box::new(f), false);
}

/// Like [`after_answers`], but after every follow-up of the transaction
/// queued with [`after_answers`]. For answers the recipient can act on
/// together with the others: a connection told to acknowledge receipts
/// after its supervisor was told of new messages to submit is woken with
/// both in its mailbox, and writes both in one socket write.
pub fn after_answers_last(f: impl FnOnce() + 'static) {
    follow_up(Box::new(f), true);
}

fn follow_up(f: FollowUp, last: bool) {
    let deferred = AFTER_ANSWERS.with(|cell| match cell.borrow_mut().as_mut() {
        Some(lists) => {
            if last {
                &mut lists.last
            } else {
                &mut lists.first
            }
            .push(f);
            None
        }
        None => Some(f),
    });
    if let Some(f) = deferred {
        f();
    }
}

/// Answers `jobs`. They stop counting as pending first, so a caller woken
/// by its answer never sees its own job still pending.
fn finish_all(
    jobs: impl ExactSizeIterator<Item = Job>,
    txn: Result<(), &rusqlite::Error>,
    stats: &StatsCounters,
) {
    stats
        .pending
        .fetch_sub(jobs.len() as u64, Ordering::Relaxed);
    AFTER_ANSWERS.with(|cell| *cell.borrow_mut() = Some(FollowUps::default()));
    for job in jobs {
        job.finish(txn);
    }
    let deferred = AFTER_ANSWERS
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_default();
    for f in deferred.first.into_iter().chain(deferred.last) {
        if catch_unwind(AssertUnwindSafe(f)).is_err() {
            log::error!("a store completion's follow-up panicked; the writer carries on");
        }
    }
}

/// How one operation went.
enum Step {
    /// Applied; its changes are in the transaction.
    Applied,
    /// Failed; its own changes were undone, the transaction goes on.
    Failed,
    /// Failed after changing rows, with no savepoint to undo them: the
    /// transaction must be rolled back and its operations replayed carefully.
    Dirty,
    /// The whole transaction is gone (SQLite rolled it back on e.g. a full
    /// disk, or savepoint bookkeeping failed): nothing in it will commit.
    Aborted(rusqlite::Error),
}

/// Some errors (SQLITE_FULL, IOERR, NOMEM) make SQLite roll back the whole
/// transaction, after which later statements would run in autocommit mode
/// and be committed one by one while we report them as failed. This is the
/// error reported for every operation of such a transaction.
fn rolled_back_underneath() -> Step {
    Step::Aborted(rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ABORT),
        Some("transaction rolled back by a failing operation in the same batch".into()),
    ))
}

/// Runs an operation with nothing to undo it: fine as long as it either
/// succeeds or fails before changing a row ([`Step::Dirty`] otherwise).
/// `total_changes` counts every row a completed statement (or its
/// triggers) changed; a statement that fails undoes itself.
fn run_optimistic(conn: &Tx, job: &mut dyn Operation, now_ms: i64) -> Step {
    let before = conn.total_changes();
    let mark = Mark::take();
    if job.run(conn, now_ms) {
        Step::Applied
    } else if conn.is_autocommit() {
        rolled_back_underneath()
    } else if conn.total_changes() != before {
        Step::Dirty
    } else {
        mark.undo();
        Step::Failed
    }
}

/// Runs an operation inside its own savepoint, so a failure undoes exactly
/// its changes.
fn run_in_savepoint(conn: &Tx, job: &mut dyn Operation, now_ms: i64) -> Step {
    if let Err(e) = execute(conn, "SAVEPOINT op") {
        job.reject(StoreError::Sqlite(share_error(&e)));
        return if conn.is_autocommit() {
            Step::Aborted(e)
        } else {
            Step::Failed
        };
    }
    let mark = Mark::take();
    if job.run(conn, now_ms) {
        return match execute(conn, "RELEASE op") {
            Ok(()) => Step::Applied,
            Err(e) => Step::Aborted(e),
        };
    }
    if conn.is_autocommit() {
        return rolled_back_underneath();
    }
    mark.undo();
    match execute(conn, "ROLLBACK TO op").and_then(|()| execute(conn, "RELEASE op")) {
        Ok(()) => Step::Failed,
        Err(e) => Step::Aborted(e),
    }
}

/// Moves the receipt cache's overflow to the durable index, in the open
/// transaction; returns how many submits it indexed.
fn spill_receipt_cache(conn: &Tx) -> u64 {
    receipt_cache::spill_overflow(conn).unwrap_or_else(|e| {
        log::warn!(
            "store writer: cannot index submits awaiting receipts, keeping them in memory: {e}"
        );
        0
    })
}

/// Enters the newest messages in `message_list` when a sweep is due, in
/// the open transaction (see `listing`).
fn sweep_listing(conn: &Tx) {
    let now = Instant::now();
    if listing::due(now) {
        if let Err(e) = listing::sweep(conn, now) {
            log::warn!("store writer: cannot list the newest messages yet: {e}");
        }
    }
}

/// Runs one batch: as few transactions as possible (one unless an operation
/// fails dirty or SQLite aborts one midway), then every completion, each
/// after the transaction holding its operation has ended.
pub(crate) fn commit_batch(conn: &Tx, mut jobs: Vec<Job>, stats: &StatsCounters) {
    let now = now_ms();
    // Counted before any answer goes out, so a caller woken by its answer
    // sees its operation in the stats.
    stats.ops.fetch_add(jobs.len() as u64, Ordering::Relaxed);
    fold::pair(&mut jobs);
    let mut remaining: VecDeque<Job> = jobs.into();
    let mut group: Vec<Job> = Vec::with_capacity(remaining.len());
    // Optimistic until an operation fails dirty; careful for the rest of
    // the batch after that.
    let mut careful = false;
    while !remaining.is_empty() {
        if let Err(e) = execute(conn, "BEGIN IMMEDIATE") {
            log::error!("store writer: BEGIN failed: {e}");
            rollback(conn);
            finish_all(remaining.drain(..), Err(&e), stats);
            break;
        }
        let mut ended = None;
        while let Some(mut job) = remaining.pop_front() {
            let step = if careful {
                run_in_savepoint(conn, &mut *job, now)
            } else {
                run_optimistic(conn, &mut *job, now)
            };
            group.push(job);
            if matches!(step, Step::Dirty | Step::Aborted(_)) {
                ended = Some(step);
                break;
            }
        }
        match ended {
            Some(Step::Dirty) => {
                log::debug!(
                    "store writer: an operation failed after writing; replaying {} with savepoints",
                    group.len()
                );
                roll_back_group(conn, &mut group);
                careful = true;
                for job in group.drain(..).rev() {
                    remaining.push_front(job);
                }
                continue;
            }
            Some(Step::Aborted(e)) => {
                log::error!("store writer: transaction aborted: {e}");
                roll_back_group(conn, &mut group);
                finish_all(group.drain(..), Err(&e), stats);
                // Start a fresh transaction for whatever is left of the batch.
                continue;
            }
            _ => {}
        }
        let indexed = spill_receipt_cache(conn);
        sweep_listing(conn);
        match execute(conn, "COMMIT") {
            Ok(()) => {
                receipt_cache::committed();
                queue_depth::committed();
                parked::committed();
                stats.receipts_indexed.fetch_add(indexed, Ordering::Relaxed);
                stats.transactions.fetch_add(1, Ordering::Relaxed);
                finish_all(group.drain(..), Ok(()), stats);
            }
            Err(e) => {
                log::error!("store writer: COMMIT failed: {e}");
                // A COMMIT that failed with SQLITE_BUSY leaves the transaction open.
                roll_back_group(conn, &mut group);
                finish_all(group.drain(..), Err(&e), stats);
            }
        }
    }
}

/// The writer thread's body: batch, commit, answer, until every sender is
/// gone and the channel is drained (which is how `close` stops it).
pub(crate) fn run(conn: Connection, jobs: Receiver<Job>, max_batch: usize, stats: &StatsCounters) {
    let max_batch = max_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch.min(4096));
    let tx = Tx::new(&conn);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        commit_batch(&tx, std::mem::take(&mut batch), stats);
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stats.busy_ns.fetch_add(busy, Ordering::Relaxed);
        batch.reserve(max_batch.min(4096));
    }
    // Its statements are finalized first: a connection with statements
    // still open cannot close. Closing checkpoints the WAL; report if that
    // fails.
    drop(tx);
    if let Err((_, e)) = conn.close() {
        log::warn!("store writer: closing the connection failed: {e}");
    }
    log::debug!("store writer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn connection() -> Connection {
        crate::schema::migrated_in_memory()
    }

    /// The batch committed on `conn` as the writer thread would.
    fn commit_batch(conn: &Connection, jobs: Vec<Job>, stats: &StatsCounters) {
        super::commit_batch(&Tx::new(conn), jobs, stats);
    }

    fn insert(id: i64) -> impl FnMut(&Tx, i64) -> Result<(), StoreError> + Send {
        move |conn: &Tx, now: i64| {
            conn.prepare_cached(
                "INSERT INTO messages (id, tenant, source, destination, body, status, \
                 created_at, updated_at) VALUES (?1, 't', 's', 'd', 'b', 'queued', ?2, ?2)",
            )?
            .execute(rusqlite::params![id, now])?;
            Ok(())
        }
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_failing_operation_does_not_roll_back_the_rest_of_its_batch() {
        let conn = connection();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let mut jobs = Vec::new();
        for id in [1, 2, 1, 3] {
            let tx = tx.clone();
            jobs.push(job(
                insert(id),
                Box::new(move |r| tx.send((id, r.is_ok())).unwrap()),
            ));
        }
        commit_batch(&conn, jobs, &stats);
        let results: Vec<_> = rx.try_iter().collect();
        assert_eq!(results, [(1, true), (2, true), (1, false), (3, true)]);
        assert_eq!(count(&conn), 3);
        assert_eq!(
            stats.snapshot(),
            WriterStats {
                transactions: 1,
                ops: 4,
                // Counted by the thread loop around each batch, not here.
                busy_ns: 0,
                receipts_indexed: 0,
            }
        );
    }

    #[test]
    fn follow_ups_asked_for_by_completions_run_after_every_completion_of_the_transaction() {
        let conn = connection();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let mut jobs = Vec::new();
        for id in 1..=3 {
            let tx = tx.clone();
            jobs.push(job(
                insert(id),
                Box::new(move |_| {
                    tx.send(format!("answer {id}")).unwrap();
                    let (first, last) = (tx.clone(), tx.clone());
                    if id != 2 {
                        after_answers_last(move || last.send(format!("last {id}")).unwrap());
                    }
                    after_answers(move || first.send(format!("follow-up {id}")).unwrap());
                }),
            ));
        }
        commit_batch(&conn, jobs, &stats);
        let order: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            order,
            [
                "answer 1",
                "answer 2",
                "answer 3",
                "follow-up 1",
                "follow-up 2",
                "follow-up 3",
                "last 1",
                "last 3"
            ]
        );
        // Outside the writer's answering, a follow-up runs at once.
        after_answers(move || tx.send("now".to_string()).unwrap());
        assert_eq!(rx.try_recv().unwrap(), "now");
        let (tx, rx) = mpsc::channel();
        after_answers_last(move || tx.send("now, too").unwrap());
        assert_eq!(rx.try_recv().unwrap(), "now, too");
    }

    #[test]
    fn a_multi_statement_operation_that_fails_midway_leaves_nothing_behind() {
        let conn = connection();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let half_done = |conn: &Tx, now: i64| -> Result<(), StoreError> {
            insert(10)(conn, now)?;
            insert(10)(conn, now) // duplicate: fails after the first insert succeeded
        };
        commit_batch(
            &conn,
            vec![job(
                half_done,
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
            )],
            &stats,
        );
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [false]);
        assert_eq!(count(&conn), 0);
    }

    #[test]
    fn the_queue_depth_keeps_only_what_committed_operations_counted() {
        let conn = connection();
        let stats = StatsCounters::default();
        let depths = queue_depth::Depths::default();
        queue_depth::keep(depths.clone());
        let counted = |id: i64| {
            move |conn: &Tx, now: i64| -> Result<(), StoreError> {
                insert(id)(conn, now)?;
                queue_depth::add("t", 1);
                Ok(())
            }
        };
        // Counts, then fails after writing: the batch is rolled back and
        // replayed with savepoints, and the count is undone with its rows.
        let half_done = |conn: &Tx, now: i64| -> Result<(), StoreError> {
            insert(10)(conn, now)?;
            queue_depth::add("t", 1);
            insert(10)(conn, now)
        };
        let (tx, rx) = mpsc::channel();
        let answer = |tx: &mpsc::Sender<bool>| {
            let tx = tx.clone();
            Box::new(move |r: Result<(), StoreError>| tx.send(r.is_ok()).unwrap())
        };
        let jobs = vec![
            job(counted(1), answer(&tx)),
            job(half_done, answer(&tx)),
            job(counted(2), answer(&tx)),
        ];
        commit_batch(&conn, jobs, &stats);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(count(&conn), 2);
        assert_eq!(depths.get("t"), 2);
        assert_eq!(queue_depth::get("t"), 2);
    }

    type Work = Box<dyn FnMut(&Tx, i64) -> Result<(), StoreError> + Send>;

    /// Commits `works` as one batch; returns whether each succeeded, in
    /// answer order, and how many times they ran in all.
    fn run_batch(conn: &Connection, stats: &StatsCounters, works: Vec<Work>) -> (Vec<bool>, u64) {
        let runs = std::sync::Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let jobs = works
            .into_iter()
            .map(|mut work| {
                let (tx, runs) = (tx.clone(), std::sync::Arc::clone(&runs));
                job(
                    move |conn: &Tx, now| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        work(conn, now)
                    },
                    Box::new(move |r: Result<(), StoreError>| tx.send(r.is_ok()).unwrap())
                        as Done<()>,
                )
            })
            .collect();
        commit_batch(conn, jobs, stats);
        let answers = rx.try_iter().collect();
        (answers, runs.load(Ordering::Relaxed))
    }

    #[test]
    fn an_operation_refused_before_writing_anything_is_not_replayed() {
        let conn = connection();
        let stats = StatsCounters::default();
        let refuse = |_: &Tx, _| Err(StoreError::QuotaExceeded { limit: 1 });
        let (answers, runs) = run_batch(
            &conn,
            &stats,
            vec![Box::new(insert(1)), Box::new(refuse), Box::new(insert(2))],
        );
        assert_eq!(answers, [true, false, true]);
        assert_eq!(runs, 3, "each operation ran once");
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn an_operation_that_fails_after_writing_is_undone_and_the_rest_of_its_batch_commits_once() {
        let conn = connection();
        let stats = StatsCounters::default();
        // Inserts 10, then fails on a duplicate: row 10 must not survive.
        let half_done = |conn: &Tx, now: i64| -> Result<(), StoreError> {
            insert(10)(conn, now)?;
            insert(10)(conn, now)
        };
        let (answers, runs) = run_batch(
            &conn,
            &stats,
            vec![
                Box::new(insert(1)),
                Box::new(half_done),
                Box::new(insert(2)),
            ],
        );
        assert_eq!(answers, [true, false, true]);
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, [1, 2]);
        // 1 and the failing one ran twice (optimistically, then replayed), 2 once.
        assert_eq!(runs, 5);
        assert_eq!(stats.snapshot().transactions, 1);
    }

    #[test]
    fn a_completion_runs_only_after_its_row_is_visible_to_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let reader_path = path.clone();
        let check = Box::new(move |r: Result<(), StoreError>| {
            let other = Connection::open(&reader_path).unwrap();
            tx.send((r.is_ok(), count(&other))).unwrap();
        });
        commit_batch(&conn, vec![job(insert(1), check)], &stats);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [(true, 1)]);
    }

    #[test]
    fn a_panicking_completion_does_not_stop_the_batch() {
        let conn = connection();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let jobs = vec![
            job(insert(1), Box::new(|_| panic!("callback bug"))),
            job(insert(2), Box::new(move |r| tx.send(r.is_ok()).unwrap())),
        ];
        commit_batch(&conn, jobs, &stats);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [true]);
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn a_job_dropped_unrun_answers_writer_gone() {
        let (tx, rx) = mpsc::channel();
        let dropped = job(insert(1), Box::new(move |r| tx.send(r).unwrap()));
        drop(dropped);
        assert!(matches!(rx.try_recv(), Ok(Err(StoreError::WriterGone))));
    }

    #[test]
    fn a_failed_begin_fails_every_job_in_the_batch() {
        let conn = connection();
        // A transaction already open makes BEGIN fail.
        conn.execute_batch("BEGIN").unwrap();
        let stats = StatsCounters::default();
        let (tx, rx) = mpsc::channel();
        let jobs = (1..=3)
            .map(|id| {
                let tx = tx.clone();
                job(
                    insert(id),
                    Box::new(move |r: Result<(), StoreError>| {
                        tx.send(matches!(r, Err(StoreError::Sqlite(_)))).unwrap()
                    }) as Done<()>,
                )
            })
            .collect();
        commit_batch(&conn, jobs, &stats);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [true, true, true]);
        assert_eq!(stats.snapshot().transactions, 0);
    }
}
