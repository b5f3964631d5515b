//! smppd: a multi-tenant SMPP gateway appliance.
//!
//! Tenants send SMS over HTTP; each message is committed to SQLite before
//! the HTTP 202, submitted over the tenant's own SMPP sessions, matched to
//! its delivery receipt, and its status is readable over HTTP.
//!
//! Layout of this crate (the binary's own layer):
//! - [`config`] — the TOML file, validated into typed specs.
//! - [`tenants`] — the tenants served, changed live by the operator API.
//! - [`fair`] — weighted fair shares between tenants under saturation.
//! - [`http`] — the actix-web API.
//! - [`Engine`] — wires store, actors and HTTP together; `start` takes its
//!   listener from the caller so tests bind port 0.
//!
//! The other layers are their own crates: `smppd-sqlite` (the store, no
//! actix) and `smppd-actors` (supervision tree, connections, SMPP logic and
//! the bundled simulator). See `docs/architecture.md`.

pub mod config;
pub mod fair;
pub mod http;
pub mod tenants;
pub mod webhooks;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use smppd_actors::Registry;
use smppd_sqlite::{Done, ErrorInfo, MessageStatus, Store, StoreError};

use crate::config::Config;

/// How long an Idempotency-Key is remembered.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long shutdown waits for sessions to unbind.
const UNBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The HTTP listener could not be used.
    #[error("http: {0}")]
    Http(#[from] std::io::Error),
    /// A worker thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// A running smppd: store, tenant supervisors and HTTP server.
pub struct Engine {
    store: Store,
    registry: Registry,
    server: actix_web::dev::ServerHandle,
    housekeeping: actix_rt::task::JoinHandle<()>,
    /// Tells open event streams to end.
    closing: tokio::sync::watch::Sender<bool>,
    /// Posts webhooks from the outbox.
    dispatcher: webhooks::Dispatcher,
    addr: SocketAddr,
}

/// Hourly: forgets idempotency keys older than [`IDEMPOTENCY_RETENTION`].
async fn purge_idempotency_keys(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = smppd_actors::smpp::time::unix_ms() - millis(IDEMPOTENCY_RETENTION);
        store.purge_idempotency_keys(
            cutoff,
            Box::new(|res| match res {
                Ok(0) => {}
                Ok(n) => log::info!("forgot {n} idempotency keys older than a day"),
                Err(e) => log::warn!("purging idempotency keys failed: {e}"),
            }),
        );
    }
}

/// Rows deleted per kind and store transaction while pruning: small
/// enough that a batch (a few milliseconds of the writer) never holds up
/// the messages committed with it for long.
const PRUNE_BATCH: usize = 500;

/// Every ten minutes: deletes what is older than `retention`
/// ([`Store::prune`]), a batch at a time with a pause between batches, so
/// a large first clean-up shares the writer with live traffic.
async fn prune_old_rows(store: Store, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let before = smppd_actors::smpp::time::unix_ms() - millis(retention);
        let mut total = smppd_sqlite::Pruned::default();
        let open = in_batches(
            "pruning rows past the retention",
            |done| store.prune(before, PRUNE_BATCH, done),
            |pruned| {
                total.add(&pruned);
                pruned.reached(PRUNE_BATCH)
            },
        )
        .await;
        if !open {
            return;
        }
        if total != smppd_sqlite::Pruned::default() {
            log::info!(
                "retention: deleted {} messages, {} inbound messages, {} webhook deliveries \
                 and {} parked receipts older than {} days",
                total.messages,
                total.inbound,
                total.webhooks,
                total.receipts,
                retention.as_secs() / 86_400
            );
        }
    }
}

/// A duration in milliseconds, as the store's unix-ms times count.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Repeats a store write while `more` says its batch was full, pausing
/// between batches so that a large clean-up shares the writer with live
/// traffic. False once the store is closing.
async fn in_batches<T: Send + 'static>(
    what: &str,
    write: impl Fn(Done<T>),
    mut more: impl FnMut(T) -> bool,
) -> bool {
    loop {
        match tenants::write(&write).await {
            Ok(result) => {
                if !more(result) {
                    return true;
                }
            }
            Err(smppd_sqlite::StoreError::WriterGone) => return false,
            Err(e) => {
                log::warn!("{what} failed: {e}");
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `task` with `setting` if it is set, else waits for ever: an
/// optional housekeeping task, joined with the others either way.
async fn if_set<T, F: std::future::Future<Output = ()>>(
    setting: Option<T>,
    task: impl FnOnce(T) -> F,
) {
    match setting {
        Some(setting) => task(setting).await,
        None => std::future::pending().await,
    }
}

/// Messages made `unknown` per store transaction when their receipt is
/// overdue (see [`PRUNE_BATCH`] for why a batch is small).
const RECEIPT_TIMEOUT_BATCH: usize = 500;

/// Every `timeout / 10` (1 s to 1 min): messages submitted longer than
/// `timeout` ago and still waiting for their receipt become `unknown`
/// ([`Store::time_out_receipts`]); each is counted and published to its
/// tenant's event stream like any final status (its webhook comes from
/// the store).
async fn time_out_receipts(store: Store, registry: Registry, timeout: Duration) {
    let mut tick = tokio::time::interval(
        (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)),
    );
    loop {
        tick.tick().await;
        let before = smppd_actors::smpp::time::unix_ms() - millis(timeout);
        let mut total = 0;
        let open = in_batches(
            "timing out overdue receipts",
            |done| store.time_out_receipts(before, RECEIPT_TIMEOUT_BATCH, done),
            |timed_out| {
                total += timed_out.len();
                for message in &timed_out {
                    if let Some(stats) = registry.stats(&message.tenant) {
                        stats.finished(MessageStatus::Unknown);
                        smppd_actors::stats::TenantStats::bump(&stats.receipts_timed_out);
                        stats.events.status(
                            message.id,
                            MessageStatus::Unknown,
                            Some(ErrorInfo::receipt_timeout()),
                        );
                    }
                }
                timed_out.len() >= RECEIPT_TIMEOUT_BATCH
            },
        )
        .await;
        if !open {
            return;
        }
        if total > 0 {
            log::warn!(
                "{total} messages got no delivery receipt within {} s of their submit: \
                 now unknown (RECEIPT_TIMEOUT)",
                timeout.as_secs()
            );
        }
    }
}

/// Every so often: delivers the parts of concatenated MO messages whose
/// missing parts did not come within `timeout` as separate inbound
/// messages (webhooks follow from the store; live events are sent here).
async fn flush_stale_mo_parts(store: Store, registry: Registry, timeout: Duration) {
    let mut tick =
        tokio::time::interval((timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(60)));
    loop {
        tick.tick().await;
        let quiet_since = smppd_actors::smpp::time::unix_ms() - millis(timeout);
        let registry = registry.clone();
        store.flush_stale_inbound_parts(
            quiet_since,
            Box::new(move |res| match res {
                Ok(flushed) => {
                    for (tenant, mo) in flushed {
                        log::warn!(
                            "[{tenant}] MO {} from {}: missing parts never came; part delivered alone",
                            mo.id,
                            mo.source
                        );
                        if let Some(stats) = registry.stats(&tenant) {
                            stats.events.publish(smppd_actors::events::Event::Inbound {
                                id: mo.id,
                                channel: mo.channel,
                                source: mo.source,
                                destination: mo.destination,
                                text: mo.text,
                                at_ms: mo.received_at_ms,
                            });
                        }
                    }
                }
                Err(e) => log::warn!("delivering incomplete MO messages failed: {e}"),
            }),
        );
    }
}

/// `engine.threads` when the config does not say: half the cores, at least
/// one. The HTTP workers (one per core) and the store's writer thread take
/// the rest: on 2 cores, one SMPP thread instead of two cut the engine's
/// CPU per message by 10 % with 10 tenants (fewer cross-thread wake-ups
/// between supervisors and connections) at the same 1-tenant throughput
/// (BENCHMARKS.md).
fn default_engine_threads() -> usize {
    (std::thread::available_parallelism().map_or(2, usize::from) / 2).max(1)
}

impl Engine {
    /// Starts everything on `listener`. Must run inside an actix `System`.
    pub async fn start(config: &Config, listener: TcpListener) -> Result<Engine, StartError> {
        let addr = listener.local_addr()?;
        let store = Store::open(&config.database.path, config.store_options())?;
        let threads = config.engine.threads.unwrap_or_else(default_engine_threads);
        let registry = Registry::new(store.clone(), threads);
        let tenants = tenants::reconcile(config, &store)?;
        let live_keys = store.api_keys(smppd_actors::smpp::time::unix_ms())?;
        let paces = fair::Paces::default();
        let keys = web::Data::new(http::auth::Keys::new(
            tenants
                .iter()
                .map(|t| http::auth::TenantInfo::new(&t.config, t.suspended, &paces)),
            live_keys,
        ));
        let policies = webhooks::Policies::new(
            tenants
                .iter()
                .filter_map(|t| Some((t.config.id.clone(), t.config.webhook_policy()?)))
                .collect(),
        );
        for tenant in tenants.iter().filter(|t| !t.suspended) {
            registry.start_tenant(tenant.config.spec());
        }
        let dispatcher = webhooks::Dispatcher::start(store.clone(), policies.clone())
            .map_err(|e| StartError::Thread("webhook", e))?;
        let directory = web::Data::new(tenants::Directory::new(
            tenants,
            store.clone(),
            registry.clone(),
            keys.clone(),
            policies,
            paces.clone(),
            config.http.admin_token.clone(),
        ));
        let admin = web::Data::new(http::ops::AdminToken(config.http.admin_token.clone()));
        let app_paces = web::Data::new(paces.clone());
        let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
        let closing = web::Data::new(http::events::Closing(closing_rx));
        let (app_store, app_registry) = (
            web::Data::new(store.clone()),
            web::Data::new(registry.clone()),
        );
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_store.clone())
                .app_data(app_registry.clone())
                .app_data(keys.clone())
                .app_data(directory.clone())
                .app_data(app_paces.clone())
                .app_data(admin.clone())
                .app_data(closing.clone())
                .configure(http::routes)
        })
        .disable_signals()
        .shutdown_timeout(10);
        if let Some(workers) = config.http.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        let mo_timeout = Duration::from_secs(config.engine.mo_parts_timeout_s.unwrap_or(600));
        let (housekeeping_store, housekeeping_registry) = (store.clone(), registry.clone());
        let fair_share = config.engine.fair_share;
        let retention = config
            .database
            .retention_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400));
        let receipt_timeout = config.engine.receipt_timeout_s.map(Duration::from_secs);
        let housekeeping = actix_rt::spawn(async move {
            let prune_store = housekeeping_store.clone();
            let prune = if_set(retention, move |retention| {
                prune_old_rows(prune_store, retention)
            });
            let (store, registry) = (housekeeping_store.clone(), housekeeping_registry.clone());
            let receipts = if_set(receipt_timeout, move |timeout| {
                time_out_receipts(store, registry, timeout)
            });
            tokio::join!(
                prune,
                receipts,
                purge_idempotency_keys(housekeeping_store.clone()),
                flush_stale_mo_parts(
                    housekeeping_store.clone(),
                    housekeeping_registry,
                    mo_timeout
                ),
                fair::governor(fair_share, paces, housekeeping_store),
            );
        });
        log::info!("HTTP API listening on http://{addr}");
        Ok(Engine {
            store,
            registry,
            server: handle,
            housekeeping,
            closing: closing_tx,
            dispatcher,
            addr,
        })
    }

    /// Where the HTTP API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The tenant registry (for tests and embedding).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Graceful stop: stop accepting HTTP and finish in-flight requests,
    /// unbind every SMPP session (bounded wait), commit what the store still
    /// holds, and stop the actor threads.
    pub async fn shutdown(self) {
        log::info!("shutting down: HTTP first");
        let _ = self.closing.send(true);
        self.server.stop(true).await;
        self.housekeeping.abort();
        log::info!("unbinding SMPP sessions");
        if !self.registry.shutdown(UNBIND_TIMEOUT).await {
            log::warn!("some sessions did not unbind within {UNBIND_TIMEOUT:?}");
        }
        let dispatcher = self.dispatcher;
        let _ = web::block(move || dispatcher.stop()).await;
        let store = self.store.clone();
        let flushed = web::block(move || {
            let result = store.flush();
            store.close();
            result
        })
        .await;
        match flushed {
            Ok(Ok(())) => log::info!("store flushed and closed"),
            Ok(Err(e)) => log::error!("store flush failed: {e}"),
            Err(e) => log::error!("store flush task failed: {e}"),
        }
        self.registry.stop_threads();
    }
}
