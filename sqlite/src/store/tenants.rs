//! The `tenants` table: tenants created, changed, suspended and deleted at
//! run time, and the seed the config file gives on start.
//!
//! A tenant's settings are stored as opaque JSON text: the binary owns
//! their shape (the same keys as a `[[tenants]]` entry of the config file)
//! and their validation; the store only keeps them durable.
//!
//! Deleting a tenant removes everything it owns in one transaction
//! (messages and their parts, queued work, inbound messages, webhooks,
//! credit, idempotency and API keys) and leaves a tombstone row, so the
//! same id can be created again from nothing. Writes that race a deletion
//! are refused *inside the writer*: [`Store::delete_tenant`] marks the
//! tenant closed before it enqueues the delete, and a message insert, an
//! inbound message or a receipt for a closed tenant fails with
//! [`StoreError::TenantClosed`] when the writer runs it, whether it was
//! queued before the delete or after (a session still unbinding cannot
//! leave rows behind).

use rusqlite::params;

use super::{column, Store};
use crate::writer::{self, Done};
use crate::StoreError;
use crate::{listing, queue_depth};

/// One row of the `tenants` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// Tenant id.
    pub id: String,
    /// Its settings as JSON (without its API key).
    pub settings: String,
    /// Suspended: its sessions are closed and its API calls refused.
    pub suspended: bool,
    /// Deleted: a tombstone (its data is gone).
    pub deleted: bool,
    /// Digest of the config-file entry it was last seeded from.
    pub seed_digest: Option<[u8; 32]>,
}

/// What [`Store::delete_tenant`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedTenant {
    /// Messages removed, in any status.
    pub messages: u64,
    /// Of those, still queued (never submitted).
    pub queued: u64,
    /// Inbound (MO) messages removed.
    pub inbound: u64,
    /// Webhook deliveries removed (pending and dead).
    pub webhooks: u64,
}

/// Every table with a `tenant` column, cleared by a deletion.
const TENANT_TABLES: &[&str] = &[
    "message_parts",
    "pending_receipts",
    "inbound_parts",
    "idempotency_keys",
    "accounts",
    "tenant_webhooks",
    "api_keys",
    "callback_tenants",
    "message_queue",
];

impl Store {
    /// Every row of the `tenants` table, tombstones included, by id.
    pub fn tenant_rows(&self) -> Result<Vec<TenantRow>, StoreError> {
        let conn = self.inner.readers.get();
        let mut stmt = conn.prepare_cached(
            "SELECT id, settings, suspended, deleted, seed_digest FROM tenants ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let digest: Option<Vec<u8>> = column(row, 4, "seed_digest")?;
            let seed_digest = match digest {
                None => None,
                Some(bytes) => Some(bytes.try_into().map_err(|_| {
                    StoreError::Corrupt("a tenants.seed_digest is not 32 bytes".into())
                })?),
            };
            out.push(TenantRow {
                id: column(row, 0, "id")?,
                settings: column(row, 1, "settings")?,
                suspended: column(row, 2, "suspended")?,
                deleted: column(row, 3, "deleted")?,
                seed_digest,
            });
        }
        Ok(out)
    }

    /// Creates or replaces a tenant's row (a tombstone comes back to
    /// life). `seed_digest: None` keeps the digest the row had. The
    /// tenant is open for writes again from this call on.
    pub fn put_tenant(&self, row: TenantRow, done: Done<()>) {
        self.reopen(&row.id);
        self.submit(writer::job(
            move |conn, now| upsert_tenant(conn, &row, now),
            done,
        ));
    }

    /// Creates a tenant (or brings a tombstone back) with its first API
    /// key, in one transaction: `StoreError::KeyInUse` and nothing written
    /// if a key with this digest was ever issued (live or revoked).
    pub fn create_tenant(&self, row: TenantRow, key_hash: [u8; 32], done: Done<()>) {
        self.reopen(&row.id);
        self.submit(writer::job(
            move |conn, now| {
                if super::key_issued(conn, &key_hash)? {
                    return Err(StoreError::KeyInUse);
                }
                upsert_tenant(conn, &row, now)?;
                super::add_api_key(conn, &row.id, &key_hash, now, now)?;
                Ok(())
            },
            done,
        ));
    }

    /// The store-side parts of a tenant's settings, in one write: its
    /// webhook URL (read by the outbox triggers; `None` removes it) and,
    /// with `opening_credit` (credit control on), its account, created with
    /// that balance if it has none (an existing balance is never changed).
    pub fn set_tenant_settings(
        &self,
        tenant: &str,
        webhook_url: Option<&str>,
        opening_credit: Option<i64>,
        done: Done<()>,
    ) {
        let (tenant, url) = (tenant.to_owned(), webhook_url.map(str::to_owned));
        self.submit(writer::job(
            move |conn, _| {
                super::set_webhook_row(conn, &tenant, url.as_deref())?;
                match opening_credit {
                    Some(credit) => super::ensure_account_row(conn, &tenant, credit),
                    None => Ok(()),
                }
            },
            done,
        ));
    }

    /// Removes everything the tenant owns and leaves a tombstone (see the
    /// module documentation). From this call on, inserts for the tenant
    /// fail with [`StoreError::TenantClosed`].
    pub fn delete_tenant(&self, tenant: &str, done: Done<DeletedTenant>) {
        let tenant = tenant.to_owned();
        self.inner
            .closed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone());
        self.submit(writer::job(
            move |conn, now| {
                let queued = queue_depth::get(&tenant);
                let messages = listing::delete_tenant_messages(conn, &tenant)?;
                queue_depth::add(&tenant, -i64::try_from(queued).unwrap_or(i64::MAX));
                let inbound = conn
                    .prepare_cached("DELETE FROM inbound WHERE tenant = ?1")?
                    .execute(params![tenant])?;
                let webhooks = conn
                    .prepare_cached("DELETE FROM webhook_outbox WHERE tenant = ?1")?
                    .execute(params![tenant])?;
                for table in TENANT_TABLES {
                    conn.prepare_cached(&format!("DELETE FROM {table} WHERE tenant = ?1"))?
                        .execute(params![tenant])?;
                }
                conn.prepare_cached(
                    "INSERT INTO tenants (id, settings, deleted, created_at, updated_at) \
                     VALUES (?1, '{}', 1, ?2, ?2) ON CONFLICT(id) DO UPDATE SET \
                     settings = '{}', suspended = 0, deleted = 1, updated_at = ?2",
                )?
                .execute(params![tenant, now])?;
                Ok(DeletedTenant {
                    messages: messages as u64,
                    queued,
                    inbound: inbound as u64,
                    webhooks: webhooks as u64,
                })
            },
            done,
        ));
    }

    /// Writes for `tenant` are accepted again (it is being created).
    fn reopen(&self, tenant: &str) {
        self.inner
            .closed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }

    /// Whether writes for `tenant` are refused (it is being, or was,
    /// deleted).
    pub(super) fn closed_check(
        closed: &std::sync::RwLock<std::collections::HashSet<String>>,
        tenant: &str,
    ) -> Result<(), StoreError> {
        let closed = closed.read().unwrap_or_else(|e| e.into_inner());
        if !closed.is_empty() && closed.contains(tenant) {
            return Err(StoreError::TenantClosed(tenant.to_owned()));
        }
        Ok(())
    }
}

/// Inserts or replaces a tenant's row (see [`Store::put_tenant`]).
fn upsert_tenant(conn: &rusqlite::Connection, row: &TenantRow, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO tenants (id, settings, suspended, deleted, seed_digest, \
         created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5) \
         ON CONFLICT(id) DO UPDATE SET settings = excluded.settings, \
         suspended = excluded.suspended, deleted = 0, \
         seed_digest = COALESCE(excluded.seed_digest, seed_digest), \
         created_at = CASE WHEN deleted = 1 THEN excluded.created_at \
         ELSE created_at END, updated_at = excluded.updated_at",
    )?
    .execute(params![
        row.id,
        row.settings,
        row.suspended,
        row.seed_digest.as_ref().map(|d| &d[..]),
        now
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NewMessage;
    use crate::StoreOptions;

    fn wait<T: Send + 'static>(f: impl FnOnce(Done<T>)) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        f(Box::new(move |r| drop(tx.send(r))));
        rx.recv().unwrap()
    }

    fn message(tenant: &str) -> NewMessage {
        NewMessage::new(tenant, "S", "D", "hi")
    }

    fn row(id: &str, settings: &str) -> TenantRow {
        TenantRow {
            id: id.into(),
            settings: settings.into(),
            suspended: false,
            deleted: false,
            seed_digest: None,
        }
    }

    #[test]
    fn a_deleted_tenant_leaves_a_tombstone_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db"), StoreOptions::default()).unwrap();
        wait(|d| store.put_tenant(row("a", r#"{"x":1}"#), d)).unwrap();
        wait(|d| store.put_tenant(row("b", "{}"), d)).unwrap();
        for tenant in ["a", "a", "b"] {
            wait(|d| store.insert_message(message(tenant), d)).unwrap();
        }
        wait(|d| store.top_up("a", 5, d)).unwrap();
        let gone = wait(|d| store.delete_tenant("a", d)).unwrap();
        assert_eq!((gone.messages, gone.queued), (2, 2));
        assert_eq!(store.queued_count("a"), 0);
        assert_eq!(store.queued_count("b"), 1);
        assert!(store.balance("a").unwrap().is_none());
        let rows = store.tenant_rows().unwrap();
        assert!(rows[0].deleted && rows[0].settings == "{}");
        assert!(!rows[1].deleted);
    }

    #[test]
    fn writes_for_a_deleted_tenant_are_refused_until_it_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db"), StoreOptions::default()).unwrap();
        wait(|d| store.put_tenant(row("a", "{}"), d)).unwrap();
        wait(|d| store.delete_tenant("a", d)).unwrap();
        let refused = wait(|d| store.insert_message(message("a"), d)).unwrap_err();
        assert!(
            matches!(refused, StoreError::TenantClosed(_)),
            "{refused:?}"
        );
        // A session still unbinding cannot leave a receipt or an MO behind.
        let receipt = crate::types::Receipt {
            tenant: "a".into(),
            channel: "c".into(),
            smsc_message_id: "1".into(),
            status: crate::types::MessageStatus::Delivered,
            error: None,
        };
        let refused = wait(|d| store.apply_receipt(receipt, d)).unwrap_err();
        assert!(
            matches!(refused, StoreError::TenantClosed(_)),
            "{refused:?}"
        );
        let mo = crate::types::NewInbound {
            tenant: "a".into(),
            channel: "c".into(),
            source: "1".into(),
            destination: "2".into(),
            text: "late".into(),
        };
        let refused = wait(|d| store.insert_inbound(mo, d)).unwrap_err();
        assert!(
            matches!(refused, StoreError::TenantClosed(_)),
            "{refused:?}"
        );
        wait(|d| store.put_tenant(row("a", "{}"), d)).unwrap();
        wait(|d| store.insert_message(message("a"), d)).unwrap();
        assert_eq!(store.queued_count("a"), 1);
    }

    #[test]
    fn a_put_without_a_digest_keeps_the_seed_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db"), StoreOptions::default()).unwrap();
        let seeded = TenantRow {
            seed_digest: Some([7; 32]),
            ..row("a", "{}")
        };
        wait(|d| store.put_tenant(seeded, d)).unwrap();
        let changed = TenantRow {
            suspended: true,
            ..row("a", r#"{"y":2}"#)
        };
        wait(|d| store.put_tenant(changed, d)).unwrap();
        let rows = store.tenant_rows().unwrap();
        assert_eq!(rows[0].seed_digest, Some([7; 32]));
        assert!(rows[0].suspended);
        assert_eq!(rows[0].settings, r#"{"y":2}"#);
    }

    #[test]
    fn a_tenant_is_not_created_with_a_key_ever_issued_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db"), StoreOptions::default()).unwrap();
        wait(|d| store.create_tenant(row("a", "{}"), [1; 32], d)).unwrap();
        // Revoked by a rotation, the old key still counts as issued.
        wait(|d| store.rotate_api_key("a", [2; 32], 0, d)).unwrap();
        let refused = wait(|d| store.create_tenant(row("b", "{}"), [1; 32], d)).unwrap_err();
        assert!(matches!(refused, StoreError::KeyInUse), "{refused:?}");
        let ids: Vec<String> = store
            .tenant_rows()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a"], "nothing of b was written");
        wait(|d| store.create_tenant(row("b", "{}"), [3; 32], d)).unwrap();
    }
}
