//! Operator endpoints: `GET /metrics` (Prometheus text format) and
//! `GET /ready`.
//!
//! Metrics are rendered on each scrape from the counters the hot path
//! already keeps (atomics, see `smppd_actors::stats`), the supervisors'
//! session tables and the store's queue counters; nothing is recorded
//! twice.

use std::fmt::Write;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use smppd_actors::stats::{Histogram, BUCKETS};
use smppd_actors::Registry;
use smppd_sqlite::Store;

use super::openapi::Ready;
use super::problem::Problem;

/// The operator token, if configured.
#[derive(Debug, Clone, Default)]
pub struct AdminToken(pub Option<String>);

impl AdminToken {
    /// True when no token is configured or the request carries it.
    pub(crate) fn admits(&self, req: &HttpRequest) -> bool {
        let Some(token) = &self.0 else { return true };
        let presented = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        // Constant-time comparison: the token is a secret.
        presented.is_some_and(|p| {
            p.len() == token.len()
                && p.bytes()
                    .zip(token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }
}

/// Reads one counter of a tenant's stats.
type CounterOf = fn(&smppd_actors::stats::TenantStats) -> u64;

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let (buckets, sum, count) = h.snapshot();
    for (bound, n) in BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
        buckets[BUCKETS.len()]
    );
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

/// Prometheus metrics
///
/// Per tenant: accepted, submitted, throttled, retried and final counters,
/// queue depth, latency histograms; per session: bound, window, rate and
/// counters. Open when no `http.admin_token` is configured.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "get_metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "An admin token is configured and the request does not carry it.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    ),
    security(("admin_token" = []), ())
)]
pub async fn metrics(
    req: HttpRequest,
    admin: web::Data<AdminToken>,
    registry: web::Data<Registry>,
    store: web::Data<Store>,
    paces: web::Data<crate::fair::Paces>,
) -> Result<HttpResponse, Problem> {
    if !admin.admits(&req) {
        return Err(Problem::unauthorized("/metrics needs the admin token"));
    }
    let tenants = registry.all_stats();
    let mut out = String::with_capacity(8 * 1024);
    let counters: [(&str, &str, CounterOf); 6] = [
        (
            "smppd_messages_accepted_total",
            "Messages accepted over HTTP (committed).",
            |s| get(&s.accepted),
        ),
        (
            "smppd_messages_submitted_total",
            "submit_sm answered ESME_ROK.",
            |s| get(&s.submitted),
        ),
        (
            "smppd_messages_throttled_total",
            "Submits answered with a throttling status.",
            |s| get(&s.throttled),
        ),
        (
            "smppd_messages_retried_total",
            "Attempts retried (temporary error, throttle, unknown outcome).",
            |s| get(&s.retried),
        ),
        (
            "smppd_receipts_timed_out_total",
            "Messages made unknown because no receipt came within engine.receipt_timeout_s.",
            |s| get(&s.receipts_timed_out),
        ),
        (
            "smppd_receipts_unmatched_total",
            "Final receipts that matched no message when they came; kept until a submit_sm_resp with their id is recorded. A few per thousand is routine (a receipt overtaking its response on another session); growing with traffic, receipts name ids smppd cannot match (see channels[].message_id_bases).",
            |s| get(&s.receipts_unmatched),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (tenant, stats) in &tenants {
            let _ = writeln!(
                out,
                "{name}{{tenant=\"{}\"}} {}",
                label(tenant),
                value(stats)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP smppd_messages_final_total Messages that reached a final status.\n# TYPE smppd_messages_final_total counter"
    );
    for (tenant, stats) in &tenants {
        for (status, value) in stats.snapshot().into_iter().skip(4).take(6) {
            let _ = writeln!(
                out,
                "smppd_messages_final_total{{tenant=\"{}\",status=\"{status}\"}} {value}",
                label(tenant)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP smppd_queue_depth Messages accepted and not yet submitted or final.\n# TYPE smppd_queue_depth gauge"
    );
    for (tenant, _) in &tenants {
        // The writer's count, in memory: no database read.
        let depth = store.queued_count(tenant);
        let _ = writeln!(
            out,
            "smppd_queue_depth{{tenant=\"{}\"}} {depth}",
            label(tenant)
        );
    }
    for (name, help, pick) in [
        (
            "smppd_accept_latency_seconds",
            "HTTP accept latency, request to committed 202.",
            0,
        ),
        (
            "smppd_submit_response_seconds",
            "submit_sm to submit_sm_resp.",
            1,
        ),
        (
            "smppd_submit_to_receipt_seconds",
            "Submitted to final delivery receipt.",
            2,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (tenant, stats) in &tenants {
            let h = [
                &stats.accept_latency,
                &stats.submit_latency,
                &stats.receipt_latency,
            ][pick];
            histogram(&mut out, name, &format!("tenant=\"{}\"", label(tenant)), h);
        }
    }
    let session_metrics = [
        (
            "smppd_session_bound",
            "gauge",
            "1 when the session is bound.",
        ),
        (
            "smppd_session_window_in_use",
            "gauge",
            "Submits in flight on the session.",
        ),
        (
            "smppd_session_window_size",
            "gauge",
            "The session's window.",
        ),
        (
            "smppd_session_rate_limit",
            "gauge",
            "Submits per second in force (absent: unlimited).",
        ),
        (
            "smppd_session_submitted_total",
            "counter",
            "Submits handed to the session.",
        ),
        (
            "smppd_session_throttled_total",
            "counter",
            "Throttle answers on the session.",
        ),
        (
            "smppd_session_expired_total",
            "counter",
            "Submits with an unknown outcome (retried).",
        ),
    ];
    let mut sessions = Vec::new();
    for (tenant, _) in &tenants {
        for c in registry.connections(tenant).await.unwrap_or_default() {
            sessions.push((tenant.clone(), c));
        }
    }
    for (i, (name, kind, help)) in session_metrics.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (tenant, c) in &sessions {
            let value = match i {
                0 => Some(u64::from(c.state == "bound") as f64),
                1 => Some(c.window_in_use as f64),
                2 => Some(c.window_size as f64),
                3 => c.rate_limit,
                4 => Some(c.submitted as f64),
                5 => Some(c.throttled as f64),
                _ => Some(c.expired as f64),
            };
            if let Some(v) = value {
                let _ = writeln!(
                    out,
                    "{name}{{tenant=\"{}\",channel=\"{}\",session=\"{}\",bind=\"{}\"}} {v}",
                    label(tenant),
                    label(&c.channel),
                    c.session,
                    c.bind
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP smppd_tenant_weight The tenant's weight against the others while the engine is saturated.\n# TYPE smppd_tenant_weight gauge"
    );
    let paced = paces.snapshot();
    for (tenant, weight, _) in &paced {
        let _ = writeln!(
            out,
            "smppd_tenant_weight{{tenant=\"{}\"}} {weight}",
            label(tenant)
        );
    }
    let _ = writeln!(
        out,
        "# HELP smppd_tenant_paced_rate Messages per second the tenant is paced to while the engine is saturated; 0 when not paced.\n# TYPE smppd_tenant_paced_rate gauge"
    );
    for (tenant, _, rate) in &paced {
        let _ = writeln!(
            out,
            "smppd_tenant_paced_rate{{tenant=\"{}\"}} {:.1}",
            label(tenant),
            rate.unwrap_or(0.0)
        );
    }
    let writer = store.stats();
    let _ = writeln!(
        out,
        "# HELP smppd_store_transactions_total Store transactions committed.\n# TYPE smppd_store_transactions_total counter\nsmppd_store_transactions_total {}\n# HELP smppd_store_operations_total Store operations handled.\n# TYPE smppd_store_operations_total counter\nsmppd_store_operations_total {}\n# HELP smppd_store_writer_busy_seconds_total Time the store's single writer thread spent running batches (statements, commit, fsync) rather than waiting; a rate near 1 means the writer limits throughput.\n# TYPE smppd_store_writer_busy_seconds_total counter\nsmppd_store_writer_busy_seconds_total {:.6}\n# HELP smppd_store_receipts_indexed_total Submits entered in the SMSC-id index because they left the receipt cache (database.receipt_cache) still awaiting their receipt; if it grows with traffic, receipts come later than the cache reaches.\n# TYPE smppd_store_receipts_indexed_total counter\nsmppd_store_receipts_indexed_total {}",
        writer.transactions,
        writer.ops,
        writer.busy_ns as f64 / 1e9,
        writer.receipts_indexed
    );
    let pruned = store.pruned();
    let _ = writeln!(
        out,
        "# HELP smppd_store_pruned_total Rows deleted because they were older than database.retention_days, by kind.\n# TYPE smppd_store_pruned_total counter"
    );
    for (kind, n) in [
        ("messages", pruned.messages),
        ("inbound", pruned.inbound),
        ("webhooks", pruned.webhooks),
        ("receipts", pruned.receipts),
    ] {
        let _ = writeln!(out, "smppd_store_pruned_total{{kind=\"{kind}\"}} {n}");
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}

fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

/// Readiness
///
/// `200` when the store commits and every channel has a bound session,
/// else `503`. The reasons are shown when no admin token is configured or
/// the request carries it.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    operation_id = "get_ready",
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Not ready (yet).", body = Ready),
    ),
    security((), ("admin_token" = []))
)]
pub async fn ready(
    req: HttpRequest,
    admin: web::Data<AdminToken>,
    registry: web::Data<Registry>,
    store: web::Data<Store>,
) -> HttpResponse {
    let mut reasons = Vec::new();
    let writer = store.get_ref().clone();
    let flushed =
        tokio::time::timeout(Duration::from_secs(2), web::block(move || writer.flush())).await;
    if !matches!(flushed, Ok(Ok(Ok(())))) {
        reasons.push("the store did not commit within 2 s".to_string());
    }
    for (tenant, _) in registry.all_stats() {
        let sessions = registry.connections(&tenant).await.unwrap_or_default();
        let mut channels: Vec<&str> = sessions.iter().map(|s| s.channel.as_str()).collect();
        channels.dedup();
        for channel in channels {
            let bound = sessions
                .iter()
                .any(|s| s.channel == channel && s.state == "bound");
            if !bound {
                let why = sessions
                    .iter()
                    .filter(|s| s.channel == channel)
                    .find_map(|s| s.last_error.clone())
                    .unwrap_or_else(|| "connecting".into());
                reasons.push(format!(
                    "tenant {tenant} channel {channel}: no bound session ({why})"
                ));
            }
        }
    }
    let ready = reasons.is_empty();
    let body = if admin.admits(&req) {
        json!({ "ready": ready, "reasons": reasons })
    } else {
        json!({ "ready": ready })
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
