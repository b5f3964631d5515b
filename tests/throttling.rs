//! Throttling slows the throttled session down and retries the message
//! soon; it never parks messages for a minute.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn throttling_lowers_the_session_rate_then_it_recovers_and_everything_is_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            throttle_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..10)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    let session = || http.get("/v1/connections", Some(ACME.api_key)).body["connections"][0].clone();
    eventually(
        Duration::from_secs(10),
        "the session is rate limited",
        || {
            let s = session();
            s["rate_limit"].is_number() && s["throttled"].as_u64().unwrap_or(0) >= 1
        },
    );
    sim.set_faults(Faults::default());
    // Parked messages would wait a minute; ours go out within seconds.
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(15));
    eventually(
        Duration::from_secs(30),
        "the rate recovers to unlimited",
        || session()["rate_limit"].is_null(),
    );
    for id in &ids {
        assert!(
            http.message(ACME.api_key, id).body["error"].is_null()
                || http.status(ACME.api_key, id) == "delivered"
        );
    }
}

#[test]
fn ten_percent_throttling_still_delivers_every_message() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            throttle_fraction: 0.1,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 2",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..300)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(60));
    let throttled: u64 = http.get("/v1/connections", Some(ACME.api_key)).body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["throttled"].as_u64().unwrap())
        .sum();
    assert!(throttled > 0, "the SMSC did throttle");
    assert_eq!(
        sim.submits().len(),
        300,
        "each message accepted exactly once"
    );
}
