//! `TenantSupervisor`: one per tenant; owns that tenant's connections and
//! its in-memory window onto the durable queue.
//!
//! Owns:
//! - one slot per configured session of each channel, each holding the
//!   current [`Connection`] (if any), its state, and the messages handed to
//!   it that have no outcome yet;
//! - a bounded in-memory queue — a *window onto* the `queued` rows in
//!   SQLite, refilled from the store, never the queue itself — and the
//!   delayed retries.
//!
//! Handles: [`Enqueued`] (a message was committed), connection reports
//! ([`SessionState`], [`SessionUp`], [`SubmitDone`], [`SessionEnded`]),
//! [`GetConnections`], [`Reconfigure`] (channels added, changed or removed
//! at run time), [`Shutdown`], [`Stop`], [`PanicSession`] (tests).
//!
//! Channels change live: [`Reconfigure`] compares channels by name. An
//! unchanged channel keeps its sessions untouched; a removed or changed
//! one has its slots *retired* (its sessions unbind gracefully, what they
//! held goes back to the queue, and a retired slot is never reconnected);
//! a new or changed one gets fresh slots. A retired slot whose connection
//! has ended is reused by the next new slot, so the list does not grow.
//!
//! Supervises: its connections. When one ends for any reason (including a
//! panic, reported from the connection's `Drop`), the messages it held go
//! back to the queue as "outcome unknown, retry" and the slot is re-created
//! after an exponential backoff with jitter. Nothing else is touched: other
//! slots, and other tenants' supervisors, carry on.
//!
//! Supervised by: nobody restarts a supervisor; it holds no socket and does
//! no I/O on its own thread (store reads run on the blocking pool), so it
//! has nothing that fails. The [`crate::Registry`] starts and stops it.
//!
//! Queue consistency: the store assigns ids in commit order and calls back
//! in that order, so [`Enqueued`] notifications arrive in id order. The
//! supervisor keeps `cursor` = the highest id it has taken into memory; a
//! notification at or below it is a duplicate of a refill, and while the
//! in-memory queue is full (`backlog`) notifications are dropped and later
//! read back from the store after `cursor`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use smppd_sqlite::{ErrorInfo, MessageId, MessageStatus, QueuedMessage, Store};

use crate::connection::{outcome_unknown_error, Connection, InjectPanic, SlotId, Submit, Unbind};
use crate::lanes::{Lanes, Offer};
use crate::smpp::session::{BindMode, SessionState as ProtoState, SubmitOutcome};
use crate::smpp::status::{self, ErrorClass};
use crate::smpp::time::unix_ms;
use crate::spec::{backoff, ChannelSpec, TenantSpec};
use crate::stats::TenantStats;

/// Above this many uncommitted store writes, supervisors stop handing out
/// submits (each produces two more writes: submitted and its receipt) until
/// the writer catches up; the retry tick resumes them. Bounds memory when
/// the SMPP side is faster than the disk.
const STORE_BACKLOG_LIMIT: u64 = 20_000;

/// How much less free window the session of the previous submit may have
/// than the freest one and still take the next (see `pump`).
const STICKY_SLACK: usize = 8;

/// Whether `pump` keeps the previous submit's session, which has `free`
/// window left, when the freest session has `best_free`.
fn sticks(free: usize, best_free: usize) -> bool {
    free > 0 && free + STICKY_SLACK >= best_free
}

/// How often the in-memory queue is swept for messages whose validity
/// ended while they waited (say, for an SMSC that is down).
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);
/// How often delayed retries are checked.
const RETRY_TICK: Duration = Duration::from_millis(100);

/// Messages were committed to the store for this tenant, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueued(pub Vec<QueuedMessage>);

/// A connection's protocol state changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionState {
    /// Which connection.
    pub slot: SlotId,
    /// Its new state.
    pub state: ProtoState,
}

/// A connection is bound.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionUp {
    /// Which connection.
    pub slot: SlotId,
    /// Its window size.
    pub window: usize,
    /// Whether it may submit (not a receiver).
    pub can_submit: bool,
}

/// What became of a message handed to a connection.
#[derive(Debug)]
pub enum Attempt {
    /// Never sent: the session was not ready or is unbinding.
    NotSent,
    /// Never sent: it waited longer than `window_wait_timeout` for a window
    /// slot or a rate token.
    WindowWaitExpired,
    /// Sent; this is how it ended.
    Sent(SubmitOutcome),
}

/// A submit finished (or could not be sent).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubmitDone {
    /// Which connection.
    pub slot: SlotId,
    /// The message.
    pub message: QueuedMessage,
    /// How it went.
    pub attempt: Attempt,
}

/// A connection's rate limit changed (throttling lowered it, or it
/// recovered).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RateReport {
    /// Which connection.
    pub slot: SlotId,
    /// Submits per second in force; `None` = unlimited.
    pub limit: Option<f64>,
}

/// A connection is gone (sent from its `Drop`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    /// Which connection.
    pub slot: SlotId,
    /// Why, for the log and `GET /v1/connections`.
    pub reason: String,
    /// Whether it had bound (resets the reconnect backoff).
    pub was_bound: bool,
}

/// What `GET /v1/connections` shows for one session.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    /// Channel name.
    pub channel: String,
    /// Session index within the channel.
    pub session: usize,
    /// Bind mode.
    pub bind: &'static str,
    /// connecting / binding / bound / unbinding / backing_off / closed.
    pub state: &'static str,
    /// When it entered that state.
    pub since: SystemTime,
    /// The last reason a session of this slot ended.
    pub last_error: Option<String>,
    /// Its channel speaks SMPP over TLS.
    pub tls: bool,
    /// Submits in flight.
    pub window_in_use: usize,
    /// Window size.
    pub window_size: usize,
    /// Submits handed to this slot since start.
    pub submitted: u64,
    /// Submits answered ESME_RTHROTTLED / ESME_RMSGQFUL.
    pub throttled: u64,
    /// Submits whose outcome is unknown (response timeout or session lost)
    /// and that were therefore retried.
    pub expired: u64,
    /// Submits handed back after waiting too long for a slot or a token.
    pub window_wait_timeouts: u64,
    /// Rate limit in force (submits per second); `None` = unlimited.
    pub rate_limit: Option<f64>,
}

/// Lists this tenant's sessions.
#[derive(Message)]
#[rtype(result = "Vec<ConnectionInfo>")]
pub struct GetConnections;

/// Unbind every session; answers when all are closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Stop the actor (after [`Shutdown`]): its timers end with it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// The tenant's channels changed: apply the new list live.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub TenantSpec);

/// Make one connection panic (supervision tests).
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicSession {
    /// Slot index.
    pub index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Connecting,
    Binding,
    Bound,
    Unbinding,
    BackingOff,
    Closed,
}

impl SlotState {
    fn as_str(self) -> &'static str {
        match self {
            SlotState::Connecting => "connecting",
            SlotState::Binding => "binding",
            SlotState::Bound => "bound",
            SlotState::Unbinding => "unbinding",
            SlotState::BackingOff => "backing_off",
            SlotState::Closed => "closed",
        }
    }
}

struct Slot {
    channel: Arc<ChannelSpec>,
    /// Index of this session within its channel.
    session: usize,
    /// How it binds (a channel's extra receiver sessions are receivers).
    mode: BindMode,
    arbiter: ArbiterHandle,
    generation: u64,
    addr: Option<Addr<Connection>>,
    state: SlotState,
    since: SystemTime,
    last_error: Option<String>,
    window: usize,
    can_submit: bool,
    /// Consecutive failed connection attempts, for the backoff.
    failures: u32,
    /// The connection handed a message back unsent: it is closing or
    /// unbinding, so send it nothing more until it (or its successor) is
    /// bound again.
    paused: bool,
    /// Its channel was removed or changed: never reconnected; reusable
    /// once its connection has ended.
    retired: bool,
    /// Messages handed to the connection with no outcome yet. The source of
    /// truth for what to retry when the connection dies: actix drops a dead
    /// actor's mailbox, so messages still queued there are recovered from
    /// here, not from the connection.
    outstanding: HashMap<MessageId, QueuedMessage>,
    /// Window slots the outstanding messages take: one per submit_sm, so
    /// one per SMS part unless the channel sends long messages whole
    /// (`message_payload`).
    parts_in_flight: usize,
    submitted: u64,
    throttled: u64,
    expired: u64,
    window_wait_timeouts: u64,
    rate_limit: Option<f64>,
}

impl Slot {
    /// Window slots `message` takes on this slot's channel.
    fn slots_for(&self, message: &QueuedMessage) -> usize {
        self.channel.long_messages.submits(message.parts as usize)
    }

    fn free(&self) -> usize {
        if self.state == SlotState::Bound
            && self.can_submit
            && !self.paused
            && !self.retired
            && self.addr.is_some()
        {
            self.window.saturating_sub(self.parts_in_flight)
        } else {
            0
        }
    }

    /// Asks its connection to unbind gracefully (in-flight submits are
    /// answered first); a slot without one is simply closed.
    fn unbind(&mut self) {
        match self.addr.clone() {
            Some(addr) => {
                self.set_state(SlotState::Unbinding);
                addr.do_send(Unbind);
            }
            None => self.set_state(SlotState::Closed),
        }
    }

    fn set_state(&mut self, state: SlotState) {
        if self.state != state {
            self.state = state;
            self.since = SystemTime::now();
        }
    }
}

/// The supervisor actor.
pub struct TenantSupervisor {
    tenant: Arc<str>,
    store: Store,
    /// Where new connections run.
    arbiters: Vec<ArbiterHandle>,
    slots: Vec<Slot>,
    /// The window onto the durable queue (see [`Lanes`]).
    lanes: Lanes,
    retries: Vec<(Instant, QueuedMessage)>,
    shutting_down: bool,
    shutdown_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    stats: Arc<TenantStats>,
}

impl TenantSupervisor {
    /// A supervisor for `spec`, whose connections run on `arbiters`.
    pub fn new(
        spec: &TenantSpec,
        store: Store,
        arbiters: &[ArbiterHandle],
        stats: Arc<TenantStats>,
    ) -> Self {
        // Every session's window, receivers' included.
        let total_window: usize = spec
            .channels
            .iter()
            .map(|c| c.window * (c.sessions + c.receiver_sessions))
            .sum();
        let mut supervisor = Self {
            tenant: Arc::from(spec.id.as_str()),
            store,
            arbiters: arbiters.to_vec(),
            slots: Vec::new(),
            lanes: Lanes::new((total_window * 4).max(1000)),
            retries: Vec::new(),
            shutting_down: false,
            shutdown_waiters: Vec::new(),
            stats,
        };
        for channel in &spec.channels {
            supervisor.add_slots(channel);
        }
        supervisor
    }

    /// Adds the slots of one channel (reusing retired slots whose
    /// connection has ended); returns their indexes, not yet started.
    fn add_slots(&mut self, channel: &Arc<ChannelSpec>) -> Vec<usize> {
        let modes = std::iter::repeat_n(channel.bind.mode, channel.sessions).chain(
            std::iter::repeat_n(BindMode::Receiver, channel.receiver_sessions),
        );
        let mut added = Vec::new();
        for (session, mode) in modes.enumerate() {
            let reusable = self
                .slots
                .iter()
                .position(|s| s.retired && s.addr.is_none());
            let index = reusable.unwrap_or(self.slots.len());
            let arbiter = self.arbiters[(index + self.tenant.len()) % self.arbiters.len()].clone();
            let slot = Slot {
                channel: channel.clone(),
                session,
                mode,
                arbiter,
                // Continues the old slot's count, so its stale reports and
                // timers are told apart from the new connection's.
                generation: self.slots.get(index).map_or(0, |s| s.generation),
                addr: None,
                state: SlotState::Connecting,
                since: SystemTime::now(),
                last_error: None,
                window: channel.window,
                can_submit: mode.can_submit(),
                failures: 0,
                paused: false,
                retired: false,
                outstanding: HashMap::new(),
                parts_in_flight: 0,
                submitted: 0,
                throttled: 0,
                expired: 0,
                window_wait_timeouts: 0,
                rate_limit: channel.submits_per_second,
            };
            if index == self.slots.len() {
                self.slots.push(slot);
            } else {
                self.slots[index] = slot;
            }
            added.push(index);
        }
        added
    }

    fn start_slot(&mut self, index: usize, ctx: &mut Context<Self>) {
        if self.shutting_down || self.slots[index].retired {
            return;
        }
        let supervisor = ctx.address();
        let tenant = self.tenant.clone();
        let store = self.store.clone();
        let slot = &mut self.slots[index];
        slot.generation += 1;
        let id = SlotId {
            index,
            generation: slot.generation,
        };
        let channel = slot.channel.clone();
        let (mode, session_no) = (slot.mode, slot.session);
        let stats = self.stats.clone();
        slot.set_state(SlotState::Connecting);
        slot.addr = Some(Connection::start_in_arbiter(&slot.arbiter, move |_| {
            Connection::new(
                id, session_no, tenant, channel, mode, store, supervisor, stats,
            )
        }));
    }

    fn current(&self, slot: SlotId) -> bool {
        self.slots
            .get(slot.index)
            .is_some_and(|s| s.generation == slot.generation)
    }

    /// Hands queued messages to the sessions with the most free window,
    /// in lane order; messages whose validity has ended are expired instead.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let now_ms = unix_ms();
        if self.store.pending_writes() > STORE_BACKLOG_LIMIT {
            return;
        }
        // The session the last message went to, kept while it is nearly as
        // free as the best: consecutive messages then share that
        // connection's wake-up and socket write instead of alternating
        // between sessions one message at a time.
        let mut current: Option<usize> = None;
        // What each session is handed, sent as one `Submit` per run of
        // messages for the same session.
        let mut batches: Vec<(usize, Vec<QueuedMessage>)> = Vec::new();
        while !self.lanes.is_empty() && !self.shutting_down {
            let best = self
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.free()))
                .filter(|(_, free)| *free > 0)
                .max_by_key(|(_, free)| *free);
            let Some((best, best_free)) = best else { break };
            let index = match current {
                Some(c) if sticks(self.slots[c].free(), best_free) => c,
                _ => best,
            };
            current = Some(index);
            let Some(message) = self.lanes.pop_next() else {
                break;
            };
            if message
                .validity_until_ms
                .is_some_and(|until| until <= now_ms)
            {
                self.expire(message);
                continue;
            }
            let slot = &mut self.slots[index];
            slot.parts_in_flight += slot.slots_for(&message);
            slot.outstanding.insert(message.id, message.clone());
            slot.submitted += 1;
            match batches.last_mut() {
                Some((last, batch)) if *last == index => batch.push(message),
                _ => {
                    let mut batch = Vec::with_capacity(self.lanes.len().min(64) + 1);
                    batch.push(message);
                    batches.push((index, batch));
                }
            }
        }
        for (index, batch) in batches {
            if let Some(addr) = &self.slots[index].addr {
                addr.do_send(Submit(batch));
            }
        }
        self.maybe_refill(ctx);
    }

    /// Its validity ended before it could be submitted: `expired`, and its
    /// reserved credit is released (by the store's trigger).
    fn expire(&mut self, message: QueuedMessage) {
        let (id, tenant) = (message.id, self.tenant.clone());
        log::info!("[{tenant}] message {id} expired before it could be submitted");
        self.finalize(id, MessageStatus::Expired, validity_expired(), false);
    }

    /// Records a final status we decided; counters and the live event
    /// follow the commit, never precede it.
    fn finalize(
        &self,
        id: MessageId,
        status: MessageStatus,
        error: ErrorInfo,
        count_attempt: bool,
    ) {
        let (tenant, stats) = (self.tenant.clone(), self.stats.clone());
        let event_error = error.clone();
        self.store.mark_final(
            id,
            status,
            Some(error),
            count_attempt,
            Box::new(move |res| match res {
                Ok(()) => {
                    stats.finished(status);
                    stats.events.status(id, status, Some(event_error));
                }
                Err(e) => log::error!("[{tenant}] recording message {id} as {status} failed: {e}"),
            }),
        );
    }

    fn maybe_refill(&mut self, ctx: &mut Context<Self>) {
        for refill in self.lanes.refills_wanted() {
            let (store, tenant) = (self.store.clone(), self.tenant.clone());
            let read = tokio::task::spawn_blocking(move || {
                store.queued_messages(&tenant, refill.priority, refill.after, refill.limit)
            });
            ctx.spawn(read.into_actor(self).map(move |res, act, ctx| match res {
                Ok(Ok(rows)) => {
                    act.lanes.refilled(refill, rows);
                    act.pump(ctx);
                }
                Ok(Err(e)) => {
                    act.lanes.refill_failed(refill);
                    log::error!(
                        "[{}] reading the queue from the store failed: {e}",
                        act.tenant
                    )
                }
                Err(e) => {
                    act.lanes.refill_failed(refill);
                    log::error!("[{}] queue refill task failed: {e}", act.tenant)
                }
            }));
        }
    }

    fn retry_later(&mut self, message: QueuedMessage, delay: Duration) {
        self.retries.push((Instant::now() + delay, message));
    }

    /// Decides what happens to a message after an attempt.
    fn settle(
        &mut self,
        mut message: QueuedMessage,
        outcome: SubmitOutcome,
        channel: &ChannelSpec,
    ) {
        let error = match &outcome {
            SubmitOutcome::Accepted(_) => return,
            SubmitOutcome::Refused(code) => ErrorInfo {
                code: *code,
                name: status::name(*code),
            },
            SubmitOutcome::Unknown => outcome_unknown_error(),
        };
        let class = match outcome {
            SubmitOutcome::Refused(code) => channel.classify(code),
            _ => ErrorClass::Temporary,
        };
        // The store counts every attempt; in memory only the ones that
        // count against max_attempts: a throttle is about our rate, not
        // about the message.
        if class != ErrorClass::Throttled {
            message.attempts += 1;
        }
        let id = message.id;
        let tenant = self.tenant.clone();
        let log_err = move |what: &'static str| -> smppd_sqlite::Done<()> {
            Box::new(move |res| {
                if let Err(e) = res {
                    log::error!("[{tenant}] recording message {id} as {what} failed: {e}");
                }
            })
        };
        match class {
            ErrorClass::Ok => {}
            ErrorClass::Throttled => {
                // Not parked: the throttled session has already lowered its
                // own rate, so the message goes straight back to the front of
                // the queue and out again at the pace the SMSC accepts.
                self.store.mark_retry(id, Some(error), log_err("throttled"));
                TenantStats::bump(&self.stats.throttled);
                TenantStats::bump(&self.stats.retried);
                self.lanes.push_front(message);
            }
            ErrorClass::Temporary if message.attempts < channel.max_attempts => {
                let delay = backoff(
                    channel.retry_initial,
                    channel.retry_max,
                    message.attempts - 1,
                );
                log::debug!(
                    "[{}] message {id} retry in {delay:?} after {}",
                    self.tenant,
                    error.name
                );
                self.store.mark_retry(id, Some(error), log_err("retrying"));
                TenantStats::bump(&self.stats.retried);
                self.retry_later(message, delay);
            }
            ErrorClass::Temporary | ErrorClass::Permanent => {
                log::info!(
                    "[{}] message {id} failed: {} (0x{:08X})",
                    self.tenant,
                    error.name,
                    error.code
                );
                self.finalize(id, MessageStatus::Failed, error, true);
            }
        }
    }

    fn finish_shutdown_if_done(&mut self) {
        if self.shutting_down && self.slots.iter().all(|s| s.addr.is_none()) {
            for waiter in self.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Actor for TenantSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for index in 0..self.slots.len() {
            self.start_slot(index, ctx);
        }
        ctx.run_interval(EXPIRY_SWEEP, |act, _ctx| {
            for message in act.lanes.take_expired(unix_ms()) {
                act.expire(message);
            }
        });
        ctx.run_interval(RETRY_TICK, |act, ctx| {
            let now = Instant::now();
            if act.retries.iter().any(|(due, _)| *due <= now) {
                let (due, later): (Vec<_>, Vec<_>) =
                    act.retries.drain(..).partition(|(due, _)| *due <= now);
                act.retries = later;
                for (_, message) in due.into_iter().rev() {
                    act.lanes.push_front(message);
                }
            }
            act.pump(ctx);
        });
        self.maybe_refill(ctx);
    }
}

impl Handler<Enqueued> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, Enqueued(messages): Enqueued, ctx: &mut Self::Context) {
        let (mut taken, mut deferred) = (false, false);
        for message in messages {
            match self.lanes.offer(message) {
                Offer::Taken => taken = true,
                Offer::Deferred => deferred = true,
                Offer::Duplicate => {}
            }
        }
        if taken {
            self.pump(ctx);
        }
        if deferred {
            self.maybe_refill(ctx);
        }
    }
}

impl Handler<SessionState> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SessionState, _ctx: &mut Self::Context) {
        if !self.current(msg.slot) {
            return;
        }
        let state = match msg.state {
            ProtoState::Open => SlotState::Connecting,
            ProtoState::Binding => SlotState::Binding,
            ProtoState::Bound => SlotState::Bound,
            ProtoState::Unbinding => SlotState::Unbinding,
            ProtoState::Closed => SlotState::Closed,
        };
        self.slots[msg.slot.index].set_state(state);
    }
}

impl Handler<SessionUp> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SessionUp, ctx: &mut Self::Context) {
        if !self.current(msg.slot) {
            return;
        }
        let slot = &mut self.slots[msg.slot.index];
        slot.set_state(SlotState::Bound);
        slot.window = msg.window;
        slot.can_submit = msg.can_submit;
        slot.paused = false;
        slot.failures = 0;
        // last_error stays: it is the *last* error, shown next to the
        // state's `since` so an operator can see why the session flapped.
        self.pump(ctx);
    }
}

impl Handler<SubmitDone> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SubmitDone, ctx: &mut Self::Context) {
        let Some(slot) = self.slots.get_mut(msg.slot.index) else {
            return;
        };
        if slot.generation != msg.slot.generation
            || slot.outstanding.remove(&msg.message.id).is_none()
        {
            // Already recovered when that connection ended.
            return;
        }
        slot.parts_in_flight = slot
            .parts_in_flight
            .saturating_sub(slot.slots_for(&msg.message));
        let channel = slot.channel.clone();
        match msg.attempt {
            Attempt::NotSent => {
                slot.paused = true;
                self.lanes.push_front(msg.message);
            }
            Attempt::WindowWaitExpired => {
                slot.window_wait_timeouts += 1;
                self.lanes.push_front(msg.message);
            }
            Attempt::Sent(outcome) => {
                match &outcome {
                    SubmitOutcome::Refused(code)
                        if channel.classify(*code) == ErrorClass::Throttled =>
                    {
                        slot.throttled += 1
                    }
                    SubmitOutcome::Unknown => slot.expired += 1,
                    _ => {}
                }
                self.settle(msg.message, outcome, &channel);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<SessionEnded> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, ctx: &mut Self::Context) {
        if !self.current(msg.slot) {
            return;
        }
        let index = msg.slot.index;
        let slot = &mut self.slots[index];
        slot.addr = None;
        slot.last_error = Some(msg.reason.clone());
        let lost: Vec<QueuedMessage> = slot.outstanding.drain().map(|(_, m)| m).collect();
        slot.parts_in_flight = 0;
        slot.expired += lost.len() as u64;
        let channel = slot.channel.clone();
        if msg.was_bound {
            slot.failures = 0;
        }
        slot.failures += 1;
        let delay = backoff(
            channel.reconnect_initial,
            channel.reconnect_max,
            slot.failures - 1,
        );
        if self.shutting_down || slot.retired {
            slot.set_state(SlotState::Closed);
        } else {
            slot.set_state(SlotState::BackingOff);
            log::info!(
                "[{}/{}#{}] session ended ({}); reconnecting in {delay:?}",
                self.tenant,
                channel.name,
                slot.session,
                msg.reason
            );
            let generation = slot.generation;
            ctx.run_later(delay, move |act, ctx| {
                // Unless the slot was retired or reused meanwhile.
                if act.slots[index].generation == generation {
                    act.start_slot(index, ctx);
                }
            });
        }
        for message in lost {
            self.settle(message, SubmitOutcome::Unknown, &channel);
        }
        self.finish_shutdown_if_done();
        self.pump(ctx);
    }
}

impl Handler<RateReport> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RateReport, _ctx: &mut Self::Context) {
        if self.current(msg.slot) {
            self.slots[msg.slot.index].rate_limit = msg.limit;
        }
    }
}

impl Handler<GetConnections> for TenantSupervisor {
    type Result = MessageResult<GetConnections>;

    fn handle(&mut self, _: GetConnections, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.slots
                .iter()
                .filter(|s| !(s.retired && s.addr.is_none()))
                .map(|s| ConnectionInfo {
                    channel: s.channel.name.clone(),
                    session: s.session,
                    bind: s.mode.as_str(),
                    state: s.state.as_str(),
                    since: s.since,
                    last_error: s.last_error.clone(),
                    tls: s.channel.tls.is_some(),
                    window_in_use: s.parts_in_flight,
                    window_size: s.window,
                    submitted: s.submitted,
                    throttled: s.throttled,
                    expired: s.expired,
                    window_wait_timeouts: s.window_wait_timeouts,
                    rate_limit: s.rate_limit,
                })
                .collect(),
        )
    }
}

impl Handler<Shutdown> for TenantSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        for slot in &mut self.slots {
            slot.unbind();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shutdown_waiters.push(tx);
        self.finish_shutdown_if_done();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Stop> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Reconfigure> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, Reconfigure(spec): Reconfigure, ctx: &mut Self::Context) {
        if self.shutting_down {
            return;
        }
        let wanted: HashMap<&str, &Arc<ChannelSpec>> =
            spec.channels.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut kept = std::collections::HashSet::new();
        for slot in self.slots.iter_mut().filter(|s| !s.retired) {
            if wanted
                .get(slot.channel.name.as_str())
                .is_some_and(|c| **c == slot.channel)
            {
                kept.insert(slot.channel.name.clone());
                continue;
            }
            log::info!(
                "[{}/{}#{}] channel removed or changed: closing this session",
                self.tenant,
                slot.channel.name,
                slot.session
            );
            slot.retired = true;
            slot.unbind();
        }
        for channel in spec.channels.iter().filter(|c| !kept.contains(&c.name)) {
            log::info!("[{}/{}] channel opened", self.tenant, channel.name);
            for index in self.add_slots(channel) {
                self.start_slot(index, ctx);
            }
        }
        self.pump(ctx);
    }
}

impl Handler<PanicSession> for TenantSupervisor {
    type Result = ();

    fn handle(&mut self, msg: PanicSession, _ctx: &mut Self::Context) {
        if let Some(addr) = self.slots.get(msg.index).and_then(|s| s.addr.as_ref()) {
            addr.do_send(InjectPanic);
        }
    }
}

/// The error of a message whose validity ended before it was submitted.
fn validity_expired() -> ErrorInfo {
    ErrorInfo::ours("VALIDITY_EXPIRED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_session_keeps_submits_while_it_is_nearly_as_free_as_the_best() {
        assert!(sticks(100, 100));
        assert!(sticks(92, 100), "within the slack");
        assert!(
            !sticks(91, 100),
            "too far behind: the freest session takes over"
        );
        assert!(!sticks(0, 5), "a full window never takes more");
        assert!(sticks(1, 2), "small windows fill one after the other");
    }
}
