//! Per-tenant live events: a message changed status, or an inbound (MO)
//! message arrived. Published where the change is known to be committed
//! (store callbacks, supervisor decisions) and fanned out to subscribers
//! (`GET /v1/events`) through a bounded broadcast channel per tenant: a
//! slow subscriber misses events (and is told so), it never slows the
//! engine down.

use std::sync::Arc;

use smppd_sqlite::{ErrorInfo, MessageId, MessageStatus};
use tokio::sync::broadcast;

/// Events kept for a subscriber that falls behind.
pub const BUFFER: usize = 4096;

/// One event of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message's status changed.
    Status {
        /// The message.
        id: MessageId,
        /// Its new status.
        status: MessageStatus,
        /// The error, for failures.
        error: Option<ErrorInfo>,
        /// When (unix ms).
        at_ms: i64,
    },
    /// A mobile-originated message was stored.
    Inbound {
        /// Its row id.
        id: i64,
        /// The channel it came on.
        channel: String,
        /// Sender.
        source: String,
        /// Recipient.
        destination: String,
        /// Decoded text.
        text: String,
        /// When (unix ms).
        at_ms: i64,
    },
}

/// A tenant's event channel.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
        }
    }
}

impl Events {
    /// Publishes to every current subscriber (none: dropped, at no cost).
    pub fn publish(&self, event: Event) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(event));
        }
    }

    /// A new subscriber, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// A status change, now.
    pub fn status(&self, id: MessageId, status: MessageStatus, error: Option<ErrorInfo>) {
        self.publish(Event::Status {
            id,
            status,
            error,
            at_ms: crate::smpp::time::unix_ms(),
        });
    }
}
