//! The TOML configuration: parsed once, validated once, then turned into
//! the typed specs each component receives ([`TenantSpec`] for the actors,
//! [`StoreOptions`] for the store, the listen address for HTTP).
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), and every error names the key at fault in one line.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smppd_actors::smpp::encoding::DefaultAlphabet;
use smppd_actors::smpp::pdu::{self, BindParams, LongMessages};
use smppd_actors::smpp::receipt::{IdBase, IdBases};
use smppd_actors::smpp::session::BindMode;
use smppd_actors::smpp::status::ErrorClass;
use smppd_actors::transport::{Tls, TlsError};
use smppd_actors::{ChannelSpec, TenantSpec};
use smppd_sqlite::{StoreOptions, Synchronous};

/// A configuration problem, always naming the file position or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("{location}{message}")]
    Parse {
        /// "line N: " when known.
        location: String,
        /// The parser's message.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the key, e.g. `tenants[0].channels[1].password`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[http]`
    #[serde(default)]
    pub http: HttpConfig,
    /// `[database]`
    #[serde(default)]
    pub database: DatabaseConfig,
    /// `[engine]`
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[[tenants]]`
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// actix-web worker threads (default: one per core).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Operator token: when set, `/metrics` and the details of `/ready`
    /// need `Authorization: Bearer <admin_token>` (tenants' keys never
    /// work there). Unset, they are open: keep the listener internal then.
    #[serde(default)]
    pub admin_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            workers: None,
            admin_token: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file (default `smppd.db`).
    #[serde(default = "default_db_path")]
    pub path: PathBuf,
    /// `full` (default: every commit survives power loss) or `normal`
    /// (survives a process crash; the last commits may be lost on power
    /// loss).
    #[serde(default)]
    pub synchronous: SyncMode,
    /// Recent submits whose receipts are matched in memory (default 65,536,
    /// about 5 MiB; 0 = none). A message still awaiting its receipt when it
    /// leaves this window is entered in the SMSC-id index instead.
    #[serde(default = "default_receipt_cache")]
    pub receipt_cache: usize,
    /// Days a final message, an inbound message, a finished webhook
    /// delivery and a parked receipt are kept (1 to 36,500; default: for
    /// ever). Messages still queued or submitted are kept whatever their
    /// age.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: default_db_path(),
            synchronous: SyncMode::Full,
            receipt_cache: default_receipt_cache(),
            retention_days: None,
        }
    }
}

fn default_receipt_cache() -> usize {
    StoreOptions::default().receipt_cache
}

/// Largest `database.receipt_cache`: about 1 GiB of RSS.
const MAX_RECEIPT_CACHE: usize = 16 * 1024 * 1024;

fn default_db_path() -> PathBuf {
    PathBuf::from("smppd.db")
}

/// `database.synchronous`
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync every commit.
    #[default]
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Threads for tenant supervisors and SMPP connections (default: half
    /// the cores, at least one).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Seconds to wait for the missing parts of a concatenated MO message
    /// after its latest part (default 600); then the parts that arrived
    /// are delivered as separate inbound messages.
    #[serde(default)]
    pub mo_parts_timeout_s: Option<u64>,
    /// Seconds after its submit that a message still waiting for its
    /// delivery receipt becomes `unknown` with the error
    /// `RECEIPT_TIMEOUT` (1 to 31,536,000; default: it waits for ever). A
    /// receipt that comes later still replaces `unknown`.
    #[serde(default)]
    pub receipt_timeout_s: Option<u64>,
    /// When tenants are paced by their `weight`: `auto` (default, while
    /// the engine is saturated), `always`, or `off`.
    #[serde(default)]
    pub fair_share: crate::fair::Mode,
}

/// `[[tenants]]`, and the body of the operator API's tenant calls (which
/// store it, without its key, in the store's `tenants` table).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant id.
    pub id: String,
    /// The key its API calls carry as `Authorization: Bearer <key>`.
    /// Required in the file; never serialized (the store keeps only its
    /// digest).
    #[serde(default, skip_serializing)]
    pub api_key: String,
    /// Messages per second it may submit over HTTP (default: unlimited);
    /// more gets 429 with Retry-After.
    #[serde(default)]
    pub max_accept_rate: Option<f64>,
    /// Messages it may have queued — accepted, not yet accepted by an SMSC
    /// or final — at once (default: unlimited); more gets 429.
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    /// Its share of the engine against the other tenants while the engine
    /// is saturated (default 1; see [`crate::fair`]).
    #[serde(default = "one_f64")]
    pub weight: f64,
    /// The `from` values its messages may carry (default: any). A number
    /// matches with or without its leading `+`; an alphanumeric sender
    /// matches exactly. Any other `from` is refused with 400.
    #[serde(default)]
    pub allowed_senders: Option<Vec<String>>,
    /// Price of one SMS part, in currency units (e.g. 0.05). Setting it
    /// turns on credit control: each message reserves parts × price on
    /// accept and is refused with 402 when the balance does not cover it.
    #[serde(default)]
    pub price_per_part: Option<f64>,
    /// Starting balance, in currency units, given on first start only
    /// (default 0); later top-ups are not overwritten.
    #[serde(default)]
    pub credit: Option<f64>,
    /// Where final statuses and inbound messages are POSTed (http or https).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key for the webhook signature (at least 16 characters);
    /// needed for `webhook_url` and for messages with a `callback_url`.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Attempts before a webhook delivery becomes a dead letter (default 8).
    #[serde(default = "eight")]
    pub webhook_max_attempts: u32,
    /// First webhook retry delay in ms (default 1000; doubles per attempt,
    /// up to an hour).
    #[serde(default = "thousand")]
    pub webhook_retry_initial_ms: u64,
    /// Its SMPP accounts.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

/// `[[tenants.channels]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique within the tenant.
    pub name: String,
    /// SMSC host.
    pub host: String,
    /// SMSC port.
    pub port: u16,
    /// SMPP system_id (≤ 15 characters).
    pub system_id: String,
    /// SMPP password (≤ 8 characters).
    pub password: String,
    /// SMPP system_type (≤ 12 characters, default empty).
    #[serde(default)]
    pub system_type: String,
    /// `transceiver` (default), `transmitter` or `receiver`.
    #[serde(default)]
    pub bind: BindKind,
    /// Parallel sessions (default 1).
    #[serde(default = "one")]
    pub sessions: usize,
    /// Extra receiver sessions of the same account (default 0): for a
    /// `transmitter` channel whose receipts come on a separate receiver bind.
    #[serde(default)]
    pub receiver_sessions: usize,
    /// Outstanding submits per session (default 10).
    #[serde(default = "ten")]
    pub window: usize,
    /// Submits per second per session (default: unlimited).
    #[serde(default)]
    pub submits_per_second: Option<f64>,
    /// Milliseconds a submit may wait at a session for a window slot or a
    /// rate token before it is handed back to the tenant's queue (default
    /// 2000).
    #[serde(default = "two_thousand")]
    pub window_wait_timeout_ms: u64,
    /// Seconds of silence before an enquire_link (default 30).
    #[serde(default = "thirty")]
    pub enquire_link_interval_s: u64,
    /// Seconds any request may wait for its response (default 10).
    #[serde(default = "ten_u64")]
    pub response_timeout_s: u64,
    /// Seconds a TCP connect may take (default 5).
    #[serde(default = "five")]
    pub connect_timeout_s: u64,
    /// Ask for delivery receipts: `true` (default, registered_delivery
    /// 0x01), `false`, or the raw registered_delivery octet.
    #[serde(default)]
    pub registered_delivery: RegisteredDelivery,
    /// Milliseconds before the first reconnect (default 500; doubles up to
    /// `reconnect_max_s`).
    #[serde(default = "five_hundred")]
    pub reconnect_initial_ms: u64,
    /// Cap on the reconnect delay in seconds (default 60).
    #[serde(default = "sixty")]
    pub reconnect_max_s: u64,
    /// Attempts before a temporarily failing message is `failed` (default 5).
    #[serde(default = "five_u32")]
    pub max_attempts: u32,
    /// Milliseconds before the first retry of a temporary error (default
    /// 1000; doubles up to `retry_max_s`).
    #[serde(default = "thousand")]
    pub retry_initial_ms: u64,
    /// Cap on the retry delay in seconds (default 60).
    #[serde(default = "sixty")]
    pub retry_max_s: u64,
    /// Per-SMSC overrides of the command_status table: code (decimal, or
    /// a "0x…" string) → `throttled`, `temporary` or `permanent`.
    #[serde(default)]
    pub error_classes: HashMap<String, ErrorClassName>,
    /// How the SMSC writes message ids in submit_sm_resp and in receipts:
    /// `text` (default: opaque strings, as SMPP 3.4 defines them),
    /// `decimal` or `hex` (numbers, compared without leading zeros), or
    /// `hex/decimal` (hexadecimal in submit_sm_resp, the same number in
    /// decimal in receipts: an SMSC that answers `1A2B` and reports
    /// `id:6699`) and `decimal/hex` (the other way round).
    #[serde(default)]
    pub message_id_bases: IdBasesName,
    /// addr_ton of the binds (0–6, default 0): with `bind_addr_npi` and
    /// `address_range`, which addresses a receiver asks to be served.
    #[serde(default)]
    pub bind_addr_ton: u8,
    /// addr_npi of the binds (an SMPP 3.4 NPI, default 0).
    #[serde(default)]
    pub bind_addr_npi: u8,
    /// address_range of the binds: at most 40 printable ASCII characters,
    /// often a regular expression (default empty: the SMSC decides).
    #[serde(default)]
    pub address_range: String,
    /// What the SMSC takes data_coding 0 ("SMSC default alphabet") to
    /// mean: `gsm` (GSM 03.38, the default), `latin1` or `ascii`. Texts
    /// that fit GSM 03.38 go out with data_coding 0 in that alphabet, and
    /// data_coding 0 MO messages are read in it.
    #[serde(default)]
    pub default_alphabet: DefaultAlphabetName,
    /// service_type of every submit_sm: at most 5 printable ASCII
    /// characters (default empty: the SMSC's default service).
    #[serde(default)]
    pub service_type: String,
    /// How a message of several parts is sent: `udh` (default: one
    /// submit_sm per part, with the concatenation UDH), `sar` (one per
    /// part, with the SAR TLVs instead) or `payload` (one submit_sm with
    /// the whole text in message_payload).
    #[serde(default)]
    pub long_messages: LongMessagesName,
    /// source_addr_ton of every submit_sm (0–6). Default: guessed from the
    /// address (1 for more than 8 digits, 0 for a short code, 5 for an
    /// alphanumeric sender).
    #[serde(default)]
    pub source_addr_ton: Option<u8>,
    /// source_addr_npi (0, 1, 3, 4, 6, 8, 9, 10, 14 or 18). Default:
    /// guessed (1 for digits, 0 for an alphanumeric sender).
    #[serde(default)]
    pub source_addr_npi: Option<u8>,
    /// dest_addr_ton of every submit_sm. Default: guessed, as for the source.
    #[serde(default)]
    pub dest_addr_ton: Option<u8>,
    /// dest_addr_npi of every submit_sm. Default: guessed, as for the source.
    #[serde(default)]
    pub dest_addr_npi: Option<u8>,
    /// SMPP over TLS (default false): every session's TCP connection is
    /// wrapped in TLS 1.2 or 1.3, and the SMSC's certificate is checked.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificate authorities that sign the SMSC's
    /// certificate (default: the Mozilla root certificates built in).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The name the SMSC's certificate must be valid for (default: `host`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// PEM certificate chain shown to an SMSC that asks for a client
    /// certificate; with `tls_key_file`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// `default_alphabet` values.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAlphabetName {
    /// GSM 03.38.
    #[default]
    Gsm,
    /// ISO-8859-1.
    Latin1,
    /// US-ASCII.
    Ascii,
}

impl From<DefaultAlphabetName> for DefaultAlphabet {
    fn from(name: DefaultAlphabetName) -> Self {
        match name {
            DefaultAlphabetName::Gsm => DefaultAlphabet::Gsm,
            DefaultAlphabetName::Latin1 => DefaultAlphabet::Latin1,
            DefaultAlphabetName::Ascii => DefaultAlphabet::Ascii,
        }
    }
}

/// `long_messages` values.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LongMessagesName {
    /// The concatenation UDH in every part.
    #[default]
    Udh,
    /// The SAR TLVs in every part.
    Sar,
    /// One submit_sm, the text in message_payload.
    Payload,
}

impl From<LongMessagesName> for LongMessages {
    fn from(name: LongMessagesName) -> Self {
        match name {
            LongMessagesName::Udh => LongMessages::Udh,
            LongMessagesName::Sar => LongMessages::Sar,
            LongMessagesName::Payload => LongMessages::Payload,
        }
    }
}

/// `message_id_bases` values.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
pub enum IdBasesName {
    /// Opaque strings on both sides.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// Decimal numbers on both sides.
    #[serde(rename = "decimal")]
    Decimal,
    /// Hexadecimal numbers on both sides.
    #[serde(rename = "hex")]
    Hex,
    /// Hexadecimal in submit_sm_resp, decimal in receipts.
    #[serde(rename = "hex/decimal")]
    HexDecimal,
    /// Decimal in submit_sm_resp, hexadecimal in receipts.
    #[serde(rename = "decimal/hex")]
    DecimalHex,
}

impl From<IdBasesName> for IdBases {
    fn from(name: IdBasesName) -> Self {
        let (submit, receipt) = match name {
            IdBasesName::Text => (IdBase::Text, IdBase::Text),
            IdBasesName::Decimal => (IdBase::Decimal, IdBase::Decimal),
            IdBasesName::Hex => (IdBase::Hex, IdBase::Hex),
            IdBasesName::HexDecimal => (IdBase::Hex, IdBase::Decimal),
            IdBasesName::DecimalHex => (IdBase::Decimal, IdBase::Hex),
        };
        // Every name is a pair of text with text, or of numbers.
        IdBases::new(submit, receipt).unwrap_or_default()
    }
}

/// `error_classes` values.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClassName {
    /// Slow the session down, retry soon.
    Throttled,
    /// Retry with backoff up to max_attempts.
    Temporary,
    /// Fail the message.
    Permanent,
}

impl From<ErrorClassName> for ErrorClass {
    fn from(name: ErrorClassName) -> Self {
        match name {
            ErrorClassName::Throttled => ErrorClass::Throttled,
            ErrorClassName::Temporary => ErrorClass::Temporary,
            ErrorClassName::Permanent => ErrorClass::Permanent,
        }
    }
}

/// An absolute http(s) URL without spaces, at most 2,048 characters.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    url.len() <= 2048
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `value` in `min..=max`, or an error naming `key`.
fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("must be between {min} and {max}")))
    }
}

/// A `from` a message may carry: a phone number of at most 20 digits with
/// an optional leading `+`, or 1 to 11 printable ASCII characters.
pub fn is_sender(from: &str) -> bool {
    let digits = from.strip_prefix('+').unwrap_or(from);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.len() <= 20
    } else {
        !from.is_empty() && from.len() <= 11 && from.bytes().all(|b| (0x20..0x7f).contains(&b))
    }
}

/// How a sender is compared: a number without its leading `+`, anything
/// else as it is.
pub fn sender_key(from: &str) -> &str {
    match from.strip_prefix('+') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits,
        _ => from,
    }
}

/// A tenant id: 1 to 64 letters, digits, '-', '_' and '.'.
pub fn check_tenant_id(id: &str, key: &str) -> Result<(), ConfigError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            key,
            "must be 1 to 64 letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// Currency units to micro-units (the store's integer money).
pub fn micros(units: f64) -> i64 {
    (units * 1_000_000.0).round() as i64
}

/// Parses an `error_classes` key: decimal, or hex with a `0x` prefix.
fn parse_status_code(key: &str) -> Option<u32> {
    match key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => key.parse().ok(),
    }
}

fn one() -> usize {
    1
}
fn one_f64() -> f64 {
    1.0
}
fn ten() -> usize {
    10
}
fn ten_u64() -> u64 {
    10
}
fn five() -> u64 {
    5
}
fn five_u32() -> u32 {
    5
}
fn eight() -> u32 {
    8
}
fn thirty() -> u64 {
    30
}
fn sixty() -> u64 {
    60
}
fn five_hundred() -> u64 {
    500
}
fn thousand() -> u64 {
    1000
}
fn two_thousand() -> u64 {
    2000
}

/// `bind = "..."`
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BindKind {
    /// Submit and receive on one session.
    #[default]
    Transceiver,
    /// Submit only.
    Transmitter,
    /// Receive only.
    Receiver,
}

impl From<BindKind> for BindMode {
    fn from(kind: BindKind) -> Self {
        match kind {
            BindKind::Transceiver => BindMode::Transceiver,
            BindKind::Transmitter => BindMode::Transmitter,
            BindKind::Receiver => BindMode::Receiver,
        }
    }
}

/// `registered_delivery = true | false | <octet>`
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RegisteredDelivery {
    /// true → 0x01, false → 0x00.
    Flag(bool),
    /// The raw octet.
    Raw(u8),
}

impl Default for RegisteredDelivery {
    fn default() -> Self {
        RegisteredDelivery::Flag(true)
    }
}

impl RegisteredDelivery {
    fn octet(self) -> u8 {
        match self {
            RegisteredDelivery::Flag(true) => 0x01,
            RegisteredDelivery::Flag(false) => 0x00,
            RegisteredDelivery::Raw(v) => v,
        }
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let location = e
                .span()
                .map(|span| {
                    format!(
                        "line {}: ",
                        1 + text.as_bytes()[..span.start.min(text.len())]
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count()
                    )
                })
                .unwrap_or_default();
            ConfigError::Parse {
                location,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything serde cannot: uniqueness, SMPP field limits,
    /// ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                invalid(
                    "http.listen",
                    format!(
                        "{:?} is not an address like 127.0.0.1:8080",
                        self.http.listen
                    ),
                )
            })?;
        if let Some(token) = &self.http.admin_token {
            if token.len() < 16 {
                return Err(invalid(
                    "http.admin_token",
                    "must be at least 16 characters",
                ));
            }
            if self.tenants.iter().any(|t| &t.api_key == token) {
                return Err(invalid(
                    "http.admin_token",
                    "must differ from every tenant's api_key",
                ));
            }
        }
        if self.http.workers == Some(0) {
            return Err(invalid("http.workers", "must be at least 1"));
        }
        if self.engine.threads == Some(0) {
            return Err(invalid("engine.threads", "must be at least 1"));
        }
        if let Some(days) = self.database.retention_days {
            in_range("database.retention_days", days.into(), 1, 36_500)?;
        }
        if self.database.receipt_cache > MAX_RECEIPT_CACHE {
            return Err(invalid(
                "database.receipt_cache",
                format!("must be at most {MAX_RECEIPT_CACHE}"),
            ));
        }
        if let Some(seconds) = self.engine.receipt_timeout_s {
            in_range("engine.receipt_timeout_s", seconds, 1, 31_536_000)?;
        }
        if self.engine.mo_parts_timeout_s == Some(0) {
            return Err(invalid("engine.mo_parts_timeout_s", "must be at least 1"));
        }
        let mut ids = HashSet::new();
        let mut keys = HashMap::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            let key = |field: &str| format!("tenants[{t}].{field}");
            check_tenant_id(&tenant.id, &key("id"))?;
            if !ids.insert(tenant.id.as_str()) {
                return Err(invalid(
                    key("id"),
                    format!("tenant {:?} is defined twice", tenant.id),
                ));
            }
            if tenant.api_key.len() < 8 {
                return Err(invalid(key("api_key"), "must be at least 8 characters"));
            }
            if let Some(other) = keys.insert(tenant.api_key.as_str(), tenant.id.as_str()) {
                return Err(invalid(
                    key("api_key"),
                    format!("the same key is already used by tenant {other:?}"),
                ));
            }
            tenant.check(&format!("tenants[{t}]."))?;
        }
        Ok(())
    }

    /// Store settings.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            synchronous: match self.database.synchronous {
                SyncMode::Full => Synchronous::Full,
                SyncMode::Normal => Synchronous::Normal,
            },
            receipt_cache: self.database.receipt_cache,
            ..StoreOptions::default()
        }
    }
}

impl TenantConfig {
    /// The actors' view of this tenant.
    pub fn spec(&self) -> TenantSpec {
        TenantSpec {
            id: self.id.clone(),
            channels: self
                .channels
                .iter()
                .map(|c| Arc::new(channel_spec(c)))
                .collect(),
        }
    }

    /// Its webhook signing and retry policy, if it has a secret.
    pub fn webhook_policy(&self) -> Option<crate::webhooks::WebhookPolicy> {
        Some(crate::webhooks::WebhookPolicy {
            secret: self.webhook_secret.clone()?,
            max_attempts: self.webhook_max_attempts,
            retry_initial: Duration::from_millis(self.webhook_retry_initial_ms.max(1)),
        })
    }

    /// Checks everything about one tenant but its id and API key (which
    /// are checked against the other tenants): ranges, URLs, SMPP field
    /// limits, channel names. `at` prefixes the key named in an error
    /// (`"tenants[0]."` for the file, `""` for the operator API).
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{at}{field}");
        if let Some(rate) = self.max_accept_rate {
            if !rate.is_finite() || rate <= 0.0 || rate > 1e9 {
                return Err(invalid(
                    key("max_accept_rate"),
                    "must be a positive number, at most 10^9",
                ));
            }
        }
        if let Some(limit) = self.max_in_flight {
            in_range(&key("max_in_flight"), limit, 1, 1_000_000_000)?;
        }
        if !self.weight.is_finite() || !(0.01..=1000.0).contains(&self.weight) {
            return Err(invalid(key("weight"), "must be a number from 0.01 to 1000"));
        }
        for (field, value) in [
            ("price_per_part", self.price_per_part),
            ("credit", self.credit),
        ] {
            if value.is_some_and(|v| !v.is_finite() || !(0.0..=1e12).contains(&v)) {
                return Err(invalid(key(field), "must be a number from 0 to 10^12"));
            }
        }
        if let Some(url) = &self.webhook_url {
            if !is_http_url(url) {
                return Err(invalid(
                    key("webhook_url"),
                    "must be an http:// or https:// URL",
                ));
            }
            if self.webhook_secret.is_none() {
                return Err(invalid(
                    key("webhook_secret"),
                    "is needed with webhook_url (to sign deliveries)",
                ));
            }
        }
        if self
            .webhook_secret
            .as_ref()
            .is_some_and(|s| s.len() < 16 || s.chars().count() > 1024)
        {
            return Err(invalid(
                key("webhook_secret"),
                "must be 16 to 1024 characters",
            ));
        }
        in_range(
            &key("webhook_max_attempts"),
            self.webhook_max_attempts.into(),
            1,
            1000,
        )?;
        in_range(
            &key("webhook_retry_initial_ms"),
            self.webhook_retry_initial_ms,
            0,
            86_400_000,
        )?;
        if let Some(senders) = &self.allowed_senders {
            if senders.is_empty() || senders.len() > 10_000 {
                return Err(invalid(
                    key("allowed_senders"),
                    "must list 1 to 10,000 senders (leave it out to allow any)",
                ));
            }
            if let Some(bad) = senders.iter().find(|s| !is_sender(s)) {
                return Err(invalid(
                    key("allowed_senders"),
                    format!(
                        "{bad:?} is not a sender: a phone number (at most 20 digits, optional '+') \
                         or at most 11 printable ASCII characters"
                    ),
                ));
            }
        }
        if self.credit.is_some() && self.price_per_part.is_none() {
            return Err(invalid(
                key("credit"),
                "needs price_per_part (credit control)",
            ));
        }
        let mut names = HashSet::new();
        for (c, channel) in self.channels.iter().enumerate() {
            let key = |field: &str| format!("{at}channels[{c}].{field}");
            if !channel.name.is_empty() && !names.insert(channel.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!(
                        "channel {:?} is defined twice for this tenant",
                        channel.name
                    ),
                ));
            }
            channel.check(&format!("{at}channels[{c}]."))?;
        }
        Ok(())
    }
}

impl ChannelConfig {
    /// Checks one channel: SMPP field limits and ranges (its name's
    /// uniqueness is the tenant's check). `at` prefixes the key named in an
    /// error.
    pub fn check(&self, at: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{at}{field}");
        if self.name.is_empty() || self.name.chars().count() > 64 {
            return Err(invalid(key("name"), "must be 1 to 64 characters"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(invalid(key("name"), "must not hold control characters"));
        }
        if self
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || self.host.chars().count() > 253
        {
            return Err(invalid(
                key("host"),
                "must be a host name or address: at most 253 characters, no spaces or control characters",
            ));
        }
        if self.host.is_empty() {
            return Err(invalid(key("host"), "must not be empty"));
        }
        if self.port == 0 {
            return Err(invalid(key("port"), "must not be 0"));
        }
        pdu::validate_bind(&bind_params(self)).map_err(|e| {
            let field = match &e {
                pdu::PduError::TooLong { field, .. } | pdu::PduError::NotAscii { field } => field,
                // validate_bind only reports field errors.
                _ => "system_id",
            };
            invalid(key(field), e.to_string())
        })?;
        if !(1..=64).contains(&self.sessions) {
            return Err(invalid(key("sessions"), "must be between 1 and 64"));
        }
        if self.receiver_sessions > 64 {
            return Err(invalid(
                key("receiver_sessions"),
                "must be between 0 and 64",
            ));
        }
        if self.bind == BindKind::Transmitter
            && self.receiver_sessions == 0
            && self.registered_delivery.octet() & 0x03 != 0
        {
            log::warn!(
                "{}: a transmitter bind cannot receive the receipts it asks for; \
                 add receiver_sessions = 1 or use bind = \"transceiver\"",
                key("bind")
            );
        }
        if let Some(rate) = self.submits_per_second {
            if !rate.is_finite() || !(1.0..=1e6).contains(&rate) {
                return Err(invalid(
                    key("submits_per_second"),
                    "must be a number from 1 to 10^6",
                ));
            }
        }
        for code in self.error_classes.keys() {
            match parse_status_code(code) {
                Some(0) => {
                    return Err(invalid(key("error_classes"), "0 is ESME_ROK, not an error"))
                }
                Some(_) => {}
                None => {
                    return Err(invalid(
                        key("error_classes"),
                        format!("{code:?} is not a command_status (use decimal or \"0x…\")"),
                    ))
                }
            }
        }
        pdu::service_type(&self.service_type)
            .map_err(|e| invalid(key("service_type"), e.to_string()))?;
        for (field, ton) in [
            ("bind_addr_ton", Some(self.bind_addr_ton)),
            ("source_addr_ton", self.source_addr_ton),
            ("dest_addr_ton", self.dest_addr_ton),
        ] {
            if ton.is_some_and(|v| !pdu::TON_VALUES.contains(&v)) {
                return Err(invalid(key(field), "must be a TON from 0 to 6"));
            }
        }
        for (field, npi) in [
            ("bind_addr_npi", Some(self.bind_addr_npi)),
            ("source_addr_npi", self.source_addr_npi),
            ("dest_addr_npi", self.dest_addr_npi),
        ] {
            if npi.is_some_and(|v| !pdu::NPI_VALUES.contains(&v)) {
                return Err(invalid(
                    key(field),
                    "must be an NPI of SMPP 3.4: 0, 1, 3, 4, 6, 8, 9, 10, 14 or 18",
                ));
            }
        }
        self.check_tls(at)?;
        if !(1..=10_000).contains(&self.window) {
            return Err(invalid(key("window"), "must be between 1 and 10000"));
        }
        // Upper bounds keep every delay a sane `Duration` (an hour or a
        // day), far from where adding it to an `Instant` would overflow.
        for (field, value, min, max) in [
            (
                "window_wait_timeout_ms",
                self.window_wait_timeout_ms,
                1,
                3_600_000,
            ),
            (
                "enquire_link_interval_s",
                self.enquire_link_interval_s,
                1,
                86_400,
            ),
            ("response_timeout_s", self.response_timeout_s, 1, 3_600),
            ("connect_timeout_s", self.connect_timeout_s, 1, 3_600),
            ("max_attempts", self.max_attempts.into(), 1, 1_000),
            (
                "reconnect_initial_ms",
                self.reconnect_initial_ms,
                1,
                3_600_000,
            ),
            ("reconnect_max_s", self.reconnect_max_s, 1, 86_400),
            ("retry_initial_ms", self.retry_initial_ms, 0, 3_600_000),
            ("retry_max_s", self.retry_max_s, 0, 86_400),
        ] {
            in_range(&key(field), value, min, max)?;
        }
        Ok(())
    }
}

impl ChannelConfig {
    /// The TLS settings, if `tls` is on.
    fn tls_settings(&self) -> Option<Tls> {
        self.tls.then(|| Tls {
            ca_file: self.tls_ca_file.clone(),
            server_name: self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| self.host.clone()),
            client_identity: self.tls_cert_file.clone().zip(self.tls_key_file.clone()),
        })
    }

    /// The `tls_*` keys go with `tls = true`, the certificate with its key,
    /// and the files must be usable: they are read here once.
    fn check_tls(&self, at: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{at}{field}");
        let set = [
            ("tls_ca_file", self.tls_ca_file.is_some()),
            ("tls_server_name", self.tls_server_name.is_some()),
            ("tls_cert_file", self.tls_cert_file.is_some()),
            ("tls_key_file", self.tls_key_file.is_some()),
        ];
        if !self.tls {
            return match set.iter().find(|(_, is_set)| *is_set) {
                Some((field, _)) => Err(invalid(key(field), "needs tls = true")),
                None => Ok(()),
            };
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return Err(invalid(key("tls_key_file"), "is needed with tls_cert_file"))
            }
            (None, Some(_)) => {
                return Err(invalid(key("tls_cert_file"), "is needed with tls_key_file"))
            }
            _ => {}
        }
        let Some(tls) = self.tls_settings() else {
            return Ok(());
        };
        tls.client_config().map(drop).map_err(|e| match e {
            // The name checked defaults to the host.
            TlsError::ServerName(_) if self.tls_server_name.is_none() => invalid(
                key("tls_server_name"),
                format!("{e} (it defaults to the host); set tls_server_name"),
            ),
            _ => invalid(key(e.key()), e.to_string()),
        })
    }
}

fn bind_params(c: &ChannelConfig) -> BindParams {
    BindParams {
        system_id: c.system_id.clone(),
        password: c.password.clone(),
        system_type: c.system_type.clone(),
        mode: c.bind.into(),
        address: pdu::BindAddress {
            ton: c.bind_addr_ton,
            npi: c.bind_addr_npi,
            range: c.address_range.clone(),
        },
    }
}

fn channel_spec(c: &ChannelConfig) -> ChannelSpec {
    ChannelSpec {
        sessions: c.sessions,
        receiver_sessions: c.receiver_sessions,
        window: c.window,
        submits_per_second: c.submits_per_second,
        window_wait_timeout: Duration::from_millis(c.window_wait_timeout_ms),
        enquire_link_interval: Duration::from_secs(c.enquire_link_interval_s),
        response_timeout: Duration::from_secs(c.response_timeout_s),
        connect_timeout: Duration::from_secs(c.connect_timeout_s),
        registered_delivery: c.registered_delivery.octet(),
        reconnect_initial: Duration::from_millis(c.reconnect_initial_ms),
        reconnect_max: Duration::from_secs(c.reconnect_max_s)
            .max(Duration::from_millis(c.reconnect_initial_ms)),
        max_attempts: c.max_attempts,
        retry_initial: Duration::from_millis(c.retry_initial_ms.max(1)),
        retry_max: Duration::from_secs(c.retry_max_s)
            .max(Duration::from_millis(c.retry_initial_ms.max(1))),
        error_classes: c
            .error_classes
            .iter()
            .filter_map(|(code, class)| Some((parse_status_code(code)?, ErrorClass::from(*class))))
            .collect(),
        id_bases: c.message_id_bases.into(),
        // Checked by `validate`.
        service_type: pdu::service_type(&c.service_type).unwrap_or_default(),
        default_alphabet: c.default_alphabet.into(),
        addressing: pdu::Addressing {
            source_ton: c.source_addr_ton,
            source_npi: c.source_addr_npi,
            dest_ton: c.dest_addr_ton,
            dest_npi: c.dest_addr_npi,
        },
        tls: c.tls_settings(),
        long_messages: c.long_messages.into(),
        ..ChannelSpec::with_defaults(&c.name, &c.host, c.port, bind_params(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[http]
listen = "127.0.0.1:8080"
[database]
path = "smppd.db"
[[tenants]]
id = "acme"
api_key = "acme-secret"
[[tenants.channels]]
name = "smsc-a"
host = "127.0.0.1"
port = 2775
system_id = "acme"
password = "secret1"
bind = "transceiver"
sessions = 2
window = 10
enquire_link_interval_s = 30
"#;

    fn error(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_documented_example_parses_into_specs() {
        let config = Config::parse(EXAMPLE).unwrap();
        assert_eq!(config.tenants.len(), 1);
        let spec = config.tenants[0].spec();
        let channel = &spec.channels[0];
        assert_eq!(channel.sessions, 2);
        assert_eq!(channel.bind.mode, BindMode::Transceiver);
        assert_eq!(channel.registered_delivery, 1);
        assert_eq!(channel.enquire_link_interval, Duration::from_secs(30));
    }

    #[test]
    fn an_empty_file_is_a_valid_config_with_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.http.listen, "127.0.0.1:8080");
        assert_eq!(config.database.path, PathBuf::from("smppd.db"));
        assert!(config.tenants.is_empty());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = error("[http]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n");
        assert!(e.contains("listne") && e.contains("line 3"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn a_bad_bind_value_is_named() {
        let e = error(&EXAMPLE.replace("\"transceiver\"", "\"both\""));
        assert!(e.contains("both"), "{e}");
    }

    #[test]
    fn message_id_bases_default_to_text_and_flow_into_the_channel_spec() {
        let default = Config::parse(EXAMPLE).unwrap().tenants[0].spec();
        assert_eq!(default.channels[0].id_bases, IdBases::default());
        let mixed = format!("{EXAMPLE}message_id_bases = \"hex/decimal\"\n");
        let spec = Config::parse(&mixed).unwrap().tenants[0].spec();
        assert_eq!(
            spec.channels[0].id_bases,
            IdBases::new(IdBase::Hex, IdBase::Decimal).unwrap()
        );
        let e = error(&format!("{EXAMPLE}message_id_bases = \"octal\"\n"));
        assert!(e.contains("octal") && e.contains("hex/decimal"), "{e}");
    }

    #[test]
    fn ton_and_npi_overrides_flow_into_the_channel_spec_and_bad_ones_are_named() {
        let set = format!("{EXAMPLE}source_addr_ton = 5\ndest_addr_npi = 1\n");
        let spec = Config::parse(&set).unwrap().tenants[0].spec();
        assert_eq!(
            spec.channels[0].addressing,
            pdu::Addressing {
                source_ton: Some(5),
                dest_npi: Some(1),
                ..pdu::Addressing::default()
            }
        );
        let bound = format!(
            "{EXAMPLE}bind_addr_ton = 2\nbind_addr_npi = 8\naddress_range = \"^1[0-9]*$\"\n"
        );
        let spec = Config::parse(&bound).unwrap().tenants[0].spec();
        assert_eq!(
            spec.channels[0].bind.address,
            pdu::BindAddress {
                ton: 2,
                npi: 8,
                range: "^1[0-9]*$".into()
            }
        );
        let e = error(&format!(
            "{EXAMPLE}address_range = \"{}\"\n",
            "9".repeat(41)
        ));
        assert!(
            e.starts_with("tenants[0].channels[0].address_range: "),
            "{e}"
        );
        let e = error(&format!("{EXAMPLE}bind_addr_npi = 5\n"));
        assert!(
            e.starts_with("tenants[0].channels[0].bind_addr_npi: "),
            "{e}"
        );
        let latin1 = format!("{EXAMPLE}default_alphabet = \"latin1\"\n");
        let spec = Config::parse(&latin1).unwrap().tenants[0].spec();
        assert_eq!(spec.channels[0].default_alphabet, DefaultAlphabet::Latin1);
        let e = error(&format!("{EXAMPLE}default_alphabet = \"ebcdic\"\n"));
        assert!(e.contains("ebcdic"), "{e}");
        let e = error(&format!("{EXAMPLE}service_type = \"TOOLONG\"\n"));
        assert!(
            e.starts_with("tenants[0].channels[0].service_type: "),
            "{e}"
        );
        let e = error(&format!("{EXAMPLE}dest_addr_ton = 7\n"));
        assert!(
            e.starts_with("tenants[0].channels[0].dest_addr_ton: must be a TON"),
            "{e}"
        );
        let e = error(&format!("{EXAMPLE}source_addr_npi = 2\n"));
        assert!(
            e.starts_with("tenants[0].channels[0].source_addr_npi: must be an NPI"),
            "{e}"
        );
        let e = error(&format!("{EXAMPLE}source_addr_npi = 300\n"));
        assert!(e.contains("line 19") && e.contains("300"), "{e}");
    }

    #[test]
    fn allowed_senders_must_be_senders_and_not_an_empty_list() {
        let tenant = "[[tenants]]\nid = \"a\"\napi_key = \"key-number-one\"\n";
        let ok = Config::parse(&format!(
            "{tenant}allowed_senders = [\"ACME\", \"+49301\"]\n"
        ));
        assert_eq!(
            ok.unwrap().tenants[0].allowed_senders.as_deref(),
            Some(&["ACME".to_string(), "+49301".to_string()][..])
        );
        for bad in [
            "[]",
            "[\"\"]",
            "[\"TWELVE-CHARS\"]",
            "[\"+123456789012345678901\"]",
        ] {
            let e = error(&format!("{tenant}allowed_senders = {bad}\n"));
            assert!(e.starts_with("tenants[0].allowed_senders: "), "{bad}: {e}");
        }
        assert_eq!(sender_key("+4930"), "4930");
        assert_eq!(sender_key("+ACME"), "+ACME");
    }

    #[test]
    fn a_password_too_long_for_smpp_is_named_by_its_key() {
        let e = error(&EXAMPLE.replace("secret1", "much-too-long"));
        assert_eq!(
            e,
            "tenants[0].channels[0].password: password is too long (at most 8 characters)"
        );
    }

    #[test]
    fn duplicate_tenants_and_shared_keys_are_refused() {
        let twice = format!("{EXAMPLE}\n[[tenants]]\nid = \"acme\"\napi_key = \"other-secret\"\n");
        assert!(error(&twice).contains("defined twice"));
        let shared = format!("{EXAMPLE}\n[[tenants]]\nid = \"beta\"\napi_key = \"acme-secret\"\n");
        assert!(error(&shared).contains("already used by tenant \"acme\""));
    }

    #[test]
    fn a_missing_file_is_reported_with_its_path() {
        let e = Config::load(Path::new("/nonexistent/smppd.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/smppd.toml"), "{e}");
    }

    #[test]
    fn error_class_overrides_accept_hex_and_decimal_codes() {
        let text = format!(
            "{EXAMPLE}[tenants.channels.error_classes]\n\"0x401\" = \"permanent\"\n\"88\" = \"temporary\"\n"
        );
        let spec = Config::parse(&text).unwrap().tenants[0].spec();
        let channel = &spec.channels[0];
        assert_eq!(channel.classify(0x401), ErrorClass::Permanent);
        assert_eq!(
            channel.classify(0x58),
            ErrorClass::Temporary,
            "ESME_RTHROTTLED overridden"
        );
        assert_eq!(
            channel.classify(0x14),
            ErrorClass::Throttled,
            "the rest of the table stands"
        );
        let bad = format!("{EXAMPLE}[tenants.channels.error_classes]\n\"x1\" = \"permanent\"\n");
        assert!(error(&bad).starts_with("tenants[0].channels[0].error_classes"));
    }

    #[test]
    fn zero_sessions_is_refused() {
        assert!(error(&EXAMPLE.replace("sessions = 2", "sessions = 0"))
            .starts_with("tenants[0].channels[0].sessions"));
    }

    #[test]
    fn out_of_range_delays_counts_and_weights_are_refused_naming_the_key() {
        let channel = |line: &str| {
            EXAMPLE.replace(
                "enquire_link_interval_s = 30",
                &format!("enquire_link_interval_s = 30\n{line}"),
            )
        };
        let tenant = |line: &str| {
            EXAMPLE.replace(
                "api_key = \"acme-secret\"",
                &format!("api_key = \"acme-secret\"\n{line}"),
            )
        };
        for (text, key) in [
            (
                channel("response_timeout_s = 18446744073709551615"),
                "tenants[0].channels[0].response_timeout_s: must be between 1 and 3600",
            ),
            (
                channel("reconnect_max_s = 86401"),
                "tenants[0].channels[0].reconnect_max_s",
            ),
            (
                channel("max_attempts = 1001"),
                "tenants[0].channels[0].max_attempts",
            ),
            (
                channel("submits_per_second = 2000000.0"),
                "tenants[0].channels[0].submits_per_second",
            ),
            (
                EXAMPLE.replace("smsc-a", "smsc\\u0007a"),
                "tenants[0].channels[0].name",
            ),
            (
                EXAMPLE.replace("host = \"127.0.0.1\"", "host = \"127.0.0.1 \""),
                "tenants[0].channels[0].host",
            ),
            (
                tenant("max_in_flight = 1000000001"),
                "tenants[0].max_in_flight",
            ),
            (tenant("weight = 0.0"), "tenants[0].weight"),
            (tenant("weight = 1001.0"), "tenants[0].weight"),
            (
                tenant("webhook_max_attempts = 1001"),
                "tenants[0].webhook_max_attempts",
            ),
            (
                tenant(&format!("webhook_secret = \"{}\"", "s".repeat(1025))),
                "tenants[0].webhook_secret",
            ),
        ] {
            let e = error(&text);
            assert!(e.starts_with(key), "{key}: {e}");
        }
        // The bounds themselves are accepted.
        Config::parse(&channel("response_timeout_s = 3600\nmax_attempts = 1000")).unwrap();
        Config::parse(&tenant("weight = 1000.0\nmax_in_flight = 1000000000")).unwrap();
    }

    #[test]
    fn retention_is_off_by_default_and_bounded() {
        assert_eq!(Config::parse("").unwrap().database.retention_days, None);
        let set = Config::parse("[database]\nretention_days = 90\n").unwrap();
        assert_eq!(set.database.retention_days, Some(90));
        let e = error("[database]\nretention_days = 0\n");
        assert!(
            e.starts_with("database.retention_days: must be between 1"),
            "{e}"
        );
    }

    #[test]
    fn the_receipt_cache_size_reaches_the_store_and_is_bounded() {
        let with = |line: &str| {
            EXAMPLE.replace(
                "path = \"smppd.db\"",
                &format!("path = \"smppd.db\"\n{line}"),
            )
        };
        let config = Config::parse(&with("receipt_cache = 0")).unwrap();
        assert_eq!(config.store_options().receipt_cache, 0);
        let default = Config::parse(EXAMPLE).unwrap();
        assert_eq!(default.store_options().receipt_cache, 65_536);
        let e = error(&with("receipt_cache = 99999999"));
        assert!(e.starts_with("database.receipt_cache"), "{e}");
    }

    /// EXAMPLE's channel with `lines` added.
    fn with_channel_lines(lines: &str) -> String {
        EXAMPLE.replace(
            "enquire_link_interval_s = 30",
            &format!("enquire_link_interval_s = 30\n{lines}"),
        )
    }

    /// A TLS fixture's path as a TOML string.
    fn tls_fixture(name: &str) -> String {
        format!(
            "{:?}",
            format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
        )
    }

    #[test]
    fn a_tls_channel_gets_its_settings_and_checks_the_host_by_default() {
        let text = with_channel_lines(&format!(
            "tls = true\ntls_ca_file = {}\ntls_cert_file = {}\ntls_key_file = {}",
            tls_fixture("ca.pem"),
            tls_fixture("client.pem"),
            tls_fixture("client.key")
        ));
        let spec = Config::parse(&text).unwrap().tenants[0].spec();
        let tls = spec.channels[0].tls.clone().expect("tls on");
        assert_eq!(tls.server_name, "127.0.0.1");
        assert!(tls.ca_file.is_some() && tls.client_identity.is_some());
        let plain = Config::parse(EXAMPLE).unwrap().tenants[0].spec();
        assert_eq!(plain.channels[0].tls, None);
    }

    #[test]
    fn unusable_tls_settings_are_refused_naming_the_key() {
        let at = "tenants[0].channels[0].";
        for (lines, key, says) in [
            (
                format!("tls_ca_file = {}", tls_fixture("ca.pem")),
                "tls_ca_file",
                "needs tls = true",
            ),
            (
                "tls_server_name = \"smsc\"".to_string(),
                "tls_server_name",
                "needs tls = true",
            ),
            (
                format!("tls = true\ntls_cert_file = {}", tls_fixture("client.pem")),
                "tls_key_file",
                "is needed with tls_cert_file",
            ),
            (
                format!("tls = true\ntls_key_file = {}", tls_fixture("client.key")),
                "tls_cert_file",
                "is needed with tls_key_file",
            ),
            (
                format!("tls = true\ntls_ca_file = {}", tls_fixture("missing.pem")),
                "tls_ca_file",
                "missing.pem",
            ),
            (
                format!("tls = true\ntls_ca_file = {}", tls_fixture("client.key")),
                "tls_ca_file",
                "no PEM",
            ),
            (
                format!(
                    "tls = true\ntls_cert_file = {}\ntls_key_file = {}",
                    tls_fixture("client.pem"),
                    tls_fixture("client.pem")
                ),
                "tls_key_file",
                "no PEM",
            ),
            (
                format!(
                    "tls = true\ntls_cert_file = {}\ntls_key_file = {}",
                    tls_fixture("client.pem"),
                    tls_fixture("server.key")
                ),
                "tls_cert_file",
                "do not go together",
            ),
            (
                "tls = true\ntls_server_name = \"bad..name\"".to_string(),
                "tls_server_name",
                "not a DNS name",
            ),
        ] {
            let e = error(&with_channel_lines(&lines));
            assert!(e.starts_with(&format!("{at}{key}")), "{lines}: {e}");
            assert!(e.contains(says), "{lines}: {e}");
        }
        // The host is the name checked when none is given.
        let e = error(
            &with_channel_lines("tls = true").replace("host = \"127.0.0.1\"", "host = \"a..b\""),
        );
        assert!(e.starts_with(&format!("{at}tls_server_name")), "{e}");
        assert!(e.contains("\"a..b\" is not a DNS name"), "{e}");
    }

    #[test]
    fn long_messages_reaches_the_spec_and_an_unknown_mode_is_refused() {
        let default = Config::parse(EXAMPLE).unwrap().tenants[0].spec();
        assert_eq!(default.channels[0].long_messages, LongMessages::Udh);
        for (name, mode) in [
            ("sar", LongMessages::Sar),
            ("payload", LongMessages::Payload),
        ] {
            let text = format!("{EXAMPLE}long_messages = \"{name}\"\n");
            let spec = Config::parse(&text).unwrap().tenants[0].spec();
            assert_eq!(spec.channels[0].long_messages, mode);
        }
        let e = error(&format!("{EXAMPLE}long_messages = \"split\"\n"));
        assert!(e.contains("split") && e.contains("udh"), "{e}");
    }

    #[test]
    fn the_receipt_timeout_is_off_by_default_and_bounded() {
        assert_eq!(Config::parse("").unwrap().engine.receipt_timeout_s, None);
        let set = Config::parse("[engine]\nreceipt_timeout_s = 172800\n").unwrap();
        assert_eq!(set.engine.receipt_timeout_s, Some(172_800));
        for bad in ["0", "31536001"] {
            let e = error(&format!("[engine]\nreceipt_timeout_s = {bad}\n"));
            assert!(
                e.starts_with("engine.receipt_timeout_s: must be between 1 and 31536000"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_zero_mo_parts_timeout_is_refused() {
        let e = error(&format!("[engine]\nmo_parts_timeout_s = 0\n{EXAMPLE}"));
        assert!(e.starts_with("engine.mo_parts_timeout_s"), "{e}");
    }
}
