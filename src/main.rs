//! The `smppd` binary.
//!
//! `smppd --config FILE` runs the appliance on a TOML config.
//! `smppd` alone runs the embedded demo: a local database under
//! `smppd-data/`, HTTP on 127.0.0.1:8080, a demo tenant, and the bundled
//! SMSC simulator in-process, so a message really flows end to end.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use smppd::config::Config;
use smppd::Engine;
use smppd_actors::simulator::{Account, Simulator, SimulatorConfig};

/// Multi-tenant SMPP gateway: HTTP in, SQLite-durable, SMPP out, DLRs back.
#[derive(Debug, Parser)]
#[command(name = "smppd", version)]
struct Cli {
    /// TOML configuration file. Without it, smppd runs its embedded demo
    /// (demo tenant + bundled SMSC simulator).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long, requires = "config")]
    check: bool,
}

const DEMO_KEY: &str = "demo-secret-key";

/// Every Rust allocation (HTTP requests and answers, PDUs, actor messages,
/// store jobs) goes to mimalloc: with glibc's malloc they cost 8 % of the
/// engine's CPU, and with mimalloc the engine needs 39.5 → 36.3 µs per
/// message end to end (BENCHMARKS.md). SQLite allocates through the C
/// library's `malloc`, which `tune_allocator` still tunes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glibc returns freed memory at the top of each thread's heap to the
/// kernel as soon as it exceeds 128 KiB, and the store's writer thread
/// (SQLite's page cache and statements, which use the C library's malloc)
/// frees and re-allocates that much after every batch: each round trip is
/// an madvise, page faults and TLB shootdowns across cores. Measured on
/// the end-to-end benchmark: engine CPU 100 → 76 µs per message. Keeping
/// up to 128 MiB (and growing heaps 16 MiB at a time) trades a little
/// retained memory for that.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("smppd: config error in {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => match demo_config() {
            Ok(config) => config,
            Err(e) => {
                eprintln!("smppd: cannot start the demo: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    if cli.check {
        println!(
            "{}: ok ({} tenants)",
            cli.config.unwrap_or_default().display(),
            config.tenants.len()
        );
        return ExitCode::SUCCESS;
    }
    let listener = match TcpListener::bind(&config.http.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("smppd: cannot listen on {}: {e}", config.http.listen);
            return ExitCode::FAILURE;
        }
    };
    raise_backlog(&listener);
    let demo = cli.config.is_none();
    actix_rt::System::new().block_on(async move {
        let engine = match Engine::start(&config, listener).await {
            Ok(engine) => engine,
            Err(e) => {
                eprintln!("smppd: {e}");
                return ExitCode::FAILURE;
            }
        };
        if demo {
            print_demo_banner(&engine);
        }
        wait_for_signal().await;
        engine.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => log::info!("Ctrl-C received"),
    }
}

/// The embedded default: the simulator on a free port and one demo tenant
/// bound to it.
fn demo_config() -> Result<Config, String> {
    let data = PathBuf::from("smppd-data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let simulator = Simulator::start(SimulatorConfig {
        accounts: vec![Account {
            system_id: "demo".into(),
            password: "demo-pw".into(),
        }],
        dlr_delay: Duration::from_millis(300),
        ..SimulatorConfig::default()
    })
    .map_err(|e| format!("cannot start the SMSC simulator: {e}"))?;
    let port = simulator.local_addr().port();
    // The simulator lives as long as the process.
    std::mem::forget(simulator);
    let text = format!(
        r#"
[database]
path = "{db}"
[[tenants]]
id = "demo"
api_key = "{DEMO_KEY}"
[[tenants.channels]]
name = "simulator"
host = "127.0.0.1"
port = {port}
system_id = "demo"
password = "demo-pw"
bind = "transceiver"
sessions = 2
"#,
        db = data.join("demo.db").display()
    );
    Config::parse(&text).map_err(|e| e.to_string())
}

fn print_demo_banner(engine: &Engine) {
    let addr = engine.local_addr();
    println!(
        r#"
smppd demo is running: HTTP on http://{addr}, tenant "demo", bundled SMSC simulator.
API key: {DEMO_KEY}

Send a message:
  curl -s -X POST http://{addr}/v1/messages -H 'Authorization: Bearer {DEMO_KEY}' -H 'Content-Type: application/json' -d '{{"to":"+4915112345678","from":"DEMO","text":"Hello from smppd"}}'

Then ask for its status (use the id it returned):
  curl -s http://{addr}/v1/messages/<id> -H 'Authorization: Bearer {DEMO_KEY}'

Stop with Ctrl-C.
"#
    );
}

/// Pending connections the kernel queues for the HTTP listener (capped by
/// `net.core.somaxconn`), as actix-web's own `bind` would. `std`'s `bind`
/// listens with 128: 200 clients connecting at once overflowed it, and
/// the dropped SYNs were retried a second later (1 s accept latencies in
/// `run.sh --latency` at concurrency 200).
const LISTEN_BACKLOG: libc::c_int = 1024;

fn raise_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a socket we own and that is already listening
    // only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        log::warn!(
            "could not raise the HTTP listen backlog to {LISTEN_BACKLOG}: {}",
            std::io::Error::last_os_error()
        );
    }
}
