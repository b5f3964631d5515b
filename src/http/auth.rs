//! Tenant authentication: `Authorization: Bearer <key>` (or `X-Api-Key:
//! <key>`) resolved to a tenant id.
//!
//! Keys live in memory in a `HashMap`: a lookup hashes the whole presented
//! key with a per-process random SipHash key, so its timing does not reveal
//! how much of a wrong key matched (unlike a byte-by-byte comparison). The
//! key itself is never logged.

use std::collections::HashMap;
use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::problem::Problem;

/// API key → tenant id.
#[derive(Debug, Default)]
pub struct Keys {
    by_key: HashMap<String, Arc<str>>,
}

impl Keys {
    /// From (tenant id, key) pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            by_key: pairs
                .into_iter()
                .map(|(tenant, key)| (key.to_string(), Arc::from(tenant)))
                .collect(),
        }
    }

    fn tenant(&self, key: &str) -> Option<Arc<str>> {
        self.by_key.get(key).cloned()
    }
}

/// The authenticated tenant of a request.
#[derive(Debug, Clone)]
pub struct Tenant(pub Arc<str>);

fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(value) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, key) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    req.headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequest for Tenant {
    type Error = Problem;
    type Future = Ready<Result<Tenant, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(keys) = req.app_data::<web::Data<Keys>>() else {
            return ready(Err(Problem::unauthorized(
                "authentication is not configured",
            )));
        };
        ready(match presented_key(req) {
            None | Some("") => Err(Problem::unauthorized(
                "missing API key: send 'Authorization: Bearer <key>'",
            )),
            Some(key) => keys
                .tenant(key)
                .map(Tenant)
                .ok_or_else(|| Problem::unauthorized("unknown API key")),
        })
    }
}
