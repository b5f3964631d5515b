//! A large backlog lives in the store, not in memory, and survives a
//! restart: the supervisor pages through it.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn a_backlog_larger_than_the_memory_window_is_resumed_after_a_restart() {
    let (dir, db) = temp_db();
    let http_port = free_port();
    let config = dir.path().join("smppd.toml");
    // No SMSC at all: everything stays queued.
    write_config(
        &config,
        http_port,
        &config_text(&db, free_port(), &[ACME], ""),
    );
    let smppd = Process::spawn(&config, http_port);
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let http = Http::new(format!("127.0.0.1:{http_port}").parse().unwrap());
                (0..1_000)
                    .map(|i| http.send(ACME.api_key, "4915100000001", &format!("{t}-{i}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    smppd.kill();

    let sim = simulator(&[ACME], Faults::default());
    write_config(
        &config,
        http_port,
        &config_text(
            &db,
            sim.local_addr().port(),
            &[ACME],
            "sessions = 2\nwindow = 50",
        ),
    );
    let smppd = Process::spawn(&config, http_port);
    smppd
        .http
        .wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(120));
    smppd.kill();
    // 4,000 queued against an in-memory window of 1,000 per lane: several
    // refills, and none of them read a message twice.
    assert_eq!(sim.submit_count(), 4_000);
}
