//! The operator API under `/admin/v1`, behind `http.admin_token` (and
//! disabled when no token is configured: tenant keys never work here).
//!
//! Built so far: credit top-ups, API key rotation and every tenant's
//! sessions. Creating,
//! changing and deleting tenants and channels at run time is not built
//! yet; tenants come from the config file.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use smppd_actors::smpp::time;
use smppd_actors::Registry;
use smppd_sqlite::Store;

use super::auth::{key_hash, new_key, Keys};
use super::messages::money;
use super::ops::AdminToken;
use super::problem::Problem;
use crate::config::micros;

fn operator(req: &HttpRequest, admin: &AdminToken) -> Result<(), Problem> {
    match &admin.0 {
        None => Err(Problem::not_found(
            "the operator API is off: set http.admin_token",
        )),
        Some(_) if admin.admits(req) => Ok(()),
        Some(_) => Err(Problem::unauthorized(
            "the operator API needs the admin token",
        )),
    }
}

/// `POST /admin/v1/tenants/{id}/credit` with `{"amount": 12.5}`: adds to
/// (or, negative, takes from) the tenant's available credit.
pub async fn top_up(
    req: HttpRequest,
    admin: web::Data<AdminToken>,
    path: web::Path<String>,
    payload: web::Payload,
    store: web::Data<Store>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
    operator(&req, &admin)?;
    let tenant = path.into_inner();
    if registry.stats(&tenant).is_none() {
        return Err(Problem::not_found("no such tenant"));
    }
    let body = super::read_body(payload).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))?;
    let amount = value
        .get("amount")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite() && a.abs() <= 1e12 && *a != 0.0)
        .ok_or_else(|| Problem::invalid_field("amount", "'amount' must be a non-zero number"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.top_up(&tenant, micros(amount), Box::new(move |r| drop(tx.send(r))));
    let balance = rx
        .await
        .map_err(|_| Problem::store_unavailable("the store stopped"))?
        .map_err(|e| {
            log::error!("[{tenant}] top-up failed: {e}");
            Problem::store_unavailable("the top-up could not be stored")
        })?;
    log::info!("[{tenant}] credit changed by {amount}");
    Ok(HttpResponse::Ok().json(json!({
        "tenant": tenant,
        "available": money(balance.available),
        "reserved": money(balance.reserved),
        "spent": money(balance.spent),
    })))
}

/// Longest grace period a rotation accepts: 30 days.
const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

/// `POST /admin/v1/tenants/{id}/keys/rotate` with an optional
/// `{"grace_seconds": 3600}`: issues a new API key for the tenant, returned
/// once in the response and stored only as its SHA-256 digest. The
/// tenant's other keys keep working for the grace period (0, the default,
/// revokes them at once). Survives restarts; the config file's key is not
/// brought back by one.
pub async fn rotate_key(
    req: HttpRequest,
    admin: web::Data<AdminToken>,
    path: web::Path<String>,
    payload: web::Payload,
    store: web::Data<Store>,
    keys: web::Data<Keys>,
) -> Result<HttpResponse, Problem> {
    operator(&req, &admin)?;
    let tenant = path.into_inner();
    if !keys.has_tenant(&tenant) {
        return Err(Problem::not_found("no such tenant"));
    }
    let body = super::read_body(payload).await?;
    let grace = if body.iter().all(u8::is_ascii_whitespace) {
        0
    } else {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))?;
        match value.get("grace_seconds") {
            None | Some(Value::Null) => 0,
            Some(v) => {
                v.as_u64()
                    .filter(|g| *g <= MAX_GRACE_SECONDS)
                    .ok_or_else(|| {
                        Problem::invalid_field(
                    "grace_seconds",
                    format!("'grace_seconds' must be a whole number from 0 to {MAX_GRACE_SECONDS}"),
                )
                    })?
            }
        }
    };
    let key = new_key();
    let hash = key_hash(&key);
    let now = time::unix_ms();
    let old_expire_at = now + grace as i64 * 1000;
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.rotate_api_key(
        &tenant,
        hash,
        old_expire_at,
        Box::new(move |r| drop(tx.send(r))),
    );
    rx.await
        .map_err(|_| Problem::store_unavailable("the store stopped"))?
        .map_err(|e| {
            log::error!("[{tenant}] key rotation failed: {e}");
            Problem::store_unavailable("the new key could not be stored")
        })?;
    keys.rotate(&tenant, hash, old_expire_at);
    log::info!("[{tenant}] API key rotated; old keys expire in {grace} s");
    Ok(HttpResponse::Created().json(json!({
        "tenant": tenant,
        "api_key": key,
        "old_keys_expire_at": time::rfc3339(old_expire_at),
    })))
}

/// `GET /admin/v1/connections`: every session of every tenant.
pub async fn connections(
    req: HttpRequest,
    admin: web::Data<AdminToken>,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
    operator(&req, &admin)?;
    let mut all = Vec::new();
    for (tenant, _) in registry.all_stats() {
        for s in registry.connections(&tenant).await.unwrap_or_default() {
            all.push(json!({
                "tenant": tenant,
                "channel": s.channel,
                "session": s.session,
                "bind": s.bind,
                "state": s.state,
                "since": time::rfc3339(time::system_ms(s.since)),
                "last_error": s.last_error,
                "window_in_use": s.window_in_use,
                "window_size": s.window_size,
                "rate_limit": s.rate_limit,
                "submitted": s.submitted,
                "throttled": s.throttled,
                "expired": s.expired,
            }));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "connections": all })))
}
