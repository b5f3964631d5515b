//! `Connection`: the actor that owns one SMPP session.
//!
//! Owns: the TCP socket (read half as an actix stream, write half as a
//! `FramedWrite`), the [`Session`] state machine with its window of
//! in-flight submits, and the job of acknowledging deliver_sm only after the
//! store has committed what it carried.
//!
//! Handles: [`Submit`] (send one message), [`Unbind`] (graceful close),
//! [`InjectPanic`] (tests of supervision), frames from the SMSC, and its
//! own timer tick.
//!
//! Supervised by: its [`TenantSupervisor`], which created it for one slot of
//! one channel. The connection never restarts itself. Whenever it ends —
//! TCP closed, bind refused, keep-alive unanswered, unbind, *or a panic in
//! one of its handlers* — its `Drop` sends [`SessionEnded`] to the
//! supervisor with the messages that were in flight (their outcome is
//! unknown, so they are retried), and the supervisor re-creates it with
//! backoff. actix's own `Supervisor` restarts stopped actors but not
//! panicked ones, which is why the notification lives in `Drop`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{FramedWrite, WriteHandler};
use actix::prelude::*;
use rusmpp::Command;
use smppd_sqlite::{ErrorInfo, MessageStatus, QueuedMessage, Receipt, Store};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use crate::smpp::codec::{CodecError, Frame, SmppCodec};
use crate::smpp::pdu::{self, Delivery};
use crate::smpp::receipt::{self, ReceiptState};
use crate::smpp::session::{
    CloseReason, Event, Session, SessionConfig, SessionState, SubmitOutcome,
};
use crate::smpp::status;
use crate::spec::ChannelSpec;
use crate::tenant::{SessionEnded, SessionUp, SubmitDone, TenantSupervisor};

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

/// Send one message. Answered later with [`SubmitDone`] to the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit(pub QueuedMessage);

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

/// A store commit for a deliver_sm finished; answer the SMSC.
#[derive(Message)]
#[rtype(result = "()")]
struct Acknowledge {
    sequence_number: u32,
    status: u32,
}

/// The connection actor.
pub struct Connection {
    slot: SlotId,
    tenant: Arc<str>,
    channel: Arc<ChannelSpec>,
    store: Store,
    supervisor: Addr<TenantSupervisor>,
    session: Option<Session<QueuedMessage>>,
    writer: Option<FramedWrite<Command, OwnedWriteHalf, SmppCodec>>,
    /// Why the session ended, reported from `Drop`.
    end_reason: String,
    /// Whether the session ever reached Bound (for the supervisor's backoff).
    was_bound: bool,
}

impl Connection {
    /// A connection for `slot`; it connects and binds when started.
    pub fn new(
        slot: SlotId,
        tenant: Arc<str>,
        channel: Arc<ChannelSpec>,
        store: Store,
        supervisor: Addr<TenantSupervisor>,
    ) -> Self {
        Self {
            slot,
            tenant,
            channel,
            store,
            supervisor,
            session: None,
            writer: None,
            end_reason: "stopped".to_string(),
            was_bound: false,
        }
    }

    fn log_prefix(&self) -> String {
        format!(
            "[{}/{}#{}]",
            self.tenant, self.channel.name, self.slot.index
        )
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

    fn connected(&mut self, stream: TcpStream, ctx: &mut Context<Self>) {
        if let Err(e) = stream.set_nodelay(true) {
            log::warn!("{} TCP_NODELAY failed: {e}", self.log_prefix());
        }
        let (read, write) = stream.into_split();
        ctx.add_stream(FramedRead::new(read, SmppCodec::default()));
        let mut writer = FramedWrite::new(write, SmppCodec::default(), ctx);
        let now = Instant::now();
        let mut session = Session::new(
            SessionConfig {
                bind: self.channel.bind.clone(),
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
            let events = match act.session.as_mut() {
                Some(s) => s.tick(Instant::now()),
                None => return,
            };
            act.apply(events, ctx);
        });
    }

    fn apply(&mut self, events: Vec<Event<QueuedMessage>>, ctx: &mut Context<Self>) {
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
                        self.channel.bind.mode.as_str(),
                        self.channel.host,
                        self.channel.port
                    );
                    self.supervisor.do_send(SessionUp {
                        slot: self.slot,
                        window,
                        can_submit,
                    });
                }
                Event::Submitted { item, outcome } => self.submitted(item, outcome),
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

    fn submitted(&mut self, message: QueuedMessage, outcome: SubmitOutcome) {
        if let SubmitOutcome::Accepted(smsc_id) = &outcome {
            let id = message.id;
            let prefix = self.log_prefix();
            self.store.mark_submitted(
                id,
                &self.channel.name,
                &receipt::normalize_id(smsc_id),
                Box::new(move |res| {
                    if let Err(e) = res {
                        log::error!("{prefix} recording message {id} as submitted failed: {e}");
                    }
                }),
            );
        }
        self.supervisor.do_send(SubmitDone {
            slot: self.slot,
            message,
            outcome: Some(outcome),
        });
    }

    fn deliver(
        &mut self,
        sequence_number: u32,
        pdu: &rusmpp::pdus::DeliverSm,
        ctx: &mut Context<Self>,
    ) {
        let ack = ctx.address();
        let ok = move |res: Result<_, smppd_sqlite::StoreError>| {
            let status = if res.is_ok() {
                status::ESME_ROK
            } else {
                status::ESME_RSYSERR
            };
            ack.do_send(Acknowledge {
                sequence_number,
                status,
            });
        };
        match pdu::read_deliver_sm(pdu) {
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
                let prefix = self.log_prefix();
                let id_for_log = smsc_message_id.clone();
                self.store.apply_receipt(
                    Receipt {
                        tenant: self.tenant.to_string(),
                        channel: self.channel.name.clone(),
                        smsc_message_id,
                        status,
                        error,
                    },
                    Box::new(move |res| {
                        match &res {
                            Ok(smppd_sqlite::ReceiptMatch::Parked) => log::info!(
                                "{prefix} receipt for unknown SMSC id {id_for_log} kept as pending (its submit_sm_resp may still come)"
                            ),
                            Ok(smppd_sqlite::ReceiptMatch::Matched(_)) => {}
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
            } => {
                let prefix = self.log_prefix();
                self.store.insert_inbound(
                    smppd_sqlite::NewInbound {
                        tenant: self.tenant.to_string(),
                        channel: self.channel.name.clone(),
                        source,
                        destination,
                        text,
                    },
                    Box::new(move |res| {
                        if let Err(e) = &res {
                            log::error!("{prefix} storing an inbound message failed: {e}");
                        }
                        ok(res.map(|_| ()))
                    }),
                );
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
        let addr = format!("{}:{}", self.channel.host, self.channel.port);
        let timeout = self.channel.connect_timeout;
        let fut = async move {
            match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(format!("connect to {addr} failed: {e}")),
                Err(_) => Err(format!("connect to {addr} timed out after {timeout:?}")),
            }
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
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

    fn handle(&mut self, Submit(message): Submit, _ctx: &mut Self::Context) {
        let Some(session) = self.session.as_mut() else {
            return self
                .supervisor
                .do_send(SubmitDone::not_sent(self.slot, message));
        };
        let pdu = match pdu::submit_sm(
            &message.source,
            &message.destination,
            &message.text,
            self.channel.registered_delivery,
        ) {
            Ok(pdu) => pdu,
            Err(e) => {
                // Validated at accept time, so only reachable for rows from
                // an older version: fail the message, keep the session.
                log::warn!(
                    "{} message {} cannot be encoded: {e}",
                    self.log_prefix(),
                    message.id
                );
                return self.supervisor.do_send(SubmitDone {
                    slot: self.slot,
                    message,
                    outcome: Some(SubmitOutcome::Refused(status::ESME_RINVMSGLEN)),
                });
            }
        };
        match session.submit(message, pdu, Instant::now()) {
            Ok(command) => {
                if let Some(w) = self.writer.as_mut() {
                    w.write(*command);
                }
            }
            Err((_, message)) => self
                .supervisor
                .do_send(SubmitDone::not_sent(self.slot, message)),
        }
    }
}

impl Handler<Acknowledge> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Acknowledge, _ctx: &mut Self::Context) {
        if let (Some(session), Some(writer)) = (self.session.as_ref(), self.writer.as_mut()) {
            writer.write(*session.deliver_sm_resp(msg.sequence_number, msg.status));
        }
    }
}

impl Handler<Unbind> for Connection {
    type Result = ();

    fn handle(&mut self, _: Unbind, ctx: &mut Self::Context) {
        let command = self
            .session
            .as_mut()
            .and_then(|s| s.start_unbind(Instant::now()));
        match (command, self.writer.as_mut()) {
            // The session's tick closes us on unbind_resp or its timeout.
            (Some(command), Some(w)) => w.write(*command),
            _ => self.end("unbound".into(), ctx),
        }
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
    ErrorInfo {
        code: 0,
        name: "OUTCOME_UNKNOWN".to_string(),
    }
}
