//! The resilience scenario of the session work: two tenants, 10% throttle
//! answers and a connection drop every N submits. Every message must end
//! terminal, none lost, and only messages in flight at a drop may reach the
//! SMSC twice (≤ window × drops).
//!
//! CI runs 1,000 messages; the full scenario is
//! `SMPPD_CHAOS_MESSAGES=10000 cargo test --release --test chaos -- --nocapture`.
//!
//! And an SMSC that loses receipts: with `engine.receipt_timeout_s`, every
//! message still ends in a final status.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use smppd_actors::simulator::Faults;
use support::*;

const WINDOW: u64 = 10;

#[test]
fn two_tenants_under_throttling_and_connection_drops_lose_nothing() {
    let total: usize = std::env::var("SMPPD_CHAOS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let drop_every = (total as u64 / 10).max(50);
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME, BETA],
        Faults {
            throttle_fraction: 0.1,
            drop_every_n_submits: Some(drop_every),
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        &format!("sessions = 2\nwindow = {WINDOW}"),
    ));
    let started = Instant::now();
    let senders: Vec<_> = [ACME.api_key, BETA.api_key]
        .into_iter()
        .flat_map(|key| (0..4).map(move |t| (key, t)))
        .map(|(key, t)| {
            let addr = engine.addr;
            std::thread::spawn(move || {
                let http = Http::new(addr);
                (0..total / 8)
                    .map(|i| {
                        (
                            key,
                            http.send(key, "4915100000001", &format!("{key}-{t}-{i}")),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let accepted: Vec<(&str, String)> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let accept_time = started.elapsed();
    let http = engine.http();
    for key in [ACME.api_key, BETA.api_key] {
        let ids: Vec<String> = accepted
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, id)| id.clone())
            .collect();
        http.wait_for_status(key, &ids, &["delivered"], Duration::from_secs(300));
    }
    let all_done = started.elapsed();

    let stats = sim.stats();
    let drops = stats.connections.saturating_sub(4);
    let mut times_accepted: HashMap<String, u64> = HashMap::new();
    for s in sim.submits() {
        *times_accepted.entry(s.text).or_default() += 1;
    }
    let twice = times_accepted.values().filter(|n| **n > 1).count() as u64;
    println!(
        "chaos: {} messages, accepted in {:.1?}, all delivered after {:.1?}; {} drops, {} throttles, {} submitted twice (bound {})",
        accepted.len(),
        accept_time,
        all_done,
        drops,
        stats.submits_received - stats.submits_accepted,
        twice,
        WINDOW * drops
    );
    assert_eq!(
        times_accepted.len(),
        accepted.len(),
        "every message reached the SMSC"
    );
    assert!(drops >= 5, "the SMSC dropped connections: {stats:?}");
    assert!(
        twice <= WINDOW * drops,
        "{twice} duplicates for {drops} drops"
    );
}

#[test]
fn with_a_receipt_timeout_every_message_ends_final_even_when_the_smsc_loses_receipts() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            lost_receipt_fraction: 0.3,
            undeliverable_fraction: 0.1,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&format!(
        "[engine]\nreceipt_timeout_s = 2\n{}",
        config_text(&db, sim.local_addr().port(), &[ACME], "")
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..200)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    http.wait_for_status(
        ACME.api_key,
        &ids,
        &["delivered", "undeliverable", "unknown"],
        Duration::from_secs(60),
    );
    let mut by_status: HashMap<String, u64> = HashMap::new();
    for id in &ids {
        let message = http.message(ACME.api_key, id).body;
        let status = message["status"].as_str().unwrap_or_default().to_string();
        if status == "unknown" {
            assert_eq!(message["error"]["name"], "RECEIPT_TIMEOUT", "{message}");
        }
        *by_status.entry(status).or_default() += 1;
    }
    let stats = sim.stats();
    println!("lost receipts: {by_status:?}, {stats:?}");
    assert!(stats.receipts_lost > 0, "{stats:?}");
    // Each message was submitted once: those whose receipt was lost are
    // `unknown`, every other one has its receipt's outcome.
    assert_eq!(stats.submits_accepted, 200, "{stats:?}");
    assert_eq!(
        by_status.get("unknown").copied().unwrap_or(0),
        stats.receipts_lost
    );
    assert_eq!(
        by_status.get("delivered").copied().unwrap_or(0)
            + by_status.get("undeliverable").copied().unwrap_or(0),
        stats.receipts_sent
    );
}
