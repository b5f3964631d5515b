//! Bad requests get a clear problem+json answer naming what is wrong, and
//! create nothing.

mod support;

use support::*;

fn engine() -> (tempfile::TempDir, TestEngine) {
    let (dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, 9, &[ACME], ""));
    (dir, engine)
}

#[test]
fn malformed_json_is_a_400_problem() {
    let (_dir, engine) = engine();
    let reply = engine
        .http()
        .post("/v1/messages", Some(ACME.api_key), "{\"to\": ");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["type"], "urn:smppd:problem:malformed-body");
    assert_eq!(reply.body["status"], 400);
}

#[test]
fn a_missing_field_is_named() {
    let (_dir, engine) = engine();
    let reply = engine.http().post(
        "/v1/messages",
        Some(ACME.api_key),
        r#"{"to":"4915100000001","from":"ACME"}"#,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["type"], "urn:smppd:problem:invalid-field");
    assert_eq!(reply.body["field"], "text");
}

#[test]
fn a_bad_number_is_named() {
    let (_dir, engine) = engine();
    for to in [
        "\"+49 151 abc\"",
        "\"\"",
        "4915100000001",
        "\"123456789012345678901\"",
    ] {
        let body = format!(r#"{{"to":{to},"from":"ACME","text":"hi"}}"#);
        let reply = engine
            .http()
            .post("/v1/messages", Some(ACME.api_key), &body);
        assert_eq!(reply.status, 400, "{to}");
        assert_eq!(reply.body["field"], "to", "{to}");
    }
}

#[test]
fn a_text_longer_than_ten_sms_parts_is_refused_with_the_limit() {
    let (_dir, engine) = engine();
    let body = format!(
        r#"{{"to":"4915100000001","from":"ACME","text":"{}"}}"#,
        "x".repeat(1531)
    );
    let reply = engine
        .http()
        .post("/v1/messages", Some(ACME.api_key), &body);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["field"], "text");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 10"),
        "{:?}",
        reply.body
    );
}

#[test]
fn a_body_over_the_limit_is_a_413_problem() {
    let (_dir, engine) = engine();
    let body = format!(
        r#"{{"to":"4915100000001","from":"ACME","text":"{}"}}"#,
        "x".repeat(100_000)
    );
    let reply = engine
        .http()
        .post("/v1/messages", Some(ACME.api_key), &body);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.content_type, "application/problem+json");
}

#[test]
fn unknown_paths_and_methods_are_problems_too() {
    let (_dir, engine) = engine();
    let http = engine.http();
    let reply = http.get("/v2/nothing", Some(ACME.api_key));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.content_type, "application/problem+json");
    let reply = http.get("/v1/messages/batch", Some(ACME.api_key));
    assert_eq!(reply.status, 405);
    assert_eq!(reply.content_type, "application/problem+json");
}

#[test]
fn rejected_requests_store_nothing() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, 9, &[ACME], ""));
    let http = engine.http();
    for body in [
        r#"{"to":"x","from":"ACME","text":"hi"}"#,
        r#"{"to":"4915100000001","text":"hi"}"#,
        "not json",
    ] {
        assert_eq!(
            http.post("/v1/messages", Some(ACME.api_key), body).status,
            400
        );
    }
    assert_eq!(
        http.post(
            "/v1/messages",
            Some("wrong-key"),
            r#"{"to":"1","from":"A","text":"x"}"#
        )
        .status,
        401
    );
    http.send(ACME.api_key, "4915100000001", "the only one");
    engine.stop();
    let store = smppd_sqlite::Store::open(&db, smppd_sqlite::StoreOptions::default()).unwrap();
    let counts = store.count_by_status("acme").unwrap();
    assert_eq!(counts.values().sum::<u64>(), 1, "{counts:?}");
}
