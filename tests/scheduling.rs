//! Scheduled messages: `send_at` goes to the SMSC as
//! schedule_delivery_time (the SMSC holds the message; smppd submits it at
//! once), is stored and shown, and bad values are refused naming the field.
//! The simulator, like an SMSC, delivers (and reports) a scheduled message
//! at its time.

mod support;

use std::time::Duration;

use serde_json::json;
use smppd_actors::simulator::Faults;
use smppd_actors::smpp::time::{parse_rfc3339, rfc3339, smpp_absolute, unix_ms};
use support::*;

/// Posts a message for ACME with `fields`, and waits until the SMSC has
/// accepted it; answers its id.
fn post_and_wait_submitted(http: &Http, fields: serde_json::Value) -> String {
    let reply = http.post_message(ACME.api_key, fields);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["submitted"],
        Duration::from_secs(20),
    );
    id
}

#[test]
fn a_message_with_send_at_is_submitted_at_once_with_schedule_delivery_time() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    // A day from now, as an RFC 3339 time; valid for a day after that.
    let send_at = unix_ms() + 86_400_000;
    // Submitted at once; the SMSC holds it for a day.
    let id = post_and_wait_submitted(
        &http,
        json!({"send_at": rfc3339(send_at), "validity": 2 * 86_400, "text": "happy birthday"}),
    );
    let submit = &sim.submits()[0];
    let message = http.message(ACME.api_key, &id).body;
    assert_eq!(message["send_at"], rfc3339(send_at), "{message}");
    assert_eq!(submit.schedule_delivery_time, smpp_absolute(send_at));
    let until = parse_rfc3339(message["validity"].as_str().unwrap()).unwrap();
    assert!(until > send_at, "{message}");
    assert_eq!(submit.validity_period, smpp_absolute(until));

    let now = http.send(ACME.api_key, "4915100000001", "now");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&now),
        &["delivered"],
        Duration::from_secs(20),
    );
    assert_eq!(sim.submits()[1].schedule_delivery_time, "");
    assert_eq!(
        http.message(ACME.api_key, &now).body["send_at"],
        json!(null)
    );
}

#[test]
fn a_scheduled_message_is_delivered_and_reported_at_its_time_not_before() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let posted = std::time::Instant::now();
    let id = post_and_wait_submitted(&http, json!({"send_at": 2, "text": "in two seconds"}));
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );
    // The receipt came at send_at (SMPP times count tenths of a second).
    assert!(
        posted.elapsed() >= Duration::from_millis(1_800),
        "delivered after {:?}",
        posted.elapsed()
    );
}

#[test]
fn a_send_at_in_the_past_malformed_or_after_the_validity_is_refused() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let http = engine.http();
    for send_at in [
        json!("2020-01-01T00:00:00Z"),
        json!(0),
        json!(1.5),
        json!(31_622_401),
        json!("tomorrow"),
        json!(true),
    ] {
        let reply = http.post_message(ACME.api_key, json!({ "send_at": send_at }));
        assert_eq!(reply.status, 400, "{send_at}");
        assert_eq!(reply.body["field"], "send_at", "{send_at}");
    }
    let reply = http.post_message(ACME.api_key, json!({"send_at": 7200, "validity": 3600}));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["field"], "validity");
    let batch = json!({"messages": [
        {"to": "4915100000001", "from": "ACME", "text": "a", "send_at": 60},
        {"to": "4915100000001", "from": "ACME", "text": "b", "send_at": "soon"},
    ]});
    let reply = http.post("/v1/messages/batch", Some(ACME.api_key), &batch.to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["results"][0]["status"], "queued",
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["results"][1]["error"]["field"], "messages[1].send_at",
        "{}",
        reply.body
    );
}
