//! Delivery receipts are matched and mapped, whatever order they come in.

mod support;

use std::time::Duration;

use smppd_actors::simulator::{
    Account, Faults, ReceiptIdFormat, Simulator, SimulatorConfig, SimulatorHandle,
};
use support::*;

/// An SMSC that answers submit_sm with hexadecimal ids and quotes them in
/// its receipts as zero-padded decimal, as SMPP 3.3-era SMSCs do.
fn simulator_reporting_ids_in_decimal() -> SimulatorHandle {
    Simulator::start(SimulatorConfig {
        accounts: vec![Account {
            system_id: ACME.system_id.into(),
            password: ACME.password.into(),
        }],
        dlr_delay: Duration::from_millis(20),
        receipt_id_format: ReceiptIdFormat::Decimal,
        ..SimulatorConfig::default()
    })
    .expect("simulator starts")
}

#[test]
fn receipts_sent_as_data_sm_are_matched_and_answered_with_data_sm_resp() {
    let (_dir, db) = temp_db();
    let sim = Simulator::start(SimulatorConfig {
        accounts: vec![Account {
            system_id: ACME.system_id.into(),
            password: ACME.password.into(),
        }],
        dlr_delay: Duration::from_millis(20),
        receipts_as_data_sm: true,
        faults: Faults {
            undeliverable_fraction: 0.5,
            ..Faults::default()
        },
        ..SimulatorConfig::default()
    })
    .expect("simulator starts");
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(
        ACME.api_key,
        &ids,
        &["delivered", "undeliverable"],
        Duration::from_secs(20),
    );
    let statuses: Vec<String> = ids.iter().map(|id| http.status(ACME.api_key, id)).collect();
    assert!(statuses.iter().any(|s| s == "delivered"), "{statuses:?}");
    assert!(
        statuses.iter().any(|s| s == "undeliverable"),
        "{statuses:?}"
    );
    eventually(Duration::from_secs(10), "every data_sm answered", || {
        sim.stats().receipts_acknowledged == 20
    });
}

#[test]
fn receipts_quoting_hexadecimal_ids_in_decimal_match_when_the_channel_says_hex_slash_decimal() {
    let (_dir, db) = temp_db();
    let sim = simulator_reporting_ids_in_decimal();
    let bases = "message_id_bases = \"hex/decimal\"";
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], bases));
    let http = engine.http();
    let ids: Vec<String> = (0..10)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
    // The id shown is the one submit_sm_resp gave, not the receipt's.
    let issued: Vec<String> = sim.submits().into_iter().map(|s| s.message_id).collect();
    let shown = http.message(ACME.api_key, &ids[0]).body["smsc_message_id"]
        .as_str()
        .map(str::to_owned)
        .expect("an SMSC id");
    assert!(issued.contains(&shown), "{shown} not in {issued:?}");
}

#[test]
fn without_the_bases_such_receipts_match_nothing_and_their_messages_stay_submitted() {
    let (_dir, db) = temp_db();
    let sim = simulator_reporting_ids_in_decimal();
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..3)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    // A receipt is acknowledged once the store has kept it (here: parked).
    eventually(
        Duration::from_secs(20),
        "every receipt acknowledged",
        || sim.stats().receipts_acknowledged == 3,
    );
    for id in &ids {
        assert_eq!(http.message(ACME.api_key, id).body["status"], "submitted");
    }
    // And an operator sees them counted.
    let metrics = http.get("/metrics", None).body;
    let metrics = metrics.as_str().unwrap_or("");
    let line = "smppd_receipts_unmatched_total{tenant=\"acme\"} 3";
    assert!(metrics.contains(line), "{line} missing from\n{metrics}");
}

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

#[test]
fn a_message_whose_receipt_never_comes_becomes_unknown_after_the_receipt_timeout() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let port = sim.local_addr().port();
    // acme asks for no receipts, so none ever comes; beta's come at once.
    let config = format!(
        "[engine]\nreceipt_timeout_s = 2\n[database]\npath = {:?}\nsynchronous = \"normal\"\n{}{}",
        db.display().to_string(),
        tenant_text(port, &ACME, "", "registered_delivery = false"),
        tenant_text(port, &BETA, "", "")
    );
    let engine = TestEngine::start(&config);
    let http = engine.http();
    let posted = std::time::Instant::now();
    let silent = http.send(ACME.api_key, "4915100000001", "no receipt");
    let answered = http.send(BETA.api_key, "4915100000002", "receipt");
    http.wait_for_status(
        BETA.api_key,
        std::slice::from_ref(&answered),
        &["delivered"],
        Duration::from_secs(20),
    );
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&silent),
        &["submitted"],
        Duration::from_secs(20),
    );
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&silent),
        &["unknown"],
        Duration::from_secs(20),
    );
    // Not before its submit was 2 s old (the POST came before the submit).
    assert!(
        posted.elapsed() >= Duration::from_millis(1_900),
        "unknown after {:?}",
        posted.elapsed()
    );
    let message = http.message(ACME.api_key, &silent).body;
    assert_eq!(message["error"]["name"], "RECEIPT_TIMEOUT");
    assert!(message["done_at"].is_string(), "{message}");
    assert_eq!(http.status(BETA.api_key, &answered), "delivered");
    let metrics = http.get("/metrics", None).body;
    let metrics = metrics.as_str().unwrap_or("");
    for line in [
        "smppd_receipts_timed_out_total{tenant=\"acme\"} 1",
        "smppd_receipts_timed_out_total{tenant=\"beta\"} 0",
        "smppd_messages_final_total{tenant=\"acme\",status=\"unknown\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}
