//! `GET /v1/messages` and `GET /v1/inbound`: the caller's own messages,
//! newest first, with a stable cursor.
//!
//! The cursor is the last id of the previous page: the next page is
//! everything below it, so messages arriving meanwhile never shift a page.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use smppd_actors::smpp::time;
use smppd_sqlite::{MessageFilter, MessageId, MessageStatus, Store};

use super::auth::Tenant;
use super::messages::message_json;
use super::openapi::{InboundPage, ListMessagesQuery, MessagePage, PageQuery, TenantErrors};
use super::problem::Problem;
use super::read_store;

/// Default and largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

fn check_params(params: &HashMap<String, String>, known: &[&str]) -> Result<(), Problem> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(Problem::invalid_field(
            unknown,
            format!(
                "unknown query parameter '{unknown}' (accepted: {})",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn limit(params: &HashMap<String, String>) -> Result<usize, Problem> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Problem::invalid_field("limit", format!("'limit' must be from 1 to {MAX_LIMIT}"))
            }),
    }
}

/// `cursor` (a decimal row id from the previous page) and `limit`, the
/// only parameters of a list paged by row id (`/v1/inbound`, dead
/// letters).
pub(crate) fn page_params(
    params: &HashMap<String, String>,
) -> Result<(Option<i64>, usize), Problem> {
    check_params(params, &["cursor", "limit"])?;
    let before = params
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Problem::invalid_field("cursor", "not a cursor from a previous page"))
        })
        .transpose()?;
    Ok((before, limit(params)?))
}

/// The `next_cursor` of a page: the last item's id when the page is full
/// (there may be more), else none.
pub(crate) fn next_cursor<T>(
    page: &[T],
    limit: usize,
    id: impl Fn(&T) -> String,
) -> Option<String> {
    (page.len() == limit).then(|| page.last().map(id)).flatten()
}

fn timestamp(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Problem> {
    params
        .get(name)
        .map(|t| {
            time::parse_rfc3339(t).ok_or_else(|| {
                Problem::invalid_field(name, format!("'{name}' must be an RFC 3339 time"))
            })
        })
        .transpose()
}

/// List the caller's messages
///
/// Newest first. `next_cursor` is set when the page is full: pass it back
/// as `cursor` (with the same filters) for the next page. Messages that
/// arrive meanwhile never shift a page.
#[utoipa::path(
    get,
    path = "/v1/messages",
    tag = "messages",
    operation_id = "list_messages",
    params(ListMessagesQuery),
    responses(
        (status = 200, description = "A page of messages.", body = MessagePage),
        (status = 400, description = "An unknown or bad query parameter (`invalid-field`, naming it).", body = Problem, content_type = "application/problem+json"),
        TenantErrors,
        (status = 503, description = "The list could not be read.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_messages(
    tenant: Tenant,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let params = query.into_inner();
    check_params(&params, &["status", "since", "until", "cursor", "limit"])?;
    let status = params
        .get("status")
        .map(|s| {
            MessageStatus::parse(s).ok_or_else(|| {
                Problem::invalid_field("status", "'status' must be one of queued, submitted, delivered, undeliverable, expired, rejected, failed, unknown")
            })
        })
        .transpose()?;
    let before = params
        .get("cursor")
        .map(|c| {
            c.parse::<MessageId>()
                .map_err(|()| Problem::invalid_field("cursor", "not a cursor from a previous page"))
        })
        .transpose()?;
    let filter = MessageFilter {
        status,
        since_ms: timestamp(&params, "since")?,
        until_ms: timestamp(&params, "until")?,
        before,
    };
    let limit = limit(&params)?;
    let (store, id) = (store.get_ref().clone(), tenant.id().clone());
    let page = read_store(&tenant, "listing", "the list", move || {
        store.list_messages(&id, &filter, limit)
    })
    .await?;
    let next = next_cursor(&page, limit, |m| m.id.to_string());
    let messages: Vec<Value> = page.iter().map(message_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "messages": messages, "next_cursor": next })))
}

/// List the caller's inbound messages
///
/// Mobile-originated messages, newest first; a message sent in parts is
/// one entry, with the joined text, once its last part arrived.
#[utoipa::path(
    get,
    path = "/v1/inbound",
    tag = "inbound",
    operation_id = "list_inbound",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of inbound messages.", body = InboundPage),
        (status = 400, description = "An unknown or bad query parameter (`invalid-field`, naming it).", body = Problem, content_type = "application/problem+json"),
        TenantErrors,
        (status = 503, description = "The list could not be read.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_inbound(
    tenant: Tenant,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let (before, limit) = page_params(&query.into_inner())?;
    let (store, id) = (store.get_ref().clone(), tenant.id().clone());
    let page = read_store(&tenant, "listing", "the list", move || {
        store.list_inbound(&id, before, limit)
    })
    .await?;
    let next = next_cursor(&page, limit, |m| m.id.to_string());
    let inbound: Vec<Value> = page
        .iter()
        .map(|m| {
            json!({
                "id": m.id.to_string(),
                "channel": m.channel,
                "from": m.source,
                "to": m.destination,
                "text": m.text,
                "received_at": time::rfc3339(m.received_at_ms),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "inbound": inbound, "next_cursor": next })))
}
