//! Building the PDUs we send and reading the ones we receive, on top of
//! rusmpp's types. All rusmpp quirks are handled here:
//! - binds default to interface_version 0x50; we set 3.4 (0x34) explicitly;
//! - the default `EsmClass` of 0.4.0 encodes as 0x08; we always set it.

use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter, DataSm, DeliverSm, SubmitSm};
use rusmpp::tlvs::{TlvTag, TlvValue};
use rusmpp::types::{COctetString, EmptyOrFullCOctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, ServiceType, Ton,
};
use rusmpp::Pdu;

// PDU fields are built with `from_bytes(Bytes::from(vec))`, not
// `from_vec(vec)`: rusmpp's `from_vec` wraps the vector in `Bytes::from_owner`,
// one more allocation per field, while `Bytes::from` a vector of exact
// capacity (what `concat` and the encoders give) takes it as it is.
use bytes::Bytes;

use super::encoding::{self, DefaultAlphabet, Encoded};
use super::receipt::{self, ReceiptState};
use super::session::BindMode;

/// Why a PDU could not be built from our data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// A field is longer than SMPP allows (e.g. system_id over 15 octets).
    #[error("{field} is too long (at most {max} characters)")]
    TooLong {
        /// Field name as in the SMPP spec.
        field: &'static str,
        /// Octets allowed, without the NUL.
        max: usize,
    },
    /// A C-octet string contains a NUL or non-ASCII octet.
    #[error("{field} must be printable ASCII")]
    NotAscii {
        /// Field name as in the SMPP spec.
        field: &'static str,
    },
    /// The text needs more parts than one message may have.
    #[error("text needs {parts} SMS parts; at most {max} are allowed")]
    TooManyParts {
        /// Parts it would take.
        parts: usize,
        /// The limit.
        max: usize,
    },
    /// GSM 03.38 was asked for, but the text has a character outside it.
    #[error("the text has characters outside the GSM 03.38 alphabet; use \"ucs2\" or \"auto\"")]
    NotGsm,
    /// The text does not fit one short_message.
    #[error("text is {units} {unit} long; one SMS holds {max}")]
    TextTooLong {
        /// Length in the alphabet's units.
        units: usize,
        /// "GSM characters" or "UCS-2 characters".
        unit: &'static str,
        /// The limit.
        max: usize,
    },
}

/// Checks what [`c_string`] checks, without building the string.
fn check_c_string<const MAX: usize>(field: &'static str, value: &str) -> Result<(), PduError> {
    if value.len() > MAX - 1 {
        return Err(PduError::TooLong {
            field,
            max: MAX - 1,
        });
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(PduError::NotAscii { field });
    }
    Ok(())
}

/// A C-octet string of at most `MAX - 1` ASCII octets.
pub fn c_string<const MIN: usize, const MAX: usize>(
    field: &'static str,
    value: &str,
) -> Result<COctetString<MIN, MAX>, PduError> {
    check_c_string::<MAX>(field, value)?;
    COctetString::from_bytes(Bytes::from([value.as_bytes(), &[0]].concat()))
        .map_err(|_| PduError::NotAscii { field })
}

/// Credentials and addressing for a bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindParams {
    /// ESME system_id (≤ 15 octets).
    pub system_id: String,
    /// Password (≤ 8 octets). Never logged.
    pub password: String,
    /// system_type (≤ 12 octets), often empty.
    pub system_type: String,
    /// Transmitter, receiver or transceiver.
    pub mode: BindMode,
    /// addr_ton, addr_npi and address_range.
    pub address: BindAddress,
}

/// The addresses a bind asks to be served (SMPP 3.4 §4.1.1: addr_ton,
/// addr_npi, address_range): some SMSCs route mobile-originated messages to
/// a receiver by them. 0, 0 and empty (the default) leave it to the SMSC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindAddress {
    /// addr_ton.
    pub ton: u8,
    /// addr_npi.
    pub npi: u8,
    /// address_range: at most 40 characters, often a regular expression.
    pub range: String,
}

/// Checks the bind parameters fit SMPP's field sizes (so a config error is
/// reported at start-up, not as a failing session).
pub fn validate_bind(params: &BindParams) -> Result<(), PduError> {
    c_string::<1, 16>("system_id", &params.system_id)?;
    c_string::<1, 9>("password", &params.password)?;
    c_string::<1, 13>("system_type", &params.system_type)?;
    c_string::<1, 41>("address_range", &params.address.range)?;
    Ok(())
}

/// The bind PDU for `params`, interface_version 3.4.
pub fn bind(params: &BindParams) -> Result<Pdu, PduError> {
    let system_id = c_string::<1, 16>("system_id", &params.system_id)?;
    let password = c_string::<1, 9>("password", &params.password)?;
    let system_type = c_string::<1, 13>("system_type", &params.system_type)?;
    let address_range = c_string::<1, 41>("address_range", &params.address.range)?;
    macro_rules! build {
        ($ty:ident) => {
            $ty::builder()
                .system_id(system_id)
                .password(password)
                .system_type(system_type)
                .interface_version(InterfaceVersion::Smpp3_4)
                .addr_ton(Ton::from(params.address.ton))
                .addr_npi(Npi::from(params.address.npi))
                .address_range(address_range)
                .build()
                .into()
        };
    }
    Ok(match params.mode {
        BindMode::Transmitter => build!(BindTransmitter),
        BindMode::Receiver => build!(BindReceiver),
        BindMode::Transceiver => build!(BindTransceiver),
    })
}

/// Addressing guessed from the address itself: more than 8 digits (with an
/// optional leading `+`) is an international E.164 number (TON 1, NPI 1);
/// up to 8 digits is a short code (TON 0 unknown, NPI 1); anything else is
/// an alphanumeric sender (TON 5, NPI 0).
fn address(field: &'static str, value: &str) -> Result<(Ton, Npi, COctetString<1, 21>), PduError> {
    let (ton, npi, raw) = address_fields(value);
    Ok((ton, npi, c_string::<1, 21>(field, raw)?))
}

/// TON, NPI and the address octets (without a leading `+`), as
/// [`address`] guesses them.
fn address_fields(value: &str) -> (Ton, Npi, &str) {
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

/// A submit_sm service_type (SMPP 3.4 §5.2.11): at most 5 printable
/// ASCII characters, empty for the SMSC's default service.
pub fn service_type(value: &str) -> Result<ServiceType, PduError> {
    Ok(ServiceType::new(c_string::<1, 6>("service_type", value)?))
}

/// How a message of several parts goes to the SMSC (channel key
/// `long_messages`). A one-part message is one plain submit_sm whatever
/// this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongMessages {
    /// One submit_sm per part, each starting with the concatenation UDH
    /// (esm_class UDHI): what the handset gets.
    #[default]
    Udh,
    /// One submit_sm per part, marked by the `sar_msg_ref_num`,
    /// `sar_total_segments` and `sar_segment_seqnum` TLVs (SMPP 3.4
    /// §5.3.2.22–24) instead of a UDH: the SMSC adds the UDH.
    Sar,
    /// One submit_sm with the whole text in the `message_payload` TLV
    /// (§5.3.2.32) and an empty short_message: the SMSC splits it, and
    /// answers (and sends a receipt) for the message as one.
    Payload,
}

impl LongMessages {
    /// How many submit_sm a message of `parts` parts takes.
    pub fn submits(self, parts: usize) -> usize {
        match self {
            LongMessages::Payload if parts > 1 => 1,
            _ => parts.max(1),
        }
    }
}

/// The `sar_msg_ref_num`, `sar_total_segments` and `sar_segment_seqnum`
/// TLVs (SMPP 3.4 §5.3.2.22–24) of a PDU, if it has all three.
pub fn sar_tlvs(tlvs: &[rusmpp::tlvs::Tlv]) -> Option<(u16, u8, u8)> {
    let (mut reference, mut total, mut sequence) = (None, None, None);
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::SarMsgRefNum(v)) => reference = Some(*v),
            Some(TlvValue::SarTotalSegments(v)) => total = Some(*v),
            Some(TlvValue::SarSegmentSeqnum(v)) => sequence = Some(*v),
            _ => {}
        }
    }
    Some((reference?, total?, sequence?))
}

/// What a channel's SMSC wants in the submit_sm PDUs of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// registered_delivery (0x01: a final receipt, success or failure).
    pub registered_delivery: u8,
    /// How a message of several parts is sent.
    pub long_messages: LongMessages,
    /// What the SMSC takes data_coding 0 to mean: GSM 03.38 septets are
    /// recoded to it ([`DefaultAlphabet::recode`]), after any UDH.
    pub default_alphabet: DefaultAlphabet,
}

/// SMPP 3.4 §5.2.5: the type-of-number values.
pub const TON_VALUES: std::ops::RangeInclusive<u8> = 0..=6;

/// SMPP 3.4 §5.2.6: the numbering-plan values.
pub const NPI_VALUES: [u8; 10] = [0, 1, 3, 4, 6, 8, 9, 10, 14, 18];

/// TON and NPI a channel sets instead of the guess from the address (see
/// `address`): many SMSCs insist on their own, for instance TON 1 for
/// every destination, or a national TON for short codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Addressing {
    /// source_addr_ton, when not guessed.
    pub source_ton: Option<u8>,
    /// source_addr_npi, when not guessed.
    pub source_npi: Option<u8>,
    /// dest_addr_ton, when not guessed.
    pub dest_ton: Option<u8>,
    /// dest_addr_npi, when not guessed.
    pub dest_npi: Option<u8>,
}

impl Addressing {
    /// Sets the overridden fields of `sm`; the others keep their guess.
    pub fn apply(&self, sm: &mut SubmitSm) {
        if let Some(v) = self.source_ton {
            sm.source_addr_ton = Ton::from(v);
        }
        if let Some(v) = self.source_npi {
            sm.source_addr_npi = Npi::from(v);
        }
        if let Some(v) = self.dest_ton {
            sm.dest_addr_ton = Ton::from(v);
        }
        if let Some(v) = self.dest_npi {
            sm.dest_addr_npi = Npi::from(v);
        }
    }
}

/// Checks a text fits one SMS, returning its encoding.
pub fn encode_single_part(text: &str) -> Result<Encoded, PduError> {
    let encoded = encoding::encode(text);
    let max = encoded.coding.single_part_limit();
    if encoded.units > max {
        let unit = match encoded.coding {
            encoding::Coding::Gsm7 => "GSM characters",
            encoding::Coding::Ucs2 => "UCS-2 characters",
        };
        return Err(PduError::TextTooLong {
            units: encoded.units,
            unit,
            max,
        });
    }
    Ok(encoded)
}

/// [`encoding::split`], refusing more than [`encoding::MAX_PARTS`].
fn split_checked(encoded: &Encoded) -> Result<Vec<Vec<u8>>, PduError> {
    let parts = encoding::split(encoded);
    if parts.len() > encoding::MAX_PARTS {
        return Err(PduError::TooManyParts {
            parts: parts.len(),
            max: encoding::MAX_PARTS,
        });
    }
    Ok(parts)
}

/// How many SMS parts a text takes (for validation and pricing).
pub fn part_count(text: &str, coding: Option<encoding::Coding>) -> Result<usize, PduError> {
    if encoding::fits_single_part(text, coding) {
        return Ok(1);
    }
    let encoded = encoding::encode_as(text, coding).ok_or(PduError::NotGsm)?;
    split_checked(&encoded).map(|parts| parts.len())
}

/// The submit_sm PDUs of a message, as `shape` says: one for a one-part
/// message; for a longer one, one per part with the concatenation UDH (or
/// the SAR TLVs) under `reference`, or one with the whole text in
/// `message_payload`. Every PDU carries the message's `times`.
pub fn submit_sm_parts(
    source: &str,
    destination: &str,
    text: &str,
    coding: Option<encoding::Coding>,
    times: Times,
    reference: u16,
    shape: Shape,
) -> Result<Vec<SubmitSm>, PduError> {
    use rusmpp::tlvs::MessageSubmissionRequestTlvValue as Tlv;

    let encoded = encoding::encode_as(text, coding).ok_or(PduError::NotGsm)?;
    let data_coding = encoded.coding.data_coding();
    // GSM 03.38 septets, recoded for an SMSC whose default alphabet is
    // another; never longer than before (one octet per character).
    let recode = |bytes: Vec<u8>| match shape.default_alphabet {
        DefaultAlphabet::Gsm => bytes,
        _ if data_coding != 0x00 => bytes,
        alphabet => alphabet.recode(&bytes),
    };
    let schedule = smpp_time("schedule_delivery_time", times.send_at_ms)?;
    let new_sm = || -> Result<SubmitSm, PduError> {
        let mut sm = submit_sm(
            source,
            destination,
            "",
            shape.registered_delivery,
            times.validity_until_ms,
        )?;
        sm.schedule_delivery_time = schedule.clone();
        sm.data_coding = DataCoding::from(data_coding);
        sm.esm_class = EsmClass::from(0x00);
        Ok(sm)
    };
    if encoded.units <= encoded.coding.single_part_limit() {
        // The usual case: one PDU, the encoded text moved into it.
        let mut sm = new_sm()?;
        sm.set_short_message(short_message(recode(encoded.bytes))?);
        return Ok(vec![sm]);
    }
    let parts = split_checked(&encoded)?;
    let total = parts.len() as u8;
    if shape.long_messages == LongMessages::Payload {
        let mut sm = new_sm()?;
        sm.push_tlv(Tlv::MessagePayload(rusmpp::values::MessagePayload::new(
            rusmpp::types::AnyOctetString::from_vec(recode(encoded.bytes)),
        )));
        return Ok(vec![sm]);
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut sm = new_sm()?;
            let sequence = i as u8 + 1;
            let body = match shape.long_messages {
                LongMessages::Udh => {
                    sm.esm_class = EsmClass::from(0x40);
                    let udh = encoding::concat_udh(reference as u8, total, sequence);
                    [&udh[..], &recode(payload)].concat()
                }
                // (Payload with several parts went out as one PDU above.)
                LongMessages::Sar | LongMessages::Payload => {
                    sm.push_tlv(Tlv::SarMsgRefNum(reference));
                    sm.push_tlv(Tlv::SarTotalSegments(total));
                    sm.push_tlv(Tlv::SarSegmentSeqnum(sequence));
                    recode(payload)
                }
            };
            sm.set_short_message(short_message(body)?);
            Ok(sm)
        })
        .collect()
}

/// A single-part submit_sm, asking for a receipt when `registered_delivery`
/// is set (0x01: final receipt on success or failure), valid until
/// `validity_until_ms` (unix ms) when given.
pub fn submit_sm(
    source: &str,
    destination: &str,
    text: &str,
    registered_delivery: u8,
    validity_until_ms: Option<i64>,
) -> Result<SubmitSm, PduError> {
    let (src_ton, src_npi, src) = address("source_addr", source)?;
    let (dst_ton, dst_npi, dst) = address("destination_addr", destination)?;
    let encoded = encode_single_part(text)?;
    let validity = smpp_time("validity_period", validity_until_ms)?;
    let short_message = short_message(encoded.bytes)?;
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(src_ton)
        .source_addr_npi(src_npi)
        .source_addr(src)
        .dest_addr_ton(dst_ton)
        .dest_addr_npi(dst_npi)
        .destination_addr(dst)
        .esm_class(EsmClass::from(0x00))
        .protocol_id(0)
        .schedule_delivery_time(EmptyOrFullCOctetString::empty())
        .validity_period(validity)
        .registered_delivery(RegisteredDelivery::from(registered_delivery))
        .data_coding(DataCoding::from(encoded.coding.data_coding()))
        .short_message(short_message)
        .build())
}

/// A submit_sm's short_message holding `body` as it is.
fn short_message(body: Vec<u8>) -> Result<OctetString<0, 255>, PduError> {
    OctetString::from_bytes(Bytes::from(body)).map_err(|_| PduError::TooLong {
        field: "short_message",
        max: 254,
    })
}

/// An SMPP absolute time (§7.1.1) for `ms` (unix ms), or empty.
fn smpp_time(
    field: &'static str,
    ms: Option<i64>,
) -> Result<EmptyOrFullCOctetString<17>, PduError> {
    match ms {
        Some(ms) => EmptyOrFullCOctetString::from_bytes(Bytes::from(
            [super::time::smpp_absolute(ms).as_bytes(), &[0]].concat(),
        ))
        .map_err(|_| PduError::NotAscii { field }),
        None => Ok(EmptyOrFullCOctetString::empty()),
    }
}

/// When the SMSC may deliver a message (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Times {
    /// Not before: schedule_delivery_time.
    pub send_at_ms: Option<i64>,
    /// Not after: validity_period.
    pub validity_until_ms: Option<i64>,
}

/// Checks that source and destination are valid SMPP addresses.
pub fn validate_addresses(source: &str, destination: &str) -> Result<(), PduError> {
    check_c_string::<21>("source_addr", address_fields(source).2)?;
    check_c_string::<21>("destination_addr", address_fields(destination).2)
}

/// A deliver_sm as we use it: either a delivery receipt or a mobile
/// originated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A receipt for a message we submitted.
    Receipt {
        /// The SMSC's id of the original message as the receipt quotes it;
        /// [`crate::smpp::receipt::IdBases::receipt_key`] turns it into the
        /// key it is matched by (trimmed, among other things).
        smsc_message_id: String,
        /// What it says.
        state: ReceiptState,
        /// `err:` code or network error, when given.
        error_code: Option<u32>,
        /// `stat:` word, for the error name.
        stat: Option<String>,
    },
    /// A receipt we cannot match (no id anywhere).
    UnmatchableReceipt,
    /// A mobile-originated message.
    MobileOriginated {
        /// Sender.
        source: String,
        /// Recipient (our number).
        destination: String,
        /// Decoded text (of this part, for a concatenated message).
        text: String,
        /// The concatenation header, when this is one part of a longer
        /// message.
        part: Option<Concatenated>,
    },
}

/// Which part of a concatenated message a PDU carries (UDH IEI 0x00 with
/// an 8-bit reference, or 0x08 with a 16-bit one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concatenated {
    /// The sender's reference, shared by all parts.
    pub reference: u16,
    /// How many parts.
    pub total: u8,
    /// This part, 1-based.
    pub sequence: u8,
}

/// Splits a user data header off a short message: the concatenation
/// element if there is one, and the text bytes after the header.
pub fn split_udh(bytes: &[u8]) -> (Option<Concatenated>, &[u8]) {
    let Some(&length) = bytes.first() else {
        return (None, bytes);
    };
    let end = (length as usize + 1).min(bytes.len());
    let header = &bytes[1..end];
    let mut at = 0;
    let mut part = None;
    while at + 2 <= header.len() {
        let (iei, len) = (header[at], header[at + 1] as usize);
        let data = &header[(at + 2).min(header.len())..(at + 2 + len).min(header.len())];
        match (iei, data) {
            (0x00, [reference, total, sequence]) => {
                part = Some(Concatenated {
                    reference: u16::from(*reference),
                    total: *total,
                    sequence: *sequence,
                })
            }
            (0x08, [hi, lo, total, sequence]) => {
                part = Some(Concatenated {
                    reference: u16::from_be_bytes([*hi, *lo]),
                    total: *total,
                    sequence: *sequence,
                })
            }
            _ => {}
        }
        at += 2 + len;
    }
    let part = part.filter(|p| p.total >= 1 && p.sequence >= 1 && p.sequence <= p.total);
    (part, &bytes[end..])
}

/// A message from the SMSC that carries a receipt or a mobile-originated
/// message: a deliver_sm, or a data_sm (SMPP 3.4 §4.7: an SMSC may use
/// either; the data_sm has no short_message, only the `message_payload`
/// TLV, and its receipts are in the same TLVs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A deliver_sm, answered with deliver_sm_resp.
    Deliver(DeliverSm),
    /// A data_sm, answered with data_sm_resp.
    Data(DataSm),
}

impl Inbound {
    /// Classifies and reads it, decoding data_coding 0x00 in the SMSC's
    /// `alphabet`. esm_class bits 2..5 = 0b0001 (0x04) mark an SMSC
    /// delivery receipt; 0x08/0x10/0x20 are other acknowledgement kinds
    /// that we also treat as receipts when they carry an id.
    ///
    /// The text is `short_message`, or the `message_payload` TLV when
    /// `short_message` is empty (SMPP 3.4 §5.3.2.32: the two are never
    /// used together; a data_sm has only the TLV). A part of a concatenated
    /// MO message is recognised by its UDH (esm_class UDHI) or, without
    /// one, by the three SAR TLVs (`sar_msg_ref_num`, `sar_total_segments`,
    /// `sar_segment_seqnum`, §5.3.2.22–24).
    pub fn read(&self, alphabet: DefaultAlphabet) -> Delivery {
        match self {
            Inbound::Deliver(pdu) => read_delivery(deliver_sm_fields(pdu, alphabet)),
            Inbound::Data(pdu) => read_delivery(DeliveryFields {
                alphabet,
                esm: u8::from(pdu.esm_class),
                data_coding: u8::from(pdu.data_coding),
                source: &pdu.source_addr,
                destination: &pdu.destination_addr,
                short: &[],
                tlvs: pdu.tlvs(),
            }),
        }
    }
}

/// What reading a deliver_sm or a data_sm needs.
struct DeliveryFields<'a> {
    alphabet: DefaultAlphabet,
    esm: u8,
    data_coding: u8,
    source: &'a COctetString<1, 21>,
    destination: &'a COctetString<1, 21>,
    short: &'a [u8],
    tlvs: &'a [rusmpp::tlvs::Tlv],
}

fn deliver_sm_fields(pdu: &DeliverSm, alphabet: DefaultAlphabet) -> DeliveryFields<'_> {
    DeliveryFields {
        alphabet,
        esm: u8::from(pdu.esm_class),
        data_coding: u8::from(pdu.data_coding),
        source: &pdu.source_addr,
        destination: &pdu.destination_addr,
        short: pdu.short_message().as_ref(),
        tlvs: pdu.tlvs(),
    }
}

fn read_delivery(fields: DeliveryFields<'_>) -> Delivery {
    let DeliveryFields {
        alphabet,
        esm,
        data_coding,
        source,
        destination,
        short,
        tlvs,
    } = fields;
    let message_type = esm & 0x3C;
    let mut tlv_id = None;
    let mut tlv_state = None;
    let mut network_error = None;
    let mut payload = None;
    for tlv in tlvs {
        match (tlv.tag(), tlv.value()) {
            (TlvTag::ReceiptedMessageId, Some(TlvValue::ReceiptedMessageId(id))) => {
                tlv_id = Some(id.to_string());
            }
            (TlvTag::MessageState, Some(TlvValue::MessageState(state))) => {
                tlv_state = Some(u8::from(*state));
            }
            (TlvTag::NetworkErrorCode, Some(TlvValue::NetworkErrorCode(code))) => {
                network_error = Some(u32::from(code.error_code));
            }
            (TlvTag::MessagePayload, Some(TlvValue::MessagePayload(p))) => {
                payload = Some(p.value.as_ref());
            }
            _ => {}
        }
    }
    let bytes = match payload {
        Some(payload) if short.is_empty() => payload,
        _ => short,
    };
    let (part, body) = if esm & 0x40 != 0 {
        split_udh(bytes)
    } else {
        (None, bytes)
    };
    let text = match data_coding {
        0x00 => alphabet.decode(body),
        _ => encoding::decode(data_coding, body),
    };
    if message_type == 0 {
        let sar = match sar_tlvs(tlvs) {
            Some((reference, total, sequence))
                if total >= 1 && sequence >= 1 && sequence <= total =>
            {
                Some(Concatenated {
                    reference,
                    total,
                    sequence,
                })
            }
            _ => None,
        };
        return Delivery::MobileOriginated {
            source: source.to_string(),
            destination: destination.to_string(),
            text,
            part: part.or(sar),
        };
    }
    let parsed = receipt::parse_receipt_text(&text);
    let id = tlv_id
        .filter(|id| !id.trim().is_empty())
        .or_else(|| parsed.as_ref().map(|p| p.id.clone()));
    let Some(id) = id else {
        return Delivery::UnmatchableReceipt;
    };
    let stat = parsed.as_ref().and_then(|p| p.stat.clone());
    let state = match (tlv_state, &stat) {
        (Some(v), _) => receipt::state_from_message_state(v),
        (None, Some(s)) => receipt::state_from_stat(s),
        (None, None) => ReceiptState::Final(smppd_sqlite::MessageStatus::Unknown),
    };
    let error_code = parsed.as_ref().and_then(|p| p.err).or(network_error);
    Delivery::Receipt {
        smsc_message_id: id,
        state,
        error_code,
        stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deliver_sm read from an SMSC whose default alphabet is GSM.
    fn read_deliver_sm(pdu: &DeliverSm) -> Delivery {
        Inbound::Deliver(pdu.clone()).read(DefaultAlphabet::Gsm)
    }
    use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
    use rusmpp::values::MessageState;
    use smppd_sqlite::MessageStatus;

    fn deliver(esm: u8, text: &str) -> DeliverSm {
        DeliverSm::builder()
            .source_addr(c_string("source_addr", "4915112345678").unwrap())
            .destination_addr(c_string("destination_addr", "12345").unwrap())
            .esm_class(EsmClass::from(esm))
            .short_message(OctetString::from_vec(text.as_bytes().to_vec()).unwrap())
            .build()
    }

    #[test]
    fn validating_addresses_refuses_exactly_what_building_them_refuses() {
        let long_alpha = "A".repeat(21);
        let long_digits = format!("+{}", "1".repeat(21));
        for value in [
            "+447700900123",
            "12345",
            "Acme",
            "",
            "tab\there",
            "Café",
            long_alpha.as_str(),
            long_digits.as_str(),
            &"9".repeat(20),
        ] {
            assert_eq!(
                validate_addresses(value, "+447700900123").is_ok(),
                address("source_addr", value).is_ok(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_bind_carries_interface_version_3_4() {
        let pdu = bind(&BindParams {
            system_id: "acme".into(),
            password: "secret1".into(),
            system_type: String::new(),
            mode: BindMode::Transceiver,
            address: BindAddress::default(),
        })
        .unwrap();
        match pdu {
            Pdu::BindTransceiver(b) => {
                assert_eq!(u8::from(b.interface_version), 0x34);
                assert_eq!(b.system_id.to_string(), "acme");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_password_over_eight_characters_is_refused() {
        let err = validate_bind(&BindParams {
            system_id: "acme".into(),
            password: "123456789".into(),
            system_type: String::new(),
            mode: BindMode::Transmitter,
            address: BindAddress::default(),
        })
        .unwrap_err();
        assert_eq!(
            err,
            PduError::TooLong {
                field: "password",
                max: 8
            }
        );
    }

    #[test]
    fn a_submit_sm_has_esm_class_zero_and_the_requested_receipt() {
        let sm = submit_sm("+4915112345678", "4917000000", "hello", 1, None).unwrap();
        assert_eq!(u8::from(sm.esm_class), 0);
        assert_eq!(u8::from(sm.registered_delivery), 1);
        assert_eq!(u8::from(sm.source_addr_ton), 1);
        assert_eq!(sm.source_addr.to_string(), "4915112345678");
        assert_eq!(sm.short_message().as_ref(), b"hello");
    }

    #[test]
    fn a_scheduled_message_carries_schedule_delivery_time_in_every_part() {
        let times = Times {
            send_at_ms: Some(1_795_305_600_123),
            validity_until_ms: Some(1_795_309_200_000),
        };
        let text = "a".repeat(200);
        let shape = shape(LongMessages::Udh);
        let parts = submit_sm_parts("ACME", "4917000000", &text, None, times, 1, shape).unwrap();
        assert_eq!(parts.len(), 2);
        for sm in &parts {
            assert_eq!(sm.schedule_delivery_time.to_string(), "261122000000100+");
            assert_eq!(sm.validity_period.to_string(), "261122010000000+");
        }
        let now = parts_of("now", None, shape);
        assert!(now[0].schedule_delivery_time.is_empty());
    }

    #[test]
    fn a_validity_is_sent_as_smpp_absolute_time() {
        let sm = submit_sm("ACME", "4917000000", "hi", 1, Some(1_795_305_600_123)).unwrap();
        assert_eq!(sm.validity_period.to_string(), "261122000000100+");
        let sm = submit_sm("ACME", "4917000000", "hi", 1, None).unwrap();
        assert!(sm.validity_period.is_empty());
    }

    /// A receipt asked for, the other settings at their defaults.
    fn shape(long_messages: LongMessages) -> Shape {
        Shape {
            registered_delivery: 1,
            long_messages,
            ..Shape::default()
        }
    }

    fn parts_of(text: &str, coding: Option<encoding::Coding>, shape: Shape) -> Vec<SubmitSm> {
        let times = Times::default();
        submit_sm_parts("ACME", "4917000000", text, coding, times, 0x1242, shape).unwrap()
    }

    fn sar_of(sm: &SubmitSm) -> Option<(u16, u8, u8)> {
        sar_tlvs(sm.tlvs())
    }

    fn payload_of(sm: &SubmitSm) -> Option<Vec<u8>> {
        sm.tlvs().iter().find_map(|tlv| match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => Some(p.value.as_ref().to_vec()),
            _ => None,
        })
    }

    #[test]
    fn a_long_text_becomes_parts_with_a_concatenation_udh() {
        let parts = parts_of(&"a".repeat(400), None, shape(LongMessages::Udh));
        assert_eq!(parts.len(), 3);
        for (i, sm) in parts.iter().enumerate() {
            assert_eq!(u8::from(sm.esm_class), 0x40);
            let bytes = sm.short_message().as_ref();
            assert_eq!(&bytes[..6], &[0x05, 0x00, 0x03, 0x42, 3, i as u8 + 1]);
            assert_eq!(sar_of(sm), None);
            assert_eq!(u8::from(sm.registered_delivery), 1);
        }
        assert_eq!(parts[0].short_message().as_ref().len(), 6 + 153);
        let single = parts_of("short", None, shape(LongMessages::Udh));
        assert_eq!(single.len(), 1);
        assert_eq!(u8::from(single[0].esm_class), 0);
    }

    #[test]
    fn with_sar_the_parts_carry_the_three_sar_tlvs_and_no_udh() {
        let parts = parts_of(&"a".repeat(400), None, shape(LongMessages::Sar));
        assert_eq!(parts.len(), 3);
        for (i, sm) in parts.iter().enumerate() {
            assert_eq!(u8::from(sm.esm_class), 0x00, "no UDHI");
            assert_eq!(sar_of(sm), Some((0x1242, 3, i as u8 + 1)));
        }
        // The same split as with a UDH: the SMSC adds one for the handset.
        assert_eq!(parts[0].short_message().as_ref(), &[b'a'; 153][..]);
        assert_eq!(parts[2].short_message().as_ref().len(), 400 - 2 * 153);
    }

    #[test]
    fn with_payload_a_long_text_is_one_submit_sm_with_the_whole_text_in_message_payload() {
        let text = format!("{}\u{4f60}", "a".repeat(100));
        let pdus = parts_of(&text, None, shape(LongMessages::Payload));
        assert_eq!(pdus.len(), 1);
        let sm = &pdus[0];
        assert!(sm.short_message().as_ref().is_empty());
        assert_eq!(sm.sm_length(), 0);
        assert_eq!(
            (u8::from(sm.esm_class), u8::from(sm.data_coding)),
            (0, 0x08)
        );
        assert_eq!(
            payload_of(sm).unwrap().len(),
            2 * 101,
            "UCS-2, every character"
        );
        assert_eq!(sar_of(sm), None);
        assert_eq!(LongMessages::Payload.submits(2), 1);
        // A one-part message is a plain submit_sm in every mode.
        for mode in [LongMessages::Sar, LongMessages::Payload] {
            let single = parts_of("short", None, shape(mode));
            assert_eq!(single[0].short_message().as_ref(), b"short");
            assert!(single[0].tlvs().is_empty(), "{mode:?}");
            assert_eq!(mode.submits(1), 1);
        }
    }

    #[test]
    fn the_requested_coding_is_used_or_refused() {
        let ucs2 = parts_of(
            "plain",
            Some(encoding::Coding::Ucs2),
            shape(LongMessages::Udh),
        );
        assert_eq!(u8::from(ucs2[0].data_coding), 0x08);
        assert_eq!(
            ucs2[0].short_message().as_ref(),
            &[0, b'p', 0, b'l', 0, b'a', 0, b'i', 0, b'n']
        );
        assert_eq!(
            part_count("ok 👍", Some(encoding::Coding::Gsm7)),
            Err(PduError::NotGsm)
        );
        assert_eq!(
            part_count(&"a".repeat(100), Some(encoding::Coding::Ucs2)).unwrap(),
            2,
            "100 UCS-2 characters"
        );
    }

    #[test]
    fn more_than_ten_parts_are_refused() {
        assert_eq!(part_count(&"a".repeat(1530), None).unwrap(), 10);
        assert!(matches!(
            part_count(&"a".repeat(1531), None),
            Err(PduError::TooManyParts { parts: 11, max: 10 })
        ));
    }

    #[test]
    fn an_alphanumeric_sender_uses_ton_5() {
        let sm = submit_sm("ACME", "4917000000", "hi", 0, None).unwrap();
        assert_eq!(u8::from(sm.source_addr_ton), 5);
    }

    #[test]
    fn a_161_character_gsm_text_is_too_long_for_one_part() {
        let err = submit_sm("1", "2", &"a".repeat(161), 1, None).unwrap_err();
        assert!(matches!(
            err,
            PduError::TextTooLong {
                units: 161,
                max: 160,
                ..
            }
        ));
        assert!(submit_sm("1", "2", &"a".repeat(160), 1, None).is_ok());
    }

    #[test]
    fn a_service_type_is_at_most_five_printable_characters() {
        assert_eq!(service_type("CMT").unwrap().value().to_string(), "CMT");
        assert_eq!(service_type("").unwrap(), ServiceType::default());
        assert!(matches!(
            service_type("TOOLONG"),
            Err(PduError::TooLong { max: 5, .. })
        ));
        assert!(matches!(
            service_type("C\u{e9}"),
            Err(PduError::NotAscii { .. })
        ));
    }

    #[test]
    fn a_channel_s_addressing_replaces_only_the_fields_it_sets() {
        let mut sm = submit_sm("ACME", "4917000000", "hi", 1, None).unwrap();
        Addressing {
            source_ton: Some(3),
            dest_npi: Some(8),
            ..Addressing::default()
        }
        .apply(&mut sm);
        assert_eq!(u8::from(sm.source_addr_ton), 3);
        assert_eq!(u8::from(sm.source_addr_npi), 0, "guessed: alphanumeric");
        assert_eq!(u8::from(sm.dest_addr_ton), 1, "guessed: international");
        assert_eq!(u8::from(sm.dest_addr_npi), 8);
        assert_eq!(sm.source_addr.to_string(), "ACME");
    }

    #[test]
    fn a_receipt_is_matched_by_its_tlv_id_before_its_text() {
        let mut pdu = deliver(0x04, "id:999 stat:UNDELIV err:001");
        pdu.push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            c_string::<1, 65>("receipted_message_id", "00ab").unwrap(),
        ));
        pdu.push_tlv(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::Delivered,
        ));
        assert_eq!(
            read_deliver_sm(&pdu),
            Delivery::Receipt {
                smsc_message_id: "00ab".into(),
                state: ReceiptState::Final(MessageStatus::Delivered),
                error_code: Some(1),
                stat: Some("UNDELIV".into()),
            }
        );
    }

    #[test]
    fn a_data_sm_is_read_like_a_deliver_sm_with_its_text_in_message_payload() {
        let payload = |text: &str| {
            rusmpp::tlvs::MessageSubmissionRequestTlvValue::MessagePayload(
                rusmpp::values::MessagePayload::new(rusmpp::types::AnyOctetString::from_vec(
                    text.as_bytes().to_vec(),
                )),
            )
        };
        let data_sm = |esm: u8, text: &str| {
            Inbound::Data(
                DataSm::builder()
                    .source_addr(c_string::<1, 21>("source_addr", "4915100000001").unwrap())
                    .destination_addr(c_string::<1, 21>("destination_addr", "12345").unwrap())
                    .esm_class(EsmClass::from(esm))
                    .tlvs(vec![payload(text)])
                    .build(),
            )
        };
        assert_eq!(
            data_sm(0x00, "hello").read(DefaultAlphabet::Gsm),
            Delivery::MobileOriginated {
                source: "4915100000001".into(),
                destination: "12345".into(),
                text: "hello".into(),
                part: None,
            }
        );
        match data_sm(0x04, "id:0042 sub:001 dlvrd:001 stat:DELIVRD err:000")
            .read(DefaultAlphabet::Gsm)
        {
            Delivery::Receipt {
                smsc_message_id,
                state,
                ..
            } => {
                assert_eq!(smsc_message_id, "0042");
                assert_eq!(state, ReceiptState::Final(MessageStatus::Delivered));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_latin1_smsc_gets_latin1_octets_after_the_udh_and_its_mo_is_read_as_latin1() {
        let latin1 = |long_messages| Shape {
            default_alphabet: DefaultAlphabet::Latin1,
            ..shape(long_messages)
        };
        let text = format!("{}caf\u{e9} @", "x".repeat(160));
        let parts = parts_of(&text, None, latin1(LongMessages::Udh));
        let last = parts[1].short_message().as_ref();
        assert_eq!(
            &last[..6],
            &encoding::concat_udh(0x42, 2, 2)[..],
            "UDH untouched"
        );
        assert!(last.ends_with(b"caf\xe9 @"), "{last:?}");
        let sar = parts_of(&text, None, latin1(LongMessages::Sar));
        assert!(sar[1].short_message().as_ref().ends_with(b"caf\xe9 @"));
        let payload = parts_of(&text, None, latin1(LongMessages::Payload));
        assert!(payload_of(&payload[0]).unwrap().ends_with(b"caf\xe9 @"));
        let ucs2 = parts_of("\u{4f60}", None, latin1(LongMessages::Udh));
        let gsm = parts_of("\u{4f60}", None, shape(LongMessages::Udh));
        assert_eq!(
            ucs2[0].short_message(),
            gsm[0].short_message(),
            "UCS-2 is left alone"
        );

        let mut mo = deliver(0x00, "");
        mo.set_short_message(OctetString::from_vec(b"caf\xe9 @".to_vec()).unwrap());
        match Inbound::Deliver(mo).read(DefaultAlphabet::Latin1) {
            Delivery::MobileOriginated { text, .. } => assert_eq!(text, "caf\u{e9} @"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_receipt_without_tlvs_falls_back_to_its_text() {
        let pdu = deliver(0x04, "id:0042 sub:001 dlvrd:001 submit date:2311221530 done date:2311221531 stat:EXPIRED err:000 text:x");
        match read_deliver_sm(&pdu) {
            Delivery::Receipt {
                smsc_message_id,
                state,
                ..
            } => {
                assert_eq!(smsc_message_id, "0042");
                assert_eq!(state, ReceiptState::Final(MessageStatus::Expired));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_deliver_sm_with_esm_class_zero_is_a_mobile_originated_message() {
        match read_deliver_sm(&deliver(0x00, "STOP")) {
            Delivery::MobileOriginated { source, text, .. } => {
                assert_eq!(source, "4915112345678");
                assert_eq!(text, "STOP");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_concatenated_mo_part_is_read_without_its_header() {
        let mut bytes = encoding::concat_udh(7, 2, 1).to_vec();
        bytes.extend_from_slice(b"Hello");
        let pdu = DeliverSm::builder()
            .source_addr(c_string("source_addr", "4915112345678").unwrap())
            .destination_addr(c_string("destination_addr", "12345").unwrap())
            .esm_class(EsmClass::from(0x40))
            .short_message(OctetString::from_vec(bytes).unwrap())
            .build();
        match read_deliver_sm(&pdu) {
            Delivery::MobileOriginated { text, part, .. } => {
                assert_eq!(text, "Hello");
                assert_eq!(
                    part,
                    Some(Concatenated {
                        reference: 7,
                        total: 2,
                        sequence: 1
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    fn sar_part(reference: u16, total: u8, sequence: u8, text: &str) -> DeliverSm {
        let mut pdu = deliver(0x00, text);
        pdu.push_tlv(MessageDeliveryRequestTlvValue::SarMsgRefNum(reference));
        pdu.push_tlv(MessageDeliveryRequestTlvValue::SarTotalSegments(total));
        pdu.push_tlv(MessageDeliveryRequestTlvValue::SarSegmentSeqnum(sequence));
        pdu
    }

    #[test]
    fn an_mo_part_marked_by_sar_tlvs_is_recognised() {
        match read_deliver_sm(&sar_part(0x1234, 3, 2, "middle")) {
            Delivery::MobileOriginated { text, part, .. } => {
                assert_eq!(text, "middle");
                assert_eq!(
                    part,
                    Some(Concatenated {
                        reference: 0x1234,
                        total: 3,
                        sequence: 2
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inconsistent_sar_tlvs_make_a_plain_message() {
        for (total, sequence) in [(0, 0), (2, 3), (2, 0)] {
            match read_deliver_sm(&sar_part(1, total, sequence, "x")) {
                Delivery::MobileOriginated { part, .. } => assert_eq!(part, None),
                other => panic!("{other:?}"),
            }
        }
        let mut only_two = deliver(0x00, "x");
        only_two.push_tlv(MessageDeliveryRequestTlvValue::SarMsgRefNum(1));
        only_two.push_tlv(MessageDeliveryRequestTlvValue::SarTotalSegments(2));
        match read_deliver_sm(&only_two) {
            Delivery::MobileOriginated { part, .. } => assert_eq!(part, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_mo_text_in_message_payload_is_read_when_short_message_is_empty() {
        let mut pdu = deliver(0x00, "");
        let long = "a text longer than one short message could hold ".repeat(8);
        pdu.push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(
            rusmpp::values::MessagePayload::new(rusmpp::types::AnyOctetString::from_vec(
                long.as_bytes().to_vec(),
            )),
        ));
        match read_deliver_sm(&pdu) {
            Delivery::MobileOriginated { text, part, .. } => {
                assert_eq!(text, long);
                assert_eq!(part, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_16_bit_reference_and_odd_headers_are_read_safely() {
        let (part, rest) = split_udh(&[0x06, 0x08, 0x04, 0x01, 0x02, 3, 2, b'x']);
        assert_eq!(
            part,
            Some(Concatenated {
                reference: 0x0102,
                total: 3,
                sequence: 2
            })
        );
        assert_eq!(rest, b"x");
        for bad in [
            &[][..],
            &[0x05][..],
            &[0x05, 0x00, 0x03, 1, 2][..],
            &[0x03, 0x00, 0x03, 1, 0, 0][..],
        ] {
            let (part, _) = split_udh(bad);
            assert_eq!(part, None, "{bad:?}");
        }
    }

    #[test]
    fn a_receipt_with_no_id_anywhere_is_unmatchable() {
        assert_eq!(
            read_deliver_sm(&deliver(0x04, "stat:DELIVRD")),
            Delivery::UnmatchableReceipt
        );
    }
}
