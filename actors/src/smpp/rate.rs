//! Per-session submit rate: a token bucket whose rate adapts to throttling.
//!
//! An SMSC that answers ESME_RTHROTTLED or ESME_RMSGQFUL is telling us we
//! are too fast *on this bind*. Kannel pauses the whole link for about a
//! second on every throttle response; that stalls everything behind one
//! answer and recovers in steps. Here the session instead lowers its rate
//! multiplicatively (at most once per [`DECREASE_INTERVAL`], so a burst of
//! throttled answers to one burst of submits counts once) and raises it
//! again additively while no throttle comes — the AIMD loop TCP uses — up
//! to the configured cap (or back to unlimited).
//!
//! Pure arithmetic over an injected clock; no I/O, no actix.

use std::time::{Duration, Instant};

/// Throttles closer together than this lower the rate only once.
pub const DECREASE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the rate is raised while no throttle arrives.
pub const RECOVERY_STEP: Duration = Duration::from_millis(500);
/// The rate never drops below this (submits per second).
pub const FLOOR: f64 = 1.0;

/// The token bucket.
#[derive(Debug, Clone)]
pub struct AdaptiveRate {
    /// The configured cap; `None` = unlimited.
    configured: Option<f64>,
    /// The cap in force; `None` = unlimited.
    current: Option<f64>,
    /// The rate to recover towards after a throttle made us limit an
    /// unlimited session: what it was doing when throttled.
    ceiling: f64,
    tokens: f64,
    last_refill: Instant,
    last_decrease: Option<Instant>,
    /// Any throttle, counted or not: recovery waits for quiet.
    last_throttle: Option<Instant>,
    last_change: Instant,
    /// Sends in the current one-second measurement window, and the rate
    /// measured over the previous window (for an unlimited session's first
    /// throttle).
    window_start: Instant,
    window_sends: u32,
    measured: f64,
    throttles: u64,
}

impl AdaptiveRate {
    /// A bucket with `per_second` submits per second (`None`: unlimited).
    pub fn new(per_second: Option<f64>, now: Instant) -> Self {
        let per_second = per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| r.max(FLOOR));
        Self {
            configured: per_second,
            current: per_second,
            ceiling: per_second.unwrap_or(f64::INFINITY),
            tokens: Self::burst_of(per_second),
            last_refill: now,
            last_decrease: None,
            last_throttle: None,
            last_change: now,
            window_start: now,
            window_sends: 0,
            measured: 0.0,
            throttles: 0,
        }
    }

    /// Tokens the bucket can hold: a tenth of a second's worth, at least
    /// one, so a limited session never bursts far above its rate.
    fn burst_of(rate: Option<f64>) -> f64 {
        rate.map_or(f64::INFINITY, |r| (r / 10.0).max(1.0))
    }

    fn refill(&mut self, now: Instant) {
        self.recover(now);
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.last_refill = now;
        if let Some(rate) = self.current {
            self.tokens = (self.tokens + elapsed * rate).min(Self::burst_of(Some(rate)));
        }
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            let span = now
                .saturating_duration_since(self.window_start)
                .as_secs_f64();
            self.measured = f64::from(self.window_sends) / span;
            self.window_start = now;
            self.window_sends = 0;
        }
    }

    /// Additive increase: a tenth of the ceiling per quiet step.
    fn recover(&mut self, now: Instant) {
        let Some(rate) = self.current else { return };
        if self.current == self.configured {
            return;
        }
        let quiet_since = self
            .last_throttle
            .map_or(self.last_change, |t| t.max(self.last_change));
        let steps =
            now.saturating_duration_since(quiet_since).as_secs_f64() / RECOVERY_STEP.as_secs_f64();
        if steps < 1.0 {
            return;
        }
        let step = if self.ceiling.is_finite() {
            self.ceiling / 10.0
        } else {
            rate / 10.0
        }
        .max(FLOOR);
        let raised = rate + step * steps.floor();
        self.last_change = now;
        self.current = if raised >= self.ceiling {
            self.configured
        } else {
            Some(raised)
        };
    }

    /// Takes a token if one is available.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.current.is_some() {
            if self.tokens < 1.0 {
                return false;
            }
            self.tokens -= 1.0;
        }
        self.window_sends = self.window_sends.saturating_add(1);
        true
    }

    /// When the next token will be there (`now` if one is).
    pub fn next_token_at(&self, now: Instant) -> Instant {
        match self.current {
            Some(rate) if self.tokens < 1.0 => {
                now + Duration::from_secs_f64((1.0 - self.tokens) / rate)
            }
            _ => now,
        }
    }

    /// The SMSC throttled us: lower the rate (once per interval).
    pub fn on_throttle(&mut self, now: Instant) {
        self.throttles += 1;
        self.last_throttle = Some(now);
        if self
            .last_decrease
            .is_some_and(|d| now.saturating_duration_since(d) < DECREASE_INTERVAL)
        {
            return;
        }
        self.refill(now);
        let base = match self.current {
            Some(rate) => rate,
            None => {
                // Unlimited until now: start from what we were doing.
                let elapsed = now
                    .saturating_duration_since(self.window_start)
                    .as_secs_f64();
                let recent = if elapsed > 0.0 {
                    f64::from(self.window_sends) / elapsed.max(0.1)
                } else {
                    0.0
                };
                let observed = self.measured.max(recent).max(FLOOR * 2.0);
                self.ceiling = observed;
                observed
            }
        };
        let lowered = (base * 0.5).max(FLOOR);
        self.current = Some(lowered);
        self.tokens = self.tokens.min(Self::burst_of(Some(lowered)));
        self.last_decrease = Some(now);
        self.last_change = now;
    }

    /// The cap in force, submits per second (`None`: unlimited).
    pub fn current_limit(&self, now: Instant) -> Option<f64> {
        let mut probe = self.clone();
        probe.recover(now);
        probe.current
    }

    /// Throttle answers seen.
    pub fn throttles(&self) -> u64 {
        self.throttles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_unlimited_bucket_always_grants() {
        let now = Instant::now();
        let mut r = AdaptiveRate::new(None, now);
        assert!((0..10_000).all(|_| r.try_acquire(now)));
        assert_eq!(r.current_limit(now), None);
    }

    #[test]
    fn a_limited_bucket_grants_its_rate_and_no_more() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(100.0), t0);
        // Burst of a tenth of a second's worth.
        let burst = (0..100).take_while(|_| r.try_acquire(t0)).count();
        assert_eq!(burst, 10);
        assert!(
            r.next_token_at(t0) >= t0 + ms(9),
            "the next token is a hundredth of a second away"
        );
        // Over the next second: 100 more, give or take the boundary.
        let mut granted = 0;
        for i in 1..=1000 {
            if r.try_acquire(t0 + ms(i)) {
                granted += 1;
            }
        }
        assert!((99..=101).contains(&granted), "{granted}");
    }

    #[test]
    fn a_throttle_halves_the_rate_once_per_interval() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(100.0), t0);
        r.on_throttle(t0);
        assert_eq!(r.current_limit(t0), Some(50.0));
        r.on_throttle(t0 + ms(10));
        r.on_throttle(t0 + ms(900));
        assert_eq!(
            r.current_limit(t0 + ms(900)),
            Some(50.0),
            "a burst of throttles counts once, and no recovery while they come"
        );
        r.on_throttle(t0 + ms(1000));
        assert_eq!(r.current_limit(t0 + ms(1000)), Some(25.0));
        assert_eq!(r.throttles(), 4);
    }

    #[test]
    fn the_rate_recovers_gradually_to_the_configured_cap() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(100.0), t0);
        r.on_throttle(t0);
        assert_eq!(r.current_limit(t0 + ms(499)), Some(50.0));
        assert_eq!(r.current_limit(t0 + ms(500)), Some(60.0));
        assert_eq!(r.current_limit(t0 + ms(1500)), Some(80.0));
        assert_eq!(r.current_limit(t0 + ms(10_000)), Some(100.0));
    }

    #[test]
    fn an_unlimited_session_is_limited_from_its_observed_rate_and_becomes_unlimited_again() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(None, t0);
        for i in 0..400 {
            assert!(r.try_acquire(t0 + ms(i * 5)));
        }
        // 400 sends in 2 s: about 200/s.
        r.on_throttle(t0 + ms(2000));
        let limited = r.current_limit(t0 + ms(2000)).expect("limited now");
        assert!((80.0..=120.0).contains(&limited), "{limited}");
        assert_eq!(r.current_limit(t0 + ms(30_000)), None, "back to unlimited");
    }

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(2.0), t0);
        for i in 0..10 {
            r.on_throttle(t0 + Duration::from_secs(i));
        }
        assert_eq!(r.current_limit(t0 + Duration::from_secs(9)), Some(FLOOR));
        assert!(r.try_acquire(t0 + Duration::from_secs(11)));
    }
}
