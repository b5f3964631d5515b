//! enquire_link keeps idle links alive and finds dead ones.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn an_idle_session_probes_the_link_and_stays_bound() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let _engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "enquire_link_interval_s = 1",
    ));
    eventually(Duration::from_secs(15), "two enquire_links", || {
        sim.stats().enquire_links >= 2
    });
    assert_eq!(
        sim.stats().connections,
        1,
        "the answered probes kept the one session"
    );
    assert_eq!(sim.bound_sessions().len(), 1);
}

#[test]
fn an_smsc_that_stops_answering_enquire_link_is_detected_and_the_session_recreated() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            ignore_enquire_link: true,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "enquire_link_interval_s = 1\nresponse_timeout_s = 1",
    ));
    let http = engine.http();
    eventually(Duration::from_secs(15), "the dead link is noticed", || {
        http.get("/v1/connections", Some(ACME.api_key)).body["connections"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("enquire_link"))
    });
    eventually(Duration::from_secs(10), "a new connection is made", || {
        sim.stats().connections >= 2
    });
    // The SMSC answers again: the session settles and traffic flows.
    sim.set_faults(Faults::default());
    let id = http.send(ACME.api_key, "4915100000001", "after keepalive failure");
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
}
