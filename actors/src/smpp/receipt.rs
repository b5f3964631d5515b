//! Delivery receipts: the text format of SMPP 3.4 Appendix B and the
//! `message_state` TLV values, mapped to our statuses.
//!
//! The appendix format is "informative" and SMSCs vary: keys in upper or
//! lower case, `submit date`/`done date` with a space, fields missing, extra
//! fields, `text:` containing anything. So the parser is a tolerant key
//! scanner, not a fixed layout: it finds `id:` and `stat:` (and `err:` when
//! present) wherever they are, and stops at `text:` because the rest is the
//! original message's text, which may itself contain `stat:`.

use smppd_sqlite::MessageStatus;

/// The fields of a receipt text that matter for matching and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptText {
    /// The SMSC's message id, as it wrote it.
    pub id: String,
    /// The final state word, e.g. `DELIVRD`, upper-cased.
    pub stat: Option<String>,
    /// Network-specific error code, when present and numeric.
    pub err: Option<u32>,
}

/// What a receipt says about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// A final state: store it.
    Final(MessageStatus),
    /// ENROUTE / ACCEPTD / SCHEDULED: nothing is decided yet.
    Intermediate,
}

/// Parses the receipt text. `None` when there is no `id:` at all (then the
/// deliver_sm is not a receipt we can match).
///
/// One pass over the text's colons: every key ends with one, and a receipt
/// has about eight, so each is checked against the keys instead of each
/// byte against every key.
pub fn parse_receipt_text(text: &str) -> Option<ReceiptText> {
    let bytes = text.as_bytes();
    // Where each key's colon is: its first occurrence at a word start.
    let (mut id, mut stat, mut err) = (None, None, None);
    // Everything from "text:" on (anywhere, even inside a word) is the
    // original message, never parsed.
    let mut end = text.len();
    for colon in (0..bytes.len()).filter(|&i| bytes[i] == b':') {
        let word = &bytes[..colon];
        if ends_with_ignoring_case(word, b"text") {
            end = colon - 4;
            break;
        }
        for (key, at) in [
            (&b"id"[..], &mut id),
            (b"stat", &mut stat),
            (b"err", &mut err),
        ] {
            if at.is_none() && ends_with_ignoring_case(word, key) && starts_word(word, key.len()) {
                *at = Some(colon + 1);
            }
        }
    }
    let head = &text[..end];
    let id = value(head, id?);
    if id.is_empty() {
        return None;
    }
    Some(ReceiptText {
        id: id.to_string(),
        stat: stat.map(|at| value(head, at).to_ascii_uppercase()),
        err: err.and_then(|at| value(head, at).parse::<u32>().ok()),
    })
}

/// Whether `bytes` ends with `key` (lowercase ASCII), ignoring ASCII case.
fn ends_with_ignoring_case(bytes: &[u8], key: &[u8]) -> bool {
    bytes.len() >= key.len() && bytes[bytes.len() - key.len()..].eq_ignore_ascii_case(key)
}

/// Whether the last `len` bytes of `bytes` start a word: they are the
/// whole text so far, or come after ASCII whitespace.
fn starts_word(bytes: &[u8], len: usize) -> bool {
    let at = bytes.len() - len;
    at == 0 || bytes[at - 1].is_ascii_whitespace()
}

/// The value starting at byte `at` of `head` (right after a key's colon: "id:
/// stat:X" has an empty id, not the id "stat:X"), up to the next whitespace.
/// `at` follows an ASCII colon, so it is a character boundary.
fn value(head: &str, at: usize) -> &str {
    let rest = head.get(at..).unwrap_or("");
    let value_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    &rest[..value_end]
}

/// Maps the `stat:` word of a receipt text.
pub fn state_from_stat(stat: &str) -> ReceiptState {
    match stat.to_ascii_uppercase().as_str() {
        "DELIVRD" | "DELIVERED" => ReceiptState::Final(MessageStatus::Delivered),
        "UNDELIV" | "UNDELIVERABLE" => ReceiptState::Final(MessageStatus::Undeliverable),
        "EXPIRED" => ReceiptState::Final(MessageStatus::Expired),
        "REJECTD" | "REJECTED" => ReceiptState::Final(MessageStatus::Rejected),
        "DELETED" => ReceiptState::Final(MessageStatus::Failed),
        "ENROUTE" | "ACCEPTD" | "ACCEPTED" | "SCHEDULED" => ReceiptState::Intermediate,
        _ => ReceiptState::Final(MessageStatus::Unknown),
    }
}

/// Maps the `message_state` TLV (SMPP 3.4 §5.2.28).
pub fn state_from_message_state(value: u8) -> ReceiptState {
    match value {
        2 => ReceiptState::Final(MessageStatus::Delivered),
        3 => ReceiptState::Final(MessageStatus::Expired),
        4 => ReceiptState::Final(MessageStatus::Failed),
        5 => ReceiptState::Final(MessageStatus::Undeliverable),
        8 => ReceiptState::Final(MessageStatus::Rejected),
        0 | 1 | 6 => ReceiptState::Intermediate,
        _ => ReceiptState::Final(MessageStatus::Unknown),
    }
}

/// The stat word we use as the error name when a receipt reports a failure
/// through the TLV only.
pub fn stat_word(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Delivered => "DELIVRD",
        MessageStatus::Undeliverable => "UNDELIV",
        MessageStatus::Expired => "EXPIRED",
        MessageStatus::Rejected => "REJECTD",
        MessageStatus::Failed => "DELETED",
        _ => "UNKNOWN",
    }
}

/// How an SMSC writes message ids in one place (its submit_sm_resp, or its
/// receipts).
///
/// SMPP 3.4 makes a message id an opaque C string, and most SMSCs quote it
/// in a receipt exactly as they issued it. Some write the same number in
/// two bases: hexadecimal in submit_sm_resp and decimal in the receipt (the
/// SMPP 3.3 habit), or the other way round. Kannel calls this
/// `msg-id-type`, Jasmin `dlr_msg_id_bases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdBase {
    /// An opaque string, compared without surrounding blanks and case, and
    /// without leading zeros when it is all digits (the default).
    #[default]
    Text,
    /// A decimal number.
    Decimal,
    /// A hexadecimal number, in either case.
    Hex,
}

impl IdBase {
    fn radix(self) -> Option<u32> {
        match self {
            IdBase::Text => None,
            IdBase::Decimal => Some(10),
            IdBase::Hex => Some(16),
        }
    }
}

/// How one channel's SMSC writes its ids in submit_sm_resp and in receipts,
/// and from that the key under which both are stored and matched.
///
/// The key is the id in the submit_sm_resp's form, so the id a user sees
/// is the one the SMSC handed out (without padding). Both bases are text,
/// or both are numbers: [`IdBases::new`] refuses a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdBases {
    submit: IdBase,
    receipt: IdBase,
}

impl IdBases {
    /// The bases of submit_sm_resp ids and of receipt ids; `None` when one
    /// is text and the other a number, which cannot be matched.
    pub fn new(submit: IdBase, receipt: IdBase) -> Option<Self> {
        ((submit == IdBase::Text) == (receipt == IdBase::Text)).then_some(Self { submit, receipt })
    }

    /// The key of an id from a submit_sm_resp.
    pub fn submit_key(&self, id: &str) -> String {
        convert(id, self.submit, self.submit)
    }

    /// The key of the id a receipt quotes: the same as its submit's when
    /// both name the same message.
    pub fn receipt_key(&self, id: &str) -> String {
        convert(id, self.receipt, self.submit)
    }
}

/// `id`, written in base `from`, rewritten in base `to` without leading
/// zeros. An id that is not a number in `from` (or does not fit 128 bits)
/// is kept as text: it cannot match a converted one, so its receipt waits
/// as an unknown id would, instead of being pinned on another message.
fn convert(id: &str, from: IdBase, to: IdBase) -> String {
    let trimmed = id.trim();
    // Digits only: `from_str_radix` would also take a leading `+`.
    let number = from.radix().zip(to.radix()).and_then(|(from, to)| {
        let digits = trimmed.chars().all(|c| c.is_digit(from));
        Some((
            u128::from_str_radix(trimmed, from)
                .ok()
                .filter(|_| digits)?,
            to,
        ))
    });
    match number {
        Some((n, 16)) => format!("{n:x}"),
        Some((n, _)) => n.to_string(),
        None => normalize_id(trimmed),
    }
}

/// Normalises an SMSC message id so that the id from submit_sm_resp and the
/// one in the receipt compare equal: trimmed, and for purely decimal ids
/// without leading zeros (some SMSCs zero-pad one of the two).
pub fn normalize_id(id: &str) -> String {
    let id = id.trim();
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let stripped = id.trim_start_matches('0');
        if stripped.is_empty() {
            "0".to_string()
        } else {
            stripped.to_string()
        }
    } else {
        id.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser as it was before it went by colons: each key searched
    /// for separately, byte by byte. The comparison test below holds the
    /// new one to it.
    fn parse_key_by_key(text: &str) -> Option<ReceiptText> {
        fn find_ignoring_case(text: &str, key: &str, from: usize) -> Option<usize> {
            let (haystack, key) = (text.as_bytes(), key.as_bytes());
            let last = haystack.len().checked_sub(key.len())?;
            (from..=last).find(|&at| haystack[at..at + key.len()].eq_ignore_ascii_case(key))
        }
        fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
            let mut from = 0;
            while let Some(at) = find_ignoring_case(text, key, from) {
                if at == 0 || text.as_bytes()[at - 1].is_ascii_whitespace() {
                    let rest = &text[at + key.len()..];
                    let value_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    return Some(&rest[..value_end]);
                }
                from = at + key.len();
            }
            None
        }
        let end = find_ignoring_case(text, "text:", 0).unwrap_or(text.len());
        let head = &text[..end];
        let id = field(head, "id:")?;
        if id.is_empty() {
            return None;
        }
        Some(ReceiptText {
            id: id.to_string(),
            stat: field(head, "stat:").map(|s| s.to_ascii_uppercase()),
            err: field(head, "err:").and_then(|e| e.parse::<u32>().ok()),
        })
    }

    #[test]
    fn parsing_by_colons_agrees_with_searching_key_by_key() {
        const PIECES: &[&str] = &[
            "id:",
            "ID:",
            "Id:",
            "stat:",
            "STAT:",
            "err:",
            "ERR:",
            "text:",
            "TEXT:",
            "context:",
            "msgid:",
            "sub:001",
            "submit date:2311221530",
            "DELIVRD",
            "undeliv",
            "000",
            "034",
            "7f",
            "x",
            ":",
            "::",
            " ",
            "  ",
            "\t",
            "\u{a0}",
            "é",
            "ид",
            "ß",
            "i",
            "d",
            "te",
            "xt",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for i in 0..(seed % 12) {
                let pick = (seed.rotate_left(i as u32 * 5) % PIECES.len() as u64) as usize;
                text.push_str(PIECES[pick]);
            }
            assert_eq!(
                parse_receipt_text(&text),
                parse_key_by_key(&text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_appendix_b_format_parses() {
        let r = parse_receipt_text(
            "id:1a2b3c sub:001 dlvrd:001 submit date:2311221530 done date:2311221531 stat:DELIVRD err:000 text:hello",
        )
        .unwrap();
        assert_eq!(r.id, "1a2b3c");
        assert_eq!(r.stat.as_deref(), Some("DELIVRD"));
        assert_eq!(r.err, Some(0));
    }

    #[test]
    fn keys_are_case_insensitive_and_fields_may_be_missing() {
        let r = parse_receipt_text("ID:77 Stat:undeliv").unwrap();
        assert_eq!(r.id, "77");
        assert_eq!(r.stat.as_deref(), Some("UNDELIV"));
        assert_eq!(r.err, None);
    }

    #[test]
    fn the_original_text_after_text_colon_is_not_parsed() {
        let r = parse_receipt_text(
            "id:9 sub:001 dlvrd:000 stat:UNDELIV err:034 text:stat:DELIVRD id:1",
        )
        .unwrap();
        assert_eq!(r.id, "9");
        assert_eq!(r.stat.as_deref(), Some("UNDELIV"));
        assert_eq!(r.err, Some(34));
    }

    #[test]
    fn non_ascii_text_around_the_fields_is_skipped_safely() {
        let r = parse_receipt_text("Ünïcode ID:Ab9 ßtat:x STAT:delivrd ERR:7 text:идентификатор")
            .unwrap();
        assert_eq!(r.id, "Ab9");
        assert_eq!(r.stat.as_deref(), Some("DELIVRD"));
        assert_eq!(r.err, Some(7));
        assert!(parse_receipt_text("éid:1 ñ").is_none(), "id: inside a word");
        assert!(parse_receipt_text("ид").is_none());
    }

    #[test]
    fn a_text_without_an_id_is_not_a_receipt() {
        assert_eq!(parse_receipt_text("hello there"), None);
        assert_eq!(parse_receipt_text("id: stat:DELIVRD"), None);
        assert_eq!(parse_receipt_text(""), None);
    }

    #[test]
    fn a_key_inside_another_word_is_not_matched() {
        let r = parse_receipt_text("msgid:5 id:6 stat:DELIVRD").unwrap();
        assert_eq!(r.id, "6");
    }

    #[test]
    fn stat_words_map_to_statuses() {
        assert_eq!(
            state_from_stat("DELIVRD"),
            ReceiptState::Final(MessageStatus::Delivered)
        );
        assert_eq!(
            state_from_stat("UNDELIV"),
            ReceiptState::Final(MessageStatus::Undeliverable)
        );
        assert_eq!(
            state_from_stat("EXPIRED"),
            ReceiptState::Final(MessageStatus::Expired)
        );
        assert_eq!(
            state_from_stat("REJECTD"),
            ReceiptState::Final(MessageStatus::Rejected)
        );
        assert_eq!(state_from_stat("ENROUTE"), ReceiptState::Intermediate);
        assert_eq!(
            state_from_stat("whatever"),
            ReceiptState::Final(MessageStatus::Unknown)
        );
    }

    #[test]
    fn message_state_tlv_values_map_to_statuses() {
        assert_eq!(
            state_from_message_state(2),
            ReceiptState::Final(MessageStatus::Delivered)
        );
        assert_eq!(
            state_from_message_state(5),
            ReceiptState::Final(MessageStatus::Undeliverable)
        );
        assert_eq!(state_from_message_state(6), ReceiptState::Intermediate);
    }

    fn bases(submit: IdBase, receipt: IdBase) -> IdBases {
        IdBases::new(submit, receipt).unwrap()
    }

    #[test]
    fn a_decimal_receipt_id_matches_its_hexadecimal_submit_id() {
        let ids = bases(IdBase::Hex, IdBase::Decimal);
        assert_eq!(ids.submit_key("0001A2B3"), "1a2b3");
        assert_eq!(ids.receipt_key("107187"), "1a2b3");
        assert_eq!(ids.receipt_key(" 0107187 "), "1a2b3");
    }

    #[test]
    fn a_hexadecimal_receipt_id_matches_its_decimal_submit_id() {
        let ids = bases(IdBase::Decimal, IdBase::Hex);
        assert_eq!(ids.submit_key("00107187"), "107187");
        assert_eq!(ids.receipt_key("1A2B3"), "107187");
    }

    #[test]
    fn hexadecimal_ids_on_both_sides_compare_without_padding_or_case() {
        let ids = bases(IdBase::Hex, IdBase::Hex);
        assert_eq!(ids.submit_key("00AB"), ids.receipt_key("ab"));
    }

    #[test]
    fn an_id_that_is_not_a_number_in_its_base_is_kept_as_text() {
        let ids = bases(IdBase::Hex, IdBase::Decimal);
        assert_eq!(ids.receipt_key("12ab"), "12ab");
        assert_eq!(ids.receipt_key("+42"), "+42");
        assert_eq!(ids.receipt_key(&"9".repeat(60)), "9".repeat(60));
    }

    #[test]
    fn text_ids_are_only_normalised() {
        let ids = IdBases::default();
        assert_eq!(ids.submit_key("00AB"), "00ab");
        assert_eq!(ids.receipt_key("0042"), "42");
    }

    #[test]
    fn text_on_one_side_and_a_number_on_the_other_is_refused() {
        assert_eq!(IdBases::new(IdBase::Text, IdBase::Decimal), None);
        assert_eq!(IdBases::new(IdBase::Hex, IdBase::Text), None);
    }

    #[test]
    fn ids_are_normalised_for_comparison() {
        assert_eq!(normalize_id("000123"), "123");
        assert_eq!(normalize_id(" 123 "), "123");
        assert_eq!(normalize_id("0000"), "0");
        assert_eq!(normalize_id("0A1B"), "0a1b");
    }
}
