//! Batches (one request, one commit, answers in order) and idempotent
//! retries (same key, same answer, nothing created twice).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use smppd_actors::simulator::Faults;
use support::*;

fn batch_body(n: usize, prefix: &str) -> String {
    let messages: Vec<Value> = (0..n)
        .map(|i| json!({"to": "4915100000001", "from": "ACME", "text": format!("{prefix}{i}"), "client_ref": format!("ref-{i}")}))
        .collect();
    json!({ "messages": messages }).to_string()
}

fn post_with_key(
    engine: &TestEngine,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, Option<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(format!("http://{}{path}", engine.addr))
        .header("Authorization", format!("Bearer {}", ACME.api_key))
        .header("Content-Type", "application/json");
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let mut response = request.send(body).unwrap();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    let status = response.status().as_u16();
    let body = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    (status, replayed, body)
}

fn accepted(engine: &TestEngine) -> u64 {
    engine.http().get("/v1/stats", Some(ACME.api_key)).body["accepted"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_batch_of_1000_gets_1000_ids_in_order_and_all_are_delivered() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "sessions = 2\nwindow = 50",
    ));
    let (status, _, body) =
        post_with_key(&engine, "/v1/messages/batch", None, &batch_body(1000, "b"));
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    let ids: Vec<String> = results
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_string())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in request order");
    assert_eq!(results[7]["client_ref"], "ref-7");
    engine
        .http()
        .wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(60));
    let texts: Vec<String> = sim.submits().into_iter().map(|s| s.text).collect();
    assert_eq!(texts.len(), 1000);
    assert_eq!(
        engine.http().message(ACME.api_key, &ids[7]).body["client_ref"],
        "ref-7"
    );
}

#[test]
fn a_retried_batch_with_its_idempotency_key_creates_nothing_new() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let body = batch_body(50, "x");
    let (status, replayed, first) =
        post_with_key(&engine, "/v1/messages/batch", Some("batch-1"), &body);
    assert_eq!((status, replayed), (200, None));
    let (status, replayed, again) =
        post_with_key(&engine, "/v1/messages/batch", Some("batch-1"), &body);
    assert_eq!(status, 200);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again, first, "the first answer, again");
    assert_eq!(accepted(&engine), 50, "nothing created twice");
    let (status, _, problem) = post_with_key(
        &engine,
        "/v1/messages/batch",
        Some("batch-1"),
        &batch_body(3, "y"),
    );
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "urn:smppd:problem:idempotency-key-reused");
}

#[test]
fn a_single_message_with_an_idempotency_key_is_created_once() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let body = r#"{"to":"4915100000001","from":"ACME","text":"once","client_ref":"order-9"}"#;
    let (s1, _, a) = post_with_key(&engine, "/v1/messages", Some("k-1"), body);
    let (s2, replayed, b) = post_with_key(&engine, "/v1/messages", Some("k-1"), body);
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a, b);
    assert_eq!(a["client_ref"], "order-9");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(accepted(&engine), 1);
    let (s3, _, c) = post_with_key(&engine, "/v1/messages", Some("k-2"), body);
    assert_eq!(s3, 202);
    assert_ne!(a["id"], c["id"], "another key is another message");
    let (status, _, bad) = post_with_key(&engine, "/v1/messages", Some("has space"), body);
    assert_eq!(status, 400);
    assert_eq!(bad["field"], "Idempotency-Key");
}

#[test]
fn invalid_items_are_answered_in_place_and_the_rest_is_accepted() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let body = json!({"messages": [
        {"to": "4915100000001", "from": "ACME", "text": "good"},
        {"to": "not a number", "from": "ACME", "text": "bad"},
        "not an object",
        {"to": "4915100000001", "from": "ACME", "text": "also good"},
    ]})
    .to_string();
    let (status, _, body) = post_with_key(&engine, "/v1/messages/batch", None, &body);
    assert_eq!(status, 200);
    let r = body["results"].as_array().unwrap();
    assert!(r[0]["id"].is_string() && r[3]["id"].is_string());
    assert_eq!(r[1]["error"]["field"], "messages[1].to");
    assert_eq!(r[2]["error"]["status"], 400);
    assert_eq!(accepted(&engine), 2);
}

#[test]
fn malformed_batches_are_refused_whole() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    for body in [
        json!({"messages": []}).to_string(),
        json!({"message": [{}]}).to_string(),
        batch_body(1001, "z"),
    ] {
        let (status, _, problem) = post_with_key(&engine, "/v1/messages/batch", None, &body);
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], "messages");
    }
    assert_eq!(accepted(&engine), 0);
}

#[test]
fn a_batch_takes_one_accept_token_per_message() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text_with(
        &db,
        free_port(),
        &[ACME],
        "max_accept_rate = 10",
        "",
    ));
    let (status, _, body) =
        post_with_key(&engine, "/v1/messages/batch", None, &batch_body(30, "r"));
    assert_eq!(status, 200);
    let r = body["results"].as_array().unwrap();
    let ok = r.iter().filter(|x| x["id"].is_string()).count();
    assert!((10..=11).contains(&ok), "{ok} accepted of 30 at 10/s");
    let limited = r.iter().find(|x| x["error"].is_object()).unwrap();
    assert_eq!(limited["error"]["type"], "urn:smppd:problem:rate-limited");
}
