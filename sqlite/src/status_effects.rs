//! What a message's status change sets off: its reserved credit is
//! captured or released, and a final status is queued for its webhook.
//!
//! Schemas 3 to 18 did this with three `AFTER UPDATE OF status` triggers
//! on `messages`. A trigger costs SQLite a sub-program with its own frame
//! of registers every time it fires, whether its `WHEN` holds or not: every
//! submit and every receipt paid about 1.9 µs of the writer's ~13 µs for
//! them (measured with and without them in one build), and the single
//! writer is what limits the engine. Schema 19 drops them. The statements
//! that change a status (all in `store.rs`, all on the writer thread) call
//! [`left_queue`] and [`changed`] instead, in the same transaction, so the
//! effects commit or roll back with the change as the triggers' did. The
//! conditions are the triggers':
//!
//! - **Capture / release** (`messages_charge_capture`, `…_release`): a row
//!   whose charge is `reserved` leaves `queued`. It is released if it
//!   became `failed` or `expired`, captured otherwise. Only `queued` rows
//!   are ever `reserved` (the insert reserves, leaving `queued` moves it),
//!   and only `mark_submitted` and `mark_final` take a row out of `queued`.
//! - **Webhook** (`messages_webhook`): a row's status changes to a final
//!   one. Its event goes to its `callback_url`, else to its tenant's
//!   `webhook_url`; with neither, nothing is queued.
//!
//! Most tenants have no credit control and no webhook, and for them this
//! runs no statement at all: the writer keeps the tenants that may need
//! one ([`Tenants`]): those with a credit account, and those with a
//! webhook URL or a message with its own `callback_url` (kept in
//! `callback_tenants`, so that it survives a restart). Those sets only
//! grow while the process runs (a superset costs a statement that finds
//! nothing), so a rollback never has to undo them.

use std::cell::RefCell;
use std::collections::HashSet;

use crate::tx::Tx;
use rusqlite::{params, Connection, OptionalExtension};

use crate::types::MessageStatus;
use crate::StoreError;

/// The tenants whose status changes may have effects, read at open.
#[derive(Debug, Default)]
pub(crate) struct Tenants {
    /// With a credit account: their messages may hold a reserved charge.
    charged: HashSet<String>,
    /// With a webhook URL, or with a message that has its own
    /// `callback_url`: their final statuses may be posted.
    posting: HashSet<String>,
}

/// Reads [`Tenants`] from the database.
pub(crate) fn tenants(conn: &Connection) -> Result<Tenants, StoreError> {
    let read = |sql: &str| -> Result<HashSet<String>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let set = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(set)
    };
    Ok(Tenants {
        charged: read("SELECT tenant FROM accounts")?,
        posting: read(
            "SELECT tenant FROM tenant_webhooks UNION SELECT tenant FROM callback_tenants",
        )?,
    })
}

thread_local! {
    static TENANTS: RefCell<Tenants> = RefCell::new(Tenants::default());
}

/// Makes this thread (the writer) the keeper of `tenants`.
pub(crate) fn keep(tenants: Tenants) {
    TENANTS.with(|kept| *kept.borrow_mut() = tenants);
}

/// Adds `tenant` to one of the kept sets (allocating only if it is new).
fn grow(tenant: &str, set: fn(&mut Tenants) -> &mut HashSet<String>) {
    TENANTS.with(|kept| {
        let mut kept = kept.borrow_mut();
        let set = set(&mut kept);
        if !set.contains(tenant) {
            set.insert(tenant.to_owned());
        }
    });
}

/// The tenant has (or is getting) a credit account.
pub(crate) fn may_charge(tenant: &str) {
    grow(tenant, |kept| &mut kept.charged);
}

/// The tenant has (or is getting) a webhook URL.
pub(crate) fn may_post(tenant: &str) {
    grow(tenant, |kept| &mut kept.posting);
}

/// A message with its own `callback_url` is being inserted: its tenant's
/// final statuses may be posted, now and after a restart.
pub(crate) fn has_callback(conn: &Tx<'_>, tenant: &str) -> Result<(), StoreError> {
    conn.cached("INSERT OR IGNORE INTO callback_tenants (tenant) VALUES (?1)")?
        .execute(params![tenant])?;
    may_post(tenant);
    Ok(())
}

/// Whether the tenant's final statuses may be posted ([`changed`] does
/// nothing otherwise): callers that must read a message's status before
/// changing it only for [`changed`] ask this first.
pub(crate) fn posts(tenant: &str) -> bool {
    TENANTS.with(|kept| kept.borrow().posting.contains(tenant))
}

/// Message `id` of `tenant` left `queued` for `to`: a reserved charge is
/// captured, or released if `to` is `failed` or `expired`.
pub(crate) fn left_queue(
    conn: &Connection,
    id: i64,
    tenant: &str,
    to: MessageStatus,
) -> Result<(), StoreError> {
    if !TENANTS.with(|kept| kept.borrow().charged.contains(tenant)) {
        return Ok(());
    }
    let reserved: Option<i64> = conn
        .prepare_cached(
            "SELECT charge FROM messages WHERE id = ?1 AND charge_state = 'reserved' \
             AND charge IS NOT NULL",
        )?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    let Some(charge) = reserved else {
        return Ok(());
    };
    let (account, state) = if matches!(to, MessageStatus::Failed | MessageStatus::Expired) {
        (
            "UPDATE accounts SET reserved = reserved - ?2, available = available + ?2 \
             WHERE tenant = ?1",
            "released",
        )
    } else {
        (
            "UPDATE accounts SET reserved = reserved - ?2, spent = spent + ?2 WHERE tenant = ?1",
            "captured",
        )
    };
    conn.prepare_cached(account)?
        .execute(params![tenant, charge])?;
    conn.prepare_cached("UPDATE OR FAIL messages SET charge_state = ?2 WHERE id = ?1")?
        .execute(params![id, state])?;
    Ok(())
}

/// Message `id` of `tenant` went from `from` to `to` (its row already
/// says `to`): a final `to` different from `from` is queued for the
/// message's `callback_url` or its tenant's webhook.
pub(crate) fn changed(
    conn: &Tx<'_>,
    id: i64,
    tenant: &str,
    from: MessageStatus,
    to: MessageStatus,
) -> Result<(), StoreError> {
    if from == to || !to.is_terminal() || !posts(tenant) {
        return Ok(());
    }
    conn.cached(
        "INSERT INTO webhook_outbox (tenant, url, kind, ref_id, status, error_code, error_name, \
         created_at, next_attempt_at) \
         SELECT tenant, url, 'status', id, status, error_code, error_name, updated_at, updated_at \
         FROM (SELECT tenant, id, status, error_code, error_name, updated_at, \
                      COALESCE(callback_url, \
                               (SELECT url FROM tenant_webhooks w WHERE w.tenant = m.tenant)) AS url \
               FROM messages m WHERE id = ?1) \
         WHERE url IS NOT NULL",
    )?
    .execute(params![id])?;
    Ok(())
}
