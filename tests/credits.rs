//! Credit: accept reserves, a successful submit captures, a permanent
//! failure or expiry releases; the balance is exact under concurrency.

mod support;

use std::time::Duration;

use serde_json::json;
use smppd_actors::simulator::Faults;
use support::*;

const PRICED: &str = "price_per_part = 0.05\ncredit = 1.0";

fn send_concurrently(engine: &TestEngine, n_threads: usize, each: usize) -> Vec<Reply> {
    let handles: Vec<_> = (0..n_threads)
        .map(|t| {
            let addr = engine.addr;
            std::thread::spawn(move || {
                let http = Http::new(addr);
                (0..each)
                    .map(|i| http.post_message(ACME.api_key, json!({"text": format!("{t}-{i}")})))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

#[test]
fn concurrent_sends_are_charged_exactly_and_the_rest_get_402() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text_with(
        &db,
        sim.local_addr().port(),
        &[ACME],
        PRICED,
        "",
    ));
    let http = engine.http();
    assert_eq!(
        http.get("/v1/balance", Some(ACME.api_key)).body["available"],
        1.0
    );

    let replies = send_concurrently(&engine, 6, 5);
    let accepted: Vec<String> = replies
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        accepted.len(),
        20,
        "1.0 / 0.05 = 20 messages, whatever the concurrency"
    );
    let refused = replies.iter().find(|r| r.status == 402).expect("a 402");
    assert_eq!(refused.content_type, "application/problem+json");
    assert_eq!(
        refused.body["type"],
        "urn:smppd:problem:insufficient-credit"
    );

    http.wait_for_status(
        ACME.api_key,
        &accepted,
        &["delivered"],
        Duration::from_secs(20),
    );
    let balance = http.get("/v1/balance", Some(ACME.api_key)).body;
    assert_eq!(balance["available"], 0.0);
    assert_eq!(balance["reserved"], 0.0);
    assert_eq!(balance["spent"], 1.0);
    assert_eq!(http.message(ACME.api_key, &accepted[0]).body["price"], 0.05);
}

#[test]
fn permanent_failures_and_expiry_release_the_reservation() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            permanent_error_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text_with(
        &db,
        sim.local_addr().port(),
        &[ACME],
        PRICED,
        "",
    ));
    let http = engine.http();
    let failed: Vec<String> = (0..4)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("f{i}")))
        .collect();
    http.wait_for_status(ACME.api_key, &failed, &["failed"], Duration::from_secs(20));
    let balance = http.get("/v1/balance", Some(ACME.api_key)).body;
    assert_eq!(balance["available"], 1.0, "{balance}");
    assert_eq!(balance["spent"], 0.0);

    sim.set_faults(Faults {
        refuse_binds: true,
        ..Faults::default()
    });
    sim.drop_connections();
    let expiring = http.post_message(ACME.api_key, json!({"validity": 1}));
    let id = expiring.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        http.get("/v1/balance", Some(ACME.api_key)).body["reserved"],
        0.05
    );
    http.wait_for_status(ACME.api_key, &[id], &["expired"], Duration::from_secs(10));
    let balance = http.get("/v1/balance", Some(ACME.api_key)).body;
    assert_eq!(balance["available"], 1.0, "{balance}");
    assert_eq!(balance["reserved"], 0.0);
}

#[test]
fn a_tenant_without_a_price_has_no_credit_control() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let reply = engine.http().get("/v1/balance", Some(ACME.api_key));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["credit_control"], false);
}

#[test]
fn the_operator_tops_up_credit_and_sending_resumes() {
    const ADMIN: &str = "operator-token-0123456789";
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let text = format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text_with(
            &db,
            sim.local_addr().port(),
            &[ACME],
            "price_per_part = 0.5\ncredit = 0.5",
            ""
        )
    );
    let engine = TestEngine::start(&text);
    let http = engine.http();
    assert_eq!(http.post_message(ACME.api_key, json!({})).status, 202);
    assert_eq!(http.post_message(ACME.api_key, json!({})).status, 402);
    let top_up =
        |key: Option<&str>, body: &str| http.post("/admin/v1/tenants/acme/credit", key, body);
    assert_eq!(
        top_up(Some(ACME.api_key), r#"{"amount": 10}"#).status,
        401,
        "a tenant cannot top itself up"
    );
    assert_eq!(top_up(Some(ADMIN), r#"{"amount": "lots"}"#).status, 400);
    assert_eq!(
        http.post(
            "/admin/v1/tenants/nobody/credit",
            Some(ADMIN),
            r#"{"amount": 1}"#
        )
        .status,
        404
    );
    let reply = top_up(Some(ADMIN), r#"{"amount": 1.5}"#);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["available"], 1.5);
    assert_eq!(http.post_message(ACME.api_key, json!({})).status, 202);
    let all = http.get("/admin/v1/connections", Some(ADMIN)).body;
    assert_eq!(all["connections"][0]["tenant"], "acme");
    assert_eq!(
        http.get("/admin/v1/connections", Some(ACME.api_key)).status,
        401
    );
}

#[test]
fn the_operator_api_is_off_without_an_admin_token() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text_with(&db, free_port(), &[ACME], PRICED, ""));
    let reply = engine.http().post(
        "/admin/v1/tenants/acme/credit",
        Some(ACME.api_key),
        r#"{"amount": 1}"#,
    );
    assert_eq!(reply.status, 404);
}
