//! Schemas of the operator API (`/admin/v1/...`, `src/http/admin.rs`).
//!
//! Tenant and channel bodies are the config file's `[[tenants]]` and
//! `[[tenants.channels]]` tables as JSON (`crate::config::TenantConfig`,
//! `ChannelConfig`, which the handlers deserialize and check); these types
//! describe them with the limits those checks apply. Answers never carry a
//! secret: `password_set` and `webhook_secret_set` say whether one is set.

use std::collections::HashMap;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, ToSchema};

use super::{BindName, SessionState};
use crate::http::problem::Problem;

/// The errors every operator call may answer.
#[derive(IntoResponses)]
pub enum OperatorErrors {
    /// No admin token, a wrong one, or a tenant key.
    #[response(
        status = 401,
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "`Bearer`"))
    )]
    Unauthorized(Problem),
    /// No such tenant (or channel), or the operator API is off (no
    /// `http.admin_token`).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// The errors of an operator call that changes something.
#[derive(IntoResponses)]
pub enum ChangeErrors {
    /// The store could not commit the change; nothing changed.
    #[response(status = 503, content_type = "application/problem+json")]
    StoreUnavailable(Problem),
}

/// The errors of an operator call with a JSON body.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// Malformed JSON or not an object (`malformed-body`), or a missing,
    /// unknown or bad field (`invalid-field`, naming it).
    #[response(status = 400, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The body is over 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
}

/// `registered_delivery`: `true`, `false` or the raw octet.
fn registered_delivery_schema() -> RefOr<utoipa::openapi::Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(255)),
        )
        .description(Some(
            "Ask for delivery receipts: `true` (registered_delivery 0x01), `false` (0x00), \
             or the raw registered_delivery octet.",
        ))
        .into()
}

/// `registered_delivery` in a patch: also `null`.
fn nullable_registered_delivery_schema() -> RefOr<utoipa::openapi::Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(255)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "Ask for delivery receipts: `true`, `false`, the raw registered_delivery octet, \
             or `null` for the default (`true`).",
        ))
        .into()
}

/// An NPI: one of the ten values SMPP 3.4 §5.2.6 defines.
fn npi_schema() -> RefOr<utoipa::openapi::Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(smppd_actors::smpp::pdu::NPI_VALUES))
        .description(Some("A numbering plan indicator of SMPP 3.4 (§5.2.6)."))
        .into()
}

/// An NPI, or null (back to the default, or guessed).
fn nullable_npi_schema() -> RefOr<utoipa::openapi::Schema> {
    let mut values: Vec<serde_json::Value> = smppd_actors::smpp::pdu::NPI_VALUES
        .iter()
        .map(|&v| v.into())
        .collect();
    values.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some(values))
        .description(Some(
            "A numbering plan indicator of SMPP 3.4 (§5.2.6), or null for the default.",
        ))
        .into()
}

/// `webhook_url`: an http(s) URL or null.
fn webhook_url_schema() -> RefOr<utoipa::openapi::Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(2048))
        .pattern(Some(r"^https?://[!-.0-~][!-~]*$"))
        .description(Some(
            "Where final statuses and inbound messages are POSTed: an absolute `http://` or \
             `https://` URL without white space, at most 2,048 bytes. Needs `webhook_secret`.",
        ))
        .into()
}

/// How a channel's error_classes classify a command_status.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClassName {
    /// Slow the session down, retry soon.
    Throttled,
    /// Retry with backoff up to `max_attempts`.
    Temporary,
    /// Fail the message.
    Permanent,
}

/// What an SMSC takes data_coding 0 to mean (`default_alphabet`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAlphabetName {
    /// GSM 03.38.
    Gsm,
    /// ISO-8859-1.
    Latin1,
    /// US-ASCII.
    Ascii,
}

/// How a message of several parts goes to an SMSC (`long_messages`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LongMessagesName {
    /// One submit_sm per part, with the concatenation UDH.
    Udh,
    /// One submit_sm per part, with the SAR TLVs instead of a UDH.
    Sar,
    /// One submit_sm, the whole text in message_payload.
    Payload,
}

/// How an SMSC writes message ids in submit_sm_resp and in receipts
/// (`message_id_bases`).
#[derive(ToSchema)]
pub enum IdBasesName {
    /// Opaque strings on both sides, as SMPP 3.4 defines message ids.
    #[serde(rename = "text")]
    Text,
    /// Decimal numbers on both sides.
    #[serde(rename = "decimal")]
    Decimal,
    /// Hexadecimal numbers on both sides.
    #[serde(rename = "hex")]
    Hex,
    /// Hexadecimal in submit_sm_resp, the same number in decimal in receipts.
    #[serde(rename = "hex/decimal")]
    HexDecimal,
    /// Decimal in submit_sm_resp, hexadecimal in receipts.
    #[serde(rename = "decimal/hex")]
    DecimalHex,
}

/// A tenant; the body of `POST /admin/v1/tenants`: the keys of a
/// `[[tenants]]` table of the config file (any other is `400` naming it).
/// Checks JSON Schema cannot state are `400 invalid-field` too:
/// `webhook_url` needs `webhook_secret`, `credit` needs `price_per_part`,
/// channel names are unique, `error_classes` keys are command_status
/// values other than 0.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "globex", "max_accept_rate": 200.0, "price_per_part": 0.04,
    "credit": 50.0, "channels": [{"name": "smsc-a", "host": "10.0.0.5", "port": 2775,
    "system_id": "globex", "password": "s3cret", "sessions": 2}]}))]
pub struct NewTenant {
    /// Tenant id: 1 to 64 letters, digits, `-`, `_` and `.`; `409` if it
    /// exists.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// Its API key, when it must be a given one (16 to 256 printable ASCII
    /// characters without spaces, never issued before: else `409`). Left out, a key
    /// is generated and returned once.
    #[schema(
        nullable = false,
        min_length = 16,
        max_length = 256,
        pattern = r"^[!-~]{16,256}$"
    )]
    pub api_key: Option<String>,
    /// Messages per second accepted over HTTP (more: `429`); null: unlimited.
    #[schema(exclusive_minimum = 0, maximum = 1_000_000_000.0)]
    pub max_accept_rate: Option<f64>,
    /// Messages queued at once, 1 to 10^9 (more: `429`); null: unlimited.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub max_in_flight: Option<u64>,
    /// Its share against the other tenants while the engine is saturated (default 1).
    #[schema(nullable = false, minimum = 0.01, maximum = 1000.0)]
    pub weight: Option<f64>,
    /// The `from` values its messages may carry: 1 to 10,000 senders, each
    /// a phone number (at most 20 digits, optional `+`) or at most 11
    /// printable ASCII characters (default: any).
    #[schema(nullable = false, min_items = 1, max_items = 10000)]
    pub allowed_senders: Option<Vec<String>>,
    /// Price of one SMS part in currency units (0 to 10^12); setting it turns on credit control.
    #[schema(minimum = 0, maximum = 1_000_000_000_000.0)]
    pub price_per_part: Option<f64>,
    /// Where final statuses and inbound messages are POSTed (needs `webhook_secret`).
    #[schema(schema_with = webhook_url_schema)]
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the webhook signature, 16 to 1024 characters; never shown again.
    #[schema(min_length = 16, max_length = 1024)]
    pub webhook_secret: Option<String>,
    /// Attempts before a webhook delivery becomes a dead letter (default 8).
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub webhook_max_attempts: Option<u32>,
    /// First webhook retry delay in ms (default 1000).
    #[schema(nullable = false, minimum = 0, maximum = 86_400_000)]
    pub webhook_retry_initial_ms: Option<u64>,
    /// Opening balance in currency units (0 to 10^12), with
    /// `price_per_part` only; used when its account is created.
    #[schema(minimum = 0, maximum = 1_000_000_000_000.0)]
    pub credit: Option<f64>,
    /// Its SMPP accounts (names unique within the tenant).
    #[schema(nullable = false, max_items = 64)]
    pub channels: Option<Vec<NewChannel>>,
}

/// A JSON merge patch of a tenant's settings (`null`: back to the
/// default). `id`, `api_key`, `channels` and `credit` are `400` here: keys
/// rotate, channels and credit have their own calls.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_accept_rate": 500.0, "max_in_flight": null}))]
pub struct TenantPatch {
    /// Messages per second accepted over HTTP (more: `429`); null: unlimited.
    #[schema(exclusive_minimum = 0, maximum = 1_000_000_000.0)]
    pub max_accept_rate: Option<f64>,
    /// Messages queued at once, 1 to 10^9 (more: `429`); null: unlimited.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub max_in_flight: Option<u64>,
    /// Its share against the other tenants while the engine is saturated (default 1).
    #[schema(minimum = 0.01, maximum = 1000.0)]
    pub weight: Option<f64>,
    /// The `from` values its messages may carry; null: any.
    #[schema(min_items = 1, max_items = 10000)]
    pub allowed_senders: Option<Vec<String>>,
    /// Price of one SMS part in currency units (0 to 10^12); setting it turns on credit control.
    #[schema(minimum = 0, maximum = 1_000_000_000_000.0)]
    pub price_per_part: Option<f64>,
    /// Where final statuses and inbound messages are POSTed (needs `webhook_secret`).
    #[schema(schema_with = webhook_url_schema)]
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the webhook signature, 16 to 1024 characters; never shown again.
    #[schema(min_length = 16, max_length = 1024)]
    pub webhook_secret: Option<String>,
    /// Attempts before a webhook delivery becomes a dead letter (default 8).
    #[schema(minimum = 1, maximum = 1000)]
    pub webhook_max_attempts: Option<u32>,
    /// First webhook retry delay in ms (default 1000).
    #[schema(minimum = 0, maximum = 86_400_000)]
    pub webhook_retry_initial_ms: Option<u64>,
}

/// An SMPP account; the body of `POST /admin/v1/tenants/{id}/channels`
/// and of each item of a tenant's `channels`: the keys of a
/// `[[tenants.channels]]` table (any other is `400` naming it).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "smsc-b", "host": "10.0.0.6", "port": 2775,
    "system_id": "globex", "password": "s3cret"}))]
pub struct NewChannel {
    /// Unique within the tenant (`409` if taken): 1 to 64 characters, no
    /// control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,64}$"
    )]
    pub name: String,
    /// SMSC host name or address.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f]{1,253}$"
    )]
    pub host: String,
    /// SMSC port.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    /// SMPP system_id: at most 15 printable ASCII characters.
    #[schema(max_length = 15, pattern = r"^[ -~]*$")]
    pub system_id: String,
    /// SMPP password: at most 8 printable ASCII characters; never shown again.
    #[schema(max_length = 8, pattern = r"^[ -~]*$")]
    pub password: String,
    /// SMPP system_type, at most 12 printable ASCII characters (default empty).
    #[schema(nullable = false, max_length = 12, pattern = r"^[ -~]*$")]
    pub system_type: Option<String>,
    /// How its sessions bind (default `transceiver`).
    #[schema(nullable = false)]
    pub bind: Option<BindName>,
    /// Parallel sessions, 1 to 64 (default 1).
    #[schema(nullable = false, minimum = 1, maximum = 64)]
    pub sessions: Option<u32>,
    /// Extra receiver sessions, 0 to 64 (default 0).
    #[schema(nullable = false, minimum = 0, maximum = 64)]
    pub receiver_sessions: Option<u32>,
    /// Outstanding submits per session, 1 to 10,000 (default 10).
    #[schema(nullable = false, minimum = 1, maximum = 10000)]
    pub window: Option<u32>,
    /// Submits per second per session, at least 1; null: unlimited.
    #[schema(minimum = 1, maximum = 1_000_000.0)]
    pub submits_per_second: Option<f64>,
    /// Ms a submit may wait for a window slot or a token (default 2000).
    #[schema(nullable = false, minimum = 1, maximum = 3_600_000)]
    pub window_wait_timeout_ms: Option<u64>,
    /// Seconds of silence before an enquire_link (default 30).
    #[schema(nullable = false, minimum = 1, maximum = 86_400)]
    pub enquire_link_interval_s: Option<u64>,
    /// Seconds any request may wait for its response (default 10).
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    pub response_timeout_s: Option<u64>,
    /// Seconds a TCP connect may take (default 5).
    #[schema(nullable = false, minimum = 1, maximum = 3600)]
    pub connect_timeout_s: Option<u64>,
    /// Receipts asked for: `true` (default), `false` or the raw octet.
    #[schema(schema_with = registered_delivery_schema)]
    pub registered_delivery: Option<serde_json::Value>,
    /// Ms before the first reconnect (default 500).
    #[schema(nullable = false, minimum = 1, maximum = 3_600_000)]
    pub reconnect_initial_ms: Option<u64>,
    /// Cap on the reconnect delay in seconds (default 60).
    #[schema(nullable = false, minimum = 1, maximum = 86_400)]
    pub reconnect_max_s: Option<u64>,
    /// Attempts before a temporarily failing message is `failed` (default 5).
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub max_attempts: Option<u32>,
    /// Ms before the first retry of a temporary error (default 1000).
    #[schema(nullable = false, minimum = 0, maximum = 3_600_000)]
    pub retry_initial_ms: Option<u64>,
    /// Cap on the retry delay in seconds (default 60).
    #[schema(nullable = false, minimum = 0, maximum = 86_400)]
    pub retry_max_s: Option<u64>,
    /// This SMSC's own meaning of command_status values: the code (decimal, or `0x` hex, not 0) → its class.
    #[schema(nullable = false)]
    pub error_classes: Option<HashMap<String, ErrorClassName>>,
    /// How the SMSC writes message ids in submit_sm_resp and in receipts
    /// (default `text`).
    #[schema(nullable = false)]
    pub message_id_bases: Option<IdBasesName>,
    /// addr_ton of every bind, 0 to 6 (default 0).
    #[schema(nullable = false, minimum = 0, maximum = 6)]
    pub bind_addr_ton: Option<u8>,
    /// addr_npi of every bind (default 0).
    #[schema(schema_with = npi_schema)]
    pub bind_addr_npi: Option<u8>,
    /// address_range of every bind, at most 40 printable ASCII characters
    /// (default empty).
    #[schema(nullable = false, max_length = 40, pattern = r"^[ -~]*$")]
    pub address_range: Option<String>,
    /// service_type of every submit_sm, at most 5 printable ASCII
    /// characters (default empty).
    #[schema(nullable = false, max_length = 5, pattern = r"^[ -~]*$")]
    pub service_type: Option<String>,
    /// What the SMSC takes data_coding 0 to mean (default `gsm`).
    #[schema(nullable = false)]
    pub default_alphabet: Option<DefaultAlphabetName>,
    /// How a message of several parts is sent (default `udh`).
    #[schema(nullable = false)]
    pub long_messages: Option<LongMessagesName>,
    /// source_addr_ton of every submit_sm, 0 to 6 (default: guessed from
    /// the address).
    #[schema(nullable = false, minimum = 0, maximum = 6)]
    pub source_addr_ton: Option<u8>,
    /// source_addr_npi (default: guessed).
    #[schema(schema_with = npi_schema)]
    pub source_addr_npi: Option<u8>,
    /// dest_addr_ton of every submit_sm, 0 to 6 (default: guessed).
    #[schema(nullable = false, minimum = 0, maximum = 6)]
    pub dest_addr_ton: Option<u8>,
    /// dest_addr_npi (default: guessed).
    #[schema(schema_with = npi_schema)]
    pub dest_addr_npi: Option<u8>,
    /// SMPP over TLS (default `false`): the SMSC's certificate is checked.
    #[schema(nullable = false)]
    pub tls: Option<bool>,
    /// PEM file on the appliance of the CAs that sign the SMSC's
    /// certificate (default: the Mozilla root certificates). Needs `tls`.
    #[schema(nullable = false)]
    pub tls_ca_file: Option<String>,
    /// The name the SMSC's certificate must be valid for (default:
    /// `host`). Needs `tls`.
    #[schema(nullable = false)]
    pub tls_server_name: Option<String>,
    /// PEM file on the appliance of the client certificate chain, for an
    /// SMSC that asks for one; with `tls_key_file`. Needs `tls`.
    #[schema(nullable = false)]
    pub tls_cert_file: Option<String>,
    /// PEM file on the appliance of the client certificate's private key.
    #[schema(nullable = false)]
    pub tls_key_file: Option<String>,
}

/// A JSON merge patch of a channel (`null`: back to the default).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sessions": 4}))]
pub struct ChannelPatch {
    /// The channel's own name, if given (it cannot change).
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,64}$"
    )]
    pub name: Option<String>,
    /// SMSC host name or address.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 253,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f]{1,253}$"
    )]
    pub host: Option<String>,
    /// SMSC port.
    #[schema(nullable = false, minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// SMPP system_id: at most 15 printable ASCII characters.
    #[schema(nullable = false, max_length = 15, pattern = r"^[ -~]*$")]
    pub system_id: Option<String>,
    /// SMPP password: at most 8 printable ASCII characters; never shown again.
    #[schema(nullable = false, max_length = 8, pattern = r"^[ -~]*$")]
    pub password: Option<String>,
    /// SMPP system_type, at most 12 printable ASCII characters (default empty).
    #[schema(max_length = 12, pattern = r"^[ -~]*$")]
    pub system_type: Option<String>,
    /// How its sessions bind (default `transceiver`).
    pub bind: Option<BindName>,
    /// Parallel sessions, 1 to 64 (default 1).
    #[schema(minimum = 1, maximum = 64)]
    pub sessions: Option<u32>,
    /// Extra receiver sessions, 0 to 64 (default 0).
    #[schema(minimum = 0, maximum = 64)]
    pub receiver_sessions: Option<u32>,
    /// Outstanding submits per session, 1 to 10,000 (default 10).
    #[schema(minimum = 1, maximum = 10000)]
    pub window: Option<u32>,
    /// Submits per second per session, at least 1; null: unlimited.
    #[schema(minimum = 1, maximum = 1_000_000.0)]
    pub submits_per_second: Option<f64>,
    /// Ms a submit may wait for a window slot or a token (default 2000).
    #[schema(minimum = 1, maximum = 3_600_000)]
    pub window_wait_timeout_ms: Option<u64>,
    /// Seconds of silence before an enquire_link (default 30).
    #[schema(minimum = 1, maximum = 86_400)]
    pub enquire_link_interval_s: Option<u64>,
    /// Seconds any request may wait for its response (default 10).
    #[schema(minimum = 1, maximum = 3600)]
    pub response_timeout_s: Option<u64>,
    /// Seconds a TCP connect may take (default 5).
    #[schema(minimum = 1, maximum = 3600)]
    pub connect_timeout_s: Option<u64>,
    /// Receipts asked for: `true` (default), `false` or the raw octet.
    #[schema(schema_with = nullable_registered_delivery_schema)]
    pub registered_delivery: Option<serde_json::Value>,
    /// Ms before the first reconnect (default 500).
    #[schema(minimum = 1, maximum = 3_600_000)]
    pub reconnect_initial_ms: Option<u64>,
    /// Cap on the reconnect delay in seconds (default 60).
    #[schema(minimum = 1, maximum = 86_400)]
    pub reconnect_max_s: Option<u64>,
    /// Attempts before a temporarily failing message is `failed` (default 5).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<u32>,
    /// Ms before the first retry of a temporary error (default 1000).
    #[schema(minimum = 0, maximum = 3_600_000)]
    pub retry_initial_ms: Option<u64>,
    /// Cap on the retry delay in seconds (default 60).
    #[schema(minimum = 0, maximum = 86_400)]
    pub retry_max_s: Option<u64>,
    /// This SMSC's own meaning of command_status values: the code (decimal, or `0x` hex, not 0) → its class.
    pub error_classes: Option<HashMap<String, ErrorClassName>>,
    /// How the SMSC writes message ids in submit_sm_resp and in receipts
    /// (default `text`).
    pub message_id_bases: Option<IdBasesName>,
    /// addr_ton of every bind, 0 to 6 (default 0).
    #[schema(minimum = 0, maximum = 6)]
    pub bind_addr_ton: Option<u8>,
    /// addr_npi of every bind (default 0).
    #[schema(schema_with = nullable_npi_schema)]
    pub bind_addr_npi: Option<u8>,
    /// address_range of every bind, at most 40 printable ASCII characters
    /// (default empty).
    #[schema(max_length = 40, pattern = r"^[ -~]*$")]
    pub address_range: Option<String>,
    /// service_type, at most 5 printable ASCII characters (default empty).
    #[schema(max_length = 5, pattern = r"^[ -~]*$")]
    pub service_type: Option<String>,
    /// What the SMSC takes data_coding 0 to mean (default `gsm`).
    pub default_alphabet: Option<DefaultAlphabetName>,
    /// How a message of several parts is sent (default `udh`).
    pub long_messages: Option<LongMessagesName>,
    /// source_addr_ton, 0 to 6; null: guessed from the address.
    #[schema(minimum = 0, maximum = 6)]
    pub source_addr_ton: Option<u8>,
    /// source_addr_npi; null: guessed.
    #[schema(schema_with = nullable_npi_schema)]
    pub source_addr_npi: Option<u8>,
    /// dest_addr_ton, 0 to 6; null: guessed.
    #[schema(minimum = 0, maximum = 6)]
    pub dest_addr_ton: Option<u8>,
    /// dest_addr_npi; null: guessed.
    #[schema(schema_with = nullable_npi_schema)]
    pub dest_addr_npi: Option<u8>,
    /// SMPP over TLS; null: off.
    pub tls: Option<bool>,
    /// CA certificates (PEM file); null: the Mozilla root certificates.
    pub tls_ca_file: Option<String>,
    /// Name the certificate must be valid for; null: `host`.
    pub tls_server_name: Option<String>,
    /// Client certificate chain (PEM file); null: none.
    pub tls_cert_file: Option<String>,
    /// Client key (PEM file); null: none.
    pub tls_key_file: Option<String>,
}

/// A tenant as the operator API shows it: every setting with its default
/// filled in, no secret.
#[derive(ToSchema)]
pub struct TenantView {
    /// Tenant id.
    pub id: String,
    /// `active` or `suspended`.
    pub status: TenantStatus,
    /// Messages per second accepted over HTTP; null: unlimited.
    #[schema(required = true)]
    pub max_accept_rate: Option<f64>,
    /// Messages queued at once; null: unlimited.
    #[schema(required = true)]
    pub max_in_flight: Option<u64>,
    /// Its weight.
    pub weight: f64,
    /// The `from` values its messages may carry; null: any.
    #[schema(required = true)]
    pub allowed_senders: Option<Vec<String>>,
    /// Price of one SMS part; null: no credit control.
    #[schema(required = true)]
    pub price_per_part: Option<f64>,
    /// The opening balance it was created with.
    #[schema(required = true)]
    pub credit: Option<f64>,
    /// Its webhook URL.
    #[schema(required = true)]
    pub webhook_url: Option<String>,
    /// Whether it has a webhook secret.
    pub webhook_secret_set: bool,
    /// Attempts before a dead letter.
    pub webhook_max_attempts: u32,
    /// First webhook retry delay in ms.
    pub webhook_retry_initial_ms: u64,
    /// Its channels.
    pub channels: Vec<ChannelView>,
}

/// Whether a tenant is served.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Its sessions are bound and its keys work.
    Active,
    /// Its sessions are closed and its calls get `403`.
    Suspended,
}

/// A channel as the operator API shows it: no password.
#[derive(ToSchema)]
pub struct ChannelView {
    /// Name.
    pub name: String,
    /// SMSC host.
    pub host: String,
    /// SMSC port.
    pub port: u16,
    /// SMPP system_id.
    pub system_id: String,
    /// Whether a password is set.
    pub password_set: bool,
    /// SMPP system_type.
    pub system_type: String,
    /// Bind mode.
    pub bind: BindName,
    /// Parallel sessions.
    pub sessions: u32,
    /// Extra receiver sessions.
    pub receiver_sessions: u32,
    /// Outstanding submits per session.
    pub window: u32,
    /// Submits per second per session; null: unlimited.
    #[schema(required = true)]
    pub submits_per_second: Option<f64>,
    /// Ms a submit may wait for a slot or a token.
    pub window_wait_timeout_ms: u64,
    /// Seconds of silence before an enquire_link.
    pub enquire_link_interval_s: u64,
    /// Seconds a request may wait for its response.
    pub response_timeout_s: u64,
    /// Seconds a TCP connect may take.
    pub connect_timeout_s: u64,
    /// Receipts asked for.
    #[schema(schema_with = registered_delivery_schema)]
    pub registered_delivery: serde_json::Value,
    /// Ms before the first reconnect.
    pub reconnect_initial_ms: u64,
    /// Cap on the reconnect delay in seconds.
    pub reconnect_max_s: u64,
    /// Attempts before a temporarily failing message is `failed`.
    pub max_attempts: u32,
    /// Ms before the first retry.
    pub retry_initial_ms: u64,
    /// Cap on the retry delay in seconds.
    pub retry_max_s: u64,
    /// command_status overrides.
    pub error_classes: HashMap<String, ErrorClassName>,
    /// How the SMSC writes message ids in submit_sm_resp and in receipts.
    pub message_id_bases: IdBasesName,
    /// addr_ton of every bind.
    pub bind_addr_ton: u8,
    /// addr_npi of every bind.
    pub bind_addr_npi: u8,
    /// address_range of every bind.
    pub address_range: String,
    /// service_type of every submit_sm (empty: the SMSC's default).
    pub service_type: String,
    /// What the SMSC takes data_coding 0 to mean.
    pub default_alphabet: DefaultAlphabetName,
    /// How a message of several parts is sent.
    pub long_messages: LongMessagesName,
    /// source_addr_ton; null: guessed from each address.
    #[schema(required = true)]
    pub source_addr_ton: Option<u8>,
    /// source_addr_npi; null: guessed.
    #[schema(required = true)]
    pub source_addr_npi: Option<u8>,
    /// dest_addr_ton; null: guessed.
    #[schema(required = true)]
    pub dest_addr_ton: Option<u8>,
    /// dest_addr_npi; null: guessed.
    #[schema(required = true)]
    pub dest_addr_npi: Option<u8>,
    /// SMPP over TLS.
    pub tls: bool,
    /// CA certificates (PEM file); null: the Mozilla root certificates.
    #[schema(required = true)]
    pub tls_ca_file: Option<String>,
    /// Name the certificate must be valid for; null: `host`.
    #[schema(required = true)]
    pub tls_server_name: Option<String>,
    /// Client certificate chain (PEM file); null: none.
    #[schema(required = true)]
    pub tls_cert_file: Option<String>,
    /// Client key (PEM file); null: none.
    #[schema(required = true)]
    pub tls_key_file: Option<String>,
}

/// `GET /admin/v1/tenants`.
#[derive(ToSchema)]
pub struct TenantList {
    /// Every tenant, by id.
    pub tenants: Vec<TenantView>,
}

/// `GET /admin/v1/tenants/{id}/channels`.
#[derive(ToSchema)]
pub struct ChannelList {
    /// The tenant's channels.
    pub channels: Vec<ChannelView>,
}

/// A created tenant.
#[derive(ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantView,
    /// Its generated API key, shown this once (absent when the body chose
    /// one).
    #[schema(nullable = false, pattern = "^sk_[0-9a-f]{64}$")]
    pub api_key: Option<String>,
}

/// What a deletion removed.
#[derive(ToSchema)]
pub struct DeletedTenant {
    /// The tenant's id.
    pub id: String,
    /// Always true.
    pub deleted: bool,
    /// Messages removed, in any status.
    pub messages_removed: u64,
    /// Of those, still queued.
    pub queued_removed: u64,
    /// Inbound messages removed.
    pub inbound_removed: u64,
    /// Webhook deliveries removed.
    pub webhooks_removed: u64,
}

/// The body of a credit top-up.
#[derive(ToSchema)]
#[schema(example = json!({"amount": 100.0}))]
pub struct CreditTopUp {
    /// Currency units to add (negative: to take), not 0, at most 10^12
    /// either way.
    #[schema(minimum = -1_000_000_000_000.0, maximum = 1_000_000_000_000.0)]
    pub amount: f64,
}

/// A tenant's balance after a top-up, in currency units.
#[derive(ToSchema)]
pub struct CreditBalance {
    /// The tenant.
    pub tenant: String,
    /// Credit that can be spent now.
    pub available: f64,
    /// Held for messages not yet submitted.
    pub reserved: f64,
    /// Captured by submitted messages.
    pub spent: f64,
}

/// The optional body of a key rotation.
#[derive(ToSchema)]
#[schema(example = json!({"grace_seconds": 3600}))]
pub struct RotateKey {
    /// How long the tenant's other keys keep working, 0 (the default) to
    /// 2,592,000 seconds.
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub grace_seconds: Option<u64>,
}

/// A new API key, shown this once.
#[derive(ToSchema)]
pub struct RotatedKey {
    /// The tenant.
    pub tenant: String,
    /// The new key.
    #[schema(pattern = "^sk_[0-9a-f]{64}$")]
    pub api_key: String,
    /// When the tenant's other keys stop working.
    #[schema(format = DateTime)]
    pub old_keys_expire_at: String,
}

/// One session slot of some tenant: `GET /v1/connections`'s fields and
/// `tenant`.
#[derive(ToSchema)]
pub struct AdminConnection {
    /// The tenant.
    pub tenant: String,
    /// The channel (`channels[].name`).
    pub channel: String,
    /// The slot's number within the channel.
    pub session: u32,
    /// How it binds.
    pub bind: BindName,
    /// Its state.
    pub state: SessionState,
    /// Since when it is in this state.
    #[schema(format = DateTime)]
    pub since: String,
    /// Why it last ended or failed to bind.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// Its channel speaks SMPP over TLS (`tls = true`).
    pub tls: bool,
    /// Submits in flight.
    pub window_in_use: u32,
    /// Most submits in flight.
    pub window_size: u32,
    /// Submits handed to the session.
    pub submitted: u64,
    /// Throttle answers on the session.
    pub throttled: u64,
    /// Submits with no response in time or on a lost session (retried).
    pub expired: u64,
    /// Submits that waited too long for a window slot or rate token.
    pub window_wait_timeouts: u64,
    /// Submits per second in force; null: unlimited.
    #[schema(required = true)]
    pub rate_limit: Option<f64>,
}

/// `GET /admin/v1/connections`.
#[derive(ToSchema)]
pub struct AdminConnections {
    /// Every session slot of every running tenant.
    pub connections: Vec<AdminConnection>,
}
