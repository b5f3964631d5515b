//! Run-time administration: tenants and channels created, changed,
//! suspended, reactivated and deleted over the operator API, applied live
//! (no restart), persisted in SQLite, and without effect on other tenants.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use smppd_actors::simulator::Faults;
use support::*;

const ADMIN: &str = "operator-token-0123456789";

/// A second SMPP account of gamma's (receipts come back on the session of
/// the account that submitted).
const GAMMA2: TenantSetup = TenantSetup {
    id: "gamma",
    api_key: "unused-gamma-key",
    system_id: "gamma2",
    password: "gamma-pw",
};

const GAMMA: TenantSetup = TenantSetup {
    id: "gamma",
    api_key: "unused-gamma-key",
    system_id: "gamma",
    password: "gamma-pw",
};

fn config(db: &std::path::Path, port: u16, tenants: &[TenantSetup]) -> String {
    format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(db, port, tenants, "")
    )
}

/// A `[[tenants.channels]]` body for the simulator at `port`.
fn channel(name: &str, port: u16, account: &TenantSetup, sessions: u32) -> Value {
    json!({
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "system_id": account.system_id,
        "password": account.password,
        "sessions": sessions,
        "reconnect_initial_ms": 50,
        "reconnect_max_s": 1,
    })
}

fn admin(http: &Http, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string());
    http.call(method, path, Some(ADMIN), body.as_deref())
}

/// Creates gamma with one channel; returns its generated key.
fn create_gamma(http: &Http, port: u16) -> String {
    let reply = admin(
        http,
        "POST",
        "/admin/v1/tenants",
        Some(json!({"id": "gamma", "channels": [channel("sim", port, &GAMMA, 1)]})),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["tenant"]["id"], "gamma");
    assert_eq!(reply.body["tenant"]["status"], "active");
    reply.body["api_key"]
        .as_str()
        .expect("a generated key")
        .to_string()
}

fn bound(sim: &smppd_actors::simulator::SimulatorHandle, system_id: &str) -> usize {
    sim.bound_sessions()
        .iter()
        .filter(|s| s.system_id == system_id)
        .count()
}

/// The tenant's sessions as `(channel, session, since)`, all bound.
fn sessions(http: &Http, key: &str) -> Vec<(String, u64, String)> {
    sessions_in_state(http, key, None)
        .into_iter()
        .map(|(channel, session, state, since)| {
            assert_eq!(state, "bound", "{channel}#{session}");
            (channel, session, since)
        })
        .collect()
}

/// The tenant's sessions as `(channel, session, state, since)`, only
/// those of `channel` if one is given.
fn sessions_in_state(
    http: &Http,
    key: &str,
    channel: Option<&str>,
) -> Vec<(String, u64, String, String)> {
    let reply = http.get("/v1/connections", Some(key));
    assert_eq!(reply.status, 200);
    reply.body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| channel.is_none_or(|name| c["channel"] == name))
        .map(|c| {
            let text = |field: &str| c[field].as_str().unwrap().to_string();
            (
                text("channel"),
                c["session"].as_u64().unwrap(),
                text("state"),
                text("since"),
            )
        })
        .collect()
}

#[test]
fn a_tenant_created_over_the_api_sends_at_once_and_is_still_there_after_a_restart() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, GAMMA], Faults::default());
    let port = sim.local_addr().port();
    let text = config(&db, port, &[ACME]);
    let engine = TestEngine::start(&text);
    let http = engine.http();
    wait_for_binds(&sim, 1);

    let key = create_gamma(&http, port);
    assert!(key.starts_with("sk_"), "{key}");
    eventually(Duration::from_secs(10), "gamma binds", || {
        bound(&sim, "gamma") == 1
    });
    let id = http.send(&key, "4915100000009", "hello from gamma");
    http.wait_for_status(
        &key,
        std::slice::from_ref(&id),
        &["delivered"],
        Duration::from_secs(10),
    );
    let listed = admin(&http, "GET", "/admin/v1/tenants", None);
    let ids: Vec<&str> = listed.body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "gamma"]);
    engine.stop();

    let engine = TestEngine::start(&text);
    let http = engine.http();
    assert_eq!(
        admin(&http, "GET", "/admin/v1/tenants/gamma", None).status,
        200
    );
    assert_eq!(
        http.status(&key, &id),
        "delivered",
        "its key and data survive"
    );
    eventually(Duration::from_secs(10), "gamma binds again", || {
        bound(&sim, "gamma") == 1
    });
}

#[test]
fn tenants_and_channels_change_while_another_tenant_is_under_load_without_touching_it() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, GAMMA, GAMMA2], Faults::default());
    let port = sim.local_addr().port();
    let engine = TestEngine::start(&config(&db, port, &[ACME]));
    let http = engine.http();
    wait_for_binds(&sim, 1);
    let before = sessions(&http, ACME.api_key);

    let stop = Arc::new(AtomicBool::new(false));
    let addr = engine.addr;
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let http = Http::new(addr);
            let mut ids = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                ids.push(http.send(ACME.api_key, "4915100000001", "steady"));
            }
            ids
        })
    };

    let key = create_gamma(&http, port);
    eventually(Duration::from_secs(10), "gamma binds", || {
        bound(&sim, "gamma") == 1
    });
    let gamma_sim = |http: &Http| sessions_in_state(http, &key, Some("sim"));
    eventually(
        Duration::from_secs(10),
        "gamma's sim session reports bound",
        || gamma_sim(&http).first().is_some_and(|s| s.2 == "bound"),
    );
    let gamma_sim_before = gamma_sim(&http);
    let reply = admin(
        &http,
        "POST",
        "/admin/v1/tenants/gamma/channels",
        Some(channel("second", port, &GAMMA2, 2)),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    eventually(Duration::from_secs(10), "gamma has 3 sessions", || {
        bound(&sim, "gamma") + bound(&sim, "gamma2") == 3
    });
    let reply = admin(
        &http,
        "PATCH",
        "/admin/v1/tenants/gamma/channels/second",
        Some(json!({"sessions": 1})),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["sessions"], 1);
    eventually(Duration::from_secs(10), "gamma has 2 sessions", || {
        bound(&sim, "gamma") + bound(&sim, "gamma2") == 2
    });
    let reply = admin(
        &http,
        "PATCH",
        "/admin/v1/tenants/gamma",
        Some(json!({"max_in_flight": 100})),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let id = http.send(&key, "4915100000009", "gamma works");
    http.wait_for_status(&key, &[id], &["delivered"], Duration::from_secs(10));
    assert_eq!(
        gamma_sim(&http),
        gamma_sim_before,
        "adding and resizing another channel left gamma's first channel bound as it was"
    );
    assert_eq!(
        admin(&http, "POST", "/admin/v1/tenants/gamma/suspend", None).status,
        200
    );
    eventually(Duration::from_secs(10), "gamma unbinds", || {
        bound(&sim, "gamma") + bound(&sim, "gamma2") == 0
    });
    assert_eq!(
        admin(&http, "POST", "/admin/v1/tenants/gamma/reactivate", None).status,
        200
    );
    eventually(Duration::from_secs(10), "gamma binds again", || {
        bound(&sim, "gamma") + bound(&sim, "gamma2") == 2
    });
    assert_eq!(
        admin(
            &http,
            "DELETE",
            "/admin/v1/tenants/gamma/channels/second",
            None
        )
        .status,
        204
    );
    eventually(Duration::from_secs(10), "gamma has 1 session", || {
        bound(&sim, "gamma") == 1 && bound(&sim, "gamma2") == 0
    });
    assert_eq!(
        admin(&http, "DELETE", "/admin/v1/tenants/gamma", None).status,
        200
    );
    eventually(Duration::from_secs(10), "gamma is gone", || {
        bound(&sim, "gamma") == 0
    });

    stop.store(true, Ordering::Relaxed);
    let ids = load.join().unwrap();
    assert!(ids.len() > 10, "the load ran ({} messages)", ids.len());
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    assert_eq!(
        sessions(&http, ACME.api_key),
        before,
        "acme's session was never re-bound"
    );
    assert_eq!(bound(&sim, "acme"), 1);
}

#[test]
fn a_suspended_tenant_is_refused_at_once_and_its_queued_messages_go_out_on_reactivation() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config(&db, sim.local_addr().port(), &[ACME]));
    let http = engine.http();
    wait_for_binds(&sim, 1);

    // Messages queued while the SMSC refuses binds wait in the store.
    sim.drop_connections();
    sim.set_faults(Faults {
        refuse_binds: true,
        ..Faults::default()
    });
    wait_for_binds(&sim, 0);
    let ids: Vec<String> = (0..5)
        .map(|i| http.send(ACME.api_key, "4915100000001", &format!("queued {i}")))
        .collect();

    let reply = admin(&http, "POST", "/admin/v1/tenants/acme/suspend", None);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "suspended");
    let refused = http.post_message(ACME.api_key, json!({}));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.content_type, "application/problem+json");
    assert_eq!(refused.body["type"], "urn:smppd:problem:tenant-suspended");
    assert_eq!(http.get("/v1/balance", Some(ACME.api_key)).status, 403);

    sim.set_faults(Faults::default());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bound(&sim, "acme"), 0, "a suspended tenant does not bind");

    let reply = admin(&http, "POST", "/admin/v1/tenants/acme/reactivate", None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "active");
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(10));
}

#[test]
fn a_deleted_tenant_leaves_no_sessions_keys_or_queued_work_and_comes_back_fresh() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, GAMMA], Faults::default());
    let port = sim.local_addr().port();
    let engine = TestEngine::start(&config(&db, port, &[ACME]));
    let http = engine.http();
    let key = create_gamma(&http, port);
    eventually(Duration::from_secs(10), "gamma binds", || {
        bound(&sim, "gamma") == 1
    });
    let delivered = http.send(&key, "4915100000009", "one");
    http.wait_for_status(&key, &[delivered], &["delivered"], Duration::from_secs(10));
    // Two more that cannot go out: the SMSC refuses gamma's submits.
    sim.set_faults(Faults {
        refuse_binds: true,
        ..Faults::default()
    });
    sim.drop_connections();
    eventually(Duration::from_secs(10), "gamma is down", || {
        bound(&sim, "gamma") == 0
    });
    http.send(&key, "4915100000009", "two");
    http.send(&key, "4915100000009", "three");

    let reply = admin(&http, "DELETE", "/admin/v1/tenants/gamma", None);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["messages_removed"], 3);
    assert_eq!(reply.body["queued_removed"], 2);
    assert_eq!(
        http.get("/v1/messages", Some(&key)).status,
        401,
        "its key is gone"
    );
    assert_eq!(
        admin(&http, "GET", "/admin/v1/tenants/gamma", None).status,
        404
    );
    assert!(
        engine.registry.stats("gamma").is_none(),
        "no supervisor left"
    );
    sim.set_faults(Faults::default());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bound(&sim, "gamma"), 0, "no connection left");

    let fresh = create_gamma(&http, port);
    assert_ne!(fresh, key);
    assert_eq!(http.get("/v1/messages", Some(&key)).status, 401);
    let listed = http.get("/v1/messages", Some(&fresh));
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body["messages"],
        json!([]),
        "nothing of the old gamma"
    );
    eventually(Duration::from_secs(10), "the new gamma binds", || {
        bound(&sim, "gamma") == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sim.stats().submits_accepted,
        1,
        "the deleted queue was never sent"
    );
}

#[test]
fn changed_settings_apply_to_the_next_request() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let engine = TestEngine::start(&config(&db, sim.local_addr().port(), &[ACME]));
    let http = engine.http();
    assert_eq!(http.post_message(ACME.api_key, json!({})).status, 202);

    let reply = admin(
        &http,
        "PATCH",
        "/admin/v1/tenants/acme",
        Some(json!({"price_per_part": 1.5})),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["price_per_part"], 1.5);
    assert_eq!(
        http.post_message(ACME.api_key, json!({})).status,
        402,
        "credit control is on and the balance is 0"
    );
    let reply = admin(
        &http,
        "PATCH",
        "/admin/v1/tenants/acme",
        Some(json!({"price_per_part": null})),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.get("price_per_part").is_none_or(Value::is_null));
    assert_eq!(http.post_message(ACME.api_key, json!({})).status, 202);
}

#[test]
fn an_api_change_to_a_config_tenant_survives_restarts_until_its_entry_is_edited() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME, BETA], Faults::default());
    let port = sim.local_addr().port();
    let text = config(&db, port, &[ACME, BETA]);
    let engine = TestEngine::start(&text);
    let http = engine.http();
    let reply = admin(
        &http,
        "PATCH",
        "/admin/v1/tenants/acme",
        Some(json!({"max_in_flight": 7})),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        admin(&http, "DELETE", "/admin/v1/tenants/beta", None).status,
        200
    );
    engine.stop();

    let engine = TestEngine::start(&text);
    let http = engine.http();
    let acme = admin(&http, "GET", "/admin/v1/tenants/acme", None);
    assert_eq!(acme.body["max_in_flight"], 7, "the API's change stays");
    assert_eq!(
        admin(&http, "GET", "/admin/v1/tenants/beta", None).status,
        404,
        "a deleted tenant is not brought back by an unchanged entry"
    );
    assert_eq!(http.get("/v1/balance", Some(BETA.api_key)).status, 401);
    engine.stop();

    let edited = text.replace(
        "api_key = \"acme-secret-key\"",
        "api_key = \"acme-secret-key\"\nmax_accept_rate = 50.0",
    );
    assert_ne!(edited, text);
    let engine = TestEngine::start(&edited);
    let http = engine.http();
    let acme = admin(&http, "GET", "/admin/v1/tenants/acme", None);
    assert_eq!(
        acme.body["max_accept_rate"], 50.0,
        "the edited entry is applied"
    );
    assert!(acme.body.get("max_in_flight").is_none_or(Value::is_null));
}

#[test]
fn secrets_are_never_shown_and_bad_operator_requests_get_problem_documents() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let port = sim.local_addr().port();
    let engine = TestEngine::start(&config(&db, port, &[ACME]));
    let http = engine.http();

    let acme = admin(&http, "GET", "/admin/v1/tenants/acme", None);
    assert_eq!(acme.status, 200);
    let text = acme.body.to_string();
    assert!(
        !text.contains(ACME.password) && !text.contains(ACME.api_key),
        "{text}"
    );
    assert_eq!(acme.body["channels"][0]["password_set"], true);

    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "acme"})),
            409,
            "",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "bad id"})),
            400,
            "id",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "x", "colour": "red"})),
            400,
            "colour",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "x", "api_key": "short"})),
            400,
            "api_key",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "x", "api_key": ACME.api_key.repeat(2)})),
            201,
            "",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "y", "api_key": ACME.api_key.repeat(2)})),
            409,
            "",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "w", "api_key": ADMIN})),
            409,
            "",
        ),
        (
            "POST",
            "/admin/v1/tenants",
            Some(
                json!({"id": "z", "channels": [{"name": "c", "host": "h", "port": 1,
                "system_id": "s", "password": "much-too-long"}]}),
            ),
            400,
            "channels[0].password",
        ),
        ("POST", "/admin/v1/tenants", Some(json!([1, 2])), 400, ""),
        (
            "PATCH",
            "/admin/v1/tenants/acme",
            Some(json!({"channels": []})),
            400,
            "channels",
        ),
        (
            "PATCH",
            "/admin/v1/tenants/acme",
            Some(json!({"max_in_flight": 0})),
            400,
            "max_in_flight",
        ),
        (
            "PATCH",
            "/admin/v1/tenants/nobody",
            Some(json!({})),
            404,
            "",
        ),
        ("DELETE", "/admin/v1/tenants/nobody", None, 404, ""),
        (
            "POST",
            "/admin/v1/tenants/acme/channels",
            Some(channel("sim", port, &ACME, 1)),
            409,
            "",
        ),
        (
            "PATCH",
            "/admin/v1/tenants/acme/channels/sim",
            Some(json!({"window": 0})),
            400,
            "window",
        ),
        (
            "PATCH",
            "/admin/v1/tenants/acme/channels/sim",
            Some(json!({"name": "other"})),
            400,
            "name",
        ),
        (
            "DELETE",
            "/admin/v1/tenants/acme/channels/nope",
            None,
            404,
            "",
        ),
        ("PUT", "/admin/v1/tenants/acme", Some(json!({})), 405, ""),
    ];
    for (method, path, body, status, field) in cases {
        let reply = admin(&http, method, path, body.clone());
        assert_eq!(
            reply.status, status,
            "{method} {path} {body:?}: {:?}",
            reply.body
        );
        if status >= 400 {
            assert_eq!(reply.content_type, "application/problem+json");
            assert!(reply.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:smppd:problem:"));
        }
        if !field.is_empty() {
            assert_eq!(
                reply.body["field"], field,
                "{method} {path}: {:?}",
                reply.body
            );
        }
    }
    let raw = http.call("POST", "/admin/v1/tenants", Some(ADMIN), Some("{not json"));
    assert_eq!(raw.status, 400);
    for key in [None, Some(ACME.api_key)] {
        let reply = http.call("GET", "/admin/v1/tenants", key, None);
        assert_eq!(reply.status, 401, "only the admin token is accepted");
    }
    assert_eq!(
        http.get("/v1/balance", Some(&ACME.api_key.repeat(2)))
            .status,
        200,
        "a key chosen by the operator works"
    );
}

#[test]
fn changing_a_channel_under_load_loses_no_message() {
    let (_dir, db) = temp_db();
    let sim = simulator(&[ACME], Faults::default());
    let port = sim.local_addr().port();
    let text = format!(
        "[http]\nadmin_token = \"{ADMIN}\"\n{}",
        config_text(&db, port, &[ACME], "sessions = 2\nwindow = 20")
    );
    let engine = TestEngine::start(&text);
    let http = engine.http();
    wait_for_binds(&sim, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (addr, stop) = (engine.addr, stop.clone());
            std::thread::spawn(move || {
                let http = Http::new(addr);
                let mut ids = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    ids.push(http.send(ACME.api_key, "4915100000001", &format!("t{t}")));
                }
                ids
            })
        })
        .collect();
    // Replace the channel's sessions three times while messages are in
    // flight on them: their messages go back to the queue and out again.
    for (i, window) in [5, 50, 20].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(300));
        let reply = admin(
            &http,
            "PATCH",
            "/admin/v1/tenants/acme/channels/sim",
            Some(json!({"window": window, "sessions": 1 + i % 2})),
        );
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let ids: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert!(ids.len() > 50, "the load ran ({} messages)", ids.len());
    http.wait_for_status(ACME.api_key, &ids, &["delivered"], Duration::from_secs(30));
    let stats = http.get("/v1/stats", Some(ACME.api_key)).body;
    assert_eq!(stats["failed"], 0, "{stats}");
    // Retired sessions unbind gracefully: what was in flight is answered
    // first and what waited goes back unsent, so nothing is sent twice.
    assert_eq!(sim.submit_count(), ids.len(), "each message submitted once");
    let sessions = http.get("/v1/connections", Some(ACME.api_key)).body;
    let windows: Vec<u64> = sessions["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["window_size"].as_u64().unwrap())
        .collect();
    assert_eq!(windows, [20], "one session with the last window");
}
