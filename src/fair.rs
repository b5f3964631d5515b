//! Weighted fair shares between tenants when the engine is saturated.
//!
//! Tenants share this process's CPU and its store writer. While there is
//! capacity to spare nobody waits: every accepted message goes straight to
//! the store. When the engine is *saturated* — the machine's CPUs are
//! busy, the store's single writer is busy most of the time, or it has a
//! backlog — the [`governor`] paces the tenants that are sending, so that
//! each gets its configured `weight`'s share of what the engine manages:
//! every tick it measures the total accept rate and gives each sending
//! tenant a rate of `capacity × weight / Σ weights of the sending tenants`
//! (plus a little headroom, so a share that another tenant leaves unused
//! is taken up within a few ticks). `capacity` is the highest total
//! measured lately, decaying slowly ([`Capacity`]): the last tick alone
//! would shrink every share whenever a paced tenant could not use all of
//! its own, and the next tick's total with it, spiralling down. A paced
//! tenant sending far under its rate by its own choice counts only for
//! what it sends ([`allocate`]). A paced request is not refused: it waits, without
//! holding a thread, until its tenant's rate lets it in ([`Pace::admit`]).
//! Pacing the tenant above its share frees the CPU and the writer the
//! others need, so a closed-loop client of each tenant sees throughput in
//! proportion to the weights.
//!
//! Not an actor: [`Pace`] is a per-tenant token bucket behind a mutex,
//! shared by the HTTP workers; the governor is a task on the main
//! system's runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use smppd_sqlite::Store;

/// How often the governor measures and sets rates.
pub const TICK: Duration = Duration::from_millis(100);
/// A paced tenant may go this much over its exact share, so that capacity
/// another tenant leaves unused is taken up within a few ticks.
const HEADROOM: f64 = 1.05;
/// No tenant is paced below this many messages per second.
const MIN_RATE: f64 = 5.0;
/// The CPUs count as saturated above this busy fraction…
const BUSY_ENTER: f64 = 0.90;
/// …and stop counting as saturated below this one (hysteresis).
const BUSY_LEAVE: f64 = 0.75;
/// The store's single writer counts as saturated above this utilisation
/// (time running batches per second of wall time)…
const WRITER_ENTER: f64 = 0.85;
/// …and stops counting as saturated below this one.
const WRITER_LEAVE: f64 = 0.70;
/// Store writes waiting above this count also mean saturation.
const STORE_BACKLOG: u64 = 5_000;
/// Per tick, the remembered capacity shrinks by this factor when the
/// measured rate is lower (about −26 % per second).
const CAPACITY_DECAY: f64 = 0.97;
/// Longest single wait of a paced request.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// `engine.fair_share`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Pace by weight only while the engine is saturated (the default).
    #[default]
    Auto,
    /// Pace by weight whenever two or more tenants send at once, spare
    /// capacity or not (strict shares).
    Always,
    /// Never pace.
    Off,
}

/// One tenant's pacing state.
#[derive(Debug)]
pub struct Pace {
    /// Its weight, as `f64` bits.
    weight: AtomicU64,
    /// Messages admitted since start (the governor reads the deltas).
    admitted: AtomicU64,
    /// Whether `limit` is set: lets an unpaced request (the usual case)
    /// pass without taking the lock.
    paced: AtomicBool,
    /// Whether a request had to wait for the pace since the governor last
    /// looked: the tenant wants more than its rate.
    held: AtomicBool,
    /// `(rate per second, tokens, last refill)` while paced.
    limit: Mutex<Option<(f64, f64, Instant)>>,
}

impl Pace {
    fn new(weight: f64) -> Self {
        Self {
            weight: AtomicU64::new(weight.to_bits()),
            admitted: AtomicU64::new(0),
            paced: AtomicBool::new(false),
            held: AtomicBool::new(false),
            limit: Mutex::new(None),
        }
    }

    /// The tenant's weight.
    pub fn weight(&self) -> f64 {
        f64::from_bits(self.weight.load(Ordering::Relaxed))
    }

    /// The rate it is paced at, if it is.
    pub fn rate(&self) -> Option<f64> {
        self.limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(rate, _, _)| rate)
    }

    /// How long `n` messages must wait before they may go to the store,
    /// reserving their place (tokens may go negative, so concurrent
    /// requests queue up behind each other in arrival order).
    fn reserve(&self, n: u64, now: Instant) -> Duration {
        self.admitted.fetch_add(n, Ordering::Relaxed);
        if !self.paced.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let mut limit = self.limit.lock().unwrap_or_else(|e| e.into_inner());
        let Some((rate, tokens, last)) = limit.as_mut() else {
            return Duration::ZERO;
        };
        let burst = (*rate * 0.1).max(1.0);
        *tokens = crate::http::auth::refill(*tokens, *last, now, *rate, burst);
        *last = now;
        *tokens -= n as f64;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            self.held.store(true, Ordering::Relaxed);
            Duration::from_secs_f64((-*tokens / *rate).min(MAX_WAIT.as_secs_f64()))
        }
    }

    /// Waits, if the tenant is paced, until `n` messages may go on.
    pub async fn admit(&self, n: u64) {
        let wait = self.reserve(n, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn set_rate(&self, rate: Option<f64>, now: Instant) {
        let mut limit = self.limit.lock().unwrap_or_else(|e| e.into_inner());
        *limit = match (rate, *limit) {
            (None, _) => None,
            (Some(rate), Some((_, tokens, last))) => Some((rate, tokens, last)),
            (Some(rate), None) => Some((rate, 0.0, now)),
        };
        self.paced.store(limit.is_some(), Ordering::Relaxed);
    }
}

/// Every tenant's [`Pace`], by id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Paces(Arc<RwLock<HashMap<String, Arc<Pace>>>>);

impl Paces {
    /// The tenant's pace, created if new, with its weight set to `weight`.
    pub fn get(&self, tenant: &str, weight: f64) -> Arc<Pace> {
        if let Some(pace) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(tenant) {
            pace.weight.store(weight.to_bits(), Ordering::Relaxed);
            return pace.clone();
        }
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Pace::new(weight)))
            .clone()
    }

    /// Forgets a deleted tenant.
    pub fn remove(&self, tenant: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }

    /// Every tenant's id, weight and paced rate (`None`: not paced), by id.
    pub fn snapshot(&self) -> Vec<(String, f64, Option<f64>)> {
        let mut all: Vec<_> = self
            .all()
            .into_iter()
            .map(|(id, pace)| (id, pace.weight(), pace.rate()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn all(&self) -> Vec<(String, Arc<Pace>)> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// What one sending tenant did during a tick, for [`allocate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Its weight.
    pub weight: f64,
    /// Messages per second it was admitted.
    pub rate: f64,
    /// The rate it was paced at during the tick, if it was.
    pub limit: Option<f64>,
    /// Whether one of its requests had to wait for its pace.
    pub held: bool,
}

impl Usage {
    /// Paced, never held back, and sending under a quarter
    /// ([`SATISFIED`]) of what its pace allowed: it wants no more than it
    /// sends.
    fn satisfied(&self) -> bool {
        !self.held
            && self
                .limit
                .is_some_and(|limit| self.rate < SATISFIED * limit)
    }
}

/// A paced tenant sending less than this fraction of its rate, without
/// waiting for its pace, is taken to want no more than it sends. Low, so
/// that a tenant slowed for a tick (its client starved of CPU) keeps its
/// share: at one half, `tests/fairness.rs` failed 3 times in 20 on a
/// doubly loaded machine, at one quarter once, as often as without the
/// rule at all.
const SATISFIED: f64 = 0.25;

/// Each sending tenant's rate: its weight's share of `capacity`, except
/// that a tenant satisfied with its last rate counts
/// only for what it sends, and the others split the rest by weight; it
/// keeps its plain share as its limit, so it can grow back. Without that,
/// one tenant sending a trickle beside a heavy one held the heavy one to
/// half the capacity; the measured total then fell, and with it every
/// share (23,225 → 4,240 msg/s for the heavy tenant in a two-tenant run).
///
/// Only a tenant that was already paced, and far under its rate, counts
/// as satisfied. Unpaced, tenants with equal connections send equal
/// rates, whatever they would do with their share; and a client limited
/// by its own round trips sends a good part of its rate without ever
/// waiting in the pace. Giving either's share away kept the engine full
/// of the others' requests, so it never got faster (weights 1 : 2 : 4
/// came out 25 : 36 : 39 %).
pub fn allocate(capacity: f64, tenants: &[Usage]) -> Vec<f64> {
    let capacity = capacity * HEADROOM;
    let full: f64 = tenants.iter().map(|t| t.weight).sum();
    let (satisfied, open): (Vec<&Usage>, Vec<&Usage>) = tenants.iter().partition(|t| t.satisfied());
    let used: f64 = satisfied.iter().map(|t| t.rate).sum();
    let open_weight: f64 = open.iter().map(|t| t.weight).sum();
    let left = (capacity - used).max(0.0);
    tenants
        .iter()
        .map(|t| {
            let rate = if t.satisfied() {
                capacity * t.weight / full
            } else {
                left * t.weight / open_weight
            };
            rate.max(MIN_RATE)
        })
        .collect()
}

/// The engine's accept rate while saturated, as the governor divides it:
/// the highest rate measured lately, decaying by `CAPACITY_DECAY` per
/// tick, so a dip (a paced tenant that cannot use its whole share, the
/// pacer's own timer slack) does not shrink every rate for the next tick,
/// while a real loss of capacity is followed within a couple of seconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Capacity(pub f64);

impl Capacity {
    /// Feeds one tick's measured rate; returns the capacity to share.
    pub fn update(&mut self, measured: f64) -> f64 {
        self.0 = measured.max(self.0 * CAPACITY_DECAY);
        self.0
    }
}

/// Busy fraction of all CPUs between two readings of `/proc/stat`'s first
/// line (`cpu user nice system idle iowait irq softirq steal …`).
pub fn busy_between(before: &[u64], after: &[u64]) -> Option<f64> {
    let total = |v: &[u64]| v.iter().take(8).sum::<u64>();
    let idle = |v: &[u64]| v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let dt = total(after).checked_sub(total(before))?;
    let di = idle(after).checked_sub(idle(before))?;
    (dt > 0).then(|| 1.0 - di as f64 / dt as f64)
}

fn read_cpu() -> Option<Vec<u64>> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    line.split_whitespace().map(|f| f.parse().ok()).collect()
}

/// One tick's readings of how loaded the engine is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Busy fraction of all CPUs (`None` where `/proc/stat` is unreadable).
    pub cpu: Option<f64>,
    /// The store writer's utilisation: its busy time over the tick's wall
    /// time. With the load generator's cost out of the way the single
    /// writer, not the CPUs, is what runs out first (commits and their
    /// fsync are serial), so CPU alone missed that saturation.
    pub writer: f64,
    /// Store writes waiting.
    pub store_backlog: u64,
}

/// Saturation with hysteresis.
#[derive(Debug, Default)]
pub struct Saturation {
    on: bool,
}

impl Saturation {
    /// Feeds one tick's readings; returns whether the engine is saturated.
    pub fn update(&mut self, load: Load) -> bool {
        let backlog = load.store_backlog > STORE_BACKLOG;
        let (cpu_limit, writer_limit) = if self.on {
            (BUSY_LEAVE, WRITER_LEAVE)
        } else {
            (BUSY_ENTER, WRITER_ENTER)
        };
        self.on = backlog
            || load.writer >= writer_limit
            || load.cpu.is_some_and(|busy| busy >= cpu_limit);
        self.on
    }
}

/// Runs forever: every [`TICK`], measures and sets the tenants' rates.
pub async fn governor(mode: Mode, paces: Paces, store: Store) {
    if mode == Mode::Off {
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    let mut cpu = read_cpu();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut at = Instant::now();
    let mut saturation = Saturation::default();
    let mut writer_busy_ns = store.stats().busy_ns;
    let mut capacity = Capacity::default();
    let mut pacing = false;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let dt = now.duration_since(at).as_secs_f64().max(0.001);
        at = now;
        let cpu_now = read_cpu();
        let busy = match (&cpu, &cpu_now) {
            (Some(a), Some(b)) => busy_between(a, b),
            _ => None,
        };
        cpu = cpu_now;
        let busy_ns = store.stats().busy_ns;
        let writer = busy_ns.saturating_sub(writer_busy_ns) as f64 / 1e9 / dt;
        writer_busy_ns = busy_ns;
        let saturated = match mode {
            Mode::Always => true,
            _ => saturation.update(Load {
                cpu: busy,
                writer,
                store_backlog: store.pending_writes(),
            }),
        };
        let all = paces.all();
        // Indexes into `all` of the tenants that admitted anything this
        // tick, and what they did.
        let mut sending = Vec::new();
        let mut usage = Vec::new();
        let mut total = 0u64;
        let mut admitted_now = HashMap::with_capacity(all.len());
        for (i, (id, pace)) in all.iter().enumerate() {
            let admitted = pace.admitted.load(Ordering::Relaxed);
            let delta = admitted.saturating_sub(last.get(id).copied().unwrap_or(0));
            admitted_now.insert(id.clone(), admitted);
            let held = pace.held.swap(false, Ordering::Relaxed);
            if delta > 0 {
                sending.push(i);
                usage.push(Usage {
                    weight: pace.weight(),
                    rate: delta as f64 / dt,
                    limit: pace.rate(),
                    held,
                });
                total += delta;
            }
        }
        // Tenants deleted since the last tick drop out here.
        last = admitted_now;
        if saturated && sending.len() >= 2 {
            let rates = allocate(capacity.update(total as f64 / dt), &usage);
            log::debug!("pacing at {:.0}/s: {usage:?} -> {rates:?}", capacity.0);
            let mut rate_of = vec![None; all.len()];
            for (&i, rate) in sending.iter().zip(rates) {
                rate_of[i] = Some(rate);
            }
            for ((_, pace), rate) in all.iter().zip(rate_of) {
                pace.set_rate(rate, now);
            }
            if !pacing {
                log::info!(
                    "engine saturated ({} tenants sending, {:.0} msg/s): pacing tenants by weight",
                    sending.len(),
                    total as f64 / dt
                );
            }
            pacing = true;
        } else if pacing {
            for (_, pace) in &all {
                pace.set_rate(None, now);
            }
            log::info!("engine no longer saturated: tenants no longer paced");
            pacing = false;
            capacity = Capacity::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(weight: f64, rate: f64, limit: Option<f64>, held: bool) -> Usage {
        Usage {
            weight,
            rate,
            limit,
            held,
        }
    }

    #[test]
    fn tenants_that_all_send_their_share_get_it_by_weight_with_headroom_and_a_floor() {
        let all = [
            usage(1.0, 1000.0, Some(1050.0), true),
            usage(2.0, 2000.0, Some(2100.0), true),
            usage(4.0, 3000.0, Some(4200.0), false),
        ];
        let rates = allocate(7000.0, &all);
        assert!((rates[0] - 1050.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[1] - 2100.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[2] - 4200.0).abs() < 1e-6, "{rates:?}");
        let tiny = allocate(
            10.0,
            &[usage(1.0, 5.0, None, false), usage(99.0, 5.0, None, false)],
        );
        assert_eq!(tiny[0], MIN_RATE);
    }

    #[test]
    fn a_tenant_sending_a_trickle_leaves_the_rest_to_the_heavy_one() {
        // 20,000/s of capacity; the light tenant was allowed 10,500/s, sent
        // 500/s and never waited: the heavy one may take everything else
        // (with headroom).
        let rates = allocate(
            20_000.0,
            &[
                usage(1.0, 19_500.0, Some(10_500.0), true),
                usage(1.0, 500.0, Some(10_500.0), false),
            ],
        );
        assert!((rates[0] - 20_500.0).abs() < 1e-6, "{rates:?}");
        assert!(
            (rates[1] - 10_500.0).abs() < 1e-6,
            "it may grow back to its share"
        );
    }

    #[test]
    fn a_tenant_using_most_of_its_rate_keeps_strict_weights() {
        // The weight-4 tenant sends 60 % of its rate without waiting (its
        // client is limited by round trips): it is not given away.
        let all = [
            usage(1.0, 3000.0, Some(3000.0), true),
            usage(2.0, 6000.0, Some(6000.0), true),
            usage(4.0, 7200.0, Some(12_000.0), false),
        ];
        let rates = allocate(20_000.0, &all);
        assert!((rates[2] - 12_000.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[0] - 3000.0).abs() < 1e-6, "{rates:?}");
    }

    #[test]
    fn a_tenant_not_yet_paced_is_never_taken_as_satisfied() {
        // Unpaced, three tenants with the same connections send the same
        // rate; the weight-4 one is far under its share, but that says
        // nothing of what it would send: strict shares on the first tick.
        let all = [
            usage(1.0, 2000.0, None, false),
            usage(2.0, 2000.0, None, false),
            usage(4.0, 2000.0, None, false),
        ];
        let rates = allocate(20_000.0, &all);
        assert!((rates[2] - 12_000.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[0] - 3000.0).abs() < 1e-6, "{rates:?}");
    }

    #[test]
    fn capacity_follows_a_rise_at_once_and_a_fall_slowly() {
        let mut c = Capacity::default();
        assert_eq!(c.update(10_000.0), 10_000.0);
        assert_eq!(c.update(12_000.0), 12_000.0);
        assert!((c.update(6_000.0) - 11_640.0).abs() < 1e-6);
        let mut last = 0.0;
        for _ in 0..100 {
            last = c.update(6_000.0);
        }
        assert_eq!(last, 6_000.0, "a lasting fall is followed");
    }

    #[test]
    fn a_paced_tenant_waits_in_arrival_order_at_its_rate() {
        let pace = Pace::new(1.0);
        let t0 = Instant::now();
        assert_eq!(pace.reserve(5, t0), Duration::ZERO, "not paced: no wait");
        pace.set_rate(Some(100.0), t0);
        // 100/s: the 1st message waits 10 ms, the 10th 100 ms.
        let waits: Vec<Duration> = (0..10).map(|_| pace.reserve(1, t0)).collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[9], Duration::from_millis(100));
        // A second later the debt is paid and the burst (10) refilled.
        assert_eq!(pace.reserve(1, t0 + Duration::from_secs(2)), Duration::ZERO);
        pace.set_rate(None, t0);
        assert_eq!(pace.reserve(1000, t0), Duration::ZERO);
        assert_eq!(pace.admitted.load(Ordering::Relaxed), 1016);
    }

    #[test]
    fn saturation_starts_at_90_percent_busy_and_ends_below_75() {
        let cpu = |busy| Load {
            cpu: Some(busy),
            ..Load::default()
        };
        let mut s = Saturation::default();
        assert!(!s.update(cpu(0.85)));
        assert!(s.update(cpu(0.95)));
        assert!(s.update(cpu(0.80)), "hysteresis");
        assert!(!s.update(cpu(0.70)));
        let backlog = Load {
            store_backlog: STORE_BACKLOG + 1,
            ..Load::default()
        };
        assert!(s.update(backlog), "a store backlog is saturation");
        assert!(!s.update(Load::default()));
    }

    #[test]
    fn a_store_writer_busy_most_of_the_time_is_saturation_with_spare_cpu() {
        let writer = |writer| Load {
            cpu: Some(0.6),
            writer,
            store_backlog: 0,
        };
        let mut s = Saturation::default();
        assert!(!s.update(writer(0.80)));
        assert!(s.update(writer(0.90)));
        assert!(s.update(writer(0.75)), "hysteresis");
        assert!(!s.update(writer(0.65)));
    }

    #[test]
    fn the_busy_fraction_comes_from_two_proc_stat_readings() {
        let before = [100, 0, 100, 800, 0, 0, 0, 0];
        let after = [250, 0, 150, 850, 50, 0, 0, 0];
        // 300 jiffies passed, 100 of them idle or iowait.
        let busy = busy_between(&before, &after).unwrap();
        assert!((busy - 2.0 / 3.0).abs() < 1e-9, "{busy}");
        assert_eq!(busy_between(&after, &before), None, "a counter went back");
    }
}
