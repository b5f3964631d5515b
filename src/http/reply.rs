//! Answers from the store writer, handed back to the HTTP worker thread
//! that waits for them in one wake-up per batch rather than one per request.
//!
//! The store writer answers every request of a committed batch from its own
//! thread. Completing a `tokio::sync::oneshot` from there wakes the waiting
//! request's task on its worker thread, and tokio's current-thread runtime
//! unparks a thread from outside with an `eventfd` write every time, even
//! when that thread is already awake: one system call per accepted message
//! on the writer, the thread every message goes through (profiled at an
//! eighth of its time).
//!
//! A [`Reply`] does not complete its channel from the writer. It queues the
//! completion on its worker thread's [`Inbox`], a [`Coalescer`] that hands
//! the drain task everything queued for it once the writer has called every
//! completion of the transaction, so a batch answering fifty requests of one
//! worker costs one wake-up. The drain task then completes the channels on
//! the worker thread itself, where waking a task is a push onto the local
//! run queue.
//!
//! Only the answer moves. Whatever must happen in commit order (handing the
//! new message to its tenant's supervisor) stays in the writer's completion,
//! before [`Reply::send`].

use std::cell::RefCell;

use smppd_actors::coalesce::Coalescer;
use tokio::sync::{mpsc, oneshot};

/// A completion to run on the inbox's thread.
type Posted = Box<dyn FnOnce() + Send>;

/// One worker thread's inbox: completions posted from other threads, handed
/// to the thread's drain task once per writer transaction.
#[derive(Clone)]
struct Inbox {
    posts: Coalescer<Posted>,
    /// Closed once the drain task is gone (its runtime stopped): a runtime
    /// started later on the same thread needs a new inbox.
    drain: mpsc::UnboundedSender<Vec<Posted>>,
}

/// Runs on the owning thread for as long as its runtime does; what is
/// still queued when the runtime drops it is dropped with it (nobody on
/// that runtime waits for it any more).
async fn drain(mut posted: mpsc::UnboundedReceiver<Vec<Posted>>) {
    while let Some(batch) = posted.recv().await {
        for post in batch {
            post();
        }
    }
}

thread_local! {
    /// This thread's inbox, created (with its drain task) on first use.
    static INBOX: RefCell<Option<Inbox>> = const { RefCell::new(None) };
}

/// The calling thread's inbox; starts its drain task on first use.
///
/// Must be called from a task of the actix runtime (a request handler).
fn local_inbox() -> Inbox {
    INBOX.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &*cell {
            Some(inbox) if !inbox.drain.is_closed() => inbox.clone(),
            _ => {
                let (tx, rx) = mpsc::unbounded_channel::<Vec<Posted>>();
                actix_web::rt::spawn(drain(rx));
                let to_drain = tx.clone();
                let inbox = Inbox {
                    posts: Coalescer::new(move |batch| {
                        let _ = to_drain.send(batch);
                    }),
                    drain: tx,
                };
                *cell = Some(inbox.clone());
                inbox
            }
        }
    })
}

/// The sending half: completes the receiver on the thread that created it.
pub(crate) struct Reply<T> {
    inbox: Inbox,
    tx: oneshot::Sender<T>,
}

impl<T: Send + 'static> Reply<T> {
    /// Answers the waiting request. Callable from any thread; a request
    /// that stopped waiting is not an error.
    pub(crate) fn send(self, value: T) {
        let Reply { inbox, tx } = self;
        inbox.posts.push(Box::new(move || {
            let _ = tx.send(value);
        }));
    }
}

/// A one-shot answer for a request handler: the receiver resolves on the
/// calling thread (see the module header). Call from a request handler.
pub(crate) fn channel<T: Send + 'static>() -> (Reply<T>, oneshot::Receiver<T>) {
    let (tx, rx) = oneshot::channel();
    (
        Reply {
            inbox: local_inbox(),
            tx,
        },
        rx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::rt::test]
    async fn an_answer_sent_from_another_thread_arrives_on_the_waiting_one() {
        let (reply, rx) = channel::<u32>();
        std::thread::spawn(move || reply.send(7)).join().unwrap();
        assert_eq!(rx.await.unwrap(), 7);
    }

    #[actix_web::rt::test]
    async fn many_answers_posted_while_the_drain_runs_all_arrive() {
        let mut receivers = Vec::new();
        let mut replies = Vec::new();
        for i in 0..1000u32 {
            let (reply, rx) = channel::<u32>();
            replies.push((i, reply));
            receivers.push(rx);
        }
        let sender = std::thread::spawn(move || {
            for (i, reply) in replies {
                reply.send(i);
                if i % 97 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        for (i, rx) in receivers.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), i as u32);
        }
        sender.join().unwrap();
    }

    #[actix_web::rt::test]
    async fn one_inbox_serves_every_request_of_a_thread() {
        let (first, _rx1) = channel::<()>();
        let (second, _rx2) = channel::<()>();
        assert!(first.inbox.drain.same_channel(&second.inbox.drain));
    }

    #[test]
    fn a_runtime_started_after_another_on_the_same_thread_still_gets_its_answers() {
        for value in 0..3u32 {
            actix_web::rt::System::new().block_on(async move {
                let (reply, rx) = channel::<u32>();
                std::thread::spawn(move || reply.send(value))
                    .join()
                    .unwrap();
                assert_eq!(rx.await.unwrap(), value);
            });
        }
    }
}
