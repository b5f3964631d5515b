//! The bundled SMSC simulator, driven over real TCP by a raw SMPP client
//! (`Framed<TcpStream, SmppCodec>`), so every test sees exactly the bytes an
//! ESME would.
#![cfg(feature = "simulator")]

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{
    BindReceiver, BindTransceiver, BindTransmitter, DataSmResp, DeliverSm, DeliverSmResp, SubmitSm,
};
use rusmpp::tlvs::{TlvTag, TlvValue};
use rusmpp::types::{COctetString, EmptyOrFullCOctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, ServiceType, Ton,
};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use smppd_actors::simulator::{
    Account, Faults, MessageIdFormat, ReceiptIdFormat, Simulator, SimulatorConfig, SimulatorHandle,
};
use smppd_actors::smpp::codec::{Frame, SmppCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Conn = Framed<TcpStream, SmppCodec>;

/// Longest any single wait may take.
const WAIT: Duration = Duration::from_secs(5);

/// Runs a test body with an overall deadline, so no test can hang.
async fn within<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(30), body)
        .await
        .expect("test timed out");
}

fn start(config: SimulatorConfig) -> SimulatorHandle {
    Simulator::start(config).expect("simulator starts")
}

fn fast() -> SimulatorConfig {
    SimulatorConfig {
        dlr_delay: Duration::from_millis(10),
        ..SimulatorConfig::default()
    }
}

fn acme() -> Vec<Account> {
    vec![Account {
        system_id: "acme".into(),
        password: "secret".into(),
    }]
}

async fn connect(sim: &SimulatorHandle) -> Conn {
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(sim.local_addr()))
        .await
        .expect("connect timed out")
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    Framed::new(stream, SmppCodec::default())
}

async fn send(conn: &mut Conn, seq: u32, pdu: impl Into<Pdu>) {
    conn.send(Command::new(CommandStatus::EsmeRok, seq, pdu.into()))
        .await
        .expect("send");
}

/// The next frame, or `None` when the simulator closed the connection.
async fn next_frame(conn: &mut Conn) -> Option<Frame> {
    match tokio::time::timeout(WAIT, conn.next())
        .await
        .expect("no PDU within 5 s")
    {
        None | Some(Err(_)) => None,
        Some(Ok(frame)) => Some(frame),
    }
}

async fn recv(conn: &mut Conn) -> Command {
    match next_frame(conn).await {
        Some(Frame::Command(c)) => *c,
        Some(Frame::Malformed(m)) => panic!("malformed PDU from the simulator: {m:?}"),
        None => panic!("connection closed"),
    }
}

fn cs<const MIN: usize, const MAX: usize>(s: &str) -> COctetString<MIN, MAX> {
    s.parse().expect("valid C-octet string")
}

#[derive(Clone, Copy)]
enum Mode {
    Transmitter,
    Receiver,
    Transceiver,
}

async fn bind(conn: &mut Conn, mode: Mode, system_id: &str, password: &str) -> Command {
    macro_rules! build {
        ($ty:ident) => {
            $ty::builder()
                .system_id(cs(system_id))
                .password(cs(password))
                .system_type(COctetString::empty())
                .interface_version(InterfaceVersion::Smpp3_4)
                .addr_ton(Ton::Unknown)
                .addr_npi(Npi::Unknown)
                .address_range(COctetString::empty())
                .build()
                .into()
        };
    }
    let pdu: Pdu = match mode {
        Mode::Transmitter => build!(BindTransmitter),
        Mode::Receiver => build!(BindReceiver),
        Mode::Transceiver => build!(BindTransceiver),
    };
    send(conn, 1, pdu).await;
    let resp = recv(conn).await;
    assert_eq!(resp.sequence_number(), 1);
    resp
}

async fn bound(sim: &SimulatorHandle, mode: Mode) -> Conn {
    let mut conn = connect(sim).await;
    let resp = bind(&mut conn, mode, "acme", "secret").await;
    assert_eq!(u32::from(resp.status()), 0, "bind failed");
    conn
}

fn submit_sm(text: &str, registered_delivery: u8) -> SubmitSm {
    SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::Alphanumeric)
        .source_addr_npi(Npi::Unknown)
        .source_addr(cs("ACME"))
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(cs("4917000000"))
        .esm_class(EsmClass::from(0x00))
        .protocol_id(0)
        .schedule_delivery_time(EmptyOrFullCOctetString::empty())
        .validity_period(EmptyOrFullCOctetString::empty())
        .registered_delivery(RegisteredDelivery::from(registered_delivery))
        .data_coding(DataCoding::from(0))
        .short_message(OctetString::from_vec(text.as_bytes().to_vec()).unwrap())
        .build()
}

/// Submits and returns the submit_sm_resp, setting aside any deliver_sm
/// that arrives first.
async fn submit(conn: &mut Conn, seq: u32, text: &str, registered_delivery: u8) -> Command {
    send(conn, seq, submit_sm(text, registered_delivery)).await;
    loop {
        let c = recv(conn).await;
        if c.id() == CommandId::SubmitSmResp {
            assert_eq!(c.sequence_number(), seq);
            return c;
        }
        assert_eq!(c.id(), CommandId::DeliverSm, "unexpected {c:?}");
    }
}

fn message_id(resp: &Command) -> String {
    match resp.pdu() {
        Some(Pdu::SubmitSmResp(r)) => r.message_id().to_string(),
        other => panic!("not a submit_sm_resp body: {other:?}"),
    }
}

/// The next deliver_sm (and its sequence number).
async fn recv_deliver(conn: &mut Conn) -> (u32, DeliverSm) {
    let c = recv(conn).await;
    match c.pdu() {
        Some(Pdu::DeliverSm(d)) => (c.sequence_number(), d.clone()),
        other => panic!("expected deliver_sm, got {:?} {other:?}", c.id()),
    }
}

async fn ack(conn: &mut Conn, seq: u32) {
    send(conn, seq, DeliverSmResp::default()).await;
}

fn receipt_fields(d: &DeliverSm) -> (Option<String>, Option<u8>) {
    let mut id = None;
    let mut state = None;
    for tlv in d.tlvs() {
        match (tlv.tag(), tlv.value()) {
            (TlvTag::ReceiptedMessageId, Some(TlvValue::ReceiptedMessageId(v))) => {
                id = Some(v.to_string())
            }
            (TlvTag::MessageState, Some(TlvValue::MessageState(v))) => state = Some(u8::from(*v)),
            _ => {}
        }
    }
    (id, state)
}

fn text_of(d: &DeliverSm) -> String {
    String::from_utf8_lossy(d.short_message().as_ref()).into_owned()
}

/// Waits until `check` holds (polling), or fails after 5 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_bind_with_the_right_password_succeeds_and_a_wrong_one_gets_esme_rinvpaswd() {
    within(async {
        let sim = start(SimulatorConfig {
            accounts: acme(),
            ..fast()
        });
        let mut good = connect(&sim).await;
        let resp = bind(&mut good, Mode::Transceiver, "acme", "secret").await;
        assert_eq!(u32::from(resp.status()), 0);
        match resp.pdu() {
            Some(Pdu::BindTransceiverResp(r)) => assert_eq!(r.system_id.to_string(), "smppd-sim"),
            other => panic!("{other:?}"),
        }
        let sessions = sim.bound_sessions();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].system_id, "acme");
        assert_eq!(sessions[0].mode, "transceiver");
        assert_eq!(sessions[0].interface_version, 0x34);

        let mut bad = connect(&sim).await;
        let resp = bind(&mut bad, Mode::Transmitter, "acme", "wrong").await;
        assert_eq!(resp.id(), CommandId::BindTransmitterResp);
        assert_eq!(u32::from(resp.status()), 0x0E);
        assert!(
            resp.pdu().is_none(),
            "a failed bind response carries no body"
        );

        let resp = bind(&mut bad, Mode::Receiver, "nobody", "secret").await;
        assert_eq!(resp.id(), CommandId::BindReceiverResp);
        assert_eq!(u32::from(resp.status()), 0x0F);
        assert_eq!(sim.bound_sessions().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_second_bind_on_the_same_connection_gets_esme_ralybnd() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let resp = bind(&mut conn, Mode::Transceiver, "acme", "secret").await;
        assert_eq!(u32::from(resp.status()), 0x05);
    })
    .await;
}

#[tokio::test]
async fn refuse_binds_answers_every_bind_with_esme_rbindfail() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                refuse_binds: true,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = connect(&sim).await;
        let resp = bind(&mut conn, Mode::Transceiver, "acme", "secret").await;
        assert_eq!(u32::from(resp.status()), 0x0D);
        sim.set_faults(Faults::default());
        let resp = bind(&mut conn, Mode::Transceiver, "acme", "secret").await;
        assert_eq!(u32::from(resp.status()), 0);
    })
    .await;
}

#[tokio::test]
async fn a_submit_gets_a_unique_id_and_its_receipt_carries_that_id_and_the_appendix_b_text() {
    within(async {
        // Long enough for both submit_sm_resp to arrive before the receipt.
        let sim = start(SimulatorConfig {
            dlr_delay: Duration::from_millis(300),
            ..SimulatorConfig::default()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let first = submit(&mut conn, 2, "Hello from the simulator test", 1).await;
        let second = submit(&mut conn, 3, "second", 0).await;
        assert_eq!(u32::from(first.status()), 0);
        let (id1, id2) = (message_id(&first), message_id(&second));
        assert_ne!(id1, id2);
        for id in [&id1, &id2] {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{id}"
            );
        }

        let (seq, receipt) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        assert_eq!(u8::from(receipt.esm_class), 0x04);
        assert_eq!(u8::from(receipt.data_coding), 0);
        assert_eq!(receipt.source_addr.to_string(), "4917000000");
        assert_eq!(receipt.destination_addr.to_string(), "ACME");
        assert_eq!(receipt_fields(&receipt), (Some(id1.clone()), Some(2)));
        let text = text_of(&receipt);
        let prefix = format!("id:{id1} sub:001 dlvrd:001 submit date:");
        assert!(text.starts_with(&prefix), "{text}");
        let rest = &text[prefix.len()..];
        let (submit_date, rest) = rest.split_at(10);
        assert!(submit_date.bytes().all(|b| b.is_ascii_digit()), "{text}");
        let rest = rest.strip_prefix(" done date:").expect(&text);
        let (done_date, rest) = rest.split_at(10);
        assert!(done_date.bytes().all(|b| b.is_ascii_digit()), "{text}");
        assert_eq!(rest, " stat:DELIVRD err:000 text:Hello from the simul");

        // Only the first asked for a receipt.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), conn.next())
                .await
                .is_err()
        );
        let submits = sim.submits();
        assert_eq!(submits.len(), 2);
        assert_eq!(submits[0].message_id, id1);
        assert_eq!(submits[0].text, "Hello from the simulator test");
        assert_eq!(submits[0].system_id, "acme");
        assert_eq!(submits[0].source, "ACME");
        assert_eq!(submits[0].destination, "4917000000");
        assert_eq!(submits[0].registered_delivery, 1);
        assert_eq!(submits[0].esm_class, 0);
        assert_eq!(sim.submit_count(), 2);
        eventually("receipt acknowledged", || {
            sim.stats().receipts_acknowledged == 1
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn message_ids_stay_unique_across_reconnects() {
    within(async {
        let sim = start(fast());
        let mut ids = std::collections::HashSet::new();
        for _ in 0..3 {
            let mut conn = bound(&sim, Mode::Transmitter).await;
            for seq in 2..12 {
                let resp = submit(&mut conn, seq, "x", 0).await;
                assert!(ids.insert(message_id(&resp)));
            }
        }
        assert_eq!(ids.len(), 30);
    })
    .await;
}

#[tokio::test]
async fn decimal_message_ids_are_digits() {
    within(async {
        let sim = start(SimulatorConfig {
            message_id_format: MessageIdFormat::Decimal,
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transmitter).await;
        for seq in 2..5 {
            let id = message_id(&submit(&mut conn, seq, "x", 0).await);
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn receipts_can_quote_a_hexadecimal_id_in_decimal_in_the_tlv_and_the_text() {
    within(async {
        let sim = start(SimulatorConfig {
            receipt_id_format: ReceiptIdFormat::Decimal,
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let issued = message_id(&submit(&mut conn, 2, "x", 1).await);
        let (seq, receipt) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        let quoted = format!("{:020}", u64::from_str_radix(&issued, 16).unwrap());
        assert_eq!(receipt_fields(&receipt).0, Some(quoted.clone()));
        let text = text_of(&receipt);
        assert!(text.starts_with(&format!("id:{quoted} ")), "{text}");
    })
    .await;
}

#[tokio::test]
async fn receipts_can_quote_a_decimal_id_in_padded_hexadecimal() {
    within(async {
        let sim = start(SimulatorConfig {
            message_id_format: MessageIdFormat::Decimal,
            receipt_id_format: ReceiptIdFormat::Hex,
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let issued = message_id(&submit(&mut conn, 2, "x", 1).await);
        let (seq, receipt) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        let quoted = format!("{:016X}", issued.parse::<u64>().unwrap());
        assert_eq!(receipt_fields(&receipt).0, Some(quoted));
    })
    .await;
}

#[tokio::test]
async fn receipts_can_come_as_data_sm_and_are_acknowledged_by_data_sm_resp() {
    within(async {
        let sim = start(SimulatorConfig {
            receipts_as_data_sm: true,
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let issued = message_id(&submit(&mut conn, 2, "hello", 1).await);
        let c = recv(&mut conn).await;
        let Some(Pdu::DataSm(d)) = c.pdu() else {
            panic!("expected data_sm, got {:?}", c.id());
        };
        assert_eq!(u8::from(d.esm_class), 0x04);
        let mut id = None;
        let mut state = None;
        let mut text = None;
        for tlv in d.tlvs() {
            match (tlv.tag(), tlv.value()) {
                (TlvTag::ReceiptedMessageId, Some(TlvValue::ReceiptedMessageId(v))) => {
                    id = Some(v.to_string())
                }
                (TlvTag::MessageState, Some(TlvValue::MessageState(v))) => {
                    state = Some(u8::from(*v))
                }
                (TlvTag::MessagePayload, Some(TlvValue::MessagePayload(p))) => {
                    text = Some(String::from_utf8_lossy(p.value.as_ref()).into_owned())
                }
                _ => {}
            }
        }
        assert_eq!((id, state), (Some(issued.clone()), Some(2)));
        let text = text.expect("the receipt text in message_payload");
        assert!(text.starts_with(&format!("id:{issued} ")), "{text}");
        send(&mut conn, c.sequence_number(), DataSmResp::default()).await;
        eventually("receipt acknowledged", || {
            sim.stats().receipts_acknowledged == 1
        })
        .await;
    })
    .await;
}

#[test]
fn uuid_ids_cannot_be_quoted_in_another_base() {
    let refused = Simulator::start(SimulatorConfig {
        message_id_format: MessageIdFormat::Uuid,
        receipt_id_format: ReceiptIdFormat::Decimal,
        ..fast()
    });
    assert_eq!(
        refused.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );
}

#[tokio::test]
async fn uuid_message_ids_are_random_version_4_uuids() {
    within(async {
        let sim = start(SimulatorConfig {
            message_id_format: MessageIdFormat::Uuid,
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transmitter).await;
        let mut ids = Vec::new();
        for seq in 2..6 {
            let id = message_id(&submit(&mut conn, seq, "x", 0).await);
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(
                id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()),
                "{id}"
            );
            assert!(groups[2].starts_with('4'), "version nibble of {id}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "variant of {id}"
            );
            ids.push(id);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "repeated ids: {ids:?}");
    })
    .await;
}

#[tokio::test]
async fn an_enquire_link_is_answered_before_and_after_bind() {
    within(async {
        let sim = start(fast());
        let mut conn = connect(&sim).await;
        send(&mut conn, 7, Pdu::EnquireLink).await;
        let resp = recv(&mut conn).await;
        assert_eq!(resp.id(), CommandId::EnquireLinkResp);
        assert_eq!(resp.sequence_number(), 7);
        assert_eq!(
            bind(&mut conn, Mode::Transceiver, "a", "b").await.status(),
            CommandStatus::EsmeRok
        );
        send(&mut conn, 8, Pdu::EnquireLink).await;
        let resp = recv(&mut conn).await;
        assert_eq!(resp.id(), CommandId::EnquireLinkResp);
        assert_eq!(resp.sequence_number(), 8);
    })
    .await;
}

#[tokio::test]
async fn ignore_enquire_link_leaves_enquire_link_unanswered() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                ignore_enquire_link: true,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        send(&mut conn, 2, Pdu::EnquireLink).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), conn.next())
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn a_malformed_pdu_gets_a_generic_nack_with_its_sequence_number_and_the_session_still_works()
{
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        // submit_sm (0x04), seq 42, body of three 0xFF octets: no NUL ends
        // service_type.
        let mut raw = Vec::new();
        for word in [19u32, 0x0000_0004, 0, 42] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        raw.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        conn.get_mut().write_all(&raw).await.unwrap();
        let nack = recv(&mut conn).await;
        assert_eq!(nack.id(), CommandId::GenericNack);
        assert_eq!(nack.sequence_number(), 42);
        assert_eq!(u32::from(nack.status()), 0x02);

        let resp = submit(&mut conn, 43, "still works", 0).await;
        assert_eq!(u32::from(resp.status()), 0);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_command_id_gets_generic_nack_esme_rinvcmdid() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let mut raw = Vec::new();
        for word in [16u32, 0x0000_0777, 0, 9] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        conn.get_mut().write_all(&raw).await.unwrap();
        let nack = recv(&mut conn).await;
        assert_eq!(nack.id(), CommandId::GenericNack);
        assert_eq!(nack.sequence_number(), 9);
        assert_eq!(u32::from(nack.status()), 0x03);
    })
    .await;
}

#[tokio::test]
async fn a_submit_before_bind_gets_esme_rinvbndsts() {
    within(async {
        let sim = start(fast());
        let mut conn = connect(&sim).await;
        send(&mut conn, 5, submit_sm("too early", 1)).await;
        let nack = recv(&mut conn).await;
        assert_eq!(nack.id(), CommandId::GenericNack);
        assert_eq!(nack.sequence_number(), 5);
        assert_eq!(u32::from(nack.status()), 0x04);
        assert!(sim.submits().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_submit_on_a_receiver_bind_gets_esme_rinvbndsts() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Receiver).await;
        let resp = submit(&mut conn, 2, "wrong bind", 1).await;
        assert_eq!(u32::from(resp.status()), 0x04);
        assert!(resp.pdu().is_none());
        assert!(sim.submits().is_empty());
    })
    .await;
}

#[tokio::test]
async fn drop_every_n_submits_closes_the_connection_instead_of_answering() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                drop_every_n_submits: Some(2),
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transmitter).await;
        assert_eq!(u32::from(submit(&mut conn, 2, "one", 0).await.status()), 0);
        send(&mut conn, 3, submit_sm("two", 0)).await;
        assert!(
            next_frame(&mut conn).await.is_none(),
            "connection should be closed"
        );
        assert_eq!(sim.submit_count(), 2);
        assert_eq!(sim.submits().len(), 1);
        eventually("session gone", || sim.bound_sessions().is_empty()).await;

        // The count is simulator-wide: the third submit (new connection) is
        // answered, the fourth drops again.
        let mut conn = bound(&sim, Mode::Transmitter).await;
        assert_eq!(
            u32::from(submit(&mut conn, 2, "three", 0).await.status()),
            0
        );
        send(&mut conn, 3, submit_sm("four", 0)).await;
        assert!(next_frame(&mut conn).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn receipts_wait_for_a_receiver_to_bind() {
    within(async {
        let sim = start(fast());
        let mut tx = bound(&sim, Mode::Transmitter).await;
        let id = message_id(&submit(&mut tx, 2, "queued", 1).await);
        eventually("receipt queued", || sim.stats().queued_deliveries == 1).await;
        // A transmitter never gets deliver_sm.
        assert!(tokio::time::timeout(Duration::from_millis(100), tx.next())
            .await
            .is_err());

        let mut rx = bound(&sim, Mode::Receiver).await;
        let (seq, receipt) = recv_deliver(&mut rx).await;
        ack(&mut rx, seq).await;
        assert_eq!(receipt_fields(&receipt).0, Some(id));
        assert_eq!(sim.stats().queued_deliveries, 0);
    })
    .await;
}

#[tokio::test]
async fn an_unacknowledged_receipt_is_redelivered_after_reconnect() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let id = message_id(&submit(&mut conn, 2, "redeliver me", 1).await);
        let (_, first) = recv_deliver(&mut conn).await;
        assert_eq!(receipt_fields(&first).0.as_deref(), Some(id.as_str()));
        // Go away without deliver_sm_resp.
        drop(conn);
        eventually("session gone", || sim.bound_sessions().is_empty()).await;

        let mut conn = bound(&sim, Mode::Receiver).await;
        let (seq, again) = recv_deliver(&mut conn).await;
        assert_eq!(receipt_fields(&again).0, Some(id));
        assert_eq!(text_of(&again), text_of(&first));
        ack(&mut conn, seq).await;
        eventually("receipt acknowledged", || {
            sim.stats().receipts_acknowledged == 1
        })
        .await;
        assert_eq!(sim.stats().receipts_sent, 2);
    })
    .await;
}

#[tokio::test]
async fn drop_connections_closes_every_connection_and_keeps_unacknowledged_receipts() {
    within(async {
        let sim = start(fast());
        let mut a = bound(&sim, Mode::Transceiver).await;
        let mut b = bound(&sim, Mode::Transmitter).await;
        let id = message_id(&submit(&mut a, 2, "crash", 1).await);
        let _ = recv_deliver(&mut a).await;
        sim.drop_connections();
        assert!(next_frame(&mut a).await.is_none());
        assert!(next_frame(&mut b).await.is_none());
        eventually("no sessions", || sim.bound_sessions().is_empty()).await;
        let mut c = bound(&sim, Mode::Transceiver).await;
        let (seq, receipt) = recv_deliver(&mut c).await;
        assert_eq!(receipt_fields(&receipt).0, Some(id));
        ack(&mut c, seq).await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_receipt_is_retried() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let id = message_id(&submit(&mut conn, 2, "retry", 1).await);
        let (seq, _) = recv_deliver(&mut conn).await;
        conn.send(Command::new(
            CommandStatus::from(0x58),
            seq,
            DeliverSmResp::default(),
        ))
        .await
        .unwrap();
        let (seq, again) = recv_deliver(&mut conn).await;
        assert_eq!(receipt_fields(&again).0, Some(id));
        ack(&mut conn, seq).await;
    })
    .await;
}

#[tokio::test]
async fn throttle_fraction_one_answers_esme_rthrottled() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                throttle_fraction: 1.0,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let resp = submit(&mut conn, 2, "slow down", 1).await;
        assert_eq!(u32::from(resp.status()), 0x58);
        assert!(resp.pdu().is_none());
        assert!(sim.submits().is_empty());
        assert_eq!(sim.submit_count(), 1);

        sim.set_faults(Faults {
            permanent_error_fraction: 1.0,
            ..Faults::default()
        });
        assert_eq!(u32::from(submit(&mut conn, 3, "x", 0).await.status()), 0x0B);
        sim.set_faults(Faults {
            temporary_error_fraction: 1.0,
            ..Faults::default()
        });
        assert_eq!(u32::from(submit(&mut conn, 4, "x", 0).await.status()), 0x08);
    })
    .await;
}

#[tokio::test]
async fn an_undeliverable_message_gets_an_undeliv_receipt_with_message_state_5() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                undeliverable_fraction: 1.0,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let id = message_id(&submit(&mut conn, 2, "nobody home", 1).await);
        let (seq, receipt) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        assert_eq!(receipt_fields(&receipt), (Some(id), Some(5)));
        let text = text_of(&receipt);
        assert!(text.contains("stat:UNDELIV err:001"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn a_lost_receipt_is_never_sent_and_is_counted() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                lost_receipt_fraction: 1.0,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        submit(&mut conn, 2, "into the void", 1).await;
        // Past the receipt's delay, the next PDU is the answer to this
        // enquire_link, not a receipt.
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&mut conn, 3, Pdu::EnquireLink).await;
        let next = recv(&mut conn).await;
        assert_eq!(next.id(), CommandId::EnquireLinkResp);
        let stats = sim.stats();
        assert_eq!(
            (stats.receipts_lost, stats.receipts_sent),
            (1, 0),
            "{stats:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn dlr_before_resp_sends_the_receipt_first() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                dlr_before_resp: true,
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transceiver).await;
        send(&mut conn, 2, submit_sm("early receipt", 1)).await;
        let (seq, receipt) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        let resp = recv(&mut conn).await;
        assert_eq!(resp.id(), CommandId::SubmitSmResp);
        assert_eq!(receipt_fields(&receipt).0, Some(message_id(&resp)));
    })
    .await;
}

#[tokio::test]
async fn stall_responses_delays_the_submit_sm_resp() {
    within(async {
        let sim = start(SimulatorConfig {
            faults: Faults {
                stall_responses: Some(Duration::from_millis(300)),
                ..Faults::default()
            },
            ..fast()
        });
        let mut conn = bound(&sim, Mode::Transmitter).await;
        let started = std::time::Instant::now();
        send(&mut conn, 2, submit_sm("stalled", 0)).await;
        // enquire_link is still answered meanwhile.
        send(&mut conn, 3, Pdu::EnquireLink).await;
        assert_eq!(recv(&mut conn).await.id(), CommandId::EnquireLinkResp);
        assert_eq!(recv(&mut conn).await.id(), CommandId::SubmitSmResp);
        assert!(started.elapsed() >= Duration::from_millis(300));
    })
    .await;
}

#[tokio::test]
async fn malformed_every_n_sends_a_garbage_deliver_sm_before_the_real_pdu() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        sim.set_faults(Faults {
            malformed_every_n: Some(1),
            ..Faults::default()
        });
        send(&mut conn, 2, Pdu::EnquireLink).await;
        match next_frame(&mut conn).await {
            Some(Frame::Malformed(m)) => {
                assert_eq!(m.command_id, 0x0000_0005);
                // Answer it as an ESME should.
                conn.send(Command::new(
                    CommandStatus::from(0x02),
                    m.sequence_number,
                    Pdu::GenericNack,
                ))
                .await
                .unwrap();
            }
            other => panic!("expected a malformed deliver_sm, got {other:?}"),
        }
        assert_eq!(recv(&mut conn).await.id(), CommandId::EnquireLinkResp);
    })
    .await;
}

#[tokio::test]
async fn an_mo_message_reaches_a_bound_receiver() {
    within(async {
        let sim = start(fast());
        // Queued while nobody is bound, then delivered.
        sim.send_mo("acme", "+4915112345678", "12345", "STOP {now}");
        let mut conn = bound(&sim, Mode::Receiver).await;
        let (seq, mo) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        assert_eq!(u8::from(mo.esm_class), 0);
        assert_eq!(mo.source_addr.to_string(), "4915112345678");
        assert_eq!(mo.destination_addr.to_string(), "12345");
        assert_eq!(
            smppd_actors::smpp::encoding::decode(
                u8::from(mo.data_coding),
                mo.short_message().as_ref()
            ),
            "STOP {now}"
        );
        sim.send_mo("acme", "4915112345678", "12345", "Привет");
        let (seq, mo) = recv_deliver(&mut conn).await;
        ack(&mut conn, seq).await;
        assert_eq!(u8::from(mo.data_coding), 8);
    })
    .await;
}

#[tokio::test]
async fn receipts_are_spread_round_robin_over_the_receivers_of_an_account() {
    within(async {
        let sim = start(fast());
        let mut tx = bound(&sim, Mode::Transmitter).await;
        let mut r1 = bound(&sim, Mode::Receiver).await;
        let mut r2 = bound(&sim, Mode::Receiver).await;
        for seq in 2..6 {
            submit(&mut tx, seq, "rr", 1).await;
        }
        for conn in [&mut r1, &mut r2] {
            for _ in 0..2 {
                let (seq, _) = recv_deliver(conn).await;
                ack(conn, seq).await;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn unbind_is_answered_and_the_connection_closed() {
    within(async {
        let sim = start(fast());
        let mut conn = bound(&sim, Mode::Transceiver).await;
        send(&mut conn, 2, Pdu::Unbind).await;
        let resp = recv(&mut conn).await;
        assert_eq!(resp.id(), CommandId::UnbindResp);
        assert_eq!(resp.sequence_number(), 2);
        assert!(next_frame(&mut conn).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    within(async {
        let sim = start(fast());
        let addr = sim.local_addr();
        let mut conn = bound(&sim, Mode::Transceiver).await;
        let clone = sim.clone();
        tokio::task::spawn_blocking(move || clone.shutdown())
            .await
            .unwrap();
        assert!(next_frame(&mut conn).await.is_none());
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await;
}
