//! A submit and its receipt in one batch: one `UPDATE` instead of three
//! statements or more.
//!
//! SMSCs often send a delivery receipt within milliseconds of the
//! `submit_sm_resp`, so the writer mostly finds `mark_submitted` and
//! `apply_receipt` for the same message in the same batch. Run one after
//! the other, that is an `UPDATE` to submitted, then a lookup by SMSC id and
//! a second `UPDATE` to the final status, with every index and trigger
//! touched twice; when the receipt overtook the response (it came on
//! another session), it is parked in `pending_receipts` and taken back out
//! as well. Before running a batch, the writer pairs them ([`pair`]), and
//! the submit writes the final status in its own `UPDATE`:
//!
//! - [`Order::SubmitFirst`]: the submit leaves what the receipt would have
//!   answered in the shared [`Fold`]; the receipt answers that without
//!   touching the database.
//! - [`Order::ReceiptFirst`]: the receipt still looks for a message with
//!   its SMSC id (it may match an older one: SMSCs recycle ids). Only if it
//!   would park does it hand its outcome to the submit instead; if the
//!   submit then does not apply, the submit parks it.
//!
//! Everything a caller sees is unchanged: each answers what it would have
//! answered apart, and rows, charges and outbox events are the same. Only
//! receipts whose outcome is the same either way are paired:
//!
//! - a *final* receipt (an intermediate one may not override a status);
//! - not `failed` or `expired`: after a submit those keep the charge
//!   captured, while `queued` → `failed`/`expired` releases it.
//!
//! If the first of a pair does not apply, or its transaction is rolled
//! back, the second runs as it would have alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::types::{ErrorInfo, MessageStatus, ReceiptMatch};
use crate::writer::Job;

/// What a receipt is matched by: (tenant, channel, SMSC message id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) tenant: Arc<str>,
    pub(crate) channel: Arc<str>,
    pub(crate) smsc_message_id: Arc<str>,
}

/// A writer job's part in a pairing.
#[derive(Debug)]
pub(crate) enum Role {
    /// `mark_submitted` of a single-part message.
    Submit,
    /// `apply_receipt` with this outcome.
    Receipt {
        status: MessageStatus,
        error: Option<ErrorInfo>,
    },
}

/// Carried by the jobs that can be paired.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) role: Role,
    pub(crate) key: Key,
    /// Set by [`pair`] on both jobs of a pair.
    pub(crate) fold: Option<Arc<Fold>>,
}

impl Link {
    pub(crate) fn new(role: Role, key: Key) -> Self {
        Link {
            role,
            key,
            fold: None,
        }
    }
}

/// Which of a pair comes first in its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The usual case: the receipt follows its `submit_sm_resp`.
    SubmitFirst,
    /// The receipt overtook it (it arrived on another session, or before
    /// the response).
    ReceiptFirst,
}

/// What the first of a pair left for the second.
#[derive(Debug)]
enum State {
    Open,
    /// [`Order::SubmitFirst`]: the submit wrote the receipt's outcome;
    /// this is what the receipt answers.
    Answered(ReceiptMatch),
    /// [`Order::ReceiptFirst`]: no message had the receipt's SMSC id, so
    /// rather than parking it the receipt left its outcome to the submit.
    HandedOver,
}

/// Shared by a paired submit and receipt.
#[derive(Debug)]
pub(crate) struct Fold {
    /// The receipt's outcome, for the submit to write.
    pub(crate) status: MessageStatus,
    pub(crate) error: Option<ErrorInfo>,
    pub(crate) order: Order,
    state: Mutex<State>,
}

impl Fold {
    fn state(&self) -> MutexGuard<'_, State> {
        // Only the writer thread touches it; a poisoned lock still holds a
        // consistent value.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The submit wrote the receipt's outcome; the receipt will answer this.
    pub(crate) fn applied(&self, answer: ReceiptMatch) {
        *self.state() = State::Answered(answer);
    }

    /// The receipt found no message and leaves its outcome to the submit.
    pub(crate) fn hand_over(&self) {
        *self.state() = State::HandedOver;
    }

    /// Forgets what the first of the pair left: its transaction was rolled
    /// back. (A pair is fresh from [`pair`], and a run that does not apply
    /// leaves nothing, so this is the only way back to open.)
    pub(crate) fn clear(&self) {
        *self.state() = State::Open;
    }

    /// The receipt's answer if its submit wrote it, else `None` (then the
    /// receipt runs as usual).
    pub(crate) fn answered(&self) -> Option<ReceiptMatch> {
        match &*self.state() {
            State::Answered(answer) => Some(answer.clone()),
            _ => None,
        }
    }

    /// Whether the receipt before the submit left its outcome to it.
    pub(crate) fn handed_over(&self) -> bool {
        matches!(*self.state(), State::HandedOver)
    }
}

/// Whether a receipt with this outcome may be written by its submit.
pub(crate) fn foldable(status: MessageStatus) -> bool {
    status.is_terminal() && !matches!(status, MessageStatus::Failed | MessageStatus::Expired)
}

/// Pairs the jobs of a batch, in order: a foldable receipt with the latest
/// unpaired submit before it for the same key, else a submit with the
/// latest unpaired foldable receipt before it. Each job pairs at most once.
pub(crate) fn pair(jobs: &mut [Job]) {
    // Unpaired jobs seen so far, by key: the latest of each kind.
    let mut submits: HashMap<Key, usize> = HashMap::new();
    let mut receipts: HashMap<Key, usize> = HashMap::new();
    for index in 0..jobs.len() {
        let Some(link) = jobs[index].link() else {
            continue;
        };
        link.fold = None;
        let (earlier, order) = match &link.role {
            Role::Submit => match receipts.remove(&link.key) {
                Some(receipt) => (receipt, Order::ReceiptFirst),
                None => {
                    submits.insert(link.key.clone(), index);
                    continue;
                }
            },
            Role::Receipt { status, .. } if foldable(*status) => match submits.remove(&link.key) {
                Some(submit) => (submit, Order::SubmitFirst),
                None => {
                    receipts.insert(link.key.clone(), index);
                    continue;
                }
            },
            Role::Receipt { .. } => continue,
        };
        let (receipt, submit) = match order {
            Order::SubmitFirst => (index, earlier),
            Order::ReceiptFirst => (earlier, index),
        };
        let Some(Link {
            role: Role::Receipt { status, error },
            ..
        }) = jobs[receipt].link()
        else {
            continue;
        };
        let fold = Arc::new(Fold {
            status: *status,
            error: error.clone(),
            order,
            state: Mutex::new(State::Open),
        });
        for job in [receipt, submit] {
            if let Some(link) = jobs[job].link() {
                link.fold = Some(Arc::clone(&fold));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::types::{Balance, MessageId, NewMessage, Receipt};
    use crate::writer::{self, Done};
    use crate::{Store, StoreError, StoreOptions};

    fn wait<T: Send + 'static>(submit: impl FnOnce(Done<T>)) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::channel();
        submit(Box::new(move |result| tx.send(result).unwrap()));
        rx.recv().unwrap()
    }

    /// Holds the writer inside a job until the returned sender is used or
    /// dropped, so that everything enqueued meanwhile forms one batch.
    fn hold(store: &Store) -> mpsc::Sender<()> {
        let (release, released) = mpsc::channel::<()>();
        let (started, holding) = mpsc::channel();
        store.submit(writer::job(
            move |_, _| {
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            },
            Box::new(|_| {}),
        ));
        holding.recv().unwrap();
        release
    }

    /// Counts, from now on, every `UPDATE OF status` on messages (a TEMP
    /// trigger on the writer's own connection).
    fn count_status_updates(store: &Store) {
        wait(|done| {
            store.submit(writer::job(
                |conn, _| {
                    conn.execute_batch(
                        "CREATE TEMP TABLE status_updates (id INTEGER);
                         CREATE TEMP TRIGGER count_status AFTER UPDATE OF status ON main.messages
                         BEGIN INSERT INTO status_updates VALUES (NEW.id); END;",
                    )?;
                    Ok(())
                },
                done,
            ))
        })
        .unwrap();
    }

    /// Rows in `table`, read on the writer's connection (it alone sees
    /// the TEMP table of [`count_status_updates`]).
    fn rows(store: &Store, table: &'static str) -> i64 {
        wait(|done| {
            store.submit(writer::job(
                move |conn, _| {
                    Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
                },
                done,
            ))
        })
        .unwrap()
    }

    fn status_updates(store: &Store) -> i64 {
        rows(store, "status_updates")
    }

    fn parked(store: &Store) -> i64 {
        rows(store, "pending_receipts")
    }

    fn charged(tenant: &str) -> NewMessage {
        NewMessage {
            charge: Some(10),
            ..NewMessage::new(tenant, "ACME", "+4915112345678", "hi")
        }
    }

    fn receipt(tenant: &str, smsc_id: &str, status: MessageStatus) -> Receipt {
        Receipt {
            tenant: tenant.into(),
            channel: "ch".into(),
            smsc_message_id: smsc_id.into(),
            status,
            error: (status != MessageStatus::Delivered).then(|| ErrorInfo {
                code: 11,
                name: "UNDELIV".into(),
            }),
        }
    }

    type Answers = (Option<MessageStatus>, ReceiptMatch);
    type Way = fn(&Store, &str, MessageId, Receipt) -> Answers;

    /// The submit and then the receipt, each in a batch of its own.
    fn apart(store: &Store, tenant: &str, id: MessageId, r: Receipt) -> Answers {
        let submitted = wait(|done| store.mark_submitted(tenant, id, "ch", "s1", done)).unwrap();
        (
            submitted,
            wait(|done| store.apply_receipt(r, done)).unwrap(),
        )
    }

    /// The receipt (overtaking) and then the submit, each in a batch of its own.
    fn apart_overtaken(store: &Store, tenant: &str, id: MessageId, r: Receipt) -> Answers {
        let matched = wait(|done| store.apply_receipt(r, done)).unwrap();
        let submitted = wait(|done| store.mark_submitted(tenant, id, "ch", "s1", done)).unwrap();
        (submitted, matched)
    }

    /// The submit and then the receipt, in one batch.
    fn together(store: &Store, tenant: &str, id: MessageId, r: Receipt) -> Answers {
        in_one_batch(store, tenant, id, r, false, None)
    }

    /// The receipt (overtaking) and then the submit, in one batch.
    fn together_overtaken(store: &Store, tenant: &str, id: MessageId, r: Receipt) -> Answers {
        in_one_batch(store, tenant, id, r, true, None)
    }

    fn in_one_batch(
        store: &Store,
        tenant: &str,
        id: MessageId,
        r: Receipt,
        receipt_first: bool,
        between: Option<Job>,
    ) -> Answers {
        let (submitted_tx, submitted) = mpsc::channel();
        let (matched_tx, matched) = mpsc::channel();
        let release = hold(store);
        let receipt =
            move || store.apply_receipt(r, Box::new(move |r| matched_tx.send(r).unwrap()));
        let submit = || {
            store.mark_submitted(
                tenant,
                id,
                "ch",
                "s1",
                Box::new(move |r| submitted_tx.send(r).unwrap()),
            )
        };
        let between = || {
            if let Some(job) = between {
                store.submit(job);
            }
        };
        if receipt_first {
            receipt();
            between();
            submit();
        } else {
            submit();
            between();
            receipt();
        }
        release.send(()).unwrap();
        (
            submitted.recv().unwrap().unwrap(),
            matched.recv().unwrap().unwrap(),
        )
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fold.db"), StoreOptions::default()).unwrap();
        (dir, store)
    }

    fn insert(store: &Store, message: NewMessage) -> MessageId {
        wait(|done| store.insert_message(message, done)).unwrap()
    }

    /// Queues a message for acme.
    fn queue(store: &Store) -> MessageId {
        insert(store, NewMessage::new("acme", "A", "+4915112345678", "hi"))
    }

    /// `way` for acme's message `id`, with a delivered receipt for SMSC id s1.
    fn deliver(store: &Store, way: Way, id: MessageId) -> Answers {
        way(
            store,
            "acme",
            id,
            receipt("acme", "s1", MessageStatus::Delivered),
        )
    }

    #[test]
    fn a_receipt_in_its_submits_batch_is_written_by_the_submits_own_update() {
        let (_dir, store) = open();
        let id = queue(&store);
        count_status_updates(&store);
        let (submitted, matched) = deliver(&store, together, id);
        assert_eq!(submitted, None, "the submit answers as a plain submit");
        let message = store.get_message("acme", id).unwrap().unwrap();
        assert_eq!(
            matched,
            ReceiptMatch::Matched {
                id,
                submitted_at_ms: message.submitted_at_ms,
                final_status: Some(MessageStatus::Delivered),
            }
        );
        assert_eq!(message.status, MessageStatus::Delivered);
        assert_eq!(message.smsc_message_id.as_deref(), Some("s1"));
        assert_eq!(message.attempts, 1);
        assert!(message.done_at_ms.is_some());
        assert_eq!(status_updates(&store), 1, "one UPDATE, not two");

        // The same two writes apart take two updates.
        let apart_id = queue(&store);
        deliver(&store, apart, apart_id);
        assert_eq!(status_updates(&store), 3);
    }

    #[test]
    fn a_pair_replayed_after_a_dirty_failure_between_them_is_written_once() {
        for receipt_first in [false, true] {
            let (_dir, store) = open();
            let id = queue(&store);
            count_status_updates(&store);
            // Writes a row, then fails: the batch is rolled back and replayed.
            let (failed_tx, failed) = mpsc::channel();
            let dirty = writer::job(
                |conn, _| {
                    conn.execute(
                        "INSERT INTO tenant_webhooks (tenant, url) VALUES ('dirty', 'http://x')",
                        [],
                    )?;
                    Err::<(), _>(StoreError::QuotaExceeded { limit: 0 })
                },
                Box::new(move |r| failed_tx.send(r.is_err()).unwrap()),
            );
            let receipt = receipt("acme", "s1", MessageStatus::Delivered);
            let answers = in_one_batch(&store, "acme", id, receipt, receipt_first, Some(dirty));
            let expected = if receipt_first {
                (Some(MessageStatus::Delivered), ReceiptMatch::Parked)
            } else {
                let m = store.get_message("acme", id).unwrap().unwrap();
                let matched = ReceiptMatch::Matched {
                    id,
                    submitted_at_ms: m.submitted_at_ms,
                    final_status: Some(MessageStatus::Delivered),
                };
                (None, matched)
            };
            assert_eq!(answers, expected, "receipt first: {receipt_first}");
            assert!(failed.recv().unwrap(), "the dirty job fails alone");
            let m = store.get_message("acme", id).unwrap().unwrap();
            assert_eq!((m.status, m.attempts), (MessageStatus::Delivered, 1));
            assert_eq!(status_updates(&store), 1, "written once, by the replay");
            assert_eq!(parked(&store), 0);
            assert_eq!(rows(&store, "tenant_webhooks"), 0, "the dirty write undone");
        }
    }

    #[test]
    fn every_final_receipt_folded_into_its_submit_leaves_what_it_leaves_applied_after_it() {
        let (_dir, store) = open();
        for status in [
            MessageStatus::Delivered,
            MessageStatus::Undeliverable,
            MessageStatus::Rejected,
            MessageStatus::Unknown,
            MessageStatus::Failed,
            MessageStatus::Expired,
        ] {
            let mut outcomes = Vec::new();
            let ways: [(&str, Way); 4] = [
                ("apart", apart),
                ("together", together),
                ("apart-overtaken", apart_overtaken),
                ("together-overtaken", together_overtaken),
            ];
            for (way, run) in ways {
                let tenant = format!("{way}-{status}");
                wait(|done| store.ensure_account(&tenant, 100, done)).unwrap();
                let id = insert(&store, charged(&tenant));
                let (submitted, matched) = run(&store, &tenant, id, receipt(&tenant, "s1", status));
                let m = store.get_message(&tenant, id).unwrap().unwrap();
                let balance: Balance = store.balance(&tenant).unwrap().unwrap();
                let matched = match matched {
                    ReceiptMatch::Matched {
                        final_status,
                        submitted_at_ms,
                        ..
                    } => Some((final_status, submitted_at_ms == m.submitted_at_ms)),
                    ReceiptMatch::Parked => None,
                };
                outcomes.push((
                    submitted,
                    matched,
                    m.status,
                    m.error,
                    m.attempts,
                    m.done_at_ms.is_some(),
                    m.charge_state,
                    balance,
                    parked(&store),
                ));
            }
            assert_eq!(outcomes[0], outcomes[1], "{status}: apart vs together");
            assert_eq!(
                outcomes[2], outcomes[3],
                "{status}: overtaken, apart vs together"
            );
        }
    }

    #[test]
    fn a_receipt_that_overtook_its_submit_in_one_batch_is_written_by_the_submit_not_parked() {
        let (_dir, store) = open();
        let id = queue(&store);
        count_status_updates(&store);
        let (submitted, matched) = deliver(&store, together_overtaken, id);
        assert_eq!(matched, ReceiptMatch::Parked, "answered as parked");
        assert_eq!(submitted, Some(MessageStatus::Delivered));
        let message = store.get_message("acme", id).unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Delivered);
        assert_eq!(message.smsc_message_id.as_deref(), Some("s1"));
        assert_eq!(status_updates(&store), 1, "one UPDATE, not two");
        assert_eq!(parked(&store), 0, "never parked");
    }

    #[test]
    fn a_receipt_handed_to_a_submit_that_does_not_apply_is_parked_by_it() {
        let (_dir, store) = open();
        let gone = queue(&store);
        wait(|done| store.mark_final(gone, MessageStatus::Expired, None, false, done)).unwrap();
        let (submitted, matched) = deliver(&store, together_overtaken, gone);
        assert_eq!((submitted, matched), (None, ReceiptMatch::Parked));
        assert_eq!(parked(&store), 1);
        // And it is applied when a message with that id is submitted.
        let next = queue(&store);
        assert_eq!(
            wait(|done| store.mark_submitted("acme", next, "ch", "s1", done)).unwrap(),
            Some(MessageStatus::Delivered)
        );
    }

    #[test]
    fn a_receipt_paired_with_a_submit_that_does_not_apply_is_matched_as_usual() {
        let (_dir, store) = open();
        // An older message holds SMSC id s1; a newer one is no longer queued.
        let older = queue(&store);
        wait(|done| store.mark_submitted("acme", older, "ch", "s1", done)).unwrap();
        let gone = queue(&store);
        wait(|done| store.mark_final(gone, MessageStatus::Expired, None, false, done)).unwrap();

        let (submitted, matched) = deliver(&store, together, gone);
        assert_eq!(submitted, None);
        assert!(
            matches!(matched, ReceiptMatch::Matched { id, .. } if id == older),
            "{matched:?}"
        );
        let status = |id| store.get_message("acme", id).unwrap().unwrap().status;
        assert_eq!(status(older), MessageStatus::Delivered);
        assert_eq!(status(gone), MessageStatus::Expired);
    }

    #[test]
    fn each_job_pairs_once_with_the_latest_unpaired_partner_and_intermediate_receipts_never() {
        let submit = || linked(Link::new(Role::Submit, key("s1")));
        let receipt = |status| {
            linked(Link::new(
                Role::Receipt {
                    status,
                    error: None,
                },
                key("s1"),
            ))
        };
        let delivered = || receipt(MessageStatus::Delivered);
        let mut jobs = vec![
            submit(),
            receipt(MessageStatus::Submitted),
            delivered(),
            delivered(),
            submit(),
            delivered(),
            submit(),
            linked(Link::new(Role::Submit, key("s2"))),
        ];
        pair(&mut jobs);
        let orders: Vec<Option<Order>> = jobs
            .iter_mut()
            .map(|job| job.link().and_then(|l| l.fold.as_ref().map(|f| f.order)))
            .collect();
        use Order::{ReceiptFirst, SubmitFirst};
        assert_eq!(
            orders,
            [
                Some(SubmitFirst),  // submit: with the first final receipt after it
                None,               // intermediate
                Some(SubmitFirst),  // its receipt
                Some(ReceiptFirst), // waits for the next submit
                Some(ReceiptFirst),
                Some(ReceiptFirst), // the latest receipt before the next submit
                Some(ReceiptFirst),
                None, // another SMSC id
            ]
        );
    }

    fn key(smsc_id: &str) -> Key {
        Key {
            tenant: "acme".into(),
            channel: "ch".into(),
            smsc_message_id: smsc_id.into(),
        }
    }

    fn linked(link: Link) -> Job {
        writer::linked_job(Some(link), |_, _, _| Ok(()), Box::new(|_| {}))
    }
}
