//! State shared by the accept loop, the sessions and the handle: sessions,
//! per-account queues of deliver_sm waiting for a receiver, counters.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rusmpp::Command;
use rusmpp::Pdu;
use tokio::sync::{mpsc, watch};

use super::{
    Account, BoundSession, Faults, MessageIdFormat, ReceiptIdFormat, ReceivedSubmit, SimulatorStats,
};

/// What a deliver_sm is, for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliverKind {
    Receipt,
    MobileOriginated,
}

/// A deliver_sm on its way to an account: it is owned by exactly one place at
/// a time (a queue, a session's channel, a session's in-flight map or a
/// timer), so it is never lost and never duplicated while the simulator runs.
#[derive(Debug, Clone)]
pub(crate) struct Deliver {
    pub system_id: String,
    pub kind: DeliverKind,
    /// A deliver_sm, or a data_sm for receipts sent that way.
    pub pdu: Box<Pdu>,
    /// A receipt waits this long beyond `dlr_delay`: until the
    /// schedule_delivery_time of its submit.
    pub hold: Duration,
}

/// Work for a session task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this deliver_sm and track it until deliver_sm_resp.
    Deliver(Deliver),
    /// Send this response; then, if given, schedule the receipt after
    /// `dlr_delay`.
    Response {
        command: Box<Command>,
        receipt: Option<Deliver>,
    },
    /// Close the connection now (no unbind).
    Close,
}

struct SessionEntry {
    tx: mpsc::UnboundedSender<Outbound>,
    bound: Option<BoundSession>,
}

#[derive(Default)]
struct State {
    submits: Vec<ReceivedSubmit>,
    sessions: HashMap<u64, SessionEntry>,
    queues: HashMap<String, VecDeque<Deliver>>,
    round_robin: HashMap<String, usize>,
    next_session_id: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub submits_received: AtomicUsize,
    pub submits_accepted: AtomicU64,
    pub receipts_sent: AtomicU64,
    pub receipts_lost: AtomicU64,
    pub receipts_acknowledged: AtomicU64,
    pub mo_sent: AtomicU64,
    pub binds: AtomicU64,
    pub unbinds: AtomicU64,
    pub enquire_links: AtomicU64,
    pub max_submits_in_flight: AtomicUsize,
    pub connections: AtomicU64,
    pub tls_failures: AtomicU64,
    pub pdus_sent: AtomicU64,
}

pub(crate) struct Shared {
    pub accounts: Vec<Account>,
    pub dlr_delay: Duration,
    pub message_id_format: MessageIdFormat,
    receipt_id_format: ReceiptIdFormat,
    /// Receipts go out as data_sm.
    pub receipts_as_data_sm: bool,
    faults: RwLock<Faults>,
    next_message_id: AtomicU64,
    pub counters: Counters,
    state: Mutex<State>,
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn new(
        accounts: Vec<Account>,
        dlr_delay: Duration,
        (format, receipt_id_format): (MessageIdFormat, ReceiptIdFormat),
        faults: Faults,
    ) -> Self {
        // Ids start from the clock so a restarted simulator does not hand
        // out the ids of its previous run again.
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1)
            .saturating_mul(1000);
        Self {
            accounts,
            dlr_delay,
            message_id_format: format,
            receipt_id_format,
            receipts_as_data_sm: false,
            faults: RwLock::new(faults),
            next_message_id: AtomicU64::new(base),
            counters: Counters::default(),
            state: Mutex::new(State::default()),
            shutdown: watch::channel(false).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the simulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// How a receipt quotes `issued`, an id from [`Shared::next_message_id`].
    pub fn receipt_id(&self, issued: &str) -> String {
        let radix = match self.message_id_format {
            MessageIdFormat::Hex => 16,
            MessageIdFormat::Decimal => 10,
            // Refused at start with any other receipt format.
            MessageIdFormat::Uuid => return issued.to_string(),
        };
        match (self.receipt_id_format, u64::from_str_radix(issued, radix)) {
            (ReceiptIdFormat::Decimal, Ok(n)) => format!("{n:020}"),
            (ReceiptIdFormat::Hex, Ok(n)) => format!("{n:016X}"),
            _ => issued.to_string(),
        }
    }

    /// A message id never handed out before by this simulator.
    pub fn next_message_id(&self) -> String {
        let n = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        match self.message_id_format {
            MessageIdFormat::Hex => format!("{n:x}"),
            MessageIdFormat::Decimal => n.to_string(),
            MessageIdFormat::Uuid => {
                let bits = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62))
                    | (0x4 << 76)
                    | (0x2 << 62);
                let hex = format!("{bits:032x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
        }
    }

    pub fn record_submit(&self, submit: ReceivedSubmit) {
        self.counters
            .submits_accepted
            .fetch_add(1, Ordering::Relaxed);
        self.state().submits.push(submit);
    }

    pub fn submits(&self) -> Vec<ReceivedSubmit> {
        self.state().submits.clone()
    }

    /// Registers a new connection; returns its id.
    pub fn register(&self, tx: mpsc::UnboundedSender<Outbound>) -> u64 {
        let mut state = self.state();
        state.next_session_id += 1;
        let id = state.next_session_id;
        state.sessions.insert(id, SessionEntry { tx, bound: None });
        id
    }

    /// Marks a connection bound. A receiver or transceiver gets everything
    /// queued for its account, in order.
    pub fn bind(&self, id: u64, bound: BoundSession) {
        let mut state = self.state();
        let receives = bound.mode != "transmitter";
        let system_id = bound.system_id.clone();
        let Some(entry) = state.sessions.get_mut(&id) else {
            return;
        };
        entry.bound = Some(bound);
        let tx = entry.tx.clone();
        if !receives {
            return;
        }
        let queued = state.queues.remove(&system_id).unwrap_or_default();
        if !queued.is_empty() {
            log::info!(
                "simulator: {} queued deliver_sm go to the new bind of {system_id}",
                queued.len()
            );
        }
        let mut queued = queued.into_iter();
        while let Some(deliver) = queued.next() {
            if let Err(mpsc::error::SendError(Outbound::Deliver(deliver))) =
                tx.send(Outbound::Deliver(deliver))
            {
                // The session is already gone: keep everything queued.
                let queue = state.queues.entry(system_id.clone()).or_default();
                queue.push_back(deliver);
                queue.extend(queued);
                return;
            }
        }
    }

    /// Forgets a connection (it no longer receives anything).
    pub fn unregister(&self, id: u64) {
        self.state().sessions.remove(&id);
    }

    /// Hands a deliver_sm to a bound receiver/transceiver of its account
    /// (round robin), or queues it until one binds.
    pub fn dispatch(&self, deliver: Deliver) {
        self.dispatch_preferring(deliver, None);
    }

    /// As [`Shared::dispatch`], trying session `prefer` first when it can
    /// take the deliver_sm.
    pub fn dispatch_preferring(&self, deliver: Deliver, prefer: Option<u64>) {
        let mut state = self.state();
        let mut candidates: Vec<u64> = state
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.bound
                    .as_ref()
                    .is_some_and(|b| b.system_id == deliver.system_id && b.mode != "transmitter")
            })
            .map(|(id, _)| *id)
            .collect();
        candidates.sort_unstable();
        if let Some(pos) = prefer.and_then(|p| candidates.iter().position(|c| *c == p)) {
            let preferred = candidates.remove(pos);
            candidates.insert(0, preferred);
        }
        let system_id = deliver.system_id.clone();
        let mut deliver = deliver;
        if !candidates.is_empty() {
            let start = if prefer.is_some() {
                0
            } else {
                state.round_robin.get(&system_id).copied().unwrap_or(0)
            };
            for i in 0..candidates.len() {
                let index = (start + i) % candidates.len();
                let Some(entry) = state.sessions.get(&candidates[index]) else {
                    continue;
                };
                match entry.tx.send(Outbound::Deliver(deliver)) {
                    Ok(()) => {
                        state.round_robin.insert(system_id, index + 1);
                        return;
                    }
                    Err(mpsc::error::SendError(Outbound::Deliver(back))) => deliver = back,
                    Err(_) => return,
                }
            }
        }
        log::debug!(
            "simulator: no receiver bound for {}, deliver_sm queued",
            deliver.system_id
        );
        state
            .queues
            .entry(deliver.system_id.clone())
            .or_default()
            .push_back(deliver);
    }

    pub fn bound_sessions(&self) -> Vec<BoundSession> {
        let state = self.state();
        let mut sessions: Vec<(u64, BoundSession)> = state
            .sessions
            .iter()
            .filter_map(|(id, s)| s.bound.clone().map(|b| (*id, b)))
            .collect();
        sessions.sort_by_key(|(id, _)| *id);
        sessions.into_iter().map(|(_, b)| b).collect()
    }

    /// Tells every connection to close.
    pub fn close_all(&self) {
        for entry in self.state().sessions.values() {
            let _ = entry.tx.send(Outbound::Close);
        }
    }

    /// Forgets every connection (after the runtime is gone).
    pub fn clear_sessions(&self) {
        self.state().sessions.clear();
    }

    pub fn stats(&self) -> SimulatorStats {
        let state = self.state();
        let c = &self.counters;
        SimulatorStats {
            submits_received: c.submits_received.load(Ordering::Relaxed) as u64,
            submits_accepted: c.submits_accepted.load(Ordering::Relaxed),
            receipts_sent: c.receipts_sent.load(Ordering::Relaxed),
            receipts_lost: c.receipts_lost.load(Ordering::Relaxed),
            receipts_acknowledged: c.receipts_acknowledged.load(Ordering::Relaxed),
            mo_sent: c.mo_sent.load(Ordering::Relaxed),
            binds: c.binds.load(Ordering::Relaxed),
            unbinds: c.unbinds.load(Ordering::Relaxed),
            enquire_links: c.enquire_links.load(Ordering::Relaxed),
            max_submits_in_flight: c.max_submits_in_flight.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            tls_failures: c.tls_failures.load(Ordering::Relaxed),
            open_connections: state.sessions.len(),
            bound_sessions: state
                .sessions
                .values()
                .filter(|s| s.bound.is_some())
                .count(),
            queued_deliveries: state.queues.values().map(VecDeque::len).sum(),
        }
    }
}
