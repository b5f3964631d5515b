//! Long messages: split into parts with a concatenation UDH, each part
//! submitted and tracked with its own SMSC id and receipt; the message is
//! final when every part is; the price is parts × part price.

mod support;

use std::time::Duration;

use serde_json::json;
use smppd_actors::simulator::Faults;
use support::*;

/// A 400-character text, delivered, and where it went.
struct Sent {
    _dir: tempfile::TempDir,
    http: Http,
    _engine: TestEngine,
    sim: smppd_actors::simulator::SimulatorHandle,
    id: String,
    text: String,
}

/// Sends a 400-character text (3 parts) through a channel with `extra`
/// and waits for it to be delivered.
fn send_400_characters(extra: &str) -> Sent {
    let (dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text_with(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "price_per_part = 0.05\ncredit = 1.0",
        extra,
    ));
    let http = engine.http();
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let id = http.send(ACME.api_key, "4915100000001", &text);
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );
    Sent {
        _dir: dir,
        http,
        _engine: engine,
        sim,
        id,
        text,
    }
}

#[test]
fn a_400_character_text_goes_out_as_three_parts_and_is_delivered_when_all_are() {
    let sent = send_400_characters("");
    let (http, sim, id, text) = (&sent.http, &sent.sim, &sent.id, &sent.text);
    let submits = sim.submits();
    assert_eq!(submits.len(), 3);
    let reference = submits[0].udh.as_ref().expect("a UDH")[3];
    for (i, s) in submits.iter().enumerate() {
        assert_eq!(s.esm_class & 0x40, 0x40, "UDHI set");
        assert_eq!(
            s.udh.as_deref(),
            Some(&[0x05, 0x00, 0x03, reference, 3, i as u8 + 1][..])
        );
        assert_eq!(s.data_coding, 0);
    }
    let rejoined: String = submits.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(&rejoined, text);
    assert_eq!(submits[0].text.chars().count(), 153);

    let message = http.message(ACME.api_key, id).body;
    assert_eq!(message["parts"], 3);
    assert_eq!(message["price"], 0.15);
    let parts = message["part_status"]
        .as_array()
        .expect("the parts are shown");
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["status"], "delivered");
        assert_eq!(p["smsc_message_id"], submits[i].message_id.as_str());
    }
    let balance = http.get("/v1/balance", Some(ACME.api_key)).body;
    assert_eq!(balance["spent"], 0.15);
}

#[test]
fn a_long_ucs2_text_is_split_at_67_characters_without_cutting_an_emoji() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    let http = engine.http();
    let text = format!("{}👍{}", "ж".repeat(66), "ж".repeat(30));
    let id = http.send(ACME.api_key, "4915100000001", &text);
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(20),
    );
    let submits = sim.submits();
    assert_eq!(submits.len(), 2);
    assert!(submits.iter().all(|s| s.data_coding == 8));
    assert_eq!(submits[0].text, "ж".repeat(66));
    assert!(submits[1].text.starts_with('👍'));
}

#[test]
fn an_undeliverable_part_makes_the_long_message_undeliverable() {
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
    let id = http.send(ACME.api_key, "4915100000001", &"x".repeat(200));
    http.wait_for_status(
        ACME.api_key,
        std::slice::from_ref(&id),
        &["undeliverable"],
        Duration::from_secs(20),
    );
    assert_eq!(
        http.message(ACME.api_key, &id).body["error"]["name"],
        "UNDELIV"
    );
}

#[test]
fn a_long_message_needs_as_many_window_slots_as_parts() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            stall_responses: Some(Duration::from_millis(50)),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "window = 4",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..6)
        .map(|i| {
            let reply = http.post_message(
                ACME.api_key,
                json!({ "text": format!("{i}{}", "y".repeat(300)) }),
            );
            reply.body["id"].as_str().unwrap().to_string()
        })
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    // 301 characters: 153 + 148, two parts each.
    assert_eq!(
        sim.submits().len(),
        12,
        "6 messages × 2 parts, none sent twice"
    );
    assert!(sim.stats().max_submits_in_flight <= 4, "{:?}", sim.stats());
}

#[test]
fn with_long_messages_sar_the_parts_are_marked_by_sar_tlvs_instead_of_a_udh() {
    let sent = send_400_characters("long_messages = \"sar\"");
    let (http, sim, id, text) = (&sent.http, &sent.sim, &sent.id, &sent.text);
    let submits = sim.submits();
    assert_eq!(submits.len(), 3);
    let (reference, _, _) = submits[0].sar.expect("SAR TLVs");
    for (i, s) in submits.iter().enumerate() {
        assert_eq!(s.esm_class & 0x40, 0, "no UDHI");
        assert_eq!(s.udh, None);
        assert_eq!(s.sar, Some((reference, 3, i as u8 + 1)));
    }
    let rejoined: String = submits.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(&rejoined, text);
    let message = http.message(ACME.api_key, id).body;
    assert_eq!(message["parts"], 3);
    assert_eq!(message["price"], 0.15);
    assert_eq!(message["part_status"].as_array().map(Vec::len), Some(3));
}

#[test]
fn with_long_messages_payload_the_text_goes_whole_in_message_payload_and_is_priced_by_parts() {
    let sent = send_400_characters("long_messages = \"payload\"");
    let (http, sim, id, text) = (&sent.http, &sent.sim, &sent.id, &sent.text);
    let submits = sim.submits();
    assert_eq!(submits.len(), 1, "one submit_sm for the whole text");
    let s = &submits[0];
    assert!(s.in_payload);
    assert_eq!((s.udh.as_ref(), s.sar, s.esm_class), (None, None, 0));
    assert_eq!(&s.text, text);
    let message = http.message(ACME.api_key, id).body;
    assert_eq!(message["parts"], 3, "still three SMS to the handset");
    assert_eq!(message["price"], 0.15);
    assert_eq!(message["smsc_message_id"], s.message_id.as_str());
    let balance = http.get("/v1/balance", Some(ACME.api_key)).body;
    assert_eq!(balance["spent"], 0.15);
    // A short text is a plain submit_sm all the same.
    let short = http.send(ACME.api_key, "4915100000001", "short");
    http.wait_for_status(
        ACME.api_key,
        &[short],
        &["delivered"],
        Duration::from_secs(20),
    );
    let last = sim.submits().pop().unwrap();
    assert!(!last.in_payload);
    assert_eq!(last.text, "short");
}
