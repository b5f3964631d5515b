//! API keys: kept only as SHA-256 digests, rotated through the operator
//! API with an optional grace period, and a rotation survives restarts.

mod support;

use std::time::Duration;

use support::*;

const ADMIN: &str = "operator-token-0123456789";

fn config(db: &std::path::Path) -> String {
    format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(db, free_port(), &[ACME], "")
    )
}

fn works(http: &Http, key: &str) -> bool {
    match http.get("/v1/balance", Some(key)).status {
        200 => true,
        401 => false,
        other => panic!("unexpected status {other}"),
    }
}

fn rotate(http: &Http, body: &str) -> Reply {
    http.post("/admin/v1/tenants/acme/keys/rotate", Some(ADMIN), body)
}

#[test]
fn a_rotation_without_grace_revokes_the_old_key_at_once() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config(&db));
    let http = engine.http();
    assert!(works(&http, ACME.api_key));

    let reply = rotate(&http, "");
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let new_key = reply.body["api_key"].as_str().unwrap().to_string();
    assert!(
        new_key.starts_with("sk_") && new_key.len() == 67,
        "{new_key}"
    );
    assert_eq!(reply.body["tenant"], "acme");

    assert!(works(&http, &new_key));
    assert!(!works(&http, ACME.api_key), "the old key is revoked");
    assert_eq!(
        http.get("/v1/messages", Some(&new_key)).status,
        200,
        "the new key reaches the same tenant's data"
    );
}

#[test]
fn during_the_grace_period_both_keys_work_and_after_it_only_the_new_one() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config(&db));
    let http = engine.http();
    let reply = rotate(&http, r#"{"grace_seconds": 2}"#);
    assert_eq!(reply.status, 201);
    let new_key = reply.body["api_key"].as_str().unwrap().to_string();
    assert!(works(&http, &new_key));
    assert!(works(&http, ACME.api_key), "the old key is still in grace");
    eventually(Duration::from_secs(10), "the old key expires", || {
        !works(&http, ACME.api_key)
    });
    assert!(works(&http, &new_key));
}

#[test]
fn only_the_operator_rotates_keys_and_bad_requests_are_refused() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config(&db));
    let http = engine.http();
    let path = "/admin/v1/tenants/acme/keys/rotate";
    assert_eq!(http.post(path, Some(ACME.api_key), "").status, 401);
    assert_eq!(rotate(&http, r#"{"grace_seconds": -1}"#).status, 400);
    assert_eq!(rotate(&http, r#"{"grace_seconds": "soon"}"#).status, 400);
    assert_eq!(rotate(&http, "{not json").status, 400);
    assert_eq!(
        http.post("/admin/v1/tenants/nobody/keys/rotate", Some(ADMIN), "")
            .status,
        404
    );
    assert!(works(&http, ACME.api_key), "nothing was rotated");
}

#[test]
fn a_rotated_key_survives_a_restart_and_the_config_key_stays_revoked() {
    let (_dir, db) = temp_db();
    let text = config(&db);
    let engine = TestEngine::start(&text);
    let new_key = rotate(&engine.http(), "").body["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    engine.stop();

    let engine = TestEngine::start(&text);
    let http = engine.http();
    assert!(works(&http, &new_key));
    assert!(!works(&http, ACME.api_key));
}

#[test]
fn the_database_holds_no_api_key_in_plain_text() {
    let (dir, db) = temp_db();
    let engine = TestEngine::start(&config(&db));
    let new_key = rotate(&engine.http(), "").body["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    engine.stop();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!bytes.is_empty());
    for key in [ACME.api_key, new_key.as_str()] {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "found {key} in the database files"
        );
    }
}

#[test]
fn a_new_key_in_the_config_file_revokes_the_tenants_other_keys() {
    let (_dir, db) = temp_db();
    let text = config(&db);
    let engine = TestEngine::start(&text);
    let rotated = rotate(&engine.http(), "").body["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    engine.stop();

    const EDITED: &str = "acme-key-edited-in-the-config-0001";
    let engine = TestEngine::start(&text.replace(ACME.api_key, EDITED));
    let http = engine.http();
    assert!(works(&http, EDITED));
    assert!(!works(&http, &rotated));
    assert!(!works(&http, ACME.api_key));
}
