//! The HTTP API (actix-web): routes, body limits, and the JSON error
//! handlers that keep every error a problem document.

pub mod admin;
pub mod auth;
pub mod batch;
pub mod dead_letters;
pub mod events;
pub mod listing;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod problem;
mod reply;

use actix_web::http::Method;
use actix_web::{guard, web, HttpRequest, HttpResponse, Route};

use problem::Problem;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Largest batch request body: 1,000 messages of a few hundred bytes.
pub const MAX_BATCH_BODY: usize = 2 * 1024 * 1024;

/// Reads a request body, refusing more than [`MAX_BODY`] bytes with a
/// problem document (actix's own limit answers in plain text).
pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, Problem> {
    read_body_up_to(payload, MAX_BODY).await
}

/// [`read_body`] with another limit.
///
/// A body that arrives in one chunk (a message's, almost always) is that
/// chunk, not a copy of it; only a second chunk starts a buffer.
pub async fn read_body_up_to(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Problem> {
    use futures_util::StreamExt;
    let mut first = web::Bytes::new();
    let mut joined: Option<web::BytesMut> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| Problem::malformed_body(format!("the body could not be read: {e}")))?;
        let read = joined.as_ref().map_or(first.len(), |b| b.len());
        if read + chunk.len() > limit {
            return Err(Problem::too_large(limit));
        }
        match &mut joined {
            Some(body) => body.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let mut body = web::BytesMut::with_capacity(first.len() + chunk.len());
                body.extend_from_slice(&first);
                body.extend_from_slice(&chunk);
                joined = Some(body);
            }
        }
    }
    Ok(joined.map_or(first, web::BytesMut::freeze))
}

/// Runs a read of the caller's data on actix's blocking pool. A store
/// error is logged as `[tenant] {doing} failed: …` and answered `503` with
/// `{what} could not be read`.
pub(crate) async fn read_store<T: Send + 'static>(
    tenant: &auth::Tenant,
    doing: impl std::fmt::Display,
    what: &str,
    read: impl FnOnce() -> Result<T, smppd_sqlite::StoreError> + Send + 'static,
) -> Result<T, Problem> {
    web::block(read)
        .await
        .map_err(|_| Problem::store_unavailable("the read was cancelled"))?
        .map_err(|e| {
            log::error!("[{}] {doing} failed: {e}", tenant.id());
            Problem::store_unavailable(format!("{what} could not be read"))
        })
}

/// A route for one method, as `web::post()` and friends give, without
/// their guard's bookkeeping: actix-web's method guard records every method
/// it checks in the request's extensions, for the `Allow` header of its own
/// 405. That is a map and two allocations per request, on the path of every
/// message. Every resource here answers 405 itself ([`not_allowed`], with
/// `Allow` from the OpenAPI document), so a comparison is all it takes.
pub(crate) fn on(method: Method) -> Route {
    web::route().guard(guard::fn_guard(move |ctx| ctx.head().method == method))
}

/// Registers every route, the hot ones first: actix tries resources in
/// order and matches a `{param}` route with a regex, so `POST
/// /v1/messages` should not be tried against the operator routes first.
/// (Order matters otherwise only where patterns overlap:
/// `/v1/messages/batch` comes before `/v1/messages/{id}`.) The caller adds
/// the app data: `Store`,
/// `Registry`, [`auth::Keys`] and [`ops::AdminToken`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/messages")
            .route(on(Method::POST).to(messages::send))
            .route(on(Method::GET).to(listing::list_messages))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/messages/batch")
            .route(on(Method::POST).to(batch::send_batch))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/messages/{id}")
            .route(on(Method::GET).to(messages::get))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/dead-letters")
            .route(on(Method::GET).to(dead_letters::list))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/webhooks/dead-letters/{id}/replay")
            .route(on(Method::POST).to(dead_letters::replay))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/events")
            .route(on(Method::GET).to(events::events))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/inbound")
            .route(on(Method::GET).to(listing::list_inbound))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/balance")
            .route(on(Method::GET).to(messages::balance))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/stats")
            .route(on(Method::GET).to(messages::stats))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/v1/connections")
            .route(on(Method::GET).to(messages::connections))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/metrics")
            .route(on(Method::GET).to(ops::metrics))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/ready")
            .route(on(Method::GET).to(ops::ready))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/health")
            .route(on(Method::GET).to(health))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants")
            .route(on(Method::GET).to(admin::list_tenants))
            .route(on(Method::POST).to(admin::create_tenant))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}")
            .route(on(Method::GET).to(admin::get_tenant))
            .route(on(Method::PATCH).to(admin::update_tenant))
            .route(on(Method::DELETE).to(admin::delete_tenant))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/suspend")
            .route(on(Method::POST).to(admin::suspend_tenant))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/reactivate")
            .route(on(Method::POST).to(admin::reactivate_tenant))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/channels")
            .route(on(Method::GET).to(admin::list_channels))
            .route(on(Method::POST).to(admin::create_channel))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/channels/{name}")
            .route(on(Method::GET).to(admin::get_channel))
            .route(on(Method::PATCH).to(admin::update_channel))
            .route(on(Method::DELETE).to(admin::delete_channel))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/credit")
            .route(on(Method::POST).to(admin::top_up))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/tenants/{id}/keys/rotate")
            .route(on(Method::POST).to(admin::rotate_key))
            .default_service(web::to(not_allowed)),
    )
    .service(
        web::resource("/admin/v1/connections")
            .route(on(Method::GET).to(admin::connections))
            .default_service(web::to(not_allowed)),
    )
    .configure(openapi::routes)
    .default_service(web::to(not_found));
}

/// Liveness
///
/// `200` whenever the process answers HTTP; nothing more.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "get_health",
    responses((status = 200, description = "Up.", body = openapi::Health))
)]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 405, with the route's methods in `Allow` (RFC 9110) when the OpenAPI
/// document lists them.
async fn not_allowed(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let mut response = Problem::method_not_allowed().error_response();
    if let Some(allow) = req
        .match_pattern()
        .and_then(|route| openapi::allowed_methods(&route))
    {
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
    }
    response
}

async fn not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found("no such path"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{dev, FromRequest};

    /// Reads a body that arrives in `chunks`, as a client streaming it would
    /// send it.
    async fn read(chunks: &[&'static [u8]], limit: usize) -> Result<web::Bytes, Problem> {
        let chunks: Vec<Result<web::Bytes, actix_web::error::PayloadError>> = chunks
            .iter()
            .map(|c| Ok(web::Bytes::from_static(c)))
            .collect();
        let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> =
            Box::pin(futures_util::stream::iter(chunks));
        let mut payload = dev::Payload::Stream { payload: stream };
        let req = actix_web::test::TestRequest::default().to_http_request();
        let payload = web::Payload::from_request(&req, &mut payload)
            .await
            .expect("a payload");
        read_body_up_to(payload, limit).await
    }

    #[actix_web::rt::test]
    async fn a_body_in_several_chunks_is_read_whole_and_in_order() {
        let whole = read(&[b"{\"a\":", b"1", b"}"], 100).await.unwrap();
        assert_eq!(&whole[..], b"{\"a\":1}");
        assert_eq!(&read(&[b"one"], 100).await.unwrap()[..], b"one");
        assert_eq!(&read(&[b"", b"x", b""], 100).await.unwrap()[..], b"x");
        assert!(read(&[], 100).await.unwrap().is_empty());
    }

    #[actix_web::rt::test]
    async fn a_body_over_the_limit_is_refused_whichever_chunk_crosses_it() {
        assert_eq!(read(&[b"12345", b"6"], 5).await.unwrap_err().status, 413);
        assert_eq!(read(&[b"123456"], 5).await.unwrap_err().status, 413);
        assert_eq!(
            read(&[b"1", b"2", b"3456"], 5).await.unwrap_err().status,
            413
        );
        assert_eq!(&read(&[b"12", b"345"], 5).await.unwrap()[..], b"12345");
    }
}
