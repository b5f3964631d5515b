//! Text to short_message bytes: GSM 03.38 (unpacked, data_coding 0x00) when
//! every character is in the GSM default alphabet or its extension table,
//! else UCS-2 big-endian (data_coding 0x08).
//!
//! ASCII is *not* GSM: `@` is 0x00, `$` is 0x02, `_` is 0x11, and `{`, `}`,
//! `[`, `]`, `~`, `\`, `|`, `^`, `€` are two septets (escape 0x1B + code).
//! Sending raw ASCII with data_coding 0 garbles those on handsets, so we
//! translate through the table.

/// GSM 03.38 default alphabet, index = septet value.
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 extension table (after the 0x1B escape).
const GSM_EXTENSION: [(char, u8); 10] = [
    ('\u{0c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// The SMPP data_coding of an encoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// GSM 03.38 default alphabet, one septet per octet (data_coding 0x00).
    Gsm7,
    /// UCS-2 / UTF-16BE (data_coding 0x08).
    Ucs2,
}

impl Coding {
    /// The data_coding octet.
    pub fn data_coding(self) -> u8 {
        match self {
            Coding::Gsm7 => 0x00,
            Coding::Ucs2 => 0x08,
        }
    }

    /// How many units fit in one unsegmented SMS (160 septets / 70 UCS-2
    /// code units).
    pub fn single_part_limit(self) -> usize {
        match self {
            Coding::Gsm7 => 160,
            Coding::Ucs2 => 70,
        }
    }
}

/// A text ready to go into short_message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Which alphabet.
    pub coding: Coding,
    /// The bytes for short_message.
    pub bytes: Vec<u8>,
    /// Length in the alphabet's units (septets, or UTF-16 code units), which
    /// is what the per-SMS limits count.
    pub units: usize,
}

/// For each ASCII character, its septet in [`GSM_BASIC`], or `NOT_BASIC`:
/// the table lookup every character of the usual text takes, instead of a
/// scan of the 128-entry alphabet (profiled at 3 % of the actix threads).
const ASCII_TO_GSM: [u8; 128] = ascii_to_gsm();

/// Marks an ASCII character that is not in the default alphabet.
const NOT_BASIC: u8 = 0xFF;

const fn ascii_to_gsm() -> [u8; 128] {
    let mut table = [NOT_BASIC; 128];
    let mut septet = 0;
    while septet < GSM_BASIC.len() {
        let c = GSM_BASIC[septet] as u32;
        // The escape is not a character of its own.
        if c < 128 && c != 0x1B {
            table[c as usize] = septet as u8;
        }
        septet += 1;
    }
    table
}

fn gsm_basic(c: char) -> Option<u8> {
    if c.is_ascii() {
        let septet = ASCII_TO_GSM[c as usize];
        return (septet != NOT_BASIC).then_some(septet);
    }
    GSM_BASIC.iter().position(|&g| g == c).map(|p| p as u8)
}

fn gsm_extension(c: char) -> Option<u8> {
    GSM_EXTENSION
        .iter()
        .find(|(g, _)| *g == c)
        .map(|(_, code)| *code)
}

/// Encodes `text` in GSM 03.38 if it can, else UCS-2.
pub fn encode(text: &str) -> Encoded {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(b) = gsm_basic(c) {
            bytes.push(b);
        } else if let Some(b) = gsm_extension(c) {
            bytes.push(0x1B);
            bytes.push(b);
        } else {
            return encode_ucs2(text);
        }
    }
    let units = bytes.len();
    Encoded {
        coding: Coding::Gsm7,
        bytes,
        units,
    }
}

/// Whether `text` fits one unsegmented SMS in the coding [`encode_as`]
/// would give it, counted without encoding it: the usual message is
/// priced and validated without the two allocations of [`encode_as`] and
/// [`split`]. False also when `coding` is `Some(Gsm7)` and the text is not
/// GSM (the encoder reports that).
pub fn fits_single_part(text: &str, coding: Option<Coding>) -> bool {
    let gsm_septets = || {
        text.chars().try_fold(0usize, |n, c| {
            if gsm_basic(c).is_some() {
                Some(n + 1)
            } else {
                gsm_extension(c).map(|_| n + 2)
            }
        })
    };
    let ucs2_fits = || text.encode_utf16().count() <= Coding::Ucs2.single_part_limit();
    match coding {
        None => match gsm_septets() {
            Some(septets) => septets <= Coding::Gsm7.single_part_limit(),
            None => ucs2_fits(),
        },
        Some(Coding::Gsm7) => gsm_septets().is_some_and(|n| n <= Coding::Gsm7.single_part_limit()),
        Some(Coding::Ucs2) => ucs2_fits(),
    }
}

/// Encodes `text` in the coding asked for: `None` chooses (GSM when every
/// character fits, else UCS-2); `Some(Gsm7)` fails when one does not fit.
pub fn encode_as(text: &str, coding: Option<Coding>) -> Option<Encoded> {
    match coding {
        None => Some(encode(text)),
        Some(Coding::Ucs2) => Some(encode_ucs2(text)),
        Some(Coding::Gsm7) => Some(encode(text)).filter(|e| e.coding == Coding::Gsm7),
    }
}

impl Coding {
    /// From a data_coding octet we send (0x00 or 0x08).
    pub fn from_data_coding(data_coding: u8) -> Option<Coding> {
        match data_coding {
            0x00 => Some(Coding::Gsm7),
            0x08 => Some(Coding::Ucs2),
            _ => None,
        }
    }
}

/// Encodes `text` as UTF-16BE. Characters outside the BMP take two code
/// units (a surrogate pair), as handsets expect.
pub fn encode_ucs2(text: &str) -> Encoded {
    let units: Vec<u16> = text.encode_utf16().collect();
    Encoded {
        coding: Coding::Ucs2,
        bytes: units.iter().flat_map(|u| u.to_be_bytes()).collect(),
        units: units.len(),
    }
}

/// Most parts one message may have (like Kannel's default `max-messages`).
pub const MAX_PARTS: usize = 10;

/// Units per part when a message is split: a 6-octet UDH leaves 153 GSM
/// septets or 67 UCS-2 code units of the 140 octets.
pub fn units_per_part(coding: Coding) -> usize {
    match coding {
        Coding::Gsm7 => 153,
        Coding::Ucs2 => 67,
    }
}

/// Splits an encoded text into the `short_message` payloads of its parts,
/// without UDH: one part when it fits a single SMS; otherwise chunks of at
/// most [`units_per_part`] that never cut a GSM escape sequence (0x1B +
/// code) or a UTF-16 surrogate pair in two.
pub fn split(encoded: &Encoded) -> Vec<Vec<u8>> {
    if encoded.units <= encoded.coding.single_part_limit() {
        return vec![encoded.bytes.clone()];
    }
    let limit = units_per_part(encoded.coding);
    let mut parts = Vec::new();
    match encoded.coding {
        Coding::Gsm7 => {
            let mut start = 0;
            while start < encoded.bytes.len() {
                let mut end = (start + limit).min(encoded.bytes.len());
                // An escape as the last septet would be cut from its code.
                if end < encoded.bytes.len() && encoded.bytes[end - 1] == 0x1B {
                    let escapes = encoded.bytes[start..end]
                        .iter()
                        .rev()
                        .take_while(|b| **b == 0x1B)
                        .count();
                    if escapes % 2 == 1 {
                        end -= 1;
                    }
                }
                parts.push(encoded.bytes[start..end].to_vec());
                start = end;
            }
        }
        Coding::Ucs2 => {
            let units: Vec<u16> = encoded
                .bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let mut start = 0;
            while start < units.len() {
                let mut end = (start + limit).min(units.len());
                // A high surrogate must stay with its low surrogate.
                if end < units.len() && (0xD800..=0xDBFF).contains(&units[end - 1]) {
                    end -= 1;
                }
                parts.push(
                    units[start..end]
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect(),
                );
                start = end;
            }
        }
    }
    parts
}

/// The 6-octet concatenation UDH (IEI 0x00, 8-bit reference).
pub fn concat_udh(reference: u8, total: u8, sequence: u8) -> [u8; 6] {
    [0x05, 0x00, 0x03, reference, total, sequence]
}

/// What an SMSC takes data_coding 0x00, "SMSC default alphabet" (SMPP 3.4
/// §5.2.19), to mean. Most mean GSM 03.38; some take Latin-1 or ASCII
/// bytes instead and convert them themselves (Kannel's `alt-charset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultAlphabet {
    /// GSM 03.38, unpacked: one septet per octet (the default).
    #[default]
    Gsm,
    /// ISO-8859-1.
    Latin1,
    /// US-ASCII (IA5).
    Ascii,
}

impl DefaultAlphabet {
    /// `gsm`, GSM 03.38 septets of a text we encoded, rewritten for this
    /// alphabet: one octet per character. A character it lacks (the Greek
    /// capitals and `€` in Latin-1, anything past `~` in ASCII) becomes `?`,
    /// as an SMSC converting to GSM itself would have no way to send it
    /// either. The number of characters, which is what the SMSC counts
    /// against its limits, is unchanged.
    pub fn recode(self, gsm: &[u8]) -> Vec<u8> {
        let limit = match self {
            DefaultAlphabet::Gsm => return gsm.to_vec(),
            DefaultAlphabet::Latin1 => 0xFF,
            DefaultAlphabet::Ascii => 0x7F,
        };
        decode(0x00, gsm)
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .ok()
                    .filter(|b| *b <= limit)
                    .unwrap_or(b'?')
            })
            .collect()
    }

    /// Decodes data_coding 0x00 bytes from an SMSC with this alphabet.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            DefaultAlphabet::Gsm => decode(0x00, bytes),
            DefaultAlphabet::Latin1 => decode(0x03, bytes),
            DefaultAlphabet::Ascii => bytes
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { '?' })
                .collect(),
        }
    }
}

/// Decodes short_message bytes received with `data_coding`, for MO texts and
/// receipts: GSM unpacked (0x00), IA5/ASCII (0x01), Latin-1 (0x03), UCS-2
/// (0x08); anything else as lossy UTF-8.
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding {
        0x00 => {
            let mut out = String::with_capacity(bytes.len());
            let mut escape = false;
            for &b in bytes {
                if escape {
                    escape = false;
                    match GSM_EXTENSION.iter().find(|(_, code)| *code == b) {
                        Some((c, _)) => out.push(*c),
                        None => out.push(' '),
                    }
                } else if b == 0x1B {
                    escape = true;
                } else {
                    out.push(GSM_BASIC[(b & 0x7F) as usize]);
                }
            }
            out
        }
        0x03 => bytes.iter().map(|&b| b as char).collect(),
        0x08 => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latin1_or_ascii_smsc_gets_one_octet_per_character_of_the_gsm_text() {
        let gsm = encode("caf\u{e9} @ $5 [x] \u{20ac}\u{3a9}");
        assert_eq!(gsm.coding, Coding::Gsm7);
        assert_eq!(
            DefaultAlphabet::Latin1.recode(&gsm.bytes),
            b"caf\xe9 @ $5 [x] ??".to_vec()
        );
        assert_eq!(
            DefaultAlphabet::Ascii.recode(&gsm.bytes),
            b"caf? @ $5 [x] ??".to_vec()
        );
        assert_eq!(DefaultAlphabet::Gsm.recode(&gsm.bytes), gsm.bytes);
    }

    #[test]
    fn data_coding_zero_is_decoded_in_the_smsc_s_alphabet() {
        assert_eq!(
            DefaultAlphabet::Latin1.decode(b"caf\xe9 @_"),
            "caf\u{e9} @_"
        );
        assert_eq!(DefaultAlphabet::Ascii.decode(b"a@\xe9"), "a@?");
        // In GSM 0x00 is '@' and 0x11 is '_'.
        assert_eq!(DefaultAlphabet::Gsm.decode(&[0x00, 0x11]), "@_");
    }

    #[test]
    fn every_character_of_the_default_alphabet_encodes_to_its_own_septet() {
        for (septet, c) in GSM_BASIC.iter().enumerate() {
            if *c == '\u{1b}' {
                assert_eq!(gsm_basic(*c), None, "the escape is not a character");
            } else {
                assert_eq!(gsm_basic(*c), Some(septet as u8), "{c:?}");
            }
        }
        // ASCII outside the default alphabet: the extension table or UCS-2.
        for c in ['`', '{', '}', '[', ']', '~', '\\', '|', '^', '\u{7f}', '\t'] {
            assert_eq!(gsm_basic(c), None, "{c:?}");
        }
    }

    #[test]
    fn plain_text_is_gsm_and_at_sign_is_septet_zero() {
        let e = encode("Hi @ $5_");
        assert_eq!(e.coding, Coding::Gsm7);
        assert_eq!(
            e.bytes,
            vec![0x48, 0x69, 0x20, 0x00, 0x20, 0x02, 0x35, 0x11]
        );
        assert_eq!(e.units, 8);
    }

    #[test]
    fn extension_characters_count_as_two_septets() {
        let e = encode("{€}");
        assert_eq!(e.coding, Coding::Gsm7);
        assert_eq!(e.bytes, vec![0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29]);
        assert_eq!(e.units, 6);
    }

    #[test]
    fn an_emoji_forces_ucs2_with_a_surrogate_pair() {
        let e = encode("ok 👍");
        assert_eq!(e.coding, Coding::Ucs2);
        assert_eq!(e.units, 5);
        assert_eq!(&e.bytes[..2], &[0x00, b'o']);
    }

    #[test]
    fn gsm_and_ucs2_round_trip_through_decode() {
        for text in ["Hello {world} €5 @home", "Привет", "ok 👍"] {
            let e = encode(text);
            assert_eq!(decode(e.coding.data_coding(), &e.bytes), text);
        }
    }

    #[test]
    fn a_text_that_fits_one_sms_is_one_part() {
        assert_eq!(split(&encode(&"a".repeat(160))).len(), 1);
        assert_eq!(split(&encode(&"ж".repeat(70))).len(), 1);
    }

    #[test]
    fn counting_one_part_agrees_with_encoding_and_splitting() {
        let texts = [
            String::new(),
            "a".repeat(160),
            "a".repeat(161),
            format!("{}€", "a".repeat(158)),
            format!("{}€", "a".repeat(159)),
            "ж".repeat(70),
            "ж".repeat(71),
            format!("{}👍", "ж".repeat(68)),
            format!("{}👍", "ж".repeat(69)),
            "ok 👍".to_string(),
            "Hello {world} €5 @home".to_string(),
        ];
        for text in &texts {
            for coding in [None, Some(Coding::Gsm7), Some(Coding::Ucs2)] {
                let one_part = encode_as(text, coding).is_some_and(|e| split(&e).len() == 1);
                assert_eq!(
                    fits_single_part(text, coding),
                    one_part,
                    "{text:?} as {coding:?}"
                );
            }
        }
    }

    #[test]
    fn a_400_character_gsm_text_is_three_parts_of_at_most_153() {
        let parts = split(&encode(&"a".repeat(400)));
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![153, 153, 94]
        );
    }

    #[test]
    fn an_escape_sequence_is_never_cut_between_parts() {
        // 152 plain characters, then '€' (0x1B 0x65) straddling the limit.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
        let parts = split(&encode(&text));
        assert_eq!(parts[0].len(), 152);
        assert_eq!(&parts[1][..2], &[0x1B, 0x65]);
        let joined: Vec<u8> = parts.concat();
        assert_eq!(decode(0x00, &joined), text);
    }

    #[test]
    fn a_surrogate_pair_is_never_cut_between_parts() {
        let text = format!("{}👍{}", "ж".repeat(66), "ж".repeat(10));
        let parts = split(&encode(&text));
        assert_eq!(
            parts[0].len(),
            66 * 2,
            "the emoji moves whole to the next part"
        );
        let joined: Vec<u8> = parts.concat();
        assert_eq!(decode(0x08, &joined), text);
    }

    #[test]
    fn the_concatenation_udh_is_iei_0_with_an_8_bit_reference() {
        assert_eq!(concat_udh(0x2A, 3, 1), [0x05, 0x00, 0x03, 0x2A, 0x03, 0x01]);
    }

    #[test]
    fn decoding_odd_ucs2_bytes_does_not_panic() {
        assert_eq!(decode(0x08, &[0x00]).chars().count(), 1);
        assert_eq!(decode(0x00, &[0x1B]), "");
        assert_eq!(decode(0x00, &[0xFF]), "à");
    }
}
