//! Live events over SSE: every subscriber of a tenant sees that tenant's
//! status changes and inbound messages, and never another tenant's.

mod support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

/// Opens a subscription and forwards its `data:` lines until `until`
/// matches one or the stream ends (the body timeout closes it).
fn subscribe(addr: std::net::SocketAddr, key: &str, timeout: Duration) -> mpsc::Receiver<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_recv_body(Some(timeout))
        .build()
        .into();
    let response = agent
        .get(format!("http://{addr}/v1/events"))
        .header("Authorization", format!("Bearer {key}"))
        .call()
        .expect("subscribed");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data: ") {
                if tx.send(data.to_string()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

#[test]
fn a_hundred_subscribers_each_see_their_tenants_events_and_only_those() {
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
    let acme: Vec<_> = (0..100)
        .map(|_| subscribe(engine.addr, ACME.api_key, Duration::from_secs(30)))
        .collect();
    let beta = subscribe(engine.addr, BETA.api_key, Duration::from_secs(3));

    let id = http.send(ACME.api_key, "4915100000001", "watched");
    sim.send_mo("acme", "4915100000009", "12345", "hello back");
    for (n, events) in acme.iter().enumerate() {
        let mut seen_delivered = false;
        let mut seen_inbound = false;
        while !(seen_delivered && seen_inbound) {
            let data = events
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("subscriber {n} missed events"));
            let event: serde_json::Value = serde_json::from_str(&data).unwrap();
            if event["id"] == id.as_str() && event["status"] == "delivered" {
                seen_delivered = true;
            }
            if event["text"] == "hello back" {
                seen_inbound = true;
            }
        }
    }
    drop(acme);
    // beta's stream closes after its 3 s body timeout; nothing of acme's was on it.
    let leaked: Vec<String> = beta.iter().collect();
    assert!(leaked.is_empty(), "beta saw {leaked:?}");
}

#[test]
fn a_failure_event_carries_its_error() {
    let (_dir, db) = temp_db();
    let sim = simulator(
        &[ACME],
        Faults {
            permanent_error_fraction: 1.0,
            ..Faults::default()
        },
    );
    let engine = TestEngine::start(&config_text(&db, sim.local_addr().port(), &[ACME], ""));
    wait_for_binds(&sim, 1);
    let events = subscribe(engine.addr, ACME.api_key, Duration::from_secs(20));
    let id = engine.http().send(ACME.api_key, "4915100000001", "refused");
    let event: serde_json::Value = loop {
        let data = events
            .recv_timeout(Duration::from_secs(20))
            .expect("an event");
        let event: serde_json::Value = serde_json::from_str(&data).unwrap();
        if event["id"] == id.as_str() {
            break event;
        }
    };
    assert_eq!(event["status"], "failed");
    assert_eq!(event["error"]["name"], "ESME_RINVDSTADR");
}
