//! SMPP over TLS: a channel with `tls = true` binds to an SMSC that only
//! speaks TLS, checks its certificate against the configured CAs and name,
//! and shows a client certificate when the SMSC asks for one. The
//! certificates are in `tests/fixtures/tls` (`generate.sh` makes them).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use smppd_actors::simulator::{tls, Simulator, SimulatorConfig, SimulatorHandle};
use support::*;

const ADMIN: &str = "operator-token-0123456789";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// The TOML value of a fixture's path.
fn path(name: &str) -> String {
    format!("{:?}", fixture(name).display().to_string())
}

/// An SMSC that speaks only TLS, with the fixture server certificate; with
/// `client_ca`, it also wants a client certificate signed by it.
fn tls_simulator(tenants: &[TenantSetup], client_ca: Option<&str>) -> SimulatorHandle {
    let client_ca = client_ca.map(fixture);
    let config = tls::server_config(
        &fixture("server.pem"),
        &fixture("server.key"),
        client_ca.as_deref(),
    )
    .expect("fixture certificates load");
    Simulator::start(SimulatorConfig {
        tls: Some(config),
        ..simulator_config(tenants)
    })
    .expect("simulator starts")
}

/// The engine, with ACME's channel to `sim` carrying `channel_keys`.
fn start_engine(db: &std::path::Path, sim: &SimulatorHandle, channel_keys: &str) -> TestEngine {
    TestEngine::start(&config_text(
        db,
        sim.local_addr().port(),
        &[ACME],
        channel_keys,
    ))
}

/// The tenant's sessions: state and last error of each.
fn sessions(http: &Http, key: &str) -> Vec<(String, String)> {
    let reply = http.get("/v1/connections", Some(key));
    reply.body["connections"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|s| {
                    (
                        s["state"].as_str().unwrap_or_default().to_string(),
                        s["last_error"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a session of the tenant has failed with an error that
/// contains `needle`, then checks that nothing was ever bound or sent.
fn assert_refused(http: &Http, sim: &SimulatorHandle, key: &str, needle: &str) {
    let id = http.send(key, "4915100000001", "must not leave");
    eventually(
        Duration::from_secs(20),
        &format!("a session error mentioning {needle:?}"),
        || sessions(http, key).iter().any(|(_, e)| e.contains(needle)),
    );
    assert!(sim.stats().tls_failures >= 1, "{:?}", sim.stats());
    assert_eq!(sim.stats().binds, 0, "{:?}", sim.stats());
    assert!(sim.submits().is_empty());
    assert_eq!(http.status(key, &id), "queued");
}

#[test]
fn a_tls_channel_binds_to_an_smsc_that_speaks_only_tls_and_delivers() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = start_engine(
        &db,
        &sim,
        &format!("tls = true\ntls_ca_file = {}", path("ca.pem")),
    );
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "over TLS");
    http.wait_for_status(ACME.api_key, &[id], &["delivered"], Duration::from_secs(20));
    let connections = http.get("/v1/connections", Some(ACME.api_key)).body;
    assert_eq!(connections["connections"][0]["tls"], true, "{connections}");
    assert_eq!(connections["connections"][0]["state"], "bound");
    let stats = sim.stats();
    assert_eq!(stats.tls_failures, 0, "{stats:?}");
    assert_eq!(stats.receipts_acknowledged, 1, "{stats:?}");
    assert_eq!(sim.submits()[0].text, "over TLS");
}

#[test]
fn a_plain_channel_cannot_bind_to_a_tls_port() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = start_engine(&db, &sim, "connect_timeout_s = 1\nresponse_timeout_s = 1");
    let http = engine.http();
    let id = http.send(ACME.api_key, "4915100000001", "plain");
    eventually(
        Duration::from_secs(20),
        "the SMSC refused the plain handshake",
        || sim.stats().tls_failures >= 1,
    );
    assert_eq!(sim.stats().binds, 0);
    assert_eq!(http.status(ACME.api_key, &id), "queued");
    let connections = http.get("/v1/connections", Some(ACME.api_key)).body;
    assert_eq!(connections["connections"][0]["tls"], false, "{connections}");
}

#[test]
fn an_smsc_certificate_signed_by_another_ca_is_refused() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = start_engine(
        &db,
        &sim,
        &format!("tls = true\ntls_ca_file = {}", path("other-ca.pem")),
    );
    assert_refused(&engine.http(), &sim, ACME.api_key, "UnknownIssuer");
}

#[test]
fn without_tls_ca_file_a_private_ca_is_not_trusted() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = start_engine(&db, &sim, "tls = true");
    assert_refused(&engine.http(), &sim, ACME.api_key, "UnknownIssuer");
}

#[test]
fn the_smsc_certificate_must_be_valid_for_the_server_name() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = start_engine(
        &db,
        &sim,
        &format!(
            "tls = true\ntls_ca_file = {}\ntls_server_name = \"smsc.example.com\"",
            path("ca.pem")
        ),
    );
    assert_refused(
        &engine.http(),
        &sim,
        ACME.api_key,
        "certificate not valid for name \"smsc.example.com\"",
    );
}

#[test]
fn an_smsc_that_wants_a_client_certificate_binds_only_the_channel_that_has_one() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME, BETA], Some("ca.pem"));
    let port = sim.local_addr().port();
    let ca = format!("tls = true\ntls_ca_file = {}", path("ca.pem"));
    let with_cert = format!(
        "{ca}\ntls_cert_file = {}\ntls_key_file = {}",
        path("client.pem"),
        path("client.key")
    );
    let engine = TestEngine::start(&format!(
        "[database]\npath = {:?}\nsynchronous = \"normal\"\n{}{}",
        db.display().to_string(),
        tenant_text(port, &ACME, "", &ca),
        tenant_text(port, &BETA, "", &with_cert)
    ));
    let http = engine.http();
    let beta = http.send(BETA.api_key, "4915100000002", "with a certificate");
    let acme = http.send(ACME.api_key, "4915100000001", "without one");
    http.wait_for_status(
        BETA.api_key,
        &[beta],
        &["delivered"],
        Duration::from_secs(20),
    );
    eventually(
        Duration::from_secs(20),
        "the SMSC refused the channel without a certificate",
        || sim.stats().tls_failures >= 1,
    );
    let bound = sim.bound_sessions();
    assert!(
        bound.iter().all(|b| b.system_id == BETA.system_id),
        "{bound:?}"
    );
    assert_eq!(http.status(ACME.api_key, &acme), "queued");
    assert!(sim.submits().iter().all(|s| s.text == "with a certificate"));
}

#[test]
fn the_operator_api_adds_a_tls_channel_and_refuses_a_ca_file_it_cannot_read() {
    let (_dir, db) = temp_db();
    let sim = tls_simulator(&[ACME], None);
    let engine = TestEngine::start(&format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(&db, sim.local_addr().port(), &[], "")
    ));
    let http = engine.http();
    let channel = |ca: PathBuf| {
        json!({"name": "secure", "host": "127.0.0.1", "port": sim.local_addr().port(),
               "system_id": ACME.system_id, "password": ACME.password,
               "tls": true, "tls_ca_file": ca})
        .to_string()
    };
    let key = "acme-tls-api-key-0001";
    let tenant = json!({"id": "acme", "api_key": key}).to_string();
    let created = http.call("POST", "/admin/v1/tenants", Some(ADMIN), Some(&tenant));
    assert_eq!(created.status, 201, "{}", created.body);
    let missing = http.call(
        "POST",
        "/admin/v1/tenants/acme/channels",
        Some(ADMIN),
        Some(&channel(fixture("missing.pem"))),
    );
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.body["field"], "tls_ca_file", "{}", missing.body);
    let added = http.call(
        "POST",
        "/admin/v1/tenants/acme/channels",
        Some(ADMIN),
        Some(&channel(fixture("ca.pem"))),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["tls"], true, "{}", added.body);
    assert_eq!(added.body["tls_server_name"], serde_json::Value::Null);
    let id = http.send(key, "4915100000001", "added over TLS");
    http.wait_for_status(key, &[id], &["delivered"], Duration::from_secs(20));
}
