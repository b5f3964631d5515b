//! `Registry`: tenant id → its [`TenantSupervisor`], and the arbiters the
//! actors run on.
//!
//! Not an actor: routing a message to a tenant is a read of a map, and
//! putting a mailbox in front of every message of every tenant would make
//! one thread the bottleneck of the whole process. The HTTP layer and the
//! store's writer thread read the map under a `RwLock`; starting or
//! stopping a tenant takes the write lock briefly.
//!
//! Threads: supervisors and connections are spread over one actix
//! `Arbiter` (one OS thread) per core, so both cores do SMPP work; the
//! store has its own writer thread and actix-web its own workers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use smppd_sqlite::{QueuedMessage, Store};

use crate::coalesce::Coalescer;
use crate::spec::TenantSpec;
use crate::stats::TenantStats;
use crate::tenant::{
    ConnectionInfo, Enqueued, GetConnections, PanicSession, Reconfigure, Shutdown, Stop,
    TenantSupervisor,
};

/// A started tenant.
struct Running {
    supervisor: Addr<TenantSupervisor>,
    stats: Arc<TenantStats>,
    /// Newly committed messages, handed to the supervisor once per writer
    /// transaction.
    enqueued: Coalescer<QueuedMessage>,
}

/// Shared handle; clone freely.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tenants: RwLock<HashMap<String, Running>>,
    arbiters: Vec<Arbiter>,
}

impl Registry {
    /// A registry with `threads` arbiters (at least one). Must be called
    /// inside a running actix `System`.
    pub fn new(store: Store, threads: usize) -> Self {
        let arbiters = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
        Self {
            inner: Arc::new(Inner {
                store,
                tenants: RwLock::new(HashMap::new()),
                arbiters,
            }),
        }
    }

    fn handles(&self) -> Vec<ArbiterHandle> {
        self.inner.arbiters.iter().map(Arbiter::handle).collect()
    }

    /// Starts a tenant's supervisor (which connects its sessions and resumes
    /// its queued messages from the store). Replaces nothing: a tenant id
    /// that is already running is left as it is and `false` returned.
    pub fn start_tenant(&self, spec: TenantSpec) -> bool {
        let mut tenants = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if tenants.contains_key(&spec.id) {
            return false;
        }
        let handles = self.handles();
        let home = handles[tenants.len() % handles.len()].clone();
        let store = self.inner.store.clone();
        let id = spec.id.clone();
        let stats = Arc::new(TenantStats::default());
        let for_supervisor = stats.clone();
        let supervisor = TenantSupervisor::start_in_arbiter(&home, move |_| {
            TenantSupervisor::new(&spec, store, &handles, for_supervisor)
        });
        let to_supervisor = supervisor.clone();
        let enqueued = Coalescer::new(move |messages| to_supervisor.do_send(Enqueued(messages)));
        tenants.insert(
            id,
            Running {
                supervisor,
                stats,
                enqueued,
            },
        );
        true
    }

    /// Stops a tenant's supervisor: its sessions unbind (waiting at most
    /// `timeout`), what it held in memory stays queued in the store, and
    /// the actor ends. Returns false if the tenant was not running.
    /// Messages committed for it afterwards stay in the store until it is
    /// started again.
    pub async fn stop_tenant(&self, tenant: &str, timeout: Duration) -> bool {
        let running = self
            .inner
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
        let Some(running) = running else {
            return false;
        };
        let supervisor = running.supervisor;
        if tokio::time::timeout(timeout, supervisor.send(Shutdown))
            .await
            .is_err()
        {
            log::warn!("[{tenant}] sessions did not unbind within {timeout:?}; closing anyway");
        }
        supervisor.do_send(Stop);
        true
    }

    /// Applies a tenant's new channel list live (see
    /// [`TenantSupervisor`]). Returns false if the tenant is not running.
    pub fn reconfigure(&self, spec: TenantSpec) -> bool {
        match self.get(&spec.id) {
            Some(addr) => {
                addr.do_send(Reconfigure(spec));
                true
            }
            None => false,
        }
    }

    fn get(&self, tenant: &str) -> Option<Addr<TenantSupervisor>> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .map(|t| t.supervisor.clone())
    }

    /// Every running tenant's id and counters, sorted by id.
    pub fn all_stats(&self) -> Vec<(String, Arc<TenantStats>)> {
        let mut all: Vec<_> = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, t)| (id.clone(), t.stats.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The tenant's counters, `None` if it is not running.
    pub fn stats(&self, tenant: &str) -> Option<Arc<TenantStats>> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .map(|t| t.stats.clone())
    }

    /// A message for `tenant` was committed: let its supervisor know. Called
    /// from the store's writer thread in commit order (see
    /// [`TenantSupervisor`] on why the order matters); the supervisor gets
    /// the messages of one transaction together, in that order. A tenant
    /// without a running supervisor picks the message up from the store
    /// when it starts.
    pub fn enqueued(&self, tenant: &str, message: QueuedMessage) {
        let tenants = self.inner.tenants.read().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tenants.get(tenant) {
            TenantStats::bump(&t.stats.accepted);
            t.enqueued.push(message);
        }
    }

    /// The tenant's sessions, `None` if it is not running.
    pub async fn connections(&self, tenant: &str) -> Option<Vec<ConnectionInfo>> {
        self.get(tenant)?.send(GetConnections).await.ok()
    }

    /// Makes one of the tenant's connections panic (supervision tests).
    /// Returns false if the tenant is not running.
    #[doc(hidden)]
    pub fn panic_session(&self, tenant: &str, index: usize) -> bool {
        match self.get(tenant) {
            Some(addr) => {
                addr.do_send(PanicSession { index });
                true
            }
            None => false,
        }
    }

    /// Unbinds every session of every tenant, waiting at most `timeout`.
    /// Returns whether all sessions closed in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        let supervisors: Vec<_> = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|t| t.supervisor.clone())
            .collect();
        let all = futures_util::future::join_all(supervisors.iter().map(|s| s.send(Shutdown)));
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// Stops the arbiter threads (after [`Registry::shutdown`]).
    pub fn stop_threads(&self) {
        for arbiter in &self.inner.arbiters {
            arbiter.stop();
        }
    }
}
