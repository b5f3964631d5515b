//! Per-session submit rate: a token bucket whose rate follows what the SMSC
//! actually accepts.
//!
//! An SMSC that answers ESME_RTHROTTLED or ESME_RMSGQFUL is telling us we
//! are too fast *on this bind*. Kannel pauses the whole link for about a
//! second on every throttle answer, which stalls everything behind one
//! answer. Plain AIMD ("halve on any throttle") is not much better: an SMSC
//! that throttles a steady 10% of submits regardless of rate would drive
//! the rate to the floor.
//!
//! So the bucket judges throttling per measurement window ([`WINDOW`]).
//! If more than [`TOLERATED`] of a window's submits were throttled, the new
//! rate is what got *through* in that window (sends × (1 − throttled
//! fraction)) less a [`MARGIN`]: against an SMSC with a rate cap this lands
//! near the cap within a window or two. A smaller throttled share is taken
//! as noise and changes nothing (those submits are simply retried), so an
//! SMSC that throttles a fixed 10% does not slow us down. Below its ceiling
//! the rate recovers every [`RECOVERY_STEP`] by ×1.25 or a tenth of the
//! ceiling, whichever is more, back to the configured cap (or unlimited).
//!
//! Pure arithmetic over an injected clock; no I/O, no actix.

use std::time::{Duration, Instant};

/// Throttling is judged over windows of this length.
pub const WINDOW: Duration = Duration::from_millis(500);
/// How often the rate is raised while it is below its ceiling.
pub const RECOVERY_STEP: Duration = Duration::from_millis(500);
/// Share of the accepted rate given up after a throttled window.
pub const MARGIN: f64 = 0.1;
/// A window with at most this share of throttled submits does not lower
/// the rate: a few throttles are noise (some SMSCs throttle a fixed share
/// whatever the rate), and retrying them at once costs less than slowing
/// every other submit down.
pub const TOLERATED: f64 = 0.15;
/// The rate never drops below this (submits per second).
pub const FLOOR: f64 = 1.0;

/// The token bucket.
#[derive(Debug, Clone)]
pub struct AdaptiveRate {
    /// The configured cap; `None` = unlimited.
    configured: Option<f64>,
    /// The cap in force; `None` = unlimited.
    current: Option<f64>,
    /// What recovery climbs back to: the configured cap, or for an
    /// unlimited session the rate it had when throttling began.
    ceiling: f64,
    tokens: f64,
    last_refill: Instant,
    last_change: Instant,
    window_start: Instant,
    /// The last send or throttle in the window: its rate is measured up to
    /// here, not up to whenever the window happens to be closed.
    window_last: Instant,
    window_sends: u32,
    window_throttles: u32,
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
            last_change: now,
            window_start: now,
            window_last: now,
            window_sends: 0,
            window_throttles: 0,
            throttles: 0,
        }
    }

    /// Tokens the bucket can hold: a tenth of a second's worth, at least
    /// one, so a limited session never bursts far above its rate.
    fn burst_of(rate: Option<f64>) -> f64 {
        rate.map_or(f64::INFINITY, |r| (r / 10.0).max(1.0))
    }

    fn advance(&mut self, now: Instant) {
        self.close_window(now);
        self.recover(now);
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.last_refill = now;
        if let Some(rate) = self.current {
            self.tokens = (self.tokens + elapsed * rate).min(Self::burst_of(Some(rate)));
        }
    }

    /// Ends a measurement window: after a throttled one, the rate becomes
    /// what the SMSC accepted in it, less the margin.
    fn close_window(&mut self, now: Instant) {
        let span = now.saturating_duration_since(self.window_start);
        if span < WINDOW {
            return;
        }
        let sends = f64::from(self.window_sends.max(self.window_throttles));
        let throttled_fraction = if sends > 0.0 {
            f64::from(self.window_throttles) / sends
        } else {
            0.0
        };
        if throttled_fraction > TOLERATED {
            let accepted_fraction = 1.0 - throttled_fraction;
            let measured = self
                .window_last
                .saturating_duration_since(self.window_start)
                .max(WINDOW);
            let sent_rate = sends / measured.as_secs_f64();
            let target = (sent_rate * accepted_fraction * (1.0 - MARGIN)).max(FLOOR);
            if self.current.is_none() {
                self.ceiling = sent_rate.max(FLOOR);
            }
            let lowered = self.current.map_or(target, |c| c.min(target));
            self.current = Some(lowered);
            self.tokens = self.tokens.min(Self::burst_of(Some(lowered)));
            self.last_change = (self.window_start + WINDOW).min(now);
        }
        self.window_start = now;
        self.window_sends = 0;
        self.window_throttles = 0;
    }

    /// Increase per step since the last change: ×1.25 or a tenth of the
    /// ceiling, whichever is more.
    fn recover(&mut self, now: Instant) {
        let Some(rate) = self.current else { return };
        if self.current == self.configured {
            return;
        }
        let steps = (now
            .saturating_duration_since(self.last_change)
            .as_secs_f64()
            / RECOVERY_STEP.as_secs_f64())
        .floor();
        if steps < 1.0 {
            return;
        }
        let mut raised = rate;
        for _ in 0..(steps as u32).min(64) {
            raised = (raised * 1.25).max(raised + (self.ceiling / 10.0).max(FLOOR));
        }
        self.last_change += RECOVERY_STEP.mul_f64(steps);
        self.current = if raised >= self.ceiling {
            self.configured
        } else {
            Some(raised)
        };
    }

    /// Takes a token if one is available.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.advance(now);
        if self.current.is_some() {
            if self.tokens < 1.0 {
                return false;
            }
            self.tokens -= 1.0;
        }
        self.window_sends = self.window_sends.saturating_add(1);
        self.window_last = now;
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

    /// The SMSC throttled one of our submits.
    pub fn on_throttle(&mut self, now: Instant) {
        self.advance(now);
        self.throttles += 1;
        self.window_throttles = self.window_throttles.saturating_add(1);
        self.window_last = now;
    }

    /// The cap in force, submits per second (`None`: unlimited).
    pub fn current_limit(&self, now: Instant) -> Option<f64> {
        let mut probe = self.clone();
        probe.advance(now);
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

    /// Drives the bucket for `duration` from `start`: tries to send every
    /// `every`, and the SMSC throttles according to `throttled(i)`.
    fn run(
        r: &mut AdaptiveRate,
        start: Instant,
        duration: Duration,
        every: Duration,
        mut throttled: impl FnMut(u64, f64) -> bool,
    ) -> (u64, u64) {
        let (mut sent, mut accepted) = (0, 0);
        let mut t = start;
        while t < start + duration {
            if r.try_acquire(t) {
                sent += 1;
                let since_start = t.duration_since(start).as_secs_f64();
                if throttled(sent, since_start) {
                    r.on_throttle(t);
                } else {
                    accepted += 1;
                }
            }
            t += every;
        }
        (sent, accepted)
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
        let burst = (0..100).take_while(|_| r.try_acquire(t0)).count();
        assert_eq!(burst, 10, "a tenth of a second's worth");
        assert!(r.next_token_at(t0) >= t0 + ms(9));
        let mut granted = 0;
        for i in 1..=1000 {
            if r.try_acquire(t0 + ms(i)) {
                granted += 1;
            }
        }
        assert!((99..=101).contains(&granted), "{granted}");
    }

    #[test]
    fn an_smsc_capped_at_200_per_second_brings_an_unlimited_session_down_to_about_200() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(None, t0);
        // The SMSC accepts 200/s: everything above that in a second is throttled.
        let mut second = 0u64;
        let mut in_second = 0u64;
        let (sent, accepted) = run(&mut r, t0, Duration::from_secs(10), ms(1), |_, t| {
            if t as u64 != second {
                second = t as u64;
                in_second = 0;
            }
            in_second += 1;
            in_second > 200
        });
        let limit = r
            .current_limit(t0 + Duration::from_secs(10))
            .expect("limited");
        assert!((120.0..=260.0).contains(&limit), "settled at {limit}/s");
        let wasted = sent - accepted;
        assert!(wasted < sent / 3, "{wasted} of {sent} submits throttled");
    }

    #[test]
    fn random_ten_percent_throttling_keeps_most_of_the_rate() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(1000.0), t0);
        let (sent, _) = run(&mut r, t0, Duration::from_secs(10), ms(1), |i, _| {
            i % 10 == 0
        });
        // 10 s at up to 1000/s offered, one submit per ms: 10,000 possible.
        assert!(
            sent >= 7_000,
            "only {sent} sent: random throttling collapsed the rate"
        );
    }

    #[test]
    fn total_throttling_drives_the_rate_to_the_floor_and_it_recovers_after() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(Some(100.0), t0);
        run(&mut r, t0, Duration::from_secs(5), ms(1), |_, _| true);
        let floor = r.current_limit(t0 + Duration::from_secs(5)).unwrap();
        assert!(floor <= 2.0, "{floor}");
        assert!(r.throttles() > 0);
        assert_eq!(
            r.current_limit(t0 + Duration::from_secs(11)),
            Some(100.0),
            "back to the configured cap"
        );
    }

    #[test]
    fn an_unlimited_session_becomes_unlimited_again() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(None, t0);
        run(&mut r, t0, Duration::from_secs(1), ms(2), |i, _| i % 2 == 0);
        assert!(r.current_limit(t0 + Duration::from_secs(1)).is_some());
        assert_eq!(r.current_limit(t0 + Duration::from_secs(8)), None);
    }
}
