//! A tenant's webhook dead letters: deliveries that ran out of attempts.
//! Listed newest first and replayed one by one (each replay gets a fresh
//! set of attempts).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use smppd_actors::smpp::time;
use smppd_sqlite::{MessageId, Store};

use super::auth::Tenant;
use super::openapi::{DeadLetterPage, PageQuery, ReplayAccepted, TenantErrors};
use super::problem::Problem;

/// List the caller's dead letters
///
/// Webhook deliveries that ran out of attempts, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/dead-letters",
    tag = "webhooks",
    operation_id = "list_dead_letters",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of dead letters.", body = DeadLetterPage),
        (status = 400, description = "An unknown or bad query parameter (`invalid-field`, naming it).", body = Problem, content_type = "application/problem+json"),
        TenantErrors,
        (status = 503, description = "The dead letters could not be read.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list(
    tenant: Tenant,
    query: web::Query<HashMap<String, String>>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let (before, limit) = super::listing::page_params(&query.into_inner())?;
    let (reader, id) = (store.get_ref().clone(), tenant.id().clone());
    let page = super::read_store(
        &tenant,
        "listing dead letters",
        "the dead letters",
        move || reader.dead_webhooks(&id, before, limit),
    )
    .await?;
    let next = super::listing::next_cursor(&page, limit, |d| d.id.to_string());
    let letters: Vec<Value> = page
        .iter()
        .map(|d| {
            let subject = if d.kind == "status" {
                MessageId(d.ref_id).to_string()
            } else {
                d.ref_id.to_string()
            };
            json!({
                "id": d.id.to_string(),
                "kind": d.kind,
                "subject": subject,
                "status": d.status,
                "url": d.url,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "created_at": time::rfc3339(d.created_at_ms),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "dead_letters": letters, "next_cursor": next })))
}

/// Replay a dead letter
///
/// The delivery gets a fresh set of attempts. No request body.
#[utoipa::path(
    post,
    path = "/v1/webhooks/dead-letters/{id}/replay",
    tag = "webhooks",
    operation_id = "replay_dead_letter",
    params(("id" = String, Path, description = "The dead letter's id (a decimal number).", pattern = "^[0-9]{1,18}$")),
    responses(
        (status = 202, description = "The delivery is pending again.", body = ReplayAccepted),
        TenantErrors,
        (status = 404, description = "Not one of the caller's dead letters.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The replay could not be stored.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn replay(
    tenant: Tenant,
    path: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, Problem> {
    let not_found = || Problem::not_found("no such dead letter");
    let id: i64 = path.parse().map_err(|_| not_found())?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.replay_webhook(tenant.id(), id, Box::new(move |r| drop(tx.send(r))));
    match rx.await {
        Ok(Ok(true)) => {
            Ok(HttpResponse::Accepted().json(json!({ "id": id.to_string(), "state": "pending" })))
        }
        Ok(Ok(false)) => Err(not_found()),
        _ => Err(Problem::store_unavailable("the replay could not be stored")),
    }
}
