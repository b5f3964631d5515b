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
    eventually(Duration::from_secs(10), "all sessions bound", || {
        sim.bound_sessions().len() == 4
    });
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
    eventually(Duration::from_secs(10), "bound", || {
        sim.bound_sessions().len() == 1
    });
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    engine.registry.panic_session("acme", 0);
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
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

#[test]
fn sigterm_style_shutdown_unbinds_every_session() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "sessions = 2",
    ));
    eventually(Duration::from_secs(10), "all sessions bound", || {
        sim.bound_sessions().len() == 4
    });
    engine.stop();
    eventually(Duration::from_secs(5), "no session left bound", || {
        sim.bound_sessions().is_empty()
    });
    assert_eq!(sim.stats().unbinds, 4, "{:?}", sim.stats());
}
