//! `Connection`: the actor that owns one SMPP session.
//!
//! Owns: the TCP socket, or the TLS stream over it (see
//! [`crate::transport`]; read half as an actix stream, write half as a
//! `FramedWrite`), the [`Session`] state machine with its window of
//! in-flight submits, and the job of acknowledging deliver_sm only after the
//! store has committed what it carried.
//!
//! Handles: [`Submit`] (send one message), [`Unbind`] (graceful close),
//! [`InjectPanic`] (tests of supervision), frames from the SMSC, and its
//! own timer tick.
//!
//! Flow control: a submit handed over by the supervisor waits here in a
//! short queue until the session has a free window slot *and* the
//! session's [`AdaptiveRate`] grants a token. Waiting longer than the
//! channel's `window_wait_timeout` hands it back to the supervisor (to try
//! another session); a sent submit whose response does not come within
//! `response_timeout` expires in the [`Session`]'s window with an unknown
//! outcome. Throttle answers lower this session's rate.
//!
//! Supervised by: its [`TenantSupervisor`], which created it for one slot of
//! one channel. The connection never restarts itself. Whenever it ends —
//! TCP closed, bind refused, keep-alive unanswered, unbind, *or a panic in
//! one of its handlers* — its `Drop` sends [`SessionEnded`] to the
//! supervisor with the messages that were in flight (their outcome is
//! unknown, so they are retried), and the supervisor re-creates it with
//! backoff. actix's own `Supervisor` restarts stopped actors but not
//! panicked ones, which is why the notification lives in `Drop`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use rusmpp::Command;
use smppd_sqlite::{ErrorInfo, MessageStatus, QueuedMessage, Receipt, Store};
use tokio_util::codec::FramedRead;

use crate::coalesce::Coalescer;
use crate::parts::{GroupOutcome, PartGroup, PartOutcome};
use crate::smpp::codec::{CodecError, Frame, SmppCodec};
use crate::smpp::pdu::{self, Delivery};
use crate::smpp::rate::AdaptiveRate;
use crate::smpp::receipt::{self, ReceiptState};
use crate::smpp::session::{
    BindMode, CloseReason, Event, Session, SessionConfig, SessionState, SubmitOutcome,
};
use crate::smpp::status::{self, ErrorClass};
use crate::spec::ChannelSpec;
use crate::stats::TenantStats;
use crate::tenant::{Attempt, RateReport, SessionEnded, SessionUp, SubmitDone, TenantSupervisor};
use crate::transport;

/// How often the session's timers are checked. Timeouts are seconds long,
/// so a 100 ms granularity costs nothing and needs no timer juggling.
const TICK: Duration = Duration::from_millis(100);

/// Identifies one incarnation of one session slot, so that late messages
/// from a previous incarnation are recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId {
    /// Index into the supervisor's slot table.
    pub index: usize,
    /// Incremented each time the slot's connection is re-created.
    pub generation: u64,
}

/// One `submit_sm` in the session's window: which part of which message,
/// and when it went out.
#[derive(Debug)]
pub struct InFlight {
    group: Rc<RefCell<PartGroup>>,
    part: usize,
    sent_at: Instant,
}

/// A part waiting for a window slot or a rate token.
struct PartJob {
    deadline: Instant,
    group: Rc<RefCell<PartGroup>>,
    part: usize,
    pdu: rusmpp::pdus::SubmitSm,
}

/// Send these messages, in this order: one mailbox message for all the
/// messages a supervisor hands this session at once. Each is answered
/// later with its own [`SubmitDone`] to the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit(pub Vec<QueuedMessage>);

/// Unbind and close (graceful shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unbind;

/// Panics inside the actor's handler. Only for proving that supervision
/// survives a crashing connection; never sent by smppd itself.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Store commits for deliver_sms finished; answer the SMSC. Collected per
/// writer transaction by the connection's [`Coalescer`], so a batch of
/// receipts is answered with one mailbox message and one socket write;
/// handed over after the supervisors hear of the transaction's new
/// messages ([`Coalescer::last`]), so the submits they hand this session
/// meanwhile can go out in the same write.
#[derive(Message)]
#[rtype(result = "()")]
struct Acknowledge(Vec<DeliverAck>);

/// The deliver_sm_resp (or data_sm_resp) owed for one deliver_sm (or
/// data_sm).
struct DeliverAck {
    sequence_number: u32,
    status: u32,
    data: bool,
}

/// The connection actor.
pub struct Connection {
    slot: SlotId,
    tenant: Arc<str>,
    channel: Arc<ChannelSpec>,
    /// The bind mode of this session (a channel's extra receiver sessions
    /// bind as receivers whatever the channel's own mode).
    mode: BindMode,
    store: Store,
    supervisor: Addr<TenantSupervisor>,
    stats: Arc<TenantStats>,
    session: Option<Session<InFlight>>,
    writer: Option<FramedWrite<Command, transport::Writer, SmppCodec>>,
    /// Submits waiting for a window slot or a rate token, with the time
    /// they stop waiting.
    pending: VecDeque<PartJob>,
    rate: AdaptiveRate,
    /// The rate last reported to the supervisor.
    reported_rate: Option<Option<f64>>,
    /// A timer is set for the next rate token.
    drain_scheduled: bool,
    /// Set by [`Unbind`]: unbind once the window is empty, or at this time.
    unbind_at: Option<Instant>,
    /// Why the session ended, reported from `Drop`.
    end_reason: String,
    /// Whether the session ever reached Bound (for the supervisor's backoff).
    was_bound: bool,
    /// Answers owed to the SMSC for stored deliver_sms (made on first use).
    acks: Option<Coalescer<DeliverAck>>,
    /// `[tenant/channel#session]`, the start of this session's log lines.
    log_prefix: Arc<str>,
    /// The channel's name, shared with every store write that names it.
    channel_name: Arc<str>,
}

impl Connection {
    /// A connection for `slot`; it connects and binds when started.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        slot: SlotId,
        session_no: usize,
        tenant: Arc<str>,
        channel: Arc<ChannelSpec>,
        mode: BindMode,
        store: Store,
        supervisor: Addr<TenantSupervisor>,
        stats: Arc<TenantStats>,
    ) -> Self {
        let rate = AdaptiveRate::new(channel.submits_per_second, Instant::now());
        let log_prefix = format!("[{tenant}/{}#{session_no}]", channel.name).into();
        let channel_name = channel.name.as_str().into();
        Self {
            slot,
            tenant,
            channel,
            mode,
            store,
            supervisor,
            stats,
            session: None,
            writer: None,
            pending: VecDeque::new(),
            rate,
            reported_rate: None,
            drain_scheduled: false,
            unbind_at: None,
            end_reason: "stopped".to_string(),
            was_bound: false,
            acks: None,
            log_prefix,
            channel_name,
        }
    }

    /// Made once: the completions of every message carry it in case they
    /// have something to log.
    fn log_prefix(&self) -> Arc<str> {
        self.log_prefix.clone()
    }

    fn end(&mut self, reason: String, ctx: &mut Context<Self>) {
        self.end_reason = reason;
        if let Some(session) = self.session.as_mut() {
            // What is in flight has an unknown outcome; the supervisor holds
            // its own copy of every message it handed us and retries them
            // when our `Drop` reports the end.
            session.close();
        }
        match self.writer.as_mut() {
            // Flush what is queued (e.g. unbind_resp), then WriteHandler::finished stops us.
            Some(w) if !w.closed() => {
                w.close();
                ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
            }
            _ => ctx.stop(),
        }
    }

    fn connected(
        &mut self,
        (read, write): (transport::Reader, transport::Writer),
        ctx: &mut Context<Self>,
    ) {
        ctx.add_stream(FramedRead::new(read, SmppCodec::default()));
        let mut writer = FramedWrite::new(write, SmppCodec::default(), ctx);
        let now = Instant::now();
        let mut session = Session::new(
            SessionConfig {
                bind: crate::smpp::pdu::BindParams {
                    mode: self.mode,
                    ..self.channel.bind.clone()
                },
                window: self.channel.window,
                enquire_link_interval: self.channel.enquire_link_interval,
                response_timeout: self.channel.response_timeout,
            },
            now,
        );
        match session.start_bind(now) {
            Ok(bind) => writer.write(*bind),
            Err(e) => {
                self.writer = Some(writer);
                self.session = Some(session);
                return self.end(format!("cannot build bind: {e}"), ctx);
            }
        }
        self.writer = Some(writer);
        self.session = Some(session);
        self.supervisor.do_send(crate::tenant::SessionState {
            slot: self.slot,
            state: SessionState::Binding,
        });
        ctx.run_interval(TICK, |act, ctx| {
            let now = Instant::now();
            let events = match act.session.as_mut() {
                Some(s) => s.tick(now),
                None => return,
            };
            act.apply(events, ctx);
            act.expire_pending(now);
            act.drain(ctx);
            act.report_rate(now);
            act.unbind_when_idle(now, ctx);
        });
    }

    /// Sends waiting submits while the window has room and the rate allows.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while !self.pending.is_empty() {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            if session.free_window() == 0 || self.unbind_at.is_some() {
                return;
            }
            if !self.rate.try_acquire(now) {
                if !self.drain_scheduled {
                    self.drain_scheduled = true;
                    let wait = self.rate.next_token_at(now).saturating_duration_since(now);
                    ctx.run_later(wait.max(Duration::from_millis(1)), |act, ctx| {
                        act.drain_scheduled = false;
                        act.drain(ctx);
                    });
                }
                return;
            }
            let Some(job) = self.pending.pop_front() else {
                return;
            };
            let in_flight = InFlight {
                group: job.group,
                part: job.part,
                sent_at: now,
            };
            match session.submit(in_flight, job.pdu, now) {
                Ok(command) => {
                    if let Some(w) = self.writer.as_mut() {
                        w.write(*command);
                    }
                }
                Err((_, in_flight)) => {
                    self.part_done(&in_flight.group, in_flight.part, PartOutcome::NotSent)
                }
            }
        }
    }

    /// Hands back submits that waited too long for a slot or a token, so
    /// the supervisor can place them on another session.
    fn expire_pending(&mut self, now: Instant) {
        while self.pending.front().is_some_and(|job| job.deadline <= now) {
            if let Some(job) = self.pending.pop_front() {
                self.part_done(&job.group, job.part, PartOutcome::WaitExpired);
            }
        }
    }

    /// Records one part's outcome; once every part of the message has one,
    /// reports the attempt (see [`PartGroup`]).
    fn part_done(&mut self, group: &Rc<RefCell<PartGroup>>, part: usize, outcome: PartOutcome) {
        if let PartOutcome::Sent(SubmitOutcome::Refused(code)) = outcome {
            if self.channel.classify(code) == ErrorClass::Throttled {
                let now = Instant::now();
                self.rate.on_throttle(now);
                self.report_rate(now);
            }
        }
        let finished = {
            let mut group = group.borrow_mut();
            group.record(part, outcome);
            group.finish(|code| self.channel.classify(code))
        };
        let Some((message, result)) = finished else {
            return;
        };
        match result {
            GroupOutcome::Accepted(ids) => self.accepted(message, ids),
            GroupOutcome::Refused(code) => {
                self.report(message, Attempt::Sent(SubmitOutcome::Refused(code)))
            }
            GroupOutcome::Unknown => self.report(message, Attempt::Sent(SubmitOutcome::Unknown)),
            GroupOutcome::NotSent => self.report(message, Attempt::NotSent),
            GroupOutcome::WaitExpired => self.report(message, Attempt::WindowWaitExpired),
        }
    }

    fn report(&self, message: QueuedMessage, attempt: Attempt) {
        self.supervisor.do_send(SubmitDone {
            slot: self.slot,
            message,
            attempt,
        });
    }

    fn report_rate(&mut self, now: Instant) {
        let limit = self.rate.current_limit(now);
        if self.reported_rate != Some(limit) {
            self.reported_rate = Some(limit);
            self.supervisor.do_send(RateReport {
                slot: self.slot,
                limit,
            });
        }
    }

    /// After [`Unbind`]: unbind once nothing is in flight, or when the
    /// response timeout has passed anyway.
    fn unbind_when_idle(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(deadline) = self.unbind_at else {
            return;
        };
        let idle = self.session.as_ref().is_none_or(|s| s.in_flight() == 0);
        if !idle && now < deadline {
            return;
        }
        self.unbind_at = None;
        let command = self.session.as_mut().and_then(|s| s.start_unbind(now));
        match (command, self.writer.as_mut()) {
            // The session's tick closes us on unbind_resp or its timeout.
            (Some(command), Some(w)) => w.write(*command),
            _ => self.end("unbound".into(), ctx),
        }
    }

    fn apply(&mut self, events: Vec<Event<InFlight>>, ctx: &mut Context<Self>) {
        for event in events {
            match event {
                Event::Send(command) => {
                    if let Some(w) = self.writer.as_mut() {
                        w.write(*command);
                    }
                }
                Event::Bound => {
                    self.was_bound = true;
                    let (window, can_submit) = self
                        .session
                        .as_ref()
                        .map(|s| (s.window_size(), s.mode().can_submit()))
                        .unwrap_or((0, false));
                    log::info!(
                        "{} bound as {} to {}:{}",
                        self.log_prefix(),
                        self.mode.as_str(),
                        self.channel.host,
                        self.channel.port
                    );
                    self.supervisor.do_send(SessionUp {
                        slot: self.slot,
                        window,
                        can_submit,
                    });
                }
                Event::Submitted { item, outcome } => {
                    if !matches!(outcome, SubmitOutcome::Unknown) {
                        self.stats.submit_latency.observe(item.sent_at.elapsed());
                    }
                    self.part_done(&item.group, item.part, PartOutcome::Sent(outcome));
                    self.drain(ctx);
                    self.unbind_when_idle(Instant::now(), ctx);
                }
                Event::Deliver {
                    sequence_number,
                    pdu,
                } => self.deliver(sequence_number, &pdu, ctx),
                Event::Close(reason) => {
                    match &reason {
                        CloseReason::BindRefused(_)
                        | CloseReason::BindTimeout
                        | CloseReason::KeepaliveTimeout => {
                            log::warn!("{} session closing: {reason}", self.log_prefix())
                        }
                        _ => log::info!("{} session closing: {reason}", self.log_prefix()),
                    }
                    return self.end(reason.to_string(), ctx);
                }
            }
        }
    }

    /// Every part of the message was accepted: record it (with the SMSC id
    /// of each part) and tell the supervisor.
    fn accepted(&mut self, message: QueuedMessage, smsc_ids: Vec<String>) {
        TenantStats::bump(&self.stats.submitted);
        let stats = self.stats.clone();
        let id = message.id;
        let prefix = self.log_prefix();
        let first = smsc_ids.first().cloned().unwrap_or_default();
        let ids: Vec<String> = smsc_ids
            .iter()
            .map(|i| self.channel.id_bases.submit_key(i))
            .collect();
        self.store.mark_submitted_parts(
            Arc::clone(&self.tenant),
            id,
            Arc::clone(&self.channel_name),
            ids,
            Box::new(move |res| match res {
                // A receipt that overtook this response was applied now.
                Ok(Some(status)) => {
                    stats.finished(status);
                    stats.events.status(id, status, None);
                }
                Ok(None) => stats.events.status(id, MessageStatus::Submitted, None),
                Err(e) => {
                    log::error!("{prefix} recording message {id} as submitted failed: {e}")
                }
            }),
        );
        self.report(message, Attempt::Sent(SubmitOutcome::Accepted(first)));
    }

    fn deliver(&mut self, sequence_number: u32, pdu: &pdu::Inbound, ctx: &mut Context<Self>) {
        let data = matches!(pdu, pdu::Inbound::Data(_));
        let acks = self
            .acks
            .get_or_insert_with(|| {
                let addr = ctx.address();
                Coalescer::last(move |acks| addr.do_send(Acknowledge(acks)))
            })
            .clone();
        let ok = move |res: Result<_, smppd_sqlite::StoreError>| {
            let status = if res.is_ok() {
                status::ESME_ROK
            } else {
                status::ESME_RSYSERR
            };
            acks.push(DeliverAck {
                sequence_number,
                status,
                data,
            });
        };
        match pdu.read(self.channel.default_alphabet) {
            Delivery::Receipt {
                smsc_message_id,
                state: ReceiptState::Final(status),
                error_code,
                stat,
            } => {
                let error = match status {
                    MessageStatus::Delivered => None,
                    _ => Some(ErrorInfo {
                        code: error_code.unwrap_or(0),
                        name: stat.unwrap_or_else(|| receipt::stat_word(status).to_string()),
                    }),
                };
                let smsc_message_id: Arc<str> =
                    self.channel.id_bases.receipt_key(&smsc_message_id).into();
                let stats = self.stats.clone();
                let prefix = self.log_prefix();
                let id_for_log = Arc::clone(&smsc_message_id);
                let event_error = error.clone();
                self.store.apply_receipt(
                    Receipt {
                        tenant: Arc::clone(&self.tenant),
                        channel: Arc::clone(&self.channel_name),
                        smsc_message_id,
                        status,
                        error,
                    },
                    Box::new(move |res| {
                        match &res {
                            // Routine, not news: SMSCs send receipts on any
                            // session of the account, so one often overtakes the
                            // response recorded by another (one line per message
                            // at info cost ~10 % of the writer's time).
                            Ok(smppd_sqlite::ReceiptMatch::Parked) => {
                                TenantStats::bump(&stats.receipts_unmatched);
                                log::debug!(
                                    "{prefix} receipt for unknown SMSC id {id_for_log} kept as pending (its submit_sm_resp may still come)"
                                )
                            }
                            Ok(smppd_sqlite::ReceiptMatch::Matched {
                                id,
                                submitted_at_ms,
                                final_status,
                            }) => {
                                // For a part of a long message, the message's
                                // own status once every part is final.
                                if let Some(final_status) = final_status {
                                    stats.finished(*final_status);
                                    stats.events.status(*id, *final_status, event_error);
                                }
                                if let Some(at) = submitted_at_ms {
                                    let ms = crate::smpp::time::unix_ms().saturating_sub(*at).max(0);
                                    stats.receipt_latency.observe(Duration::from_millis(ms as u64));
                                }
                            }
                            Err(e) => log::error!("{prefix} storing receipt for {id_for_log} failed: {e}"),
                        }
                        ok(res.map(|_| ()))
                    }),
                );
            }
            Delivery::Receipt { .. } => ok(Ok(())),
            Delivery::UnmatchableReceipt => {
                log::warn!(
                    "{} receipt without any message id; acknowledged and dropped",
                    self.log_prefix()
                );
                ok(Ok(()))
            }
            Delivery::MobileOriginated {
                source,
                destination,
                text,
                part,
            } => {
                let prefix = self.log_prefix();
                let stats = self.stats.clone();
                let inbound = smppd_sqlite::NewInbound {
                    tenant: self.tenant.to_string(),
                    channel: self.channel.name.clone(),
                    source,
                    destination,
                    text,
                };
                let event = inbound.clone();
                // Published once the whole message is stored.
                let publish = move |id: i64, text: String| {
                    stats.events.publish(crate::events::Event::Inbound {
                        id,
                        channel: event.channel,
                        source: event.source,
                        destination: event.destination,
                        text,
                        at_ms: crate::smpp::time::unix_ms(),
                    })
                };
                match part {
                    // One part of a longer message: stored durably (so it
                    // can be acknowledged) and joined when the last arrives.
                    Some(part) if part.total > 1 => self.store.insert_inbound_part(
                        inbound,
                        part.reference,
                        part.total,
                        part.sequence,
                        Box::new(move |res| {
                            match &res {
                                Ok(Some((id, text))) => publish(*id, text.clone()),
                                Ok(None) => {}
                                Err(e) => {
                                    log::error!("{prefix} storing an inbound part failed: {e}")
                                }
                            }
                            ok(res.map(|_| ()))
                        }),
                    ),
                    _ => {
                        let text = inbound.text.clone();
                        self.store.insert_inbound(
                            inbound,
                            Box::new(move |res| {
                                match &res {
                                    Ok(id) => publish(*id, text),
                                    Err(e) => {
                                        log::error!(
                                            "{prefix} storing an inbound message failed: {e}"
                                        )
                                    }
                                }
                                ok(res.map(|_| ()))
                            }),
                        )
                    }
                }
            }
        }
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.supervisor.do_send(crate::tenant::SessionState {
            slot: self.slot,
            state: SessionState::Open,
        });
        let channel = self.channel.clone();
        let fut = async move {
            transport::connect(
                &channel.host,
                channel.port,
                channel.connect_timeout,
                channel.tls.as_ref(),
            )
            .await
        };
        // Spawned, not waited on: an `Unbind` (the tenant is suspended,
        // deleted or shutting down, or its channel changed) is handled
        // while the connect is still pending, and stops the actor at once
        // instead of after up to `connect_timeout`.
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(stream) => act.connected(stream, ctx),
            Err(reason) => {
                log::warn!("{} {reason}", act.log_prefix());
                act.end(reason, ctx);
            }
        }));
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Runs on a normal stop *and* when a handler panicked (the arbiter
        // drops the actor's state while unwinding), so the supervisor always
        // learns that this slot is empty and retries what it had handed us.
        let reason = if std::thread::panicking() {
            "connection actor panicked".to_string()
        } else {
            std::mem::take(&mut self.end_reason)
        };
        self.supervisor.do_send(SessionEnded {
            slot: self.slot,
            reason,
            was_bound: self.was_bound,
        });
    }
}

impl WriteHandler<CodecError> for Connection {
    fn error(&mut self, err: CodecError, _ctx: &mut Self::Context) -> Running {
        self.end_reason = format!("write failed: {err}");
        Running::Stop
    }
}

impl StreamHandler<Result<Frame, CodecError>> for Connection {
    fn handle(&mut self, item: Result<Frame, CodecError>, ctx: &mut Self::Context) {
        match item {
            Ok(frame) => {
                if let Frame::Malformed(bad) = &frame {
                    log::warn!(
                        "{} malformed PDU from SMSC (command_id 0x{:08X}, seq {}): {}",
                        self.log_prefix(),
                        bad.command_id,
                        bad.sequence_number,
                        bad.reason
                    );
                }
                let events = match self.session.as_mut() {
                    Some(s) => s.handle(frame, Instant::now()),
                    None => return,
                };
                self.apply(events, ctx);
            }
            Err(e) => {
                log::warn!("{} framing lost: {e}", self.log_prefix());
                self.end(format!("framing lost: {e}"), ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.state() != SessionState::Closed)
        {
            log::warn!("{} SMSC closed the connection", self.log_prefix());
            self.end("SMSC closed the connection".into(), ctx);
        }
    }
}

impl Handler<Submit> for Connection {
    type Result = ();

    fn handle(&mut self, Submit(messages): Submit, ctx: &mut Self::Context) {
        for message in messages {
            self.queue_submit(message);
        }
        self.drain(ctx);
    }
}

impl Connection {
    /// Encodes `message` into its parts and queues them for the window
    /// (`drain` sends them); a message this session cannot take is
    /// reported back at once.
    fn queue_submit(&mut self, message: QueuedMessage) {
        if self.session.is_none() || self.unbind_at.is_some() {
            return self.report(message, Attempt::NotSent);
        }
        // A fresh concatenation reference per attempt: a retried long
        // message is a new message to the handset.
        let reference = rand::random::<u16>();
        let shape = pdu::Shape {
            registered_delivery: self.channel.registered_delivery,
            long_messages: self.channel.long_messages,
            default_alphabet: self.channel.default_alphabet,
        };
        let mut pdus = match pdu::submit_sm_parts(
            &message.source,
            &message.destination,
            &message.text,
            message
                .data_coding
                .and_then(crate::smpp::encoding::Coding::from_data_coding),
            pdu::Times {
                send_at_ms: message.send_at_ms,
                validity_until_ms: message.validity_until_ms,
            },
            reference,
            shape,
        ) {
            Ok(pdus) => pdus,
            Err(e) => {
                // Validated at accept time, so only reachable for rows from
                // an older version: fail the message, keep the session.
                log::warn!(
                    "{} message {} cannot be encoded: {e}",
                    self.log_prefix(),
                    message.id
                );
                return self.report(
                    message,
                    Attempt::Sent(SubmitOutcome::Refused(status::ESME_RINVMSGLEN)),
                );
            }
        };
        for pdu in &mut pdus {
            self.channel.addressing.apply(pdu);
            pdu.service_type = self.channel.service_type.clone();
        }
        let deadline = Instant::now() + self.channel.window_wait_timeout;
        let group = Rc::new(RefCell::new(PartGroup::new(message, pdus.len())));
        for (part, pdu) in pdus.into_iter().enumerate() {
            self.pending.push_back(PartJob {
                deadline,
                group: group.clone(),
                part,
                pdu,
            });
        }
    }
}

impl Handler<Acknowledge> for Connection {
    type Result = ();

    fn handle(&mut self, Acknowledge(acks): Acknowledge, _ctx: &mut Self::Context) {
        if let (Some(session), Some(writer)) = (self.session.as_ref(), self.writer.as_mut()) {
            for ack in acks {
                writer.write(*session.delivery_resp(ack.sequence_number, ack.status, ack.data));
            }
        }
    }
}

impl Handler<Unbind> for Connection {
    type Result = ();

    fn handle(&mut self, _: Unbind, ctx: &mut Self::Context) {
        // Nothing new goes out; what waited here goes back (it stays queued
        // in the store); what is in flight gets up to a response timeout to
        // be answered before we unbind.
        let waiting: Vec<PartJob> = self.pending.drain(..).collect();
        for job in waiting {
            self.part_done(&job.group, job.part, PartOutcome::NotSent);
        }
        let now = Instant::now();
        self.unbind_at = Some(now + self.channel.response_timeout);
        self.unbind_when_idle(now, ctx);
    }
}

impl Handler<InjectPanic> for Connection {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _ctx: &mut Self::Context) {
        panic!("{} InjectPanic received", self.log_prefix());
    }
}

/// The error a message gets when its session dies before it is answered.
pub fn outcome_unknown_error() -> ErrorInfo {
    ErrorInfo::ours("OUTCOME_UNKNOWN")
}
