//! How long the API key → tenant lookup takes (the per-request cost of
//! authentication): SHA-256 of the presented key, then a read-locked
//! `HashMap` probe, as `Keys::lookup` does for every request.
//!
//! ```text
//! cargo run --release --example bench_keys -- --tenants 10000 --lookups 1000000
//! ```
//!
//! Reports the median over `--rounds` of the time per lookup, for keys
//! that exist and for unknown keys, on one thread and on `--threads`
//! threads at once (the HTTP workers share the map).

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use smppd::config::Config;
use smppd::fair::Paces;
use smppd::http::auth::{key_hash, new_key, Keys, TenantInfo};

/// API key lookup cost.
#[derive(Debug, Parser)]
#[command(about = "Cost of smppd's API key -> tenant lookup")]
struct Args {
    /// Tenants (one key each).
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Lookups per round and thread.
    #[arg(long, default_value_t = 1_000_000)]
    lookups: usize,
    /// Rounds (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Threads for the concurrent measurement.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nanoseconds per lookup of `keys` (cycled) on `threads` threads at once.
fn measure(map: &Arc<Keys>, keys: &Arc<Vec<String>>, lookups: usize, threads: usize) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (map, keys) = (map.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut found = 0usize;
                for i in 0..lookups {
                    let key = &keys[(i * 7919 + t) % keys.len()];
                    found += usize::from(map.lookup(key).is_some());
                }
                found
            })
        })
        .collect();
    let found: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    std::hint::black_box(found);
    started.elapsed().as_nanos() as f64 / lookups as f64
}

fn main() {
    let args = Args::parse();
    let mut text = String::new();
    let keys: Vec<String> = (0..args.tenants).map(|_| new_key()).collect();
    for (i, key) in keys.iter().enumerate() {
        text.push_str(&format!(
            "[[tenants]]\nid = \"t{i}\"\napi_key = \"{key}\"\n"
        ));
    }
    let config = Config::parse(&text).expect("a valid config");
    let paces = Paces::default();
    let infos = config
        .tenants
        .iter()
        .map(|t| TenantInfo::new(t, false, &paces));
    let rows = config
        .tenants
        .iter()
        .map(|t| (key_hash(&t.api_key), t.id.clone(), None))
        .collect();
    let map = Arc::new(Keys::new(infos, rows));
    let known = Arc::new(keys);
    let unknown = Arc::new((0..1000).map(|_| new_key()).collect::<Vec<_>>());
    println!(
        "{} tenants, {} lookups per round and thread, median of {} rounds",
        args.tenants, args.lookups, args.rounds
    );
    for (label, set) in [("known key", &known), ("unknown key", &unknown)] {
        for threads in [1, args.threads] {
            let ns = median(
                (0..args.rounds)
                    .map(|_| measure(&map, set, args.lookups, threads))
                    .collect(),
            );
            println!(
                "  {label:<12} {threads} thread(s): {:>7.0} ns per lookup (wall time per lookup of one thread)",
                ns
            );
        }
    }
}
