//! One ESME-side SMPP 3.4 session as a state machine without I/O.
//!
//! ```text
//!            connect                 bind_*            bind_*_resp OK
//!  (none) ──────────► Open ──────────────────► Binding ──────────────► Bound
//!                      │                        │  resp error/timeout     │  │
//!                      │                        ▼                         │  │ unbind (ours)
//!                      └──────────────────► Closed ◄──── unbind_resp ── Unbinding
//!                                              ▲                            │
//!                                              └──── peer unbind / dead ◄───┘
//! ```
//! (SMPP 3.4 §2.3–2.4: submit only when bound as transmitter or transceiver;
//! deliver_sm only arrives when bound as receiver or transceiver.)
//!
//! The caller (the connection actor) feeds in frames and clock ticks and
//! carries out the returned [`Event`]s: write a PDU, store a result, close
//! the socket. Everything here is plain data, so every rule is unit-tested
//! without a socket or a runtime.

use std::time::{Duration, Instant};

use rusmpp::pdus::SubmitSm;
use rusmpp::{Command, CommandStatus, Pdu};

use super::codec::{Frame, MalformedPdu};
use super::pdu::{self, BindParams, Inbound, PduError};
use super::status;
use super::window::{ReserveError, Window};

/// How the session binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindMode {
    /// Submit only.
    Transmitter,
    /// Receive (DLRs, MO) only.
    Receiver,
    /// Both on one connection.
    Transceiver,
}

impl BindMode {
    /// May this bind submit messages?
    pub fn can_submit(self) -> bool {
        !matches!(self, BindMode::Receiver)
    }

    /// May this bind receive deliver_sm?
    pub fn can_receive(self) -> bool {
        !matches!(self, BindMode::Transmitter)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Transmitter => "transmitter",
            BindMode::Receiver => "receiver",
            BindMode::Transceiver => "transceiver",
        }
    }
}

/// The SMPP session states (cloudhopper's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// TCP is up, nothing sent yet.
    Open,
    /// bind_* sent, waiting for its response.
    Binding,
    /// Bound: requests may flow.
    Bound,
    /// unbind sent (or received), waiting to close.
    Unbinding,
    /// Finished; the connection must be dropped.
    Closed,
}

impl SessionState {
    /// Lower-case name for logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Open => "open",
            SessionState::Binding => "binding",
            SessionState::Bound => "bound",
            SessionState::Unbinding => "unbinding",
            SessionState::Closed => "closed",
        }
    }
}

/// Sequence numbers 1..=0x7FFF_FFFF, wrapping back to 1 (SMPP 3.4 §3.2).
#[derive(Debug, Clone)]
pub struct SequenceNumbers {
    next: u32,
}

impl SequenceNumbers {
    /// Starts at 1.
    pub fn new() -> Self {
        Self { next: 1 }
    }

    /// Starts at `first` (for testing the wrap).
    pub fn starting_at(first: u32) -> Self {
        Self {
            next: first.clamp(1, 0x7FFF_FFFF),
        }
    }

    /// The next number.
    pub fn next_seq(&mut self) -> u32 {
        let seq = self.next;
        self.next = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    }
}

impl Default for SequenceNumbers {
    fn default() -> Self {
        Self::new()
    }
}

/// Timers and sizes of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Credentials and bind mode.
    pub bind: BindParams,
    /// Outstanding submits allowed.
    pub window: usize,
    /// Probe the link when nothing was received for this long.
    pub enquire_link_interval: Duration,
    /// How long any request (bind, submit, enquire_link, unbind) may wait for
    /// its response.
    pub response_timeout: Duration,
}

/// Why a session ended on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The SMSC refused the bind with this command_status.
    BindRefused(u32),
    /// No bind response in time.
    BindTimeout,
    /// enquire_link went unanswered.
    KeepaliveTimeout,
    /// The SMSC sent unbind.
    PeerUnbound,
    /// Our unbind completed (or timed out).
    Unbound,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::BindRefused(code) => {
                write!(f, "bind refused: {} (0x{code:08X})", status::name(*code))
            }
            CloseReason::BindTimeout => f.write_str("no bind response within the response timeout"),
            CloseReason::KeepaliveTimeout => {
                f.write_str("enquire_link unanswered within the response timeout")
            }
            CloseReason::PeerUnbound => f.write_str("SMSC sent unbind"),
            CloseReason::Unbound => f.write_str("unbound"),
        }
    }
}

/// The result of one submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted; the SMSC's message id.
    Accepted(String),
    /// Refused with this command_status (from submit_sm_resp or generic_nack).
    Refused(u32),
    /// No response within the response timeout, or the session ended first:
    /// the SMSC may or may not have the message.
    Unknown,
}

/// What the caller must do.
#[derive(Debug)]
pub enum Event<T> {
    /// Write this PDU.
    Send(Box<Command>),
    /// The bind succeeded.
    Bound,
    /// A submit finished.
    Submitted {
        /// The caller's token for the message.
        item: T,
        /// How it ended.
        outcome: SubmitOutcome,
    },
    /// A deliver_sm or a data_sm arrived. The caller answers with
    /// [`Session::delivery_resp`] once it has handled it (we acknowledge
    /// receipts only after they are stored).
    Deliver {
        /// To echo in the response.
        sequence_number: u32,
        /// The PDU.
        pdu: Box<Inbound>,
    },
    /// The session is over; flush pending writes and close the socket.
    Close(CloseReason),
}

/// Why a submit was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitRefused {
    /// Not bound, or bound as receiver.
    NotBound,
    /// No free window slot.
    WindowFull,
}

/// A request of ours waiting for its response, outside the submit window.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u32,
    deadline: Instant,
}

/// The session.
#[derive(Debug)]
pub struct Session<T> {
    config: SessionConfig,
    state: SessionState,
    seq: SequenceNumbers,
    window: Window<T>,
    bind: Option<Pending>,
    enquire_link: Option<Pending>,
    unbind: Option<Pending>,
    last_received: Instant,
}

impl<T> Session<T> {
    /// A session on a freshly connected socket.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let window = Window::new(config.window, config.response_timeout);
        Self {
            config,
            state: SessionState::Open,
            seq: SequenceNumbers::new(),
            window,
            bind: None,
            enquire_link: None,
            unbind: None,
            last_received: now,
        }
    }

    /// Current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Submits in flight.
    pub fn in_flight(&self) -> usize {
        self.window.len()
    }

    /// Free submit slots (0 unless bound for submitting).
    pub fn free_window(&self) -> usize {
        if self.state == SessionState::Bound && self.config.bind.mode.can_submit() {
            self.window.free()
        } else {
            0
        }
    }

    /// Window size.
    pub fn window_size(&self) -> usize {
        self.window.capacity()
    }

    /// The bind mode.
    pub fn mode(&self) -> BindMode {
        self.config.bind.mode
    }

    fn command(&mut self, pdu: impl Into<Pdu>) -> (u32, Box<Command>) {
        let seq = self.seq.next_seq();
        (
            seq,
            Box::new(Command::new(CommandStatus::EsmeRok, seq, pdu)),
        )
    }

    fn response(seq: u32, status: u32, pdu: impl Into<Pdu>) -> Box<Command> {
        Box::new(Command::new(CommandStatus::from(status), seq, pdu))
    }

    /// Open → Binding: the bind PDU to send.
    pub fn start_bind(&mut self, now: Instant) -> Result<Box<Command>, PduError> {
        let pdu = pdu::bind(&self.config.bind)?;
        let (seq, command) = self.command(pdu);
        self.bind = Some(Pending {
            seq,
            deadline: now + self.config.response_timeout,
        });
        self.state = SessionState::Binding;
        Ok(command)
    }

    /// Puts a submit_sm in the window. On refusal the item comes back.
    pub fn submit(
        &mut self,
        item: T,
        pdu: SubmitSm,
        now: Instant,
    ) -> Result<Box<Command>, (SubmitRefused, T)> {
        if self.state != SessionState::Bound || !self.config.bind.mode.can_submit() {
            return Err((SubmitRefused::NotBound, item));
        }
        if self.window.free() == 0 {
            return Err((SubmitRefused::WindowFull, item));
        }
        let seq = self.seq.next_seq();
        match self.window.try_reserve(seq, item, now) {
            Ok(()) => Ok(Box::new(Command::new(CommandStatus::EsmeRok, seq, pdu))),
            Err((ReserveError::Full, item)) | Err((ReserveError::Duplicate, item)) => {
                Err((SubmitRefused::WindowFull, item))
            }
        }
    }

    /// Our answer to a deliver_sm (`data` false) or a data_sm (`data`
    /// true), once it is handled.
    pub fn delivery_resp(&self, sequence_number: u32, status: u32, data: bool) -> Box<Command> {
        if data {
            Self::response(sequence_number, status, rusmpp::pdus::DataSmResp::default())
        } else {
            Self::response(
                sequence_number,
                status,
                rusmpp::pdus::DeliverSmResp::default(),
            )
        }
    }

    /// Bound → Unbinding: the unbind to send. `None` if not bound (nothing to
    /// say; just close).
    pub fn start_unbind(&mut self, now: Instant) -> Option<Box<Command>> {
        if self.state != SessionState::Bound {
            self.state = SessionState::Closed;
            return None;
        }
        let (seq, command) = self.command(Pdu::Unbind);
        self.unbind = Some(Pending {
            seq,
            deadline: now + self.config.response_timeout,
        });
        self.state = SessionState::Unbinding;
        Some(command)
    }

    /// The socket is gone (or we are closing it): every submit in flight has
    /// an unknown outcome.
    pub fn close(&mut self) -> Vec<T> {
        self.state = SessionState::Closed;
        self.bind = None;
        self.enquire_link = None;
        self.unbind = None;
        self.window
            .drain()
            .into_iter()
            .map(|(_, item)| item)
            .collect()
    }

    /// When [`Session::tick`] should next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.window.next_deadline(),
            self.bind.map(|p| p.deadline),
            self.enquire_link.map(|p| p.deadline),
            self.unbind.map(|p| p.deadline),
            (self.state == SessionState::Bound && self.enquire_link.is_none())
                .then(|| self.last_received + self.config.enquire_link_interval),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers: expire submits, time out bind/unbind/enquire_link, and probe
    /// an idle link.
    pub fn tick(&mut self, now: Instant) -> Vec<Event<T>> {
        let mut events = Vec::new();
        for (_, item) in self.window.expire(now) {
            events.push(Event::Submitted {
                item,
                outcome: SubmitOutcome::Unknown,
            });
        }
        if self.bind.is_some_and(|p| p.deadline <= now) {
            self.bind = None;
            self.state = SessionState::Closed;
            events.push(Event::Close(CloseReason::BindTimeout));
        }
        if self.unbind.is_some_and(|p| p.deadline <= now) {
            self.unbind = None;
            self.state = SessionState::Closed;
            events.push(Event::Close(CloseReason::Unbound));
        }
        if self.enquire_link.is_some_and(|p| p.deadline <= now) {
            self.enquire_link = None;
            self.state = SessionState::Closed;
            events.push(Event::Close(CloseReason::KeepaliveTimeout));
        }
        if self.state == SessionState::Bound
            && self.enquire_link.is_none()
            && now.duration_since(self.last_received) >= self.config.enquire_link_interval
        {
            let (seq, command) = self.command(Pdu::EnquireLink);
            self.enquire_link = Some(Pending {
                seq,
                deadline: now + self.config.response_timeout,
            });
            events.push(Event::Send(command));
        }
        events
    }

    /// Handles one frame from the SMSC.
    pub fn handle(&mut self, frame: Frame, now: Instant) -> Vec<Event<T>> {
        self.last_received = now;
        match frame {
            Frame::Malformed(bad) => self.handle_malformed(bad),
            Frame::Command(command) => self.handle_command(*command),
        }
    }

    fn handle_malformed(&mut self, bad: MalformedPdu) -> Vec<Event<T>> {
        let is_response = bad.command_id & 0x8000_0000 != 0;
        if !is_response {
            // A request we cannot read: generic_nack keeps the session going
            // (SMPP 3.4 §2.8); the SMSC will redeliver what matters.
            return vec![Event::Send(Self::response(
                bad.sequence_number,
                status::ESME_RINVCMDLEN,
                Pdu::GenericNack,
            ))];
        }
        if bad.command_id == 0x8000_0004 {
            // A submit_sm_resp we cannot read: its status field still is.
            if let Some(item) = self.window.complete(bad.sequence_number) {
                let outcome = if bad.command_status == status::ESME_ROK {
                    SubmitOutcome::Unknown
                } else {
                    SubmitOutcome::Refused(bad.command_status)
                };
                return vec![Event::Submitted { item, outcome }];
            }
        }
        Vec::new()
    }

    fn handle_command(&mut self, command: Command) -> Vec<Event<T>> {
        let seq = command.sequence_number();
        let code = u32::from(command.status());
        let id = u32::from(command.id());
        match command.pdu() {
            Some(
                Pdu::BindTransmitterResp(_)
                | Pdu::BindReceiverResp(_)
                | Pdu::BindTransceiverResp(_),
            )
            | None
                if self.bind.is_some_and(|p| p.seq == seq)
                    && id & 0x8000_0000 != 0
                    && id <= 0x8000_0009 =>
            {
                self.bind = None;
                if code == status::ESME_ROK {
                    self.state = SessionState::Bound;
                    vec![Event::Bound]
                } else {
                    self.state = SessionState::Closed;
                    vec![Event::Close(CloseReason::BindRefused(code))]
                }
            }
            Some(Pdu::SubmitSmResp(resp)) => {
                self.submit_done(seq, code, Some(resp.message_id().to_string()))
            }
            None if id == 0x8000_0004 => self.submit_done(seq, code, None),
            Some(Pdu::GenericNack) => {
                if self.bind.is_some_and(|p| p.seq == seq) {
                    // An SMSC that cannot parse our bind answers generic_nack:
                    // the bind is refused now, not at the timeout.
                    self.bind = None;
                    self.state = SessionState::Closed;
                    let code = if code == 0 {
                        status::ESME_RINVCMDID
                    } else {
                        code
                    };
                    return vec![Event::Close(CloseReason::BindRefused(code))];
                }
                if self.enquire_link.is_some_and(|p| p.seq == seq) {
                    // Some SMSCs nack enquire_link; it still proves the link.
                    self.enquire_link = None;
                    return Vec::new();
                }
                match self.window.complete(seq) {
                    Some(item) => vec![Event::Submitted {
                        item,
                        outcome: SubmitOutcome::Refused(if code == 0 {
                            status::ESME_RINVCMDID
                        } else {
                            code
                        }),
                    }],
                    None => Vec::new(),
                }
            }
            Some(Pdu::EnquireLinkResp) => {
                if self.enquire_link.is_some_and(|p| p.seq == seq) {
                    self.enquire_link = None;
                }
                Vec::new()
            }
            Some(Pdu::EnquireLink) => vec![Event::Send(Self::response(
                seq,
                status::ESME_ROK,
                Pdu::EnquireLinkResp,
            ))],
            Some(Pdu::Unbind) => {
                self.state = SessionState::Closed;
                vec![
                    Event::Send(Self::response(seq, status::ESME_ROK, Pdu::UnbindResp)),
                    Event::Close(CloseReason::PeerUnbound),
                ]
            }
            Some(Pdu::UnbindResp) => {
                if self.unbind.is_some_and(|p| p.seq == seq) {
                    self.unbind = None;
                    self.state = SessionState::Closed;
                    return vec![Event::Close(CloseReason::Unbound)];
                }
                Vec::new()
            }
            Some(Pdu::DeliverSm(pdu)) => self.inbound(seq, Inbound::Deliver(pdu.clone())),
            Some(Pdu::DataSm(pdu)) => self.inbound(seq, Inbound::Data(pdu.clone())),
            Some(Pdu::AlertNotification(_)) | Some(Pdu::Outbind(_)) => Vec::new(),
            _ if id & 0x8000_0000 == 0 => {
                // A request we do not implement (query_sm from an SMSC, a
                // vendor command): generic_nack, invalid command id.
                vec![Event::Send(Self::response(
                    seq,
                    status::ESME_RINVCMDID,
                    Pdu::GenericNack,
                ))]
            }
            _ => Vec::new(),
        }
    }

    /// A deliver_sm or data_sm: handed over while bound to receive, else
    /// refused with ESME_RINVBNDSTS.
    fn inbound(&self, seq: u32, pdu: Inbound) -> Vec<Event<T>> {
        if self.state != SessionState::Bound && self.state != SessionState::Unbinding
            || !self.config.bind.mode.can_receive()
        {
            let data = matches!(pdu, Inbound::Data(_));
            return vec![Event::Send(self.delivery_resp(
                seq,
                status::ESME_RINVBNDSTS,
                data,
            ))];
        }
        vec![Event::Deliver {
            sequence_number: seq,
            pdu: Box::new(pdu),
        }]
    }

    fn submit_done(&mut self, seq: u32, code: u32, message_id: Option<String>) -> Vec<Event<T>> {
        let Some(item) = self.window.complete(seq) else {
            log::debug!("submit_sm_resp for seq {seq} that is not outstanding (expired?)");
            return Vec::new();
        };
        let outcome = match (code, message_id) {
            (status::ESME_ROK, Some(id)) if !id.trim().is_empty() => SubmitOutcome::Accepted(id),
            // Accepted without an id: the message went out but can never be
            // matched to a receipt. Treat as accepted with an empty id.
            (status::ESME_ROK, _) => SubmitOutcome::Accepted(String::new()),
            (code, _) => SubmitOutcome::Refused(code),
        };
        vec![Event::Submitted { item, outcome }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::{BindTransceiverResp, DataSm, DeliverSm, SubmitSmResp};
    use rusmpp::types::COctetString;

    fn config(mode: BindMode) -> SessionConfig {
        SessionConfig {
            bind: BindParams {
                system_id: "acme".into(),
                password: "pw".into(),
                system_type: String::new(),
                mode,
                address: Default::default(),
            },
            window: 2,
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(5),
        }
    }

    fn frame(status: u32, seq: u32, pdu: impl Into<Pdu>) -> Frame {
        Frame::Command(Box::new(Command::new(
            CommandStatus::from(status),
            seq,
            pdu,
        )))
    }

    fn bound(now: Instant) -> Session<&'static str> {
        let mut s = Session::new(config(BindMode::Transceiver), now);
        let bind = s.start_bind(now).unwrap();
        let events = s.handle(
            frame(
                0,
                bind.sequence_number(),
                BindTransceiverResp::builder()
                    .system_id(COctetString::empty())
                    .build(),
            ),
            now,
        );
        assert!(matches!(events.as_slice(), [Event::Bound]));
        s
    }

    fn sm() -> SubmitSm {
        pdu::submit_sm("1234", "5678", "hi", 1, None).unwrap()
    }

    fn resp(id: &str) -> SubmitSmResp {
        SubmitSmResp::builder()
            .message_id(COctetString::from_vec(format!("{id}\0").into_bytes()).unwrap())
            .build()
    }

    #[test]
    fn sequence_numbers_wrap_from_0x7fffffff_to_1() {
        let mut seq = SequenceNumbers::starting_at(0x7FFF_FFFE);
        assert_eq!(seq.next_seq(), 0x7FFF_FFFE);
        assert_eq!(seq.next_seq(), 0x7FFF_FFFF);
        assert_eq!(seq.next_seq(), 1);
    }

    #[test]
    fn a_successful_bind_response_makes_the_session_bound() {
        let s = bound(Instant::now());
        assert_eq!(s.state(), SessionState::Bound);
        assert_eq!(s.free_window(), 2);
    }

    #[test]
    fn a_refused_bind_closes_with_the_status() {
        let now = Instant::now();
        let mut s: Session<()> = Session::new(config(BindMode::Transmitter), now);
        let bind = s.start_bind(now).unwrap();
        let events = s.handle(
            Frame::Command(Box::new(Command::new(
                CommandStatus::from(0x0E),
                bind.sequence_number(),
                rusmpp::pdus::BindTransmitterResp::builder()
                    .system_id(COctetString::empty())
                    .build(),
            ))),
            now,
        );
        assert!(matches!(
            events.as_slice(),
            [Event::Close(CloseReason::BindRefused(0x0E))]
        ));
        assert_eq!(s.state(), SessionState::Closed);
    }

    #[test]
    fn a_generic_nack_to_the_bind_refuses_it_at_once() {
        let now = Instant::now();
        let mut s: Session<()> = Session::new(config(BindMode::Transceiver), now);
        let bind = s.start_bind(now).unwrap();
        let events = s.handle(frame(0x03, bind.sequence_number(), Pdu::GenericNack), now);
        assert!(matches!(
            events.as_slice(),
            [Event::Close(CloseReason::BindRefused(0x03))]
        ));
        assert_eq!(s.state(), SessionState::Closed);
    }

    #[test]
    fn no_bind_response_within_the_timeout_closes_the_session() {
        let now = Instant::now();
        let mut s: Session<()> = Session::new(config(BindMode::Transceiver), now);
        s.start_bind(now).unwrap();
        assert!(s.tick(now + Duration::from_secs(4)).is_empty());
        let events = s.tick(now + Duration::from_secs(5));
        assert!(matches!(
            events.as_slice(),
            [Event::Close(CloseReason::BindTimeout)]
        ));
    }

    #[test]
    fn submits_are_refused_before_bind_and_when_the_window_is_full() {
        let now = Instant::now();
        let mut s: Session<&str> = Session::new(config(BindMode::Transceiver), now);
        assert!(matches!(
            s.submit("a", sm(), now),
            Err((SubmitRefused::NotBound, "a"))
        ));
        let mut s = bound(now);
        s.submit("a", sm(), now).unwrap();
        s.submit("b", sm(), now).unwrap();
        assert!(matches!(
            s.submit("c", sm(), now),
            Err((SubmitRefused::WindowFull, "c"))
        ));
    }

    #[test]
    fn a_receiver_bind_cannot_submit() {
        let now = Instant::now();
        let mut s: Session<&str> = Session::new(config(BindMode::Receiver), now);
        let bind = s.start_bind(now).unwrap();
        s.handle(
            frame(
                0,
                bind.sequence_number(),
                rusmpp::pdus::BindReceiverResp::builder()
                    .system_id(COctetString::empty())
                    .build(),
            ),
            now,
        );
        assert_eq!(s.state(), SessionState::Bound);
        assert_eq!(s.free_window(), 0);
        assert!(matches!(
            s.submit("a", sm(), now),
            Err((SubmitRefused::NotBound, _))
        ));
    }

    #[test]
    fn submit_sm_resp_reports_the_message_id_or_the_error() {
        let now = Instant::now();
        let mut s = bound(now);
        let a = s.submit("a", sm(), now).unwrap();
        let b = s.submit("b", sm(), now).unwrap();
        let ev = s.handle(frame(0, a.sequence_number(), resp("abc")), now);
        assert!(
            matches!(&ev[..], [Event::Submitted { item: "a", outcome: SubmitOutcome::Accepted(id) }] if id == "abc")
        );
        // An error response usually has no body at all.
        let ev = s.handle(
            Frame::Command(Box::new({
                let mut c = Command::new(CommandStatus::from(0x58), b.sequence_number(), resp("x"));
                c.status = CommandStatus::from(0x58);
                c
            })),
            now,
        );
        assert!(matches!(
            &ev[..],
            [Event::Submitted {
                item: "b",
                outcome: SubmitOutcome::Refused(0x58)
            }]
        ));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn an_unanswered_submit_expires_with_an_unknown_outcome() {
        let now = Instant::now();
        let mut s = bound(now);
        s.submit("a", sm(), now).unwrap();
        let ev = s.tick(now + Duration::from_secs(5));
        assert!(ev.iter().any(|e| matches!(
            e,
            Event::Submitted {
                item: "a",
                outcome: SubmitOutcome::Unknown
            }
        )));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn an_idle_link_is_probed_and_declared_dead_when_the_probe_is_unanswered() {
        let now = Instant::now();
        let mut s = bound(now);
        assert!(s.tick(now + Duration::from_secs(29)).is_empty());
        let ev = s.tick(now + Duration::from_secs(30));
        let probe = match &ev[..] {
            [Event::Send(c)] if matches!(c.pdu(), Some(Pdu::EnquireLink)) => c.sequence_number(),
            other => panic!("expected an enquire_link, got {other:?}"),
        };
        assert!(
            s.tick(now + Duration::from_secs(31)).is_empty(),
            "only one probe at a time"
        );
        let ev = s.tick(now + Duration::from_secs(35));
        assert!(matches!(
            &ev[..],
            [Event::Close(CloseReason::KeepaliveTimeout)]
        ));
        let _ = probe;
    }

    #[test]
    fn an_answered_probe_keeps_the_link_alive() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.tick(now + Duration::from_secs(30));
        let Event::Send(probe) = &ev[0] else { panic!() };
        s.handle(
            frame(0, probe.sequence_number(), Pdu::EnquireLinkResp),
            now + Duration::from_secs(31),
        );
        assert!(s.tick(now + Duration::from_secs(40)).is_empty());
        assert_eq!(s.state(), SessionState::Bound);
    }

    #[test]
    fn the_smscs_enquire_link_and_unbind_are_answered() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.handle(frame(0, 77, Pdu::EnquireLink), now);
        assert!(
            matches!(&ev[..], [Event::Send(c)] if c.sequence_number() == 77 && matches!(c.pdu(), Some(Pdu::EnquireLinkResp)))
        );
        let ev = s.handle(frame(0, 78, Pdu::Unbind), now);
        assert!(
            matches!(&ev[..], [Event::Send(c), Event::Close(CloseReason::PeerUnbound)]
            if c.sequence_number() == 78 && matches!(c.pdu(), Some(Pdu::UnbindResp)))
        );
    }

    #[test]
    fn a_malformed_request_is_answered_with_generic_nack_and_the_session_goes_on() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.handle(
            Frame::Malformed(MalformedPdu {
                command_id: 0x05,
                command_status: 0,
                sequence_number: 12,
                reason: "bad".into(),
            }),
            now,
        );
        assert!(
            matches!(&ev[..], [Event::Send(c)] if c.sequence_number() == 12 && c.id() == rusmpp::CommandId::GenericNack)
        );
        assert_eq!(s.state(), SessionState::Bound);
    }

    #[test]
    fn a_deliver_sm_is_handed_over_and_not_answered_until_handled() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.handle(frame(0, 5, DeliverSm::default()), now);
        assert!(matches!(
            &ev[..],
            [Event::Deliver {
                sequence_number: 5,
                ..
            }]
        ));
    }

    #[test]
    fn a_transmitter_answers_deliver_sm_and_data_sm_with_invalid_bind_status() {
        let now = Instant::now();
        let mut s: Session<()> = Session::new(config(BindMode::Transmitter), now);
        let bind = s.start_bind(now).unwrap();
        s.handle(
            frame(
                0,
                bind.sequence_number(),
                rusmpp::pdus::BindTransmitterResp::builder()
                    .system_id(COctetString::empty())
                    .build(),
            ),
            now,
        );
        let ev = s.handle(frame(0, 5, DeliverSm::default()), now);
        assert!(
            matches!(&ev[..], [Event::Send(c)] if u32::from(c.status()) == status::ESME_RINVBNDSTS)
        );
        // A data_sm too, with the response of its own kind.
        let ev = s.handle(frame(0, 6, DataSm::default()), now);
        assert!(matches!(
            &ev[..],
            [Event::Send(c)] if u32::from(c.status()) == status::ESME_RINVBNDSTS
                && c.id() == rusmpp::CommandId::DataSmResp
                && c.sequence_number() == 6
        ));
    }

    #[test]
    fn a_data_sm_is_handed_over_and_answered_with_data_sm_resp() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.handle(frame(0, 6, DataSm::default()), now);
        assert!(matches!(
            &ev[..],
            [Event::Deliver {
                sequence_number: 6,
                pdu,
            }] if matches!(**pdu, Inbound::Data(_))
        ));
        let resp = s.delivery_resp(6, status::ESME_ROK, true);
        assert_eq!(resp.id(), rusmpp::CommandId::DataSmResp);
        assert_eq!(resp.sequence_number(), 6);
        let resp = s.delivery_resp(7, status::ESME_ROK, false);
        assert_eq!(resp.id(), rusmpp::CommandId::DeliverSmResp);
    }

    #[test]
    fn an_unknown_request_gets_generic_nack_invalid_command_id() {
        let now = Instant::now();
        let mut s = bound(now);
        let ev = s.handle(frame(0, 9, rusmpp::pdus::QuerySm::default()), now);
        assert!(
            matches!(&ev[..], [Event::Send(c)] if u32::from(c.status()) == status::ESME_RINVCMDID && c.sequence_number() == 9)
        );
    }

    #[test]
    fn unbinding_waits_for_unbind_resp_then_closes() {
        let now = Instant::now();
        let mut s = bound(now);
        s.submit("a", sm(), now).unwrap();
        let unbind = s.start_unbind(now).unwrap();
        assert_eq!(s.state(), SessionState::Unbinding);
        let ev = s.handle(frame(0, unbind.sequence_number(), Pdu::UnbindResp), now);
        assert!(matches!(&ev[..], [Event::Close(CloseReason::Unbound)]));
        assert_eq!(
            s.close(),
            vec!["a"],
            "what was in flight comes back on close"
        );
    }
}
