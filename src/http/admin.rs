//! The operator API under `/admin/v1`, behind `http.admin_token` (and
//! disabled when no token is configured: tenant keys never work here).
//!
//! Tenants and their channels are created, listed, changed, suspended,
//! reactivated and deleted here, live (the work is done by
//! [`Directory`]); credit is topped up, keys rotated, and every session of
//! every tenant listed. Bodies use the config file's keys.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use smppd_actors::smpp::time;
use smppd_actors::Registry;
use smppd_sqlite::Store;

use super::auth::{key_hash, new_key, Keys};
use super::messages::money;
#[allow(unused_imports)] // Named only in the `#[utoipa::path]` annotations.
use super::openapi::operator::{
    AdminConnections, BodyErrors, ChangeErrors, ChannelList, ChannelPatch, ChannelView,
    CreatedTenant, CreditBalance, CreditTopUp, DeletedTenant, NewChannel, NewTenant,
    OperatorErrors, RotateKey, RotatedKey, TenantList, TenantPatch, TenantView,
};
use super::ops::AdminToken;
use super::problem::Problem;
use crate::config::micros;
use crate::config::ConfigError;
use crate::tenants::{self, write, AdminError, Directory, Managed};

/// A request that carries the admin token: extracted first by every
/// operator handler, so nothing (not even the body) is read without it.
/// Without an `http.admin_token` the operator API is off (404).
pub struct Operator;

impl actix_web::FromRequest for Operator {
    type Error = Problem;
    type Future = std::future::Ready<Result<Operator, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let admin = req.app_data::<web::Data<AdminToken>>();
        std::future::ready(match admin.map(|a| (a.0.is_some(), a.admits(req))) {
            None | Some((false, _)) => Err(Problem::not_found(
                "the operator API is off: set http.admin_token",
            )),
            Some((true, true)) => Ok(Operator),
            Some((true, false)) => Err(Problem::unauthorized(
                "the operator API needs the admin token",
            )),
        })
    }
}

/// `POST /admin/v1/tenants/{id}/credit` with `{"amount": 12.5}`: adds to
/// (or, negative, takes from) the tenant's available credit.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/credit",
    tag = "admin",
    operation_id = "top_up_credit",
    params(("id" = String, Path, description = "Tenant id.")),
    request_body(content = CreditTopUp, content_type = "application/json"),
    responses(
        (status = 200, description = "The new balance, committed.", body = CreditBalance),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn top_up(
    _operator: Operator,
    path: web::Path<String>,
    payload: web::Payload,
    store: web::Data<Store>,
    keys: web::Data<Keys>,
) -> Result<HttpResponse, Problem> {
    let tenant = path.into_inner();
    if !keys.has_tenant(&tenant) {
        return Err(Problem::not_found("no such tenant"));
    }
    let value = json_body(payload).await?;
    if !value.is_object() {
        return Err(Problem::malformed_body("the body must be a JSON object"));
    }
    let amount = value
        .get("amount")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite() && a.abs() <= 1e12 && *a != 0.0)
        .ok_or_else(|| Problem::invalid_field("amount", "'amount' must be a non-zero number"))?;
    let balance = write(|done| store.top_up(&tenant, micros(amount), done))
        .await
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
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/keys/rotate",
    tag = "admin",
    operation_id = "rotate_api_key",
    params(("id" = String, Path, description = "Tenant id.")),
    request_body(content = Option<RotateKey>, content_type = "application/json", description = "Optional; an empty body means no grace period."),
    responses(
        (status = 201, description = "The new key, shown this once.", body = RotatedKey),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn rotate_key(
    _operator: Operator,
    path: web::Path<String>,
    payload: web::Payload,
    store: web::Data<Store>,
    keys: web::Data<Keys>,
) -> Result<HttpResponse, Problem> {
    let tenant = path.into_inner();
    if !keys.has_tenant(&tenant) {
        return Err(Problem::not_found("no such tenant"));
    }
    let body = super::read_body(payload).await?;
    let grace = if body.iter().all(u8::is_ascii_whitespace) {
        0
    } else {
        let value = parse_json(&body)?;
        if !value.is_object() && !value.is_null() {
            return Err(Problem::malformed_body(
                "the body must be a JSON object (or empty, or null)",
            ));
        }
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
    write(|done| store.rotate_api_key(&tenant, hash, old_expire_at, done))
        .await
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
#[utoipa::path(
    get,
    path = "/admin/v1/connections",
    tag = "admin",
    operation_id = "list_all_connections",
    responses(
        (status = 200, description = "Every session slot of every running tenant.", body = AdminConnections),
        OperatorErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn connections(
    _operator: Operator,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, Problem> {
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
                "tls": s.tls,
                "window_in_use": s.window_in_use,
                "window_size": s.window_size,
                "rate_limit": s.rate_limit,
                "submitted": s.submitted,
                "throttled": s.throttled,
                "expired": s.expired,
                "window_wait_timeouts": s.window_wait_timeouts,
            }));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "connections": all })))
}

impl From<AdminError> for Problem {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound(detail) => Problem::not_found(detail),
            AdminError::Conflict(detail) => Problem::conflict(detail),
            AdminError::Invalid { field, detail } if field.is_empty() => {
                Problem::malformed_body(detail)
            }
            AdminError::Invalid { field, detail } => Problem::invalid_field(&field, detail),
            AdminError::Config(ConfigError::Invalid { key, message }) => {
                Problem::invalid_field(&key, format!("{key}: {message}"))
            }
            AdminError::Config(other) => Problem::malformed_body(other.to_string()),
            AdminError::Store(e) => {
                log::error!("operator change not stored: {e}");
                Problem::store_unavailable("the change could not be stored; nothing was changed")
            }
        }
    }
}

/// The body as JSON (any value; the directory says what it must be).
async fn json_body(payload: web::Payload) -> Result<Value, Problem> {
    parse_json(&super::read_body(payload).await?)
}

fn parse_json(body: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::malformed_body(format!("the body is not valid JSON: {e}")))
}

/// `GET /admin/v1/tenants`: every tenant with its settings (secrets left
/// out) and `status` (`active` or `suspended`).
#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    tag = "admin",
    operation_id = "list_tenants",
    responses(
        (status = 200, description = "Every tenant, by id.", body = TenantList),
        OperatorErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn list_tenants(
    _operator: Operator,
    directory: web::Data<Directory>,
) -> Result<HttpResponse, Problem> {
    let all: Vec<Value> = directory.list().await.iter().map(tenants::view).collect();
    Ok(HttpResponse::Ok().json(json!({ "tenants": all })))
}

/// `POST /admin/v1/tenants` with a `[[tenants]]`-shaped body: creates the
/// tenant and starts its sessions. 201 with the tenant and, unless the
/// body chose one, its generated `api_key` (shown this once).
#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    tag = "admin",
    operation_id = "create_tenant",
    request_body(content = NewTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "Created and started; its key is in the answer unless the body chose one.", body = CreatedTenant,
            headers(("Location" = String, description = "`/admin/v1/tenants/{id}`"))),
        (status = 409, description = "The id exists, or the chosen `api_key` is in use (`conflict`).", body = Problem, content_type = "application/problem+json"),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn create_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = json_body(payload).await?;
    let (tenant, key) = directory.create(body).await?;
    let mut answer = json!({ "tenant": tenants::view(&tenant) });
    if let Some(key) = key {
        answer["api_key"] = Value::from(key);
    }
    Ok(HttpResponse::Created()
        .insert_header((
            "location",
            format!("/admin/v1/tenants/{}", tenant.config.id),
        ))
        .json(answer))
}

/// `GET /admin/v1/tenants/{id}`.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{id}",
    tag = "admin",
    operation_id = "get_tenant",
    params(("id" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "The tenant.", body = TenantView),
        OperatorErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn get_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = directory
        .get(&path)
        .await
        .ok_or_else(|| Problem::not_found("no such tenant"))?;
    Ok(HttpResponse::Ok().json(tenants::view(&tenant)))
}

/// `PATCH /admin/v1/tenants/{id}` with a JSON merge patch of its settings
/// (`null` restores a default): applied from the next request on.
#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{id}",
    tag = "admin",
    operation_id = "update_tenant",
    params(("id" = String, Path, description = "Tenant id.")),
    request_body(content = TenantPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The tenant with its new settings, in force from the next request.", body = TenantView),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn update_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let patch = json_body(payload).await?;
    let tenant = directory.update(&path, patch).await?;
    Ok(HttpResponse::Ok().json(tenants::view(&tenant)))
}

/// `DELETE /admin/v1/tenants/{id}`: keys stop working at once, sessions
/// unbind, and everything the tenant owns is removed; answers with what
/// was removed.
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{id}",
    tag = "admin",
    operation_id = "delete_tenant",
    params(("id" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "Deleted: its keys, sessions and data are gone.", body = DeletedTenant),
        OperatorErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn delete_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let removed = directory.delete(&path).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": path.as_str(),
        "deleted": true,
        "messages_removed": removed.messages,
        "queued_removed": removed.queued,
        "inbound_removed": removed.inbound,
        "webhooks_removed": removed.webhooks,
    })))
}

/// `POST /admin/v1/tenants/{id}/suspend`: API calls refused with 403 from
/// the next request on, sessions unbound; queued messages wait.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/suspend",
    tag = "admin",
    operation_id = "suspend_tenant",
    params(("id" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "Suspended (or already was): sessions closed, its calls get `403`.", body = TenantView),
        OperatorErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn suspend_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = directory.set_suspended(&path, true).await?;
    Ok(HttpResponse::Ok().json(tenants::view(&tenant)))
}

/// `POST /admin/v1/tenants/{id}/reactivate`: sessions bind again and the
/// queued messages go out.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/reactivate",
    tag = "admin",
    operation_id = "reactivate_tenant",
    params(("id" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "Active (or already was): sessions bind, the queue goes out.", body = TenantView),
        OperatorErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn reactivate_tenant(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = directory.set_suspended(&path, false).await?;
    Ok(HttpResponse::Ok().json(tenants::view(&tenant)))
}

/// One channel of a tenant as an operator sees it (no password).
fn channel_json(tenant: &Managed, name: &str) -> Option<Value> {
    let channel = tenant.config.channels.iter().find(|c| c.name == name)?;
    let mut value = serde_json::to_value(channel).ok()?;
    tenants::channel_view(&mut value);
    Some(value)
}

/// `GET /admin/v1/tenants/{id}/channels`.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{id}/channels",
    tag = "admin",
    operation_id = "list_channels",
    params(("id" = String, Path, description = "Tenant id.")),
    responses(
        (status = 200, description = "The tenant's channels.", body = ChannelList),
        OperatorErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn list_channels(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = directory
        .get(&path)
        .await
        .ok_or_else(|| Problem::not_found("no such tenant"))?;
    let view = tenants::view(&tenant);
    Ok(HttpResponse::Ok().json(json!({ "channels": view["channels"] })))
}

/// `POST /admin/v1/tenants/{id}/channels` with a `[[tenants.channels]]`
/// body: its sessions connect at once.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{id}/channels",
    tag = "admin",
    operation_id = "create_channel",
    params(("id" = String, Path, description = "Tenant id.")),
    request_body(content = NewChannel, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; its sessions connect.", body = ChannelView,
            headers(("Location" = String, description = "`/admin/v1/tenants/{id}/channels/{name}`"))),
        (status = 409, description = "The tenant has a channel of that name (`conflict`).", body = Problem, content_type = "application/problem+json"),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn create_channel(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = json_body(payload).await?;
    let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
    let tenant = directory.add_channel(&path, body).await?;
    let name = name.unwrap_or_default();
    let channel = channel_json(&tenant, &name).unwrap_or(Value::Null);
    Ok(HttpResponse::Created()
        .insert_header((
            "location",
            format!("/admin/v1/tenants/{}/channels/{name}", path.as_str()),
        ))
        .json(channel))
}

/// `GET /admin/v1/tenants/{id}/channels/{name}`.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{id}/channels/{name}",
    tag = "admin",
    operation_id = "get_channel",
    params(("id" = String, Path, description = "Tenant id."), ("name" = String, Path, description = "Channel name.")),
    responses(
        (status = 200, description = "The channel.", body = ChannelView),
        OperatorErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn get_channel(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, name) = path.into_inner();
    let tenant = directory
        .get(&id)
        .await
        .ok_or_else(|| Problem::not_found("no such tenant"))?;
    let channel =
        channel_json(&tenant, &name).ok_or_else(|| Problem::not_found("no such channel"))?;
    Ok(HttpResponse::Ok().json(channel))
}

/// `PATCH /admin/v1/tenants/{id}/channels/{name}` with a JSON merge
/// patch: the channel's sessions are replaced by ones with the new
/// settings; other channels are not touched.
#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{id}/channels/{name}",
    tag = "admin",
    operation_id = "update_channel",
    params(("id" = String, Path, description = "Tenant id."), ("name" = String, Path, description = "Channel name.")),
    request_body(content = ChannelPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The channel with its new settings; its sessions are replaced.", body = ChannelView),
        OperatorErrors, BodyErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn update_channel(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let (id, name) = path.into_inner();
    let patch = json_body(payload).await?;
    let tenant = directory.update_channel(&id, &name, patch).await?;
    let channel = channel_json(&tenant, &name).unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(channel))
}

/// `DELETE /admin/v1/tenants/{id}/channels/{name}`: its sessions unbind
/// and what they held goes back to the tenant's queue. 204.
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{id}/channels/{name}",
    tag = "admin",
    operation_id = "delete_channel",
    params(("id" = String, Path, description = "Tenant id."), ("name" = String, Path, description = "Channel name.")),
    responses(
        (status = 204, description = "Removed; its sessions unbind."),
        OperatorErrors, ChangeErrors,
    ),
    security(("admin_token" = []))
)]
pub async fn delete_channel(
    _operator: Operator,
    directory: web::Data<Directory>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, name) = path.into_inner();
    directory.delete_channel(&id, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
