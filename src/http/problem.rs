//! Every HTTP error is an RFC 9457 problem document
//! (`application/problem+json`) with a stable `type` URN that clients can
//! switch on, a human `detail`, and the request `field` at fault when there
//! is one. All mapping from our errors to HTTP lives here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every `type` a problem can have: the stable URNs clients switch on
/// (listed as the `type` enum of the OpenAPI `Problem` schema).
pub const TYPES: [&str; 14] = [
    "urn:smppd:problem:malformed-body",
    "urn:smppd:problem:invalid-field",
    "urn:smppd:problem:invalid-header",
    "urn:smppd:problem:unauthorized",
    "urn:smppd:problem:insufficient-credit",
    "urn:smppd:problem:not-found",
    "urn:smppd:problem:method-not-allowed",
    "urn:smppd:problem:body-too-large",
    "urn:smppd:problem:idempotency-key-reused",
    "urn:smppd:problem:rate-limited",
    "urn:smppd:problem:queue-full",
    "urn:smppd:problem:store-unavailable",
    "urn:smppd:problem:tenant-suspended",
    "urn:smppd:problem:conflict",
];

/// The schema of `type`: a string from [`TYPES`].
fn type_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(TYPES))
        .description(Some(
            "Stable identifier of the kind of error, for clients to switch on.",
        ))
        .build()
}

/// An HTTP error response: an RFC 9457 problem document, sent as
/// `application/problem+json`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:smppd:problem:invalid-field",
    "title": "Invalid field",
    "status": 400,
    "detail": "'to' is required",
    "field": "to"
}))]
pub struct Problem {
    /// Stable identifier, e.g. `urn:smppd:problem:invalid-field`.
    #[serde(rename = "type")]
    #[schema(schema_with = type_schema)]
    pub kind: &'static str,
    /// Short summary of the kind.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// HTTP status, repeated in the body.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The JSON field, query parameter or header at fault (for an item of
    /// a batch, prefixed with its position: `messages[3].to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// Seconds for the `Retry-After` header (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400: the body is not JSON, or not a JSON object.
    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "urn:smppd:problem:malformed-body",
            "Malformed request body",
            detail,
        )
    }

    /// 400: one field is missing or has a bad value.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "urn:smppd:problem:invalid-field",
                "Invalid field",
                detail,
            )
        }
    }

    /// 401: no key, or a key we do not know.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "urn:smppd:problem:unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: the operator suspended this tenant.
    pub fn tenant_suspended() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "urn:smppd:problem:tenant-suspended",
            "Tenant suspended",
            "this tenant is suspended; ask the operator to reactivate it",
        )
    }

    /// 409: the thing to create exists already.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "urn:smppd:problem:conflict",
            "Conflict",
            detail,
        )
    }

    /// 404: nothing here for this caller (also for another tenant's ids).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "urn:smppd:problem:not-found",
            "Not found",
            detail,
        )
    }

    /// 402: the tenant's credit does not cover the message.
    pub fn insufficient_credit(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "urn:smppd:problem:insufficient-credit",
            "Insufficient credit",
            detail,
        )
    }

    /// 429: over the accept rate; retry after the given seconds.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        Self {
            retry_after: Some(retry_after_s),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:smppd:problem:rate-limited",
                "Too many requests",
                format!("over the accept rate; retry in {retry_after_s} s"),
            )
        }
    }

    /// 429: the tenant already has its maximum of messages queued.
    pub fn queue_full(limit: u64) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:smppd:problem:queue-full",
                "Too many messages in flight",
                format!("{limit} messages are already waiting to be sent; retry when some are out"),
            )
        }
    }

    /// 400: a request header has a bad value.
    pub fn invalid_header(header: &str, detail: &str) -> Self {
        Self {
            field: Some(header.to_string()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "urn:smppd:problem:invalid-header",
                "Invalid header",
                format!("{header} {detail}"),
            )
        }
    }

    /// 422: an Idempotency-Key reused with a different request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:smppd:problem:idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was used before with a different request body",
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "urn:smppd:problem:method-not-allowed",
            "Method not allowed",
            "this path does not support that method",
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:smppd:problem:body-too-large",
            "Request body too large",
            format!("the body may be at most {limit} bytes"),
        )
    }

    /// 503: the store could not commit; nothing was accepted.
    pub fn store_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:smppd:problem:store-unavailable",
            "Store unavailable",
            detail,
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.body(serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_is_listed_and_every_listed_type_is_made() {
        let made = [
            Problem::malformed_body(""),
            Problem::invalid_field("f", ""),
            Problem::invalid_header("h", ""),
            Problem::unauthorized(""),
            Problem::insufficient_credit(""),
            Problem::not_found(""),
            Problem::method_not_allowed(),
            Problem::too_large(1),
            Problem::idempotency_key_reused(),
            Problem::rate_limited(1),
            Problem::queue_full(1),
            Problem::store_unavailable(""),
            Problem::tenant_suspended(),
            Problem::conflict(""),
        ];
        let kinds: Vec<&str> = made.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, TYPES);
    }
}
