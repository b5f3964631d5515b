//! `POST /v1/messages`, `GET /v1/messages/{id}` and `GET /v1/connections`.
//!
//! The 202 of a POST is sent only after the store's writer has committed
//! the row: the handler waits on the commit callback. The same callback —
//! on the writer thread, in commit order — tells the tenant's supervisor
//! that work arrived.

use std::time::{Duration, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use smppd_actors::smpp::pdu;
use smppd_actors::Registry;
use smppd_sqlite::{MessageId, MessageRecord, NewMessage, QueuedMessage, Store};

use super::auth::Tenant;
use super::problem::Problem;

/// The fields `POST /v1/messages` accepts.
const FIELDS: &[&str] = &["to", "from", "text"];

/// A validated send request.
#[derive(Debug)]
struct SendRequest {
    to: String,
    from: String,
    text: String,
}

fn required_string(body: &Map<String, Value>, field: &str) -> Result<String, Problem> {
    match body.get(field) {
        None | Some(Value::Null) => Err(Problem::invalid_field(
            field,
            format!("'{field}' is required"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(Problem::invalid_field(
            field,
            format!("'{field}' must not be empty"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Problem::invalid_field(
            field,
            format!("'{field}' must be a string"),
        )),
    }
}

fn parse_send(bytes: &[u8]) -> Result<SendRequest, Problem> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(Problem::malformed_body("the body must be a JSON object"));
    };
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Problem::invalid_field(
            unknown,
            format!(
                "unknown field '{unknown}' (accepted: {})",
                FIELDS.join(", ")
            ),
        ));
    }
    let to = required_string(&body, "to")?;
    let from = required_string(&body, "from")?;
    let text = required_string(&body, "text")?;
    let digits = to.strip_prefix('+').unwrap_or(&to);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_field(
            "to",
            "'to' must be a phone number: digits with an optional leading '+', at most 20",
        ));
    }
    let from_digits = from.strip_prefix('+').unwrap_or(&from);
    let numeric = from_digits.bytes().all(|b| b.is_ascii_digit());
    if (numeric && from_digits.len() > 20)
        || (!numeric && (from.len() > 11 || !from.bytes().all(|b| (0x20..0x7f).contains(&b))))
    {
        return Err(Problem::invalid_field(
            "from",
            "'from' must be a phone number (at most 20 digits) or an alphanumeric sender of at most 11 ASCII characters",
        ));
    }
    pdu::validate_addresses(&from, &to).map_err(|e| Problem::invalid_field("to", e.to_string()))?;
    pdu::encode_single_part(&text).map_err(|e| Problem::invalid_field("text", e.to_string()))?;
    Ok(SendRequest { to, from, text })
}

/// `POST /v1/messages`
pub async fn send(
    tenant: Tenant,
    payload: web::Payload,
    store: web::Data<Store>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
    let body = super::read_body(payload).await?;
    let request = parse_send(&body)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let queued = QueuedMessage {
        id: MessageId(0),
        source: request.from.clone(),
        destination: request.to.clone(),
        text: request.text.clone(),
        attempts: 0,
    };
    let registry = registry.get_ref().clone();
    let tenant_id = tenant.0.clone();
    store.insert_message(
        NewMessage {
            tenant: tenant.0.to_string(),
            source: request.from,
            destination: request.to,
            text: request.text,
        },
        Box::new(move |result| {
            if let Ok(id) = &result {
                registry.enqueued(&tenant_id, QueuedMessage { id: *id, ..queued });
            }
            let _ = tx.send(result);
        }),
    );
    match rx.await {
        Ok(Ok(id)) => {
            Ok(HttpResponse::Accepted().json(json!({"id": id.to_string(), "status": "queued"})))
        }
        Ok(Err(e)) => {
            log::error!("[{}] storing a message failed: {e}", tenant.0);
            Err(Problem::store_unavailable(
                "the message could not be stored; it was not accepted",
            ))
        }
        Err(_) => Err(Problem::store_unavailable(
            "the store stopped; the message was not accepted",
        )),
    }
}

/// `GET /v1/messages/{id}`
pub async fn get(
    tenant: Tenant,
    path: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let not_found = || Problem::not_found("no such message");
    let id: MessageId = path.parse().map_err(|()| not_found())?;
    let store = store.get_ref().clone();
    let tenant_id = tenant.0.clone();
    let record = web::block(move || store.get_message(&tenant_id, id))
        .await
        .map_err(|_| Problem::store_unavailable("the read was cancelled"))?
        .map_err(|e| {
            log::error!("[{}] reading message {id} failed: {e}", tenant.0);
            Problem::store_unavailable("the message could not be read")
        })?;
    match record {
        Some(record) => Ok(HttpResponse::Ok().json(message_json(&record))),
        None => Err(not_found()),
    }
}

/// `GET /v1/stats`: the caller's counters since the process started.
pub async fn stats(tenant: Tenant, registry: web::Data<Registry>) -> HttpResponse {
    let counters: Map<String, Value> = registry
        .stats(&tenant.0)
        .map(|s| s.snapshot())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.to_string(), Value::from(value)))
        .collect();
    HttpResponse::Ok().json(counters)
}

/// `GET /v1/connections`
pub async fn connections(tenant: Tenant, registry: web::Data<Registry>) -> HttpResponse {
    let sessions = registry.connections(&tenant.0).await.unwrap_or_default();
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "channel": s.channel,
                "session": s.session,
                "bind": s.bind,
                "state": s.state,
                "since": rfc3339(s.since.duration_since(UNIX_EPOCH).unwrap_or_default()),
                "last_error": s.last_error,
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

fn message_json(m: &MessageRecord) -> Value {
    let time = |ms: i64| rfc3339(Duration::from_millis(ms.max(0) as u64));
    json!({
        "id": m.id.to_string(),
        "status": m.status.as_str(),
        "to": m.destination,
        "from": m.source,
        "text": m.text,
        "channel": m.channel,
        "smsc_message_id": m.smsc_message_id,
        "attempts": m.attempts,
        "error": m.error.as_ref().map(|e| json!({"code": e.code, "name": e.name})),
        "created_at": time(m.created_at_ms),
        "submitted_at": m.submitted_at_ms.map(time),
        "done_at": m.done_at_ms.map(time),
        "updated_at": time(m.updated_at_ms),
    })
}

/// Formats a time since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> Option<String> {
        parse_send(body.as_bytes()).err().and_then(|p| p.field)
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(
            rfc3339(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_millis(1_795_305_600_123)),
            "2026-11-22T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
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
            "a".repeat(161)
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
    fn a_valid_request_parses() {
        let r =
            parse_send(r#"{"to":"+4917012345","from":"ACME","text":"Hello {world}"}"#.as_bytes())
                .unwrap();
        assert_eq!(r.to, "+4917012345");
    }
}
