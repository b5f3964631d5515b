//! The SMSC drops the connection: sessions come back by themselves and
//! every message still ends delivered.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

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
    assert!(
        sim.stats().connections >= 6,
        "the SMSC really dropped us: {:?}",
        sim.stats()
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
    eventually(Duration::from_secs(10), "both sessions bound again", || {
        sim.bound_sessions().len() == 2
    });
}

#[test]
fn a_refused_bind_backs_off_and_shows_the_reason() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let wrong = TenantSetup {
        password: "wrong",
        ..ACME
    };
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[wrong], ""));
    let http = engine.http();
    eventually(Duration::from_secs(10), "the refusal is visible", || {
        let reply = http.get("/v1/connections", Some(ACME.api_key));
        reply.body["connections"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ESME_RINVPASWD"))
    });
    std::thread::sleep(Duration::from_secs(2));
    // Each bind attempt is a new connection. reconnect_initial_ms = 50,
    // reconnect_max_s = 1: at most ~1 attempt a second once backed off,
    // never a tight loop.
    let attempts = sim.stats().connections;
    assert!(
        attempts <= 10,
        "{attempts} bind attempts in ~2 s is hammering the SMSC"
    );
    assert!(sim.bound_sessions().is_empty());
}
