//! One SMPP connection, SMSC side: bind state, request handling, the
//! deliver_sm we send and their acknowledgements.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, SubmitSm, SubmitSmResp,
};
use rusmpp::types::COctetString;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

use super::pdus::{self, Outcome, ReceiptInput};
use super::state::{Deliver, DeliverKind, Outbound, Shared};
use super::{BoundSession, Faults, ReceivedSubmit};
use crate::smpp::codec::{Frame, MalformedPdu, SmppCodec};
use crate::smpp::pdu::c_string;
use crate::smpp::status;

/// The fields of a bind the simulator checks or records.
struct BindRequest {
    system_id: String,
    password: String,
    interface_version: InterfaceVersion,
    addr_ton_npi: (u8, u8),
    address_range: String,
}

/// A [`BindRequest`] from any of the three bind PDUs (the same fields).
macro_rules! bind_request {
    ($b:expr) => {
        BindRequest {
            system_id: $b.system_id.to_string(),
            password: $b.password.to_string(),
            interface_version: $b.interface_version,
            addr_ton_npi: (u8::from($b.addr_ton), u8::from($b.addr_npi)),
            address_range: $b.address_range.to_string(),
        }
    };
}

/// The system_id the simulator answers successful binds with.
pub const SMSC_SYSTEM_ID: &str = "smppd-sim";

/// ESME_RINVESMCLASS: invalid esm_class.
const ESME_RINVESMCLASS: u32 = 0x43;
/// ESME_ROPTPARNOTALLWD: optional parameter not allowed.
const ESME_ROPTPARNOTALLWD: u32 = 0xC1;
/// ESME_RQUERYFAIL, ESME_RCANCELFAIL, ESME_RREPLACEFAIL, ESME_RSUBMITFAIL.
const ESME_RQUERYFAIL: u32 = 0x67;
const ESME_RCANCELFAIL: u32 = 0x11;
const ESME_RREPLACEFAIL: u32 = 0x13;
const ESME_RSUBMITFAIL: u32 = 0x45;

/// How long a deliver_sm the ESME refused waits before it is offered again.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

/// A connection from an ESME: plain TCP, or TLS over it.
pub(crate) type Stream = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

enum Flow {
    Continue,
    Close,
}

struct Session {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Outbound>,
    framed: Framed<Stream, SmppCodec>,
    bound: Option<BoundSession>,
    next_seq: u32,
    /// deliver_sm sent and not yet acknowledged, by sequence number.
    in_flight: HashMap<u32, Deliver>,
    /// Sequence numbers of the garbage deliver_sm we sent (fault injection).
    garbage: HashSet<u32>,
    /// submit_sm received and not yet answered on this connection (what the
    /// ESME has in its window, as seen from here).
    unanswered_submits: usize,
}

/// Serves one connection until it closes, then re-queues every deliver_sm
/// it had not delivered.
pub(crate) async fn run(shared: Arc<Shared>, stream: Stream, peer: SocketAddr) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = shared.register(tx.clone());
    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
    log::info!("simulator: connection {id} from {peer}");
    let mut shutdown = shared.shutdown.subscribe();
    let mut session = Session {
        shared: shared.clone(),
        id,
        peer,
        tx,
        framed: Framed::new(stream, SmppCodec::default()),
        bound: None,
        next_seq: 1,
        in_flight: HashMap::new(),
        garbage: HashSet::new(),
        unanswered_submits: 0,
    };
    if !*shutdown.borrow_and_update() {
        loop {
            let flow = tokio::select! {
                frame = session.framed.next() => match frame {
                    None => {
                        log::info!("simulator: connection {id} ({peer}) closed by the peer");
                        Flow::Close
                    }
                    Some(Err(err)) => {
                        log::warn!("simulator: connection {id} ({peer}): {err}; closing");
                        Flow::Close
                    }
                    Some(Ok(Frame::Malformed(m))) => session.on_malformed(m).await,
                    Some(Ok(Frame::Command(command))) => session.on_command(*command).await,
                },
                out = rx.recv() => match out {
                    Some(out) => session.on_outbound(out).await,
                    None => Flow::Close,
                },
                _ = shutdown.changed() => Flow::Close,
            };
            if let Flow::Close = flow {
                break;
            }
        }
    }
    session.cleanup(rx);
}

impl Session {
    fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    }

    /// Writes one PDU (after a garbage deliver_sm when the malformed fault
    /// says so). False when the connection is gone.
    async fn write(&mut self, command: Command) -> bool {
        if command.id() == CommandId::SubmitSmResp {
            self.unanswered_submits = self.unanswered_submits.saturating_sub(1);
        }
        if self.bound.is_some() {
            let count = self
                .shared
                .counters
                .pdus_sent
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            let malformed_every_n = self.shared.faults().malformed_every_n.filter(|n| *n > 0);
            if malformed_every_n.is_some_and(|n| count.is_multiple_of(n)) {
                let seq = self.next_seq();
                if self.garbage.len() > 1024 {
                    self.garbage.clear();
                }
                self.garbage.insert(seq);
                log::info!(
                    "simulator: connection {}: sending a malformed deliver_sm (seq {seq})",
                    self.id
                );
                let garbage = Command::new(CommandStatus::EsmeRok, seq, pdus::garbage_deliver_sm());
                if let Err(err) = self.framed.send(garbage).await {
                    log::warn!("simulator: connection {}: write failed: {err}", self.id);
                    return false;
                }
            }
        }
        match self.framed.send(command).await {
            Ok(()) => true,
            Err(err) => {
                log::warn!(
                    "simulator: connection {} ({}): write failed: {err}",
                    self.id,
                    self.peer
                );
                false
            }
        }
    }

    async fn respond(&mut self, status: u32, seq: u32, pdu: Pdu) -> Flow {
        if self
            .write(Command::new(CommandStatus::from(status), seq, pdu))
            .await
        {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    async fn nack(&mut self, status: u32, seq: u32) -> Flow {
        log::debug!(
            "simulator: connection {}: generic_nack {} for seq {seq}",
            self.id,
            status::name(status)
        );
        self.respond(status, seq, Pdu::GenericNack).await
    }

    async fn on_malformed(&mut self, m: MalformedPdu) -> Flow {
        if m.command_id & 0x8000_0000 != 0 {
            log::warn!(
                "simulator: connection {}: malformed response 0x{:08x} (seq {}) ignored: {}",
                self.id,
                m.command_id,
                m.sequence_number,
                m.reason
            );
            return Flow::Continue;
        }
        log::warn!(
            "simulator: connection {}: malformed request 0x{:08x} (seq {}): {}",
            self.id,
            m.command_id,
            m.sequence_number,
            m.reason
        );
        self.nack(status::ESME_RINVCMDLEN, m.sequence_number).await
    }

    async fn on_command(&mut self, command: Command) -> Flow {
        let id = command.id();
        let seq = command.sequence_number();
        if id.is_response() {
            self.on_response(id, u32::from(command.status()), seq);
            return Flow::Continue;
        }
        if id == CommandId::SubmitSm {
            self.shared
                .counters
                .submits_received
                .fetch_add(1, Ordering::Relaxed);
        }
        let Some(pdu) = command.pdu() else {
            // No body: either an id we do not know, or a request that needs
            // a body and came without one.
            return if matches!(id, CommandId::Other(_)) {
                self.nack(status::ESME_RINVCMDID, seq).await
            } else {
                self.nack(status::ESME_RINVCMDLEN, seq).await
            };
        };
        match pdu {
            Pdu::BindTransmitter(b) => {
                let request = bind_request!(b);
                self.on_bind("transmitter", id, seq, request).await
            }
            Pdu::BindReceiver(b) => {
                let request = bind_request!(b);
                self.on_bind("receiver", id, seq, request).await
            }
            Pdu::BindTransceiver(b) => {
                let request = bind_request!(b);
                self.on_bind("transceiver", id, seq, request).await
            }
            Pdu::EnquireLink => {
                self.shared
                    .counters
                    .enquire_links
                    .fetch_add(1, Ordering::Relaxed);
                if self.shared.faults().ignore_enquire_link {
                    log::debug!(
                        "simulator: connection {}: enquire_link ignored (fault)",
                        self.id
                    );
                    Flow::Continue
                } else {
                    self.respond(status::ESME_ROK, seq, Pdu::EnquireLinkResp)
                        .await
                }
            }
            Pdu::Unbind if self.bound.is_some() => {
                log::info!("simulator: connection {}: unbind", self.id);
                self.shared.counters.unbinds.fetch_add(1, Ordering::Relaxed);
                self.respond(status::ESME_ROK, seq, Pdu::UnbindResp).await;
                Flow::Close
            }
            Pdu::Unbind
            | Pdu::SubmitSm(_)
            | Pdu::QuerySm(_)
            | Pdu::CancelSm(_)
            | Pdu::ReplaceSm(_)
            | Pdu::SubmitMulti(_)
            | Pdu::DataSm(_)
                if self.bound.is_none() =>
            {
                log::warn!("simulator: connection {}: {id:?} before bind", self.id);
                self.nack(status::ESME_RINVBNDSTS, seq).await
            }
            Pdu::SubmitSm(sm) => {
                let sm = sm.clone();
                self.on_submit(seq, sm).await
            }
            Pdu::SubmitMulti(_) | Pdu::DataSm(_) => {
                let status = if self.can_submit() {
                    ESME_RSUBMITFAIL
                } else {
                    status::ESME_RINVBNDSTS
                };
                self.respond(status, seq, pdus::bodyless(id.matching_response()))
                    .await
            }
            Pdu::QuerySm(_) => {
                self.respond(ESME_RQUERYFAIL, seq, pdus::bodyless(CommandId::QuerySmResp))
                    .await
            }
            Pdu::CancelSm(_) => self.respond(ESME_RCANCELFAIL, seq, Pdu::CancelSmResp).await,
            Pdu::ReplaceSm(_) => {
                self.respond(ESME_RREPLACEFAIL, seq, Pdu::ReplaceSmResp)
                    .await
            }
            _ => {
                log::warn!(
                    "simulator: connection {}: unsupported request {id:?}",
                    self.id
                );
                self.nack(status::ESME_RINVCMDID, seq).await
            }
        }
    }

    fn can_submit(&self) -> bool {
        self.bound.as_ref().is_some_and(|b| b.mode != "receiver")
    }

    async fn on_bind(
        &mut self,
        mode: &'static str,
        id: CommandId,
        seq: u32,
        request: BindRequest,
    ) -> Flow {
        let BindRequest {
            system_id,
            password,
            interface_version,
            addr_ton_npi,
            address_range,
        } = request;
        let resp_id = id.matching_response();
        let refuse = |reason: u32| {
            log::warn!(
                "simulator: bind_{mode} of {system_id:?} refused: {}",
                status::name(reason)
            );
            reason
        };
        let failure = if self.bound.is_some() {
            Some(refuse(status::ESME_RALYBND))
        } else if self.shared.faults().refuse_binds {
            Some(refuse(status::ESME_RBINDFAIL))
        } else if self.shared.accounts.is_empty() {
            None
        } else {
            match self
                .shared
                .accounts
                .iter()
                .find(|a| a.system_id == system_id)
            {
                None => Some(refuse(status::ESME_RINVSYSID)),
                Some(a) if a.password != password => Some(refuse(status::ESME_RINVPASWD)),
                Some(_) => None,
            }
        };
        if let Some(code) = failure {
            return self.respond(code, seq, pdus::bodyless(resp_id)).await;
        }
        let version = u8::from(interface_version);
        let sc_version = (version >= 0x34).then_some(InterfaceVersion::Smpp3_4);
        let smsc_id: COctetString<1, 16> =
            c_string("system_id", SMSC_SYSTEM_ID).unwrap_or_else(|_| COctetString::empty());
        let resp: Pdu = match mode {
            "transmitter" => BindTransmitterResp::new(smsc_id, sc_version).into(),
            "receiver" => BindReceiverResp::new(smsc_id, sc_version).into(),
            _ => BindTransceiverResp::new(smsc_id, sc_version).into(),
        };
        let bound = BoundSession {
            system_id,
            mode,
            interface_version: version,
            addr_ton_npi,
            address_range,
        };
        // Registered before the response is written, so whoever sees the
        // bind_resp also sees the session bound. Queued deliver_sm go to
        // this session's channel, which is only read after this handler.
        self.shared.bind(self.id, bound.clone());
        if !self
            .write(Command::new(CommandStatus::EsmeRok, seq, resp))
            .await
        {
            return Flow::Close;
        }
        log::info!(
            "simulator: connection {} bound as {mode} for {:?} (interface_version 0x{version:02x})",
            self.id,
            bound.system_id
        );
        self.bound = Some(bound);
        self.shared.counters.binds.fetch_add(1, Ordering::Relaxed);
        Flow::Continue
    }

    async fn on_submit(&mut self, seq: u32, sm: SubmitSm) -> Flow {
        self.unanswered_submits += 1;
        self.shared
            .counters
            .max_submits_in_flight
            .fetch_max(self.unanswered_submits, Ordering::Relaxed);
        if !self.can_submit() {
            return self
                .respond(
                    status::ESME_RINVBNDSTS,
                    seq,
                    pdus::bodyless(CommandId::SubmitSmResp),
                )
                .await;
        }
        let faults = self.shared.faults();
        let count = self
            .shared
            .counters
            .submits_received
            .load(Ordering::Relaxed) as u64;
        if let Some(n) = faults.drop_every_n_submits.filter(|n| *n > 0) {
            if count.is_multiple_of(n) {
                log::info!(
                    "simulator: connection {}: dropping the connection instead of answering submit #{count} (fault)",
                    self.id
                );
                return Flow::Close;
            }
        }
        let destination = sm.destination_addr.to_string();
        let esm_class = u8::from(sm.esm_class);
        let content = pdus::submit_content(&sm);
        let invalid = if destination.is_empty() {
            Some(status::ESME_RINVDSTADR)
        } else if !pdus::submit_esm_class_is_valid(esm_class) {
            Some(ESME_RINVESMCLASS)
        } else if content.both_bodies {
            Some(ESME_ROPTPARNOTALLWD)
        } else {
            None
        };
        let injected = {
            let r: f64 = rand::random();
            let t = faults.throttle_fraction.max(0.0);
            let e = t + faults.temporary_error_fraction.max(0.0);
            let p = e + faults.permanent_error_fraction.max(0.0);
            if r < t {
                Some(status::ESME_RTHROTTLED)
            } else if r < e {
                Some(status::ESME_RSYSERR)
            } else if r < p {
                Some(status::ESME_RINVDSTADR)
            } else {
                None
            }
        };
        if let Some(code) = invalid.or(injected) {
            log::debug!(
                "simulator: connection {}: submit_sm seq {seq} answered {}",
                self.id,
                status::name(code)
            );
            let command = Command::new(
                CommandStatus::from(code),
                seq,
                pdus::bodyless(CommandId::SubmitSmResp),
            );
            return self.respond_submit(command, None, &faults);
        }

        let system_id = self
            .bound
            .as_ref()
            .map(|b| b.system_id.clone())
            .unwrap_or_default();
        let message_id = self.shared.next_message_id();
        let registered_delivery = u8::from(sm.registered_delivery);
        let outcome = if rand::random::<f64>() < faults.undeliverable_fraction {
            Outcome::Undeliverable
        } else {
            Outcome::Delivered
        };
        // SMPP 3.4 §5.2.17: 1 = receipt on success or failure, 2 = on failure
        // only; 3 (SMPP 5.0) = on success only.
        let mut wants_receipt = match registered_delivery & 0x03 {
            1 => true,
            2 => outcome == Outcome::Undeliverable,
            3 => outcome == Outcome::Delivered,
            _ => false,
        };
        if wants_receipt
            && faults.lost_receipt_fraction > 0.0
            && rand::random::<f64>() < faults.lost_receipt_fraction
        {
            self.shared
                .counters
                .receipts_lost
                .fetch_add(1, Ordering::Relaxed);
            wants_receipt = false;
        }
        let now = SystemTime::now();
        // A scheduled message is delivered, and its receipt sent, at its
        // schedule_delivery_time.
        let hold = if sm.schedule_delivery_time.is_empty() {
            Duration::ZERO
        } else {
            let now_ms = crate::smpp::time::unix_ms();
            crate::smpp::time::parse_smpp_time(&sm.schedule_delivery_time.to_string(), now_ms)
                .and_then(|at| u64::try_from(at - now_ms).ok())
                .map(Duration::from_millis)
                .unwrap_or_default()
        };
        let receipt = wants_receipt.then(|| Deliver {
            system_id: system_id.clone(),
            kind: DeliverKind::Receipt,
            pdu: Box::new(pdus::receipt(
                &ReceiptInput {
                    message_id: &self.shared.receipt_id(&message_id),
                    submit: &sm,
                    text: &content.text,
                    outcome,
                    submit_time: now,
                    done_time: now + hold + self.shared.dlr_delay,
                },
                self.shared.receipts_as_data_sm,
            )),
            hold,
        });
        log::debug!(
            "simulator: connection {}: submit_sm seq {seq} accepted as {message_id} ({} -> {destination})",
            self.id,
            sm.source_addr
        );
        self.shared.record_submit(ReceivedSubmit {
            system_id,
            source: sm.source_addr.to_string(),
            destination,
            service_type: sm.service_type.value().to_string(),
            source_ton_npi: (u8::from(sm.source_addr_ton), u8::from(sm.source_addr_npi)),
            dest_ton_npi: (u8::from(sm.dest_addr_ton), u8::from(sm.dest_addr_npi)),
            text: content.text,
            bytes: content.bytes,
            data_coding: u8::from(sm.data_coding),
            registered_delivery,
            esm_class,
            message_id: message_id.clone(),
            udh: content.udh.clone(),
            sar: content.sar,
            in_payload: content.in_payload,
            schedule_delivery_time: sm.schedule_delivery_time.to_string(),
            validity_period: sm.validity_period.to_string(),
        });
        let id =
            c_string::<1, 65>("message_id", &message_id).unwrap_or_else(|_| COctetString::empty());
        let resp = SubmitSmResp::builder().message_id(id).build();
        let command = Command::new(CommandStatus::EsmeRok, seq, resp);
        self.respond_submit(command, receipt, &faults)
    }

    /// Queues a submit_sm_resp behind whatever this session already has to
    /// send, after the stall fault's delay; the receipt follows it after
    /// `dlr_delay`, or goes out first with `dlr_before_resp`.
    fn respond_submit(
        &mut self,
        command: Command,
        receipt: Option<Deliver>,
        faults: &Faults,
    ) -> Flow {
        let receipt = match receipt {
            Some(r) if faults.dlr_before_resp => {
                self.shared.dispatch_preferring(r, Some(self.id));
                None
            }
            other => other,
        };
        let out = Outbound::Response {
            command: Box::new(command),
            receipt,
        };
        match faults.stall_responses.filter(|d| !d.is_zero()) {
            Some(delay) => {
                let tx = self.tx.clone();
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(mpsc::error::SendError(Outbound::Response {
                        receipt: Some(r),
                        ..
                    })) = tx.send(out)
                    {
                        schedule_receipt(&shared, r);
                    }
                });
            }
            None => {
                if let Err(mpsc::error::SendError(Outbound::Response {
                    receipt: Some(r), ..
                })) = self.tx.send(out)
                {
                    schedule_receipt(&self.shared, r);
                }
            }
        }
        Flow::Continue
    }

    async fn on_outbound(&mut self, out: Outbound) -> Flow {
        match out {
            Outbound::Deliver(deliver) => {
                let seq = self.next_seq();
                let pdu = (*deliver.pdu).clone();
                let kind = deliver.kind;
                self.in_flight.insert(seq, deliver);
                if !self
                    .write(Command::new(CommandStatus::EsmeRok, seq, pdu))
                    .await
                {
                    return Flow::Close;
                }
                let counter = match kind {
                    DeliverKind::Receipt => &self.shared.counters.receipts_sent,
                    DeliverKind::MobileOriginated => &self.shared.counters.mo_sent,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Flow::Continue
            }
            Outbound::Response { command, receipt } => {
                let written = self.write(*command).await;
                if let Some(r) = receipt {
                    // The message was accepted whether or not its response
                    // arrived: its receipt is due either way.
                    schedule_receipt(&self.shared, r);
                }
                if written {
                    Flow::Continue
                } else {
                    Flow::Close
                }
            }
            Outbound::Close => {
                log::info!("simulator: connection {} ({}) dropped", self.id, self.peer);
                Flow::Close
            }
        }
    }

    fn on_response(&mut self, id: CommandId, status: u32, seq: u32) {
        if self.garbage.remove(&seq) {
            log::debug!(
                "simulator: connection {}: {id:?} {} for the malformed deliver_sm seq {seq}",
                self.id,
                status::name(status)
            );
            return;
        }
        match id {
            CommandId::DeliverSmResp | CommandId::DataSmResp | CommandId::GenericNack => {
                match self.in_flight.remove(&seq) {
                    Some(deliver)
                        if status == status::ESME_ROK
                            && id == deliver.pdu.command_id().matching_response() =>
                    {
                        if deliver.kind == DeliverKind::Receipt {
                            self.shared
                                .counters
                                .receipts_acknowledged
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(deliver) => {
                        log::warn!(
                        "simulator: connection {}: deliver_sm seq {seq} refused with {id:?} {}; retrying in {REDELIVERY_DELAY:?}",
                        self.id,
                        status::name(status)
                    );
                        let shared = self.shared.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(REDELIVERY_DELAY).await;
                            shared.dispatch(deliver);
                        });
                    }
                    None => log::warn!(
                        "simulator: connection {}: {id:?} for unknown seq {seq}",
                        self.id
                    ),
                }
            }
            CommandId::EnquireLinkResp | CommandId::UnbindResp => {}
            other => log::debug!(
                "simulator: connection {}: unexpected response {other:?}",
                self.id
            ),
        }
    }

    /// Hands back everything this session had not delivered: deliver_sm
    /// still in its channel or sent without deliver_sm_resp.
    fn cleanup(mut self, mut rx: mpsc::UnboundedReceiver<Outbound>) {
        self.shared.unregister(self.id);
        rx.close();
        while let Ok(out) = rx.try_recv() {
            match out {
                Outbound::Deliver(d) => self.shared.dispatch(d),
                Outbound::Response {
                    receipt: Some(r), ..
                } => schedule_receipt(&self.shared, r),
                Outbound::Response { receipt: None, .. } | Outbound::Close => {}
            }
        }
        let mut unacknowledged: Vec<(u32, Deliver)> = self.in_flight.drain().collect();
        unacknowledged.sort_by_key(|(seq, _)| *seq);
        if !unacknowledged.is_empty() {
            log::info!(
                "simulator: connection {} closed with {} unacknowledged deliver_sm; re-queued",
                self.id,
                unacknowledged.len()
            );
        }
        for (_, d) in unacknowledged {
            self.shared.dispatch(d);
        }
    }
}

/// Dispatches a receipt after `dlr_delay` (and its `hold`).
fn schedule_receipt(shared: &Arc<Shared>, receipt: Deliver) {
    let delay = shared.dlr_delay + receipt.hold;
    if delay.is_zero() {
        shared.dispatch(receipt);
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        shared.dispatch(receipt);
    });
}
