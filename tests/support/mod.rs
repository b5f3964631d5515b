//! Shared helpers for the integration tests: the real engine on port 0
//! with a temporary database, the bundled simulator on port 0, and a small
//! blocking HTTP client.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use smppd::config::Config;
use smppd::Engine;
use smppd_actors::simulator::{Account, Faults, Simulator, SimulatorConfig, SimulatorHandle};
use smppd_actors::Registry;

/// One tenant with one channel to a simulator.
pub struct TenantSetup<'a> {
    pub id: &'a str,
    pub api_key: &'a str,
    pub system_id: &'a str,
    pub password: &'a str,
}

/// Waits (up to 10 s) until the simulator has exactly `n` bound sessions.
pub fn wait_for_binds(sim: &SimulatorHandle, n: usize) {
    eventually(
        Duration::from_secs(10),
        &format!("{n} bound session(s)"),
        || sim.bound_sessions().len() == n,
    );
}

/// A config for `tenants`, all on the simulator at `port`. `extra` is
/// appended to every channel table (e.g. "sessions = 2").
pub fn config_text(db: &Path, port: u16, tenants: &[TenantSetup], extra: &str) -> String {
    config_text_with(db, port, tenants, "", extra)
}

/// Like [`config_text`], with `tenant_extra` added to every tenant table
/// (e.g. "max_in_flight = 5").
pub fn config_text_with(
    db: &Path,
    port: u16,
    tenants: &[TenantSetup],
    tenant_extra: &str,
    extra: &str,
) -> String {
    let mut text = format!(
        "[database]\npath = {:?}\nsynchronous = \"normal\"\n",
        db.display().to_string()
    );
    for t in tenants {
        text.push_str(&tenant_text(port, t, tenant_extra, extra));
    }
    text
}

/// One `[[tenants]]` table with its channel to the simulator at `port`.
pub fn tenant_text(port: u16, t: &TenantSetup, tenant_extra: &str, extra: &str) -> String {
    format!(
        "[[tenants]]\nid = \"{}\"\napi_key = \"{}\"\n{tenant_extra}\n[[tenants.channels]]\nname = \"sim\"\nhost = \"127.0.0.1\"\nport = {port}\nsystem_id = \"{}\"\npassword = \"{}\"\nreconnect_initial_ms = 50\nreconnect_max_s = 1\nretry_initial_ms = 100\n{extra}\n",
        t.id, t.api_key, t.system_id, t.password
    )
}

/// The standard two-tenant setup.
pub const ACME: TenantSetup = TenantSetup {
    id: "acme",
    api_key: "acme-secret-key",
    system_id: "acme",
    password: "acme-pw",
};
pub const BETA: TenantSetup = TenantSetup {
    id: "beta",
    api_key: "beta-secret-key",
    system_id: "beta",
    password: "beta-pw",
};

/// The simulator settings of the tests: accounts for `tenants`, receipts
/// 20 ms after each response, no faults.
pub fn simulator_config(tenants: &[TenantSetup]) -> SimulatorConfig {
    SimulatorConfig {
        accounts: tenants
            .iter()
            .map(|t| Account {
                system_id: t.system_id.into(),
                password: t.password.into(),
            })
            .collect(),
        dlr_delay: Duration::from_millis(20),
        ..SimulatorConfig::default()
    }
}

/// A simulator with accounts for `tenants`.
pub fn simulator(tenants: &[TenantSetup], faults: Faults) -> SimulatorHandle {
    Simulator::start(SimulatorConfig {
        faults,
        ..simulator_config(tenants)
    })
    .expect("simulator starts")
}

/// The engine running in its own actix System on its own thread.
pub struct TestEngine {
    pub addr: SocketAddr,
    pub registry: Registry,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestEngine {
    pub fn start(config_text: &str) -> TestEngine {
        let config = Config::parse(config_text).expect("test config is valid");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let engine = Engine::start(&config, listener)
                    .await
                    .expect("engine starts");
                ready_tx
                    .send((engine.local_addr(), engine.registry().clone()))
                    .unwrap();
                let _ = stop_rx.await;
                engine.shutdown().await;
            });
        });
        let (addr, registry) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("engine started");
        TestEngine {
            addr,
            registry,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }

    /// Graceful shutdown, waiting for it to finish.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// An HTTP reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// A blocking HTTP client against one server.
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Http {
            agent,
            base: format!("http://{addr}"),
        }
    }

    fn finish(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        Self::try_finish(response).expect("HTTP request completes")
    }

    fn try_finish(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Option<Reply> {
        let mut response = response.ok()?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Some(Reply {
            status,
            content_type,
            retry_after,
            body,
        })
    }

    /// POST that returns `None` when the server is gone instead of panicking.
    pub fn try_post(&self, path: &str, key: &str, body: &str) -> Option<Reply> {
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {key}"));
        Self::try_finish(request.send(body))
    }

    /// POST with an optional bearer key and a raw body.
    pub fn post(&self, path: &str, key: Option<&str>, body: &str) -> Reply {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        Self::finish(request.send(body))
    }

    /// Any method, with an optional bearer key and an optional JSON body.
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        let uri = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Content-Type", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        match body {
            Some(body) => Self::finish(
                self.agent
                    .run(request.body(body.to_string()).expect("a valid request")),
            ),
            None => Self::finish(self.agent.run(request.body(()).expect("a valid request"))),
        }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        Self::finish(request.call())
    }

    /// Posts one message with extra JSON fields merged in.
    pub fn post_message(&self, key: &str, fields: Value) -> Reply {
        let mut body = serde_json::json!({"to": "4915100000001", "from": "ACME", "text": "hi"});
        if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
            b.extend(f);
        }
        self.post("/v1/messages", Some(key), &body.to_string())
    }

    /// Sends one message and returns its id, asserting the 202.
    pub fn send(&self, key: &str, to: &str, text: &str) -> String {
        let body = serde_json::json!({"to": to, "from": "ACME", "text": text}).to_string();
        let reply = self.post("/v1/messages", Some(key), &body);
        assert_eq!(reply.status, 202, "{reply:?}");
        assert_eq!(reply.body["status"], "queued");
        reply.body["id"].as_str().expect("an id").to_string()
    }

    pub fn message(&self, key: &str, id: &str) -> Reply {
        self.get(&format!("/v1/messages/{id}"), Some(key))
    }

    pub fn status(&self, key: &str, id: &str) -> String {
        self.message(key, id).body["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until every id reaches one of `statuses`; panics with the
    /// stragglers after `timeout`.
    pub fn wait_for_status(&self, key: &str, ids: &[String], statuses: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<&String> = ids.iter().collect();
        while !pending.is_empty() {
            pending.retain(|id| !statuses.contains(&self.status(key, id).as_str()));
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let sample: Vec<String> = pending
                    .iter()
                    .take(3)
                    .map(|id| self.message(key, id).body.to_string())
                    .collect();
                panic!(
                    "{} messages never reached {statuses:?}, e.g. {sample:?}",
                    pending.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary directory and the database path in it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("smppd.db");
    (dir, db)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `smppd` binary, started on `config`, once its HTTP API is up.
pub struct Process {
    pub child: std::process::Child,
    pub http: Http,
}

impl Process {
    pub fn spawn(config: &Path, http_port: u16) -> Process {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smppd"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("smppd starts");
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
        Process {
            child,
            http: Http::new(format!("127.0.0.1:{http_port}").parse().unwrap()),
        }
    }

    /// SIGKILL: no chance to flush or unbind.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        std::mem::forget(self);
        code
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config file for the real binary: HTTP on `http_port`, plus
/// `config_text`.
pub fn write_config(path: &Path, http_port: u16, body: &str) {
    std::fs::write(
        path,
        format!("[http]\nlisten = \"127.0.0.1:{http_port}\"\n{body}"),
    )
    .unwrap();
}
