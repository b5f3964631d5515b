//! Raw SMPP ceiling: how fast a minimal ESME can push `submit_sm` through
//! the bundled SMSC simulator (or any SMSC at `--addr`) and take the
//! receipts back, with no HTTP, no SQLite and no actors in the way. This is
//! the number smppd's end-to-end rate is to be compared against on the same
//! machine.
//!
//! ```text
//! cargo run --release --example bench_smpp -- --sessions 2 --window 100 --duration-s 10
//! cargo run --release --example bench_smpp -- --addr 127.0.0.1:2775 --system-id acme --password secret1
//! ```
//!
//! Without `--addr` the simulator runs in this process (on its own thread,
//! receipts with no delay), so this process's CPU is client + simulator.
//! Each of `--sessions` transceiver binds keeps `--window` submits
//! outstanding until `--duration-s` seconds or `--messages` submits, answers
//! every deliver_sm with deliver_sm_resp, then waits for the remaining
//! responses and receipts and unbinds.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use rusmpp::{Command, CommandStatus, Pdu};
use serde_json::json;
use smppd_actors::simulator::{
    Faults, MessageIdFormat, ReceiptIdFormat, Simulator, SimulatorConfig,
};
use smppd_actors::smpp::codec::{Frame, SmppCodec};
use smppd_actors::smpp::pdu::{self, BindParams};
use smppd_actors::smpp::session::BindMode;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

/// Raw SMPP submit/receipt ceiling.
#[derive(Debug, Parser)]
#[command(about = "Raw SMPP ceiling: submit_sm round trips/s and receipts/s")]
struct Args {
    /// SMSC to use. Default: start the simulator in-process (receipts with no delay).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// system_id to bind with.
    #[arg(long, default_value = "bench")]
    system_id: String,
    /// Password to bind with.
    #[arg(long, default_value = "bench")]
    password: String,
    /// Transceiver sessions.
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// submit_sm outstanding per session.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Stop submitting after this many seconds.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Stop submitting after this many submits in total (default: no limit).
    #[arg(long)]
    messages: Option<u64>,
    /// PID of the SMSC process (with `--addr`), to report its CPU per message.
    #[arg(long)]
    sim_pid: Option<u32>,
    /// Do not ask for receipts.
    #[arg(long)]
    no_receipts: bool,
    /// Message text.
    #[arg(long, default_value = "Benchmark message 01")]
    text: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Debug, Default, Clone)]
struct SessionResult {
    submitted: u64,
    resp_ok: u64,
    resp_err: u64,
    receipts: u64,
    rtt_us: Vec<u32>,
    last_resp: Duration,
    last_receipt: Duration,
}

type Reader = FramedRead<tokio::net::tcp::OwnedReadHalf, SmppCodec>;
type Writer = FramedWrite<tokio::net::tcp::OwnedWriteHalf, SmppCodec>;

async fn bind(addr: SocketAddr, args: &Args) -> Result<(Reader, Writer), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (r, w) = stream.into_split();
    let mut reader = FramedRead::new(r, SmppCodec::default());
    let mut writer = FramedWrite::new(w, SmppCodec::default());
    let bind = pdu::bind(&BindParams {
        system_id: args.system_id.clone(),
        password: args.password.clone(),
        system_type: String::new(),
        mode: BindMode::Transceiver,
        address: Default::default(),
    })
    .map_err(|e| e.to_string())?;
    writer
        .send(Command::new(CommandStatus::EsmeRok, 1, bind))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match reader.next().await {
            Some(Ok(Frame::Command(c)))
                if matches!(c.pdu(), Some(Pdu::BindTransceiverResp(_)))
                    || u32::from(c.id()) == 0x8000_0009 =>
            {
                let status = u32::from(c.status());
                return if status == 0 {
                    Ok((reader, writer))
                } else {
                    Err(format!("bind refused: 0x{status:08x}"))
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed during bind".into()),
        }
    }
}

/// Counters shared by the sessions (all on one thread).
struct Global {
    accepted: Cell<u64>,
    receipts: Cell<u64>,
    in_flight: Vec<Cell<usize>>,
}

#[allow(clippy::too_many_arguments)]
async fn session(
    index: usize,
    global: Rc<Global>,
    mut reader: Reader,
    mut writer: Writer,
    window: usize,
    quota: u64,
    stop_at: Instant,
    start: Instant,
    submit: rusmpp::pdus::SubmitSm,
    want_receipts: bool,
) -> Result<SessionResult, String> {
    let mut res = SessionResult::default();
    let mut in_flight: HashMap<u32, Instant> = HashMap::with_capacity(window * 2);
    let mut seq: u32 = 1;
    let drain_deadline = stop_at + Duration::from_secs(30);
    loop {
        let submitting = Instant::now() < stop_at && res.submitted < quota;
        // Refill the window.
        let mut wrote = false;
        while submitting && in_flight.len() < window && res.submitted < quota {
            seq = seq.wrapping_add(1).max(2);
            in_flight.insert(seq, Instant::now());
            writer
                .feed(Command::new(CommandStatus::EsmeRok, seq, submit.clone()))
                .await
                .map_err(|e| e.to_string())?;
            res.submitted += 1;
            wrote = true;
        }
        if wrote {
            SinkExt::<Command>::flush(&mut writer)
                .await
                .map_err(|e| e.to_string())?;
        }
        // The SMSC may send a receipt on any session of the account, so
        // receipts are counted over all sessions: a session is done when it
        // has nothing in flight and every accepted submit has its receipt.
        global.in_flight[index].set(in_flight.len());
        let done = !submitting
            && global.in_flight.iter().all(|n| n.get() == 0)
            && (!want_receipts || global.receipts.get() >= global.accepted.get());
        if done || Instant::now() > drain_deadline {
            break;
        }
        // Read one frame (waiting), then whatever else is already buffered.
        let first = tokio::select! {
            f = reader.next() => f,
            _ = tokio::time::sleep_until(stop_at.max(Instant::now()).into()), if submitting => continue,
            // Idle while draining: look at the other sessions' progress again.
            _ = tokio::time::sleep(Duration::from_millis(20)), if !submitting => continue,
            _ = tokio::time::sleep_until(drain_deadline.into()) => break,
        };
        let mut next = Some(first);
        let mut answered = false;
        while let Some(frame) = next.take() {
            match frame {
                Some(Ok(Frame::Command(c))) => {
                    let s = c.sequence_number();
                    match c.pdu() {
                        Some(Pdu::SubmitSmResp(_)) => {
                            if let Some(t0) = in_flight.remove(&s) {
                                res.rtt_us.push(t0.elapsed().as_micros() as u32);
                            }
                            if u32::from(c.status()) == 0 {
                                res.resp_ok += 1;
                                global.accepted.set(global.accepted.get() + 1);
                            } else {
                                res.resp_err += 1;
                            }
                            res.last_resp = start.elapsed();
                        }
                        Some(Pdu::DeliverSm(_)) => {
                            res.receipts += 1;
                            global.receipts.set(global.receipts.get() + 1);
                            res.last_receipt = start.elapsed();
                            writer
                                .feed(Command::new(
                                    CommandStatus::EsmeRok,
                                    s,
                                    rusmpp::pdus::DeliverSmResp::default(),
                                ))
                                .await
                                .map_err(|e| e.to_string())?;
                            answered = true;
                        }
                        Some(Pdu::EnquireLink) => {
                            writer
                                .feed(Command::new(
                                    CommandStatus::EsmeRok,
                                    s,
                                    Pdu::EnquireLinkResp,
                                ))
                                .await
                                .map_err(|e| e.to_string())?;
                            answered = true;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Frame::Malformed(m))) => {
                    return Err(format!("malformed PDU from the SMSC: {}", m.reason))
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the SMSC closed the connection".into()),
            }
            next = reader.next().now_or_never();
        }
        if answered {
            SinkExt::<Command>::flush(&mut writer)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    // Unbind politely (do not wait long for the answer).
    let _ = writer
        .send(Command::new(
            CommandStatus::EsmeRok,
            seq.wrapping_add(1).max(2),
            Pdu::Unbind,
        ))
        .await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(Ok(Frame::Command(c))) = reader.next().await {
            if matches!(c.pdu(), Some(Pdu::UnbindResp)) {
                break;
            }
        }
    })
    .await;
    Ok(res)
}

fn cpu_s_self() -> f64 {
    cpu_s("self")
}

/// utime + stime of a process in seconds (0 if unreadable).
fn cpu_s(pid: &str) -> f64 {
    let tick = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After the state field (not a number) utime/stime are the 11th/12th numbers.
    (f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)) as f64 / tick
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let args = Args::parse();
    let (addr, sim) = match args.addr {
        Some(addr) => (addr, None),
        None => {
            let sim = Simulator::start(SimulatorConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                accounts: Vec::new(),
                dlr_delay: Duration::ZERO,
                message_id_format: MessageIdFormat::Hex,
                receipt_id_format: ReceiptIdFormat::AsIssued,
                receipts_as_data_sm: false,
                tls: None,
                faults: Faults::default(),
            })
            .expect("start the simulator");
            (sim.local_addr(), Some(sim))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let submit = pdu::submit_sm(
        "ACME",
        "4915112345678",
        &args.text,
        if args.no_receipts { 0 } else { 1 },
        None,
    )
    .expect("a valid submit_sm");
    let cpu0 = cpu_s_self();
    let sim_cpu0 = args.sim_pid.map(|p| cpu_s(&p.to_string()));
    let (results, start) = runtime.block_on(async {
        let mut binds = Vec::new();
        for _ in 0..args.sessions {
            binds.push(bind(addr, &args).await.expect("bind"));
        }
        let start = Instant::now();
        let stop_at = start + Duration::from_secs(args.duration_s);
        let total = args.messages.unwrap_or(u64::MAX);
        let per = total / args.sessions as u64;
        let local = tokio::task::LocalSet::new();
        let global = Rc::new(Global {
            accepted: Cell::new(0),
            receipts: Cell::new(0),
            in_flight: (0..args.sessions).map(|_| Cell::new(usize::MAX)).collect(),
        });
        let handles: Vec<_> = binds
            .into_iter()
            .enumerate()
            .map(|(i, (r, w))| {
                let quota = if total == u64::MAX {
                    u64::MAX
                } else {
                    per + u64::from((i as u64) < total % args.sessions as u64)
                };
                local.spawn_local(session(
                    i,
                    global.clone(),
                    r,
                    w,
                    args.window,
                    quota,
                    stop_at,
                    start,
                    submit.clone(),
                    !args.no_receipts,
                ))
            })
            .collect();
        let results = local
            .run_until(async {
                let mut out = Vec::new();
                for h in handles {
                    out.push(h.await.expect("session task").expect("session"));
                }
                out
            })
            .await;
        (results, start)
    });
    let sim_cpu_s = args
        .sim_pid
        .zip(sim_cpu0)
        .map(|(p, c0)| cpu_s(&p.to_string()) - c0);
    let cpu_s = cpu_s_self() - cpu0;
    let wall = start.elapsed();
    drop(sim);

    let submitted: u64 = results.iter().map(|r| r.submitted).sum();
    let ok: u64 = results.iter().map(|r| r.resp_ok).sum();
    let err: u64 = results.iter().map(|r| r.resp_err).sum();
    let receipts: u64 = results.iter().map(|r| r.receipts).sum();
    let last_resp = results
        .iter()
        .map(|r| r.last_resp)
        .max()
        .unwrap_or_default();
    let last_receipt = results
        .iter()
        .map(|r| r.last_receipt)
        .max()
        .unwrap_or_default();
    let mut rtt: Vec<u32> = results
        .iter()
        .flat_map(|r| r.rtt_us.iter().copied())
        .collect();
    rtt.sort_unstable();
    let resp_per_s = (ok + err) as f64 / last_resp.as_secs_f64().max(1e-9);
    let receipts_per_s = receipts as f64 / last_receipt.as_secs_f64().max(1e-9);
    let cpu_us_per_msg = if submitted == 0 {
        0.0
    } else {
        cpu_s * 1e6 / submitted as f64
    };
    println!(
        "raw SMPP: {} session(s) x window {} to {} ({})",
        args.sessions,
        args.window,
        addr,
        if args.addr.is_some() {
            "external SMSC"
        } else {
            "in-process simulator, dlr delay 0"
        }
    );
    println!("  submitted {submitted}, submit_sm_resp {ok} ok / {err} error, receipts {receipts}");
    println!(
        "  round trips {resp_per_s:.0}/s (last resp at {:.2} s), receipts {receipts_per_s:.0}/s (last at {:.2} s)",
        last_resp.as_secs_f64(),
        last_receipt.as_secs_f64()
    );
    println!(
        "  submit->resp RTT p50 {:.2} ms p99 {:.2} ms; process CPU {cpu_s:.2} s = {cpu_us_per_msg:.1} µs/msg{}",
        percentile_ms(&rtt, 50.0),
        percentile_ms(&rtt, 99.0),
        if args.addr.is_some() { " (client only)" } else { " (client + simulator)" }
    );
    if let Some(c) = sim_cpu_s {
        println!(
            "  SMSC process CPU {c:.2} s = {:.1} µs/msg",
            c * 1e6 / submitted.max(1) as f64
        );
    }
    if let Some(path) = &args.json {
        let v = json!({
            "smpp": {
                "addr": addr.to_string(),
                "in_process_simulator": args.addr.is_none(),
                "sessions": args.sessions,
                "window": args.window,
                "submitted": submitted,
                "resp_ok": ok,
                "resp_err": err,
                "receipts": receipts,
                "round_trips_per_s": resp_per_s,
                "receipts_per_s": receipts_per_s,
                "last_resp_s": last_resp.as_secs_f64(),
                "last_receipt_s": last_receipt.as_secs_f64(),
                "rtt_ms": { "p50": percentile_ms(&rtt, 50.0), "p99": percentile_ms(&rtt, 99.0) },
                "process_cpu_s": cpu_s,
                "smsc_cpu_s": sim_cpu_s,
                "smsc_cpu_us_per_msg": sim_cpu_s.filter(|_| submitted > 0).map(|c| c * 1e6 / submitted as f64),
                "cpu_us_per_msg": cpu_us_per_msg,
                "wall_s": wall.as_secs_f64(),
            }
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&v).expect("serialise") + "\n",
        )
        .expect("write the JSON file");
    }
}
