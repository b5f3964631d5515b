//! A real SMPP 3.4 SMSC (server side) on real TCP, with fault injection:
//! used by smppd's demo, its integration tests and `examples/smsc_simulator.rs`.
//!
//! It runs on its own OS thread with its own (current-thread) tokio runtime,
//! so it works whatever runtime the caller uses. The caller talks to it
//! through a [`SimulatorHandle`]; dropping the last handle shuts it down.
//!
//! Behaviour (SMPP 3.4):
//! - binds: unknown system_id → ESME_RINVSYSID, wrong password →
//!   ESME_RINVPASWD, second bind on a connection → ESME_RALYBND (failed bind
//!   responses carry no body); success → system_id `smppd-sim` and an
//!   sc_interface_version TLV when the ESME speaks 3.4 or later;
//! - requests before bind (other than bind and enquire_link) → generic_nack
//!   ESME_RINVBNDSTS; submit_sm on a receiver bind → submit_sm_resp
//!   ESME_RINVBNDSTS; a PDU whose body does not decode → generic_nack
//!   ESME_RINVCMDLEN with its sequence number; unknown command ids →
//!   generic_nack ESME_RINVCMDID;
//! - submit_sm is validated (destination present, esm_class message type
//!   legal for a submit, not both short_message and message_payload) and
//!   answered with a message id unique over the simulator's life; when
//!   registered_delivery asks for it, a receipt follows after `dlr_delay`:
//!   deliver_sm esm_class 0x04 with the Appendix B text and the
//!   receipted_message_id and message_state TLVs; a submit with a
//!   schedule_delivery_time gets its receipt that much later (the message
//!   is "delivered" then);
//! - deliver_sm (receipts and MO) go to a bound receiver/transceiver of the
//!   same system_id, round robin; they wait in a per-account queue while
//!   none is bound, and one sent but not acknowledged when its connection
//!   drops is sent again later. A deliver_sm_resp with an error status (or a
//!   generic_nack) makes it retry after a second;
//! - with [`SimulatorConfig::tls`], every connection starts with a TLS
//!   handshake (SMPP over TLS); one that fails is counted in
//!   `tls_failures` and closed.

mod pdus;
mod session;
mod state;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::either::Either;

use crate::smpp::encoding;
use state::{Deliver, DeliverKind, Shared};

pub use session::SMSC_SYSTEM_ID;

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Where to listen; port 0 picks a free port (see
    /// [`SimulatorHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Accounts allowed to bind; empty accepts any system_id/password.
    pub accounts: Vec<Account>,
    /// Time between a submit_sm_resp and its receipt.
    pub dlr_delay: Duration,
    /// How message ids look.
    pub message_id_format: MessageIdFormat,
    /// How receipts quote them.
    pub receipt_id_format: ReceiptIdFormat,
    /// Send receipts as data_sm (SMPP 3.4 §4.7) instead of deliver_sm.
    pub receipts_as_data_sm: bool,
    /// Faults to inject from the start.
    pub faults: Faults,
    /// Serve SMPP over TLS with this configuration (see
    /// [`tls::server_config`]); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            accounts: Vec::new(),
            dlr_delay: Duration::from_millis(100),
            message_id_format: MessageIdFormat::Hex,
            receipt_id_format: ReceiptIdFormat::AsIssued,
            receipts_as_data_sm: false,
            faults: Faults::default(),
            tls: None,
        }
    }
}

/// An ESME account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// system_id the ESME binds with.
    pub system_id: String,
    /// Its password.
    pub password: String,
}

/// Message id style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageIdFormat {
    /// Lowercase hexadecimal, e.g. `18c4f2a9b3e`.
    #[default]
    Hex,
    /// Decimal digits.
    Decimal,
    /// A random version-4 UUID, e.g. `3f1c…-…`: opaque ids in no order, as
    /// many SMSCs and aggregators hand out.
    Uuid,
}

/// How a receipt quotes the id of its message, in its
/// receipted_message_id TLV and in its `id:` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiptIdFormat {
    /// Exactly as submit_sm_resp gave it (the default).
    #[default]
    AsIssued,
    /// The same number in decimal, zero-padded to 20 digits: an SMSC that
    /// answers in hexadecimal and reports in decimal, as SMPP 3.3-era
    /// SMSCs do. Needs hexadecimal or decimal ids.
    Decimal,
    /// The same number in upper-case hexadecimal, zero-padded to 16 digits.
    /// Needs hexadecimal or decimal ids.
    Hex,
}

/// Faults to inject. Fractions are probabilities in `0.0..=1.0`, drawn per
/// submit_sm; throttle, temporary and permanent errors are exclusive (one
/// draw, in that order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// submit_sm answered ESME_RTHROTTLED (0x58).
    pub throttle_fraction: f64,
    /// submit_sm answered ESME_RSYSERR (0x08).
    pub temporary_error_fraction: f64,
    /// submit_sm answered ESME_RINVDSTADR (0x0B).
    pub permanent_error_fraction: f64,
    /// Accepted, but the receipt says `stat:UNDELIV err:001` (message_state 5).
    pub undeliverable_fraction: f64,
    /// Accepted, but the receipt asked for is never sent, as an SMSC that
    /// loses track of a message does (counted in `receipts_lost`).
    pub lost_receipt_fraction: f64,
    /// Close the TCP connection instead of answering every Nth submit_sm
    /// (counted over the whole simulator).
    pub drop_every_n_submits: Option<u64>,
    /// Delay every submit_sm_resp by this.
    pub stall_responses: Option<Duration>,
    /// Never answer enquire_link.
    pub ignore_enquire_link: bool,
    /// Answer every bind with ESME_RBINDFAIL (0x0D).
    pub refuse_binds: bool,
    /// Before every Nth PDU we send on a bound session, send a deliver_sm
    /// with a valid header and a body that does not decode.
    pub malformed_every_n: Option<u64>,
    /// Send the receipt before the submit_sm_resp (no `dlr_delay`).
    pub dlr_before_resp: bool,
}

/// A submit_sm the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSubmit {
    /// system_id of the session it came on.
    pub system_id: String,
    /// source_addr.
    pub source: String,
    /// destination_addr.
    pub destination: String,
    /// service_type.
    pub service_type: String,
    /// source_addr_ton and source_addr_npi.
    pub source_ton_npi: (u8, u8),
    /// dest_addr_ton and dest_addr_npi.
    pub dest_ton_npi: (u8, u8),
    /// short_message (or message_payload), UDH removed, decoded by
    /// data_coding.
    pub text: String,
    /// The octets of the text as sent (after any UDH), before decoding.
    pub bytes: Vec<u8>,
    /// data_coding as sent.
    pub data_coding: u8,
    /// registered_delivery as sent.
    pub registered_delivery: u8,
    /// esm_class as sent.
    pub esm_class: u8,
    /// The id we answered with.
    pub message_id: String,
    /// The user data header (e.g. the concatenation header of a part).
    pub udh: Option<Vec<u8>>,
    /// sar_msg_ref_num, sar_total_segments and sar_segment_seqnum, when
    /// the part is marked by the SAR TLVs.
    pub sar: Option<(u16, u8, u8)>,
    /// The text came in message_payload (short_message empty).
    pub in_payload: bool,
    /// schedule_delivery_time as sent (empty: at once). The receipt
    /// follows that time, not the response.
    pub schedule_delivery_time: String,
    /// validity_period as sent (empty: the SMSC's default).
    pub validity_period: String,
}

/// A bound session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSession {
    /// The system_id it bound with.
    pub system_id: String,
    /// `"transmitter"`, `"receiver"` or `"transceiver"`.
    pub mode: &'static str,
    /// interface_version of its bind.
    pub interface_version: u8,
    /// addr_ton and addr_npi of its bind.
    pub addr_ton_npi: (u8, u8),
    /// address_range of its bind.
    pub address_range: String,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulatorStats {
    /// submit_sm PDUs received (accepted or not).
    pub submits_received: u64,
    /// submit_sm accepted (answered ESME_ROK).
    pub submits_accepted: u64,
    /// Receipt deliver_sm written (redeliveries included).
    pub receipts_sent: u64,
    /// Receipts asked for and never sent (`Faults::lost_receipt_fraction`).
    pub receipts_lost: u64,
    /// Receipts acknowledged with deliver_sm_resp ESME_ROK.
    pub receipts_acknowledged: u64,
    /// MO deliver_sm written (redeliveries included).
    pub mo_sent: u64,
    /// Successful binds.
    pub binds: u64,
    /// unbind requests received from bound sessions (each answered).
    pub unbinds: u64,
    /// enquire_link requests received (answered or, with the fault, not).
    pub enquire_links: u64,
    /// The most submit_sm one connection ever had unanswered at once: the
    /// client's window as the SMSC sees it.
    pub max_submits_in_flight: usize,
    /// Connections accepted.
    pub connections: u64,
    /// TLS handshakes that failed (with [`SimulatorConfig::tls`]).
    pub tls_failures: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// Sessions bound now.
    pub bound_sessions: usize,
    /// deliver_sm waiting for a receiver to bind.
    pub queued_deliveries: usize,
}

/// The simulator's entry point.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds the listening socket, then starts the simulator on its own
    /// thread.
    pub fn start(config: SimulatorConfig) -> std::io::Result<SimulatorHandle> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if config.message_id_format == MessageIdFormat::Uuid
            && config.receipt_id_format != ReceiptIdFormat::AsIssued
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "receipts can quote a UUID message id only as issued",
            ));
        }
        let mut shared = Shared::new(
            config.accounts,
            config.dlr_delay,
            (config.message_id_format, config.receipt_id_format),
            config.faults,
        );
        shared.receipts_as_data_sm = config.receipts_as_data_sm;
        let shared = Arc::new(shared);
        let tls = config.tls.map(tokio_rustls::TlsAcceptor::from);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("smsc-simulator".into())
            .spawn(move || {
                runtime.block_on(accept_loop(thread_shared, listener, tls));
                // Dropping the runtime drops every connection task, which
                // closes their sockets.
                drop(runtime);
            })?;
        log::info!("simulator: listening on {local_addr}");
        Ok(SimulatorHandle {
            inner: Arc::new(HandleInner {
                shared,
                local_addr,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            log::error!("simulator: cannot use the listening socket: {err}");
            return;
        }
    };
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow_and_update() {
        return;
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(err) = stream.set_nodelay(true) {
                        log::warn!("simulator: set_nodelay for {peer}: {err}");
                    }
                    let shared = shared.clone();
                    let Some(tls) = tls.clone() else {
                        tokio::spawn(session::run(shared, Either::Left(stream), peer));
                        continue;
                    };
                    tokio::spawn(async move {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                session::run(shared, Either::Right(stream), peer).await
                            }
                            failed => {
                                shared.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                                match failed {
                                    Ok(Err(err)) => log::warn!(
                                        "simulator: TLS handshake from {peer} failed: {err}"
                                    ),
                                    _ => log::warn!("simulator: TLS handshake from {peer} timed out"),
                                }
                            }
                        }
                    });
                }
                Err(err) => {
                    log::warn!("simulator: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    log::info!("simulator: shutting down");
}

/// Controls a running simulator. Cheap to clone; the simulator shuts down
/// when the last clone is dropped.
#[derive(Clone)]
pub struct SimulatorHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

struct HandleInner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl HandleInner {
    fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                log::error!("simulator: its thread panicked");
            }
            self.shared.clear_sessions();
        }
    }
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl SimulatorHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Replaces the faults; takes effect for the next PDUs.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.shared.set_faults(faults);
    }

    /// The faults in effect.
    pub fn faults(&self) -> Faults {
        self.inner.shared.faults()
    }

    /// Every accepted submit_sm so far, in order.
    pub fn submits(&self) -> Vec<ReceivedSubmit> {
        self.inner.shared.submits()
    }

    /// Number of submit_sm PDUs received, accepted or not.
    pub fn submit_count(&self) -> usize {
        self.inner
            .shared
            .counters
            .submits_received
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sessions bound now, in connection order.
    pub fn bound_sessions(&self) -> Vec<BoundSession> {
        self.inner.shared.bound_sessions()
    }

    /// Counters since start.
    pub fn stats(&self) -> SimulatorStats {
        self.inner.shared.stats()
    }

    /// Closes every TCP connection now, without unbind (as an SMSC crash
    /// would). Unacknowledged deliver_sm are kept for the next bind.
    pub fn drop_connections(&self) {
        log::info!("simulator: dropping every connection");
        self.inner.shared.close_all();
    }

    /// Sends a mobile-originated deliver_sm (esm_class 0) to a bound
    /// receiver/transceiver of `system_id`, or queues it until one binds.
    /// Invalid addresses are logged and the message is not sent.
    pub fn send_mo(&self, system_id: &str, source: &str, destination: &str, text: &str) {
        match pdus::mobile_originated(source, destination, text) {
            Ok(pdu) => self.inner.shared.dispatch(Deliver {
                system_id: system_id.to_string(),
                kind: DeliverKind::MobileOriginated,
                pdu: Box::new(pdu.into()),
                hold: Duration::ZERO,
            }),
            Err(err) => {
                log::warn!("simulator: MO from {source:?} to {destination:?} not sent: {err}")
            }
        }
    }

    /// Sends a long MO text the way a handset's SMSC does: split into
    /// parts with a concatenation UDH (esm_class 0x40), one deliver_sm each,
    /// under `reference`. Parts go out in the order given by `order`
    /// (1-based sequence numbers; all parts when empty).
    pub fn send_mo_parts(
        &self,
        system_id: &str,
        source: &str,
        destination: &str,
        text: &str,
        reference: u8,
        order: &[u8],
    ) {
        self.send_concatenated(
            system_id,
            source,
            destination,
            text,
            reference.into(),
            order,
            false,
        )
    }

    /// Like [`SimulatorHandle::send_mo_parts`], but each part is marked by
    /// the SAR TLVs (`sar_msg_ref_num`, `sar_total_segments`,
    /// `sar_segment_seqnum`) instead of a UDH, with a 16-bit reference.
    pub fn send_mo_sar_parts(
        &self,
        system_id: &str,
        source: &str,
        destination: &str,
        text: &str,
        reference: u16,
        order: &[u8],
    ) {
        self.send_concatenated(system_id, source, destination, text, reference, order, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_concatenated(
        &self,
        system_id: &str,
        source: &str,
        destination: &str,
        text: &str,
        reference: u16,
        order: &[u8],
        sar: bool,
    ) {
        let encoded = encoding::encode(text);
        let parts = encoding::split(&encoded);
        let total = parts.len() as u8;
        let order: Vec<u8> = if order.is_empty() {
            (1..=total).collect()
        } else {
            order.to_vec()
        };
        for sequence in order {
            let Some(payload) = parts.get(usize::from(sequence).wrapping_sub(1)) else {
                continue;
            };
            match pdus::mobile_originated(source, destination, "") {
                Ok(mut pdu) => {
                    let bytes = if sar {
                        use rusmpp::tlvs::MessageDeliveryRequestTlvValue as Tlv;
                        pdu.push_tlv(Tlv::SarMsgRefNum(reference));
                        pdu.push_tlv(Tlv::SarTotalSegments(total));
                        pdu.push_tlv(Tlv::SarSegmentSeqnum(sequence));
                        payload.to_vec()
                    } else {
                        let udh = encoding::concat_udh(reference as u8, total, sequence);
                        pdu.esm_class = rusmpp::values::EsmClass::from(0x40);
                        [&udh[..], payload].concat()
                    };
                    match rusmpp::types::OctetString::from_vec(bytes) {
                        Ok(sm) => pdu.set_short_message(sm),
                        Err(e) => {
                            log::warn!("simulator: MO part too long: {e}");
                            continue;
                        }
                    }
                    pdu.data_coding =
                        rusmpp::values::DataCoding::from(encoded.coding.data_coding());
                    self.inner.shared.dispatch(Deliver {
                        system_id: system_id.to_string(),
                        kind: DeliverKind::MobileOriginated,
                        pdu: Box::new(pdu.into()),
                        hold: Duration::ZERO,
                    });
                }
                Err(err) => log::warn!("simulator: MO part not sent: {err}"),
            }
        }
    }

    /// Stops accepting, closes every connection and ends the simulator's
    /// thread. Also happens when the last handle is dropped.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}
