//! The PDUs the simulator builds and the fields it reads from submit_sm.

use std::time::{SystemTime, UNIX_EPOCH};

use rusmpp::pdus::{DataSm, DeliverSm, SubmitSm};
use rusmpp::tlvs::{
    MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue, TlvTag, TlvValue,
};
use rusmpp::types::{AnyOctetString, COctetString, EmptyOrFullCOctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, MessagePayload, MessageState, Npi, PriorityFlag, RegisteredDelivery,
    ReplaceIfPresentFlag, ServiceType, Ton,
};
use rusmpp::{CommandId, Pdu};

use crate::smpp::encoding;
use crate::smpp::pdu::c_string;

/// esm_class bit 6: the short_message starts with a User Data Header.
const UDHI: u8 = 0x40;

/// The text of a submit_sm: short_message, or the message_payload TLV when
/// short_message is empty, with a UDH stripped, decoded by data_coding.
pub(crate) struct SubmitContent {
    pub text: String,
    /// The octets the text was decoded from.
    pub bytes: Vec<u8>,
    /// The user data header, when esm_class says there is one.
    pub udh: Option<Vec<u8>>,
    /// Both short_message and message_payload were given (SMPP 3.4 §5.3.2.32
    /// forbids it).
    pub both_bodies: bool,
    /// The text came in message_payload.
    pub in_payload: bool,
    /// sar_msg_ref_num, sar_total_segments and sar_segment_seqnum, when
    /// all three were given.
    pub sar: Option<(u16, u8, u8)>,
}

pub(crate) fn submit_content(sm: &SubmitSm) -> SubmitContent {
    let short = sm.short_message().as_ref();
    let payload = sm
        .tlvs()
        .iter()
        .find_map(|tlv| match (tlv.tag(), tlv.value()) {
            (TlvTag::MessagePayload, Some(TlvValue::MessagePayload(p))) => {
                Some(p.value.as_ref().to_vec())
            }
            _ => None,
        });
    let both_bodies = !short.is_empty() && payload.as_ref().is_some_and(|p| !p.is_empty());
    let in_payload = short.is_empty() && payload.is_some();
    let mut bytes: &[u8] = match &payload {
        Some(p) if short.is_empty() => p,
        _ => short,
    };
    let mut udh = None;
    if u8::from(sm.esm_class) & UDHI != 0 && !bytes.is_empty() {
        let udh_len = (bytes[0] as usize + 1).min(bytes.len());
        udh = Some(bytes[..udh_len].to_vec());
        bytes = &bytes[udh_len..];
    }
    SubmitContent {
        text: encoding::decode(u8::from(sm.data_coding), bytes),
        bytes: bytes.to_vec(),
        udh,
        both_bodies,
        in_payload,
        sar: crate::smpp::pdu::sar_tlvs(sm.tlvs()),
    }
}

/// Is the message type of this esm_class legal in a submit_sm? Bits 5..2:
/// 0000 default, 0010 delivery acknowledgement, 0100 manual/user
/// acknowledgement (SMPP 3.4 §5.2.12). Anything else (e.g. 0x04, a receipt)
/// is an MC-only type.
pub(crate) fn submit_esm_class_is_valid(esm_class: u8) -> bool {
    matches!(esm_class & 0x3C, 0x00 | 0x08 | 0x10)
}

/// Outcome written into a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Undeliverable,
}

/// What a receipt is built from.
pub(crate) struct ReceiptInput<'a> {
    pub message_id: &'a str,
    pub submit: &'a SubmitSm,
    pub text: &'a str,
    pub outcome: Outcome,
    pub submit_time: SystemTime,
    pub done_time: SystemTime,
}

/// The receipt text of SMPP 3.4 Appendix B.
pub(crate) fn receipt_text(input: &ReceiptInput<'_>) -> String {
    let (dlvrd, stat, err) = match input.outcome {
        Outcome::Delivered => ("001", "DELIVRD", "000"),
        Outcome::Undeliverable => ("000", "UNDELIV", "001"),
    };
    let head: String = input.text.chars().take(20).collect();
    format!(
        "id:{} sub:001 dlvrd:{} submit date:{} done date:{} stat:{} err:{} text:{}",
        input.message_id,
        dlvrd,
        yymmddhhmm(input.submit_time),
        yymmddhhmm(input.done_time),
        stat,
        err,
        head
    )
}

/// GSM 03.38 bytes of `text` for data_coding 0; characters outside the GSM
/// alphabet become `?`.
fn gsm_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let encoded = encoding::encode(c.encode_utf8(&mut buf));
        if encoded.coding == encoding::Coding::Gsm7 {
            out.extend_from_slice(&encoded.bytes);
        } else {
            out.push(b'?');
        }
    }
    out
}

/// A C-octet string address, or "" when the value cannot be one (it came
/// from a decoded PDU, so this does not happen in practice).
fn addr(value: &str) -> COctetString<1, 21> {
    c_string::<1, 21>("address", value).unwrap_or_else(|_| COctetString::empty())
}

/// The delivery receipt for an accepted submit_sm: a deliver_sm, or with
/// `as_data_sm` a data_sm, either with esm_class 0x04, data_coding 0,
/// addresses swapped, receipted_message_id and message_state TLVs.
pub(crate) fn receipt(input: &ReceiptInput<'_>, as_data_sm: bool) -> Pdu {
    if as_data_sm {
        receipt_data_sm(input).into()
    } else {
        receipt_deliver_sm(input).into()
    }
}

/// The message_state a receipt reports.
fn receipt_state(outcome: Outcome) -> MessageState {
    match outcome {
        Outcome::Delivered => MessageState::Delivered,
        Outcome::Undeliverable => MessageState::Undeliverable,
    }
}

/// The receipt as a data_sm (SMPP 3.4 §4.7): no short_message, so the
/// Appendix B text goes in message_payload. rusmpp only builds the TLVs
/// SMPP 5.0 lists for a submitted data_sm, so the two receipt TLVs are
/// written as raw tag, length and value.
fn receipt_data_sm(input: &ReceiptInput<'_>) -> DataSm {
    let sm = input.submit;
    let state = receipt_state(input.outcome);
    let id = [input.message_id.as_bytes(), &[0]].concat();
    DataSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(sm.dest_addr_ton)
        .source_addr_npi(sm.dest_addr_npi)
        .source_addr(addr(&sm.destination_addr.to_string()))
        .dest_addr_ton(sm.source_addr_ton)
        .dest_addr_npi(sm.source_addr_npi)
        .destination_addr(addr(&sm.source_addr.to_string()))
        .esm_class(EsmClass::from(0x04))
        .registered_delivery(RegisteredDelivery::from(0))
        .data_coding(DataCoding::from(0))
        .tlvs(vec![
            MessageSubmissionRequestTlvValue::Other {
                tag: TlvTag::ReceiptedMessageId,
                value: AnyOctetString::from_vec(id),
            },
            MessageSubmissionRequestTlvValue::Other {
                tag: TlvTag::MessageState,
                value: AnyOctetString::from_vec(vec![u8::from(state)]),
            },
            MessageSubmissionRequestTlvValue::MessagePayload(MessagePayload::new(
                AnyOctetString::from_vec(gsm_bytes(&receipt_text(input))),
            )),
        ])
        .build()
}

fn receipt_deliver_sm(input: &ReceiptInput<'_>) -> DeliverSm {
    let sm = input.submit;
    let text = receipt_text(input);
    let mut bytes = gsm_bytes(&text);
    bytes.truncate(254);
    let short_message = OctetString::from_vec(bytes).unwrap_or_else(|_| OctetString::empty());
    let receipted_id = c_string::<1, 65>("receipted_message_id", input.message_id)
        .unwrap_or_else(|_| COctetString::empty());
    let state = receipt_state(input.outcome);
    DeliverSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(sm.dest_addr_ton)
        .source_addr_npi(sm.dest_addr_npi)
        .source_addr(addr(&sm.destination_addr.to_string()))
        .dest_addr_ton(sm.source_addr_ton)
        .dest_addr_npi(sm.source_addr_npi)
        .destination_addr(addr(&sm.source_addr.to_string()))
        .esm_class(EsmClass::from(0x04))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0))
        .schedule_delivery_time(EmptyOrFullCOctetString::empty())
        .validity_period(EmptyOrFullCOctetString::empty())
        .registered_delivery(RegisteredDelivery::from(0))
        .replace_if_present_flag(ReplaceIfPresentFlag::from(0))
        .data_coding(DataCoding::from(0))
        .sm_default_msg_id(0)
        .short_message(short_message)
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            receipted_id,
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(state))
        .build()
}

/// TON/NPI for an address we make up ourselves (MO messages).
fn ton_npi(value: &str) -> (Ton, Npi, &str) {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if digits.len() > 8 {
            (Ton::International, Npi::Isdn, digits)
        } else {
            (Ton::Unknown, Npi::Isdn, digits)
        }
    } else {
        (Ton::Alphanumeric, Npi::Unknown, value)
    }
}

/// A mobile-originated deliver_sm (esm_class 0). Texts over 254 octets go
/// in message_payload.
pub(crate) fn mobile_originated(
    source: &str,
    destination: &str,
    text: &str,
) -> Result<DeliverSm, String> {
    let (src_ton, src_npi, src) = ton_npi(source);
    let (dst_ton, dst_npi, dst) = ton_npi(destination);
    let src = c_string::<1, 21>("source_addr", src).map_err(|e| e.to_string())?;
    let dst = c_string::<1, 21>("destination_addr", dst).map_err(|e| e.to_string())?;
    let encoded = encoding::encode(text);
    let builder = DeliverSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(src_ton)
        .source_addr_npi(src_npi)
        .source_addr(src)
        .dest_addr_ton(dst_ton)
        .dest_addr_npi(dst_npi)
        .destination_addr(dst)
        .esm_class(EsmClass::from(0x00))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0))
        .schedule_delivery_time(EmptyOrFullCOctetString::empty())
        .validity_period(EmptyOrFullCOctetString::empty())
        .registered_delivery(RegisteredDelivery::from(0))
        .replace_if_present_flag(ReplaceIfPresentFlag::from(0))
        .data_coding(DataCoding::from(encoded.coding.data_coding()))
        .sm_default_msg_id(0);
    let pdu = if encoded.bytes.len() <= 254 {
        let sm = OctetString::from_vec(encoded.bytes).map_err(|e| e.to_string())?;
        builder.short_message(sm).build()
    } else {
        builder
            .short_message(OctetString::empty())
            .push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(
                MessagePayload::new(AnyOctetString::from_vec(encoded.bytes)),
            ))
            .build()
    };
    Ok(pdu)
}

/// A deliver_sm whose header is valid but whose body does not decode: three
/// 0xFF octets where service_type's NUL-terminated string should be.
pub(crate) fn garbage_deliver_sm() -> Pdu {
    Pdu::Other {
        command_id: CommandId::DeliverSm,
        body: AnyOctetString::from_vec(vec![0xFF, 0xFF, 0xFF]),
    }
}

/// A response with the given id and no body (what SMPP 3.4 sends with a
/// non-zero command_status).
pub(crate) fn bodyless(command_id: CommandId) -> Pdu {
    Pdu::Other {
        command_id,
        body: AnyOctetString::empty(),
    }
}

/// `YYMMDDhhmm` in UTC.
pub(crate) fn yymmddhhmm(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        year.rem_euclid(100),
        month,
        day,
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_formatted_in_utc() {
        // 2023-11-22 15:30:59 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_700_667_059);
        assert_eq!(yymmddhhmm(t), "2311221530");
        assert_eq!(yymmddhhmm(UNIX_EPOCH), "7001010000");
        // 2024-02-29 23:59 UTC
        let leap = UNIX_EPOCH + Duration::from_secs(1_709_251_140);
        assert_eq!(yymmddhhmm(leap), "2402292359");
    }

    #[test]
    fn only_default_and_acknowledgement_message_types_are_valid_in_a_submit() {
        assert!(submit_esm_class_is_valid(0x00));
        assert!(submit_esm_class_is_valid(0x40));
        assert!(submit_esm_class_is_valid(0x08));
        assert!(!submit_esm_class_is_valid(0x04));
        assert!(!submit_esm_class_is_valid(0x20));
    }

    #[test]
    fn non_gsm_characters_in_a_receipt_become_question_marks() {
        assert_eq!(gsm_bytes("a@€👍"), vec![b'a', 0x00, 0x1B, 0x65, b'?']);
    }
}
