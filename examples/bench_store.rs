//! The store's ceiling: how many messages per second smppd's SQLite store can
//! accept when W threads each insert and wait for the commit before the next
//! insert — what the HTTP handlers do for every `POST /v1/messages`.
//!
//! ```text
//! cargo run --release --example bench_store -- --writers 50 --messages 4000
//! ```
//!
//! Runs once per `--synchronous` mode (default both) on a fresh database in
//! a temporary directory (on the same file system as `--dir`, default the
//! system temp dir), and reports rows/s, the commit latency seen by a writer
//! (p50/p99/max), and the writer thread's operations per transaction (group
//! commit at work).

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use smppd_sqlite::{NewMessage, Store, StoreOptions, Synchronous};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Full,
    Normal,
    Both,
}

/// Group-commit ceiling of the smppd store.
#[derive(Debug, Parser)]
#[command(about = "Ceiling of smppd's SQLite store with W writers waiting for each commit")]
struct Args {
    /// Writer threads, each waiting for its commit before the next insert.
    #[arg(long, default_value_t = 50)]
    writers: usize,
    /// Messages per writer.
    #[arg(long, default_value_t = 4000)]
    messages: u64,
    /// synchronous pragma to measure.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    synchronous: Mode,
    /// Directory for the temporary database (default: the system temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Message text.
    #[arg(long, default_value = "Benchmark message 01")]
    text: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// CPU seconds (utime + stime) of this process's threads whose name starts
/// with `prefix`, from /proc/self/task/*/stat.
fn thread_cpu_s(prefix: &str) -> f64 {
    let tick = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if !stat[open + 1..close].starts_with(prefix) {
                continue;
            }
            let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ticks as f64 / tick
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn run(args: &Args, sync: Synchronous) -> Value {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("create a temporary directory");
    let path = dir.path().join("bench.db");
    let store = Store::open(
        &path,
        StoreOptions {
            synchronous: sync,
            ..StoreOptions::default()
        },
    )
    .expect("open the store");
    let before = store.stats();
    let barrier = Arc::new(Barrier::new(args.writers + 1));
    let handles: Vec<_> = (0..args.writers)
        .map(|w| {
            let store = store.clone();
            let barrier = barrier.clone();
            let text = args.text.clone();
            let n = args.messages;
            thread::spawn(move || {
                let (tx, rx) = mpsc::sync_channel::<bool>(1);
                let mut lat = Vec::with_capacity(n as usize);
                let mut errors = 0u64;
                barrier.wait();
                for i in 0..n {
                    let tx = tx.clone();
                    let t0 = Instant::now();
                    store.insert_message(
                        NewMessage::new(
                            &format!("tenant{}", w % 10),
                            "ACME",
                            &format!("49151{:08}", w as u64 * 100_000 + i),
                            &text,
                        ),
                        Box::new(move |r| {
                            let _ = tx.send(r.is_ok());
                        }),
                    );
                    let ok = rx.recv().unwrap_or(false);
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    if !ok {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    barrier.wait();
    let writer_cpu0 = thread_cpu_s("smppd-store-wri");
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("writer thread panicked");
        lat.extend(l);
        errors += e;
    }
    let wall = start.elapsed();
    let after = store.stats();
    let writer_cpu = thread_cpu_s("smppd-store-wri") - writer_cpu0;
    drop(store);
    lat.sort_unstable();
    let rows = lat.len() as u64 - errors;
    let txns = after.transactions - before.transactions;
    let ops = after.ops - before.ops;
    let name = match sync {
        Synchronous::Full => "full",
        Synchronous::Normal => "normal",
    };
    let result = json!({
        "synchronous": name,
        "writers": args.writers,
        "rows": rows,
        "errors": errors,
        "wall_s": wall.as_secs_f64(),
        "rows_per_s": rows as f64 / wall.as_secs_f64(),
        "commit_latency_ms": {
            "p50": percentile_ms(&lat, 50.0),
            "p99": percentile_ms(&lat, 99.0),
            "max": percentile_ms(&lat, 100.0),
        },
        "transactions": txns,
        "ops_per_transaction": if txns == 0 { 0.0 } else { ops as f64 / txns as f64 },
        "writer_thread_cpu_s": writer_cpu,
        "writer_cpu_us_per_row": if rows == 0 { 0.0 } else { writer_cpu * 1e6 / rows as f64 },
    });
    println!(
        "synchronous={name:<6} writers={:<4} rows={rows:<8} {:>9.0} rows/s  commit p50 {:.2} ms  \
         p99 {:.2} ms  max {:.1} ms  {:.1} ops/txn ({txns} txns); writer thread {:.1} µs CPU/row{}",
        args.writers,
        result["rows_per_s"].as_f64().unwrap_or(0.0),
        percentile_ms(&lat, 50.0),
        percentile_ms(&lat, 99.0),
        percentile_ms(&lat, 100.0),
        result["ops_per_transaction"].as_f64().unwrap_or(0.0),
        result["writer_cpu_us_per_row"].as_f64().unwrap_or(0.0),
        if errors > 0 {
            format!("  ERRORS {errors}")
        } else {
            String::new()
        },
    );
    // Let the file system settle before the next mode.
    thread::sleep(Duration::from_millis(200));
    result
}

fn main() {
    let args = Args::parse();
    let modes: &[Synchronous] = match args.synchronous {
        Mode::Full => &[Synchronous::Full],
        Mode::Normal => &[Synchronous::Normal],
        Mode::Both => &[Synchronous::Full, Synchronous::Normal],
    };
    let results: Vec<Value> = modes.iter().map(|&m| run(&args, m)).collect();
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json!({ "store": results })).expect("serialise");
        std::fs::write(path, text + "\n").expect("write the JSON file");
    }
}
