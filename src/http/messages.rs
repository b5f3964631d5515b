//! `POST /v1/messages`, `GET /v1/messages/{id}`, `GET /v1/balance`,
//! `GET /v1/stats` and `GET /v1/connections`.
//!
//! The 202 of a POST is sent only after the store's writer has committed
//! the row: the handler waits on the commit callback. The same callback —
//! on the writer thread, in commit order — tells the tenant's supervisor
//! that work arrived.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use smppd_actors::smpp::encoding::Coding;
use smppd_actors::smpp::{pdu, time};
use smppd_actors::Registry;
use smppd_sqlite::{
    BatchOutcome, Idempotency, MessageId, MessageRecord, NewMessage, Priority, QueuedMessage,
    Store, StoreError,
};

use super::auth::{Tenant, TenantInfo};
use super::openapi::{
    Accepted, Balance, Connections, IdempotencyKey, Message, SendMessage, Stats, TenantErrors,
};
use super::problem::Problem;

/// The fields a message accepts.
const FIELDS: &[&str] = &[
    "to",
    "from",
    "text",
    "priority",
    "validity",
    "send_at",
    "client_ref",
    "callback_url",
    "encoding",
];

/// Longest `client_ref`.
const MAX_CLIENT_REF: usize = 64;

/// The longest validity accepted: a year.
const MAX_VALIDITY_S: i64 = 366 * 24 * 3600;

/// A validated send request.
#[derive(Debug)]
pub(crate) struct SendRequest {
    to: Arc<str>,
    from: Arc<str>,
    text: Arc<str>,
    priority: Priority,
    validity_until_ms: Option<i64>,
    send_at_ms: Option<i64>,
    client_ref: Option<String>,
    callback_url: Option<String>,
    /// SMS parts the text takes.
    parts: u32,
    /// The coding asked for (`None`: auto).
    coding: Option<Coding>,
}

impl SendRequest {
    /// The row to insert and the queue entry to hand the supervisor once
    /// it is committed (its id filled in then).
    pub(crate) fn into_new_message(self, tenant: &TenantInfo) -> (NewMessage, QueuedMessage) {
        let parts = self.parts;
        let queued = QueuedMessage {
            id: MessageId(0),
            source: Arc::clone(&self.from),
            destination: Arc::clone(&self.to),
            text: Arc::clone(&self.text),
            attempts: 0,
            parts,
            data_coding: self.coding.map(Coding::data_coding),
            priority: self.priority,
            validity_until_ms: self.validity_until_ms,
            send_at_ms: self.send_at_ms,
        };
        let message = NewMessage {
            tenant: Arc::clone(&tenant.id),
            source: self.from,
            destination: self.to,
            text: self.text,
            priority: self.priority,
            validity_until_ms: self.validity_until_ms,
            send_at_ms: self.send_at_ms,
            parts,
            charge: tenant.price_per_part.map(|price| price * i64::from(parts)),
            max_queued: tenant.max_in_flight,
            client_ref: self.client_ref,
            callback_url: self.callback_url,
            data_coding: self.coding.map(Coding::data_coding),
        };
        (message, queued)
    }

    /// The tenant's reference, if any.
    pub(crate) fn client_ref(&self) -> Option<&str> {
        self.client_ref.as_deref()
    }

    /// What the tenant's settings allow: its sender, and a per-message
    /// callback only with a signing secret.
    pub(crate) fn check_tenant(&self, tenant: &TenantInfo) -> Result<(), Problem> {
        if let Some(allowed) = &tenant.allowed_senders {
            if !allowed.contains(crate::config::sender_key(&self.from)) {
                return Err(Problem::invalid_field(
                    "from",
                    format!(
                        "'from' {:?} is not one of this tenant's allowed_senders",
                        self.from
                    ),
                ));
            }
        }
        if self.callback_url.is_some() && !tenant.signs_webhooks {
            return Err(Problem::invalid_field(
                "callback_url",
                "'callback_url' needs a webhook_secret in this tenant's configuration",
            ));
        }
        Ok(())
    }
}

/// The one place store errors of an insert become HTTP problems.
pub(crate) fn insert_problem(tenant: &str, error: &StoreError) -> Problem {
    match error {
        StoreError::InsufficientCredit { available, needed } => {
            Problem::insufficient_credit(format!(
                "the message costs {} but only {} is available",
                money(*needed),
                money(*available)
            ))
        }
        StoreError::QuotaExceeded { limit } => Problem::queue_full(*limit),
        StoreError::TenantClosed(_) => Problem::unauthorized("the tenant was deleted"),
        other => {
            log::error!("[{tenant}] storing a message failed: {other}");
            Problem::store_unavailable("the message could not be stored; it was not accepted")
        }
    }
}

/// The 202 body of `POST /v1/messages`: [`accepted_json`], written out
/// directly (the same text, keys in the same order).
fn accepted_body(id: MessageId, client_ref: Option<&str>) -> String {
    use std::fmt::Write;
    let mut body = String::with_capacity(64);
    body.push('{');
    if let Some(r) = client_ref {
        body.push_str("\"client_ref\":");
        // Escaped as serde_json escapes it; writing to a String cannot fail.
        body.push_str(&Value::from(r).to_string());
        body.push(',');
    }
    let _ = write!(body, "\"id\":\"{id}\",\"status\":\"queued\"}}");
    // Exactly as long as it is (mimalloc shrinks in place), so the response
    // body takes the buffer as it is instead of allocating a handle for it.
    body.shrink_to_fit();
    body
}

/// `Content-Type: application/json`, without parsing and copying the text
/// on every response.
const APPLICATION_JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");

/// The 202 body for one accepted message.
pub(crate) fn accepted_json(id: MessageId, client_ref: Option<&str>) -> Value {
    let mut body = json!({"id": id.to_string(), "status": "queued"});
    if let Some(r) = client_ref {
        body["client_ref"] = Value::from(r);
    }
    body
}

/// `Idempotency-Key`: 1 to 255 printable ASCII characters.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    // A constant name: looking up by `&str` parses (and copies) it first.
    const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
    let Some(value) = req.headers().get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x21..0x7f).contains(&b)) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(Problem::invalid_header(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters without spaces",
        )),
    }
}

/// A stable 64-bit FNV-1a of the request body, hex: stored with an
/// idempotency key to tell a retry from a different request under the
/// same key. (std's hasher is not stable across releases; this is.)
pub(crate) fn request_hash(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What an insert answered, as the handler needs it.
pub(crate) enum Answer<T> {
    /// Processed now.
    Fresh(T),
    /// An idempotent retry: the stored (status, body).
    Replay(u16, String),
    /// The idempotency key came with another request before.
    KeyReused,
    /// The store failed.
    Failed(StoreError),
}

impl<T> Answer<T> {
    /// Turns a replay, a reused key or a store failure into the response.
    pub(crate) fn into_result(self, tenant: &str) -> Result<T, Box<HttpResponse>> {
        use actix_web::ResponseError;
        match self {
            Answer::Fresh(value) => Ok(value),
            Answer::Replay(status, body) => Err(Box::new(replay(status, body))),
            Answer::KeyReused => Err(Box::new(Problem::idempotency_key_reused().error_response())),
            Answer::Failed(e) => Err(Box::new(insert_problem(tenant, &e).error_response())),
        }
    }
}

/// Maps a batch insert's outcome, calling `fresh` on new results.
pub(crate) fn answer<T>(
    outcome: Result<BatchOutcome, StoreError>,
    fresh: impl FnOnce(Vec<Result<MessageId, StoreError>>) -> T,
) -> Answer<T> {
    match outcome {
        Ok(BatchOutcome::Fresh(results)) => Answer::Fresh(fresh(results)),
        Ok(BatchOutcome::Replayed { status, body }) => Answer::Replay(status, body),
        Ok(BatchOutcome::KeyReused) => Answer::KeyReused,
        Err(e) => Answer::Failed(e),
    }
}

/// A stored idempotent answer, replayed as it was.
fn replay(status: u16, body: String) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    HttpResponse::build(status)
        .content_type(content_type)
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body)
}

/// `validity` or `send_at` (`field`): seconds from now (a positive
/// integer) or an RFC 3339 timestamp in the future, at most a year ahead.
fn parse_future_time(
    field: &'static str,
    value: Option<&Value>,
    now: i64,
) -> Result<Option<i64>, Problem> {
    let bad = |detail: String| Problem::invalid_field(field, detail);
    let at = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => {
            let seconds = n
                .as_i64()
                .filter(|s| (1..=MAX_VALIDITY_S).contains(s))
                .ok_or_else(|| {
                    bad(format!(
                        "'{field}' in seconds must be a whole number from 1 to 31622400 (a year)"
                    ))
                })?;
            now + seconds * 1000
        }
        Some(Value::String(s)) => time::parse_rfc3339(s).ok_or_else(|| {
            bad(format!(
                "'{field}' must be seconds or an RFC 3339 timestamp like 2026-11-22T18:00:00Z"
            ))
        })?,
        Some(_) => {
            return Err(bad(format!(
                "'{field}' must be seconds or an RFC 3339 timestamp"
            )))
        }
    };
    if at <= now {
        return Err(bad(format!("'{field}' is already past")));
    }
    if at > now + MAX_VALIDITY_S * 1000 {
        return Err(bad(format!("'{field}' may be at most a year ahead")));
    }
    Ok(Some(at))
}

/// A message object's fields, as [`validate`] reads them.
trait Fields {
    /// A string field: `Ok(None)` if absent or null, `Err(())` if it is
    /// not a string.
    fn string(&self, field: &str) -> Result<Option<&str>, ()>;
    /// `validity` or `send_at`, as given (`None` if absent).
    fn time(&self, field: &str) -> Option<&Value>;
}

impl Fields for Map<String, Value> {
    fn string(&self, field: &str) -> Result<Option<&str>, ()> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(()),
        }
    }

    fn time(&self, field: &str) -> Option<&Value> {
        self.get(field)
    }
}

/// A well-formed POST body, read without building a JSON tree: the strings
/// are borrowed from the request. Anything it does not take (another type,
/// an unknown or repeated field, a string with escapes) is read again as
/// a [`Value`] by [`parse_send`], which says precisely what is wrong with
/// it, so both ways give the same answer.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Borrowed<'a> {
    to: Option<&'a str>,
    from: Option<&'a str>,
    text: Option<&'a str>,
    priority: Option<&'a str>,
    validity: Option<Value>,
    send_at: Option<Value>,
    client_ref: Option<&'a str>,
    callback_url: Option<&'a str>,
    encoding: Option<&'a str>,
}

impl Fields for Borrowed<'_> {
    fn string(&self, field: &str) -> Result<Option<&str>, ()> {
        Ok(match field {
            "to" => self.to,
            "from" => self.from,
            "text" => self.text,
            "priority" => self.priority,
            "client_ref" => self.client_ref,
            "callback_url" => self.callback_url,
            "encoding" => self.encoding,
            _ => None,
        })
    }

    fn time(&self, field: &str) -> Option<&Value> {
        match field {
            "validity" => self.validity.as_ref(),
            "send_at" => self.send_at.as_ref(),
            _ => None,
        }
    }
}

fn required_string(body: &impl Fields, field: &str) -> Result<Arc<str>, Problem> {
    match body.string(field) {
        Ok(None) => Err(Problem::invalid_field(
            field,
            format!("'{field}' is required"),
        )),
        Ok(Some(s)) if s.trim().is_empty() => Err(Problem::invalid_field(
            field,
            format!("'{field}' must not be empty"),
        )),
        Ok(Some(s)) => Ok(s.into()),
        Err(()) => Err(Problem::invalid_field(
            field,
            format!("'{field}' must be a string"),
        )),
    }
}

fn parse_send(bytes: &[u8]) -> Result<SendRequest, Problem> {
    if let Ok(body) = serde_json::from_slice::<Borrowed<'_>>(bytes) {
        return validate(&body);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(Problem::malformed_body("the body must be a JSON object"));
    };
    parse_item(&body)
}

/// Validates one message object (a POST body, or an item of a batch).
pub(crate) fn parse_item(body: &Map<String, Value>) -> Result<SendRequest, Problem> {
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Problem::invalid_field(
            unknown,
            format!(
                "unknown field '{unknown}' (accepted: {})",
                FIELDS.join(", ")
            ),
        ));
    }
    validate(body)
}

/// Validates a message's fields (no unknown ones).
fn validate(body: &impl Fields) -> Result<SendRequest, Problem> {
    let to = required_string(body, "to")?;
    let from = required_string(body, "from")?;
    let text = required_string(body, "text")?;
    let digits = to.strip_prefix('+').unwrap_or(&to);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_field(
            "to",
            "'to' must be a phone number: digits with an optional leading '+', at most 20",
        ));
    }
    if !crate::config::is_sender(&from) {
        return Err(Problem::invalid_field(
            "from",
            "'from' must be a phone number (at most 20 digits) or an alphanumeric sender of at most 11 ASCII characters",
        ));
    }
    pdu::validate_addresses(&from, &to).map_err(|e| Problem::invalid_field("to", e.to_string()))?;
    let coding = match body.string("encoding") {
        Ok(None | Some("auto")) => None,
        Ok(Some("gsm")) => Some(Coding::Gsm7),
        Ok(Some("ucs2")) => Some(Coding::Ucs2),
        _ => {
            return Err(Problem::invalid_field(
                "encoding",
                "'encoding' must be \"auto\", \"gsm\" or \"ucs2\"",
            ))
        }
    };
    let parts = pdu::part_count(&text, coding).map_err(|e| {
        let field = if matches!(e, pdu::PduError::NotGsm) {
            "encoding"
        } else {
            "text"
        };
        Problem::invalid_field(field, e.to_string())
    })? as u32;
    let priority = match body.string("priority") {
        Ok(None) => Priority::Normal,
        Ok(Some(p)) => Priority::parse(p).ok_or_else(|| {
            Problem::invalid_field(
                "priority",
                "'priority' must be \"high\", \"normal\" or \"bulk\"",
            )
        })?,
        Err(()) => {
            return Err(Problem::invalid_field(
                "priority",
                "'priority' must be a string",
            ))
        }
    };
    let now = time::unix_ms();
    let validity_until_ms = parse_future_time("validity", body.time("validity"), now)?;
    let send_at_ms = parse_future_time("send_at", body.time("send_at"), now)?;
    if let (Some(until), Some(send_at)) = (validity_until_ms, send_at_ms) {
        if until <= send_at {
            return Err(Problem::invalid_field(
                "validity",
                "'validity' must end after 'send_at'",
            ));
        }
    }
    let client_ref = match body.string("client_ref") {
        Ok(None) => None,
        Ok(Some(r)) if !r.is_empty() && r.chars().count() <= MAX_CLIENT_REF => Some(r.to_owned()),
        _ => {
            return Err(Problem::invalid_field(
                "client_ref",
                format!("'client_ref' must be a string of 1 to {MAX_CLIENT_REF} characters"),
            ))
        }
    };
    let callback_url = match body.string("callback_url") {
        Ok(None) => None,
        Ok(Some(url)) if crate::config::is_http_url(url) => Some(url.to_owned()),
        _ => {
            return Err(Problem::invalid_field(
                "callback_url",
                "'callback_url' must be an http:// or https:// URL",
            ))
        }
    };
    Ok(SendRequest {
        to,
        from,
        text,
        priority,
        validity_until_ms,
        send_at_ms,
        client_ref,
        callback_url,
        parts,
        coding,
    })
}

/// Send a message
///
/// The `202` is sent only after the message's row (and its credit
/// reservation) is committed: from then on the message survives a crash.
/// A refused request stores nothing.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    operation_id = "send_message",
    params(IdempotencyKey),
    request_body(content = SendMessage, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the row is committed.", body = Accepted,
            headers(("Idempotent-Replayed" = String, description = "`true` on the stored answer to a retry"))),
        (status = 400, description = "Malformed JSON (`malformed-body`), a missing, unknown or bad field (`invalid-field`), or a bad `Idempotency-Key` (`invalid-header`).", body = Problem, content_type = "application/problem+json"),
        TenantErrors,
        (status = 402, description = "The tenant's credit does not cover the message (`insufficient-credit`).", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 64 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The `Idempotency-Key` was used before with another body.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the tenant's accept rate (`rate-limited`) or in-flight limit (`queue-full`).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The store could not commit; nothing was accepted.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn send(
    req: HttpRequest,
    tenant: Tenant,
    payload: web::Payload,
    store: web::Data<Store>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
    let started = Instant::now();
    let key = idempotency_key(&req)?;
    let body = super::read_body(payload).await?;
    let request = parse_send(&body)?;
    request.check_tenant(&tenant.0)?;
    if let Some(rate) = &tenant.0.accept_rate {
        if let Err(wait) = rate.try_take(Instant::now()) {
            return Err(Problem::rate_limited(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
        }
    }
    tenant.0.pace.admit(1).await;
    let client_ref = request.client_ref().map(str::to_string);
    let (message, queued) = request.into_new_message(&tenant.0);
    let stats = registry.stats(tenant.id());
    let registry = registry.get_ref().clone();
    let tenant_id = tenant.id().clone();
    let (tx, rx) = super::reply::channel::<Answer<Result<MessageId, StoreError>>>();
    let enqueue = move |result: &Result<MessageId, StoreError>| {
        if let Ok(id) = result {
            registry.enqueued(&tenant_id, QueuedMessage { id: *id, ..queued });
        }
    };
    match key {
        None => store.insert_message(
            message,
            Box::new(move |result| {
                enqueue(&result);
                tx.send(Answer::Fresh(result));
            }),
        ),
        Some(key) => {
            let (render_tenant, render_ref) = (tenant.id().clone(), client_ref.clone());
            let idempotency = Idempotency {
                tenant: tenant.id().to_string(),
                key,
                request_hash: request_hash(&body),
                render: Box::new(move |results| match &results[0] {
                    Ok(id) => (202, accepted_body(*id, render_ref.as_deref())),
                    Err(e) => {
                        let problem = insert_problem(&render_tenant, e);
                        (
                            problem.status,
                            serde_json::to_string(&problem).unwrap_or_default(),
                        )
                    }
                }),
            };
            store.insert_batch(
                vec![message],
                Some(idempotency),
                Box::new(move |outcome| {
                    tx.send(answer(outcome, |mut results| {
                        let result = results.remove(0);
                        enqueue(&result);
                        result
                    }));
                }),
            );
        }
    }
    let answer = rx.await.map_err(|_| {
        Problem::store_unavailable("the store stopped; the message was not accepted")
    })?;
    match answer.into_result(tenant.id()) {
        Ok(Ok(id)) => {
            if let Some(stats) = stats {
                stats.accept_latency.observe(started.elapsed());
            }
            Ok(HttpResponse::Accepted()
                .insert_header((header::CONTENT_TYPE, APPLICATION_JSON))
                .body(accepted_body(id, client_ref.as_deref())))
        }
        Ok(Err(e)) => Err(insert_problem(tenant.id(), &e)),
        Err(response) => Ok(*response),
    }
}

/// Micro-units as a JSON number in currency units (6 decimals at most).
pub(crate) fn money(micros: i64) -> Value {
    let text = format!(
        "{}{}.{:06}",
        if micros < 0 { "-" } else { "" },
        micros.unsigned_abs() / 1_000_000,
        micros.unsigned_abs() % 1_000_000
    );
    text.parse::<f64>().map_or(Value::Null, Value::from)
}

/// The caller's credit
///
/// In currency units; `{"credit_control": false}` when the tenant's
/// messages are not charged (no `price_per_part`).
#[utoipa::path(
    get,
    path = "/v1/balance",
    tag = "account",
    operation_id = "get_balance",
    responses(
        (status = 200, description = "The balance.", body = Balance),
        TenantErrors,
        (status = 503, description = "The balance could not be read.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn balance(tenant: Tenant, store: web::Data<Store>) -> Result<HttpResponse, Problem> {
    let Some(price) = tenant.0.price_per_part else {
        return Ok(HttpResponse::Ok().json(json!({"credit_control": false})));
    };
    let store = store.get_ref().clone();
    let tenant_id = tenant.id().clone();
    let balance = super::read_store(&tenant, "reading the balance", "the balance", move || {
        store.balance(&tenant_id)
    })
    .await?
    .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({
        "credit_control": true,
        "available": money(balance.available),
        "reserved": money(balance.reserved),
        "spent": money(balance.spent),
        "price_per_part": money(price),
    })))
}

/// One of the caller's messages
///
/// With `part_status` for a long message once its parts are recorded.
/// Another tenant's id is `404`, like an id that does not exist.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}",
    tag = "messages",
    operation_id = "get_message",
    params(("id" = String, Path, description = "The message id: 16 hex digits.",
        pattern = "^(?:[1-7][0-9a-fA-F]{15}|0[0-9a-fA-F]*[1-9a-fA-F][0-9a-fA-F]*)$", min_length = 16, max_length = 16)),
    responses(
        (status = 200, description = "The message.", body = Message),
        TenantErrors,
        (status = 404, description = "No such message of the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The message could not be read.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get(
    tenant: Tenant,
    path: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let not_found = || Problem::not_found("no such message");
    let id: MessageId = path.parse().map_err(|()| not_found())?;
    let store = store.get_ref().clone();
    let tenant_id = tenant.id().clone();
    let doing = format!("reading message {id}");
    let record = super::read_store(&tenant, doing, "the message", move || {
        let record = store.get_message(&tenant_id, id)?;
        let parts = match &record {
            Some(r) if r.parts > 1 => store.message_parts(&tenant_id, id)?,
            _ => Vec::new(),
        };
        Ok::<_, StoreError>((record, parts))
    })
    .await?;
    match record {
        (Some(record), parts) => {
            let mut body = message_json(&record);
            if !parts.is_empty() {
                body["part_status"] = parts
                    .iter()
                    .map(|p| {
                        json!({
                            "part": p.part,
                            "smsc_message_id": p.smsc_message_id,
                            "status": p.status.as_str(),
                            "error": p.error.as_ref().map(|e| json!({"code": e.code, "name": e.name})),
                        })
                    })
                    .collect();
            }
            Ok(HttpResponse::Ok().json(body))
        }
        (None, _) => Err(not_found()),
    }
}

/// The caller's counters
///
/// Counted since the process started: events, not rows (`retried`
/// counts attempts); the store holds the truth per message. `queued` is
/// the one that is not: the caller's messages accepted and neither
/// submitted nor final yet, as of the last commit (what `max_in_flight`
/// limits).
#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = "account",
    operation_id = "get_stats",
    responses(
        (status = 200, description = "The counters.", body = Stats),
        TenantErrors,
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn stats(
    tenant: Tenant,
    registry: web::Data<Registry>,
    store: web::Data<Store>,
) -> HttpResponse {
    let mut counters: Map<String, Value> = registry
        .stats(tenant.id())
        .map(|s| s.snapshot())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.to_string(), Value::from(value)))
        .collect();
    // Kept in memory by the store's writer: no database read.
    counters.insert(
        "queued".into(),
        Value::from(store.queued_count(tenant.id())),
    );
    HttpResponse::Ok().json(counters)
}

/// The caller's SMPP sessions
///
/// Every session slot of the caller's channels, with its state, counters
/// and the submit rate in force.
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "account",
    operation_id = "list_connections",
    responses(
        (status = 200, description = "The session slots.", body = Connections),
        TenantErrors,
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn connections(tenant: Tenant, registry: web::Data<Registry>) -> HttpResponse {
    let sessions = registry.connections(tenant.id()).await.unwrap_or_default();
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "channel": s.channel,
                "session": s.session,
                "bind": s.bind,
                "state": s.state,
                "since": time::rfc3339(time::system_ms(s.since)),
                "last_error": s.last_error,
                "tls": s.tls,
                "window_in_use": s.window_in_use,
                "window_size": s.window_size,
                "submitted": s.submitted,
                "throttled": s.throttled,
                "expired": s.expired,
                "window_wait_timeouts": s.window_wait_timeouts,
                "rate_limit": s.rate_limit,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "connections": sessions }))
}

pub(crate) fn message_json(m: &MessageRecord) -> Value {
    json!({
        "id": m.id.to_string(),
        "status": m.status.as_str(),
        "to": m.destination,
        "from": m.source,
        "text": m.text,
        "priority": m.priority.as_str(),
        "encoding": match m.data_coding {
            Some(0x00) => "gsm",
            Some(0x08) => "ucs2",
            _ => "auto",
        },
        "client_ref": m.client_ref,
        "callback_url": m.callback_url,
        "validity": m.validity_until_ms.map(time::rfc3339),
        "send_at": m.send_at_ms.map(time::rfc3339),
        "parts": m.parts,
        "price": m.charge.map(money),
        "channel": m.channel,
        "smsc_message_id": m.smsc_message_id,
        "attempts": m.attempts,
        "error": m.error.as_ref().map(|e| json!({"code": e.code, "name": e.name})),
        "created_at": time::rfc3339(m.created_at_ms),
        "submitted_at": m.submitted_at_ms.map(time::rfc3339),
        "done_at": m.done_at_ms.map(time::rfc3339),
        "updated_at": time::rfc3339(m.updated_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> Option<String> {
        parse_send(body.as_bytes()).err().and_then(|p| p.field)
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            field_of(r#"{"from":"ACME","text":"hi"}"#).as_deref(),
            Some("to")
        );
        assert_eq!(
            field_of(r#"{"to":"49170","text":"hi"}"#).as_deref(),
            Some("from")
        );
        assert_eq!(
            field_of(r#"{"to":"49170","from":"ACME"}"#).as_deref(),
            Some("text")
        );
        assert_eq!(
            field_of(r#"{"to":"12ab","from":"ACME","text":"hi"}"#).as_deref(),
            Some("to")
        );
        assert_eq!(
            field_of(r#"{"to":4917,"from":"ACME","text":"hi"}"#).as_deref(),
            Some("to")
        );
        assert_eq!(
            field_of(r#"{"to":"4917","from":"TOO-LONG-SENDER","text":"hi"}"#).as_deref(),
            Some("from")
        );
        assert_eq!(
            field_of(r#"{"to":"4917","from":"ACME","text":"hi","txt":"x"}"#).as_deref(),
            Some("txt")
        );
        let long = format!(
            r#"{{"to":"4917","from":"ACME","text":"{}"}}"#,
            "a".repeat(1531)
        );
        assert_eq!(field_of(&long).as_deref(), Some("text"));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_malformed() {
        for body in ["", "{", "[1]", "\"x\""] {
            let p = parse_send(body.as_bytes()).unwrap_err();
            assert_eq!(p.kind, "urn:smppd:problem:malformed-body", "{body}");
        }
    }

    #[test]
    fn validity_accepts_seconds_or_a_future_timestamp() {
        let now = 1_795_305_600_000;
        let parse_validity = |value: Option<&Value>, now| parse_future_time("validity", value, now);
        assert_eq!(
            parse_validity(Some(&json!(60)), now).unwrap(),
            Some(now + 60_000)
        );
        assert_eq!(
            parse_validity(Some(&json!("2026-11-22T01:00:00Z")), now).unwrap(),
            Some(now + 3_600_000)
        );
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("2026-11-21T00:00:00Z"),
            json!("soon"),
            json!(true),
        ] {
            assert!(parse_validity(Some(&bad), now).is_err(), "{bad}");
        }
        assert_eq!(parse_validity(None, now).unwrap(), None);
    }

    #[test]
    fn money_is_shown_in_currency_units() {
        assert_eq!(money(50_000), json!(0.05));
        assert_eq!(money(12_050_000), json!(12.05));
        assert_eq!(money(-1), json!(-0.000001));
    }

    #[test]
    fn a_bad_priority_is_named() {
        assert_eq!(
            field_of(r#"{"to":"4917","from":"ACME","text":"hi","priority":"urgent"}"#).as_deref(),
            Some("priority")
        );
    }

    /// Both ways of reading a body, as text to compare.
    fn both_ways(body: &str) -> (Option<String>, String) {
        let borrowed = serde_json::from_slice::<Borrowed<'_>>(body.as_bytes())
            .ok()
            .map(|fast| format!("{:?}", validate(&fast)));
        let tree: Value = serde_json::from_str(body).unwrap();
        let tree = format!("{:?}", parse_item(tree.as_object().unwrap()));
        (borrowed, tree)
    }

    #[test]
    fn a_body_read_without_a_tree_gives_the_same_answer_as_the_tree() {
        let later = "2099-01-01T00:00:00Z";
        for body in [
            r#"{"to":"+4917012345","from":"ACME","text":"Hello"}"#.to_string(),
            format!(
                r#"{{"to":"4917","from":"ACME","text":"hi","priority":"high","validity":"{later}",
                   "client_ref":"r-1","encoding":"ucs2","send_at":null,"callback_url":null}}"#
            ),
            r#"{"to":"4917","from":"ACME","text":"hi","priority":null,"encoding":"auto"}"#
                .to_string(),
            r#"{"to":"4917","from":"ACME","text":"","priority":"urgent"}"#.to_string(),
            r#"{"to":"4917","from":"ACME","text":"hi","encoding":"latin1"}"#.to_string(),
            r#"{"to":"4917","from":"ACME","text":"hi","client_ref":""}"#.to_string(),
            r#"{"to":"4917","from":"ACME","text":"hi","callback_url":"ftp://x"}"#.to_string(),
            r#"{"to":"4917","from":"ACME","text":"hi","validity":0}"#.to_string(),
            r#"{"to":"4917","from":"ACME","text":"hi","send_at":true}"#.to_string(),
            r#"{"to":"4917","from":"   ","text":"hi"}"#.to_string(),
        ] {
            let (borrowed, tree) = both_ways(&body);
            assert_eq!(borrowed.as_deref(), Some(tree.as_str()), "{body}");
        }
        // What the borrowed form does not take falls back to the tree,
        // which names the problem (or, with escapes, reads it).
        for body in [
            r#"{"to":4917,"from":"ACME","text":"hi"}"#,
            r#"{"to":"4917","from":"ACME","text":"hi","txt":"x"}"#,
            r#"{"to":"4917","from":"ACME","text":"a","text":"b"}"#,
            r#"{"to":"4917","from":"ACME","text":"line\nbreak \u00e9"}"#,
        ] {
            assert_eq!(both_ways(body).0, None, "{body}");
        }
        let escaped = parse_send(r#"{"to":"4917","from":"ACME","text":"a\n\u00e9"}"#.as_bytes());
        assert_eq!(&*escaped.unwrap().text, "a\n\u{e9}");
        let repeated =
            parse_send(r#"{"to":"4917","from":"ACME","text":"a","text":"b"}"#.as_bytes());
        assert_eq!(
            &*repeated.unwrap().text,
            "b",
            "the last one wins, as before"
        );
    }

    #[test]
    fn every_accepted_field_is_read_without_a_tree() {
        let all_null: Map<String, Value> = FIELDS
            .iter()
            .map(|field| (field.to_string(), Value::Null))
            .collect();
        let body = serde_json::to_vec(&all_null).unwrap();
        assert!(
            serde_json::from_slice::<Borrowed<'_>>(&body).is_ok(),
            "Borrowed must know every name in FIELDS"
        );
    }

    #[test]
    fn the_202_body_is_the_accepted_json_text() {
        let id = MessageId(0x1234_5678_9abc_def0);
        for client_ref in [None, Some("r-1"), Some("quote \" and \u{e9}")] {
            assert_eq!(
                accepted_body(id, client_ref),
                accepted_json(id, client_ref).to_string(),
                "{client_ref:?}"
            );
        }
    }

    #[test]
    fn a_valid_request_parses() {
        let r =
            parse_send(r#"{"to":"+4917012345","from":"ACME","text":"Hello {world}"}"#.as_bytes())
                .unwrap();
        assert_eq!(&*r.to, "+4917012345");
    }
}
