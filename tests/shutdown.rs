//! Graceful shutdown: stop taking HTTP, let in-flight submits be
//! answered, unbind every session, flush the store, exit 0.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn stopping_the_engine_unbinds_every_session() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let engine = TestEngine::start(&config_text(
        &db,
        sim.local_addr().port(),
        &[ACME, BETA],
        "sessions = 2",
    ));
    wait_for_binds(&sim, 4);
    engine.stop();
    eventually(Duration::from_secs(5), "no session left bound", || {
        sim.bound_sessions().is_empty()
    });
    assert_eq!(sim.stats().unbinds, 4, "{:?}", sim.stats());
}

#[test]
fn sigterm_under_load_exits_0_unbinds_and_loses_nothing_accepted() {
    let (dir, db) = temp_db();
    let sim = simulator(
        &[ACME, BETA],
        Faults {
            stall_responses: Some(Duration::from_millis(50)),
            ..Faults::default()
        },
    );
    let http_port = free_port();
    let config = dir.path().join("smppd.toml");
    write_config(
        &config,
        http_port,
        &config_text(&db, sim.local_addr().port(), &[ACME, BETA], "sessions = 2"),
    );
    let smppd = Process::spawn(&config, http_port);
    wait_for_binds(&sim, 4);

    // Two senders keep posting until the server stops answering.
    let accepted = Arc::new(Mutex::new(Vec::<(&str, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = [ACME.api_key, BETA.api_key]
        .into_iter()
        .map(|key| {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            std::thread::spawn(move || {
                let http = Http::new(format!("127.0.0.1:{http_port}").parse().unwrap());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(r#"{{"to":"4915100000001","from":"ACME","text":"m{i}"}}"#);
                    match http.try_post("/v1/messages", key, &body) {
                        Some(reply) if reply.status == 202 => accepted
                            .lock()
                            .unwrap()
                            .push((key, reply.body["id"].as_str().unwrap().to_string())),
                        _ => break,
                    }
                    i += 1;
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(10), "load is flowing", || {
        accepted.lock().unwrap().len() >= 200
    });
    let code = smppd.terminate();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    assert_eq!(code, Some(0), "graceful exit");
    assert!(sim.bound_sessions().is_empty());
    assert_eq!(
        sim.stats().unbinds,
        4,
        "every bound session sent unbind: {:?}",
        sim.stats()
    );

    // Nothing accepted is lost: after a restart every 202 ends delivered.
    let smppd = Process::spawn(&config, http_port);
    let accepted = accepted.lock().unwrap().clone();
    for key in [ACME.api_key, BETA.api_key] {
        let ids: Vec<String> = accepted
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, id)| id.clone())
            .collect();
        smppd
            .http
            .wait_for_status(key, &ids, &["delivered"], Duration::from_secs(60));
    }
    smppd.kill();
}
