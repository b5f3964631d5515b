//! The schema and its versioned migrations.
//!
//! [`MIGRATIONS`] is an append-only list: entry `i` takes the database from
//! `user_version` `i` to `i + 1`. The version lives in `PRAGMA user_version`
//! (a header field, no extra table) and each step runs in its own
//! transaction, so a crash mid-upgrade leaves the file at a known version.
//! Never edit a released entry; add a new one.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// Migration scripts, applied in order. Index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: messages, their two indexes, and receipts that arrived early.
    //
    // `messages_queued` is partial: only queued rows are in it, so it stays
    // small and hot however large the history grows, and finding a tenant's
    // work is an index range scan.
    //
    // `messages_smsc_id` is partial too: a queued message has no SMSC id yet,
    // and leaving those rows out makes inserts cheaper.
    //
    // `pending_receipts` is WITHOUT ROWID because it is only ever looked up by
    // its full primary key, which also makes its key columns NOT NULL.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        destination TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        channel TEXT,
        smsc_message_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        error_code INTEGER,
        error_name TEXT,
        created_at INTEGER NOT NULL,
        submitted_at INTEGER,
        done_at INTEGER,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX messages_queued ON messages(tenant, id) WHERE status = 'queued';
    CREATE INDEX messages_smsc_id ON messages(tenant, channel, smsc_message_id)
        WHERE smsc_message_id IS NOT NULL;
    CREATE TABLE pending_receipts (
        tenant TEXT,
        channel TEXT,
        smsc_message_id TEXT,
        status TEXT NOT NULL,
        error_code INTEGER,
        error_name TEXT,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, channel, smsc_message_id)
    ) WITHOUT ROWID;",
    // 2: mobile-originated messages, per tenant, newest read first.
    "CREATE TABLE inbound (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        channel TEXT NOT NULL,
        source TEXT NOT NULL,
        destination TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL
    );
    CREATE INDEX inbound_tenant ON inbound(tenant, id);",
    // 3: priorities, validity, parts, credit, and the per-tenant queued count.
    //
    // The queue index gains the priority so each lane is its own range scan.
    // `tenant_counters.queued` and the credit moves are kept by triggers, so
    // they stay exact whichever statement changes a status: every status
    // change goes through the single writer, so the quota check and the
    // credit reservation at insert are exact under any concurrency.
    // Credit: reserved at insert (by the insert itself), captured when the
    // message leaves `queued` for anything but failed/expired, released
    // (back to available) when it fails or expires before that.
    "ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE messages ADD COLUMN validity_until INTEGER;
    ALTER TABLE messages ADD COLUMN parts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE messages ADD COLUMN charge INTEGER;
    ALTER TABLE messages ADD COLUMN charge_state TEXT;
    DROP INDEX messages_queued;
    CREATE INDEX messages_queued ON messages(tenant, priority, id) WHERE status = 'queued';
    CREATE TABLE tenant_counters (
        tenant TEXT PRIMARY KEY,
        queued INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    INSERT INTO tenant_counters (tenant, queued)
        SELECT tenant, COUNT(*) FROM messages WHERE status = 'queued' GROUP BY tenant;
    CREATE TRIGGER messages_count_insert AFTER INSERT ON messages WHEN NEW.status = 'queued'
    BEGIN
        INSERT OR IGNORE INTO tenant_counters (tenant, queued) VALUES (NEW.tenant, 0);
        UPDATE tenant_counters SET queued = queued + 1 WHERE tenant = NEW.tenant;
    END;
    CREATE TRIGGER messages_count_update AFTER UPDATE OF status ON messages
        WHEN (OLD.status = 'queued') <> (NEW.status = 'queued')
    BEGIN
        UPDATE tenant_counters
            SET queued = queued + (CASE WHEN NEW.status = 'queued' THEN 1 ELSE -1 END)
            WHERE tenant = NEW.tenant;
    END;
    CREATE TRIGGER messages_count_delete AFTER DELETE ON messages WHEN OLD.status = 'queued'
    BEGIN
        UPDATE tenant_counters SET queued = queued - 1 WHERE tenant = OLD.tenant;
    END;
    CREATE TABLE accounts (
        tenant TEXT PRIMARY KEY,
        available INTEGER NOT NULL,
        reserved INTEGER NOT NULL DEFAULT 0,
        spent INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TRIGGER messages_charge_capture AFTER UPDATE OF status ON messages
        WHEN OLD.charge_state = 'reserved' AND NEW.status NOT IN ('queued', 'failed', 'expired')
    BEGIN
        UPDATE accounts SET reserved = reserved - OLD.charge, spent = spent + OLD.charge
            WHERE tenant = OLD.tenant;
        UPDATE messages SET charge_state = 'captured' WHERE id = OLD.id;
    END;
    CREATE TRIGGER messages_charge_release AFTER UPDATE OF status ON messages
        WHEN OLD.charge_state = 'reserved' AND NEW.status IN ('failed', 'expired')
    BEGIN
        UPDATE accounts SET reserved = reserved - OLD.charge, available = available + OLD.charge
            WHERE tenant = OLD.tenant;
        UPDATE messages SET charge_state = 'released' WHERE id = OLD.id;
    END;",
    // 4: the tenant's own reference on a message, and idempotency keys.
    //
    // An idempotency row is written in the same transaction as the
    // messages it answered for, by the single writer, so a retried request
    // — even one racing the first — finds it and creates nothing.
    "ALTER TABLE messages ADD COLUMN client_ref TEXT;
    CREATE TABLE idempotency_keys (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);",
    // 5: listing a tenant's messages newest first without reading other
    // tenants' rows.
    "CREATE INDEX messages_tenant ON messages(tenant, id);",
    // 6: webhooks. A final status (or an inbound message) of a tenant with
    // a webhook, or of a message with its own callback_url, puts a row in
    // the outbox *in the same transaction* (triggers), so no event is lost
    // between the commit and the delivery; the dispatcher claims due rows
    // with a lease, posts them, and records the outcome.
    "ALTER TABLE messages ADD COLUMN callback_url TEXT;
    CREATE TABLE tenant_webhooks (
        tenant TEXT PRIMARY KEY,
        url TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE webhook_outbox (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        url TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref_id INTEGER NOT NULL,
        status TEXT,
        error_code INTEGER,
        error_name TEXT,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT,
        done_at INTEGER
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_at) WHERE state = 'pending';
    CREATE INDEX webhook_outbox_dead ON webhook_outbox(tenant, id) WHERE state = 'dead';
    CREATE TRIGGER messages_webhook AFTER UPDATE OF status ON messages
        WHEN OLD.status <> NEW.status
        AND NEW.status IN ('delivered', 'undeliverable', 'expired', 'rejected', 'failed', 'unknown')
        AND COALESCE(NEW.callback_url, (SELECT url FROM tenant_webhooks WHERE tenant = NEW.tenant))
            IS NOT NULL
    BEGIN
        INSERT INTO webhook_outbox (tenant, url, kind, ref_id, status, error_code, error_name,
                                    created_at, next_attempt_at)
        VALUES (NEW.tenant,
                COALESCE(NEW.callback_url, (SELECT url FROM tenant_webhooks WHERE tenant = NEW.tenant)),
                'status', NEW.id, NEW.status, NEW.error_code, NEW.error_name,
                NEW.updated_at, NEW.updated_at);
    END;
    CREATE TRIGGER inbound_webhook AFTER INSERT ON inbound
        WHEN EXISTS (SELECT 1 FROM tenant_webhooks WHERE tenant = NEW.tenant)
    BEGIN
        INSERT INTO webhook_outbox (tenant, url, kind, ref_id, created_at, next_attempt_at)
        VALUES (NEW.tenant, (SELECT url FROM tenant_webhooks WHERE tenant = NEW.tenant),
                'inbound', NEW.id, NEW.received_at, NEW.received_at);
    END;",
    // 7: the parts of a long message, each with its own SMSC id and receipt.
    // The message row keeps the aggregate status (final when every part
    // is), so credit, webhooks and counters keep working on it alone.
    "CREATE TABLE message_parts (
        message_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        channel TEXT NOT NULL,
        smsc_message_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error_code INTEGER,
        error_name TEXT,
        done_at INTEGER,
        PRIMARY KEY (message_id, part)
    ) WITHOUT ROWID;
    CREATE INDEX message_parts_smsc ON message_parts(tenant, channel, smsc_message_id);",
    // 8: parts of concatenated inbound (MO) messages, kept until the last
    // one arrives; each part is stored before it is acknowledged.
    "CREATE TABLE inbound_parts (
        tenant TEXT NOT NULL,
        channel TEXT NOT NULL,
        source TEXT NOT NULL,
        destination TEXT NOT NULL,
        reference INTEGER NOT NULL,
        total INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, source, destination, reference, total, sequence)
    ) WITHOUT ROWID;",
    // 9: the data_coding a tenant asked for (NULL: chosen from the text).
    "ALTER TABLE messages ADD COLUMN data_coding INTEGER;",
    // 10: API keys, only as SHA-256 hashes. A key with expires_at in the
    // past is revoked (its row stays, so a revoked config key is not
    // re-seeded by the next start).
    "CREATE TABLE api_keys (
        hash BLOB PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX api_keys_tenant ON api_keys(tenant);",
    // 11: tenants managed at run time. `settings` is the tenant's
    // configuration as JSON (opaque to the store, without its API key);
    // `seed_digest` is the digest of the config-file entry it was last
    // seeded from, so an edited entry is applied once and an unchanged one
    // never undoes an operator's change; a deleted tenant keeps its row as
    // a tombstone (deleted = 1) so the config file does not resurrect it.
    "CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        suspended INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        seed_digest BLOB,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 12: the status triggers without IN lists of more than two constants.
    // SQLite evaluates such a list through an ephemeral table that it
    // builds where the list is first used, and in a trigger that is on
    // every firing: `messages_webhook`'s six statuses cost a temporary
    // b-tree opened, filled and closed on every status change (twice per
    // message), about a tenth of the writer's time. The conditions are the
    // same: the final statuses are exactly those other than queued and
    // submitted (`MessageStatus` has eight; a new non-final one must be
    // added to these lists).
    "DROP TRIGGER messages_charge_capture;
    CREATE TRIGGER messages_charge_capture AFTER UPDATE OF status ON messages
        WHEN OLD.charge_state = 'reserved' AND NEW.status <> 'queued'
        AND NEW.status NOT IN ('failed', 'expired')
    BEGIN
        UPDATE accounts SET reserved = reserved - OLD.charge, spent = spent + OLD.charge
            WHERE tenant = OLD.tenant;
        UPDATE messages SET charge_state = 'captured' WHERE id = OLD.id;
    END;
    DROP TRIGGER messages_webhook;
    CREATE TRIGGER messages_webhook AFTER UPDATE OF status ON messages
        WHEN OLD.status <> NEW.status
        AND NEW.status NOT IN ('queued', 'submitted')
        AND COALESCE(NEW.callback_url, (SELECT url FROM tenant_webhooks WHERE tenant = NEW.tenant))
            IS NOT NULL
    BEGIN
        INSERT INTO webhook_outbox (tenant, url, kind, ref_id, status, error_code, error_name,
                                    created_at, next_attempt_at)
        VALUES (NEW.tenant,
                COALESCE(NEW.callback_url, (SELECT url FROM tenant_webhooks WHERE tenant = NEW.tenant)),
                'status', NEW.id, NEW.status, NEW.error_code, NEW.error_name,
                NEW.updated_at, NEW.updated_at);
    END;",
    // 13: the SMSC-id indexes keyed by the id first. A receipt looks its
    // message up by all three columns, so the order does not change the
    // lookup, but it decides where each submit's new entry lands: keyed by
    // tenant first, every tenant had its own insertion point, and each
    // commit wrote one more index page per tenant sending (10 tenants: 10
    // pages of 4 KiB, against 1). SMSCs commonly number their ids in
    // sequence, so id first puts the entries of every tenant on one SMSC
    // side by side.
    "DROP INDEX messages_smsc_id;
    CREATE INDEX messages_smsc_id ON messages(smsc_message_id, tenant, channel)
        WHERE smsc_message_id IS NOT NULL;
    DROP INDEX message_parts_smsc;
    CREATE INDEX message_parts_smsc ON message_parts(smsc_message_id, tenant, channel);",
    // 14: receipts are matched through an in-memory cache of recent submits
    // first (see `receipt_cache`), and the durable SMSC-id index holds only
    // the messages that left it still awaiting their receipt: those get
    // `smsc_lookup_id`. SMSCs that hand out ids in no order made every
    // submit write a random page of that index. Messages submitted before
    // the upgrade keep their entries; `messages_awaiting_receipt` lists the
    // ones a restart must index.
    "ALTER TABLE messages ADD COLUMN smsc_lookup_id TEXT;
    UPDATE messages SET smsc_lookup_id = smsc_message_id WHERE smsc_message_id IS NOT NULL;
    DROP INDEX messages_smsc_id;
    CREATE INDEX messages_smsc_id ON messages(smsc_lookup_id, tenant, channel)
        WHERE smsc_lookup_id IS NOT NULL;
    CREATE INDEX messages_awaiting_receipt ON messages(id)
        WHERE status = 'submitted' AND smsc_lookup_id IS NULL AND smsc_message_id IS NOT NULL;",
    // 15: the same for the parts of long messages: the receipt cache
    // remembers each part's SMSC id, and `message_parts_smsc` holds only
    // the parts that left it still awaiting their receipt.
    "ALTER TABLE message_parts ADD COLUMN smsc_lookup_id TEXT;
    UPDATE message_parts SET smsc_lookup_id = smsc_message_id;
    DROP INDEX message_parts_smsc;
    CREATE INDEX message_parts_smsc ON message_parts(smsc_lookup_id, tenant, channel)
        WHERE smsc_lookup_id IS NOT NULL;
    CREATE INDEX message_parts_awaiting_receipt ON message_parts(message_id, part)
        WHERE status = 'submitted' AND smsc_lookup_id IS NULL;",
    // 16: every submitted message, by when it started waiting for its
    // receipt: its submit, or the end of its validity if that is later
    // (the SMSC may try to deliver it until then). So
    // `engine.receipt_timeout_s` finds the messages whose receipt is
    // overdue by reading exactly those. It replaces
    // `messages_awaiting_receipt`, which held only the single-part messages
    // still in the receipt cache; a restart finds those through this index
    // too. Entries are added at the index's end (in submit order, for
    // messages without a validity), as they were before.
    "DROP INDEX messages_awaiting_receipt;
    CREATE INDEX messages_submitted ON messages(MAX(submitted_at, IFNULL(validity_until, 0)))
        WHERE status = 'submitted';",
    // 17: `send_at`, when the SMSC is to deliver a scheduled message
    // (schedule_delivery_time). Its receipt cannot come before, so the
    // wait for it starts then at the earliest: `messages_submitted` takes
    // it into its key.
    "ALTER TABLE messages ADD COLUMN send_at INTEGER;
    DROP INDEX messages_submitted;
    CREATE INDEX messages_submitted
        ON messages(MAX(submitted_at, IFNULL(validity_until, 0), IFNULL(send_at, 0)))
        WHERE status = 'submitted';",
    // 18: the queue depth is counted by the writer thread instead (see
    // `queue_depth`): the three triggers were one statement more per insert
    // and per submit, about 2 µs of the writer's 15 µs per message. Every
    // open counts it afresh from `messages_queued`.
    "DROP TRIGGER messages_count_insert;
    DROP TRIGGER messages_count_update;
    DROP TRIGGER messages_count_delete;
    DROP TABLE tenant_counters;",
    // 19: the writer moves credit and queues webhook events itself when it
    // changes a status (see `status_effects`), with the same conditions:
    // these triggers cost every submit and every receipt a sub-program,
    // about 1.9 µs of the writer's ~13 µs per message. `callback_tenants`
    // lists the tenants that sent a message with its own `callback_url`,
    // so the writer knows, after a restart too, whose final statuses may
    // be posted. `inbound_webhook` (on `inbound`) stays.
    "DROP TRIGGER messages_charge_capture;
    DROP TRIGGER messages_charge_release;
    DROP TRIGGER messages_webhook;
    CREATE TABLE callback_tenants (tenant TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT INTO callback_tenants SELECT DISTINCT tenant FROM messages WHERE callback_url IS NOT NULL;",
    // 20: a tenant's messages are listed through `message_list`, which the
    // writer fills in bulk (see `listing`), instead of `messages_tenant`:
    // each commit wrote one page of that index per tenant sending. Every
    // message up to `message_list_mark.up_to` is in `message_list`.
    "CREATE TABLE message_list (
        tenant TEXT NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;
    CREATE TABLE message_list_mark (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        up_to INTEGER NOT NULL
    );
    INSERT INTO message_list (tenant, id) SELECT tenant, id FROM messages ORDER BY tenant, id;
    INSERT INTO message_list_mark (one, up_to) VALUES (1, IFNULL((SELECT MAX(id) FROM messages), 0));
    DROP INDEX messages_tenant;",
    // 21: queued messages are found through `message_queue`, which the
    // listing sweep fills with the messages still queued when it passes
    // (see `queue_index`), instead of the partial index `messages_queued`,
    // which every message entered at its insert and left at its submit.
    "CREATE TABLE message_queue (
        tenant TEXT NOT NULL,
        priority INTEGER NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (tenant, priority, id)
    ) WITHOUT ROWID;
    INSERT INTO message_queue (tenant, priority, id)
        SELECT tenant, priority, id FROM messages WHERE status = 'queued'
        ORDER BY tenant, priority, id;
    DROP INDEX messages_queued;",
];

/// A fresh in-memory database at the latest schema, for unit tests.
#[cfg(test)]
pub(crate) fn migrated_in_memory() -> Connection {
    let mut conn = Connection::open_in_memory().expect("open an in-memory database");
    migrate(&mut conn).expect("migrate an in-memory database");
    conn
}

/// The schema version this build writes: the number of migrations.
pub fn latest_version() -> u32 {
    // The list is a handful of entries; it cannot overflow u32.
    MIGRATIONS.len() as u32
}

/// The file's current schema version (`PRAGMA user_version`).
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| migration_error("cannot read the schema version", e))
}

/// Brings the database up to [`latest_version`], one transaction per step.
///
/// Fails with [`StoreError::Migration`] if the file's version is newer than
/// this build knows: running old code on a newer schema could silently
/// corrupt it, so we refuse rather than guess.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    let latest = i64::from(latest_version());
    if found > latest || found < 0 {
        return Err(StoreError::Migration {
            reason: format!(
                "database schema version {found} is not one this build knows (latest is {latest}); \
                 was it written by a newer smppd?"
            ),
            source: None,
        });
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let target = index as i64 + 1;
        // IMMEDIATE: take the write lock up front so two processes opening the
        // same file cannot both run the same step.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| migration_error(&format!("cannot start migration {target}"), e))?;
        // Re-check under the lock: another process may have migrated meanwhile.
        let now_at = current_version(&tx)?;
        if now_at >= target {
            continue;
        }
        tx.execute_batch(script)
            .map_err(|e| migration_error(&format!("migration {target} failed"), e))?;
        tx.pragma_update(None, "user_version", target)
            .map_err(|e| migration_error(&format!("cannot record migration {target}"), e))?;
        tx.commit()
            .map_err(|e| migration_error(&format!("cannot commit migration {target}"), e))?;
        log::info!("store schema migrated to version {target}");
    }
    Ok(())
}

fn migration_error(reason: &str, source: rusqlite::Error) -> StoreError {
    StoreError::Migration {
        reason: reason.to_owned(),
        source: Some(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file as version `version` of smppd left it.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for script in &MIGRATIONS[..version] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    #[test]
    fn a_fresh_database_is_migrated_to_the_latest_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), i64::from(latest_version()));
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('messages', 'pending_receipts')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), i64::from(latest_version()));
    }

    #[test]
    fn a_version_20_file_keeps_its_queued_messages_in_the_queue() {
        let mut conn = at_version(20);
        conn.execute_batch(
            "INSERT INTO messages (id, tenant, source, destination, body, status, priority,
                                   created_at, updated_at)
             VALUES (7, 'acme', 's', 'd', 'b', 'queued', 0, 1, 1),
                    (8, 'acme', 's', 'd', 'b', 'submitted', 1, 1, 1),
                    (9, 'globex', 's', 'd', 'b', 'queued', 2, 1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let entries: Vec<(String, i64, i64)> = conn
            .prepare("SELECT tenant, priority, id FROM message_queue ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(entries, [("acme".into(), 0, 7), ("globex".into(), 2, 9)]);
        let index: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_queued'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(index, 0, "the partial index is gone");
    }

    #[test]
    fn a_version_12_file_keeps_its_submitted_messages_findable_by_smsc_id() {
        let mut conn = at_version(12);
        conn.execute(
            "INSERT INTO messages (id, tenant, source, destination, body, status, channel, \
             smsc_message_id, created_at, updated_at) \
             VALUES (7, 'acme', 's', 'd', 'b', 'submitted', 'main', 'abc', 1, 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), i64::from(latest_version()));
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info('messages_smsc_id') ORDER BY seqno")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(columns, ["smsc_lookup_id", "tenant", "channel"]);
        let found: i64 = conn
            .query_row(
                "SELECT id FROM messages WHERE tenant = 'acme' AND channel = 'main' \
                 AND smsc_lookup_id = 'abc'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(found, 7);
    }

    #[test]
    fn a_version_15_file_lists_every_submitted_message_by_when_its_receipt_wait_began() {
        let mut conn = at_version(15);
        // One only the receipt cache knew, one already in the SMSC-id
        // index, a long message (no SMSC id of its own) and a delivered one.
        conn.execute_batch(
            "INSERT INTO messages (id, tenant, source, destination, body, status, channel, \
             smsc_message_id, smsc_lookup_id, submitted_at, created_at, updated_at) VALUES \
             (1, 'acme', 's', 'd', 'b', 'submitted', 'main', 'a', NULL, 40, 1, 1), \
             (2, 'acme', 's', 'd', 'b', 'submitted', 'main', 'b', 'b', 30, 1, 1), \
             (3, 'acme', 's', 'd', 'b', 'submitted', 'main', NULL, NULL, 20, 1, 1), \
             (4, 'acme', 's', 'd', 'b', 'delivered', 'main', 'c', NULL, 10, 1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let listed: Vec<i64> = conn
            .prepare(
                "SELECT id FROM messages INDEXED BY messages_submitted \
                 WHERE status = 'submitted' ORDER BY MAX(submitted_at, IFNULL(validity_until, 0), IFNULL(send_at, 0))",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(listed, [3, 2, 1]);
        let old_index: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_awaiting_receipt'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(old_index, 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", i64::from(latest_version()) + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, StoreError::Migration { .. }), "{err:?}");
    }
}
