//! SMPP framing that survives a misbehaving peer.
//!
//! rusmpp's own `CommandCodec` has three hazards for a long-lived session
//! (measured, see `shared/docs/ecosystem.md`): after a malformed body it
//! desynchronises and reads the rest of that PDU as the next header, its
//! errors carry no sequence number, and tokio-util's `FramedRead` ends the
//! stream after any `Err`. This codec reads `command_length` itself, splits
//! off exactly that many bytes and decodes them in isolation. A body that does
//! not decode becomes [`Frame::Malformed`] — carrying the header fields so the
//! session can answer `generic_nack` with the right sequence number — and the
//! next PDU is read from a correct boundary.
//!
//! Only a `command_length` outside `16..=max_length` is fatal: the framing
//! itself is lost then, and the connection must be dropped.

use bytes::{Buf, BytesMut};
use rusmpp::decode::DecodeWithLength;
use rusmpp::Command;
use tokio_util::codec::{Decoder, Encoder};

/// Size of the SMPP header: command_length, command_id, command_status,
/// sequence_number.
pub const HEADER_LEN: usize = 16;

/// Default cap on one PDU. The largest legal submit_sm with a full
/// message_payload TLV stays well below this; anything larger is a peer that
/// lost the framing.
pub const DEFAULT_MAX_PDU_LEN: usize = 64 * 1024;

/// One frame read off the wire.
#[derive(Debug)]
pub enum Frame {
    /// A PDU that decoded.
    Command(Box<Command>),
    /// A PDU whose header was readable but whose body was not.
    Malformed(MalformedPdu),
}

/// The header of a PDU whose body failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedPdu {
    /// Raw command_id, so a response id (high bit set) is never nacked.
    pub command_id: u32,
    /// Raw command_status.
    pub command_status: u32,
    /// Sequence number to echo in the generic_nack.
    pub sequence_number: u32,
    /// What the decoder said, for the log.
    pub reason: String,
}

/// Errors after which the byte stream cannot be trusted any more.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// command_length below the header size or above our cap: framing is lost.
    #[error("invalid command_length {length} (allowed {min}..={max})")]
    BadLength {
        /// The length the peer announced.
        length: u32,
        /// Smallest legal length.
        min: usize,
        /// Our cap.
        max: usize,
    },
}

/// Length-delimited SMPP codec over rusmpp's PDU types.
#[derive(Debug, Clone)]
pub struct SmppCodec {
    max_length: usize,
}

impl SmppCodec {
    /// A codec that accepts PDUs up to `max_length` bytes.
    pub fn new(max_length: usize) -> Self {
        Self { max_length }
    }
}

impl Default for SmppCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PDU_LEN)
    }
}

impl Decoder for SmppCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let len = length as usize;
        if len < HEADER_LEN || len > self.max_length {
            return Err(CodecError::BadLength {
                length,
                min: HEADER_LEN,
                max: self.max_length,
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(len);
        frame.advance(4);
        let word =
            |i: usize| u32::from_be_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let (command_id, command_status, sequence_number) = (word(0), word(4), word(8));
        let body_len = len - 4;
        match Command::decode(&mut frame, body_len) {
            Ok((command, _)) => Ok(Some(Frame::Command(Box::new(command)))),
            Err(err) => Ok(Some(Frame::Malformed(MalformedPdu {
                command_id,
                command_status,
                sequence_number,
                reason: err.to_string(),
            }))),
        }
    }
}

impl Encoder<Command> for SmppCodec {
    type Error = CodecError;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&command, dst)
    }
}

impl Encoder<&Command> for SmppCodec {
    type Error = CodecError;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut inner = rusmpp::tokio_codec::CommandCodec::new().without_max_length();
        inner.encode(command, dst).map_err(|e| match e {
            rusmpp::tokio_codec::EncodeError::Io(io) => CodecError::Io(io),
            other => CodecError::Io(std::io::Error::other(other.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::{CommandStatus, Pdu};

    fn encode(command: Command) -> BytesMut {
        let mut buf = BytesMut::new();
        SmppCodec::default().encode(command, &mut buf).unwrap();
        buf
    }

    fn header(len: u32, id: u32, status: u32, seq: u32) -> Vec<u8> {
        [len, id, status, seq]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    }

    #[test]
    fn a_whole_pdu_decodes_and_a_partial_one_waits() {
        let bytes = encode(Command::new(CommandStatus::EsmeRok, 7, Pdu::EnquireLink));
        let mut codec = SmppCodec::default();
        let mut partial = BytesMut::from(&bytes[..10]);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(&bytes[10..]);
        match codec.decode(&mut partial).unwrap() {
            Some(Frame::Command(c)) => {
                assert_eq!(c.sequence_number(), 7);
                assert!(matches!(c.pdu(), Some(Pdu::EnquireLink)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(partial.is_empty());
    }

    #[test]
    fn a_malformed_body_yields_its_sequence_number_and_the_next_pdu_still_decodes() {
        // submit_sm (0x04) whose body is three bytes of garbage without the
        // NUL terminators the C-octet strings need.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&header(19, 0x0000_0004, 0, 42));
        buf.extend_from_slice(&[0xff, 0xff, 0xff]);
        buf.extend_from_slice(&encode(Command::new(
            CommandStatus::EsmeRok,
            43,
            Pdu::EnquireLink,
        )));
        let mut codec = SmppCodec::default();
        match codec.decode(&mut buf).unwrap() {
            Some(Frame::Malformed(m)) => {
                assert_eq!(m.sequence_number, 42);
                assert_eq!(m.command_id, 4);
            }
            other => panic!("expected malformed, got {other:?}"),
        }
        match codec.decode(&mut buf).unwrap() {
            Some(Frame::Command(c)) => assert_eq!(c.sequence_number(), 43),
            other => panic!("expected enquire_link, got {other:?}"),
        }
    }

    #[test]
    fn a_length_below_the_header_size_is_fatal() {
        let mut buf = BytesMut::from(&header(8, 0x15, 0, 1)[..]);
        assert!(matches!(
            SmppCodec::default().decode(&mut buf),
            Err(CodecError::BadLength { length: 8, .. })
        ));
    }

    #[test]
    fn a_length_above_the_cap_is_fatal_before_buffering() {
        let mut buf = BytesMut::from(&header(1_000_000, 0x04, 0, 1)[..]);
        assert!(matches!(
            SmppCodec::new(4096).decode(&mut buf),
            Err(CodecError::BadLength {
                length: 1_000_000,
                ..
            })
        ));
    }

    #[test]
    fn an_error_response_without_a_body_decodes() {
        // submit_sm_resp with ESME_RTHROTTLED and no message_id, as many SMSCs send it.
        let mut buf = BytesMut::from(&header(16, 0x8000_0004, 0x58, 9)[..]);
        match SmppCodec::default().decode(&mut buf).unwrap() {
            Some(Frame::Command(c)) => {
                assert_eq!(u32::from(c.status()), 0x58);
                assert_eq!(c.sequence_number(), 9);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_unknown_command_id_decodes_as_other() {
        let mut buf = BytesMut::from(&header(16, 0x0000_0777, 0, 5)[..]);
        match SmppCodec::default().decode(&mut buf).unwrap() {
            Some(Frame::Command(c)) => assert_eq!(u32::from(c.id()), 0x777),
            Some(Frame::Malformed(m)) => assert_eq!(m.sequence_number, 5),
            None => panic!("nothing decoded"),
        }
    }
}
