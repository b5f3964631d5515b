//! Dead or crashed connections are re-created by their tenant's
//! supervisor; nothing else is disturbed.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

fn bound_count(http: &Http, key: &str) -> usize {
    let reply = http.get("/v1/connections", Some(key));
    reply.body["connections"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["state"] == "bound").count())
}

#[test]
fn a_panicking_connection_is_restarted_and_other_tenants_are_untouched() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "sessions = 2",
    ));
    let http = engine.http();
    wait_for_binds(&sim, 4);
    let connections_before = sim.stats().connections;

    assert!(engine.registry.panic_session("acme", 0));
    eventually(Duration::from_secs(10), "acme's session reconnects", || {
        sim.stats().connections == connections_before + 1 && bound_count(&http, ACME.api_key) == 2
    });
    let acme = http.get("/v1/connections", Some(ACME.api_key));
    assert!(
        acme.body.to_string().contains("panicked"),
        "the reason is shown: {}",
        acme.body
    );
    // Beta's sessions were never re-created.
    assert_eq!(sim.stats().connections, connections_before + 1);
    assert_eq!(bound_count(&http, BETA.api_key), 2);

    let a = http.send(ACME.api_key, "4915100000001", "after the crash");
    let b = http.send(BETA.api_key, "4915100000002", "unaffected");
    http.wait_for_status(ACME.api_key, &[a], &["delivered"], Duration::from_secs(20));
    http.wait_for_status(BETA.api_key, &[b], &["delivered"], Duration::from_secs(20));
}

#[test]
fn messages_in_flight_when_a_connection_panics_are_retried_not_lost() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            stall_responses: Some(Duration::from_millis(300)),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "window = 20",
    ));
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    engine.registry.panic_session("acme", 0);
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
}

#[test]
fn a_connection_dropped_every_ten_submits_loses_no_message() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            drop_every_n_submits: Some(10),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "window = 4",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..60)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(60));
    let drops = sim.stats().connections - 1;
    assert!(drops >= 5, "the SMSC really dropped us: {:?}", sim.stats());
    // A dropped submit was never answered; at most the window's worth per
    // drop can have reached the SMSC before the drop and be sent again.
    let duplicates = sim.submit_count() - 60;
    assert!(
        duplicates as u64 <= 4 * drops,
        "{duplicates} resubmits for {drops} drops"
    );
}

#[test]
fn the_smsc_closing_every_connection_mid_stream_is_survived() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 2",
    ));
    let http = engine.http();
    let first: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("a{i}")))
        .collect();
    sim.drop_connections();
    let second: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("b{i}")))
        .collect();
    http.wait_for_status(
        ACME.api_key,
        &first,
        &["delivered"],
        Duration::from_secs(30),
    );
    http.wait_for_status(
        ACME.api_key,
        &second,
        &["delivered"],
        Duration::from_secs(30),
    );
    wait_for_binds(&sim, 2);
}
