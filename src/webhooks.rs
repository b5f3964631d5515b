//! Webhook delivery: posts each row of the store's webhook outbox to its
//! URL, signed, with retries and dead letters.
//!
//! The outbox is filled by the store itself (triggers, in the transaction
//! that made a status final or stored an inbound message), so an event is
//! never lost between its commit and its delivery. This dispatcher is one
//! polling thread that claims due rows with a lease and a small pool of
//! worker threads that post them (plain blocking HTTP: a slow receiver
//! ties up one worker, never the engine). Delivery is at least once: a
//! crash after the POST and before the outcome is recorded repeats it,
//! so receivers deduplicate by the `X-Smppd-Delivery` header.
//!
//! Signature: `X-Smppd-Signature: sha256=<hex>` is the HMAC-SHA256, keyed
//! with the tenant's `webhook_secret`, of `<X-Smppd-Timestamp>.<body>`.
//! Receivers recompute it and reject old timestamps against replays.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use smppd_actors::smpp::time;
use smppd_actors::spec::backoff;
use smppd_sqlite::{MessageId, Store, WebhookDelivery, WebhookOutcome};

/// Posting threads.
const WORKERS: usize = 4;
/// Most rows claimed and not yet posted. Kept small so a claimed row is
/// posted well within its lease even behind slow receivers (at most
/// `MAX_IN_FLIGHT / WORKERS` posts of `POST_TIMEOUT` each ahead of it).
const MAX_IN_FLIGHT: usize = WORKERS * 2;
/// A claimed row is not due again for this long (a worker that dies lets
/// it run out).
const LEASE: Duration = Duration::from_secs(60);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle poll interval.
const IDLE: Duration = Duration::from_millis(200);
/// Cap on the retry delay.
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// A tenant's webhook policy.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// HMAC key. Never logged.
    pub secret: String,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to an hour.
    pub retry_initial: Duration,
}

/// Every tenant's [`WebhookPolicy`], shared with the dispatcher's threads
/// and changed live by the operator API. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Policies(Arc<RwLock<HashMap<String, WebhookPolicy>>>);

impl Policies {
    /// Policies for the given tenants.
    pub fn new(policies: HashMap<String, WebhookPolicy>) -> Self {
        Self(Arc::new(RwLock::new(policies)))
    }

    /// Sets (or with `None` removes) a tenant's policy; deliveries posted
    /// from now on use it.
    pub fn set(&self, tenant: &str, policy: Option<WebhookPolicy>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match policy {
            Some(policy) => map.insert(tenant.to_owned(), policy),
            None => map.remove(tenant),
        };
    }

    fn get(&self, tenant: &str) -> Option<WebhookPolicy> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }
}

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!(
        "sha256={}",
        hmac_sha256_hex(secret, &format!("{timestamp}.{body}"))
    )
}

fn hmac_sha256_hex(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The running dispatcher.
pub struct Dispatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts polling the outbox, signing with `policies`.
    pub fn start(store: Store, policies: Policies) -> std::io::Result<Dispatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("smppd-webhooks".into())
            .spawn(move || run(store, policies, flag))?;
        Ok(Dispatcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling; deliveries being posted finish or run out their lease.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: Store, policies: Policies, stop: Arc<AtomicBool>) {
    let (jobs, queue) = mpsc::channel::<WebhookDelivery>();
    let queue = Arc::new(Mutex::new(queue));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let shared = (
                queue.clone(),
                store.clone(),
                policies.clone(),
                in_flight.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let (queue, store, policies, in_flight, stop) = shared;
                worker(&queue, &store, &policies, &in_flight, &stop)
            })
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.load(Ordering::Relaxed));
        // An idle outbox costs a read, not a (fsynced) write transaction.
        if room == 0 || !store.webhooks_due(time::unix_ms()).unwrap_or(true) {
            std::thread::sleep(IDLE);
            continue;
        }
        let (tx, rx) = mpsc::channel();
        store.claim_webhooks(
            LEASE.as_millis() as i64,
            room,
            Box::new(move |r| drop(tx.send(r))),
        );
        match rx.recv() {
            Ok(Ok(claimed)) if !claimed.is_empty() => {
                for delivery in claimed {
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    if jobs.send(delivery).is_err() {
                        return;
                    }
                }
            }
            Ok(Ok(_)) => std::thread::sleep(IDLE),
            Ok(Err(e)) => {
                log::warn!("claiming webhooks failed: {e}");
                std::thread::sleep(IDLE * 5);
            }
            Err(_) => return,
        }
    }
    drop(jobs);
    for w in workers {
        let _ = w.join();
    }
}

fn worker(
    queue: &Mutex<mpsc::Receiver<WebhookDelivery>>,
    store: &Store,
    policies: &Policies,
    in_flight: &AtomicUsize,
    stop: &AtomicBool,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(POST_TIMEOUT))
        .build()
        .into();
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(delivery) = next else { return };
        if stop.load(Ordering::Relaxed) {
            // Shutting down: not posted now; its lease runs out and it is
            // posted after the restart.
            in_flight.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let outcome = match policies.get(&delivery.tenant) {
            Some(policy) => attempt(&agent, store, &policy, &delivery),
            None => WebhookOutcome::Dead {
                error: "the tenant has no webhook_secret configured".into(),
            },
        };
        let id = delivery.id;
        in_flight.fetch_sub(1, Ordering::Relaxed);
        store.webhook_result(
            id,
            outcome,
            Box::new(move |r| {
                if let Err(e) = r {
                    log::error!("recording webhook delivery {id} failed: {e}");
                }
            }),
        );
    }
}

/// The JSON body of a delivery, read fresh from the store.
fn payload(store: &Store, d: &WebhookDelivery) -> Option<Value> {
    match d.kind.as_str() {
        "status" => {
            let message = store.get_message(&d.tenant, MessageId(d.ref_id)).ok()??;
            Some(json!({
                "type": "message.status",
                "delivery_id": d.id.to_string(),
                "id": message.id.to_string(),
                "status": d.status,
                "error": d.error.as_ref().map(|e| json!({"code": e.code, "name": e.name})),
                "to": message.destination,
                "from": message.source,
                "client_ref": message.client_ref,
                "at": time::rfc3339(d.created_at_ms),
            }))
        }
        "inbound" => {
            let inbound = store.get_inbound(&d.tenant, d.ref_id).ok()??;
            Some(json!({
                "type": "inbound",
                "delivery_id": d.id.to_string(),
                "id": inbound.id.to_string(),
                "channel": inbound.channel,
                "from": inbound.source,
                "to": inbound.destination,
                "text": inbound.text,
                "received_at": time::rfc3339(inbound.received_at_ms),
            }))
        }
        _ => None,
    }
}

fn attempt(
    agent: &ureq::Agent,
    store: &Store,
    policy: &WebhookPolicy,
    d: &WebhookDelivery,
) -> WebhookOutcome {
    let Some(body) = payload(store, d) else {
        return WebhookOutcome::Dead {
            error: "the event's message no longer exists".into(),
        };
    };
    let body = body.to_string();
    let timestamp = time::unix_ms() / 1000;
    let result = agent
        .post(&d.url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("smppd/", env!("CARGO_PKG_VERSION")))
        .header("X-Smppd-Delivery", d.id.to_string())
        .header("X-Smppd-Timestamp", timestamp.to_string())
        .header(
            "X-Smppd-Signature",
            signature(&policy.secret, timestamp, &body),
        )
        .send(&body);
    let error = match result {
        Ok(response) if response.status().is_success() => return WebhookOutcome::Delivered,
        Ok(response) => format!("HTTP {}", response.status().as_u16()),
        Err(e) => e.to_string(),
    };
    let attempts = d.attempts + 1;
    if attempts >= policy.max_attempts {
        log::warn!(
            "[{}] webhook delivery {} is a dead letter after {attempts} attempts: {error}",
            d.tenant,
            d.id
        );
        return WebhookOutcome::Dead { error };
    }
    let delay = backoff(policy.retry_initial, RETRY_MAX, attempts - 1);
    WebhookOutcome::Retry {
        at_ms: time::unix_ms() + delay.as_millis() as i64,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_the_published_test_vector() {
        assert_eq!(
            hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn the_signature_covers_timestamp_dot_body() {
        assert_eq!(
            signature("key", 17, "{}"),
            format!("sha256={}", hmac_sha256_hex("key", "17.{}"))
        );
        assert_ne!(signature("key", 18, "{}"), signature("key", 17, "{}"));
    }
}
