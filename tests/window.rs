//! The window bounds what is in flight per session; the rate cap spaces
//! submits; an unanswered submit expires and is retried.

mod support;

use std::time::{Duration, Instant};

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_session_never_has_more_submits_outstanding_than_its_window() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            stall_responses: Some(Duration::from_millis(100)),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "window = 3",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..30)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    assert_eq!(
        sim.stats().max_submits_in_flight,
        3,
        "the window is used in full and never exceeded"
    );
}

#[test]
fn submits_are_spread_over_every_bound_session() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            stall_responses: Some(Duration::from_millis(50)),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 3\nwindow = 2",
    ));
    let http = engine.http();
    wait_for_binds(&sim, 3);
    let ids: Vec<String> = (0..60)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    let connections = http.get("/v1/connections", Some(ACME.api_key)).body;
    for c in connections["connections"].as_array().unwrap() {
        assert!(c["submitted"].as_u64().unwrap() > 0, "idle session: {c}");
    }
}

#[test]
fn a_rate_capped_session_does_not_exceed_its_rate() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "submits_per_second = 20",
    ));
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let start = Instant::now();
    let ids: Vec<String> = (0..40)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    eventually(Duration::from_secs(30), "all submitted", || {
        sim.submit_count() == 40
    });
    // 40 submits at 20/s with a burst of 2 need at least (40 - 2) / 20 s.
    // A lower bound only: a slow machine makes it longer, never shorter.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "40 submits in {took:?} exceeds 20/s"
    );
    let limit =
        &http.get("/v1/connections", Some(ACME.api_key)).body["connections"][0]["rate_limit"];
    assert_eq!(limit, 20.0);
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
}

#[test]
fn an_unanswered_submit_expires_is_counted_and_is_retried() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            stall_responses: Some(Duration::from_secs(3)),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "response_timeout_s = 1",
    ));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "slow SMSC");
    eventually(Duration::from_secs(10), "the expiry is counted", || {
        http.get("/v1/connections", Some(ACME.api_key)).body["connections"][0]["expired"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    });
    sim.set_faults(Faults::default());
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(30),
    );
    let message = http.message(ACME.api_key, &id).body;
    assert!(message["attempts"].as_u64().unwrap() >= 2, "{message}");
}
