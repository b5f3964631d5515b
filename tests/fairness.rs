//! A tenant with a huge backlog does not delay a tenant sending a few
//! messages: each has its own sessions and its own queue window, and the
//! shared parts (HTTP workers, the store writer) serve requests in turn.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_small_tenant_is_served_while_a_big_backlog_drains() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    // acme's SMSC account takes 100 submits a second: its 1,500 need 15 s.
    let port = sim.local_addr().port();
    let text = config_text(&db, port, &[ACME], "submits_per_second = 100")
        + &tenant_text(port, &BETA, "", "");
    let engine = TestEngine::start(&text);
    let http = engine.http();
    let senders: Vec<_> = (0..3)
        .map(|t| {
            let addr = engine.addr;
            std::thread::spawn(move || {
                let http = Http::new(addr);
                (0..500).for_each(|i| {
                    drop(http.send(ACME.api_key, "4915100000001", &format!("{t}-{i}")))
                });
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let beta: Vec<String> = (0..20)
        .map(|i| http.send(BETA.api_key, "4915100000002", &format!("b{i}")))
        .collect();
    http.wait_for_status(BETA.api_key, &beta, &["delivered"], Duration::from_secs(20));
    let acme = http.get("/v1/stats", Some(ACME.api_key)).body;
    let done = acme["final"].as_u64().unwrap();
    assert!(
        done < 1_000,
        "beta finished while acme's backlog was still draining ({done} of 1,500 done)"
    );
}
