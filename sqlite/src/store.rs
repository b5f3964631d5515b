//! [`Store`]: the public handle. It opens and migrates the database, owns
//! the writer thread (see [`crate::writer`]) and a small pool of read-only
//! connections, hands out message ids, and holds every SQL statement the
//! store runs.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use rusqlite::types::{FromSql, ToSql};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::fold::{self, Fold, Link, Order, Role};
use crate::listing;
use crate::queue_depth::{self, Depths};
use crate::queue_index;
use crate::receipt_cache::{self, Target};
use crate::status_effects::{self, left_queue};
use crate::tx::Tx;
use crate::types::{
    Balance, BatchOutcome, ErrorInfo, Idempotency, InboundRecord, MessageFilter, MessageId,
    MessageRecord, MessageStatus, NewInbound, NewMessage, PartRecord, Priority, Pruned,
    QueuedMessage, Receipt, ReceiptMatch, TimedOut, WebhookDelivery, WebhookOutcome,
};
use crate::writer::{self, Done, Job, StatsCounters, WriterStats};
use crate::{schema, StoreError};

mod tenants;
pub use tenants::{DeletedTenant, TenantRow};

/// How long a connection waits for a lock before failing with SQLITE_BUSY.
/// Only another process (a backup, an operator's sqlite3 shell) can hold
/// the write lock against our single writer.
/// The columns [`webhook_delivery`] reads, in its order.
macro_rules! webhook_columns {
    () => {
        "SELECT id, tenant, url, kind, ref_id, status, error_code, error_name, created_at, \
         attempts, last_error FROM webhook_outbox"
    };
}

/// The columns [`inbound_record`] reads, in its order.
macro_rules! inbound_columns {
    () => {
        "SELECT id, channel, source, destination, body, received_at FROM inbound"
    };
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `synchronous` pragma of the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// WAL is fsynced at checkpoints only: commits survive a process crash but
    /// the last ones can be lost on power failure.
    Normal,
    /// Every commit is fsynced: a 202 means the row survives power loss. Group
    /// commit makes this affordable, hence the default.
    Full,
}

/// Tuning for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Durability of each commit. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// Most operations in one transaction (default 512). Bounds how long the
    /// first waiter of a batch waits for the last one; 0 is treated as 1.
    pub max_batch: usize,
    /// Read-only connections in the pool (default 4); 0 is treated as 1.
    pub read_connections: usize,
    /// Recent submits whose receipts are matched in memory (default
    /// 65,536, about 5 MiB of RSS). Older ones still awaiting a receipt are
    /// entered in the SMSC-id index instead (see `receipt_cache`).
    pub receipt_cache: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            synchronous: Synchronous::Full,
            max_batch: 512,
            read_connections: 4,
            receipt_cache: receipt_cache::CAPACITY,
        }
    }
}

/// The message store. Cheap to clone (an `Arc` inside); `Send + Sync`.
///
/// Writes are enqueued for the single writer thread and answered through a
/// [`Done`] callback after commit; reads block the calling thread on a
/// pooled read-only connection. When the last clone is dropped the store is
/// closed (pending writes are committed first).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` once closed. A read lock per write keeps senders from racing
    /// `close`, which takes the write lock once.
    sender: RwLock<Option<Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_thread: ThreadId,
    last_id: Arc<AtomicI64>,
    stats: Arc<StatsCounters>,
    /// Rows deleted by [`Store::prune`] since open, per kind.
    pruned: Arc<Mutex<Pruned>>,
    readers: ReaderPool,
    /// Tenants being (or already) deleted: the writer refuses inserts for
    /// them (see [`Store::delete_tenant`]).
    closed: Arc<RwLock<HashSet<String>>>,
    /// Each tenant's queued messages as of the last commit, kept by the
    /// writer (see `queue_depth`).
    depths: Depths,
}

impl Store {
    /// Opens/creates the file, sets WAL, synchronous, busy_timeout(5s),
    /// foreign_keys, runs migrations, starts the writer thread.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };

        let mut conn = Connection::open(path).map_err(open_error)?;
        configure_writer(&conn, options.synchronous).map_err(open_error)?;
        schema::migrate(&mut conn)?;
        // Ids must keep increasing across restarts even if the clock went back.
        // Nor may a new id fall at or below the listing mark, which would
        // leave it unswept (`listing`): the newest messages may be gone.
        let swept_up_to = listing::up_to(&conn)?;
        let max_id: Option<i64> =
            conn.query_row("SELECT MAX(id) FROM messages", [], |row| row.get(0))?;
        let max_id = max_id.unwrap_or(0).max(swept_up_to);
        // The receipt cache of the last process is gone: index what it held.
        let awaiting = receipt_cache::index_awaiting(&conn)?;
        if awaiting > 0 {
            log::info!(
                "store: {awaiting} submitted messages or parts awaiting a receipt indexed by SMSC id"
            );
        }
        let depths = queue_depth::count(&conn)?;
        let effect_tenants = status_effects::tenants(&conn)?;
        // More statements than we use, so none is ever evicted and re-prepared.
        conn.set_prepared_statement_cache_capacity(64);

        let readers = (0..options.read_connections.max(1))
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_error)?;

        let (sender, receiver) = mpsc::channel::<Job>();
        let stats = Arc::new(StatsCounters::default());
        let thread_stats = Arc::clone(&stats);
        let max_batch = options.max_batch;
        let receipt_capacity = options.receipt_cache;
        let kept_depths = depths.clone();
        let handle = thread::Builder::new()
            .name("smppd-store-writer".into())
            .spawn(move || {
                receipt_cache::set_capacity(receipt_capacity);
                queue_depth::keep(kept_depths);
                queue_index::keep(swept_up_to);
                crate::parked::keep(&conn);
                status_effects::keep(effect_tenants);
                writer::run(conn, receiver, max_batch, &thread_stats)
            })
            .map_err(StoreError::Spawn)?;

        Ok(Store {
            inner: Arc::new(Inner {
                sender: RwLock::new(Some(sender)),
                writer_thread: handle.thread().id(),
                writer: Mutex::new(Some(handle)),
                last_id: Arc::new(AtomicI64::new(max_id)),
                stats,
                pruned: Arc::default(),
                readers: ReaderPool::new(readers),
                closed: Arc::default(),
                depths,
            }),
        })
    }

    /// Next id: `max(now_ms << 16, last + 1)`, seeded at open from `MAX(id)`
    /// so ids stay increasing across restarts even if the clock went back.
    /// Only the writer thread calls it (inside the insert), which is what
    /// makes ids increase in commit order.
    fn next_message_id(last_id: &AtomicI64) -> MessageId {
        let now = writer::now_ms() << 16;
        let next = |last: i64| now.max(last.saturating_add(1));
        let previous = last_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(next(last))
            })
            .unwrap_or_else(|last| last);
        MessageId(next(previous))
    }

    /// What the writer has done so far: how many transactions for how many
    /// operations. Lets tests (and metrics) check that group commit happens.
    pub fn stats(&self) -> WriterStats {
        self.inner.stats.snapshot()
    }

    // ---- writes: all go through the single writer thread; `done` is called after COMMIT ----

    /// Inserts with status queued, attempts 0, created_at = updated_at = now,
    /// and answers with the id it got.
    ///
    /// Ids are assigned on the writer thread as the insert runs, so they
    /// increase in commit order and completions arrive in id order. A reader
    /// that has seen id `n` committed has therefore seen every id below `n`:
    /// the tenant supervisors rely on this to page through the queue with a
    /// cursor without missing a message.
    pub fn insert_message(&self, message: NewMessage, done: Done<MessageId>) {
        let last_id = Arc::clone(&self.inner.last_id);
        let closed = Arc::clone(&self.inner.closed);
        self.submit(writer::job(
            move |conn, now| {
                Self::closed_check(&closed, &message.tenant)?;
                let id = Self::next_message_id(&last_id);
                insert(conn, now, id, &message).map(|()| id)
            },
            done,
        ));
    }

    /// Creates the tenant's credit account with `available` if it has none
    /// (a config seed: an existing balance is never overwritten).
    pub fn ensure_account(&self, tenant: &str, available: i64, done: Done<()>) {
        let tenant = tenant.to_owned();
        self.submit(writer::job(
            move |conn, _| ensure_account_row(conn, &tenant, available),
            done,
        ));
    }

    /// Adds `amount` (micro-units, may be negative) to the tenant's
    /// available credit, creating the account if needed; answers with the
    /// new balance.
    pub fn top_up(&self, tenant: &str, amount: i64, done: Done<Balance>) {
        let tenant = tenant.to_owned();
        self.submit(writer::job(
            move |conn, _| {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO accounts (tenant, available) VALUES (?1, 0)",
                )?
                .execute(params![tenant])?;
                status_effects::may_charge(&tenant);
                conn.prepare_cached(
                    "UPDATE accounts SET available = available + ?2 WHERE tenant = ?1",
                )?
                .execute(params![tenant, amount])?;
                Ok(read_balance(conn, &tenant)?.unwrap_or_default())
            },
            done,
        ));
    }

    /// Inserts several messages in one transaction, each in its own
    /// savepoint (so one refused by quota or credit does not stop the
    /// others); ids are assigned in order.
    ///
    /// With `idempotency`, the key is looked up first *inside the writer*:
    /// a key already stored answers `Replayed` (same request hash) or
    /// `KeyReused` (different) and inserts nothing; otherwise the rendered
    /// answer is stored in the same transaction as the messages.
    pub fn insert_batch(
        &self,
        messages: Vec<NewMessage>,
        idempotency: Option<Idempotency>,
        done: Done<BatchOutcome>,
    ) {
        let last_id = Arc::clone(&self.inner.last_id);
        let closed = Arc::clone(&self.inner.closed);
        self.submit(writer::job(
            move |conn, now| {
                if let Some(first) = messages.first() {
                    Self::closed_check(&closed, &first.tenant)?;
                }
                if let Some(key) = &idempotency {
                    let seen: Option<(String, u16, String)> = conn
                        .prepare_cached(
                            "SELECT request_hash, status, body FROM idempotency_keys \
                             WHERE tenant = ?1 AND key = ?2",
                        )?
                        .query_row(params![key.tenant, key.key], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })
                        .optional()?;
                    if let Some((hash, status, body)) = seen {
                        return Ok(if hash == key.request_hash {
                            BatchOutcome::Replayed { status, body }
                        } else {
                            BatchOutcome::KeyReused
                        });
                    }
                }
                let mut results = Vec::with_capacity(messages.len());
                for message in &messages {
                    conn.execute_batch("SAVEPOINT batch_item")?;
                    let mark = writer::Mark::take();
                    let id = Self::next_message_id(&last_id);
                    match insert(conn, now, id, message) {
                        Ok(()) => {
                            conn.execute_batch("RELEASE batch_item")?;
                            results.push(Ok(id));
                        }
                        Err(e) => {
                            conn.execute_batch("ROLLBACK TO batch_item; RELEASE batch_item")?;
                            mark.undo();
                            results.push(Err(e));
                        }
                    }
                }
                if let Some(key) = &idempotency {
                    let (status, body) = (key.render)(&results);
                    conn.prepare_cached(
                        "INSERT INTO idempotency_keys \
                         (tenant, key, request_hash, status, body, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        key.tenant,
                        key.key,
                        key.request_hash,
                        status,
                        body,
                        now
                    ])?;
                }
                Ok(BatchOutcome::Fresh(results))
            },
            done,
        ));
    }

    /// Forgets idempotency keys stored before `before_ms` (unix ms);
    /// answers with how many.
    pub fn purge_idempotency_keys(&self, before_ms: i64, done: Done<usize>) {
        self.submit(writer::job(
            move |conn, _| {
                Ok(conn
                    .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                    .execute(params![before_ms])?)
            },
            done,
        ));
    }

    /// Deletes up to `limit` rows of each kind older than `before_ms` (unix
    /// ms): messages created before it that are final, with their parts;
    /// inbound messages received before it; webhook deliveries created
    /// before it that are delivered or dead (pending ones stay); parked
    /// receipts received before it. Messages still queued or submitted are
    /// never deleted, whatever their age. Each kind is found by a range of
    /// its time-ordered ids, so a call reads about what it deletes; call
    /// again while [`Pruned::reached`] says a kind was cut off.
    pub fn prune(&self, before_ms: i64, limit: usize, done: Done<Pruned>) {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let totals = Arc::clone(&self.inner.pruned);
        self.submit(writer::job(
            move |conn, _| prune(conn, before_ms, limit),
            // Counted once committed.
            Box::new(move |result: Result<Pruned, StoreError>| {
                if let Ok(pruned) = &result {
                    totals.lock().unwrap_or_else(|e| e.into_inner()).add(pruned);
                }
                done(result)
            }),
        ));
    }

    /// Gives up waiting for the receipts of up to `limit` messages still
    /// `submitted` that began waiting before `before_ms` (unix ms): at
    /// their submit, or at the end of their validity or at their `send_at`
    /// if later, since the SMSC may try to deliver them until the one and
    /// does not before the other. Longest waiting
    /// first, each becomes `unknown` with the error
    /// [`ErrorInfo::receipt_timeout`], which reaches its webhook like any
    /// final status. The charge stays captured (the SMSC took the
    /// message). A long message's parts still awaiting theirs become
    /// `unknown` too.
    ///
    /// A receipt that comes later still finds the message, also after a
    /// restart, and its outcome replaces `unknown` (a non-final one does
    /// not). Answers with the messages it changed; call again while it
    /// answers `limit` of them.
    pub fn time_out_receipts(&self, before_ms: i64, limit: usize, done: Done<Vec<TimedOut>>) {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.submit(writer::job(
            move |conn, now| time_out_receipts(conn, now, before_ms, limit),
            done,
        ));
    }

    /// Rows deleted by [`Store::prune`] since the store was opened.
    pub fn pruned(&self) -> Pruned {
        *self.inner.pruned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores one part of a concatenated inbound message (identified by
    /// sender, recipient, reference and total). When it completes the
    /// message, the parts are joined in order into one inbound message and
    /// removed, in the same transaction; answers with that message's id and
    /// text, or `None` while parts are missing. A part received twice (an
    /// SMSC redelivering) counts once.
    pub fn insert_inbound_part(
        &self,
        part: NewInbound,
        reference: u16,
        total: u8,
        sequence: u8,
        done: Done<Option<(i64, String)>>,
    ) {
        let closed = Arc::clone(&self.inner.closed);
        self.submit(writer::job(
            move |conn, now| {
                Self::closed_check(&closed, &part.tenant)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO inbound_parts (tenant, channel, source, destination, \
                     reference, total, sequence, body, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    part.tenant,
                    part.channel,
                    part.source,
                    part.destination,
                    reference,
                    total,
                    sequence,
                    part.text,
                    now
                ])?;
                let key = params![part.tenant, part.source, part.destination, reference, total];
                let texts: Vec<String> = conn
                    .prepare_cached(
                        "SELECT body FROM inbound_parts WHERE tenant = ?1 AND source = ?2 \
                         AND destination = ?3 AND reference = ?4 AND total = ?5 ORDER BY sequence",
                    )?
                    .query_map(key, |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                if texts.len() < usize::from(total) {
                    return Ok(None);
                }
                conn.prepare_cached(
                    "DELETE FROM inbound_parts WHERE tenant = ?1 AND source = ?2 \
                     AND destination = ?3 AND reference = ?4 AND total = ?5",
                )?
                .execute(key)?;
                let joined = NewInbound {
                    text: texts.concat(),
                    ..part.clone()
                };
                let id = insert_inbound_row(conn, &joined, now)?;
                Ok(Some((id, joined.text)))
            },
            done,
        ));
    }

    /// Gives up waiting for the missing parts of every concatenated MO
    /// message whose last part arrived before `quiet_since_ms`: each part
    /// that did arrive becomes an inbound message of its own (in sequence
    /// order, with its own text and arrival time), so nothing received is
    /// lost. Returns the new messages with their tenants.
    pub fn flush_stale_inbound_parts(
        &self,
        quiet_since_ms: i64,
        done: Done<Vec<(String, InboundRecord)>>,
    ) {
        self.submit(writer::job(
            move |conn, _now| {
                type SetKey = (String, String, String, i64, i64);
                let stale: Vec<SetKey> = conn
                    .prepare_cached(
                        "SELECT tenant, source, destination, reference, total FROM inbound_parts \
                         GROUP BY tenant, source, destination, reference, total \
                         HAVING MAX(received_at) < ?1",
                    )?
                    .query_map(params![quiet_since_ms], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::new();
                for (tenant, source, destination, reference, total) in stale {
                    let key = params![tenant, source, destination, reference, total];
                    let parts: Vec<(String, String, i64)> = conn
                        .prepare_cached(
                            "SELECT channel, body, received_at FROM inbound_parts \
                             WHERE tenant = ?1 AND source = ?2 AND destination = ?3 \
                             AND reference = ?4 AND total = ?5 ORDER BY sequence",
                        )?
                        .query_map(key, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                        .collect::<Result<_, _>>()?;
                    for (channel, text, received_at_ms) in parts {
                        let alone = NewInbound {
                            tenant: tenant.clone(),
                            channel,
                            source: source.clone(),
                            destination: destination.clone(),
                            text,
                        };
                        let record = InboundRecord {
                            id: insert_inbound_row(conn, &alone, received_at_ms)?,
                            channel: alone.channel,
                            source: alone.source,
                            destination: alone.destination,
                            text: alone.text,
                            received_at_ms,
                        };
                        out.push((tenant.clone(), record));
                    }
                    conn.prepare_cached(
                        "DELETE FROM inbound_parts WHERE tenant = ?1 AND source = ?2 \
                         AND destination = ?3 AND reference = ?4 AND total = ?5",
                    )?
                    .execute(key)?;
                }
                Ok(out)
            },
            done,
        ));
    }

    /// Records the config file's key for a tenant. A key known already
    /// changes nothing (so a key revoked by a rotation stays revoked); a
    /// new one means the operator changed the config, and every other key
    /// of the tenant is revoked at once. Returns how many keys it revoked.
    pub fn seed_api_key(&self, tenant: &str, hash: [u8; 32], done: Done<usize>) {
        let tenant = tenant.to_owned();
        self.submit(writer::job(
            move |conn, now| {
                if key_issued(conn, &hash)? {
                    return Ok(0);
                }
                add_api_key(conn, &tenant, &hash, now, now)
            },
            done,
        ));
    }

    /// Adds a new key hash for the tenant and makes every other key of it
    /// expire at `old_expire_at_ms` (now for an immediate revocation), in
    /// one transaction.
    pub fn rotate_api_key(
        &self,
        tenant: &str,
        new_hash: [u8; 32],
        old_expire_at_ms: i64,
        done: Done<()>,
    ) {
        let tenant = tenant.to_owned();
        self.submit(writer::job(
            move |conn, now| add_api_key(conn, &tenant, &new_hash, old_expire_at_ms, now).map(drop),
            done,
        ));
    }

    /// Every key hash not revoked at `now_ms`: (hash, tenant, expiry).
    pub fn api_keys(&self, now_ms: i64) -> Result<Vec<ApiKeyRow>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, tenant, expires_at FROM api_keys WHERE expires_at IS NULL OR expires_at > ?1",
        )?;
        let mut rows = stmt.query(params![now_ms])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let hash: Vec<u8> = column(row, 0, "hash")?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("an api_keys hash is not 32 bytes".into()))?;
            out.push((
                hash,
                column(row, 1, "tenant")?,
                column(row, 2, "expires_at")?,
            ));
        }
        Ok(out)
    }

    /// Sets (or with `None` removes) the tenant's webhook URL.
    pub fn set_tenant_webhook(&self, tenant: &str, url: Option<&str>, done: Done<()>) {
        let (tenant, url) = (tenant.to_owned(), url.map(str::to_owned));
        self.submit(writer::job(
            move |conn, _| set_webhook_row(conn, &tenant, url.as_deref()),
            done,
        ));
    }

    /// Claims up to `limit` due webhook deliveries: they are leased until
    /// `now + lease_ms` (pushed out of the due range) in the same
    /// transaction, so a poll that runs while they are being posted does
    /// not take them again; a dispatcher that dies mid-post simply lets the
    /// lease run out and they are retried.
    pub fn claim_webhooks(&self, lease_ms: i64, limit: usize, done: Done<Vec<WebhookDelivery>>) {
        self.submit(writer::job(
            move |conn, now| {
                let mut stmt = conn.prepare_cached(concat!(
                    webhook_columns!(),
                    " WHERE state = 'pending' AND next_attempt_at <= ?1 \
                         ORDER BY next_attempt_at LIMIT ?2"
                ))?;
                let mut rows =
                    stmt.query(params![now, i64::try_from(limit).unwrap_or(i64::MAX)])?;
                let mut claimed = Vec::new();
                while let Some(row) = rows.next()? {
                    claimed.push(webhook_delivery(row)?);
                }
                drop(rows);
                let mut lease = conn.prepare_cached(
                    "UPDATE webhook_outbox SET next_attempt_at = ?2 WHERE id = ?1",
                )?;
                for d in &claimed {
                    lease.execute(params![d.id, now + lease_ms])?;
                }
                Ok(claimed)
            },
            done,
        ));
    }

    /// Records how a webhook attempt ended.
    pub fn webhook_result(&self, id: i64, outcome: WebhookOutcome, done: Done<()>) {
        self.submit(writer::job(
            move |conn, now| {
                let (state, next, error, finished) = match &outcome {
                    WebhookOutcome::Delivered => ("delivered", now, None, Some(now)),
                    WebhookOutcome::Retry { at_ms, error } => {
                        ("pending", *at_ms, Some(error), None)
                    }
                    WebhookOutcome::Dead { error } => ("dead", now, Some(error), Some(now)),
                };
                conn.prepare_cached(
                    "UPDATE webhook_outbox SET state = ?2, next_attempt_at = ?3, \
                     last_error = COALESCE(?4, last_error), done_at = ?5, attempts = attempts + 1 \
                     WHERE id = ?1",
                )?
                .execute(params![id, state, next, error, finished])?;
                Ok(())
            },
            done,
        ));
    }

    /// Puts a dead letter of the tenant back in the queue for an immediate
    /// attempt; false if it is not one of its dead letters.
    pub fn replay_webhook(&self, tenant: &str, id: i64, done: Done<bool>) {
        let tenant = tenant.to_owned();
        self.submit(writer::job(
            move |conn, now| {
                Ok(conn
                    .prepare_cached(
                        "UPDATE webhook_outbox SET state = 'pending', attempts = 0, \
                         next_attempt_at = ?3, done_at = NULL \
                         WHERE id = ?1 AND tenant = ?2 AND state = 'dead'",
                    )?
                    .execute(params![id, tenant, now])?
                    == 1)
            },
            done,
        ));
    }

    /// Stores a mobile-originated message; answers with its row id.
    pub fn insert_inbound(&self, message: NewInbound, done: Done<i64>) {
        let closed = Arc::clone(&self.inner.closed);
        self.submit(writer::job(
            move |conn, now| {
                Self::closed_check(&closed, &message.tenant)?;
                insert_inbound_row(conn, &message, now)
            },
            done,
        ));
    }

    /// status = submitted, channel, smsc_message_id, submitted_at = now,
    /// attempts += 1, error = NULL. Only applies if the message is `tenant`'s
    /// and currently queued (a message already terminal is left alone).
    /// Then, in the same transaction, looks in pending_receipts for
    /// (tenant, channel, smsc_message_id); if found, applies it (status, error,
    /// done_at) and deletes it. Returns `Some(status applied)` in that case,
    /// else `None`.
    pub fn mark_submitted(
        &self,
        tenant: impl Into<Arc<str>>,
        id: MessageId,
        channel: impl Into<Arc<str>>,
        smsc_message_id: &str,
        done: Done<Option<MessageStatus>>,
    ) {
        self.mark_submitted_parts(tenant, id, channel, vec![smsc_message_id.to_owned()], done);
    }

    /// [`Store::mark_submitted`] for a message sent as several parts: one
    /// SMSC id per part, in order. The parts are recorded in
    /// `message_parts` (replacing those of an earlier attempt) and the
    /// message's own `smsc_message_id` stays empty, so each receipt matches
    /// its part; the message becomes final when every part is.
    ///
    /// `tenant` and `channel` are shared (`Arc<str>`), not copied: a
    /// connection passes its own, so a submit costs no string copies.
    pub fn mark_submitted_parts(
        &self,
        tenant: impl Into<Arc<str>>,
        id: MessageId,
        channel: impl Into<Arc<str>>,
        smsc_message_ids: Vec<String>,
        done: Done<Option<MessageStatus>>,
    ) {
        let (tenant, channel): (Arc<str>, Arc<str>) = (tenant.into(), channel.into());
        let link = match smsc_message_ids.as_slice() {
            [single] => Some(Link::new(
                Role::Submit,
                fold::Key {
                    tenant: Arc::clone(&tenant),
                    channel: Arc::clone(&channel),
                    smsc_message_id: single.as_str().into(),
                },
            )),
            _ => None,
        };
        let closed = Arc::clone(&self.inner.closed);
        let work = move |conn: &Tx<'_>, now, fold: Option<&Fold>| {
            // Its receipt would be refused: write only the submit.
            let fold = fold.filter(|_| Self::closed_check(&closed, &tenant).is_ok());
            mark_submitted(conn, now, &tenant, id, &channel, &smsc_message_ids, fold)
        };
        self.submit(writer::linked_job(link, work, done));
    }

    /// Updates the message with (tenant, channel, smsc_message_id) whose
    /// status is submitted (or already terminal from an earlier receipt: a
    /// repeated DLR is idempotent, last one wins; a queued one is never
    /// touched) → status, error, done_at = now if terminal. If none matches,
    /// INSERT OR REPLACE into pending_receipts and return
    /// [`ReceiptMatch::Parked`].
    ///
    /// If several messages share the SMSC id (SMSCs recycle ids), the newest
    /// wins. A non-terminal receipt (e.g. ENROUTE) never overrides a terminal
    /// status, and a receipt saying `Queued` is recorded as `Submitted`: a
    /// receipt proves the SMSC has the message, so it must not be resent.
    pub fn apply_receipt(&self, receipt: Receipt, done: Done<ReceiptMatch>) {
        let closed = Arc::clone(&self.inner.closed);
        let link = Link::new(
            Role::Receipt {
                status: receipt_status(receipt.status),
                error: receipt.error.clone(),
            },
            fold::Key {
                tenant: receipt.tenant.clone(),
                channel: receipt.channel.clone(),
                smsc_message_id: receipt.smsc_message_id.clone(),
            },
        );
        self.submit(writer::linked_job(
            Some(link),
            move |conn, now, fold: Option<&Fold>| {
                Self::closed_check(&closed, &receipt.tenant)?;
                // Its submit, earlier in this batch, may have written it.
                if let Some(answer) = fold.and_then(Fold::answered) {
                    return Ok(answer);
                }
                let hand_over = fold.filter(|fold| fold.order == Order::ReceiptFirst);
                apply_receipt(conn, now, &receipt, hand_over)
            },
            done,
        ));
    }

    /// A failed attempt that will be retried: status stays/returns to queued,
    /// attempts += 1, error recorded. Only applies to a queued or submitted
    /// message; a terminal one is left alone.
    pub fn mark_retry(&self, id: MessageId, error: Option<ErrorInfo>, done: Done<()>) {
        self.submit(writer::job(
            move |conn, now| mark_retry(conn, now, id, &error),
            done,
        ));
    }

    /// Terminal outcome decided by us (failed on a permanent error, expired,
    /// ...): status, error, done_at = now, attempts += 1 if `count_attempt`.
    /// Only applies to a queued or submitted message: an outcome already
    /// reported by a receipt is not overwritten by our own guess.
    pub fn mark_final(
        &self,
        id: MessageId,
        status: MessageStatus,
        error: Option<ErrorInfo>,
        count_attempt: bool,
        done: Done<()>,
    ) {
        self.submit(writer::job(
            move |conn, now| mark_final(conn, now, id, status, &error, count_attempt),
            done,
        ));
    }

    /// Blocks until every write enqueued before this call is committed and
    /// answered: its completion has run, and so has anything it handed on
    /// through [`writer::after_answers`].
    ///
    /// Fails with [`StoreError::WriterGone`] after `close`, or when called
    /// from a completion callback (it would wait for its own thread).
    pub fn flush(&self) -> Result<(), StoreError> {
        if thread::current().id() == self.inner.writer_thread {
            log::error!("Store::flush called from a completion callback; refusing to deadlock");
            return Err(StoreError::WriterGone);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(writer::job(
            |_, _| Ok(()),
            Box::new(move |result| {
                // After the follow-ups of the completions before it. The
                // receiver only goes away if `flush` itself is gone.
                writer::after_answers(move || {
                    let _ = tx.send(result);
                });
            }),
        ));
        rx.recv().unwrap_or(Err(StoreError::WriterGone))
    }

    /// Drains pending writes, commits, stops the writer thread and joins it.
    /// Idempotent; later writes get `Err(WriterGone)`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Writes enqueued and not yet committed and answered. Producers that
    /// are not bounded by a waiting caller (the SMPP side) hold back while
    /// this is high, so a writer that falls behind cannot make the queue —
    /// and memory — grow without bound.
    pub fn pending_writes(&self) -> u64 {
        self.inner.stats.pending.load(Ordering::Relaxed)
    }

    pub(crate) fn submit(&self, job: Job) {
        self.inner.stats.pending.fetch_add(1, Ordering::Relaxed);
        // Whatever is not sent is dropped *after* the lock is released: dropping
        // a job calls its completion (with WriterGone), which may call `close`.
        let unsent = {
            let sender = self
                .inner
                .sender
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match sender.as_ref() {
                Some(sender) => sender.send(job).err().map(|e| e.0),
                None => Some(job),
            }
        };
        if unsent.is_some() {
            self.inner.stats.pending.fetch_sub(1, Ordering::Relaxed);
        }
        drop(unsent);
    }

    // ---- reads: on their own connections (WAL lets them run beside the writer) ----

    /// Only returns the message if it belongs to `tenant` (otherwise `None`,
    /// same as missing).
    pub fn get_message(
        &self,
        tenant: &str,
        id: MessageId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(SELECT_MESSAGE)?;
        let mut rows = stmt.query(params![id.as_i64(), tenant])?;
        match rows.next()? {
            Some(row) => Ok(Some(message_record(row)?)),
            None => Ok(None),
        }
    }

    /// A page of the tenant's messages, newest first. Ids are time-ordered
    /// (`created_at << 16`), so the time bounds are id bounds; `before`
    /// continues after the previous page, stable however many messages
    /// arrive meanwhile. The newest messages are read by rowid, the rest
    /// through `message_list` (see `listing`), in one read transaction.
    pub fn list_messages(
        &self,
        tenant: &str,
        filter: &MessageFilter,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let low = filter
            .since_ms
            .map_or(i64::MIN, |ms| ms.saturating_mul(1 << 16));
        let mut high = filter
            .until_ms
            .map_or(i64::MAX, |ms| ms.saturating_mul(1 << 16));
        if let Some(before) = filter.before {
            high = high.min(before.as_i64());
        }
        let conn = self.inner.readers.get();
        let read = conn.unchecked_transaction()?;
        let up_to = listing::up_to(&read)?;
        let status = filter.status.map(MessageStatus::as_str);
        let above_mark = up_to.saturating_add(1);
        let (newest_low, listed_high) = (low.max(above_mark), high.min(above_mark));
        read_in_parts(
            &read,
            [
                (SELECT_NEWEST_PAGE, [&tenant, &newest_low, &high, &status]),
                (SELECT_LISTED_PAGE, [&tenant, &low, &listed_high, &status]),
            ],
            limit,
            message_record,
        )
    }

    /// A page of the tenant's inbound (MO) messages, newest first, below
    /// `before` (a row id) when given.
    pub fn list_inbound(
        &self,
        tenant: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<InboundRecord>, StoreError> {
        self.page(
            concat!(
                inbound_columns!(),
                " WHERE tenant = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ),
            (tenant, before, limit),
            inbound_record,
        )
    }

    /// Runs a page query whose parameters are (tenant, below this id,
    /// limit), mapping each row.
    fn page<T>(
        &self,
        sql: &str,
        (tenant, before, limit): (&str, Option<i64>, usize),
        map: fn(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![
            tenant,
            before.unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }

    /// Whether any webhook delivery is due at `now_ms` (a read: an idle
    /// dispatcher polls this instead of opening write transactions).
    pub fn webhooks_due(&self, now_ms: i64) -> Result<bool, StoreError> {
        let conn = self.inner.readers.get();
        let due = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM webhook_outbox \
                 WHERE state = 'pending' AND next_attempt_at <= ?1)",
            )?
            .query_row(params![now_ms], |row| row.get(0))?;
        Ok(due)
    }

    /// The tenant's dead webhook deliveries, newest first, below `before`.
    pub fn dead_webhooks(
        &self,
        tenant: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        self.page(
            concat!(
                webhook_columns!(),
                " WHERE tenant = ?1 AND state = 'dead' AND id < ?2 ORDER BY id DESC LIMIT ?3"
            ),
            (tenant, before, limit),
            webhook_delivery,
        )
    }

    /// One inbound message of the tenant.
    pub fn get_inbound(&self, tenant: &str, id: i64) -> Result<Option<InboundRecord>, StoreError> {
        let conn = self.inner.readers.get();
        let found = conn
            .prepare_cached(concat!(
                inbound_columns!(),
                " WHERE id = ?1 AND tenant = ?2"
            ))?
            .query_row(params![id, tenant], |row| Ok(inbound_record(row)))
            .optional()?
            .transpose()?;
        Ok(found)
    }

    /// The parts of one of the tenant's messages (empty for a one-part
    /// message).
    pub fn message_parts(
        &self,
        tenant: &str,
        id: MessageId,
    ) -> Result<Vec<PartRecord>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(
            "SELECT part, smsc_message_id, status, error_code, error_name FROM message_parts \
             WHERE message_id = ?1 AND tenant = ?2 ORDER BY part",
        )?;
        let mut rows = stmt.query(params![id.as_i64(), tenant])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(PartRecord {
                part: column(row, 0, "part")?,
                smsc_message_id: column(row, 1, "smsc_message_id")?,
                status: parse_status(&column::<String>(row, 2, "status")?)?,
                error: error_info(column(row, 3, "error_code")?, column(row, 4, "error_name")?),
            });
        }
        Ok(out)
    }

    /// The tenant's credit, `None` if it has no account.
    pub fn balance(&self, tenant: &str) -> Result<Option<Balance>, StoreError> {
        read_balance(&self.inner.readers.get(), tenant)
    }

    /// How many messages the tenant has queued (accepted, not yet
    /// submitted or final) as of the last commit. Kept in memory by the
    /// writer, so this reads no database.
    pub fn queued_count(&self, tenant: &str) -> u64 {
        self.inner.depths.get(tenant)
    }

    /// The tenant's queued messages of one priority lane with id > `after`
    /// (or from the start), oldest first, at most `limit`: those the
    /// listing sweep has passed through `message_queue`, then the newest
    /// (see `queue_index`), in one read transaction.
    pub fn queued_messages(
        &self,
        tenant: &str,
        priority: Priority,
        after: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let after = after.map_or(i64::MIN, MessageId::as_i64);
        let conn = self.inner.readers.get();
        let read = conn.unchecked_transaction()?;
        let up_to = listing::up_to(&read)?;
        let lane = priority.as_i64();
        let params: [&dyn ToSql; 4] = [&up_to, &tenant, &lane, &after];
        read_in_parts(
            &read,
            [
                (queue_index::SELECT_SWEPT, params),
                (queue_index::SELECT_NEWEST, params),
            ],
            limit,
            |row| {
                Ok(QueuedMessage {
                    id: MessageId(column(row, 0, "id")?),
                    source: column(row, 1, "source")?,
                    destination: column(row, 2, "destination")?,
                    text: column(row, 3, "body")?,
                    attempts: column(row, 4, "attempts")?,
                    priority,
                    validity_until_ms: column(row, 5, "validity_until")?,
                    parts: column(row, 6, "parts")?,
                    data_coding: column(row, 7, "data_coding")?,
                    send_at_ms: column(row, 8, "send_at")?,
                })
            },
        )
    }

    /// Count of a tenant's messages per status, for tests. Statuses with
    /// no messages are absent. Reads every message: there is deliberately
    /// no index by tenant on `messages` (see `listing`), nor by status, as
    /// it would be rewritten by every status change.
    pub fn count_by_status(&self, tenant: &str) -> Result<HashMap<MessageStatus, u64>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(
            "SELECT status, COUNT(*) FROM messages WHERE tenant = ?1 GROUP BY status",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        let mut counts = HashMap::new();
        while let Some(row) = rows.next()? {
            let status = parse_status(&column::<String>(row, 0, "status")?)?;
            let count: i64 = column(row, 1, "count")?;
            let count = u64::try_from(count)
                .map_err(|_| StoreError::Corrupt(format!("negative count {count}")))?;
            counts.insert(status, count);
        }
        Ok(counts)
    }

    /// Tenants that have queued messages as of the last commit, sorted:
    /// the writer's count (see [`Store::queued_count`]), no database read.
    pub fn tenants_with_queued(&self) -> Vec<String> {
        self.inner.depths.tenants()
    }
}

impl Inner {
    fn close(&self) {
        // Dropping the only sender lets the writer drain the channel, commit,
        // and leave its loop.
        drop(
            self.sender
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
        if thread::current().id() == self.writer_thread {
            // Called from a completion: the writer stops by itself once this
            // batch is done; joining ourselves would deadlock.
            return;
        }
        // Joined while holding the lock, so a concurrent `close` also returns
        // only once the writer is gone.
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = writer.take() {
            if handle.join().is_err() {
                log::error!("the store writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

// ---- connections ----

fn configure_writer(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer nor it them, and a commit is one
    // append instead of a rollback-journal dance.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("store: SQLite refused WAL mode (got {mode}); reads will contend with writes");
    }
    let synchronous = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    stable_plans(conn)?;
    Ok(())
}

/// Query-planner stability guarantee: plans never depend on bound values.
/// Without it SQLite marks statements whose plan *could* improve for a
/// given value (LIMIT ?, a partial index implied by `col = ?`, LIKE ?) and
/// re-prepares them — parser and planner included — whenever such a value
/// changes, which the profiler showed as about 8% of the engine's CPU on
/// the submit and receipt path. Every query here has one right plan
/// whatever the values are.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    // Read-only at the SQLite level: a bug in a read path cannot write.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    stable_plans(&conn)?;
    Ok(conn)
}

/// A fixed set of read-only connections; a reader waits when all are busy.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl ReaderPool {
    fn new(connections: Vec<Connection>) -> Self {
        ReaderPool {
            idle: Mutex::new(connections),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self) -> PooledReader<'_> {
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return PooledReader {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// A borrowed reader; goes back to the pool on drop (even on panic).
struct PooledReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only `Drop` takes it out.
        self.conn
            .as_ref()
            .expect("pooled connection present until drop")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().push(conn);
            self.pool.returned.notify_one();
        }
    }
}

// ---- SQL: reads ----

/// Every column [`message_record`] reads, in its order.
macro_rules! message_columns {
    () => {
        "SELECT id, tenant, source, destination, body, status, channel, \
         smsc_message_id, attempts, error_code, error_name, created_at, submitted_at, done_at, \
         updated_at, priority, validity_until, parts, charge, charge_state, client_ref, \
         callback_url, data_coding, send_at FROM messages"
    };
}
const SELECT_MESSAGE: &str = concat!(message_columns!(), " WHERE id = ?1 AND tenant = ?2");
/// A page of the tenant's messages above the `message_list` mark (`?2`
/// is past it): a scan of the newest rowids.
const SELECT_NEWEST_PAGE: &str = concat!(
    message_columns!(),
    " WHERE id >= ?2 AND id < ?3 AND tenant = ?1 AND (?4 IS NULL OR status = ?4) \
     ORDER BY id DESC LIMIT ?5"
);
/// A page of the tenant's messages at or below the mark (`?3` is at most
/// one past it), through `message_list`.
const SELECT_LISTED_PAGE: &str = "SELECT m.id, m.tenant, m.source, m.destination, m.body, \
     m.status, m.channel, m.smsc_message_id, m.attempts, m.error_code, m.error_name, \
     m.created_at, m.submitted_at, m.done_at, m.updated_at, m.priority, m.validity_until, \
     m.parts, m.charge, m.charge_state, m.client_ref, m.callback_url, m.data_coding, m.send_at \
     FROM message_list l JOIN messages m ON m.id = l.id \
     WHERE l.tenant = ?1 AND l.id >= ?2 AND l.id < ?3 AND (?4 IS NULL OR m.status = ?4) \
     ORDER BY l.id DESC LIMIT ?5";

/// The rows of each query in turn, until there are `limit`: each query
/// gets its four parameters and, as `?5`, how many rows are still wanted.
/// For reads split at the listing mark (see `listing`, `queue_index`), in
/// the caller's read transaction, so both parts see the same mark.
fn read_in_parts<T>(
    read: &Connection,
    parts: [(&str, [&dyn ToSql; 4]); 2],
    limit: usize,
    row: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for (sql, [p1, p2, p3, p4]) in parts {
        let wanted = limit.saturating_sub(out.len());
        if wanted == 0 {
            break;
        }
        let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
        let mut stmt = read.prepare_cached(sql)?;
        let mut rows = stmt.query(params![p1, p2, p3, p4, wanted])?;
        while let Some(found) = rows.next()? {
            out.push(row(found)?);
        }
    }
    Ok(out)
}

/// Reads a column, reporting a value of the wrong type or range as
/// [`StoreError::Corrupt`] rather than panicking.
fn column<T: FromSql>(row: &Row<'_>, index: usize, name: &str) -> Result<T, StoreError> {
    row.get(index).map_err(|e| match e {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            StoreError::Corrupt(format!("column {name}: {e}"))
        }
        other => StoreError::Sqlite(other),
    })
}

fn parse_status(text: &str) -> Result<MessageStatus, StoreError> {
    MessageStatus::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {text:?}")))
}

fn error_info(code: Option<u32>, name: Option<String>) -> Option<ErrorInfo> {
    code.map(|code| ErrorInfo {
        code,
        name: name.unwrap_or_default(),
    })
}

fn message_record(row: &Row<'_>) -> Result<MessageRecord, StoreError> {
    let id = MessageId(column(row, 0, "id")?);
    let status: String = column(row, 5, "status")?;
    Ok(MessageRecord {
        id,
        tenant: column(row, 1, "tenant")?,
        source: column(row, 2, "source")?,
        destination: column(row, 3, "destination")?,
        text: column(row, 4, "body")?,
        status: parse_status(&status)
            .map_err(|e| StoreError::Corrupt(format!("message {id}: {e}")))?,
        channel: column(row, 6, "channel")?,
        smsc_message_id: column(row, 7, "smsc_message_id")?,
        attempts: column(row, 8, "attempts")?,
        error: error_info(
            column(row, 9, "error_code")?,
            column(row, 10, "error_name")?,
        ),
        created_at_ms: column(row, 11, "created_at")?,
        submitted_at_ms: column(row, 12, "submitted_at")?,
        done_at_ms: column(row, 13, "done_at")?,
        updated_at_ms: column(row, 14, "updated_at")?,
        priority: Priority::from_i64(column(row, 15, "priority")?)
            .ok_or_else(|| StoreError::Corrupt(format!("message {id}: unknown priority")))?,
        validity_until_ms: column(row, 16, "validity_until")?,
        parts: column(row, 17, "parts")?,
        charge: column(row, 18, "charge")?,
        charge_state: column(row, 19, "charge_state")?,
        client_ref: column(row, 20, "client_ref")?,
        callback_url: column(row, 21, "callback_url")?,
        data_coding: column(row, 22, "data_coding")?,
        send_at_ms: column(row, 23, "send_at")?,
    })
}

fn webhook_delivery(row: &Row<'_>) -> Result<WebhookDelivery, StoreError> {
    Ok(WebhookDelivery {
        id: column(row, 0, "id")?,
        tenant: column(row, 1, "tenant")?,
        url: column(row, 2, "url")?,
        kind: column(row, 3, "kind")?,
        ref_id: column(row, 4, "ref_id")?,
        status: column(row, 5, "status")?,
        error: error_info(column(row, 6, "error_code")?, column(row, 7, "error_name")?),
        created_at_ms: column(row, 8, "created_at")?,
        attempts: column(row, 9, "attempts")?,
        last_error: column(row, 10, "last_error")?,
    })
}

fn inbound_record(row: &Row<'_>) -> Result<InboundRecord, StoreError> {
    Ok(InboundRecord {
        id: column(row, 0, "id")?,
        channel: column(row, 1, "channel")?,
        source: column(row, 2, "source")?,
        destination: column(row, 3, "destination")?,
        text: column(row, 4, "body")?,
        received_at_ms: column(row, 5, "received_at")?,
    })
}

fn read_balance(conn: &Connection, tenant: &str) -> Result<Option<Balance>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT available, reserved, spent FROM accounts WHERE tenant = ?1")?
        .query_row(params![tenant], |row| {
            Ok(Balance {
                available: row.get(0)?,
                reserved: row.get(1)?,
                spent: row.get(2)?,
            })
        })
        .optional()?)
}

// ---- SQL: writes (run on the writer thread, inside its transaction) ----

/// The message a receipt is for, among those indexed by SMSC id (the
/// ones that left the receipt cache still awaiting theirs).
const FIND_BY_SMSC_ID: &str = "SELECT id, status, submitted_at FROM messages \
     WHERE tenant = ?1 AND channel = ?2 AND smsc_lookup_id = ?3 AND status <> 'queued' \
     ORDER BY id DESC LIMIT 1";

/// The message the receipt cache points to, if it still has that SMSC id.
const FIND_CACHED: &str = "SELECT id, status, submitted_at FROM messages \
     WHERE id = ?4 AND tenant = ?1 AND channel = ?2 AND smsc_message_id = ?3 \
     AND status <> 'queued'";

/// The part of a long message a receipt is for, among those indexed by
/// SMSC id.
const FIND_PART_BY_SMSC_ID: &str =
    "SELECT p.message_id, p.part, p.status, m.submitted_at FROM message_parts p \
     JOIN messages m ON m.id = p.message_id \
     WHERE p.tenant = ?1 AND p.channel = ?2 AND p.smsc_lookup_id = ?3 \
     ORDER BY p.message_id DESC LIMIT 1";

/// The part the receipt cache points to, if it still has that SMSC id.
const FIND_CACHED_PART: &str =
    "SELECT p.message_id, p.part, p.status, m.submitted_at FROM message_parts p \
     JOIN messages m ON m.id = p.message_id \
     WHERE p.message_id = ?4 AND p.part = ?5 AND p.tenant = ?1 AND p.channel = ?2 \
     AND p.smsc_message_id = ?3";

fn error_columns(error: &Option<ErrorInfo>) -> (Option<i64>, Option<&str>) {
    match error {
        Some(e) => (Some(i64::from(e.code)), Some(e.name.as_str())),
        None => (None, None),
    }
}

/// done_at for a message entering `status`.
fn done_at(status: MessageStatus, now: i64) -> Option<i64> {
    status.is_terminal().then_some(now)
}

/// A receipt never sends a message back to the queue (see `apply_receipt`).
fn receipt_status(status: MessageStatus) -> MessageStatus {
    match status {
        MessageStatus::Queued => MessageStatus::Submitted,
        other => other,
    }
}

fn prune(conn: &Tx<'_>, before_ms: i64, limit: i64) -> Result<Pruned, StoreError> {
    // Message ids are `(unix_ms << 16) | counter`.
    let before_id = before_ms.max(0).saturating_mul(1 << 16);
    let ids: Vec<(i64, String)> = conn
        .cached(
            "SELECT id, tenant FROM messages WHERE id < ?1 \
             AND status NOT IN ('queued', 'submitted') ORDER BY id LIMIT ?2",
        )?
        .query_map(params![before_id, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, tenant) in &ids {
        conn.cached("DELETE FROM message_parts WHERE message_id = ?1")?
            .execute(params![id])?;
        conn.cached("DELETE FROM message_list WHERE tenant = ?2 AND id = ?1")?
            .execute(params![id, tenant])?;
        conn.cached("DELETE FROM messages WHERE id = ?1")?
            .execute(params![id])?;
    }
    // Inbound messages and webhook deliveries get their ids in the order
    // they are written, so the old ones are those below the first new
    // enough one: the search stops there instead of reading every row.
    let inbound = conn
        .cached(
            "DELETE FROM inbound WHERE id IN (SELECT id FROM inbound WHERE id < \
             COALESCE((SELECT id FROM inbound WHERE received_at >= ?1 ORDER BY id LIMIT 1), \
             9223372036854775807) ORDER BY id LIMIT ?2)",
        )?
        .execute(params![before_ms, limit])?;
    let webhooks = conn
        .cached(
            "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox WHERE id < \
             COALESCE((SELECT id FROM webhook_outbox WHERE created_at >= ?1 ORDER BY id LIMIT 1), \
             9223372036854775807) AND state <> 'pending' ORDER BY id LIMIT ?2)",
        )?
        .execute(params![before_ms, limit])?;
    let receipts = conn
        .cached(
            "DELETE FROM pending_receipts WHERE (tenant, channel, smsc_message_id) IN \
             (SELECT tenant, channel, smsc_message_id FROM pending_receipts \
             WHERE received_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before_ms, limit])?;
    Ok(Pruned {
        messages: ids.len() as u64,
        inbound: inbound as u64,
        webhooks: webhooks as u64,
        receipts: receipts as u64,
    })
}

fn time_out_receipts(
    conn: &Tx<'_>,
    now: i64,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<TimedOut>, StoreError> {
    // The expression is the key of `messages_submitted`, as written there.
    let overdue: Vec<(i64, String)> = conn
        .cached(
            "SELECT id, tenant FROM messages INDEXED BY messages_submitted \
             WHERE status = 'submitted' \
             AND MAX(submitted_at, IFNULL(validity_until, 0), IFNULL(send_at, 0)) < ?1 \
             ORDER BY MAX(submitted_at, IFNULL(validity_until, 0), IFNULL(send_at, 0)) LIMIT ?2",
        )?
        .query_map(params![before_ms, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let error = ErrorInfo::receipt_timeout();
    let mut timed_out = Vec::with_capacity(overdue.len());
    for (id, tenant) in overdue {
        // Entered in the SMSC-id indexes (if the receipt cache still held
        // them), so that a late receipt finds them after a restart too:
        // the restart indexes only what is still `submitted`.
        conn.cached(
            "UPDATE OR FAIL message_parts SET status = 'unknown', error_code = ?2, \
             error_name = ?3, done_at = ?4, smsc_lookup_id = smsc_message_id \
             WHERE message_id = ?1 AND status = 'submitted'",
        )?
        .execute(params![id, error.code, error.name, now])?;
        let changed = conn
            .cached(
                "UPDATE OR FAIL messages SET status = 'unknown', error_code = ?2, error_name = ?3, \
                 done_at = ?4, updated_at = ?4, smsc_lookup_id = smsc_message_id \
                 WHERE id = ?1 AND status = 'submitted'",
            )?
            .execute(params![id, error.code, error.name, now])?;
        if changed == 1 {
            let (from, to) = (MessageStatus::Submitted, MessageStatus::Unknown);
            status_effects::changed(conn, id, &tenant, from, to)?;
        }
        timed_out.push(TimedOut {
            tenant,
            id: MessageId(id),
        });
    }
    Ok(timed_out)
}

/// Inserts a message after checking the tenant's queue quota and reserving
/// its charge. Runs inside the op's savepoint: if anything fails, the
/// reservation is undone with it.
fn insert(conn: &Tx<'_>, now: i64, id: MessageId, m: &NewMessage) -> Result<(), StoreError> {
    if let Some(limit) = m.max_queued {
        if queue_depth::get(&m.tenant) >= limit {
            return Err(StoreError::QuotaExceeded { limit });
        }
    }
    if let Some(charge) = m.charge {
        let reserved = conn
            .cached(
                "UPDATE accounts SET available = available - ?2, reserved = reserved + ?2 \
                 WHERE tenant = ?1 AND available >= ?2",
            )?
            .execute(params![m.tenant, charge])?;
        if reserved == 0 {
            let available = read_balance(conn, &m.tenant)?.map_or(0, |b| b.available);
            return Err(StoreError::InsufficientCredit {
                available,
                needed: charge,
            });
        }
    }
    conn.cached(
        "INSERT INTO messages (id, tenant, source, destination, body, status, attempts, \
         created_at, updated_at, priority, validity_until, parts, charge, charge_state, \
         client_ref, callback_url, data_coding, send_at) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, \
         ?6, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?10 IS NULL THEN NULL ELSE 'reserved' END, ?11, ?12, \
         ?13, ?14)",
    )?
    .execute(params![
        id.as_i64(),
        m.tenant,
        m.source,
        m.destination,
        m.text,
        now,
        m.priority.as_i64(),
        m.validity_until_ms,
        m.parts,
        m.charge,
        m.client_ref,
        m.callback_url,
        m.data_coding,
        m.send_at_ms
    ])?;
    if m.charge.is_some() {
        status_effects::may_charge(&m.tenant);
    }
    if m.callback_url.is_some() {
        status_effects::has_callback(conn, &m.tenant)?;
    }
    // Last: nothing after it can fail, so a refused insert never counts.
    queue_depth::add(&m.tenant, 1);
    Ok(())
}

// Every status change is an `UPDATE OR FAIL`. A statement with triggers
// that may abort makes SQLite open a statement journal and copy every page
// it touches into it first, so that a failure can undo the statement alone
// (profiled at 7 % of the writer's time). `OR FAIL` (which the triggers'
// own statements inherit) keeps a failing statement's earlier changes
// instead, so SQLite needs no journal, and the writer undoes them itself:
// a job that fails after changing rows is rolled back and replayed inside
// a savepoint (writer.rs). The constraints checked are the same.

/// Sets a receipt's outcome on one message.
/// `from` is the status it had.
fn set_outcome(
    conn: &Tx<'_>,
    now: i64,
    (id, tenant): (i64, &str),
    from: MessageStatus,
    status: MessageStatus,
    error: &Option<ErrorInfo>,
) -> Result<(), StoreError> {
    let (code, name) = error_columns(error);
    conn.cached(
        "UPDATE OR FAIL messages SET status = ?2, error_code = ?3, error_name = ?4, done_at = ?5, \
         updated_at = ?6 WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.as_str(),
        code,
        name,
        done_at(status, now),
        now
    ])?;
    status_effects::changed(conn, id, tenant, from, status)
}

/// Records a submit; with `fold`, also the outcome of its receipt later in
/// the same batch, in the same `UPDATE` (see `fold`).
fn mark_submitted(
    conn: &Tx<'_>,
    now: i64,
    tenant: &str,
    id: MessageId,
    channel: &str,
    smsc_message_ids: &[String],
    fold: Option<&Fold>,
) -> Result<Option<MessageStatus>, StoreError> {
    let single = (smsc_message_ids.len() == 1).then(|| smsc_message_ids[0].as_str());
    // With the receipt first, only if it left its outcome here rather than
    // parking it.
    let fold = fold.filter(|fold| {
        single.is_some() && (fold.order == Order::SubmitFirst || fold.handed_over())
    });
    let (status, error) = match fold {
        Some(fold) => (fold.status, fold.error.clone()),
        None => (MessageStatus::Submitted, None),
    };
    let (code, name) = error_columns(&error);
    // One UPDATE that also checks the status: no read first, and no
    // `UPDATE … RETURNING`, which makes SQLite build an ephemeral table for
    // every call (profiled at a quarter of the writer's time).
    let updated = conn
        .cached(
            "UPDATE OR FAIL messages SET status = ?6, channel = ?2, smsc_message_id = ?3, \
             submitted_at = ?4, attempts = attempts + 1, error_code = ?7, error_name = ?8, \
             done_at = ?9, updated_at = ?4 WHERE id = ?1 AND tenant = ?5 AND status = 'queued'",
        )?
        .execute(params![
            id.as_i64(),
            channel,
            single,
            now,
            tenant,
            status.as_str(),
            code,
            name,
            done_at(status, now)
        ])?;
    if updated == 1 {
        leave_queue(conn, id.as_i64(), tenant, status)?;
        status_effects::changed(conn, id.as_i64(), tenant, MessageStatus::Queued, status)?;
    }
    if updated == 0 {
        log::debug!("mark_submitted: message {id} of {tenant} is not queued; left alone");
        if let Some(fold) = fold.filter(|fold| fold.order == Order::ReceiptFirst) {
            // Parked, as the receipt would have done itself.
            park(
                conn,
                now,
                tenant,
                channel,
                &smsc_message_ids[0],
                fold.status,
                &fold.error,
            )?;
        }
        return Ok(None);
    }
    if let Some(fold) = fold {
        // A receipt parked for this id earlier is superseded by the later
        // one in this batch (the last receipt wins).
        take_parked(conn, tenant, channel, &smsc_message_ids[0])?;
        receipt_cache::remember(
            conn,
            tenant,
            channel,
            &smsc_message_ids[0],
            Target::message(id.as_i64()),
            status.is_terminal(),
        )?;
        if fold.order == Order::ReceiptFirst {
            // Answered as a submit that found its receipt parked.
            return Ok(Some(status));
        }
        fold.applied(ReceiptMatch::Matched {
            id,
            submitted_at_ms: Some(now),
            final_status: Some(status),
        });
        // Answered as a plain submit: the receipt reports the outcome.
        return Ok(None);
    }
    if let Some(smsc_id) = single {
        // The DLR may have overtaken the submit_sm_resp and been parked.
        let parked = take_parked(conn, tenant, channel, smsc_id)?;
        if let Some((status, error)) = &parked {
            let message = (id.as_i64(), tenant);
            set_outcome(conn, now, message, MessageStatus::Submitted, *status, error)?;
        }
        let done = parked
            .as_ref()
            .is_some_and(|(status, _)| status.is_terminal());
        receipt_cache::remember(
            conn,
            tenant,
            channel,
            smsc_id,
            Target::message(id.as_i64()),
            done,
        )?;
        return Ok(parked.map(|(status, _)| status));
    }
    conn.cached("DELETE FROM message_parts WHERE message_id = ?1")?
        .execute(params![id.as_i64()])?;
    for (index, smsc_id) in smsc_message_ids.iter().enumerate() {
        let (status, error) = match take_parked(conn, tenant, channel, smsc_id)? {
            Some((status, error)) => (status, error),
            None => (MessageStatus::Submitted, None),
        };
        let (code, name) = error_columns(&error);
        conn.cached(
            "INSERT INTO message_parts (message_id, part, tenant, channel, smsc_message_id, status, \
             error_code, error_name, done_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            id.as_i64(),
            index as i64 + 1,
            tenant,
            channel,
            smsc_id,
            status.as_str(),
            code,
            name,
            done_at(status, now)
        ])?;
        let part = Target::part(id.as_i64(), index as i64 + 1);
        receipt_cache::remember(conn, tenant, channel, smsc_id, part, status.is_terminal())?;
    }
    aggregate_parts(
        conn,
        now,
        (id.as_i64(), tenant),
        Some(MessageStatus::Submitted),
    )
}

/// Takes a parked receipt for this SMSC id, if one overtook its response.
fn take_parked(
    conn: &Tx<'_>,
    tenant: &str,
    channel: &str,
    smsc_message_id: &str,
) -> Result<Option<(MessageStatus, Option<ErrorInfo>)>, StoreError> {
    // Only where one may be: a lookup per submit was ~3 % of the writer's
    // time (see `parked`).
    if !crate::parked::may_be(tenant, channel, smsc_message_id) {
        return Ok(None);
    }
    // SELECT then DELETE rather than `DELETE … RETURNING`, which builds an
    // ephemeral table on every call, parked receipt or not.
    let key = params![tenant, channel, smsc_message_id];
    let mut stmt = conn.cached(
        "SELECT status, error_code, error_name FROM pending_receipts \
         WHERE tenant = ?1 AND channel = ?2 AND smsc_message_id = ?3",
    )?;
    let mut rows = stmt.query(key)?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let status = receipt_status(parse_status(&column::<String>(row, 0, "status")?)?);
    let error = error_info(column(row, 1, "error_code")?, column(row, 2, "error_name")?);
    drop(rows);
    conn.cached(
        "DELETE FROM pending_receipts WHERE tenant = ?1 AND channel = ?2 AND smsc_message_id = ?3",
    )?
    .execute(key)?;
    crate::parked::taken(tenant, channel, smsc_message_id);
    Ok(Some((status, error)))
}

/// How bad a part's final status is, for the message's aggregate: the
/// message is delivered only if every part is, else it takes the worst.
fn severity(status: MessageStatus) -> u8 {
    match status {
        MessageStatus::Delivered => 0,
        MessageStatus::Unknown => 1,
        MessageStatus::Expired => 2,
        MessageStatus::Undeliverable => 3,
        MessageStatus::Rejected => 4,
        MessageStatus::Failed => 5,
        MessageStatus::Queued | MessageStatus::Submitted => 6,
    }
}

/// Sets a long message's status from its parts once every part is final;
/// `None` while any is not. `from` is the message's status, if known.
fn aggregate_parts(
    conn: &Tx<'_>,
    now: i64,
    (message_id, tenant): (i64, &str),
    from: Option<MessageStatus>,
) -> Result<Option<MessageStatus>, StoreError> {
    let mut stmt = conn.cached(
        "SELECT status, error_code, error_name FROM message_parts WHERE message_id = ?1 ORDER BY part",
    )?;
    let mut rows = stmt.query(params![message_id])?;
    let mut worst: Option<(MessageStatus, Option<ErrorInfo>)> = None;
    while let Some(row) = rows.next()? {
        let status = parse_status(&column::<String>(row, 0, "status")?)?;
        if !status.is_terminal() {
            return Ok(None);
        }
        if worst
            .as_ref()
            .is_none_or(|(w, _)| severity(status) > severity(*w))
        {
            worst = Some((
                status,
                error_info(column(row, 1, "error_code")?, column(row, 2, "error_name")?),
            ));
        }
    }
    drop(rows);
    let Some((status, error)) = worst else {
        return Ok(None);
    };
    // Read only if a webhook may need to know whether it changed.
    let from = match from {
        Some(from) => from,
        None if status_effects::posts(tenant) => tenant_and_status(conn, MessageId(message_id))?
            .map_or(MessageStatus::Submitted, |(_, status)| status),
        None => MessageStatus::Submitted,
    };
    set_outcome(conn, now, (message_id, tenant), from, status, &error)?;
    Ok(Some(status))
}

/// Applies a receipt to the newest message (or part) with its SMSC id, or
/// parks it. With `hand_over`, a submit later in the batch waits for it:
/// instead of parking, it leaves its outcome to that submit.
fn apply_receipt(
    conn: &Tx<'_>,
    now: i64,
    receipt: &Receipt,
    hand_over: Option<&Fold>,
) -> Result<ReceiptMatch, StoreError> {
    let status = receipt_status(receipt.status);
    let (tenant, channel, smsc_id) = (&receipt.tenant, &receipt.channel, &receipt.smsc_message_id);
    let row = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?, row.get(2)?));
    let part_row =
        |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?));
    let cached = receipt_cache::lookup(tenant, channel, smsc_id);
    let mut found: Option<(i64, String, Option<i64>)> = None;
    let mut part: Option<(i64, i64, String, Option<i64>)> = None;
    match cached.map(|c| c.target) {
        Some(Target { message, part: 0 }) => {
            found = conn
                .cached(FIND_CACHED)?
                .query_row(params![tenant, channel, smsc_id, message], row)
                .optional()?;
        }
        Some(Target { message, part: n }) => {
            part = conn
                .cached(FIND_CACHED_PART)?
                .query_row(params![tenant, channel, smsc_id, message, n], part_row)
                .optional()?;
        }
        None => {}
    }
    if found.is_none() && part.is_none() {
        found = conn
            .cached(FIND_BY_SMSC_ID)?
            .query_row(params![tenant, channel, smsc_id], row)
            .optional()?;
    }
    if let Some((id, current, submitted_at_ms)) = found {
        // An intermediate receipt (e.g. ENROUTE arriving late) must not undo a
        // final outcome; a final one always wins (last one wins).
        if status.is_terminal() || current == MessageStatus::Submitted.as_str() {
            let from = parse_status(&current)?;
            set_outcome(conn, now, (id, tenant), from, status, &receipt.error)?;
        }
        if status.is_terminal() {
            receipt_cache::finished(cached, Target::message(id));
        }
        return Ok(ReceiptMatch::Matched {
            id: MessageId(id),
            submitted_at_ms,
            final_status: status.is_terminal().then_some(status),
        });
    }
    // A part of a long message?
    if part.is_none() {
        part = conn
            .cached(FIND_PART_BY_SMSC_ID)?
            .query_row(params![tenant, channel, smsc_id], part_row)
            .optional()?;
    }
    if let Some((message_id, part, current, submitted_at_ms)) = part {
        if status.is_terminal() || current == MessageStatus::Submitted.as_str() {
            let (code, name) = error_columns(&receipt.error);
            conn.cached(
                "UPDATE message_parts SET status = ?3, error_code = ?4, error_name = ?5, done_at = ?6 \
                 WHERE message_id = ?1 AND part = ?2",
            )?
            .execute(params![message_id, part, status.as_str(), code, name, done_at(status, now)])?;
        }
        if status.is_terminal() {
            receipt_cache::finished(cached, Target::part(message_id, part));
        }
        return Ok(ReceiptMatch::Matched {
            id: MessageId(message_id),
            submitted_at_ms,
            final_status: aggregate_parts(conn, now, (message_id, tenant), None)?,
        });
    }
    match hand_over {
        Some(fold) => fold.hand_over(),
        None => park(
            conn,
            now,
            &receipt.tenant,
            &receipt.channel,
            &receipt.smsc_message_id,
            status,
            &receipt.error,
        )?,
    }
    Ok(ReceiptMatch::Parked)
}

/// Keeps a receipt no message matches (yet) in `pending_receipts`.
fn park(
    conn: &Tx<'_>,
    now: i64,
    tenant: &str,
    channel: &str,
    smsc_message_id: &str,
    status: MessageStatus,
    error: &Option<ErrorInfo>,
) -> Result<(), StoreError> {
    crate::parked::parked(tenant, channel, smsc_message_id);
    let (code, name) = error_columns(error);
    conn.cached(
        "INSERT OR REPLACE INTO pending_receipts (tenant, channel, smsc_message_id, status, \
         error_code, error_name, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        tenant,
        channel,
        smsc_message_id,
        status.as_str(),
        code,
        name,
        now
    ])?;
    Ok(())
}

fn mark_retry(
    conn: &Tx<'_>,
    now: i64,
    id: MessageId,
    error: &Option<ErrorInfo>,
) -> Result<(), StoreError> {
    let (code, name) = error_columns(error);
    let before = tenant_and_status(conn, id)?;
    let changed = conn
        .cached(
            "UPDATE OR FAIL messages SET status = 'queued', attempts = attempts + 1, error_code = ?2, \
             error_name = ?3, updated_at = ?4 WHERE id = ?1 AND status IN ('queued', 'submitted')",
        )?
        .execute(params![id.as_i64(), code, name, now])?;
    match before {
        Some((tenant, MessageStatus::Submitted)) if changed == 1 => {
            queue_depth::add(&tenant, 1);
            queue_index::requeued(conn, id.as_i64())?;
        }
        _ if changed == 0 => {
            log::debug!("mark_retry: message {id} is missing or terminal; left alone");
        }
        _ => {}
    }
    Ok(())
}

fn mark_final(
    conn: &Tx<'_>,
    now: i64,
    id: MessageId,
    status: MessageStatus,
    error: &Option<ErrorInfo>,
    count_attempt: bool,
) -> Result<(), StoreError> {
    let (code, name) = error_columns(error);
    let before = tenant_and_status(conn, id)?;
    let changed = conn
        .cached(
            "UPDATE OR FAIL messages SET status = ?2, error_code = ?3, error_name = ?4, done_at = ?5, \
             attempts = attempts + ?6, updated_at = ?7 \
             WHERE id = ?1 AND status IN ('queued', 'submitted')",
        )?
        .execute(params![
            id.as_i64(),
            status.as_str(),
            code,
            name,
            done_at(status, now),
            i64::from(count_attempt),
            now
        ])?;
    match before {
        Some((tenant, from)) if changed == 1 => {
            if from == MessageStatus::Queued {
                leave_queue(conn, id.as_i64(), &tenant, status)?;
            }
            status_effects::changed(conn, id.as_i64(), &tenant, from, status)?;
        }
        _ => log::debug!("mark_final: message {id} is missing or terminal; left alone"),
    }
    Ok(())
}

/// Message `id` of `tenant` left `queued` for `to` (its row already says
/// so): the tenant's queue count, the message's `message_queue` entry and
/// its reserved credit follow, in the same transaction.
fn leave_queue(conn: &Tx<'_>, id: i64, tenant: &str, to: MessageStatus) -> Result<(), StoreError> {
    queue_depth::add(tenant, -1);
    queue_index::left(conn, tenant, id)?;
    left_queue(conn, id, tenant, to)
}

/// A message's tenant and status, read before a change whose effect on the
/// tenant's queue depth depends on the status it had.
fn tenant_and_status(
    conn: &Tx<'_>,
    id: MessageId,
) -> Result<Option<(String, MessageStatus)>, StoreError> {
    let found: Option<(String, String)> = conn
        .cached("SELECT tenant, status FROM messages WHERE id = ?1")?
        .query_row(params![id.as_i64()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    found
        .map(|(tenant, status)| Ok((tenant, parse_status(&status)?)))
        .transpose()
}

/// Inserts one inbound (MO) message row; returns its id.
fn insert_inbound_row(
    conn: &Connection,
    message: &NewInbound,
    received_at_ms: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbound (tenant, channel, source, destination, body, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        message.tenant,
        message.channel,
        message.source,
        message.destination,
        message.text,
        received_at_ms
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Creates the tenant's credit account with `available` unless it has one.
fn ensure_account_row(conn: &Connection, tenant: &str, available: i64) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO accounts (tenant, available) VALUES (?1, ?2)")?
        .execute(params![tenant, available])?;
    status_effects::may_charge(tenant);
    Ok(())
}

/// Sets (or with `None` removes) the tenant's webhook URL.
fn set_webhook_row(conn: &Connection, tenant: &str, url: Option<&str>) -> Result<(), StoreError> {
    match url {
        Some(url) => {
            status_effects::may_post(tenant);
            conn.prepare_cached(
                "INSERT OR REPLACE INTO tenant_webhooks (tenant, url) VALUES (?1, ?2)",
            )?
            .execute(params![tenant, url])?
        }
        None => conn
            .prepare_cached("DELETE FROM tenant_webhooks WHERE tenant = ?1")?
            .execute(params![tenant])?,
    };
    Ok(())
}

/// Whether a key with this digest was ever issued (live or revoked).
fn key_issued(conn: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM api_keys WHERE hash = ?1")?
        .exists(params![&hash[..]])?)
}

/// A live API key: its SHA-256 digest, its tenant and when it expires.
pub type ApiKeyRow = ([u8; 32], String, Option<i64>);

/// Inserts `hash` as the tenant's key and makes its other keys expire at
/// `expire_others_at` (never later than they already would); returns how
/// many other keys that changed.
fn add_api_key(
    conn: &Connection,
    tenant: &str,
    hash: &[u8; 32],
    expire_others_at: i64,
    now: i64,
) -> Result<usize, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE api_keys SET expires_at = ?2 WHERE tenant = ?1 \
         AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .execute(params![tenant, expire_others_at])?;
    conn.prepare_cached("INSERT INTO api_keys (hash, tenant, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![&hash[..], tenant, now])?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sql: &str) -> String {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // The plan does not depend on the values; bind NULLs.
        let count = stmt.parameter_count();
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(vec![rusqlite::types::Null; count]),
                |row| row.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    #[test]
    fn pending_writes_count_what_the_writer_has_not_answered_yet() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), StoreOptions::default()).unwrap();
        assert_eq!(store.pending_writes(), 0);
        for _ in 0..100 {
            store.insert_message(NewMessage::new("acme", "a", "b", "c"), Box::new(|_| {}));
        }
        store.flush().unwrap();
        assert_eq!(
            store.pending_writes(),
            0,
            "every write answered, flush included"
        );
        store.close();
        store.insert_message(NewMessage::new("acme", "a", "b", "c"), Box::new(|_| {}));
        assert_eq!(
            store.pending_writes(),
            0,
            "a write refused after close is not pending"
        );
    }

    #[test]
    fn listing_the_newest_messages_reads_a_range_of_rowids() {
        let p = plan(SELECT_NEWEST_PAGE);
        assert!(
            p.contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "no sort needed: {p}");
    }

    #[test]
    fn listing_older_messages_reads_the_tenants_range_of_message_list() {
        let p = plan(SELECT_LISTED_PAGE);
        assert!(
            p.contains("SEARCH l USING PRIMARY KEY (tenant=? AND id>? AND id<?)"),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "no sort needed: {p}");
    }

    #[test]
    fn the_queue_query_reads_the_lane_from_message_queue_in_order() {
        let p = plan(queue_index::SELECT_SWEPT);
        assert!(
            p.contains("SEARCH q USING PRIMARY KEY (tenant=? AND priority=? AND id>? AND id<?)"),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "no sort needed: {p}");
    }

    #[test]
    fn the_queue_query_scans_only_the_newest_rowids_above_the_mark() {
        let p = plan(queue_index::SELECT_NEWEST);
        assert!(p.contains("INTEGER PRIMARY KEY (rowid>?)"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "no sort needed: {p}");
    }

    #[test]
    fn leaving_the_queue_deletes_by_the_primary_key_and_the_rows_lane() {
        let p = plan(queue_index::DELETE_ENTRY);
        assert!(
            p.contains("SEARCH message_queue USING PRIMARY KEY (tenant=? AND priority=? AND id=?)"),
            "{p}"
        );
        assert!(
            p.contains("SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"),
            "{p}"
        );
        assert!(!p.contains("LIST SUBQUERY"), "no IN list: {p}");
    }

    #[test]
    fn a_receipt_finds_its_message_through_the_smsc_id_index() {
        let p = plan(FIND_BY_SMSC_ID);
        assert!(p.contains("messages_smsc_id"), "{p}");
    }

    #[test]
    fn a_receipt_for_a_part_finds_it_through_the_parts_smsc_id_index() {
        let p = plan(FIND_PART_BY_SMSC_ID);
        assert!(p.contains("message_parts_smsc"), "{p}");
    }

    #[test]
    fn ids_grow_even_when_the_last_one_is_in_the_future() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), StoreOptions::default()).unwrap();
        let future = (writer::now_ms() + 3_600_000) << 16;
        store.inner.last_id.store(future, Ordering::Relaxed);
        assert_eq!(
            Store::next_message_id(&store.inner.last_id),
            MessageId(future + 1)
        );
        assert_eq!(
            Store::next_message_id(&store.inner.last_id),
            MessageId(future + 2)
        );
    }
}
