//! Delivery receipts are matched and mapped, whatever order they come in.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_receipt_that_overtakes_its_submit_sm_resp_still_matches() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            dlr_before_resp: true,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
}

#[test]
fn an_undeliverable_receipt_ends_undeliverable_with_its_error() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            undeliverable_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "nobody home");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["undeliverable"],
        Duration::from_secs(20),
    );
    let message = http.message(ACME.api_key, &id).body;
    assert_eq!(message["error"]["name"], "UNDELIV");
    assert_eq!(message["error"]["code"], 1);
}

#[test]
fn every_receipt_is_acknowledged_even_for_an_unknown_id() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "one");
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
    // An MO deliver_sm and the receipts are all answered with deliver_sm_resp.
    sim.send_mo("acme", "4915100000009", "12345", "STOP");
    eventually(
        Duration::from_secs(10),
        "every deliver_sm acknowledged",
        || {
            let s = sim.stats();
            s.receipts_sent == s.receipts_acknowledged && s.mo_sent == 1 && s.queued_deliveries == 0
        },
    );
}
