//! A standalone SMPP 3.4 SMSC simulator with fault injection (the one
//! smppd's demo and tests use), for trying smppd — or any ESME — by hand.
//!
//! ```text
//! cargo run --example smsc_simulator -- \
//!     --listen 127.0.0.1:2775 --account acme:secret --account beta:pass2 \
//!     --dlr-delay-ms 500 --throttle-fraction 0.05 --undeliverable-fraction 0.1 \
//!     --stats-every-s 10
//! ```
//!
//! Without `--account` any system_id/password binds. With `--tls-cert` and
//! `--tls-key` it serves SMPP over TLS (and with `--tls-client-ca`, asks
//! for a client certificate). Set `RUST_LOG=debug` to see every PDU
//! decision. Runs until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use smppd_actors::simulator::{
    Account, Faults, MessageIdFormat, ReceiptIdFormat, Simulator, SimulatorConfig,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IdFormat {
    /// Lowercase hexadecimal.
    Hex,
    /// Decimal digits.
    Decimal,
    /// Random UUIDs, in no order.
    Uuid,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReceiptIds {
    /// As submit_sm_resp gave them.
    AsIssued,
    /// The same number in decimal, zero-padded to 20 digits.
    Decimal,
    /// The same number in upper-case hexadecimal, zero-padded to 16 digits.
    Hex,
}

/// SMPP 3.4 SMSC simulator.
#[derive(Debug, Parser)]
#[command(version, about = "SMPP 3.4 SMSC simulator with fault injection")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2775")]
    listen: SocketAddr,
    /// An account as `system_id:password` (repeatable). None: accept any.
    #[arg(long = "account", value_parser = parse_account)]
    accounts: Vec<Account>,
    /// Milliseconds between a submit_sm_resp and its delivery receipt.
    #[arg(long, default_value_t = 100)]
    dlr_delay_ms: u64,
    /// Message id style.
    #[arg(long, value_enum, default_value_t = IdFormat::Hex)]
    message_id_format: IdFormat,
    /// How receipts quote the message id: as issued, or the same number in
    /// the other base (as SMSCs that answer in hex and report in decimal
    /// do; needs hex or decimal ids).
    #[arg(long, value_enum, default_value_t = ReceiptIds::AsIssued)]
    receipt_id_format: ReceiptIds,
    /// Send delivery receipts as data_sm instead of deliver_sm.
    #[arg(long)]
    receipts_as_data_sm: bool,
    /// Fraction of submit_sm answered ESME_RTHROTTLED (0x58).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    throttle_fraction: f64,
    /// Fraction of submit_sm answered ESME_RSYSERR (0x08).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    temporary_error_fraction: f64,
    /// Fraction of submit_sm answered ESME_RINVDSTADR (0x0B).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    permanent_error_fraction: f64,
    /// Fraction of accepted messages whose receipt says UNDELIV.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    undeliverable_fraction: f64,
    /// Fraction of accepted messages whose receipt is never sent.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    lost_receipt_fraction: f64,
    /// Close the connection instead of answering every Nth submit_sm.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    drop_every_n_submits: Option<u64>,
    /// Delay every submit_sm_resp by this many milliseconds.
    #[arg(long)]
    stall_ms: Option<u64>,
    /// Never answer enquire_link.
    #[arg(long)]
    ignore_enquire_link: bool,
    /// Answer every bind with ESME_RBINDFAIL.
    #[arg(long)]
    refuse_binds: bool,
    /// Send a deliver_sm with an undecodable body before every Nth PDU.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    malformed_every_n: Option<u64>,
    /// Send receipts before the submit_sm_resp.
    #[arg(long)]
    dlr_before_resp: bool,
    /// Serve SMPP over TLS with this certificate chain (PEM); needs
    /// --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate signed by one of these CAs (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Print counters every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    stats_every_s: u64,
}

fn parse_account(value: &str) -> Result<Account, String> {
    let (system_id, password) = value
        .split_once(':')
        .ok_or_else(|| format!("expected system_id:password, got {value:?}"))?;
    if system_id.is_empty() || system_id.len() > 15 {
        return Err("system_id must be 1 to 15 characters".into());
    }
    if password.len() > 8 {
        return Err("password must be at most 8 characters".into());
    }
    Ok(Account {
        system_id: system_id.into(),
        password: password.into(),
    })
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    let f: f64 = value.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err("must be between 0 and 1".into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let faults = Faults {
        throttle_fraction: args.throttle_fraction,
        temporary_error_fraction: args.temporary_error_fraction,
        permanent_error_fraction: args.permanent_error_fraction,
        undeliverable_fraction: args.undeliverable_fraction,
        lost_receipt_fraction: args.lost_receipt_fraction,
        drop_every_n_submits: args.drop_every_n_submits,
        stall_responses: args.stall_ms.map(Duration::from_millis),
        ignore_enquire_link: args.ignore_enquire_link,
        refuse_binds: args.refuse_binds,
        malformed_every_n: args.malformed_every_n,
        dlr_before_resp: args.dlr_before_resp,
    };
    let accounts = args.accounts.len();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            smppd_actors::simulator::tls::server_config(cert, key, args.tls_client_ca.as_deref())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        ),
        _ => None,
    };
    let over = if tls.is_some() { "TLS" } else { "TCP" };
    let sim = Simulator::start(SimulatorConfig {
        listen: args.listen,
        accounts: args.accounts,
        dlr_delay: Duration::from_millis(args.dlr_delay_ms),
        message_id_format: match args.message_id_format {
            IdFormat::Hex => MessageIdFormat::Hex,
            IdFormat::Decimal => MessageIdFormat::Decimal,
            IdFormat::Uuid => MessageIdFormat::Uuid,
        },
        receipt_id_format: match args.receipt_id_format {
            ReceiptIds::AsIssued => ReceiptIdFormat::AsIssued,
            ReceiptIds::Decimal => ReceiptIdFormat::Decimal,
            ReceiptIds::Hex => ReceiptIdFormat::Hex,
        },
        receipts_as_data_sm: args.receipts_as_data_sm,
        faults: faults.clone(),
        tls,
    })?;
    println!(
        "SMSC simulator listening on {} over {over} ({}), faults: {faults:?}. Ctrl-C to stop.",
        sim.local_addr(),
        if accounts == 0 {
            "any system_id/password".to_string()
        } else {
            format!("{accounts} account(s)")
        }
    );

    let period = Duration::from_secs(args.stats_every_s.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                if let Err(err) = signal {
                    eprintln!("cannot listen for Ctrl-C: {err}");
                }
                break;
            }
            _ = ticker.tick(), if args.stats_every_s > 0 => {
                let s = sim.stats();
                println!(
                    "submits {} received / {} accepted; receipts {} sent / {} acked / {} lost; \
                     MO {}; connections {} open / {} bound / {} total; queued deliver_sm {}",
                    s.submits_received,
                    s.submits_accepted,
                    s.receipts_sent,
                    s.receipts_acknowledged,
                    s.receipts_lost,
                    s.mo_sent,
                    s.open_connections,
                    s.bound_sessions,
                    s.connections,
                    s.queued_deliveries
                );
            }
        }
    }
    println!("shutting down");
    sim.shutdown();
    Ok(())
}
