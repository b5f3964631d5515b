//! Every submit_sm carries what its channel sets: the TON and NPI of its
//! addresses (else the ones guessed from each address), its service_type,
//! and its text in the SMSC's default alphabet.

mod support;

use std::time::Duration;

use smppd_actors::simulator::{Faults, ReceivedSubmit};
use support::*;

/// Sends one message per (from, to) through a channel with `extra` in its
/// table and returns the submits the simulator received, in the order of
/// `sends`.
fn sent(extra: &str, sends: &[(&str, &str)]) -> Vec<ReceivedSubmit> {
    sent_text(extra, sends, "hi")
}

/// [`sent`] with `text` in every message.
fn sent_text(extra: &str, sends: &[(&str, &str)], text: &str) -> Vec<ReceivedSubmit> {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], extra));
    let http = engine.http();
    let ids: Vec<String> = sends
        .iter()
        .map(|(from, to)| {
            let body = serde_json::json!({"to": to, "from": from, "text": text}).to_string();
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
            submits
                .iter()
                .find(|s| s.source == from)
                .expect("a submit from that sender")
                .clone()
        })
        .collect()
}

/// The (TON, NPI) of the source and of the destination of each submit.
fn ton_npi(submits: &[ReceivedSubmit]) -> Vec<((u8, u8), (u8, u8))> {
    submits
        .iter()
        .map(|s| (s.source_ton_npi, s.dest_ton_npi))
        .collect()
}

#[test]
fn without_overrides_ton_and_npi_are_guessed_from_each_address() {
    let sent = ton_npi(&sent(
        "",
        &[("ACME", "+4915100000001"), ("12345", "4915100000002")],
    ));
    // Alphanumeric: TON 5, NPI 0. A short code: TON 0, NPI 1. More than
    // eight digits: international, TON 1, NPI 1.
    assert_eq!(sent, [((5, 0), (1, 1)), ((0, 1), (1, 1))]);
}

#[test]
fn a_channel_s_ton_and_npi_replace_the_guess_for_the_fields_it_sets() {
    let sent = ton_npi(&sent(
        "source_addr_ton = 3\ndest_addr_ton = 2\ndest_addr_npi = 8",
        &[("ACME", "+4915100000001"), ("12345", "4915100000002")],
    ));
    // source_addr_npi is not set: still guessed per sender.
    assert_eq!(sent, [((3, 0), (2, 8)), ((3, 1), (2, 8))]);
}

#[test]
fn the_service_type_is_empty_unless_the_channel_sets_one() {
    let default = sent("", &[("ACME", "+4915100000001")]);
    assert_eq!(default[0].service_type, "");
    let set = sent("service_type = \"CMT\"", &[("ACME", "+4915100000001")]);
    assert_eq!(set[0].service_type, "CMT");
}

#[test]
fn texts_go_out_in_gsm_03_38_unless_the_smsc_takes_data_coding_0_as_latin1() {
    let text = "caf\u{e9} @ $5";
    let gsm = sent_text("", &[("ACME", "+4915100000001")], text);
    assert_eq!(gsm[0].data_coding, 0);
    // é is 0x05, @ is 0x00 and $ is 0x02 in GSM 03.38.
    assert_eq!(gsm[0].bytes, b"caf\x05 \x00 \x025");
    let latin1 = sent_text(
        "default_alphabet = \"latin1\"",
        &[("ACME", "+4915100000001")],
        text,
    );
    assert_eq!(latin1[0].data_coding, 0);
    assert_eq!(latin1[0].bytes, b"caf\xe9 @ $5");
}
