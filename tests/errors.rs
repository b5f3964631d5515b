//! command_status classes: permanent errors fail the message with the
//! code, temporary ones are retried up to max_attempts; garbage from the
//! SMSC does not break the session.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_permanent_submit_error_fails_the_message_with_its_code() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            permanent_error_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "bad destination");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["failed"],
        Duration::from_secs(20),
    );
    let message = http.message(ACME.api_key, &id).body;
    assert_eq!(message["error"]["name"], "ESME_RINVDSTADR");
    assert_eq!(message["error"]["code"], 11);
    assert_eq!(message["attempts"], 1, "the failing attempt is counted");
    assert_eq!(sim.submit_count(), 1, "a permanent error is not retried");
}

#[test]
fn a_temporary_submit_error_is_retried_and_then_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            temporary_error_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "try again");
    // Wait for the engine to have recorded the failed attempt, not just for
    // the simulator to have received it: the simulator counts a submit
    // before it reads its faults, so clearing them on that count alone
    // could let the first attempt through.
    eventually(Duration::from_secs(10), "a failed attempt", || {
        http.message(ACME.api_key, &id).body["attempts"]
            .as_u64()
            .is_some_and(|attempts| attempts >= 1)
    });
    sim.set_faults(Faults::default());
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );
    assert!(
        http.message(ACME.api_key, &id).body["attempts"]
            .as_u64()
            .unwrap()
            >= 2
    );
}

#[test]
fn a_temporary_error_that_persists_fails_after_max_attempts() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            temporary_error_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "max_attempts = 3\nretry_max_s = 1",
    ));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "never");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["failed"],
        Duration::from_secs(20),
    );
    let message = http.message(ACME.api_key, &id).body;
    assert_eq!(message["attempts"], 3);
    assert_eq!(message["error"]["name"], "ESME_RSYSERR");
    assert_eq!(sim.submit_count(), 3);
}

#[test]
fn one_percent_permanent_errors_fail_with_their_code_and_the_rest_is_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            permanent_error_fraction: 0.01,
            temporary_error_fraction: 0.02,
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
    let ids: Vec<String> = (0..500)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(
        ACME.api_key,
        &ids,
        &["delivered", "failed"],
        Duration::from_secs(60),
    );
    let failed: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| http.message(ACME.api_key, id).body)
        .filter(|m| m["status"] == "failed")
        .collect();
    for m in &failed {
        assert_eq!(
            m["error"]["name"], "ESME_RINVDSTADR",
            "only permanent errors fail: {m}"
        );
    }
    assert!(failed.len() < 25, "{} failed of 500 at 1%", failed.len());
}

#[test]
fn malformed_pdus_from_the_smsc_get_generic_nack_and_the_session_goes_on() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            malformed_every_n: Some(3),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..30)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    assert_eq!(sim.stats().connections, 1, "no reconnect was needed");
}
