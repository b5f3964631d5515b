//! Per-tenant quotas hold exactly under concurrent load: accept rate
//! (429 with Retry-After) and messages in flight (429).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use smppd_actors::simulator::Faults;
use support::*;

/// `threads` senders post `each` messages as fast as they can; returns the
/// replies and how long it took.
fn burst(
    engine: &TestEngine,
    key: &'static str,
    threads: usize,
    each: usize,
) -> (Vec<Reply>, Duration) {
    let replies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, replies) = (engine.addr, replies.clone());
            std::thread::spawn(move || {
                let http = Http::new(addr);
                for i in 0..each {
                    let reply = http.post_message(key, json!({"text": format!("{t}-{i}")}));
                    replies.lock().unwrap().push(reply);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let took = start.elapsed();
    let replies = std::mem::take(&mut *replies.lock().unwrap());
    (replies, took)
}

#[test]
fn the_accept_rate_is_enforced_exactly_with_retry_after() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config_text_with(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "max_accept_rate = 10",
        "",
    ));
    let (replies, took) = burst(&engine, ACME.api_key, 8, 25);
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(accepted + limited.len(), 200, "only 202 or 429");
    // A burst of 10, then 10 a second: never more, however many race.
    let allowed = 10.0 + 10.0 * took.as_secs_f64();
    assert!(
        accepted as f64 <= allowed + 1.0,
        "{accepted} accepted in {took:?}"
    );
    assert!(accepted >= 10, "the burst is granted");
    for r in &limited {
        assert_eq!(r.body["type"], "urn:smppd:problem:rate-limited");
        let after: u64 = r
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(after >= 1);
    }
    let stats = engine.http().get("/v1/stats", Some(ACME.api_key)).body;
    assert_eq!(
        stats["accepted"], accepted as u64,
        "every 202 and nothing else was stored"
    );
}

#[test]
fn the_in_flight_limit_is_enforced_exactly_and_frees_up_as_messages_go_out() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            refuse_binds: true,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text_with(
        &db,
        sim.local_addr().port(),
        &[ACME],
        "max_in_flight = 7",
        "",
    ));
    let (replies, _) = burst(&engine, ACME.api_key, 8, 5);
    let accepted: Vec<String> = replies
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        accepted.len(),
        7,
        "exactly the limit, under 8 concurrent senders"
    );
    let full = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(full.body["type"], "urn:smppd:problem:queue-full");
    assert!(full.retry_after.is_some());
    let http = engine.http();
    assert_eq!(
        http.get("/v1/stats", Some(ACME.api_key)).body["queued"],
        7,
        "the tenant sees its queue at the limit"
    );

    sim.set_faults(Faults::default());
    http.wait_for_status(
        ACME.api_key,
        &accepted,
        &["delivered"],
        Duration::from_secs(20),
    );
    assert_eq!(http.get("/v1/stats", Some(ACME.api_key)).body["queued"], 0);
    assert_eq!(
        http.post_message(ACME.api_key, json!({})).status,
        202,
        "room again"
    );
}
