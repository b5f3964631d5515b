//! Priority lanes: high goes first within a tenant, bulk is never starved;
//! validity ends unsent messages as `expired`.

mod support;

use std::time::Duration;

use serde_json::json;
use smppd_actors::simulator::Faults;
use support::*;

fn refusing() -> Faults {
    Faults {
        refuse_binds: true,
        ..Faults::default()
    }
}

#[test]
fn high_priority_goes_first_and_bulk_is_not_starved() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], refusing());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "window = 1",
    ));
    let http = engine.http();
    // Everything waits while the SMSC refuses binds, bulk and normal first.
    let mut ids = Vec::new();
    for (priority, n) in [("bulk", 30), ("normal", 30), ("high", 10)] {
        for i in 0..n {
            let reply = http.post_message(
                ACME.api_key,
                json!({"priority": priority, "text": format!("{priority} {i}")}),
            );
            assert_eq!(reply.status, 202, "{reply:?}");
            ids.push(reply.body["id"].as_str().unwrap().to_string());
        }
    }
    sim.set_faults(Faults::default());
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));

    let order: Vec<String> = sim.submits().into_iter().map(|s| s.text).collect();
    let position = |prefix: &str| -> Vec<usize> {
        order
            .iter()
            .enumerate()
            .filter(|(_, t)| t.starts_with(prefix))
            .map(|(i, _)| i)
            .collect()
    };
    let last_high = *position("high").last().unwrap();
    assert!(
        last_high < 15,
        "all 10 high-priority messages went out first: {order:?}"
    );
    assert!(position("bulk")[0] < 24, "bulk got a turn early: {order:?}");
    assert!(
        position("normal")[0] < position("bulk")[0],
        "normal before bulk"
    );
}

#[test]
fn the_priority_is_stored_and_shown() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let http = engine.http();
    let reply = http.post_message(ACME.api_key, json!({"priority": "high"}));
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(http.message(ACME.api_key, &id).body["priority"], "high");
    let reply = http.post_message(ACME.api_key, json!({}));
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(http.message(ACME.api_key, &id).body["priority"], "normal");
    let reply = http.post_message(ACME.api_key, json!({"priority": "urgent"}));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["field"], "priority");
}

#[test]
fn a_message_whose_validity_ends_before_it_can_be_sent_is_expired_and_never_sent() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], refusing());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let short = http.post_message(ACME.api_key, json!({"validity": 1, "text": "too late"}));
    let short = short.body["id"].as_str().unwrap().to_string();
    let long = http.post_message(ACME.api_key, json!({"validity": 3600, "text": "in time"}));
    let long = long.body["id"].as_str().unwrap().to_string();
    // The SMSC is still down: the sweep expires it without waiting for a bind.
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&short),
        &["expired"],
        Duration::from_secs(10),
    );
    let message = http.message(ACME.api_key, &short).body;
    assert_eq!(message["error"]["name"], "VALIDITY_EXPIRED");
    assert!(message["validity"].is_string());
    sim.set_faults(Faults::default());
    http.wait_for_status(
        ACME.api_key,
        &[long],
        &["delivered"],
        Duration::from_secs(20),
    );
    assert!(
        sim.submits().iter().all(|s| s.text != "too late"),
        "an expired message is never sent"
    );
}

#[test]
fn a_validity_in_the_past_or_malformed_is_refused() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let http = engine.http();
    for validity in [
        json!("2000-01-01T00:00:00Z"),
        json!(0),
        json!("tomorrow"),
        json!(1.5),
    ] {
        let reply = http.post_message(ACME.api_key, json!({ "validity": validity }));
        assert_eq!(reply.status, 400, "{validity}");
        assert_eq!(reply.body["field"], "validity");
    }
    let reply = http.post_message(ACME.api_key, json!({"validity": "2099-01-01T00:00:00Z"}));
    assert_eq!(reply.status, 400, "more than a year ahead");
    let reply = http.post_message(ACME.api_key, json!({"validity": 600}));
    assert_eq!(reply.status, 202);
}
