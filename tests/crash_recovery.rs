//! Durability: a 202 means the row is committed. Proven by SIGKILLing the
//! real `smppd` process right after the 202s and restarting it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use smppd_actors::simulator::Faults;
use support::*;

fn spawn_smppd(config: &std::path::Path, port: u16) -> (Child, Http) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smppd starts");
    // Wait for the HTTP listener's log line.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("HTTP API listening") {
                let _ = tx.send(());
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("smppd is listening");
    (
        child,
        Http::new(format!("127.0.0.1:{port}").parse().unwrap()),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn messages_accepted_right_before_a_sigkill_are_delivered_after_restart() {
    let (dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let http_port = free_port();
    let config = dir.path().join("smppd.toml");
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:{http_port}\"\n{}",
        config_text(&db, sim.local_addr().port(), &[ACME], "")
    );
    std::fs::write(
        &config,
        text.replace("synchronous = \"normal\"", "synchronous = \"full\""),
    )
    .unwrap();

    let (mut child, http) = spawn_smppd(&config, http_port);
    let ids: Vec<String> = (0..100)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("m{i}")))
        .collect();
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let (mut child, http) = spawn_smppd(&config, http_port);
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    // At least once toward the SMSC: every message got there.
    let texts: std::collections::HashSet<String> =
        sim.submits().into_iter().map(|s| s.text).collect();
    assert!((0..100).all(|i| texts.contains(&format!("m{i}"))));
}

#[test]
fn a_queued_message_survives_sigkill_while_the_smsc_is_unreachable() {
    let (dir, db) = temp_db();
    let http_port = free_port();
    let dead_port = free_port();
    let config = dir.path().join("smppd.toml");
    let write = |smsc_port: u16| {
        let text = format!(
            "[http]\nlisten = \"127.0.0.1:{http_port}\"\n{}",
            config_text(&db, smsc_port, &[ACME], "")
        );
        std::fs::write(&config, text).unwrap();
    };
    write(dead_port);
    let (mut child, http) = spawn_smppd(&config, http_port);
    let id = http.send(ACME.api_key, "4915100000001", "waits for the SMSC");
    assert_eq!(http.status(ACME.api_key, &id), "queued");
    child.kill().unwrap();
    child.wait().unwrap();

    let sim = simulator(&[ACME], Faults::default());
    write(sim.local_addr().port());
    let (mut child, http) = spawn_smppd(&config, http_port);
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sim.submits().len(), 1);
}
