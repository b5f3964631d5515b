//! End-to-end tests of `Store` on real database files in temp directories.

use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use smppd_sqlite::{
    Balance, Done, ErrorInfo, MessageFilter, MessageId, MessageStatus, NewInbound, NewMessage,
    Priority, Pruned, QueuedMessage, Receipt, ReceiptMatch, Store, StoreError, StoreOptions,
    Synchronous,
};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path().join("smppd.db"), StoreOptions::default()).unwrap()
}

/// Runs a write and waits for its completion.
fn wait<T: Send + 'static>(write: impl FnOnce(Done<T>)) -> Result<T, StoreError> {
    let (tx, rx) = mpsc::channel();
    write(Box::new(move |result| tx.send(result).unwrap()));
    rx.recv().unwrap()
}

fn message(tenant: &str, text: &str) -> NewMessage {
    NewMessage::new(tenant, "ACME", "+4915112345678", text)
}

fn insert(store: &Store, tenant: &str, text: &str) -> MessageId {
    wait(|done| store.insert_message(message(tenant, text), done)).unwrap()
}

fn submit(
    store: &Store,
    tenant: &str,
    id: MessageId,
    channel: &str,
    smsc_id: &str,
) -> Option<MessageStatus> {
    wait(|done| store.mark_submitted(tenant, id, channel, smsc_id, done)).unwrap()
}

fn receipt(tenant: &str, channel: &str, smsc_id: &str, status: MessageStatus) -> Receipt {
    Receipt {
        tenant: tenant.into(),
        channel: channel.into(),
        smsc_message_id: smsc_id.into(),
        status,
        error: None,
    }
}

fn apply(store: &Store, r: Receipt) -> ReceiptMatch {
    wait(|done| store.apply_receipt(r, done)).unwrap()
}

fn status(store: &Store, tenant: &str, id: MessageId) -> MessageStatus {
    store.get_message(tenant, id).unwrap().unwrap().status
}

fn pending_receipts(dir: &TempDir) -> i64 {
    let conn = rusqlite::Connection::open(dir.path().join("smppd.db")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM pending_receipts", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn the_store_handle_is_clone_send_and_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Store>();
}

#[test]
fn a_message_is_readable_after_insert_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before = now_ms();
    let m = message("acme", "hello ünïcode ✓");
    let id = wait(|done| store.insert_message(m.clone(), done)).unwrap();

    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.id, id);
    assert_eq!(got.tenant, "acme");
    assert_eq!(*got.source, *m.source);
    assert_eq!(*got.destination, *m.destination);
    assert_eq!(*got.text, *m.text);
    assert_eq!(got.status, MessageStatus::Queued);
    assert_eq!(got.channel, None);
    assert_eq!(got.smsc_message_id, None);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.error, None);
    assert!(got.created_at_ms >= before && got.created_at_ms <= now_ms());
    assert_eq!(got.updated_at_ms, got.created_at_ms);
    assert_eq!(got.submitted_at_ms, None);
    assert_eq!(got.done_at_ms, None);
}

#[test]
fn another_tenant_cannot_read_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "secret");
    assert_eq!(store.get_message("globex", id).unwrap(), None);
    assert_eq!(
        store
            .get_message("acme", MessageId(id.as_i64() + 1))
            .unwrap(),
        None
    );
}

#[test]
fn another_tenant_cannot_mark_a_message_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    assert_eq!(submit(&store, "globex", id, "smsc-a", "abc123"), None);
    let untouched = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(untouched.status, MessageStatus::Queued);
    assert_eq!(untouched.smsc_message_id, None);
    assert_eq!(untouched.attempts, 0);
}

#[test]
fn a_status_change_that_fails_after_writing_its_row_is_undone_whole() {
    // Status updates run without a statement journal (`UPDATE OR FAIL`),
    // so SQLite leaves a failing one's row written: the writer must notice
    // and undo it.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let other = insert(&store, "acme", "there");
    rusqlite::Connection::open(dir.path().join("smppd.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_boom AFTER UPDATE OF status ON messages
                 WHEN NEW.smsc_message_id = 'boom'
             BEGIN SELECT RAISE(FAIL, 'refused by the test'); END;",
        )
        .unwrap();
    let refused = wait(|done| store.mark_submitted("acme", id, "smsc-a", "boom", done));
    assert!(refused.is_err(), "{refused:?}");
    let untouched = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(untouched.status, MessageStatus::Queued);
    assert_eq!(untouched.smsc_message_id, None);
    assert_eq!(untouched.attempts, 0);
    assert_eq!(store.queued_count("acme"), 2, "the counter undone too");
    // The store goes on: the next status change commits.
    assert_eq!(submit(&store, "acme", other, "smsc-a", "fine"), None);
    assert_eq!(status(&store, "acme", other), MessageStatus::Submitted);
    assert_eq!(store.queued_count("acme"), 1);
}

#[test]
fn an_insert_that_fails_after_writing_its_row_is_undone_whole() {
    // The charge is reserved by its own statement before the row is
    // written, so a failing insert leaves a change behind: the writer must
    // undo it with the row and the queued counter its trigger raised.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 100, done)).unwrap();
    let charged = |text: &str| NewMessage {
        charge: Some(30),
        ..message("acme", text)
    };
    let kept = insert_with(&store, charged("kept")).unwrap();
    rusqlite::Connection::open(dir.path().join("smppd.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_boom AFTER INSERT ON messages WHEN NEW.body = 'boom'
             BEGIN SELECT RAISE(FAIL, 'refused by the test'); END;",
        )
        .unwrap();
    let refused = insert_with(&store, charged("boom"));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(store.queued_count("acme"), 1);
    assert_eq!(
        store.balance("acme").unwrap(),
        Some(Balance {
            available: 70,
            reserved: 30,
            spent: 0
        })
    );
    let rows: i64 = rusqlite::Connection::open(dir.path().join("smppd.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    // The next insert commits, for a tenant with a counter row and for one
    // without.
    let next = insert_with(&store, charged("next")).unwrap();
    assert!(next.as_i64() > kept.as_i64());
    insert(&store, "globex", "first of its tenant");
    assert_eq!(store.queued_count("acme"), 2);
    assert_eq!(store.queued_count("globex"), 1);
}

#[test]
fn a_submitted_message_is_delivered_by_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    assert_eq!(submit(&store, "acme", id, "smsc-a", "abc123"), None);

    let submitted = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(submitted.status, MessageStatus::Submitted);
    assert_eq!(submitted.channel.as_deref(), Some("smsc-a"));
    assert_eq!(submitted.smsc_message_id.as_deref(), Some("abc123"));
    assert_eq!(submitted.attempts, 1);
    assert!(submitted.submitted_at_ms.is_some());
    assert_eq!(submitted.done_at_ms, None);

    let r = receipt("acme", "smsc-a", "abc123", MessageStatus::Delivered);
    assert!(matches!(apply(&store, r), ReceiptMatch::Matched { id: m, .. } if m == id));
    let delivered = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(delivered.status, MessageStatus::Delivered);
    assert!(delivered.done_at_ms.is_some());
    assert_eq!(delivered.attempts, 1);
}

#[test]
fn a_receipt_that_overtakes_its_submit_response_is_applied_by_mark_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let early = Receipt {
        error: Some(ErrorInfo {
            code: 0,
            name: "none".into(),
        }),
        ..receipt("acme", "smsc-a", "abc123", MessageStatus::Delivered)
    };
    assert_eq!(apply(&store, early), ReceiptMatch::Parked);
    assert_eq!(status(&store, "acme", id), MessageStatus::Queued);
    assert_eq!(pending_receipts(&dir), 1);

    assert_eq!(
        submit(&store, "acme", id, "smsc-a", "abc123"),
        Some(MessageStatus::Delivered)
    );
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.status, MessageStatus::Delivered);
    assert_eq!(
        got.error,
        Some(ErrorInfo {
            code: 0,
            name: "none".into()
        })
    );
    assert!(got.done_at_ms.is_some());
    assert_eq!(got.attempts, 1);
    assert_eq!(pending_receipts(&dir), 0, "an applied receipt is removed");
}

#[test]
fn a_receipt_parked_before_a_restart_is_applied_by_the_submit_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let early = receipt("acme", "smsc-a", "abc123", MessageStatus::Delivered);
    assert_eq!(apply(&store, early), ReceiptMatch::Parked);
    drop(store);
    let store = open(&dir);
    assert_eq!(
        submit(&store, "acme", id, "smsc-a", "abc123"),
        Some(MessageStatus::Delivered)
    );
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    assert_eq!(pending_receipts(&dir), 0);
}

#[test]
fn a_receipt_for_an_unknown_smsc_id_is_parked_and_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let queued = insert(&store, "acme", "q");
    let sent = insert(&store, "acme", "s");
    submit(&store, "acme", sent, "smsc-a", "known");
    let before: Vec<_> = [queued, sent]
        .iter()
        .map(|&id| store.get_message("acme", id).unwrap().unwrap())
        .collect();

    let r = receipt("acme", "smsc-a", "nobody", MessageStatus::Undeliverable);
    assert_eq!(apply(&store, r), ReceiptMatch::Parked);

    let after: Vec<_> = [queued, sent]
        .iter()
        .map(|&id| store.get_message("acme", id).unwrap().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(pending_receipts(&dir), 1);
}

#[test]
fn receipts_are_scoped_by_tenant_and_channel() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let acme = insert(&store, "acme", "a");
    let globex = insert(&store, "globex", "g");
    submit(&store, "acme", acme, "smsc-a", "same-id");
    submit(&store, "globex", globex, "smsc-a", "same-id");

    let r = receipt("globex", "smsc-a", "same-id", MessageStatus::Delivered);
    assert!(matches!(apply(&store, r), ReceiptMatch::Matched { id: m, .. } if m == globex));
    assert_eq!(status(&store, "acme", acme), MessageStatus::Submitted);

    let other_channel = receipt("acme", "smsc-b", "same-id", MessageStatus::Delivered);
    assert_eq!(apply(&store, other_channel), ReceiptMatch::Parked);
    assert_eq!(status(&store, "acme", acme), MessageStatus::Submitted);

    // A receipt parked for one tenant is not picked up by another's submission.
    let parked = receipt("initech", "smsc-a", "shared", MessageStatus::Rejected);
    assert_eq!(apply(&store, parked), ReceiptMatch::Parked);
    let third = insert(&store, "acme", "c");
    assert_eq!(submit(&store, "acme", third, "smsc-a", "shared"), None);
    assert_eq!(status(&store, "acme", third), MessageStatus::Submitted);
}

/// Which messages the durable SMSC-id index holds for `smsc_id`.
fn indexed_by_smsc_id(dir: &TempDir, smsc_id: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(dir.path().join("smppd.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM messages WHERE smsc_lookup_id = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([smsc_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn open_with_receipt_cache(dir: &TempDir, receipt_cache: usize) -> Store {
    let options = StoreOptions {
        receipt_cache,
        ..StoreOptions::default()
    };
    Store::open(dir.path().join("smppd.db"), options).unwrap()
}

#[test]
fn a_receipt_that_comes_while_its_submit_is_remembered_needs_no_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "smsc-a", "3f1c-uuid");
    let delivered = receipt("acme", "smsc-a", "3f1c-uuid", MessageStatus::Delivered);
    assert!(matches!(apply(&store, delivered), ReceiptMatch::Matched { id: m, .. } if m == id));
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    assert!(indexed_by_smsc_id(&dir, "3f1c-uuid").is_empty());
}

#[test]
fn a_submit_pushed_out_of_the_receipt_cache_is_still_matched_by_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_receipt_cache(&dir, 2);
    let ids: Vec<MessageId> = (0..4)
        .map(|i| {
            let id = insert(&store, "acme", &i.to_string());
            submit(&store, "acme", id, "smsc-a", &format!("s{i}"));
            id
        })
        .collect();
    // The two oldest left the cache awaiting their receipts: indexed.
    assert_eq!(store.stats().receipts_indexed, 2);
    assert_eq!(indexed_by_smsc_id(&dir, "s0"), [ids[0].as_i64()]);
    assert_eq!(indexed_by_smsc_id(&dir, "s1"), [ids[1].as_i64()]);
    assert!(indexed_by_smsc_id(&dir, "s3").is_empty());
    for (i, id) in ids.iter().enumerate() {
        let delivered = receipt("acme", "smsc-a", &format!("s{i}"), MessageStatus::Delivered);
        assert!(
            matches!(apply(&store, delivered), ReceiptMatch::Matched { id: m, .. } if m == *id),
            "receipt {i}"
        );
        assert_eq!(status(&store, "acme", *id), MessageStatus::Delivered);
    }
    assert_eq!(pending_receipts(&dir), 0);
}

#[test]
fn a_receipt_after_a_restart_finds_the_message_submitted_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "smsc-a", "before-restart");
    store.close();
    drop(store);
    let store = open(&dir);
    let delivered = receipt("acme", "smsc-a", "before-restart", MessageStatus::Delivered);
    assert!(matches!(apply(&store, delivered), ReceiptMatch::Matched { id: m, .. } if m == id));
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    // Scoping holds for indexed messages too.
    let other = receipt(
        "globex",
        "smsc-a",
        "before-restart",
        MessageStatus::Undeliverable,
    );
    assert_eq!(apply(&store, other), ReceiptMatch::Parked);
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
}

#[test]
fn a_repeated_receipt_is_idempotent_and_the_last_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "smsc-a", "x1");
    let delivered = receipt("acme", "smsc-a", "x1", MessageStatus::Delivered);
    assert!(
        matches!(apply(&store, delivered.clone()), ReceiptMatch::Matched { id: m, .. } if m == id)
    );
    assert!(matches!(apply(&store, delivered), ReceiptMatch::Matched { id: m, .. } if m == id));
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);

    let undeliverable = Receipt {
        error: Some(ErrorInfo {
            code: 0x0b,
            name: "ESME_RINVDSTADR".into(),
        }),
        ..receipt("acme", "smsc-a", "x1", MessageStatus::Undeliverable)
    };
    assert!(matches!(apply(&store, undeliverable), ReceiptMatch::Matched { id: m, .. } if m == id));
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.status, MessageStatus::Undeliverable);
    assert_eq!(got.error.unwrap().code, 0x0b);
    assert_eq!(pending_receipts(&dir), 0);
}

#[test]
fn a_late_intermediate_receipt_does_not_undo_a_final_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "smsc-a", "x1");
    apply(
        &store,
        receipt("acme", "smsc-a", "x1", MessageStatus::Delivered),
    );
    let enroute = receipt("acme", "smsc-a", "x1", MessageStatus::Submitted);
    assert!(matches!(apply(&store, enroute), ReceiptMatch::Matched { id: m, .. } if m == id));
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.status, MessageStatus::Delivered);
    assert!(got.done_at_ms.is_some());
}

#[test]
fn a_receipt_never_touches_a_queued_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "smsc-a", "x1");
    wait(|done| store.mark_retry(id, None, done)).unwrap();
    let r = receipt("acme", "smsc-a", "x1", MessageStatus::Delivered);
    assert_eq!(apply(&store, r), ReceiptMatch::Parked);
    assert_eq!(status(&store, "acme", id), MessageStatus::Queued);
}

#[test]
fn a_retry_keeps_the_message_queued_and_counts_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let throttled = ErrorInfo {
        code: 0x58,
        name: "ESME_RTHROTTLED".into(),
    };
    wait(|done| store.mark_retry(id, Some(throttled.clone()), done)).unwrap();
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.status, MessageStatus::Queued);
    assert_eq!(got.attempts, 1);
    assert_eq!(got.error, Some(throttled));
    assert_eq!(got.done_at_ms, None);

    // A later successful submission clears the error and counts again.
    submit(&store, "acme", id, "smsc-a", "x1");
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(
        (got.status, got.attempts, got.error),
        (MessageStatus::Submitted, 2, None)
    );
}

#[test]
fn a_final_failure_is_terminal_with_its_error_code_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let invalid = ErrorInfo {
        code: 0x0b,
        name: "ESME_RINVDSTADR".into(),
    };
    wait(|done| store.mark_final(id, MessageStatus::Failed, Some(invalid.clone()), true, done))
        .unwrap();
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(got.status, MessageStatus::Failed);
    assert!(got.status.is_terminal());
    assert_eq!(got.error, Some(invalid));
    assert_eq!(got.attempts, 1);
    assert!(got.done_at_ms.is_some());

    // Terminal means terminal: neither a submission nor a retry revives it.
    assert_eq!(submit(&store, "acme", id, "smsc-a", "late"), None);
    wait(|done| store.mark_retry(id, None, done)).unwrap();
    let again = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(again, got);
}

#[test]
fn an_expiry_that_does_not_count_an_attempt_leaves_attempts_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    wait(|done| store.mark_final(id, MessageStatus::Expired, None, false, done)).unwrap();
    let got = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(
        (got.status, got.attempts, got.error),
        (MessageStatus::Expired, 0, None)
    );
}

#[test]
fn queued_messages_paginates_only_the_tenants_queued_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut expected = Vec::new();
    for i in 0..7 {
        let id = insert(&store, "acme", &format!("m{i}"));
        insert(&store, "globex", "not mine");
        if i == 3 {
            submit(&store, "acme", id, "smsc-a", "sent");
        } else {
            expected.push(id);
        }
    }

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .queued_messages("acme", Priority::Normal, after, 2)
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|q| q.id));
    }
    assert_eq!(seen, expected, "oldest first, no gaps, no repeats");

    let first = &store
        .queued_messages("acme", Priority::Normal, None, 1)
        .unwrap()[0];
    assert_eq!(
        *first,
        QueuedMessage {
            id: expected[0],
            source: "ACME".into(),
            destination: "+4915112345678".into(),
            text: "m0".into(),
            attempts: 0,
            parts: 1,
            data_coding: None,
            priority: Priority::Normal,
            validity_until_ms: None,
            send_at_ms: None,
        }
    );
    assert!(store
        .queued_messages("acme", Priority::Normal, None, 0)
        .unwrap()
        .is_empty());
    assert!(store
        .queued_messages("nobody", Priority::Normal, None, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn tenants_with_queued_lists_only_tenants_with_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    insert(&store, "zeta", "z");
    insert(&store, "acme", "a");
    let done = insert(&store, "globex", "g");
    wait(|d| store.mark_final(done, MessageStatus::Failed, None, false, d)).unwrap();
    assert_eq!(store.tenants_with_queued(), ["acme", "zeta"]);
}

#[test]
fn count_by_status_counts_each_status_of_one_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for _ in 0..3 {
        insert(&store, "acme", "q");
    }
    let sent = insert(&store, "acme", "s");
    submit(&store, "acme", sent, "smsc-a", "1");
    insert(&store, "globex", "other");
    let counts = store.count_by_status("acme").unwrap();
    assert_eq!(counts.get(&MessageStatus::Queued), Some(&3));
    assert_eq!(counts.get(&MessageStatus::Submitted), Some(&1));
    assert_eq!(counts.len(), 2);
}

#[test]
fn ids_increase_in_the_order_inserts_complete_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let completed = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (store, completed) = (store.clone(), Arc::clone(&completed));
            thread::spawn(move || {
                let (tx, rx) = mpsc::channel();
                for i in 0..2_000 {
                    let (completed, tx) = (Arc::clone(&completed), tx.clone());
                    store.insert_message(
                        message("acme", &format!("{t}-{i}")),
                        Box::new(move |res| {
                            // Runs on the writer thread, in completion order.
                            completed.lock().unwrap().push(res.unwrap());
                            tx.send(()).unwrap();
                        }),
                    );
                }
                drop(tx);
                rx.iter().count()
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(done, 8_000);
    let ids = completed.lock().unwrap();
    assert!(ids.iter().all(|id| id.as_i64() > 0));
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "completions arrive in strictly increasing id order"
    );
}

#[test]
fn ids_keep_increasing_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    insert(&store, "acme", "now");
    store.close();
    drop(store);
    // An id far in the future stands in for a clock that went back meanwhile.
    let future = (now_ms() + 86_400_000) << 16;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO messages (id, tenant, source, destination, body, status, created_at, updated_at) \
         VALUES (?1, 'acme', 'a', 'b', 'from the future', 'queued', 0, 0)",
        [future],
    )
    .unwrap();
    drop(conn);

    let reopened = Store::open(&path, StoreOptions::default()).unwrap();
    let next = insert(&reopened, "acme", "after reopen");
    assert_eq!(next, MessageId(future + 1));
}

#[test]
fn an_inbound_message_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = wait(|done| {
        store.insert_inbound(
            NewInbound {
                tenant: "acme".into(),
                channel: "smsc-a".into(),
                source: "4915112345678".into(),
                destination: "12345".into(),
                text: "STOP".into(),
            },
            done,
        )
    })
    .unwrap();
    assert!(id > 0);
}

#[test]
fn committed_writes_from_many_threads_survive_dropping_the_store_without_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                (0..250)
                    .map(|i| insert(&store, &format!("tenant{t}"), &format!("{i}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<Vec<MessageId>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    drop(store);

    let reopened = Store::open(&path, StoreOptions::default()).unwrap();
    for (t, ids) in ids.iter().enumerate() {
        let tenant = format!("tenant{t}");
        assert_eq!(
            reopened.count_by_status(&tenant).unwrap()[&MessageStatus::Queued],
            250
        );
        for id in ids {
            assert!(reopened.get_message(&tenant, *id).unwrap().is_some());
        }
    }
}

#[test]
fn writes_still_queued_when_the_last_handle_drops_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    for i in 0..1_000 {
        store.insert_message(
            message("acme", &i.to_string()),
            Box::new(|r| {
                r.unwrap();
            }),
        );
    }
    drop(store);
    let reopened = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(
        reopened.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        1_000
    );
}

#[test]
fn ten_thousand_inserts_commit_in_far_fewer_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        synchronous: Synchronous::Full,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path().join("smppd.db"), options).unwrap();
    let before = store.stats();
    let (tx, rx) = mpsc::channel();
    for i in 0..10_000 {
        let tx = tx.clone();
        let m = message("acme", &i.to_string());
        store.insert_message(m, Box::new(move |r| tx.send(r.is_ok()).unwrap()));
    }
    drop(tx);
    assert_eq!(rx.iter().filter(|ok| *ok).count(), 10_000);
    let stats = store.stats();
    let transactions = stats.transactions - before.transactions;
    assert_eq!(stats.ops - before.ops, 10_000);
    assert!(
        transactions <= 10_000 / 20,
        "{transactions} transactions for 10,000 inserts"
    );
    // max_batch 512 bounds each transaction.
    assert!(transactions >= 10_000 / 512);
}

#[test]
fn flush_waits_for_earlier_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ids = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100 {
        let ids = Arc::clone(&ids);
        store.insert_message(
            message("acme", &i.to_string()),
            Box::new(move |r| ids.lock().unwrap().push(r.unwrap())),
        );
    }
    store.flush().unwrap();
    let ids = ids.lock().unwrap();
    assert_eq!(
        ids.len(),
        100,
        "every insert completed before flush returned"
    );
    for id in ids.iter() {
        assert!(store.get_message("acme", *id).unwrap().is_some());
    }
}

#[test]
fn writes_after_close_fail_with_writer_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "before");
    store.close();
    store.close();
    let late = wait(|done| store.insert_message(message("acme", "after"), done));
    assert!(matches!(late, Err(StoreError::WriterGone)), "{late:?}");
    assert!(matches!(store.flush(), Err(StoreError::WriterGone)));
    // Reads still work.
    assert!(store.get_message("acme", id).unwrap().is_some());
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.insert_message(
        message("acme", "a"),
        Box::new(|_| panic!("deliberate panic in a completion callback")),
    );
    let id = insert(&store, "acme", "b");
    assert!(store.get_message("acme", id).unwrap().is_some());
    assert_eq!(
        store.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        2
    );
}

#[test]
fn closing_or_dropping_the_store_inside_a_callback_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    let inside = store.clone();
    store.insert_message(
        message("acme", "a"),
        Box::new(move |r| {
            inside.close();
            // `inside` is the last handle by now: dropping it here runs the
            // store's Drop on the writer thread.
            drop(inside);
            tx.send(r.is_ok()).unwrap();
        }),
    );
    drop(store);
    assert!(rx.recv().unwrap());
    let reopened = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(
        reopened.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        1
    );
}

#[test]
fn opening_a_database_from_a_newer_build_fails_with_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smppd.db");
    drop(Store::open(&path, StoreOptions::default()).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Store::open(&path, StoreOptions::default()).err().unwrap();
    assert!(matches!(err, StoreError::Migration { .. }), "{err:?}");
    assert!(err.to_string().contains("999"), "{err}");
}

#[test]
fn opening_a_file_that_is_not_a_database_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not a database, just some text that is long enough ".repeat(20),
    )
    .unwrap();
    let err = Store::open(&path, StoreOptions::default()).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("notes.txt") && text.contains("not a database"),
        "{text}"
    );
}

#[test]
fn opening_in_a_missing_directory_fails_with_open() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path().join("no/such/dir/db"), StoreOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[test]
fn a_row_with_an_unknown_status_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    let other = insert(&store, "acme", "wrong type");
    let conn = rusqlite::Connection::open(dir.path().join("smppd.db")).unwrap();
    conn.execute(
        "UPDATE messages SET status = 'teleported' WHERE id = ?1",
        [id.as_i64()],
    )
    .unwrap();
    conn.execute(
        "UPDATE messages SET attempts = 'many' WHERE id = ?1",
        [other.as_i64()],
    )
    .unwrap();
    let err = store.get_message("acme", id).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store.get_message("acme", other).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(matches!(
        store.count_by_status("acme"),
        Err(StoreError::Corrupt(_))
    ));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---- priorities, quotas and credit (migration 3) ----

fn insert_with(store: &Store, m: NewMessage) -> Result<MessageId, StoreError> {
    wait(|done| store.insert_message(m, done))
}

#[test]
fn each_priority_lane_is_paged_separately() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let high = insert_with(
        &store,
        NewMessage {
            priority: Priority::High,
            ..message("acme", "otp")
        },
    )
    .unwrap();
    let normal = insert(&store, "acme", "hello");
    let bulk = insert_with(
        &store,
        NewMessage {
            priority: Priority::Bulk,
            ..message("acme", "promo")
        },
    )
    .unwrap();
    let lane = |p| store.queued_messages("acme", p, None, 10).unwrap();
    assert_eq!(
        lane(Priority::High)
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![high]
    );
    assert_eq!(
        lane(Priority::Normal)
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![normal]
    );
    assert_eq!(lane(Priority::Bulk)[0].id, bulk);
    assert_eq!(lane(Priority::Bulk)[0].priority, Priority::Bulk);
    assert_eq!(
        store.get_message("acme", high).unwrap().unwrap().priority,
        Priority::High
    );
}

#[test]
fn the_queued_count_follows_every_status_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = insert(&store, "acme", "a");
    let b = insert(&store, "acme", "b");
    let c = insert(&store, "acme", "c");
    assert_eq!(store.queued_count("acme"), 3);
    submit(&store, "acme", a, "ch", "x1");
    wait(|done| store.mark_retry(b, None, done)).unwrap();
    assert_eq!(store.queued_count("acme"), 2, "a retry stays queued");
    wait(|done| store.mark_final(c, MessageStatus::Failed, None, true, done)).unwrap();
    assert_eq!(store.queued_count("acme"), 1);
    assert_eq!(store.queued_count("other"), 0);
    wait(|done| store.mark_retry(a, None, done)).unwrap();
    assert_eq!(
        store.queued_count("acme"),
        2,
        "a submitted message put back in the queue counts again"
    );
    wait(|done| store.mark_final(a, MessageStatus::Expired, None, false, done)).unwrap();
    wait(|done| store.mark_final(a, MessageStatus::Failed, None, false, done)).unwrap();
    assert_eq!(
        store.queued_count("acme"),
        1,
        "a message leaves the count once, however often it is made final"
    );
}

#[test]
fn the_queued_count_is_counted_again_when_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let a = insert(&store, "acme", "a");
        insert(&store, "acme", "b");
        insert(&store, "globex", "c");
        submit(&store, "acme", a, "ch", "x1");
    }
    let store = open(&dir);
    assert_eq!(store.queued_count("acme"), 1);
    assert_eq!(store.queued_count("globex"), 1);
    let d = insert(&store, "acme", "d");
    submit(&store, "acme", d, "ch", "x2");
    insert(&store, "acme", "e");
    assert_eq!(store.queued_count("acme"), 2);
}

#[test]
fn a_full_queue_refuses_the_insert_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let capped = |text: &str| NewMessage {
        max_queued: Some(2),
        ..message("acme", text)
    };
    insert_with(&store, capped("1")).unwrap();
    insert_with(&store, capped("2")).unwrap();
    let third = insert_with(&store, capped("3"));
    assert!(
        matches!(third, Err(StoreError::QuotaExceeded { limit: 2 })),
        "{third:?}"
    );
    assert_eq!(
        store.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        2
    );
}

#[test]
fn a_charge_is_reserved_then_captured_on_submit_or_released_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 100, done)).unwrap();
    wait(|done| store.ensure_account("acme", 999, done)).unwrap();
    let charged = |text: &str| NewMessage {
        charge: Some(30),
        ..message("acme", text)
    };
    let a = insert_with(&store, charged("a")).unwrap();
    let b = insert_with(&store, charged("b")).unwrap();
    let c = insert_with(&store, charged("c")).unwrap();
    assert_eq!(
        store.balance("acme").unwrap(),
        Some(Balance {
            available: 10,
            reserved: 90,
            spent: 0
        })
    );
    let refused = insert_with(&store, charged("d"));
    assert!(
        matches!(
            refused,
            Err(StoreError::InsufficientCredit {
                available: 10,
                needed: 30
            })
        ),
        "{refused:?}"
    );

    submit(&store, "acme", a, "ch", "x1");
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Undeliverable),
    );
    wait(|done| store.mark_final(b, MessageStatus::Failed, None, true, done)).unwrap();
    wait(|done| store.mark_final(c, MessageStatus::Expired, None, false, done)).unwrap();
    assert_eq!(
        store.balance("acme").unwrap(),
        Some(Balance {
            available: 70,
            reserved: 0,
            spent: 30
        })
    );
    assert_eq!(
        store
            .get_message("acme", a)
            .unwrap()
            .unwrap()
            .charge_state
            .as_deref(),
        Some("captured")
    );
    assert_eq!(
        store
            .get_message("acme", b)
            .unwrap()
            .unwrap()
            .charge_state
            .as_deref(),
        Some("released")
    );
    // Final states never move money again.
    wait(|done| store.mark_final(a, MessageStatus::Failed, None, true, done)).unwrap();
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Delivered),
    );
    assert_eq!(
        store.balance("acme").unwrap(),
        Some(Balance {
            available: 70,
            reserved: 0,
            spent: 30
        })
    );
}

#[test]
fn a_receipt_that_overtook_its_submit_captures_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 100, done)).unwrap();
    let a = insert_with(
        &store,
        NewMessage {
            charge: Some(40),
            ..message("acme", "a")
        },
    )
    .unwrap();
    apply(
        &store,
        receipt("acme", "ch", "early", MessageStatus::Delivered),
    );
    assert_eq!(
        submit(&store, "acme", a, "ch", "early"),
        Some(MessageStatus::Delivered)
    );
    assert_eq!(
        store.balance("acme").unwrap(),
        Some(Balance {
            available: 60,
            reserved: 0,
            spent: 40
        })
    );
}

#[test]
fn concurrent_charges_never_overdraw_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 1_000, done)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                (0..50)
                    .filter(|i| {
                        let m = NewMessage {
                            charge: Some(7),
                            ..message("acme", &format!("{t}-{i}"))
                        };
                        insert_with(&store, m).is_ok()
                    })
                    .count()
            })
        })
        .collect();
    let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(accepted, 1_000 / 7, "exactly as many as the credit covers");
    let balance = store.balance("acme").unwrap().unwrap();
    assert_eq!(balance.available + balance.reserved, 1_000);
    assert_eq!(balance.reserved, 7 * accepted as i64);
}

#[test]
fn a_top_up_creates_or_raises_the_balance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.balance("acme").unwrap(), None);
    let b = wait(|done| store.top_up("acme", 500, done)).unwrap();
    assert_eq!(b.available, 500);
    let b = wait(|done| store.top_up("acme", 250, done)).unwrap();
    assert_eq!(b.available, 750);
}

// ---- batches and idempotency (migration 4) ----

fn key(k: &str, hash: &str) -> smppd_sqlite::Idempotency {
    smppd_sqlite::Idempotency {
        tenant: "acme".into(),
        key: k.into(),
        request_hash: hash.into(),
        render: Box::new(|results| (202, format!("{} results", results.len()))),
    }
}

#[test]
fn a_batch_is_inserted_in_order_and_a_refused_item_does_not_stop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 10, done)).unwrap();
    let priced = |text: &str, charge| NewMessage {
        charge: Some(charge),
        ..message("acme", text)
    };
    let batch = vec![priced("a", 4), priced("too dear", 50), priced("b", 4)];
    let outcome = wait(|done| store.insert_batch(batch, None, done)).unwrap();
    let smppd_sqlite::BatchOutcome::Fresh(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[1],
        Err(StoreError::InsufficientCredit { .. })
    ));
    assert!(results[0].as_ref().unwrap() < results[2].as_ref().unwrap());
    assert_eq!(
        store.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        2
    );
    assert_eq!(
        store.balance("acme").unwrap().unwrap().reserved,
        8,
        "the refused item reserved nothing"
    );
}

#[test]
fn a_repeated_idempotency_key_replays_the_answer_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first =
        wait(|done| store.insert_batch(vec![message("acme", "x")], Some(key("k1", "h1")), done))
            .unwrap();
    assert!(matches!(first, smppd_sqlite::BatchOutcome::Fresh(_)));
    let again =
        wait(|done| store.insert_batch(vec![message("acme", "x")], Some(key("k1", "h1")), done))
            .unwrap();
    match again {
        smppd_sqlite::BatchOutcome::Replayed { status, body } => {
            assert_eq!((status, body.as_str()), (202, "1 results"));
        }
        other => panic!("{other:?}"),
    }
    let other =
        wait(|done| store.insert_batch(vec![message("acme", "y")], Some(key("k1", "h2")), done))
            .unwrap();
    assert!(matches!(other, smppd_sqlite::BatchOutcome::KeyReused));
    assert_eq!(
        store.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        1
    );
}

#[test]
fn racing_requests_with_one_idempotency_key_create_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            thread::spawn(move || {
                wait(|done| {
                    store.insert_batch(vec![message("acme", "once")], Some(key("same", "h")), done)
                })
                .unwrap()
            })
        })
        .collect();
    let fresh = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|o| matches!(o, smppd_sqlite::BatchOutcome::Fresh(_)))
        .count();
    assert_eq!(fresh, 1);
    assert_eq!(
        store.count_by_status("acme").unwrap()[&MessageStatus::Queued],
        1
    );
}

#[test]
fn old_idempotency_keys_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.insert_batch(vec![message("acme", "x")], Some(key("k", "h")), done)).unwrap();
    assert_eq!(
        wait(|done| store.purge_idempotency_keys(0, done)).unwrap(),
        0
    );
    assert_eq!(
        wait(|done| store.purge_idempotency_keys(i64::MAX, done)).unwrap(),
        1
    );
    let again =
        wait(|done| store.insert_batch(vec![message("acme", "x")], Some(key("k", "h")), done))
            .unwrap();
    assert!(
        matches!(again, smppd_sqlite::BatchOutcome::Fresh(_)),
        "a purged key is new again"
    );
}

#[test]
fn the_client_reference_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert_with(
        &store,
        NewMessage {
            client_ref: Some("order-42".into()),
            ..message("acme", "x")
        },
    )
    .unwrap();
    assert_eq!(
        store
            .get_message("acme", id)
            .unwrap()
            .unwrap()
            .client_ref
            .as_deref(),
        Some("order-42")
    );
}

// ---- webhook outbox (migration 6) ----

fn claim(store: &Store) -> Vec<smppd_sqlite::WebhookDelivery> {
    wait(|done| store.claim_webhooks(60_000, 100, done)).unwrap()
}

#[test]
fn a_final_status_of_a_tenant_with_a_webhook_lands_in_the_outbox_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    let id = insert(&store, "acme", "a");
    let quiet = insert(&store, "other", "no webhook");
    submit(&store, "acme", id, "ch", "x1");
    submit(&store, "other", quiet, "ch", "x2");
    assert!(claim(&store).is_empty(), "submitted is not final");
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Delivered),
    );
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Delivered),
    );
    apply(
        &store,
        receipt("other", "ch", "x2", MessageStatus::Delivered),
    );
    let claimed = claim(&store);
    assert_eq!(
        claimed.len(),
        1,
        "one event, despite the repeated receipt: {claimed:?}"
    );
    assert_eq!(claimed[0].ref_id, id.as_i64());
    assert_eq!(claimed[0].status.as_deref(), Some("delivered"));
    assert_eq!(claimed[0].url, "http://hooks.example/acme");
    assert!(claim(&store).is_empty(), "leased, not claimed twice");
}

#[test]
fn every_final_status_and_no_other_puts_an_event_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    for (n, target) in MessageStatus::ALL.into_iter().enumerate() {
        let id = insert(&store, "acme", "a");
        let smsc_id = format!("s{n}");
        submit(&store, "acme", id, "ch", &smsc_id);
        if target != MessageStatus::Submitted {
            // A receipt saying `queued` is recorded as `submitted`; the
            // store's own retry path is what moves a message back to queued.
            match target {
                MessageStatus::Queued => {
                    wait(|done| store.mark_retry(id, None, done)).unwrap();
                }
                _ => {
                    apply(&store, receipt("acme", "ch", &smsc_id, target));
                }
            }
        }
        assert_eq!(status(&store, "acme", id), target);
        let claimed = claim(&store);
        if target.is_terminal() {
            assert_eq!(claimed.len(), 1, "{target:?}: {claimed:?}");
            assert_eq!(claimed[0].status.as_deref(), Some(target.as_str()));
        } else {
            assert!(claimed.is_empty(), "{target:?} is not final: {claimed:?}");
        }
    }
}

/// A message of `tenant` with its own callback_url, http://mine.example/cb.
fn insert_with_callback(store: &Store, tenant: &str) -> MessageId {
    let message = NewMessage {
        callback_url: Some("http://mine.example/cb".into()),
        ..message(tenant, "a")
    };
    insert_with(store, message).unwrap()
}

#[test]
fn a_message_callback_url_overrides_the_tenant_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert_with_callback(&store, "acme");
    wait(|done| store.mark_final(id, MessageStatus::Failed, None, true, done)).unwrap();
    let claimed = claim(&store);
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].url, "http://mine.example/cb");
    assert_eq!(claimed[0].status.as_deref(), Some("failed"));
}

#[test]
fn a_callback_url_is_still_posted_to_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(&dir);
        let id = insert_with_callback(&store, "acme");
        submit(&store, "acme", id, "ch", "x1");
        id
    };
    let store = open(&dir);
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Delivered),
    );
    let claimed = claim(&store);
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].ref_id, id.as_i64());
    assert_eq!(claimed[0].url, "http://mine.example/cb");
}

#[test]
fn a_webhook_set_while_a_message_is_in_flight_gets_its_final_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "a");
    submit(&store, "acme", id, "ch", "x1");
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Undeliverable),
    );
    let claimed = claim(&store);
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].status.as_deref(), Some("undeliverable"));
    wait(|done| store.set_tenant_webhook("acme", None, done)).unwrap();
    let later = insert(&store, "acme", "b");
    wait(|done| store.mark_final(later, MessageStatus::Failed, None, true, done)).unwrap();
    assert!(claim(&store).is_empty(), "the webhook was removed");
}

#[test]
fn a_long_message_posts_its_final_status_once_however_many_part_receipts_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    let id = insert(&store, "acme", "a long one");
    let parts = vec!["p1".to_string(), "p2".to_string()];
    wait(|done| store.mark_submitted_parts("acme", id, "ch", parts, done)).unwrap();
    apply(
        &store,
        receipt("acme", "ch", "p1", MessageStatus::Delivered),
    );
    assert!(claim(&store).is_empty(), "one part is still submitted");
    for _ in 0..2 {
        apply(
            &store,
            receipt("acme", "ch", "p2", MessageStatus::Delivered),
        );
    }
    let claimed = claim(&store);
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].ref_id, id.as_i64());
    assert_eq!(claimed[0].status.as_deref(), Some("delivered"));
}

#[test]
fn a_charge_reserved_before_a_restart_is_captured_once_at_the_submit_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let priced = |text: &str| NewMessage {
        charge: Some(30),
        ..message("acme", text)
    };
    let id = {
        let store = open(&dir);
        wait(|done| store.ensure_account("acme", 100, done)).unwrap();
        insert_with(&store, priced("a")).unwrap()
    };
    let store = open(&dir);
    // The receipt overtakes the response: the submit applies it, changing
    // the row twice in one operation.
    apply(
        &store,
        receipt("acme", "ch", "x1", MessageStatus::Delivered),
    );
    submit(&store, "acme", id, "ch", "x1");
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    assert_eq!(
        store.balance("acme").unwrap().unwrap(),
        Balance {
            available: 70,
            reserved: 0,
            spent: 30
        }
    );
}

#[test]
fn a_dead_letter_is_listed_and_can_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    wait(|done| {
        store.insert_inbound(
            NewInbound {
                tenant: "acme".into(),
                channel: "ch".into(),
                source: "1".into(),
                destination: "2".into(),
                text: "hi".into(),
            },
            done,
        )
    })
    .unwrap();
    let d = claim(&store).remove(0);
    assert_eq!(d.kind, "inbound");
    wait(|done| {
        store.webhook_result(
            d.id,
            smppd_sqlite::WebhookOutcome::Dead {
                error: "HTTP 500".into(),
            },
            done,
        )
    })
    .unwrap();
    let dead = store.dead_webhooks("acme", None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500"));
    assert!(store.dead_webhooks("other", None, 10).unwrap().is_empty());
    assert!(
        !wait(|done| store.replay_webhook("other", d.id, done)).unwrap(),
        "not another tenant's"
    );
    assert!(wait(|done| store.replay_webhook("acme", d.id, done)).unwrap());
    assert_eq!(claim(&store).len(), 1, "due again at once");
    assert!(store.dead_webhooks("acme", None, 10).unwrap().is_empty());
}

// ---- long messages (migration 7) ----

#[test]
fn a_long_message_is_delivered_only_when_every_part_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "long");
    let ids: Vec<String> = ["p1", "p2", "p3"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        wait(|done| store.mark_submitted_parts("acme", id, "ch", ids, done)).unwrap(),
        None
    );
    assert_eq!(
        store
            .get_message("acme", id)
            .unwrap()
            .unwrap()
            .smsc_message_id,
        None
    );
    for (n, p) in ["p1", "p3"].iter().enumerate() {
        match apply(&store, receipt("acme", "ch", p, MessageStatus::Delivered)) {
            ReceiptMatch::Matched {
                id: m,
                final_status,
                ..
            } => {
                assert_eq!(m, id);
                assert_eq!(final_status, None, "part {n}: not all parts are final yet");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(status(&store, "acme", id), MessageStatus::Submitted);
    match apply(
        &store,
        receipt("acme", "ch", "p2", MessageStatus::Delivered),
    ) {
        ReceiptMatch::Matched { final_status, .. } => {
            assert_eq!(final_status, Some(MessageStatus::Delivered))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    let parts = store.message_parts("acme", id).unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.status == MessageStatus::Delivered));
    assert!(store.message_parts("other", id).unwrap().is_empty());
}

/// Which parts the durable SMSC-id index holds for `smsc_id`, as (message, part).
fn parts_indexed_by_smsc_id(dir: &TempDir, smsc_id: &str) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(dir.path().join("smppd.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT message_id, part FROM message_parts WHERE smsc_lookup_id = ?1")
        .unwrap();
    stmt.query_map([smsc_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_parts_of_a_long_message_are_matched_from_the_cache_from_the_index_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Room for two submits: of the three parts, the first leaves the cache.
    let store = open_with_receipt_cache(&dir, 2);
    let id = insert(&store, "acme", "long");
    let ids: Vec<String> = ["u1", "u2", "u3"].iter().map(|s| s.to_string()).collect();
    wait(|done| store.mark_submitted_parts("acme", id, "ch", ids, done)).unwrap();
    assert_eq!(parts_indexed_by_smsc_id(&dir, "u1"), [(id.as_i64(), 1)]);
    assert!(parts_indexed_by_smsc_id(&dir, "u2").is_empty());
    // From the index, then from the cache.
    for p in ["u1", "u2"] {
        let delivered = receipt("acme", "ch", p, MessageStatus::Delivered);
        assert!(matches!(apply(&store, delivered), ReceiptMatch::Matched { id: m, .. } if m == id));
    }
    store.close();
    drop(store);
    // The last part's submit was only in the cache: the restart indexes it.
    let store = open(&dir);
    assert_eq!(parts_indexed_by_smsc_id(&dir, "u3"), [(id.as_i64(), 3)]);
    let delivered = receipt("acme", "ch", "u3", MessageStatus::Delivered);
    match apply(&store, delivered) {
        ReceiptMatch::Matched {
            id: m,
            final_status,
            ..
        } => {
            assert_eq!(m, id);
            assert_eq!(final_status, Some(MessageStatus::Delivered));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
    assert_eq!(pending_receipts(&dir), 0);
}

#[test]
fn one_undeliverable_part_makes_the_message_undeliverable_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "long");
    // A receipt overtakes the responses of its part.
    let early = Receipt {
        error: Some(ErrorInfo {
            code: 1,
            name: "UNDELIV".into(),
        }),
        ..receipt("acme", "ch", "q2", MessageStatus::Undeliverable)
    };
    assert_eq!(apply(&store, early), ReceiptMatch::Parked);
    wait(|done| store.mark_submitted_parts("acme", id, "ch", vec!["q1".into(), "q2".into()], done))
        .unwrap();
    apply(
        &store,
        receipt("acme", "ch", "q1", MessageStatus::Delivered),
    );
    let message = store.get_message("acme", id).unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Undeliverable);
    assert_eq!(message.error.unwrap().name, "UNDELIV");
}

#[test]
fn a_concatenated_inbound_message_is_stored_once_when_its_last_part_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let part = |text: &str| NewInbound {
        tenant: "acme".into(),
        channel: "ch".into(),
        source: "4915100000009".into(),
        destination: "12345".into(),
        text: text.into(),
    };
    assert_eq!(
        wait(|done| store.insert_inbound_part(part("world"), 9, 3, 2, done)).unwrap(),
        None
    );
    assert_eq!(
        wait(|done| store.insert_inbound_part(part("world"), 9, 3, 2, done)).unwrap(),
        None,
        "a redelivered part counts once"
    );
    assert_eq!(
        wait(|done| store.insert_inbound_part(part("Hello "), 9, 3, 1, done)).unwrap(),
        None
    );
    assert!(store.list_inbound("acme", None, 10).unwrap().is_empty());
    let (id, text) = wait(|done| store.insert_inbound_part(part("!"), 9, 3, 3, done))
        .unwrap()
        .unwrap();
    assert_eq!(text, "Hello world!");
    let listed = store.list_inbound("acme", None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id, listed[0].text.as_str()),
        (id, "Hello world!")
    );
}

// ---- retention ----

fn count(dir: &TempDir, table: &str) -> i64 {
    rusqlite::Connection::open(dir.path().join("smppd.db"))
        .unwrap()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn prune_deletes_old_final_rows_and_keeps_what_is_still_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let queued = insert(&store, "acme", "still queued");
    let sent = insert(&store, "acme", "awaiting its receipt");
    submit(&store, "acme", sent, "ch", "s1");
    let delivered = insert(&store, "acme", "delivered");
    submit(&store, "acme", delivered, "ch", "d1");
    apply(
        &store,
        receipt("acme", "ch", "d1", MessageStatus::Delivered),
    );
    let failed = insert(&store, "acme", "failed");
    wait(|done| store.mark_final(failed, MessageStatus::Failed, None, true, done)).unwrap();
    let long = insert(&store, "acme", "two parts");
    wait(|done| {
        store.mark_submitted_parts("acme", long, "ch", vec!["p1".into(), "p2".into()], done)
    })
    .unwrap();
    for part in ["p1", "p2"] {
        apply(
            &store,
            receipt("acme", "ch", part, MessageStatus::Delivered),
        );
    }
    assert_eq!(status(&store, "acme", long), MessageStatus::Delivered);
    wait(|done| {
        store.insert_inbound(
            NewInbound {
                tenant: "acme".into(),
                channel: "ch".into(),
                source: "4915112345678".into(),
                destination: "12345".into(),
                text: "STOP".into(),
            },
            done,
        )
    })
    .unwrap();
    assert_eq!(
        apply(
            &store,
            receipt("acme", "ch", "nobody", MessageStatus::Delivered)
        ),
        ReceiptMatch::Parked
    );
    let now = now_ms();
    rusqlite::Connection::open(dir.path().join("smppd.db"))
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO webhook_outbox (tenant, url, kind, ref_id, created_at, next_attempt_at, state)
             VALUES ('acme', 'http://x', 'status', 1, {now}, {now}, 'delivered'),
                    ('acme', 'http://x', 'status', 2, {now}, {now}, 'dead'),
                    ('acme', 'http://x', 'status', 3, {now}, {now}, 'pending');"
        ))
        .unwrap();

    sweep(&store);
    assert_eq!(count(&dir, "message_list"), 5);
    // A cutoff before everything deletes nothing.
    let none = wait(|done| store.prune(now - 60_000, 100, done)).unwrap();
    assert_eq!(none, Pruned::default());

    let pruned = wait(|done| store.prune(now_ms() + 60_000, 100, done)).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            messages: 3,
            inbound: 1,
            webhooks: 2,
            receipts: 1
        }
    );
    for gone in [delivered, failed, long] {
        assert_eq!(store.get_message("acme", gone).unwrap(), None);
    }
    assert_eq!(status(&store, "acme", queued), MessageStatus::Queued);
    assert_eq!(status(&store, "acme", sent), MessageStatus::Submitted);
    assert_eq!(count(&dir, "message_parts"), 0);
    assert_eq!(
        count(&dir, "message_list"),
        2,
        "the entries of the two left"
    );
    assert_eq!(count(&dir, "inbound"), 0);
    assert_eq!(
        count(&dir, "webhook_outbox"),
        1,
        "the pending delivery stays"
    );
    assert_eq!(pending_receipts(&dir), 0);
    assert_eq!(store.queued_count("acme"), 1);
    // What stayed still works: the submitted message takes its receipt.
    apply(
        &store,
        receipt("acme", "ch", "s1", MessageStatus::Delivered),
    );
    assert_eq!(status(&store, "acme", sent), MessageStatus::Delivered);
}

#[test]
fn prune_deletes_at_most_its_limit_of_each_kind_and_says_when_it_was_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..5 {
        let id = insert(&store, "acme", &format!("m{i}"));
        wait(|done| store.mark_final(id, MessageStatus::Expired, None, false, done)).unwrap();
    }
    let cutoff = now_ms() + 60_000;
    let mut batches = Vec::new();
    loop {
        let pruned = wait(|done| store.prune(cutoff, 2, done)).unwrap();
        batches.push(pruned.messages);
        if !pruned.reached(2) {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1]);
    assert_eq!(count(&dir, "messages"), 0);
    assert_eq!(store.pruned().messages, 5, "the running total");
}

// ---- receipt timeout (migration 16) ----

fn time_out(store: &Store, before_ms: i64, limit: usize) -> Vec<smppd_sqlite::TimedOut> {
    wait(|done| store.time_out_receipts(before_ms, limit, done)).unwrap()
}

/// Waits until the clock has moved past `ms`, so that writes before and
/// after this call get different times.
fn after_a_tick() -> i64 {
    let start = now_ms();
    while now_ms() <= start + 1 {
        thread::sleep(std::time::Duration::from_millis(1));
    }
    now_ms()
}

#[test]
fn a_message_whose_receipt_is_overdue_becomes_unknown_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.set_tenant_webhook("acme", Some("http://hooks.example/acme"), done)).unwrap();
    let queued = insert(&store, "acme", "still queued");
    let old = insert(&store, "acme", "no receipt");
    submit(&store, "acme", old, "ch", "o1");
    let delivered = insert(&store, "acme", "delivered");
    submit(&store, "acme", delivered, "ch", "d1");
    apply(
        &store,
        receipt("acme", "ch", "d1", MessageStatus::Delivered),
    );
    assert_eq!(claim(&store).len(), 1, "the delivered one's event");
    let cutoff = after_a_tick();
    after_a_tick();
    let young = insert(&store, "other", "submitted after the cutoff");
    submit(&store, "other", young, "ch", "y1");

    let timed_out = time_out(&store, cutoff, 100);
    assert_eq!(
        timed_out,
        [smppd_sqlite::TimedOut {
            tenant: "acme".into(),
            id: old
        }]
    );
    let record = store.get_message("acme", old).unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Unknown);
    assert_eq!(record.error, Some(ErrorInfo::receipt_timeout()));
    assert!(record.done_at_ms.is_some());
    assert_eq!(status(&store, "acme", queued), MessageStatus::Queued);
    assert_eq!(status(&store, "acme", delivered), MessageStatus::Delivered);
    assert_eq!(status(&store, "other", young), MessageStatus::Submitted);
    let events = claim(&store);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].ref_id, old.as_i64());
    assert_eq!(events[0].status.as_deref(), Some("unknown"));
    assert_eq!(
        events[0].error.as_ref().map(|e| e.name.as_str()),
        Some(smppd_sqlite::RECEIPT_TIMEOUT)
    );
    assert!(time_out(&store, cutoff, 100).is_empty(), "done once");
}

#[test]
fn a_receipt_timeout_keeps_the_charge_captured() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    wait(|done| store.ensure_account("acme", 1_000, done)).unwrap();
    let mut m = message("acme", "priced");
    m.charge = Some(250);
    let id = insert_with(&store, m).unwrap();
    submit(&store, "acme", id, "ch", "c1");
    let before = store.balance("acme").unwrap().unwrap();
    assert_eq!(time_out(&store, now_ms() + 1_000, 100).len(), 1);
    assert_eq!(store.balance("acme").unwrap().unwrap(), before);
    assert_eq!(before.spent, 250);
    assert_eq!(
        store
            .get_message("acme", id)
            .unwrap()
            .unwrap()
            .charge_state
            .as_deref(),
        Some("captured")
    );
}

#[test]
fn a_receipt_after_the_timeout_still_decides_the_message_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before_restart = insert(&store, "acme", "a");
    submit(&store, "acme", before_restart, "ch", "late-1");
    let after_restart = insert(&store, "acme", "b");
    submit(&store, "acme", after_restart, "ch", "late-2");
    assert_eq!(time_out(&store, now_ms() + 1_000, 100).len(), 2);
    // An intermediate receipt does not undo the timeout.
    apply(
        &store,
        receipt("acme", "ch", "late-1", MessageStatus::Submitted),
    );
    assert_eq!(
        status(&store, "acme", before_restart),
        MessageStatus::Unknown
    );
    apply(
        &store,
        receipt("acme", "ch", "late-1", MessageStatus::Delivered),
    );
    assert_eq!(
        status(&store, "acme", before_restart),
        MessageStatus::Delivered
    );
    store.close();
    drop(store);
    // The receipt cache that held both died with the store; the timed-out
    // message is found through the SMSC-id index.
    let store = open(&dir);
    let late = Receipt {
        error: Some(ErrorInfo {
            code: 1,
            name: "UNDELIV".into(),
        }),
        ..receipt("acme", "ch", "late-2", MessageStatus::Undeliverable)
    };
    assert!(matches!(apply(&store, late), ReceiptMatch::Matched { id, .. } if id == after_restart));
    assert_eq!(
        status(&store, "acme", after_restart),
        MessageStatus::Undeliverable
    );
    assert_eq!(pending_receipts(&dir), 0);
}

#[test]
fn a_long_message_times_out_with_the_parts_still_awaiting_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "long");
    let ids: Vec<String> = ["t1", "t2"].iter().map(|s| s.to_string()).collect();
    wait(|done| store.mark_submitted_parts("acme", id, "ch", ids, done)).unwrap();
    apply(
        &store,
        receipt("acme", "ch", "t1", MessageStatus::Delivered),
    );
    assert_eq!(time_out(&store, now_ms() + 1_000, 100).len(), 1);
    assert_eq!(status(&store, "acme", id), MessageStatus::Unknown);
    let parts = store.message_parts("acme", id).unwrap();
    let statuses: Vec<_> = parts.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [MessageStatus::Delivered, MessageStatus::Unknown]);
    store.close();
    drop(store);
    let store = open(&dir);
    apply(
        &store,
        receipt("acme", "ch", "t2", MessageStatus::Delivered),
    );
    assert_eq!(status(&store, "acme", id), MessageStatus::Delivered);
}

#[test]
fn a_receipt_timeout_takes_at_most_its_limit_oldest_submit_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ids: Vec<MessageId> = (0..5)
        .map(|n| insert(&store, "acme", &format!("m{n}")))
        .collect();
    // Submitted in reverse order of their ids.
    for (n, id) in ids.iter().enumerate().rev() {
        submit(&store, "acme", *id, "ch", &format!("s{n}"));
        after_a_tick();
    }
    let first: Vec<MessageId> = time_out(&store, now_ms() + 1_000, 2)
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(first, [ids[4], ids[3]]);
    assert_eq!(time_out(&store, now_ms() + 1_000, 10).len(), 3);
}

#[test]
fn a_message_waits_for_its_receipt_until_its_validity_ends_or_its_send_at() {
    let set_validity = |m: &mut NewMessage, at| m.validity_until_ms = Some(at);
    let set_send_at = |m: &mut NewMessage, at| m.send_at_ms = Some(at);
    for set in [set_validity, set_send_at] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let later_at = now_ms() + 60_000;
        let mut m = message("acme", "a minute from now");
        set(&mut m, later_at);
        let waits = insert_with(&store, m).unwrap();
        submit(&store, "acme", waits, "ch", "v1");
        let plain = insert(&store, "acme", "neither");
        submit(&store, "acme", plain, "ch", "v2");
        // Both were submitted before this cutoff; the SMSC may still
        // deliver the first until its validity ends, and delivers it at
        // its send_at at the earliest.
        let first: Vec<MessageId> = time_out(&store, now_ms() + 1_000, 100)
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(first, [plain]);
        assert_eq!(status(&store, "acme", waits), MessageStatus::Submitted);
        let later: Vec<MessageId> = time_out(&store, later_at + 1, 100)
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(later, [waits]);
    }
}

// ---- listing (schema 20: `message_list`, filled by the writer in bulk) ----

/// Lets the writer's next commit sweep the newest messages into
/// `message_list`, and those still queued into `message_queue` (it sweeps
/// at most every 50 ms).
fn sweep(store: &Store) {
    thread::sleep(std::time::Duration::from_millis(250));
    store.flush().unwrap();
}

fn listed(store: &Store, tenant: &str, filter: &MessageFilter, limit: usize) -> Vec<MessageId> {
    let page = store.list_messages(tenant, filter, limit).unwrap();
    page.iter().map(|m| m.id).collect()
}

#[test]
fn a_page_joins_swept_and_newest_messages_newest_first_and_only_the_tenants_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut acme: Vec<MessageId> = (0..5)
        .map(|i| insert(&store, "acme", &format!("{i}")))
        .collect();
    insert(&store, "globex", "other");
    sweep(&store);
    assert_eq!(count(&dir, "message_list"), 6, "the sweep entered all six");
    acme.extend((5..8).map(|i| insert(&store, "acme", &format!("{i}"))));
    insert(&store, "globex", "other, newest");
    acme.reverse();
    let all = MessageFilter::default();
    assert_eq!(
        listed(&store, "acme", &all, 100),
        acme,
        "every one, newest first"
    );
    assert_eq!(
        listed(&store, "acme", &all, 4),
        acme[..4],
        "the page crosses the mark"
    );
    let next = MessageFilter {
        before: Some(acme[3]),
        ..MessageFilter::default()
    };
    assert_eq!(
        listed(&store, "acme", &next, 100),
        acme[4..],
        "and the next page goes on"
    );
    submit(&store, "acme", acme[0], "ch", "n1");
    submit(&store, "acme", acme[6], "ch", "o1");
    let submitted = MessageFilter {
        status: Some(MessageStatus::Submitted),
        ..MessageFilter::default()
    };
    assert_eq!(listed(&store, "acme", &submitted, 100), [acme[0], acme[6]]);
    assert_eq!(listed(&store, "globex", &all, 100).len(), 2);
    // Listed again after a restart, swept or not.
    drop(store);
    let store = open(&dir);
    assert_eq!(listed(&store, "acme", &all, 100), acme);
}

#[test]
fn deleting_a_tenant_removes_its_swept_and_newest_messages_and_queue_entries_and_nobody_elses() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    insert(&store, "acme", "swept");
    let kept = insert(&store, "globex", "kept");
    sweep(&store);
    insert(&store, "acme", "newest");
    let deleted = wait(|done| store.delete_tenant("acme", done)).unwrap();
    assert_eq!((deleted.messages, deleted.queued), (2, 2));
    assert_eq!(count(&dir, "message_list"), 1, "globex's entry only");
    assert_eq!(count(&dir, "message_queue"), 1, "globex's entry only");
    assert!(listed(&store, "acme", &MessageFilter::default(), 100).is_empty());
    assert_eq!(
        listed(&store, "globex", &MessageFilter::default(), 100),
        [kept]
    );
    assert!(queued(&store, "acme", None, 100).is_empty());
    assert_eq!(queued(&store, "globex", None, 100), [kept]);
    assert_eq!(store.tenants_with_queued(), ["globex"]);
}

// ---- the queue (schema 21: `message_queue`, filled by the same sweep) ----

fn queued(store: &Store, tenant: &str, after: Option<MessageId>, limit: usize) -> Vec<MessageId> {
    let page = store
        .queued_messages(tenant, Priority::Normal, after, limit)
        .unwrap();
    page.iter().map(|q| q.id).collect()
}

#[test]
fn a_backlog_is_read_oldest_first_across_the_mark_and_only_while_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut acme: Vec<MessageId> = (0..3)
        .map(|i| insert(&store, "acme", &format!("{i}")))
        .collect();
    let sent_early = insert(&store, "acme", "submitted before the sweep");
    submit(&store, "acme", sent_early, "ch", "e1");
    insert(&store, "globex", "other");
    sweep(&store);
    assert_eq!(
        count(&dir, "message_queue"),
        4,
        "the three still queued and globex's; not the one already submitted"
    );
    acme.extend((3..5).map(|i| insert(&store, "acme", &format!("{i}"))));
    assert_eq!(
        queued(&store, "acme", None, 100),
        acme,
        "swept, then newest"
    );
    assert_eq!(queued(&store, "acme", None, 2), acme[..2]);
    assert_eq!(
        queued(&store, "acme", Some(acme[1]), 2),
        acme[2..4],
        "a page crosses the mark"
    );
    assert_eq!(queued(&store, "acme", Some(acme[3]), 100), acme[4..]);

    submit(&store, "acme", acme[1], "ch", "s1");
    submit(&store, "acme", acme[3], "ch", "n1");
    assert_eq!(
        count(&dir, "message_queue"),
        3,
        "a submit takes its entry out"
    );
    let left = vec![acme[0], acme[2], acme[4]];
    assert_eq!(queued(&store, "acme", None, 100), left);
    assert_eq!(store.queued_count("acme"), 3);

    // After a restart: the same backlog, the same count, the same tenants.
    drop(store);
    let store = open(&dir);
    assert_eq!(queued(&store, "acme", None, 100), left);
    assert_eq!(store.queued_count("acme"), 3);
    assert_eq!(store.queued_count("globex"), 1);
    assert_eq!(store.tenants_with_queued(), ["acme", "globex"]);
}

#[test]
fn a_retry_after_the_sweep_queues_the_message_again_and_its_end_takes_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let id = insert(&store, "acme", "hi");
    submit(&store, "acme", id, "ch", "s1");
    sweep(&store);
    assert_eq!(
        count(&dir, "message_queue"),
        0,
        "submitted before the sweep"
    );
    wait(|done| store.mark_retry(id, None, done)).unwrap();
    assert_eq!(queued(&store, "acme", None, 100), [id], "queued again");
    assert_eq!(count(&dir, "message_queue"), 1);
    assert_eq!(store.tenants_with_queued(), ["acme"]);

    wait(|done| store.mark_final(id, MessageStatus::Failed, None, true, done)).unwrap();
    assert_eq!(
        count(&dir, "message_queue"),
        0,
        "a final status takes it out"
    );
    assert!(queued(&store, "acme", None, 100).is_empty());
    drop(store);
    let store = open(&dir);
    assert_eq!(store.queued_count("acme"), 0);
    assert!(store.tenants_with_queued().is_empty());
}
