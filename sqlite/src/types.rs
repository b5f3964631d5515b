//! The values that cross the store's API: message ids, statuses, the rows
//! we insert and read back, and delivery receipts. No SQL here.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Opaque message id. Internally an i64 (the SQLite rowid), time-ordered:
/// `(unix_ms << 16) | counter`.
///
/// Being the rowid keeps the table clustered by arrival time, so the hot
/// recent rows (the ones receipts update) share pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl MessageId {
    /// The raw rowid.
    pub fn as_i64(self) -> i64 {
        self.0
    }
}

impl fmt::Display for MessageId {
    /// Lowercase hex, zero-padded to 16 characters, e.g. `0193a1b2c3d40001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for MessageId {
    type Err = ();

    /// Exact inverse of `Display`: 16 hex digits (either case) of a value in
    /// `1..=i64::MAX`. Anything else is rejected.
    fn from_str(s: &str) -> Result<Self, ()> {
        // Checked by hand because `from_str_radix` also accepts a leading '+'.
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        let value = u64::from_str_radix(s, 16).map_err(|_| ())?;
        match i64::try_from(value) {
            Ok(v) if v > 0 => Ok(MessageId(v)),
            _ => Err(()),
        }
    }
}

/// Where a message is in its life. Stored as its [`as_str`](Self::as_str) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Accepted, waiting to be submitted (or re-submitted) to an SMSC.
    Queued,
    /// Accepted by an SMSC (submit_sm_resp OK), waiting for a receipt.
    Submitted,
    /// The handset got it.
    Delivered,
    /// The network gave up on it.
    Undeliverable,
    /// Its validity period ran out.
    Expired,
    /// The SMSC or network refused it.
    Rejected,
    /// We gave up on it (permanent error, too many attempts).
    Failed,
    /// The SMSC reported an unknown final state.
    Unknown,
}

impl MessageStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [MessageStatus; 8] = [
        MessageStatus::Queued,
        MessageStatus::Submitted,
        MessageStatus::Delivered,
        MessageStatus::Undeliverable,
        MessageStatus::Expired,
        MessageStatus::Rejected,
        MessageStatus::Failed,
        MessageStatus::Unknown,
    ];

    /// The lowercase name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Submitted => "submitted",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Undeliverable => "undeliverable",
            MessageStatus::Expired => "expired",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Failed => "failed",
            MessageStatus::Unknown => "unknown",
        }
    }

    /// Inverse of [`as_str`](Self::as_str) (exact, lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// True for every status but `Queued` and `Submitted`: nothing more will
    /// happen to the message except a later receipt overriding the outcome.
    pub fn is_terminal(self) -> bool {
        !matches!(self, MessageStatus::Queued | MessageStatus::Submitted)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error recorded on a message: SMPP command_status or DLR err code, with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The numeric code (command_status, or the DLR `err:` field).
    pub code: u32,
    /// Its human-readable name, e.g. `ESME_RTHROTTLED`.
    pub name: String,
}

/// Which lane of a tenant's queue a message waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// OTP and other express traffic: goes first.
    High,
    /// The default.
    #[default]
    Normal,
    /// Campaigns: goes last, but is never starved entirely.
    Bulk,
}

impl Priority {
    /// Every lane, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Bulk];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Bulk => "bulk",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The stored value (0 = high).
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    /// From the stored value.
    pub fn from_i64(v: i64) -> Option<Self> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// Index 0..3, highest first.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A tenant's credit, in micro-units of its currency (1 = 0.000001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// What new messages can still reserve.
    pub available: i64,
    /// Reserved by accepted messages not yet submitted.
    pub reserved: i64,
    /// Captured by successful submits.
    pub spent: i64,
}

/// A message to insert; it starts `queued` with no attempts. Its id is
/// assigned by the writer when it runs the insert (see
/// [`Store::insert_message`](crate::Store::insert_message)).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Owner; every read is scoped by it. Shared, not copied, per message.
    pub tenant: Arc<str>,
    /// Sender address.
    pub source: Arc<str>,
    /// Recipient address.
    pub destination: Arc<str>,
    /// Message text.
    pub text: Arc<str>,
    /// Queue lane.
    pub priority: Priority,
    /// Not to be submitted after this time (unix ms).
    pub validity_until_ms: Option<i64>,
    /// To be delivered by the SMSC at this time (unix ms), not before:
    /// sent as schedule_delivery_time.
    pub send_at_ms: Option<i64>,
    /// SMS parts it takes.
    pub parts: u32,
    /// Credit to reserve (micro-units); `None` = no credit control.
    pub charge: Option<i64>,
    /// Refuse the insert if the tenant already has this many messages
    /// queued (accepted, not yet submitted or final).
    pub max_queued: Option<u64>,
    /// The tenant's own reference, stored and echoed.
    pub client_ref: Option<String>,
    /// Where this message's final status is posted, instead of the
    /// tenant's webhook.
    pub callback_url: Option<String>,
    /// The data_coding the tenant asked for (0x00 GSM, 0x08 UCS-2);
    /// `None`: chosen from the text.
    pub data_coding: Option<u8>,
}

impl NewMessage {
    /// A normal-priority, single-part message without validity, charge or
    /// quota.
    pub fn new(tenant: &str, source: &str, destination: &str, text: &str) -> Self {
        Self {
            tenant: tenant.into(),
            source: source.into(),
            destination: destination.into(),
            text: text.into(),
            priority: Priority::Normal,
            validity_until_ms: None,
            send_at_ms: None,
            parts: 1,
            charge: None,
            max_queued: None,
            client_ref: None,
            callback_url: None,
            data_coding: None,
        }
    }
}

/// A message as stored, every column.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// Its id.
    pub id: MessageId,
    /// Owner.
    pub tenant: String,
    /// Sender address.
    pub source: String,
    /// Recipient address.
    pub destination: String,
    /// Message text.
    pub text: String,
    /// Current status.
    pub status: MessageStatus,
    /// The SMPP channel it was last submitted on.
    pub channel: Option<String>,
    /// The id the SMSC gave it (submit_sm_resp message_id).
    pub smsc_message_id: Option<String>,
    /// Submission attempts so far (successful or not).
    pub attempts: u32,
    /// The last error recorded, if any.
    pub error: Option<ErrorInfo>,
    /// When it was accepted, unix ms.
    pub created_at_ms: i64,
    /// When it was last accepted by an SMSC, unix ms.
    pub submitted_at_ms: Option<i64>,
    /// When it reached a terminal status, unix ms.
    pub done_at_ms: Option<i64>,
    /// Last change of any kind, unix ms.
    pub updated_at_ms: i64,
    /// Queue lane.
    pub priority: Priority,
    /// Not to be submitted after this time (unix ms).
    pub validity_until_ms: Option<i64>,
    /// When the SMSC is to deliver it (unix ms), if scheduled.
    pub send_at_ms: Option<i64>,
    /// SMS parts.
    pub parts: u32,
    /// Credit reserved for it (micro-units), if credit control applies.
    pub charge: Option<i64>,
    /// `reserved`, `captured` or `released`.
    pub charge_state: Option<String>,
    /// The tenant's own reference.
    pub client_ref: Option<String>,
    /// Where its final status is posted, if not the tenant's webhook.
    pub callback_url: Option<String>,
    /// The data_coding the tenant asked for, if any.
    pub data_coding: Option<u8>,
}

/// What a tenant supervisor needs to (re)submit a message.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// Its id.
    pub id: MessageId,
    /// Sender address. The strings are shared with the row inserted for
    /// it and with every copy the supervisor keeps, not copied.
    pub source: Arc<str>,
    /// Recipient address.
    pub destination: Arc<str>,
    /// Message text.
    pub text: Arc<str>,
    /// Attempts so far, for retry policy.
    pub attempts: u32,
    /// SMS parts it takes (window slots it needs).
    pub parts: u32,
    /// The data_coding the tenant asked for, if any.
    pub data_coding: Option<u8>,
    /// Queue lane.
    pub priority: Priority,
    /// Not to be submitted after this time (unix ms).
    pub validity_until_ms: Option<i64>,
    /// When the SMSC is to deliver it (unix ms), if scheduled.
    pub send_at_ms: Option<i64>,
}

/// A delivery receipt as parsed from an SMSC's deliver_sm.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The tenant whose channel received it.
    pub tenant: Arc<str>,
    /// The channel (SMPP session group) it arrived on.
    pub channel: Arc<str>,
    /// The SMSC's id for the message (`id:` / receipted_message_id).
    pub smsc_message_id: Arc<str>,
    /// The outcome it reports.
    pub status: MessageStatus,
    /// The error it reports, if any.
    pub error: Option<ErrorInfo>,
}

/// What one [`Store::prune`](crate::Store::prune) deleted, per kind of row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Final messages (with their parts).
    pub messages: u64,
    /// Inbound (MO) messages.
    pub inbound: u64,
    /// Webhook deliveries done or dead.
    pub webhooks: u64,
    /// Parked receipts that never matched a message.
    pub receipts: u64,
}

impl Pruned {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Pruned) {
        self.messages += other.messages;
        self.inbound += other.inbound;
        self.webhooks += other.webhooks;
        self.receipts += other.receipts;
    }

    /// Whether any kind hit the batch limit, so more may be waiting.
    pub fn reached(&self, limit: usize) -> bool {
        let limit = limit as u64;
        [self.messages, self.inbound, self.webhooks, self.receipts]
            .iter()
            .any(|&n| n >= limit)
    }
}

impl ErrorInfo {
    /// An outcome smppd decided itself, not an SMSC: code 0 and our own
    /// name (`OUTCOME_UNKNOWN`, `VALIDITY_EXPIRED`, `RECEIPT_TIMEOUT`).
    pub fn ours(name: &str) -> Self {
        ErrorInfo {
            code: 0,
            name: name.to_owned(),
        }
    }

    /// Recorded on a message whose receipt did not come within
    /// `engine.receipt_timeout_s` (see
    /// [`Store::time_out_receipts`](crate::Store::time_out_receipts)).
    pub fn receipt_timeout() -> Self {
        Self::ours(RECEIPT_TIMEOUT)
    }
}

/// The error name of [`ErrorInfo::receipt_timeout`].
pub const RECEIPT_TIMEOUT: &str = "RECEIPT_TIMEOUT";

/// A message [`Store::time_out_receipts`](crate::Store::time_out_receipts)
/// made `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// Its tenant.
    pub tenant: String,
    /// The message.
    pub id: MessageId,
}

/// What [`Store::apply_receipt`](crate::Store::apply_receipt) did with a receipt.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptMatch {
    /// The receipt updated this message.
    Matched {
        /// The message.
        id: MessageId,
        /// When it was submitted (unix ms), for submit-to-receipt latency.
        submitted_at_ms: Option<i64>,
        /// The message's final status when this receipt made (or kept) it
        /// final; `None` while other parts of a long message are pending or
        /// the receipt was intermediate.
        final_status: Option<MessageStatus>,
    },
    /// No message with that smsc id (yet): the receipt was kept in
    /// `pending_receipts`; it is applied when `mark_submitted` records that
    /// smsc id (a DLR can overtake its submit_sm_resp), else stays as an orphan.
    Parked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_text() {
        for raw in [1, 0x0193_a1b2_c3d4_0001, i64::MAX, 1 << 16] {
            let id = MessageId(raw);
            let text = id.to_string();
            assert_eq!(text.len(), 16);
            assert_eq!(text.parse::<MessageId>(), Ok(id));
        }
        assert_eq!(
            MessageId(0x0193_a1b2_c3d4_0001).to_string(),
            "0193a1b2c3d40001"
        );
    }

    #[test]
    fn an_uppercase_id_parses_to_the_same_value() {
        assert_eq!(
            "0193A1B2C3D40001".parse::<MessageId>(),
            Ok(MessageId(0x0193_a1b2_c3d4_0001))
        );
    }

    #[test]
    fn id_parsing_rejects_garbage() {
        for bad in [
            "",
            "1",
            "0193a1b2c3d4000",   // 15 chars
            "0193a1b2c3d400011", // 17 chars
            "0193a1b2c3d4000g",
            "+193a1b2c3d40001",
            "-193a1b2c3d40001",
            " 193a1b2c3d40001",
            "0000000000000000", // zero is never an id
            "8000000000000000", // does not fit in i64
            "ffffffffffffffff",
            "０93a1b2c3d4001", // 16 bytes, but a non-ASCII digit
        ] {
            assert_eq!(
                bad.parse::<MessageId>(),
                Err(()),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn a_status_round_trips_through_its_text() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MessageStatus::parse("Delivered"), None);
        assert_eq!(MessageStatus::parse(""), None);
    }

    #[test]
    fn only_queued_and_submitted_are_not_terminal() {
        let open: Vec<_> = MessageStatus::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(open, [MessageStatus::Queued, MessageStatus::Submitted]);
    }
}

/// A mobile-originated (MO) message received from an SMSC.
#[derive(Debug, Clone)]
pub struct NewInbound {
    /// The tenant whose SMPP account received it.
    pub tenant: String,
    /// The channel (SMPP account) it arrived on.
    pub channel: String,
    /// Sender (the handset).
    pub source: String,
    /// Recipient (the tenant's number or short code).
    pub destination: String,
    /// Decoded text.
    pub text: String,
}

/// A webhook delivery from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Outbox row id: sent as the delivery id so receivers can drop
    /// duplicates (delivery is at least once).
    pub id: i64,
    /// Owner.
    pub tenant: String,
    /// Target.
    pub url: String,
    /// `status` or `inbound`.
    pub kind: String,
    /// The message id (kind `status`) or inbound id.
    pub ref_id: i64,
    /// The final status (kind `status`).
    pub status: Option<String>,
    /// Its error.
    pub error: Option<ErrorInfo>,
    /// When the event happened (unix ms).
    pub created_at_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// How a webhook attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again at this time (unix ms).
    Retry {
        /// Next attempt.
        at_ms: i64,
        /// What went wrong.
        error: String,
    },
    /// Out of attempts: kept as a dead letter.
    Dead {
        /// What went wrong last.
        error: String,
    },
}

/// One part of a long message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    /// 1-based.
    pub part: u32,
    /// The SMSC's id of this part.
    pub smsc_message_id: String,
    /// Its own status.
    pub status: MessageStatus,
    /// Its error.
    pub error: Option<ErrorInfo>,
}

/// Which of a tenant's messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only this status.
    pub status: Option<MessageStatus>,
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created before (unix ms).
    pub until_ms: Option<i64>,
    /// Continue below this id (the previous page's last).
    pub before: Option<MessageId>,
}

/// A stored mobile-originated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecord {
    /// Row id.
    pub id: i64,
    /// Channel it arrived on.
    pub channel: String,
    /// Sender.
    pub source: String,
    /// Recipient.
    pub destination: String,
    /// Text.
    pub text: String,
    /// When it was stored (unix ms).
    pub received_at_ms: i64,
}

/// Renders the answer to remember for an idempotent request from the
/// results of its inserts: (HTTP status, body).
pub type RenderAnswer =
    Box<dyn Fn(&[Result<MessageId, crate::StoreError>]) -> (u16, String) + Send + 'static>;

/// An `Idempotency-Key` and what to remember under it.
pub struct Idempotency {
    /// Owner of the key.
    pub tenant: String,
    /// The key the client sent.
    pub key: String,
    /// A stable hash of the request body: the same key with another body
    /// is a client error, not a retry.
    pub request_hash: String,
    /// Builds the answer to store and replay.
    pub render: RenderAnswer,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("tenant", &self.tenant)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What an [`insert_batch`](crate::Store::insert_batch) did.
#[derive(Debug)]
pub enum BatchOutcome {
    /// The messages were processed now: one result per message, in order.
    /// With an idempotency key, the rendered answer was stored too.
    Fresh(Vec<Result<MessageId, crate::StoreError>>),
    /// The key was seen before with the same request: its stored answer.
    Replayed {
        /// HTTP status.
        status: u16,
        /// Body.
        body: String,
    },
    /// The key was seen before with a different request.
    KeyReused,
}
