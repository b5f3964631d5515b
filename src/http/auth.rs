//! Tenant authentication and each tenant's HTTP-side limits.
//!
//! `Authorization: Bearer <key>` (or `X-Api-Key: <key>`) is resolved to a
//! [`TenantInfo`]. Only SHA-256 digests of keys are kept, in memory and in
//! the store's `api_keys` table, so neither a heap dump nor a copy of the
//! database gives a usable key. A lookup digests the whole presented key
//! and finds the digest in a `HashMap`, so its timing does not reveal how
//! much of a wrong key matched. Keys rotate through the operator API, with
//! a grace period in which old and new both work. No key is ever logged.

use std::collections::{HashMap, HashSet};
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use smppd_actors::smpp::time;

use super::problem::Problem;
use crate::config::{micros, TenantConfig};
use crate::fair::{Pace, Paces};
use smppd_sqlite::ApiKeyRow;

/// A token bucket for a tenant's accept rate. Behind a mutex, so the limit
/// holds exactly however many requests race for it.
#[derive(Debug)]
pub struct AcceptRate {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl AcceptRate {
    /// `rate` per second, with a burst of one second's worth (at least 1).
    pub fn new(rate: f64) -> Self {
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes up to `n` tokens at once (a batch); returns how many it got
    /// and, if fewer than `n`, how long until the next one.
    pub fn take_up_to(&self, n: u64, now: Instant) -> (u64, Option<Duration>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let tokens = refill(tokens, last, now, self.rate, self.burst);
        let granted = (tokens.floor() as u64).min(n);
        let left = tokens - granted as f64;
        *state = (left, now);
        let wait =
            (granted < n).then(|| Duration::from_secs_f64((1.0 - left).max(0.0) / self.rate));
        (granted, wait)
    }

    /// Takes a token, or says how long until one is there.
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let tokens = refill(tokens, last, now, self.rate, self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}

/// A token bucket's tokens at `now`: what it had at `last` plus `rate`
/// per second since, at most `burst`.
pub(crate) fn refill(tokens: f64, last: Instant, now: Instant, rate: f64, burst: f64) -> f64 {
    (tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(burst)
}

/// One tenant as the HTTP layer sees it.
#[derive(Debug)]
pub struct TenantInfo {
    /// Tenant id.
    pub id: Arc<str>,
    /// Accept-rate quota.
    pub accept_rate: Option<AcceptRate>,
    /// Most messages queued at once.
    pub max_in_flight: Option<u64>,
    /// Price of one part in micro-units; `Some` = credit control on.
    pub price_per_part: Option<i64>,
    /// Whether deliveries can be signed (a per-message `callback_url`
    /// needs it).
    pub signs_webhooks: bool,
    /// The senders its messages may use, compared as
    /// [`crate::config::sender_key`]; `None`: any.
    pub allowed_senders: Option<Arc<HashSet<String>>>,
    /// Suspended by the operator: every call is refused with 403.
    pub suspended: bool,
    /// Its fair-share pacing (shared across its settings' versions).
    pub pace: Arc<Pace>,
}

impl TenantInfo {
    /// The HTTP view of a tenant's settings.
    pub fn new(tenant: &TenantConfig, suspended: bool, paces: &Paces) -> Self {
        TenantInfo {
            id: Arc::from(tenant.id.as_str()),
            accept_rate: tenant.max_accept_rate.map(AcceptRate::new),
            max_in_flight: tenant.max_in_flight,
            price_per_part: tenant.price_per_part.map(micros),
            signs_webhooks: tenant.webhook_secret.is_some(),
            allowed_senders: tenant.allowed_senders.as_ref().map(|senders| {
                Arc::new(
                    senders
                        .iter()
                        .map(|s| crate::config::sender_key(s).to_owned())
                        .collect(),
                )
            }),
            suspended,
            pace: paces.get(&tenant.id, tenant.weight),
        }
    }
}

/// The SHA-256 digest of an API key: what is stored and compared.
pub type KeyHash = [u8; 32];

/// Digests an API key.
pub fn key_hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh API key: `sk_` and 64 hex digits (256 random bits).
pub fn new_key() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut key = String::with_capacity(67);
    key.push_str("sk_");
    for b in bytes {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// A key's tenant and, once rotated away, when it stops working (Unix ms).
type LiveKey = (Arc<TenantInfo>, Option<i64>);

/// API key digest → tenant, with each key's expiry (set by a rotation).
#[derive(Debug, Default)]
pub struct Keys {
    tenants: RwLock<HashMap<String, Arc<TenantInfo>>>,
    by_hash: RwLock<HashMap<KeyHash, LiveKey>>,
}

impl Keys {
    /// The given tenants, with the store's live keys: `(digest, tenant,
    /// expiry)` rows. Keys of other tenants are skipped.
    pub fn new(tenants: impl IntoIterator<Item = TenantInfo>, live: Vec<ApiKeyRow>) -> Self {
        let tenants: HashMap<String, Arc<TenantInfo>> = tenants
            .into_iter()
            .map(|info| (info.id.to_string(), Arc::new(info)))
            .collect();
        let by_hash = live
            .into_iter()
            .filter_map(|(hash, tenant, expires)| {
                Some((hash, (tenants.get(&tenant)?.clone(), expires)))
            })
            .collect();
        Self {
            tenants: RwLock::new(tenants),
            by_hash: RwLock::new(by_hash),
        }
    }

    /// Whether `tenant` is one of ours.
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(tenant)
    }

    /// Adds or replaces a tenant's settings (a new quota, a suspension):
    /// requests authenticated from now on see them.
    pub fn set_tenant(&self, info: TenantInfo) {
        let id = info.id.to_string();
        let info = Arc::new(info);
        // Both locks, in this order everywhere, so a lookup never sees a
        // key still pointing at the old settings after this returns.
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        for (owner, _) in map.values_mut() {
            if owner.id.as_ref() == id {
                *owner = info.clone();
            }
        }
        tenants.insert(id, info);
    }

    /// Forgets a tenant and every key of it, at once.
    pub fn remove_tenant(&self, tenant: &str) {
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (owner, _)| owner.id.as_ref() != tenant);
        tenants.remove(tenant);
    }

    /// After the store recorded it: `hash` is a key of `tenant` from now
    /// on (without an expiry; other keys are left as they are).
    pub fn add_key(&self, tenant: &str, hash: KeyHash) {
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        let Some(info) = tenants.get(tenant) else {
            return;
        };
        self.by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, (info.clone(), None));
    }

    /// After the store recorded a rotation: `new` works from now on, every
    /// other key of the tenant stops at `old_expire_at_ms`.
    pub fn rotate(&self, tenant: &str, new: KeyHash, old_expire_at_ms: i64) {
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        let Some(info) = tenants.get(tenant) else {
            return;
        };
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        let now = time::unix_ms();
        map.retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
        for (owner, expires) in map.values_mut() {
            if owner.id.as_ref() == tenant {
                *expires = Some(expires.map_or(old_expire_at_ms, |at| at.min(old_expire_at_ms)));
            }
        }
        map.insert(new, (info.clone(), None));
    }

    /// The tenant a presented key belongs to, if the key works now: the
    /// key's SHA-256 digest looked up in the in-memory map (the cache the
    /// operator API updates on rotation, suspension and deletion).
    pub fn lookup(&self, key: &str) -> Option<Arc<TenantInfo>> {
        let hash = key_hash(key);
        let map = self.by_hash.read().unwrap_or_else(|e| e.into_inner());
        let (info, expires) = map.get(&hash)?;
        match expires {
            Some(at) if *at <= time::unix_ms() => None,
            _ => Some(info.clone()),
        }
    }
}

/// The authenticated tenant of a request.
#[derive(Debug, Clone)]
pub struct Tenant(pub Arc<TenantInfo>);

impl Tenant {
    /// Its id.
    pub fn id(&self) -> &Arc<str> {
        &self.0.id
    }
}

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
            Some(key) => match keys.lookup(key) {
                None => Err(Problem::unauthorized("unknown API key")),
                Some(info) if info.suspended => Err(Problem::tenant_suspended()),
                Some(info) => Ok(Tenant(info)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_rate_allows_its_burst_then_one_per_interval() {
        let bucket = AcceptRate::new(10.0);
        let t0 = Instant::now();
        assert_eq!((0..20).filter(|_| bucket.try_take(t0).is_ok()).count(), 10);
        let wait = bucket.try_take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(bucket.try_take(t0 + Duration::from_millis(100)).is_ok());
        assert!(bucket.try_take(t0 + Duration::from_millis(100)).is_err());
    }
}
