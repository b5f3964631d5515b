//! Tenants never see each other: own binds, own ids, own keys, and only
//! the senders they were given.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn each_tenants_messages_go_out_on_its_own_bind_and_end_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "",
    ));
    let http = engine.http();

    let acme: Vec<String> = (0..10)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("acme {i}")))
        .collect();
    let beta: Vec<String> = (0..10)
        .map(|i| http.send(BETA.api_key, "4915100000002", &format!("beta {i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &acme, &["delivered"], Duration::from_secs(20));
    http.wait_for_status(BETA.api_key, &beta, &["delivered"], Duration::from_secs(20));

    for submit in sim.submits() {
        let expected = if submit.text.starts_with("acme") {
            "acme"
        } else {
            "beta"
        };
        assert_eq!(
            submit.system_id, expected,
            "{} went out on the wrong bind",
            submit.text
        );
    }
    assert_eq!(sim.submits().len(), 20);
}

#[test]
fn another_tenants_message_id_is_indistinguishable_from_a_missing_one() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "",
    ));
    let http = engine.http();
    let beta_id = http.send(BETA.api_key, "4915100000002", "secret of beta");

    let foreign = http.message(ACME.api_key, &beta_id);
    let missing = http.message(ACME.api_key, "0000000000000001");
    let garbage = http.message(ACME.api_key, "not-an-id");
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.content_type, "application/problem+json");
    assert_eq!(foreign.body, missing.body, "same answer as a missing id");
    assert_eq!(garbage.body, missing.body);
    assert!(!foreign.body.to_string().contains("secret of beta"));
    assert_eq!(http.message(BETA.api_key, &beta_id).status, 200);
}

#[test]
fn a_missing_or_wrong_key_gets_401() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let body = r#"{"to":"4915100000001","from":"ACME","text":"hi"}"#;
    for key in [None, Some("wrong-key"), Some("")] {
        let reply = http.post("/v1/messages", key, body);
        assert_eq!(reply.status, 401, "{key:?}");
        assert_eq!(reply.content_type, "application/problem+json");
        assert_eq!(reply.body["type"], "urn:smppd:problem:unauthorized");
    }
    let id = http.send(ACME.api_key, "4915100000001", "hi");
    assert_eq!(http.get(&format!("/v1/messages/{id}"), None).status, 401);
    assert_eq!(
        http.get(&format!("/v1/messages/{id}"), Some("wrong-key"))
            .status,
        401
    );
    assert!(sim.submits().iter().all(|s| s.text == "hi"));
    assert_eq!(http.get("/v1/connections", None).status, 401);
}

#[test]
fn the_x_api_key_header_is_accepted_too() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, 9, &[ACME], ""));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(format!("http://{}/v1/messages", engine.addr))
        .header("X-Api-Key", ACME.api_key)
        .send(r#"{"to":"4915100000001","from":"ACME","text":"hi"}"#)
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
}

#[test]
fn a_tenant_sees_only_its_own_connections() {
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
    let reply = http.get("/v1/connections", Some(ACME.api_key));
    assert_eq!(reply.status, 200);
    let connections = reply.body["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 2);
    assert!(connections
        .iter()
        .all(|c| c["channel"] == "sim" && c["state"] == "bound"));
}

#[test]
fn a_tenant_sends_only_from_its_allowed_senders() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let port = sim.local_addr().port();
    let mut config = config_text_with(
        &db,
        port,
        &[ACME],
        "allowed_senders = [\"ACME\", \"+4930123456\"]",
        "",
    );
    config.push_str(&tenant_text(port, &BETA, "", ""));
    let engine = TestEngine::start(&config);
    let http = engine.http();
    let send = |key: &str, from: &str| {
        let body = serde_json::json!({"to": "4915100000001", "from": from, "text": "hi"});
        http.post("/v1/messages", Some(key), &body.to_string())
    };
    for from in ["ACME", "+4930123456", "4930123456"] {
        assert_eq!(send(ACME.api_key, from).status, 202, "{from}");
    }
    // Another tenant's sender, a different case, an unlisted number.
    for from in ["BETA", "acme", "4930999999"] {
        let refused = send(ACME.api_key, from);
        assert_eq!(refused.status, 400, "{from}");
        assert_eq!(refused.body["type"], "urn:smppd:problem:invalid-field");
        assert_eq!(refused.body["field"], "from");
    }
    // In a batch only the item is refused.
    let batch = serde_json::json!({"messages": [
        {"to": "4915100000001", "from": "ACME", "text": "good"},
        {"to": "4915100000001", "from": "BETA", "text": "bad"},
    ]});
    let reply = http.post("/v1/messages/batch", Some(ACME.api_key), &batch.to_string());
    assert_eq!(reply.status, 200, "{reply:?}");
    let results = reply.body["results"].as_array().expect("results").clone();
    assert!(results[0]["id"].is_string(), "{results:?}");
    assert_eq!(results[1]["error"]["field"], "messages[1].from");
    // Nothing refused was stored or sent.
    eventually(Duration::from_secs(20), "four messages submitted", || {
        sim.submits().len() == 4
    });
    assert!(sim
        .submits()
        .iter()
        .all(|s| s.source != "BETA" && s.source != "acme"));
    // The setting is per tenant: beta may send from anything.
    assert_eq!(send(BETA.api_key, "ANYTHING").status, 202);
}
