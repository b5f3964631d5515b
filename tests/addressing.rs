//! Addresses go out with the TON and NPI their channel sets, else with the
//! ones guessed from the address.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

/// Sends one message per (from, to) through a channel with `extra` in its
/// table and returns, per message, the (TON, NPI) of its source and of its
/// destination as the simulator received them.
fn sent_ton_npi(extra: &str, sends: &[(&str, &str)]) -> Vec<((u8, u8), (u8, u8))> {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], extra));
    let http = engine.http();
    let ids: Vec<String> = sends
        .iter()
        .map(|(from, to)| {
            let body = serde_json::json!({"to": to, "from": from, "text": "hi"}).to_string();
            let reply = http.post("/v1/messages", Some(ACME.api_key), &body);
            assert_eq!(reply.status, 202, "{reply:?}");
            reply.body["id"].as_str().expect("an id").to_string()
        })
        .collect();
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(20));
    let submits = sim.submits();
    sends
        .iter()
        .map(|(from, _)| {
            let from = from.trim_start_matches('+');
            let s = submits
                .iter()
                .find(|s| s.source == from)
                .expect("a submit from that sender");
            (s.source_ton_npi, s.dest_ton_npi)
        })
        .collect()
}

#[test]
fn without_overrides_ton_and_npi_are_guessed_from_each_address() {
    let sent = sent_ton_npi(
        "",
        &[("ACME", "+4915100000001"), ("12345", "4915100000002")],
    );
    // Alphanumeric: TON 5, NPI 0. A short code: TON 0, NPI 1. More than
    // eight digits: international, TON 1, NPI 1.
    assert_eq!(sent, [((5, 0), (1, 1)), ((0, 1), (1, 1))]);
}

#[test]
fn a_channel_s_ton_and_npi_replace_the_guess_for_the_fields_it_sets() {
    let sent = sent_ton_npi(
        "source_addr_ton = 3\ndest_addr_ton = 2\ndest_addr_npi = 8",
        &[("ACME", "+4915100000001"), ("12345", "4915100000002")],
    );
    // source_addr_npi is not set: still guessed per sender.
    assert_eq!(sent, [((3, 0), (2, 8)), ((3, 1), (2, 8))]);
}
