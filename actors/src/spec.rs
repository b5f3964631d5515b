//! The validated configuration each actor receives.
//!
//! The binary deserializes and checks the TOML once and hands each component
//! only its part, as these types: actors never read files or the
//! environment.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusmpp::values::ServiceType;

use crate::smpp::encoding::DefaultAlphabet;
use crate::smpp::pdu::{Addressing, BindParams, LongMessages};
use crate::smpp::receipt::IdBases;
use crate::smpp::status::{self, ErrorClass};
use crate::transport::Tls;

/// One tenant and its SMPP accounts.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// Stable tenant id (also the key in the store).
    pub id: String,
    /// The tenant's SMPP accounts.
    pub channels: Vec<Arc<ChannelSpec>>,
}

/// One SMPP account at one SMSC, opened as `sessions` parallel binds.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    /// Name, unique within the tenant; recorded on each message sent through it.
    pub name: String,
    /// SMSC host name or address.
    pub host: String,
    /// SMSC port.
    pub port: u16,
    /// Credentials and bind mode.
    pub bind: BindParams,
    /// Parallel sessions (binds) of this account, in `bind.mode`.
    pub sessions: usize,
    /// Extra sessions of the same account bound as receivers (for a
    /// transmitter channel whose receipts arrive on a separate receiver
    /// bind).
    pub receiver_sessions: usize,
    /// Outstanding submits per session.
    pub window: usize,
    /// Submits per second per session (`None`: unlimited). Throttling by
    /// the SMSC lowers it temporarily.
    pub submits_per_second: Option<f64>,
    /// How long a submit may wait at a session for a window slot or a rate
    /// token before it goes back to the tenant's queue.
    pub window_wait_timeout: Duration,
    /// Probe an idle link this often.
    pub enquire_link_interval: Duration,
    /// How long any request may wait for its response.
    pub response_timeout: Duration,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// registered_delivery for submit_sm (0x01 = final receipt).
    pub registered_delivery: u8,
    /// Delay before the first reconnect; doubles per failure.
    pub reconnect_initial: Duration,
    /// Cap on the reconnect delay.
    pub reconnect_max: Duration,
    /// Attempts before a temporarily failing message is `failed`.
    pub max_attempts: u32,
    /// First retry delay for a temporary error; doubles per attempt.
    pub retry_initial: Duration,
    /// Cap on the retry delay.
    pub retry_max: Duration,
    /// This SMSC's own meaning of some command_status values (vendor codes
    /// 0x400–0x4FF especially), overriding the built-in table.
    pub error_classes: HashMap<u32, ErrorClass>,
    /// How this SMSC writes message ids in submit_sm_resp and in receipts.
    pub id_bases: IdBases,
    /// TON/NPI set instead of the guess from each address.
    pub addressing: Addressing,
    /// service_type of every submit_sm (empty: the SMSC's default).
    pub service_type: ServiceType,
    /// What the SMSC takes data_coding 0x00 to mean.
    pub default_alphabet: DefaultAlphabet,
    /// SMPP over TLS, with these settings; `None`: plain TCP.
    pub tls: Option<Tls>,
    /// How a message of several parts is sent.
    pub long_messages: LongMessages,
}

impl ChannelSpec {
    /// A channel with the defaults used when the config is silent.
    pub fn with_defaults(name: &str, host: &str, port: u16, bind: BindParams) -> Self {
        Self {
            name: name.to_string(),
            host: host.to_string(),
            port,
            bind,
            sessions: 1,
            receiver_sessions: 0,
            window: 10,
            submits_per_second: None,
            window_wait_timeout: Duration::from_secs(2),
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            registered_delivery: 1,
            reconnect_initial: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(60),
            max_attempts: 5,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            error_classes: HashMap::new(),
            id_bases: IdBases::default(),
            addressing: Addressing::default(),
            service_type: ServiceType::default(),
            default_alphabet: DefaultAlphabet::default(),
            tls: None,
            long_messages: LongMessages::default(),
        }
    }

    /// The class of a command_status on this channel: its override, else
    /// the SMPP 3.4 table.
    pub fn classify(&self, code: u32) -> ErrorClass {
        self.error_classes
            .get(&code)
            .copied()
            .unwrap_or_else(|| status::classify(code))
    }
}

/// Exponential delay with jitter: `initial * 2^n`, capped at `max`, then
/// scaled by a random factor in [0.5, 1.0] so that many sessions failing
/// together do not come back in lock-step.
pub fn backoff(initial: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
    let base = initial.saturating_mul(factor).min(max);
    let jitter: f64 = 0.5 + rand::random::<f64>() * 0.5;
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_with_jitter_below_the_base() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(2));
        for _ in 0..50 {
            let d0 = backoff(i, m, 0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= i);
            let d3 = backoff(i, m, 3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d30 = backoff(i, m, 30);
            assert!(d30 >= Duration::from_secs(1) && d30 <= m);
        }
    }
}
