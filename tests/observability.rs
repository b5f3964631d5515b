//! What operators see: Prometheus metrics per tenant and session, and
//! readiness with its reasons.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

const ADMIN: &str = "operator-token-0123456789";

fn text(reply: &Reply) -> &str {
    reply.body.as_str().unwrap_or("")
}

#[test]
fn metrics_count_messages_sessions_and_latencies_per_tenant() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "measured");
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
    let reply = http.get("/metrics", None);
    assert_eq!(reply.status, 200);
    assert!(
        reply.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        reply.content_type
    );
    let metrics = text(&reply);
    for line in [
        "smppd_messages_accepted_total{tenant=\"acme\"} 1",
        "smppd_messages_submitted_total{tenant=\"acme\"} 1",
        "smppd_messages_final_total{tenant=\"acme\",status=\"delivered\"} 1",
        "smppd_queue_depth{tenant=\"acme\"} 0",
        "smppd_session_bound{tenant=\"acme\",channel=\"sim\",session=\"0\",bind=\"transceiver\"} 1",
        "smppd_accept_latency_seconds_count{tenant=\"acme\"} 1",
        "smppd_submit_response_seconds_count{tenant=\"acme\"} 1",
        "smppd_submit_to_receipt_seconds_count{tenant=\"acme\"} 1",
        "# TYPE smppd_accept_latency_seconds histogram",
        "smppd_tenant_weight{tenant=\"acme\"} 1",
        "smppd_tenant_paced_rate{tenant=\"acme\"} 0.0",
        // Its receipt came while the receipt cache held its submit.
        "smppd_store_receipts_indexed_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    assert!(metrics.contains("smppd_accept_latency_seconds_bucket{tenant=\"acme\",le=\"+Inf\"} 1"));
    // The store writer committed (and fsynced) at least the insert, the
    // submit and the receipt: its busy time is above zero.
    let busy: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("smppd_store_writer_busy_seconds_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no writer busy time in\n{metrics}"));
    assert!(busy > 0.0, "writer busy {busy}");
}

#[test]
fn with_an_admin_token_metrics_need_it_and_tenant_keys_do_not_work() {
    let (_dir, db) = temp_db();
    let text_config = format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(&db, free_port(), &[ACME], "")
    );
    let engine = TestEngine::start(&text_config);
    let http = engine.http();
    assert_eq!(http.get("/metrics", None).status, 401);
    assert_eq!(http.get("/metrics", Some(ACME.api_key)).status, 401);
    assert_eq!(
        http.get("/metrics", Some("operator-token-012345678X"))
            .status,
        401
    );
    assert_eq!(http.get("/metrics", Some(ADMIN)).status, 200);
    // The admin token is no tenant key either.
    assert_eq!(http.get("/v1/stats", Some(ADMIN)).status, 401);
}

#[test]
fn ready_says_why_not_until_every_channel_has_a_bound_session() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            refuse_binds: true,
            ..Faults::default()
        },
    );
    let text_config = format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(&db, sim.local_addr().port(), &[ACME], "")
    );
    let engine = TestEngine::start(&text_config);
    let http = engine.http();
    eventually(Duration::from_secs(10), "a refusal", || {
        sim.stats().connections >= 1
    });
    let reply = http.get("/ready", Some(ADMIN));
    assert_eq!(reply.status, 503);
    let reasons = reply.body["reasons"].to_string();
    assert!(reasons.contains("tenant acme channel sim"), "{reasons}");
    let anonymous = http.get("/ready", None);
    assert_eq!(anonymous.status, 503);
    assert!(
        anonymous.body.get("reasons").is_none(),
        "details only for the operator"
    );
    sim.set_faults(Faults::default());
    eventually(Duration::from_secs(15), "ready", || {
        http.get("/ready", None).status == 200
    });
}
