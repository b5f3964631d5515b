//! A message goes HTTP → SQLite → tenant supervisor → SMPP → DLR → status.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_message_sent_over_http_is_submitted_over_smpp_and_ends_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();

    let id = http.send(ACME.api_key, "+4915112345678", "Hello {world} @ 5€");
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );

    let message = http.message(ACME.api_key, &id).body;
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["to"], "+4915112345678");
    assert_eq!(message["from"], "ACME");
    assert_eq!(message["attempts"], 1);
    assert!(message["error"].is_null());
    let smsc_id = message["smsc_message_id"]
        .as_str()
        .expect("an SMSC id")
        .to_string();

    let submits = sim.submits();
    assert_eq!(submits.len(), 1);
    let submit = &submits[0];
    assert_eq!(submit.system_id, "acme");
    assert_eq!(submit.destination, "4915112345678");
    assert_eq!(
        submit.text, "Hello {world} @ 5€",
        "GSM 03.38 round trip through the SMSC"
    );
    assert_eq!(submit.data_coding, 0);
    assert_eq!(submit.esm_class, 0);
    assert_eq!(submit.registered_delivery, 1, "receipts are requested");
    assert_eq!(submit.message_id, smsc_id);
    let bound = sim.bound_sessions();
    assert!(
        bound.iter().all(|s| s.interface_version == 0x34),
        "{bound:?}"
    );
}

#[test]
fn an_emoji_text_goes_out_as_ucs2() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915112345678", "ok 👍");
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
    let submit = &sim.submits()[0];
    assert_eq!(submit.data_coding, 8);
    assert_eq!(submit.text, "ok 👍");
}

#[test]
fn many_messages_over_two_sessions_all_end_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 2\nwindow = 5",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..200)
        .map(|i| http.send(ACME.api_key, "4915112345678", &format!("msg {i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    assert_eq!(
        sim.submits().len(),
        200,
        "each message submitted exactly once"
    );
    let per_session: std::collections::HashSet<_> = sim
        .bound_sessions()
        .iter()
        .map(|s| s.system_id.clone())
        .collect();
    assert_eq!(per_session.len(), 1);
}

#[test]
fn stats_count_what_happened_to_the_tenants_messages() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let ids: Vec<String> = (0..20)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
    sim.set_faults(Faults {
        permanent_error_fraction: 1.0,
        ..Faults::default()
    });
    let bad = http.send(ACME.api_key, "4915100000001", "refused");
    http.wait_for_status(ACME.api_key, &[bad], &["failed"], Duration::from_secs(20));
    let stats = http.get("/v1/stats", Some(ACME.api_key)).body;
    assert_eq!(stats["accepted"], 21);
    assert_eq!(stats["submitted"], 20);
    assert_eq!(stats["delivered"], 20);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["final"], 21);
    assert_eq!(http.get("/v1/stats", None).status, 401);
}

#[test]
fn health_answers_ok() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, 9, &[], ""));
    let reply = engine.http().get("/health", None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ok");
}

#[test]
fn the_tenant_can_force_ucs2_or_insist_on_gsm() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let reply = http.post_message(
        ACME.api_key,
        serde_json::json!({"text": "plain", "encoding": "ucs2"}),
    );
    assert_eq!(reply.status, 202);
    let id = reply.body["id"].as_str().unwrap().to_string();
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );
    assert_eq!(sim.submits()[0].data_coding, 8);
    assert_eq!(sim.submits()[0].text, "plain");
    assert_eq!(http.message(ACME.api_key, &id).body["encoding"], "ucs2");
    let refused = http.post_message(
        ACME.api_key,
        serde_json::json!({"text": "ok 👍", "encoding": "gsm"}),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["field"], "encoding");
    let bad = http.post_message(ACME.api_key, serde_json::json!({"encoding": "latin1"}));
    assert_eq!(bad.body["field"], "encoding");
}
