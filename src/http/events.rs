//! `GET /v1/events`: the caller's live events as Server-Sent Events.
//!
//! `event: status` — `{"id","status","error","at"}` when one of its
//! messages changes status; `event: inbound` — an MO message; `event:
//! lagged` — `{"missed": n}` when this subscriber fell more than
//! `smppd_actors::events::BUFFER` events behind. A comment line every 15 s
//! keeps proxies from closing an idle stream. Only the caller's own
//! tenant's events are ever on its stream: each tenant has its own
//! channel.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde_json::json;
use smppd_actors::events::Event;
use smppd_actors::smpp::time;
use smppd_actors::Registry;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Tenant;
use super::openapi::TenantErrors;
use super::problem::Problem;

const KEEPALIVE: Duration = Duration::from_secs(15);

/// Flips to `true` when the engine shuts down, so open streams end at once
/// instead of holding the graceful HTTP stop for its full timeout.
#[derive(Debug, Clone)]
pub struct Closing(pub tokio::sync::watch::Receiver<bool>);

fn frame(event: &Event) -> Bytes {
    let (name, data) = match event {
        Event::Status {
            id,
            status,
            error,
            at_ms,
        } => (
            "status",
            json!({
                "id": id.to_string(),
                "status": status.as_str(),
                "error": error.as_ref().map(|e| json!({"code": e.code, "name": e.name})),
                "at": time::rfc3339(*at_ms),
            }),
        ),
        Event::Inbound {
            id,
            channel,
            source,
            destination,
            text,
            at_ms,
        } => (
            "inbound",
            json!({
                "id": id.to_string(),
                "channel": channel,
                "from": source,
                "to": destination,
                "text": text,
                "received_at": time::rfc3339(*at_ms),
            }),
        ),
    };
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The caller's live events
///
/// Server-Sent Events, for as long as the client stays: `event: status`
/// with `{"id","status","error","at"}` when one of the caller's messages
/// changes status, `event: inbound` with an inbound message, `event:
/// lagged` with `{"missed": n}` when the subscriber fell behind, and a
/// `: keepalive` comment every 15 s. Nothing is kept for a client that
/// reconnects.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "inbound",
    operation_id = "stream_events",
    responses(
        (status = 200, description = "The event stream.", body = String, content_type = "text/event-stream",
            example = "event: status\ndata: {\"at\":\"2026-11-22T07:45:25.120Z\",\"error\":null,\"id\":\"01a2020b5def0000\",\"status\":\"delivered\"}\n\n"),
        TenantErrors,
        (status = 404, description = "The caller's tenant is not running.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn events(
    tenant: Tenant,
    registry: web::Data<Registry>,
    closing: web::Data<Closing>,
) -> Result<HttpResponse, Problem> {
    let stats = registry
        .stats(tenant.id())
        .ok_or_else(|| Problem::not_found("this tenant is not running"))?;
    let receiver = stats.events.subscribe();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let closing = closing.0.clone();
    let state = (receiver, keepalive, closing);
    let stream = futures_util::stream::unfold(
        state,
        |(mut receiver, mut keepalive, mut closing)| async move {
            if *closing.borrow() {
                return None;
            }
            let chunk = tokio::select! {
                _ = closing.changed() => return None,
                received = receiver.recv() => match received {
                    Ok(event) => frame(&event),
                    Err(RecvError::Lagged(missed)) => {
                        Bytes::from(format!("event: lagged\ndata: {}\n\n", json!({ "missed": missed })))
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            };
            Some((
                Ok::<_, actix_web::Error>(chunk),
                (receiver, keepalive, closing),
            ))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(Box::pin(stream)))
}
