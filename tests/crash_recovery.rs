//! Durability: a 202 means the row is committed. Proven by SIGKILLing the
//! real `smppd` process right after the 202s and restarting it.

mod support;

use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

#[test]
fn messages_accepted_right_before_a_sigkill_are_delivered_after_restart() {
    let (dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let http_port = free_port();
    let config = dir.path().join("smppd.toml");
    let body = config_text(&db, sim.local_addr().port(), &[ACME], "");
    write_config(
        &config,
        http_port,
        &body.replace("synchronous = \"normal\"", "synchronous = \"full\""),
    );

    let smppd = Process::spawn(&config, http_port);
    let ids: Vec<String> = (0..100)
        .map(|i| {
            smppd
                .http
                .send(ACME.api_key, "4915100000001", &format!("m{i}"))
        })
        .collect();
    smppd.kill();

    let smppd = Process::spawn(&config, http_port);
    smppd
        .http
        .wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    smppd.kill();
    // At least once toward the SMSC: every message got there.
    let texts: std::collections::HashSet<String> =
        sim.submits().into_iter().map(|s| s.text).collect();
    assert!((0..100).all(|i| texts.contains(&format!("m{i}"))));
}

#[test]
fn a_queued_message_survives_sigkill_while_the_smsc_is_unreachable() {
    let (dir, db) = temp_db();
    let http_port = free_port();
    let config = dir.path().join("smppd.toml");
    write_config(
        &config,
        http_port,
        &config_text(&db, free_port(), &[ACME], ""),
    );
    let smppd = Process::spawn(&config, http_port);
    let id = smppd
        .http
        .send(ACME.api_key, "4915100000001", "waits for the SMSC");
    assert_eq!(smppd.http.status(ACME.api_key, &id), "queued");
    smppd.kill();

    let sim = simulator(&[ACME], Faults::default());
    write_config(
        &config,
        http_port,
        &config_text(&db, sim.local_addr().port(), &[ACME], ""),
    );
    let smppd = Process::spawn(&config, http_port);
    smppd
        .http
        .wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(30));
    smppd.kill();
    assert_eq!(sim.submits().len(), 1);
}
