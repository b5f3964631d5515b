//! `POST /v1/messages/batch`: up to 1,000 messages in one request and one
//! commit, answered item by item in order.
//!
//! Each item is validated on its own; the valid ones (within the tenant's
//! accept rate) go to the store as one job — one transaction, each item in
//! its own savepoint, so an item refused by quota or credit leaves the
//! others in. With an `Idempotency-Key`, the whole answer is stored in the
//! same transaction and replayed for a retry.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use smppd_actors::Registry;
use smppd_sqlite::{Idempotency, MessageId, QueuedMessage, Store, StoreError};

use super::auth::Tenant;
use super::messages::{
    accepted_json, answer, idempotency_key, insert_problem, parse_item, request_hash, Answer,
};
use super::openapi::{BatchRequest, BatchResponse, IdempotencyKey, TenantErrors};
use super::problem::Problem;

/// Most messages in one batch.
pub const MAX_BATCH: usize = 1_000;

/// One item of the batch before the store answers.
#[derive(Clone)]
enum Item {
    /// Refused before the store (validation, accept rate).
    Refused(Problem),
    /// Sent to the store; its result comes back in order.
    Sent { client_ref: Option<String> },
}

/// The answer body: one entry per item, in order.
fn results_json(
    tenant: &str,
    items: &[Item],
    mut results: impl Iterator<Item = Result<MessageId, StoreError>>,
) -> Value {
    let entries: Vec<Value> = items
        .iter()
        .map(|item| match item {
            Item::Refused(problem) => json!({ "error": problem }),
            Item::Sent { client_ref } => match results.next() {
                Some(Ok(id)) => accepted_json(id, client_ref.as_deref()),
                Some(Err(e)) => json!({ "error": insert_problem(tenant, &e) }),
                None => json!({ "error": Problem::store_unavailable("no result for this item") }),
            },
        })
        .collect();
    json!({ "results": entries })
}

/// Prefixes the field of an item's problem with its position.
fn at(index: usize, mut problem: Problem) -> Problem {
    problem.field = Some(match problem.field {
        Some(f) => format!("messages[{index}].{f}"),
        None => format!("messages[{index}]"),
    });
    problem
}

/// Send up to 1,000 messages
///
/// One commit for the batch, answered item by item in order: each item is
/// validated on its own, and one refused by validation, the accept rate,
/// the queue limit or the credit leaves the others in. With an
/// `Idempotency-Key` the whole answer is stored and replayed for a retry.
#[utoipa::path(
    post,
    path = "/v1/messages/batch",
    tag = "messages",
    operation_id = "send_batch",
    params(IdempotencyKey),
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One result per item, in order: accepted (committed) or refused.", body = BatchResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` on the stored answer to a retry"))),
        (status = 400, description = "Malformed JSON (`malformed-body`), no `messages` array of 1 to 1,000 items (`invalid-field`), or a bad `Idempotency-Key` (`invalid-header`).", body = Problem, content_type = "application/problem+json"),
        TenantErrors,
        (status = 413, description = "The body is over 2 MiB.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The `Idempotency-Key` was used before with another body.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store could not commit; nothing was accepted.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn send_batch(
    req: HttpRequest,
    tenant: Tenant,
    payload: web::Payload,
    store: web::Data<Store>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency_key(&req)?;
    let body = super::read_body_up_to(payload, super::MAX_BATCH_BODY).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))?;
    let Some(Value::Array(raw)) = value.as_object().and_then(|o| o.get("messages")) else {
        return Err(Problem::invalid_field(
            "messages",
            "the body must be {\"messages\": [ ... ]}",
        ));
    };
    if raw.is_empty() || raw.len() > MAX_BATCH {
        return Err(Problem::invalid_field(
            "messages",
            format!("'messages' must hold 1 to {MAX_BATCH} messages"),
        ));
    }
    let parsed: Vec<Result<_, Problem>> = raw
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_object() {
            Some(object) => parse_item(object)
                .and_then(|r| r.check_tenant(&tenant.0).map(|()| r))
                .map_err(|p| at(i, p)),
            None => Err(at(
                i,
                Problem::invalid_field("", "each message must be a JSON object"),
            )),
        })
        .collect();
    let valid = parsed.iter().filter(|p| p.is_ok()).count() as u64;
    let (mut granted, retry_after) = match &tenant.0.accept_rate {
        Some(rate) => rate.take_up_to(valid, Instant::now()),
        None => (valid, None),
    };
    let retry_after_s = retry_after.map_or(1, |w| w.as_secs_f64().ceil().max(1.0) as u64);

    let mut items = Vec::with_capacity(parsed.len());
    let mut messages = Vec::new();
    let mut queued = Vec::new();
    for (i, request) in parsed.into_iter().enumerate() {
        match request {
            Err(problem) => items.push(Item::Refused(problem)),
            Ok(_) if granted == 0 => {
                items.push(Item::Refused(at(i, Problem::rate_limited(retry_after_s))))
            }
            Ok(request) => {
                granted -= 1;
                let client_ref = request.client_ref().map(str::to_string);
                let (message, entry) = request.into_new_message(&tenant.0);
                messages.push(message);
                queued.push(entry);
                items.push(Item::Sent { client_ref });
            }
        }
    }

    tenant.0.pace.admit(messages.len() as u64).await;
    let tenant_id = tenant.id().clone();
    let idempotency = key.map(|key| {
        let (render_items, render_tenant) = (items.clone(), tenant_id.clone());
        Idempotency {
            tenant: tenant_id.to_string(),
            key,
            request_hash: request_hash(&body),
            render: Box::new(move |results| {
                let body = results_json(
                    &render_tenant,
                    &render_items,
                    results.iter().map(clone_result),
                );
                (200, body.to_string())
            }),
        }
    });
    let registry = registry.get_ref().clone();
    let (tx, rx) = super::reply::channel::<Answer<Vec<Result<MessageId, StoreError>>>>();
    if messages.is_empty() && idempotency.is_none() {
        tx.send(Answer::Fresh(Vec::new()));
    } else {
        let enqueue_tenant = tenant_id.clone();
        store.insert_batch(
            messages,
            idempotency,
            Box::new(move |outcome| {
                tx.send(answer(outcome, |results| {
                    // In commit order, as the supervisors need.
                    for (result, entry) in results.iter().zip(queued) {
                        if let Ok(id) = result {
                            registry.enqueued(&enqueue_tenant, QueuedMessage { id: *id, ..entry });
                        }
                    }
                    results
                }));
            }),
        );
    }
    let answer = rx
        .await
        .map_err(|_| Problem::store_unavailable("the store stopped; nothing was accepted"))?;
    match answer.into_result(tenant.id()) {
        Ok(results) => {
            Ok(HttpResponse::Ok().json(results_json(tenant.id(), &items, results.into_iter())))
        }
        Err(response) => Ok(*response),
    }
}

/// The store's results are not `Clone` (they may hold a SQLite error); the
/// rendered copy keeps what the answer needs.
fn clone_result(result: &Result<MessageId, StoreError>) -> Result<MessageId, StoreError> {
    match result {
        Ok(id) => Ok(*id),
        Err(StoreError::InsufficientCredit { available, needed }) => {
            Err(StoreError::InsufficientCredit {
                available: *available,
                needed: *needed,
            })
        }
        Err(StoreError::QuotaExceeded { limit }) => {
            Err(StoreError::QuotaExceeded { limit: *limit })
        }
        Err(StoreError::TenantClosed(tenant)) => Err(StoreError::TenantClosed(tenant.clone())),
        Err(other) => Err(StoreError::Corrupt(other.to_string())),
    }
}
