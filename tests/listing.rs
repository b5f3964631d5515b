//! Reading back: a tenant lists its own messages and inbound messages,
//! newest first, with filters and a cursor that never skips or repeats.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

fn page(http: &Http, key: &str, query: &str) -> (Vec<String>, Option<String>) {
    let reply = http.get(&format!("/v1/messages?{query}"), Some(key));
    assert_eq!(reply.status, 200, "{reply:?}");
    let ids = reply.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    (ids, reply.body["next_cursor"].as_str().map(str::to_string))
}

#[test]
fn pages_walk_every_own_message_once_newest_first_while_new_ones_arrive() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME, BETA], ""));
    let http = engine.http();
    let sent: Vec<String> = (0..25)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.send(BETA.api_key, "4915100000002", "not acme's");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=10&cursor={c}"),
            None => "limit=10".to_string(),
        };
        let (ids, next) = page(&http, ACME.api_key, &query);
        seen.extend(ids);
        // Newer messages arriving between pages do not shift the pages.
        http.send(ACME.api_key, "4915100000001", "arrives meanwhile");
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(
        seen[..25],
        expected[..],
        "newest first, each once, only acme's"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

#[test]
fn the_status_and_time_filters_narrow_the_list() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let delivered: Vec<String> = (0..3)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("d{i}")))
        .collect();
    http.wait_for_status(
        ACME.api_key,
        &delivered,
        &["delivered"],
        Duration::from_secs(20),
    );
    let (ids, _) = page(&http, ACME.api_key, "status=delivered");
    assert_eq!(ids.len(), 3);
    let (ids, _) = page(&http, ACME.api_key, "status=queued");
    assert!(ids.is_empty());
    let (ids, _) = page(&http, ACME.api_key, "until=2000-01-01T00:00:00Z");
    assert!(ids.is_empty());
    let (ids, _) = page(
        &http,
        ACME.api_key,
        "since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
    );
    assert_eq!(ids.len(), 3);
}

#[test]
fn bad_query_parameters_are_named() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let http = engine.http();
    for (query, field) in [
        ("status=sent", "status"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("since=yesterday", "since"),
        ("cursor=zz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let reply = http.get(&format!("/v1/messages?{query}"), Some(ACME.api_key));
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.body["field"], field, "{query}");
    }
    assert_eq!(http.get("/v1/messages", None).status, 401);
}

#[test]
fn inbound_messages_are_listed_decoded_and_only_for_their_tenant() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "",
    ));
    let http = engine.http();
    wait_for_binds(&sim, 2);
    sim.send_mo("acme", "4915100000009", "12345", "STOP {all}");
    eventually(Duration::from_secs(10), "the MO is stored", || {
        http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let mo = http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"][0].clone();
    assert_eq!(mo["from"], "4915100000009");
    assert_eq!(mo["to"], "12345");
    assert_eq!(mo["text"], "STOP {all}");
    assert_eq!(mo["channel"], "sim");
    let beta = http.get("/v1/inbound", Some(BETA.api_key)).body;
    assert_eq!(beta["inbound"].as_array().unwrap().len(), 0);
}

#[test]
fn the_parts_of_an_incomplete_inbound_message_are_delivered_alone_after_the_timeout() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let text = format!(
        "[engine]\nmo_parts_timeout_s = 1\n{}",
        config_text(&db, sim.local_addr().port(), &[ACME], "")
    );
    let engine = TestEngine::start(&text);
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let long: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    // Part 2 of 3 never comes.
    sim.send_mo_parts("acme", "4915100000009", "12345", &long, 9, &[3, 1]);
    eventually(Duration::from_secs(15), "two inbound messages", || {
        http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    let inbound = http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"].clone();
    // In sequence order, so newest first is part 3, then part 1.
    assert_eq!(inbound[1]["text"], &long[..153]);
    assert_eq!(inbound[0]["text"], &long[306..]);
    assert_eq!(inbound[0]["from"], "4915100000009");
}

#[test]
fn a_concatenated_inbound_message_arrives_as_one_even_out_of_order() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    sim.send_mo_parts("acme", "4915100000009", "12345", &text, 77, &[3, 1, 2]);
    eventually(Duration::from_secs(10), "one inbound message", || {
        http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let mo = http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"][0].clone();
    assert_eq!(mo["text"], text.as_str());
    assert_eq!(mo["from"], "4915100000009");
    eventually(Duration::from_secs(10), "every part acknowledged", || {
        let s = sim.stats();
        s.mo_sent == 3 && s.queued_deliveries == 0
    });
}

#[test]
fn an_inbound_message_split_with_sar_tlvs_arrives_as_one() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let text: String = (0..300)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    sim.send_mo_sar_parts("acme", "4915100000009", "12345", &text, 0xBEEF, &[2, 1]);
    eventually(Duration::from_secs(10), "one inbound message", || {
        http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let mo = http.get("/v1/inbound", Some(ACME.api_key)).body["inbound"][0].clone();
    assert_eq!(mo["text"], text.as_str());
    eventually(Duration::from_secs(10), "both parts acknowledged", || {
        let s = sim.stats();
        s.mo_sent == 2 && s.queued_deliveries == 0
    });
}
