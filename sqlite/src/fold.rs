//! A submit and its receipt in one batch: one `UPDATE` instead of three
//! statements.
//!
//! SMSCs often send a delivery receipt within milliseconds of the
//! `submit_sm_resp`, so the writer mostly finds `mark_submitted` and
//! `apply_receipt` for the same message in the same batch. Run one after
//! the other, that is an `UPDATE` to submitted, then a lookup by SMSC id and
//! a second `UPDATE` to the final status, with every index and trigger
//! touched twice. Before running a batch, the writer pairs them ([`pair`]):
//! the submit then writes the final status in its own `UPDATE` and leaves
//! what the receipt would have answered in the shared [`Fold`]; the
//! receipt answers that without touching the database.
//!
//! Everything a caller sees is unchanged: the submit still answers "not
//! final yet" and the receipt answers the match, as if it ran after. Only
//! receipts whose outcome is the same either way are paired:
//!
//! - a *final* receipt (an intermediate one may not override a status);
//! - arriving *after* the submit in the batch (one that overtook it goes
//!   the usual way: it may match an older message with a recycled id);
//! - not `failed` or `expired`: after a submit those keep the charge
//!   captured, while `queued` → `failed`/`expired` releases it.
//!
//! If the submit does not apply (the message was no longer queued), or its
//! transaction is rolled back, the receipt runs its own SQL as usual.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::types::{ErrorInfo, MessageStatus, ReceiptMatch};
use crate::writer::Job;

/// What a receipt is matched by: (tenant, channel, SMSC message id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) tenant: String,
    pub(crate) channel: String,
    pub(crate) smsc_message_id: String,
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

/// Shared by a paired submit and receipt.
#[derive(Debug)]
pub(crate) struct Fold {
    /// The receipt's outcome, for the submit to write.
    pub(crate) status: MessageStatus,
    pub(crate) error: Option<ErrorInfo>,
    /// What the receipt answers, once the submit wrote it.
    answer: Mutex<Option<ReceiptMatch>>,
}

impl Fold {
    fn answer(&self) -> MutexGuard<'_, Option<ReceiptMatch>> {
        // Only the writer thread touches it; a poisoned lock still holds a
        // consistent Option.
        self.answer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The submit applied the receipt's outcome.
    pub(crate) fn applied(&self, answer: ReceiptMatch) {
        *self.answer() = Some(answer);
    }

    /// The submit did not apply it, or its transaction was rolled back.
    pub(crate) fn clear(&self) {
        *self.answer() = None;
    }

    /// The receipt's answer if the submit wrote it, else `None` (then the
    /// receipt runs as usual).
    pub(crate) fn answered(&self) -> Option<ReceiptMatch> {
        self.answer().clone()
    }
}

/// Whether a receipt with this outcome may be written by its submit.
pub(crate) fn foldable(status: MessageStatus) -> bool {
    status.is_terminal() && !matches!(status, MessageStatus::Failed | MessageStatus::Expired)
}

/// Pairs each foldable receipt with the latest submit before it in the
/// batch for the same key (each submit with at most one receipt).
pub(crate) fn pair(jobs: &mut [Job]) {
    let mut submits: HashMap<Key, usize> = HashMap::new();
    for index in 0..jobs.len() {
        let paired = match jobs[index].link() {
            None => None,
            Some(link) => match (&link.role, link.fold.take()) {
                (Role::Submit, _) => {
                    submits.insert(link.key.clone(), index);
                    None
                }
                (Role::Receipt { status, error }, _) if foldable(*status) => {
                    submits.remove(&link.key).map(|submit| {
                        let fold = Arc::new(Fold {
                            status: *status,
                            error: error.clone(),
                            answer: Mutex::new(None),
                        });
                        link.fold = Some(Arc::clone(&fold));
                        (submit, fold)
                    })
                }
                (Role::Receipt { .. }, _) => None,
            },
        };
        if let Some((submit, fold)) = paired {
            if let Some(link) = jobs[submit].link() {
                link.fold = Some(fold);
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

    fn status_updates(store: &Store) -> i64 {
        wait(|done| {
            store.submit(writer::job(
                |conn, _| {
                    Ok(conn.query_row("SELECT COUNT(*) FROM status_updates", [], |r| r.get(0))?)
                },
                done,
            ))
        })
        .unwrap()
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

    /// The submit and then the receipt, in one batch.
    fn together(store: &Store, tenant: &str, id: MessageId, r: Receipt) -> Answers {
        let (submitted_tx, submitted) = mpsc::channel();
        let (matched_tx, matched) = mpsc::channel();
        let release = hold(store);
        store.mark_submitted(
            tenant,
            id,
            "ch",
            "s1",
            Box::new(move |r| submitted_tx.send(r).unwrap()),
        );
        store.apply_receipt(r, Box::new(move |r| matched_tx.send(r).unwrap()));
        release.send(()).unwrap();
        (
            submitted.recv().unwrap().unwrap(),
            matched.recv().unwrap().unwrap(),
        )
    }

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(dir.path().join("fold.db"), StoreOptions::default()).unwrap()
    }

    fn insert(store: &Store, message: NewMessage) -> MessageId {
        wait(|done| store.insert_message(message, done)).unwrap()
    }

    #[test]
    fn a_receipt_in_its_submits_batch_is_written_by_the_submits_own_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let id = insert(&store, NewMessage::new("acme", "A", "+4915112345678", "hi"));
        count_status_updates(&store);
        let (submitted, matched) = together(
            &store,
            "acme",
            id,
            receipt("acme", "s1", MessageStatus::Delivered),
        );
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
        let apart_id = insert(&store, NewMessage::new("acme", "A", "+4915112345678", "hi"));
        apart(
            &store,
            "acme",
            apart_id,
            receipt("acme", "s1", MessageStatus::Delivered),
        );
        assert_eq!(status_updates(&store), 3);
    }

    #[test]
    fn every_final_receipt_folded_into_its_submit_leaves_what_it_leaves_applied_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for status in [
            MessageStatus::Delivered,
            MessageStatus::Undeliverable,
            MessageStatus::Rejected,
            MessageStatus::Unknown,
            MessageStatus::Failed,
            MessageStatus::Expired,
        ] {
            let mut outcomes = Vec::new();
            let ways: [(&str, Way); 2] = [("apart", apart), ("together", together)];
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
                    } => (final_status, submitted_at_ms == m.submitted_at_ms),
                    ReceiptMatch::Parked => panic!("{way} {status}: receipt parked"),
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
                ));
            }
            assert_eq!(outcomes[0], outcomes[1], "{status}: apart vs together");
        }
    }

    #[test]
    fn a_receipt_paired_with_a_submit_that_does_not_apply_is_matched_as_usual() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        // An older message holds SMSC id s1; a newer one is no longer queued.
        let older = insert(&store, NewMessage::new("acme", "A", "+4915112345678", "a"));
        wait(|done| store.mark_submitted("acme", older, "ch", "s1", done)).unwrap();
        let gone = insert(&store, NewMessage::new("acme", "A", "+4915112345678", "b"));
        wait(|done| store.mark_final(gone, MessageStatus::Expired, None, false, done)).unwrap();

        let (submitted, matched) = together(
            &store,
            "acme",
            gone,
            receipt("acme", "s1", MessageStatus::Delivered),
        );
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
    fn an_intermediate_or_overtaking_receipt_is_not_paired() {
        let submit = || Link::new(Role::Submit, key("s1"));
        let receipt = |status| {
            Link::new(
                Role::Receipt {
                    status,
                    error: None,
                },
                key("s1"),
            )
        };
        let mut jobs = vec![
            linked(receipt(MessageStatus::Delivered)),
            linked(submit()),
            linked(receipt(MessageStatus::Submitted)),
            linked(receipt(MessageStatus::Delivered)),
            linked(receipt(MessageStatus::Delivered)),
        ];
        pair(&mut jobs);
        let paired: Vec<bool> = jobs
            .iter_mut()
            .map(|job| job.link().is_some_and(|l| l.fold.is_some()))
            .collect();
        // The submit pairs with the first final receipt after it, only.
        assert_eq!(paired, [false, true, false, true, false]);
    }

    fn key(smsc_id: &str) -> Key {
        Key {
            tenant: "acme".into(),
            channel: "ch".into(),
            smsc_message_id: smsc_id.into(),
        }
    }

    fn linked(link: Link) -> Job {
        writer::linked_job(link, |_, _, _| Ok(()), Box::new(|_| {}))
    }
}
