//! SMPP 3.4 command_status values: their names and what we do about them.
//!
//! This is the one table that decides whether a failed request is retried.
//! Classes follow what the codes mean for the *message*, not the session:
//! - `Throttled`: the SMSC is protecting itself (ESME_RTHROTTLED,
//!   ESME_RMSGQFUL). Slow down and retry soon — never park the message.
//! - `Temporary`: the same PDU may well succeed later (system error,
//!   submit failed, SMSC-side timeouts).
//! - `Permanent`: resending the same PDU will fail the same way (bad
//!   address, bad data coding, invalid message length ...).
//!
//! Codes not in the table (vendor-specific 0x400..=0x4FF and reserved
//! values) are treated as temporary: a wrong retry costs an attempt, a wrong
//! permanent failure loses a message.

/// What to do with a message whose submit got this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// ESME_ROK.
    Ok,
    /// Back off this session and retry the message soon.
    Throttled,
    /// Retry with backoff, up to the attempt limit.
    Temporary,
    /// Give up: the message is `failed`.
    Permanent,
}

/// ESME_ROK.
pub const ESME_ROK: u32 = 0x0000_0000;
/// ESME_RINVMSGLEN: message length is invalid.
pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
/// ESME_RINVCMDLEN: command length is invalid.
pub const ESME_RINVCMDLEN: u32 = 0x0000_0002;
/// ESME_RINVCMDID: invalid command id.
pub const ESME_RINVCMDID: u32 = 0x0000_0003;
/// ESME_RINVBNDSTS: incorrect bind status for the given command.
pub const ESME_RINVBNDSTS: u32 = 0x0000_0004;
/// ESME_RALYBND: already in bound state.
pub const ESME_RALYBND: u32 = 0x0000_0005;
/// ESME_RSYSERR: system error.
pub const ESME_RSYSERR: u32 = 0x0000_0008;
/// ESME_RBINDFAIL: bind failed.
pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
/// ESME_RINVPASWD: invalid password.
pub const ESME_RINVPASWD: u32 = 0x0000_000E;
/// ESME_RINVSYSID: invalid system id.
pub const ESME_RINVSYSID: u32 = 0x0000_000F;
/// ESME_RMSGQFUL: message queue full.
pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
/// ESME_RTHROTTLED: throttling error.
pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
/// ESME_RINVDSTADR: invalid destination address.
pub const ESME_RINVDSTADR: u32 = 0x0000_000B;

/// (code, name, class) for every status SMPP 3.4 §5.1.3 defines.
const TABLE: &[(u32, &str, ErrorClass)] = &[
    (0x00, "ESME_ROK", ErrorClass::Ok),
    (0x01, "ESME_RINVMSGLEN", ErrorClass::Permanent),
    (0x02, "ESME_RINVCMDLEN", ErrorClass::Permanent),
    (0x03, "ESME_RINVCMDID", ErrorClass::Permanent),
    (0x04, "ESME_RINVBNDSTS", ErrorClass::Temporary),
    (0x05, "ESME_RALYBND", ErrorClass::Temporary),
    (0x06, "ESME_RINVPRTFLG", ErrorClass::Permanent),
    (0x07, "ESME_RINVREGDLVFLG", ErrorClass::Permanent),
    (0x08, "ESME_RSYSERR", ErrorClass::Temporary),
    (0x0A, "ESME_RINVSRCADR", ErrorClass::Permanent),
    (0x0B, "ESME_RINVDSTADR", ErrorClass::Permanent),
    (0x0C, "ESME_RINVMSGID", ErrorClass::Permanent),
    (0x0D, "ESME_RBINDFAIL", ErrorClass::Temporary),
    (0x0E, "ESME_RINVPASWD", ErrorClass::Permanent),
    (0x0F, "ESME_RINVSYSID", ErrorClass::Permanent),
    (0x11, "ESME_RCANCELFAIL", ErrorClass::Temporary),
    (0x13, "ESME_RREPLACEFAIL", ErrorClass::Temporary),
    (0x14, "ESME_RMSGQFUL", ErrorClass::Throttled),
    (0x15, "ESME_RINVSERTYP", ErrorClass::Permanent),
    (0x33, "ESME_RINVNUMDESTS", ErrorClass::Permanent),
    (0x34, "ESME_RINVDLNAME", ErrorClass::Permanent),
    (0x40, "ESME_RINVDESTFLAG", ErrorClass::Permanent),
    (0x42, "ESME_RINVSUBREP", ErrorClass::Permanent),
    (0x43, "ESME_RINVESMCLASS", ErrorClass::Permanent),
    (0x44, "ESME_RCNTSUBDL", ErrorClass::Permanent),
    (0x45, "ESME_RSUBMITFAIL", ErrorClass::Temporary),
    (0x48, "ESME_RINVSRCTON", ErrorClass::Permanent),
    (0x49, "ESME_RINVSRCNPI", ErrorClass::Permanent),
    (0x50, "ESME_RINVDSTTON", ErrorClass::Permanent),
    (0x51, "ESME_RINVDSTNPI", ErrorClass::Permanent),
    (0x53, "ESME_RINVSYSTYP", ErrorClass::Permanent),
    (0x54, "ESME_RINVREPFLAG", ErrorClass::Permanent),
    (0x55, "ESME_RINVNUMMSGS", ErrorClass::Permanent),
    (0x58, "ESME_RTHROTTLED", ErrorClass::Throttled),
    (0x61, "ESME_RINVSCHED", ErrorClass::Permanent),
    (0x62, "ESME_RINVEXPIRY", ErrorClass::Permanent),
    (0x63, "ESME_RINVDFTMSGID", ErrorClass::Permanent),
    (0x64, "ESME_RX_T_APPN", ErrorClass::Temporary),
    (0x65, "ESME_RX_P_APPN", ErrorClass::Permanent),
    (0x66, "ESME_RX_R_APPN", ErrorClass::Permanent),
    (0x67, "ESME_RQUERYFAIL", ErrorClass::Temporary),
    (0xC0, "ESME_RINVOPTPARSTREAM", ErrorClass::Permanent),
    (0xC1, "ESME_ROPTPARNOTALLWD", ErrorClass::Permanent),
    (0xC2, "ESME_RINVPARLEN", ErrorClass::Permanent),
    (0xC3, "ESME_RMISSINGOPTPARAM", ErrorClass::Permanent),
    (0xC4, "ESME_RINVOPTPARAMVAL", ErrorClass::Permanent),
    (0xFE, "ESME_RDELIVERYFAILURE", ErrorClass::Temporary),
    (0xFF, "ESME_RUNKNOWNERR", ErrorClass::Temporary),
];

fn lookup(code: u32) -> Option<&'static (u32, &'static str, ErrorClass)> {
    TABLE.iter().find(|(c, _, _)| *c == code)
}

/// The spec's name for a status, or `"UNKNOWN_0x…"` for codes it does not
/// define (vendor-specific ones included).
pub fn name(code: u32) -> String {
    match lookup(code) {
        Some((_, name, _)) => (*name).to_string(),
        None => format!("UNKNOWN_0x{code:08X}"),
    }
}

/// The class that decides retry or failure.
pub fn classify(code: u32) -> ErrorClass {
    lookup(code).map_or(ErrorClass::Temporary, |(_, _, class)| *class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_classed_throttled() {
        assert_eq!(classify(ESME_RTHROTTLED), ErrorClass::Throttled);
        assert_eq!(classify(ESME_RMSGQFUL), ErrorClass::Throttled);
    }

    #[test]
    fn a_bad_destination_is_permanent_and_a_system_error_temporary() {
        assert_eq!(classify(ESME_RINVDSTADR), ErrorClass::Permanent);
        assert_eq!(classify(ESME_RSYSERR), ErrorClass::Temporary);
        assert_eq!(name(ESME_RINVDSTADR), "ESME_RINVDSTADR");
    }

    #[test]
    fn an_unknown_vendor_code_is_temporary_and_named_by_its_value() {
        assert_eq!(classify(0x0000_0401), ErrorClass::Temporary);
        assert_eq!(name(0x0000_0401), "UNKNOWN_0x00000401");
    }

    #[test]
    fn the_table_has_no_duplicate_codes() {
        let mut codes: Vec<u32> = TABLE.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }
}
