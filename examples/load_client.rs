//! Multi-tenant HTTP load client for smppd: sends `--messages` messages per
//! tenant (one `--key` per tenant) over `--concurrency` keep-alive
//! connections, then waits until every tenant's `GET /v1/stats` `final`
//! counter has caught up with what it accepted, and reports:
//!
//! - accepted msg/s (202s / send-phase wall time), accept latency
//!   p50/p95/p99/max of the successful requests, the count per HTTP status;
//! - time to the last receipt (from the first request until every tenant's
//!   `final` reached its accepted count) and the end-to-end msg/s;
//! - from `/proc/PID` of the engine (`--pid`): CPU seconds over the run, CPU
//!   µs per message, RSS before and after;
//! - one row per tenant (accepted, p95, time to its last receipt, share of
//!   the throughput), so unfairness shows.
//!
//! ```text
//! cargo run --release --example load_client -- \
//!     --key acme-secret --key beta-secret --messages 20000 --concurrency 50 \
//!     --pid "$(pgrep -n smppd)" --json result.json
//! ```
//!
//! Each in-flight request is one keep-alive HTTP/1.1 connection, driven as a
//! task by a small hand-written client on `--client-threads` event loops
//! (tokio `current_thread`), so the client's own CPU per request stays well
//! below the engine's; it is measured too (`client.cpu_s`).
//! Counters are read as deltas from their values at start, so the client
//! can be re-run against an engine that is already running.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::timeout;

/// HTTP load client for smppd (multi-tenant).
#[derive(Debug, Parser)]
#[command(about = "HTTP load client for smppd: accept rate, latency, receipts, engine CPU/RSS")]
struct Args {
    /// Base URL of the smppd HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key of one tenant (repeat: one per tenant).
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    /// Messages to send per tenant.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Requests in flight in total (keep-alive connections, one request at
    /// a time each), spread evenly over the tenants.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// OS threads the connections are spread over, each running them as
    /// tasks of one event loop (tokio `current_thread`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    client_threads: u16,
    /// PID of the smppd process, for its CPU time and RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// PID of the SMSC simulator, for its CPU time (optional).
    #[arg(long)]
    sim_pid: Option<u32>,
    /// Message text.
    #[arg(long, default_value = "Benchmark message 01")]
    text: String,
    /// Sender.
    #[arg(long, default_value = "ACME")]
    from: String,
    /// Give up waiting for receipts this long after the last request.
    #[arg(long, default_value_t = 300)]
    wait_timeout_s: u64,
    /// Do not wait for receipts at all (e.g. the SMSC is unreachable).
    #[arg(long)]
    no_wait: bool,
    /// Stop sending after this many seconds even if not every message was
    /// sent (the report says how many were).
    #[arg(long)]
    max_send_s: Option<u64>,
    /// Send nothing: wait until every tenant's `final` counter reaches its
    /// `accepted` counter (absolute values: a backlog accepted earlier, e.g.
    /// while the SMSC was unreachable, drains), and report how long that
    /// took and the engine's CPU and RSS.
    #[arg(long)]
    drain: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Before sending, wait up to this many seconds until every SMPP session
    /// of every tenant is `bound` (GET /v1/connections). 0: do not wait.
    #[arg(long, default_value_t = 0)]
    wait_ready_s: u64,
    /// A label copied into the JSON (e.g. "10 tenants, run 2").
    #[arg(long, default_value = "")]
    label: String,
}

// ---------------------------------------------------------------- /proc

/// Clock ticks per second for /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks. `pid` "self" works too.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (utime, stime) of a process, in ticks.
fn cpu_split(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

/// Per thread of a process: tid -> (name, utime + stime ticks).
fn thread_ticks(pid: u32) -> BTreeMap<u64, (String, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = fields
            .get(11)
            .and_then(|u| u.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        out.insert(tid, (name, ticks));
    }
    out
}

/// CPU seconds per thread name over a run (threads of the same name summed).
fn thread_cpu_delta(
    before: &BTreeMap<u64, (String, u64)>,
    after: &BTreeMap<u64, (String, u64)>,
    ticks_per_s: f64,
) -> BTreeMap<String, f64> {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (name, ticks)) in after {
        let t0 = before.get(tid).map_or(0, |(_, t)| *t);
        *by_name.entry(name.clone()).or_default() += ticks.saturating_sub(t0) as f64 / ticks_per_s;
    }
    by_name.retain(|_, v| *v > 0.0);
    by_name
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (busy, total) jiffies of the whole machine from /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

// ---------------------------------------------------------------- stats

fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency summary in milliseconds from microsecond samples (sorted).
fn latency_json(sorted: &[u32]) -> Value {
    let ms = |v: Option<u32>| v.map(|us| us as f64 / 1000.0);
    let mean = if sorted.is_empty() {
        None
    } else {
        Some(sorted.iter().map(|&v| v as f64).sum::<f64>() / sorted.len() as f64 / 1000.0)
    };
    json!({
        "p50": ms(percentile(sorted, 50.0)),
        "p95": ms(percentile(sorted, 95.0)),
        "p99": ms(percentile(sorted, 99.0)),
        "max": ms(sorted.last().copied()),
        "mean": mean,
    })
}

// ---------------------------------------------------------------- HTTP

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections(4)
        .max_idle_connections_per_host(4)
        .build()
        .into()
}

/// The tenant's counters from `GET /v1/stats`.
fn read_stats(agent: &ureq::Agent, url: &str, key: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut resp = agent
        .get(format!("{url}/v1/stats"))
        .header("Authorization", format!("Bearer {key}"))
        .call()
        .map_err(|e| format!("GET /v1/stats: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET /v1/stats body: {e}"))?;
    if status != 200 {
        return Err(format!("GET /v1/stats answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET /v1/stats: bad JSON {body:?}: {e}"))
}

/// True when every session of the tenant is `bound` (and it has some).
fn all_bound(agent: &ureq::Agent, url: &str, key: &str) -> bool {
    let Ok(mut resp) = agent
        .get(format!("{url}/v1/connections"))
        .header("Authorization", format!("Bearer {key}"))
        .call()
    else {
        return false;
    };
    let Ok(body) = resp.body_mut().read_to_string() else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return false;
    };
    v["connections"]
        .as_array()
        .is_some_and(|c| !c.is_empty() && c.iter().all(|s| s["state"] == "bound"))
}

/// What one connection measured.
#[derive(Default)]
struct ConnResult {
    tenant: usize,
    latencies_us: Vec<u32>,
    statuses: BTreeMap<String, u64>,
    accepted: u64,
    /// When this connection's last request was answered (since the start).
    finished: Duration,
}

/// What the run shares between threads.
struct Shared {
    sent: AtomicU64,
    /// Per tenant: 202s so far, and the number of connections still sending.
    accepted: Vec<AtomicU64>,
    senders_left: Vec<AtomicU64>,
    stop_polling: AtomicBool,
    /// Senders stop when this passes (`--max-send-s`).
    deadline: Option<Instant>,
}

/// Where the senders connect and what they put in the request line: parsed
/// once from `--url` (`http://HOST[:PORT][/PREFIX]`).
struct Target {
    addr: SocketAddr,
    /// The `Host` header: the URL's authority as given.
    host: String,
    /// The request target of `POST /v1/messages`, with the URL's path prefix.
    path: String,
}

impl Target {
    /// Parses `--url` and resolves its host (once, before the run).
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url {url:?}: the sender speaks plain http:// only"))?;
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("--url {url:?}: no host"));
        }
        // "host", "host:port", "[v6]" or "[v6]:port".
        let has_port = authority
            .rfind(':')
            .is_some_and(|i| !authority[i..].contains(']'));
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("--url {url:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url {url:?}: the host resolves to no address"))?;
        Ok(Target {
            addr,
            host: authority.to_string(),
            path: format!("{}/v1/messages", prefix.trim_end_matches('/')),
        })
    }
}

/// Per request: 60 s from writing the request to having read the response
/// (`timeout` in the status counts), as the blocking client had.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A response head longer than this is refused (`error`).
const MAX_HEAD: usize = 64 * 1024;

/// Why an exchange failed: `io-error` (including the server closing the
/// connection) or `error` (a response this client cannot parse).
enum Failure {
    /// Connecting, writing or reading failed, or the server closed.
    Io,
    /// The response is not HTTP/1.x as this client understands it.
    Protocol,
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Self {
        Failure::Io
    }
}

/// Bytes read from a connection and not consumed yet, in a buffer reused
/// for every response (and across reconnects).
struct RecvBuf {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl RecvBuf {
    /// An empty buffer of 8 KiB (it grows for longer responses).
    fn new() -> Self {
        RecvBuf {
            buf: vec![0; 8 * 1024],
            pos: 0,
            len: 0,
        }
    }

    /// The bytes read and not consumed yet.
    fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Marks the first `n` bytes of `data()` as used.
    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.len {
            self.clear();
        }
    }

    /// Drops everything not consumed yet (e.g. on a new connection).
    fn clear(&mut self) {
        self.pos = 0;
        self.len = 0;
    }

    /// Reads more bytes; `Ok(0)` at end of stream.
    async fn fill(&mut self, stream: &mut TcpStream) -> std::io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = stream.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    /// Reads more bytes; the server closing the connection is an error.
    async fn fill_more(&mut self, stream: &mut TcpStream) -> Result<(), Failure> {
        match self.fill(stream).await? {
            0 => Err(Failure::Io),
            _ => Ok(()),
        }
    }

    /// Reads until the buffer holds `delim`; returns the length up to and
    /// including it. Gives up (`error`) past `MAX_HEAD` bytes.
    async fn read_until(&mut self, stream: &mut TcpStream, delim: &[u8]) -> Result<usize, Failure> {
        let mut scanned = 0;
        loop {
            let data = self.data();
            if let Some(i) = find(&data[scanned..], delim) {
                return Ok(scanned + i + delim.len());
            }
            scanned = data.len().saturating_sub(delim.len() - 1);
            if data.len() > MAX_HEAD {
                return Err(Failure::Protocol);
            }
            self.fill_more(stream).await?;
        }
    }

    /// Reads and drops exactly `n` bytes.
    async fn skip(&mut self, stream: &mut TcpStream, mut n: u64) -> Result<(), Failure> {
        loop {
            let take = n.min(self.data().len() as u64);
            self.consume(take as usize);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill_more(stream).await?;
        }
    }
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// What the client needs from a response head.
#[derive(Clone, Copy)]
struct Head {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    /// The server closes the connection after this response.
    close: bool,
}

/// Parses a response head (status line and header lines, up to and
/// including the empty line).
fn parse_head(head: &[u8]) -> Result<Head, Failure> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(Failure::Protocol)?;
    // "HTTP/1.1 202 Accepted"
    let minor = match status_line.get(..9) {
        Some([b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ']) => *minor,
        _ => return Err(Failure::Protocol),
    };
    let status = match status_line.get(9..12) {
        Some(code) if code.iter().all(u8::is_ascii_digit) => code
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0')),
        _ => return Err(Failure::Protocol),
    };
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Failure::Protocol);
        };
        let name = trim(&line[..colon]);
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(Failure::Protocol)?;
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    // HTTP/1.0 closes unless it says keep-alive.
    if minor == b'0' && !keep_alive {
        close = true;
    }
    Ok(Head {
        status,
        content_length,
        chunked,
        close,
    })
}

/// Reads one response (skipping interim 1xx ones) and its body; returns
/// the status and whether the connection can carry the next request.
async fn read_response(stream: &mut TcpStream, rb: &mut RecvBuf) -> Result<(u16, bool), Failure> {
    loop {
        let head_len = rb.read_until(stream, b"\r\n\r\n").await?;
        let head = parse_head(&rb.data()[..head_len])?;
        rb.consume(head_len);
        if (100..200).contains(&head.status) {
            continue;
        }
        if head.chunked {
            loop {
                let line_len = rb.read_until(stream, b"\r\n").await?;
                let line = &rb.data()[..line_len - 2];
                let digits = trim(line.split(|&b| b == b';').next().unwrap_or_default());
                let size = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .ok_or(Failure::Protocol)?;
                rb.consume(line_len);
                if size == 0 {
                    // Trailer lines, up to an empty one.
                    loop {
                        let trailer_len = rb.read_until(stream, b"\r\n").await?;
                        rb.consume(trailer_len);
                        if trailer_len == 2 {
                            break;
                        }
                    }
                    break;
                }
                rb.skip(stream, size + 2).await?;
            }
        } else if let Some(n) = head.content_length {
            rb.skip(stream, n).await?;
        } else if !matches!(head.status, 204 | 304) {
            // No length: the body ends when the server closes.
            loop {
                rb.clear();
                if rb.fill(stream).await? == 0 {
                    return Ok((head.status, false));
                }
            }
        }
        return Ok((head.status, !head.close));
    }
}

/// One request and its response on `conn`, connecting first if there is no
/// connection. The connection is dropped when the server says it closes.
async fn exchange(
    conn: &mut Option<TcpStream>,
    addr: SocketAddr,
    request: &[u8],
    rb: &mut RecvBuf,
) -> Result<u16, Failure> {
    if conn.is_none() {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        rb.clear();
        *conn = Some(stream);
    }
    let Some(stream) = conn.as_mut() else {
        unreachable!("connected above");
    };
    stream.write_all(request).await?;
    let (status, keep_alive) = read_response(stream, rb).await?;
    if !keep_alive {
        *conn = None;
    }
    Ok(status)
}

/// One connection of a tenant: sends `count` messages one after the other
/// on a keep-alive connection (reconnecting after an error or a
/// `Connection: close`), as one task of a client thread.
#[allow(clippy::too_many_arguments)]
async fn sender(
    tenant: usize,
    conn_no: usize,
    count: u64,
    target: Arc<Target>,
    key: String,
    from_json: Arc<str>,
    text_json: Arc<str>,
    start: Instant,
    shared: Arc<Shared>,
) -> ConnResult {
    let mut result = ConnResult {
        tenant,
        latencies_us: Vec::with_capacity(count as usize),
        ..Default::default()
    };
    // The request head up to the Content-Length value; the rest is appended
    // per message into the same buffer.
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: ",
        target.path, target.host
    )
    .into_bytes();
    let head_len = request.len();
    let mut body: Vec<u8> = Vec::with_capacity(256);
    let mut rb = RecvBuf::new();
    let mut conn: Option<TcpStream> = None;
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut timeouts, mut io_errors, mut errors) = (0u64, 0u64, 0u64);
    for i in 0..count {
        if i % 32 == 0 && shared.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // A different recipient per message, as real traffic has.
        let to = 4_915_100_000_000u64 + (conn_no as u64) * 1_000_000 + i % 1_000_000;
        body.clear();
        write!(
            body,
            r#"{{"to":"{to}","from":{from_json},"text":{text_json}}}"#
        )
        .expect("writing to a Vec");
        request.truncate(head_len);
        write!(request, "{}\r\n\r\n", body.len()).expect("writing to a Vec");
        request.extend_from_slice(&body);
        let t0 = Instant::now();
        let outcome = timeout(
            REQUEST_TIMEOUT,
            exchange(&mut conn, target.addr, &request, &mut rb),
        )
        .await;
        let elapsed = t0.elapsed();
        match outcome {
            Ok(Ok(status)) => {
                if (200..300).contains(&status) {
                    result
                        .latencies_us
                        .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
                }
                if status == 202 {
                    result.accepted += 1;
                    shared.accepted[tenant].fetch_add(1, Ordering::Relaxed);
                }
                *codes.entry(status).or_default() += 1;
            }
            Ok(Err(failure)) => {
                match failure {
                    Failure::Io => io_errors += 1,
                    Failure::Protocol => errors += 1,
                }
                conn = None;
            }
            Err(_) => {
                timeouts += 1;
                conn = None;
            }
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
    }
    result.finished = start.elapsed();
    shared.senders_left[tenant].fetch_sub(1, Ordering::Release);
    result.statuses = codes.iter().map(|(c, n)| (c.to_string(), *n)).collect();
    for (name, n) in [
        ("timeout", timeouts),
        ("io-error", io_errors),
        ("error", errors),
    ] {
        if n > 0 {
            result.statuses.insert(name.to_string(), n);
        }
    }
    result
}

/// Per tenant: when its `final` count caught up with its accepted count.
struct PollResult {
    done_at: Vec<Option<Duration>>,
    finals: Vec<u64>,
    stats_end: Vec<BTreeMap<String, u64>>,
    errors: u64,
}

/// Polls every tenant's stats every 100 ms from the start (every 10 ms once
/// the senders are done), records when each tenant is done (its senders
/// finished and `final - final0 >= accepted`), and stops when all are done,
/// on timeout, or when told to.
#[allow(clippy::too_many_arguments)]
fn poller(
    url: String,
    keys: Vec<String>,
    final0: Vec<u64>,
    start: Instant,
    shared: Arc<Shared>,
    wait_timeout: Duration,
    send_end: Arc<Mutex<Option<Instant>>>,
    bar: ProgressBar,
) -> PollResult {
    let agent = agent();
    let t = keys.len();
    let mut done_at = vec![None; t];
    let mut finals = vec![0u64; t];
    let mut stats_end = vec![BTreeMap::new(); t];
    let mut errors = 0;
    loop {
        let tick = Instant::now();
        for (i, key) in keys.iter().enumerate() {
            if done_at[i].is_some() {
                continue;
            }
            match read_stats(&agent, &url, key) {
                Ok(stats) => {
                    finals[i] = stats
                        .get("final")
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(final0[i]);
                    stats_end[i] = stats;
                    let senders_done = shared.senders_left[i].load(Ordering::Acquire) == 0;
                    if senders_done && finals[i] >= shared.accepted[i].load(Ordering::Relaxed) {
                        done_at[i] = Some(start.elapsed());
                    }
                }
                Err(_) => errors += 1,
            }
        }
        bar.set_position(finals.iter().sum());
        if done_at.iter().all(Option::is_some) || shared.stop_polling.load(Ordering::Relaxed) {
            break;
        }
        if let Some(end) = *send_end.lock().unwrap() {
            if end.elapsed() > wait_timeout {
                break;
            }
        }
        // Coarse while sending (each poll costs the engine a stats read),
        // fine once the senders are done, and woken within 10 ms of that:
        // the time to the last DLR is only as exact as this tick, and
        // 100 ms would be 4 % of a 2.5 s run.
        let senders_done = || {
            shared
                .senders_left
                .iter()
                .all(|left| left.load(Ordering::Acquire) == 0)
        };
        let period = Duration::from_millis(if senders_done() { 10 } else { 100 });
        // In 10 ms steps, so that the senders finishing ends the wait.
        loop {
            thread::sleep(Duration::from_millis(10).min(period.saturating_sub(tick.elapsed())));
            if tick.elapsed() >= period || senders_done() {
                break;
            }
        }
    }
    PollResult {
        done_at,
        finals,
        stats_end,
        errors,
    }
}

fn main() {
    let args = Args::parse();
    let url = args.url.trim_end_matches('/').to_string();
    let tenants = args.keys.len();
    if args.concurrency < tenants {
        eprintln!(
            "load_client: --concurrency {} is below the number of tenants ({tenants}); \
             every tenant needs at least one connection",
            args.concurrency
        );
        std::process::exit(2);
    }
    let ticks_per_s = clock_ticks();
    if args.drain {
        drain(&args, &url, ticks_per_s);
        return;
    }

    if args.wait_ready_s > 0 {
        let probe = agent();
        let deadline = Instant::now() + Duration::from_secs(args.wait_ready_s);
        while !args.keys.iter().all(|k| all_bound(&probe, &url, k)) {
            if Instant::now() > deadline {
                eprintln!(
                    "load_client: not every session was bound after {} s",
                    args.wait_ready_s
                );
                std::process::exit(1);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    // Counters at start, so re-runs against a running engine measure deltas.
    let probe = agent();
    let mut final0 = Vec::with_capacity(tenants);
    let mut accepted0 = Vec::with_capacity(tenants);
    for key in &args.keys {
        match read_stats(&probe, &url, key) {
            Ok(s) => {
                final0.push(s.get("final").copied().unwrap_or(0));
                accepted0.push(s.get("accepted").copied().unwrap_or(0));
            }
            Err(e) => {
                eprintln!("load_client: key {key:?}: {e}");
                std::process::exit(1);
            }
        }
    }

    // Connections per tenant: the concurrency spread evenly; messages spread
    // evenly over each tenant's connections.
    let mut plan: Vec<(usize, u64)> = Vec::new(); // (tenant, messages)
    for tenant in 0..tenants {
        let threads = args.concurrency / tenants + usize::from(tenant < args.concurrency % tenants);
        for j in 0..threads {
            let n = args.messages / threads as u64
                + u64::from((j as u64) < args.messages % threads as u64);
            plan.push((tenant, n));
        }
    }
    let total = args.messages * tenants as u64;
    let client_threads = usize::from(args.client_threads).min(plan.len());
    let target = match Target::parse(&url) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("load_client: {e}");
            std::process::exit(2);
        }
    };

    let multi = MultiProgress::with_draw_target(if args.no_progress {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(4)
    });
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos:>9}/{len:9} {per_sec:>12} eta {eta}",
    )
    .expect("valid template");
    let sent_bar = multi.add(ProgressBar::new(total).with_style(style.clone()));
    sent_bar.set_prefix("sent");
    let dlr_bar = multi.add(ProgressBar::new(total).with_style(style));
    dlr_bar.set_prefix("receipts");

    let shared = Arc::new(Shared {
        sent: AtomicU64::new(0),
        accepted: (0..tenants).map(|_| AtomicU64::new(0)).collect(),
        senders_left: (0..tenants)
            .map(|t| AtomicU64::new(plan.iter().filter(|(pt, _)| *pt == t).count() as u64))
            .collect(),
        stop_polling: AtomicBool::new(args.no_wait),
        deadline: args
            .max_send_s
            .map(|s| Instant::now() + Duration::from_secs(s)),
    });

    // Connections per client thread: spread evenly like over the tenants,
    // round robin so that every thread carries a mix of the tenants.
    let mut per_thread: Vec<Vec<(usize, usize, u64)>> = vec![Vec::new(); client_threads];
    for (conn_no, &(tenant, n)) in plan.iter().enumerate() {
        per_thread[conn_no % client_threads].push((conn_no, tenant, n));
    }
    let from_json: Arc<str> = serde_json::to_string(&args.from)
        .expect("a string serialises")
        .into();
    let text_json: Arc<str> = serde_json::to_string(&args.text)
        .expect("a string serialises")
        .into();

    let engine_cpu0 = args.pid.and_then(|p| cpu_ticks(&p.to_string()));
    let engine_threads0 = args.pid.map(thread_ticks).unwrap_or_default();
    let engine_split0 = args.pid.and_then(|p| cpu_split(&p.to_string()));
    let client_split0 = cpu_split("self");
    let sim_cpu0 = args.sim_pid.and_then(|p| cpu_ticks(&p.to_string()));
    let rss_before = args.pid.and_then(rss_kib);
    let machine0 = machine_ticks();
    let client_cpu0 = cpu_ticks("self");

    let start = Instant::now();
    let send_end: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let poll_handle = if args.no_wait {
        None
    } else {
        let (url, keys, final0, shared, send_end, bar) = (
            url.clone(),
            args.keys.clone(),
            final0.clone(),
            shared.clone(),
            send_end.clone(),
            dlr_bar.clone(),
        );
        let timeout = Duration::from_secs(args.wait_timeout_s);
        Some(thread::spawn(move || {
            poller(url, keys, final0, start, shared, timeout, send_end, bar)
        }))
    };
    let handles: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(k, conns)| {
            let (target, keys, from_json, text_json, shared) = (
                target.clone(),
                args.keys.clone(),
                from_json.clone(),
                text_json.clone(),
                shared.clone(),
            );
            thread::Builder::new()
                .name(format!("client-{k}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_io()
                        .enable_time()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async move {
                        let mut tasks = JoinSet::new();
                        for (conn_no, tenant, n) in conns {
                            tasks.spawn(sender(
                                tenant,
                                conn_no,
                                n,
                                target.clone(),
                                keys[tenant].clone(),
                                from_json.clone(),
                                text_json.clone(),
                                start,
                                shared.clone(),
                            ));
                        }
                        tasks.join_all().await
                    })
                })
                .expect("spawn a client thread")
        })
        .collect();
    // Each tenant's 202s up to the moment the first tenant stopped sending:
    // while every tenant is still sending, these are the shares the engine
    // gives them under the same load (weights, `engine.fair_share`).
    let mut contended: Option<(Vec<u64>, Duration)> = None;
    while !handles.iter().all(|h| h.is_finished()) {
        sent_bar.set_position(shared.sent.load(Ordering::Relaxed));
        if contended.is_none()
            && shared
                .senders_left
                .iter()
                .any(|s| s.load(Ordering::Acquire) == 0)
        {
            let counts = shared
                .accepted
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect();
            contended = Some((counts, start.elapsed()));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let results: Vec<ConnResult> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread panicked"))
        .collect();
    // The send phase ends with the last answer (not when this loop noticed).
    let send_wall = results
        .iter()
        .map(|r| r.finished)
        .max()
        .unwrap_or_else(|| start.elapsed());
    *send_end.lock().unwrap() = Some(Instant::now());
    sent_bar.set_position(shared.sent.load(Ordering::Relaxed));
    sent_bar.finish();

    let poll = poll_handle.map(|h| h.join().expect("poller panicked"));
    let run_wall = start.elapsed();
    dlr_bar.finish();

    let engine_cpu1 = args.pid.and_then(|p| cpu_ticks(&p.to_string()));
    let engine_threads1 = args.pid.map(thread_ticks).unwrap_or_default();
    let engine_split1 = args.pid.and_then(|p| cpu_split(&p.to_string()));
    let client_split1 = cpu_split("self");
    let split = |a: Option<(u64, u64)>, b: Option<(u64, u64)>| match (a, b) {
        (Some(a), Some(b)) => json!({
            "user_s": b.0.saturating_sub(a.0) as f64 / ticks_per_s,
            "system_s": b.1.saturating_sub(a.1) as f64 / ticks_per_s,
        }),
        _ => Value::Null,
    };
    let engine_split = split(engine_split0, engine_split1);
    let client_split = split(client_split0, client_split1);
    let sim_cpu1 = args.sim_pid.and_then(|p| cpu_ticks(&p.to_string()));
    let rss_after = args.pid.and_then(rss_kib);
    let machine1 = machine_ticks();
    let client_cpu1 = cpu_ticks("self");

    // ---- aggregate
    let mut all_lat: Vec<u32> = Vec::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_tenant_lat: Vec<Vec<u32>> = vec![Vec::new(); tenants];
    let mut per_tenant_accepted = vec![0u64; tenants];
    let mut per_tenant_send_end = vec![Duration::ZERO; tenants];
    for r in &results {
        all_lat.extend_from_slice(&r.latencies_us);
        per_tenant_lat[r.tenant].extend_from_slice(&r.latencies_us);
        per_tenant_accepted[r.tenant] += r.accepted;
        per_tenant_send_end[r.tenant] = per_tenant_send_end[r.tenant].max(r.finished);
        for (k, v) in &r.statuses {
            *statuses.entry(k.clone()).or_default() += v;
        }
    }
    all_lat.sort_unstable();
    per_tenant_lat.iter_mut().for_each(|v| v.sort_unstable());
    let sent: u64 = statuses.values().sum();
    let accepted: u64 = per_tenant_accepted.iter().sum();
    let accepted_per_s = accepted as f64 / send_wall.as_secs_f64();
    let success_rate = if sent == 0 {
        0.0
    } else {
        accepted as f64 / sent as f64
    };

    let dlr_done = poll.as_ref().map(|p| p.done_at.iter().all(Option::is_some));
    let last_dlr = poll
        .as_ref()
        .filter(|_| dlr_done == Some(true))
        .and_then(|p| p.done_at.iter().flatten().max().copied());
    let e2e_per_s = last_dlr.map(|d| accepted as f64 / d.as_secs_f64());

    let secs = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ticks_per_s),
        _ => None,
    };
    let engine_cpu_s = secs(engine_cpu0, engine_cpu1);
    let sim_cpu_s = secs(sim_cpu0, sim_cpu1);
    let client_cpu_s = secs(client_cpu0, client_cpu1);
    let engine_threads = thread_cpu_delta(&engine_threads0, &engine_threads1, ticks_per_s);
    let cpu_us_per_msg = engine_cpu_s
        .filter(|_| accepted > 0)
        .map(|s| s * 1e6 / accepted as f64);
    let machine_busy_cores = match (machine0, machine1) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            Some((b1 - b0) as f64 / (t1 - t0) as f64 * cores)
        }
        _ => None,
    };
    // Busy cores not explained by the engine, the simulator or this client:
    // other processes on the machine (noise) and kernel work not charged to them.
    let other_busy_cores = machine_busy_cores.map(|busy| {
        busy - [engine_cpu_s, sim_cpu_s, client_cpu_s]
            .iter()
            .flatten()
            .sum::<f64>()
            / run_wall.as_secs_f64()
    });

    // Per-tenant throughput: accepted / time to its last receipt; share of the sum.
    let tenant_rates: Vec<Option<f64>> = (0..tenants)
        .map(|i| {
            poll.as_ref()
                .and_then(|p| p.done_at[i])
                .map(|d| per_tenant_accepted[i] as f64 / d.as_secs_f64())
        })
        .collect();
    let rate_sum: f64 = tenant_rates.iter().flatten().sum();
    let contended_sum: u64 = contended.as_ref().map_or(0, |(c, _)| c.iter().sum());
    let tenant_rows: Vec<Value> = (0..tenants)
        .map(|i| {
            let done = poll.as_ref().and_then(|p| p.done_at[i]);
            let stats = poll.as_ref().map(|p| &p.stats_end[i]);
            json!({
                "tenant": i,
                "accepted": per_tenant_accepted[i],
                "engine_accepted_delta": stats
                    .and_then(|s| s.get("accepted"))
                    .map(|a| a.saturating_sub(accepted0[i])),
                "finals": poll.as_ref().map(|p| p.finals[i]),
                "send_s": per_tenant_send_end[i].as_secs_f64(),
                "accept_latency_ms": latency_json(&per_tenant_lat[i]),
                "time_to_last_dlr_s": done.map(|d| d.as_secs_f64()),
                "end_to_end_per_s": tenant_rates[i],
                "share": tenant_rates[i].filter(|_| rate_sum > 0.0).map(|r| r / rate_sum),
                "contended_accepted": contended.as_ref().map(|(c, _)| c[i]),
                "contended_share": contended
                    .as_ref()
                    .filter(|_| contended_sum > 0)
                    .map(|(c, _)| c[i] as f64 / contended_sum as f64),
                "retried": stats.and_then(|s| s.get("retried")).copied(),
                "throttled": stats.and_then(|s| s.get("throttled")).copied(),
            })
        })
        .collect();

    let result = json!({
        "label": args.label,
        "config": {
            "url": url,
            "tenants": tenants,
            "messages_per_tenant": args.messages,
            "concurrency": args.concurrency,
            "client_threads": client_threads,
            "text_chars": args.text.chars().count(),
        },
        "send": {
            "wall_s": send_wall.as_secs_f64(),
            "contended_s": contended.as_ref().map(|(_, at)| at.as_secs_f64()),
            "sent": sent,
            "accepted": accepted,
            "accepted_per_s": accepted_per_s,
            "status_counts": statuses,
            "success_rate": success_rate,
            "accept_latency_ms": latency_json(&all_lat),
        },
        "receipts": {
            "waited": poll.is_some(),
            "complete": dlr_done,
            "time_to_last_dlr_s": last_dlr.map(|d| d.as_secs_f64()),
            "end_to_end_per_s": e2e_per_s,
            "finals": poll.as_ref().map(|p| p.finals.iter().sum::<u64>()),
            "stats_errors": poll.as_ref().map(|p| p.errors),
        },
        "engine": {
            "pid": args.pid,
            "cpu_s": engine_cpu_s,
            "cpu_us_per_msg": cpu_us_per_msg,
            "cpu_cores_avg": engine_cpu_s.map(|s| s / run_wall.as_secs_f64()),
            "rss_before_kib": rss_before,
            "rss_after_kib": rss_after,
            "thread_cpu_s": engine_threads,
            "cpu_split": engine_split,
        },
        "simulator": { "pid": args.sim_pid, "cpu_s": sim_cpu_s },
        "client": { "cpu_s": client_cpu_s, "cpu_split": client_split },
        "machine": {
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "busy_cores_avg": machine_busy_cores,
            "other_busy_cores_avg": other_busy_cores,
            "run_wall_s": run_wall.as_secs_f64(),
        },
        "tenants_detail": tenant_rows,
    });

    print_report(&result);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&result).expect("JSON serialises");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("load_client: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if dlr_done == Some(false) {
        eprintln!(
            "load_client: not every receipt arrived within {} s after the last request",
            args.wait_timeout_s
        );
        std::process::exit(3);
    }
}

/// `--drain`: wait until the engine's `final` counters reach its `accepted`
/// counters, measuring time, engine CPU and RSS on the way.
fn drain(args: &Args, url: &str, ticks_per_s: f64) {
    let agent = agent();
    let read_all = || -> Vec<(u64, u64)> {
        args.keys
            .iter()
            .map(|k| match read_stats(&agent, url, k) {
                Ok(s) => (
                    s.get("accepted").copied().unwrap_or(0),
                    s.get("final").copied().unwrap_or(0),
                ),
                Err(e) => {
                    eprintln!("load_client: {e}");
                    (u64::MAX, 0)
                }
            })
            .collect()
    };
    let first = read_all();
    let backlog: u64 = first.iter().map(|(a, f)| a.saturating_sub(*f)).sum();
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(backlog)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos:>9}/{len:9} {per_sec:>12} eta {eta}",
        )
        .expect("valid template"),
    );
    bar.set_prefix("drained");
    let cpu0 = args.pid.and_then(|p| cpu_ticks(&p.to_string()));
    let rss_before = args.pid.and_then(rss_kib);
    let mut rss_max = rss_before;
    let start = Instant::now();
    let final_start: u64 = first.iter().map(|(_, f)| f).sum();
    let timeout = Duration::from_secs(args.wait_timeout_s);
    let mut complete = false;
    loop {
        let now = read_all();
        let finals: u64 = now.iter().map(|(_, f)| f).sum();
        bar.set_position(finals.saturating_sub(final_start));
        if let Some(r) = args.pid.and_then(rss_kib) {
            rss_max = rss_max.max(Some(r));
        }
        if now.iter().all(|(a, f)| f >= a) {
            complete = true;
            break;
        }
        if start.elapsed() > timeout {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    bar.finish();
    let wall = start.elapsed();
    let last = read_all();
    let drained = last.iter().map(|(_, f)| f).sum::<u64>() - final_start;
    let cpu_s = match (cpu0, args.pid.and_then(|p| cpu_ticks(&p.to_string()))) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ticks_per_s),
        _ => None,
    };
    let rss_after = args.pid.and_then(rss_kib);
    let v = json!({
        "label": args.label,
        "drain": {
            "backlog_at_start": backlog,
            "drained": drained,
            "complete": complete,
            "wall_s": wall.as_secs_f64(),
            "per_s": drained as f64 / wall.as_secs_f64(),
        },
        "engine": {
            "pid": args.pid,
            "cpu_s": cpu_s,
            "cpu_us_per_msg": cpu_s.filter(|_| drained > 0).map(|s| s * 1e6 / drained as f64),
            "rss_before_kib": rss_before,
            "rss_max_kib": rss_max,
            "rss_after_kib": rss_after,
        },
    });
    println!(
        "drain: {drained} of {backlog} receipts in {:.1} s = {:.0} msg/s{}; engine CPU {} s; RSS {} -> max {} -> {} KiB",
        wall.as_secs_f64(),
        drained as f64 / wall.as_secs_f64(),
        if complete { "" } else { " (TIMED OUT)" },
        cpu_s.map_or("-".into(), |c| format!("{c:.1}")),
        rss_before.map_or("-".into(), |r| r.to_string()),
        rss_max.map_or("-".into(), |r| r.to_string()),
        rss_after.map_or("-".into(), |r| r.to_string()),
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&v).expect("JSON serialises");
        std::fs::write(path, text + "\n").expect("write the JSON file");
    }
    if !complete {
        std::process::exit(3);
    }
}

fn print_report(r: &Value) {
    let f = |v: &Value, digits: usize| match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".to_string(),
    };
    let c = &r["config"];
    let s = &r["send"];
    let l = &s["accept_latency_ms"];
    let d = &r["receipts"];
    let e = &r["engine"];
    println!();
    println!(
        "smppd load: {} tenant(s) x {} messages, concurrency {}",
        c["tenants"], c["messages_per_tenant"], c["concurrency"]
    );
    println!(
        "  {:<34} {} / {}",
        "sent / accepted (202)", s["sent"], s["accepted"]
    );
    println!("  {:<34} {}", "HTTP status counts", s["status_counts"]);
    println!(
        "  {:<34} {:.2} %",
        "success rate",
        s["success_rate"].as_f64().unwrap_or(0.0) * 100.0
    );
    println!("  {:<34} {} s", "send phase", f(&s["wall_s"], 2));
    println!(
        "  {:<34} {} msg/s",
        "accepted rate",
        f(&s["accepted_per_s"], 0)
    );
    println!(
        "  {:<34} p50 {} / p95 {} / p99 {} / max {} ms",
        "accept latency",
        f(&l["p50"], 2),
        f(&l["p95"], 2),
        f(&l["p99"], 2),
        f(&l["max"], 1)
    );
    println!(
        "  {:<34} {} s",
        "time to last receipt",
        f(&d["time_to_last_dlr_s"], 2)
    );
    println!(
        "  {:<34} {} msg/s",
        "end to end (with receipts)",
        f(&d["end_to_end_per_s"], 0)
    );
    println!(
        "  {:<34} {} s = {} µs/msg ({} cores avg)",
        "engine CPU",
        f(&e["cpu_s"], 2),
        f(&e["cpu_us_per_msg"], 1),
        f(&e["cpu_cores_avg"], 2)
    );
    println!(
        "  {:<34} {} -> {} MiB",
        "engine RSS before -> after",
        f(&json!(e["rss_before_kib"].as_f64().map(|k| k / 1024.0)), 1),
        f(&json!(e["rss_after_kib"].as_f64().map(|k| k / 1024.0)), 1)
    );
    println!(
        "  {:<34} client {} s, simulator {} s, machine {} of {} cores busy",
        "other CPU",
        f(&r["client"]["cpu_s"], 2),
        f(&r["simulator"]["cpu_s"], 2),
        f(&r["machine"]["busy_cores_avg"], 2),
        r["machine"]["cores"]
    );
    println!(
        "  {:<34} engine {} / {} s, client {} / {} s",
        "CPU user / system",
        f(&e["cpu_split"]["user_s"], 2),
        f(&e["cpu_split"]["system_s"], 2),
        f(&r["client"]["cpu_split"]["user_s"], 2),
        f(&r["client"]["cpu_split"]["system_s"], 2)
    );
    if let Some(threads) = e["thread_cpu_s"].as_object() {
        let mut v: Vec<(&String, f64)> = threads
            .iter()
            .map(|(k, v)| (k, v.as_f64().unwrap_or(0.0)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = v
            .iter()
            .take(6)
            .map(|(k, s)| format!("{k} {s:.2}"))
            .collect();
        println!("  {:<34} {}", "engine CPU s by thread", top.join(", "));
    }
    println!(
        "  {:<34} {} cores (other processes, kernel)",
        "unexplained machine load",
        f(&r["machine"]["other_busy_cores_avg"], 2)
    );
    println!();
    println!(
        "  {:>6} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7} {:>15}",
        "tenant",
        "accepted",
        "send s",
        "p95 ms",
        "last DLR s",
        "e2e msg/s",
        "share",
        "while all send"
    );
    if let Some(rows) = r["tenants_detail"].as_array() {
        for t in rows {
            println!(
                "  {:>6} {:>9} {:>9} {:>9} {:>12} {:>12} {:>6}% {:>14}%",
                t["tenant"].as_u64().map_or(0, |i| i + 1),
                t["accepted"].to_string(),
                f(&t["send_s"], 2),
                f(&t["accept_latency_ms"]["p95"], 2),
                f(&t["time_to_last_dlr_s"], 2),
                f(&t["end_to_end_per_s"], 0),
                f(&json!(t["share"].as_f64().map(|s| s * 100.0)), 1),
                f(&json!(t["contended_share"].as_f64().map(|s| s * 100.0)), 1)
            );
        }
    }
    println!();
}
