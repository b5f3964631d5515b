//! Binding: SMPP 3.4, each tenant's own credentials, every bind mode, and
//! refusals that back off instead of hammering the SMSC.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn sessions_bind_as_smpp_3_4_in_the_configured_mode() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let _engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 3",
    ));
    wait_for_binds(&sim, 3);
    for s in sim.bound_sessions() {
        assert_eq!(s.interface_version, 0x34);
        assert_eq!(s.mode, "transceiver");
        assert_eq!(s.system_id, "acme");
    }
}

#[test]
fn a_bind_asks_for_no_address_range_unless_the_channel_gives_one() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let port = sim.local_addr().port();
    let plain = TestEngine::start(&config_text(&db, port, &[ACME], ""));
    wait_for_binds(&sim, 1);
    let bound = sim.bound_sessions();
    assert_eq!(
        (bound[0].addr_ton_npi, bound[0].address_range.as_str()),
        ((0, 0), "")
    );
    drop(plain);
    eventually(Duration::from_secs(10), "the first engine unbound", || {
        sim.bound_sessions().is_empty()
    });
    let ranged = "bind_addr_ton = 1\nbind_addr_npi = 1\naddress_range = \"^4915[0-9]+$\"";
    let _engine = TestEngine::start(&config_text(&db, port, &[ACME], ranged));
    wait_for_binds(&sim, 1);
    let bound = sim.bound_sessions();
    assert_eq!(
        (bound[0].addr_ton_npi, bound[0].address_range.as_str()),
        ((1, 1), "^4915[0-9]+$")
    );
}

#[test]
fn a_transmitter_with_a_receiver_session_gets_its_receipts_on_the_receiver() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "bind = \"transmitter\"\nsessions = 2\nreceiver_sessions = 1",
    ));
    eventually(
        Duration::from_secs(10),
        "two transmitters and a receiver",
        || {
            let mut modes: Vec<&str> = sim.bound_sessions().iter().map(|s| s.mode).collect();
            modes.sort();
            modes == ["receiver", "transmitter", "transmitter"]
        },
    );
    let http = engine.http();
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
    let connections = http.get("/v1/connections", Some(ACME.api_key)).body;
    let receiver = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bind"] == "receiver")
        .expect("the receiver is listed")
        .clone();
    assert_eq!(
        receiver["submitted"], 0,
        "nothing is submitted on a receiver"
    );
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
    let state =
        http.get("/v1/connections", Some(ACME.api_key)).body["connections"][0]["state"].clone();
    assert!(
        state == "backing_off" || state == "connecting" || state == "binding",
        "{state}"
    );
}

#[test]
fn messages_wait_queued_while_binds_are_refused_and_go_out_once_accepted() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            refuse_binds: true,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "patience");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http.status(ACME.api_key, &id), "queued");
    sim.set_faults(Faults::default());
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
}
