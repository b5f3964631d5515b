//! Webhooks: each final status and inbound message is POSTed, signed; a
//! receiver that is down gets retries, then dead letters that the tenant
//! lists and replays.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use smppd_actors::simulator::Faults;
use support::*;

const SECRET: &str = "whsec-0123456789abcdef";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HashMap<String, String>,
    body: String,
    answered: u16,
}

/// A real HTTP server that records requests and answers 200, or 500 while
/// `failing` is set.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (h, f) = (hits.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                let mut headers = HashMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(": ") {
                        headers.insert(k.to_ascii_lowercase(), v.to_string());
                    }
                }
                let length: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let answered = if f.load(Ordering::SeqCst) { 500 } else { 200 };
                h.lock().unwrap().push(Hit {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    answered,
                });
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, hits, failing }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn webhook_config(db: &std::path::Path, port: u16, url: &str, extra: &str) -> String {
    config_text_with(
        db,
        port,
        &[ACME],
        &format!("webhook_url = \"{url}\"\nwebhook_secret = \"{SECRET}\"\n{extra}"),
        "",
    )
}

fn json(hit: &Hit) -> Value {
    serde_json::from_str(&hit.body).unwrap()
}

#[test]
fn a_receiver_sees_each_receipt_once_with_a_valid_signature() {
    let (_dir, db) = temp_db();
    let receiver = Receiver::start();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&webhook_config(
        &db,
        sim.local_addr().port(),
        &receiver.url,
        "",
    ));
    let http = engine.http();
    let ids: Vec<String> = (0..5)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    eventually(Duration::from_secs(20), "five deliveries", || {
        receiver.hits().len() >= 5
    });
    std::thread::sleep(Duration::from_millis(500));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 5, "each receipt once: {hits:?}");
    let mut seen: Vec<String> = hits
        .iter()
        .map(|h| json(h)["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    for hit in &hits {
        let body = json(hit);
        assert_eq!(body["type"], "message.status");
        assert_eq!(body["status"], "delivered");
        let ts: i64 = hit.headers["x-smppd-timestamp"].parse().unwrap();
        assert_eq!(
            hit.headers["x-smppd-signature"],
            smppd::webhooks::signature(SECRET, ts, &hit.body)
        );
        assert_ne!(
            hit.headers["x-smppd-signature"],
            smppd::webhooks::signature("wrong-secret-000000", ts, &hit.body)
        );
        assert_eq!(
            hit.headers["x-smppd-delivery"],
            body["delivery_id"].as_str().unwrap()
        );
    }
}

#[test]
fn a_receiver_that_is_down_gets_retries_then_a_dead_letter_that_can_be_replayed() {
    let (_dir, db) = temp_db();
    let receiver = Receiver::start();
    receiver.failing.store(true, Ordering::SeqCst);
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&webhook_config(
        &db,
        sim.local_addr().port(),
        &receiver.url,
        "webhook_max_attempts = 3\nwebhook_retry_initial_ms = 50",
    ));
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "unheard");
    let dead = || {
        http.get("/v1/webhooks/dead-letters", Some(ACME.api_key))
            .body["dead_letters"]
            .clone()
    };
    eventually(Duration::from_secs(20), "a dead letter", || {
        dead().as_array().is_some_and(|d| d.len() == 1)
    });
    assert_eq!(
        receiver.hits().len(),
        3,
        "max_attempts attempts, all answered 500"
    );
    let letter = dead()[0].clone();
    assert_eq!(letter["subject"], id.as_str());
    assert_eq!(letter["last_error"], "HTTP 500");
    assert_eq!(letter["attempts"], 3);

    receiver.failing.store(false, Ordering::SeqCst);
    let replay = http.post(
        &format!(
            "/v1/webhooks/dead-letters/{}/replay",
            letter["id"].as_str().unwrap()
        ),
        Some(ACME.api_key),
        "",
    );
    assert_eq!(replay.status, 202);
    eventually(Duration::from_secs(20), "the replay is delivered", || {
        receiver.hits().last().is_some_and(|h| h.answered == 200)
    });
    assert_eq!(json(receiver.hits().last().unwrap())["id"], id.as_str());
    assert!(dead().as_array().unwrap().is_empty());
    assert_eq!(
        http.post(
            "/v1/webhooks/dead-letters/999/replay",
            Some(ACME.api_key),
            ""
        )
        .status,
        404
    );
}

#[test]
fn a_per_message_callback_url_wins_and_inbound_messages_are_posted_too() {
    let (_dir, db) = temp_db();
    let tenant_hook = Receiver::start();
    let own = Receiver::start();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&webhook_config(
        &db,
        sim.local_addr().port(),
        &tenant_hook.url,
        "",
    ));
    let http = engine.http();
    let reply = http.post_message(ACME.api_key, serde_json::json!({ "callback_url": own.url }));
    assert_eq!(reply.status, 202);
    eventually(Duration::from_secs(20), "the callback", || {
        own.hits().len() == 1
    });
    assert_eq!(json(&own.hits()[0])["id"], reply.body["id"]);
    sim.send_mo("acme", "4915100000009", "12345", "reply");
    eventually(Duration::from_secs(20), "the inbound webhook", || {
        !tenant_hook.hits().is_empty()
    });
    let inbound = json(&tenant_hook.hits()[0]);
    assert_eq!(inbound["type"], "inbound");
    assert_eq!(inbound["text"], "reply");
}

#[test]
fn a_callback_url_needs_a_signing_secret() {
    let (_dir, db) = temp_db();
    let engine = TestEngine::start(&config_text(&db, free_port(), &[ACME], ""));
    let reply = engine.http().post_message(
        ACME.api_key,
        serde_json::json!({ "callback_url": "http://127.0.0.1:9/x" }),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["field"], "callback_url");
}
