//! A message sent as several `submit_sm` (a long text with a UDH): each
//! part is its own window entry with its own response; the message's
//! attempt is over when every part is answered (or never sent).
//!
//! The attempt's outcome: accepted when every part was, with one SMSC id
//! per part; else the worst refusal (permanent over temporary over
//! throttled); else unknown when a part was sent without an answer; and
//! "not sent" only when no part left at all. A failed attempt is retried
//! whole: SMPP has no way to tell the handset to keep the parts it got.
//!
//! Plain data, no actix.

use smppd_sqlite::QueuedMessage;

use crate::smpp::session::SubmitOutcome;
use crate::smpp::status::ErrorClass;

/// What happened to one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Sent; its response.
    Sent(SubmitOutcome),
    /// Never sent: the session was not ready.
    NotSent,
    /// Never sent: it waited too long for a slot or a token.
    WaitExpired,
}

/// How the attempt of the whole message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutcome {
    /// Every part accepted: their SMSC ids, in order.
    Accepted(Vec<String>),
    /// Sent and refused with this status.
    Refused(u32),
    /// Sent, outcome unknown.
    Unknown,
    /// Nothing was sent; the session was not ready.
    NotSent,
    /// Nothing was sent; it waited too long.
    WaitExpired,
}

/// The parts of one message in flight.
#[derive(Debug)]
pub struct PartGroup {
    /// The message, until [`PartGroup::finish`] hands it on.
    message: Option<QueuedMessage>,
    outcomes: Vec<Option<PartOutcome>>,
}

impl PartGroup {
    /// A group of `parts` parts.
    pub fn new(message: QueuedMessage, parts: usize) -> Self {
        Self {
            message: Some(message),
            outcomes: vec![None; parts.max(1)],
        }
    }

    /// Once every part has its outcome: the message and the attempt's
    /// outcome, moved out (no copy). `None` before that, and on any later
    /// call, so an attempt is reported once.
    pub fn finish(
        &mut self,
        classify: impl Fn(u32) -> ErrorClass,
    ) -> Option<(QueuedMessage, GroupOutcome)> {
        if !self.outcomes.iter().all(Option::is_some) {
            return None;
        }
        let message = self.message.take()?;
        Some((message, self.outcome(classify)))
    }

    /// Records a part's outcome; true when every part has one.
    pub fn record(&mut self, part: usize, outcome: PartOutcome) -> bool {
        if let Some(slot) = self.outcomes.get_mut(part) {
            slot.get_or_insert(outcome);
        }
        self.outcomes.iter().all(Option::is_some)
    }

    /// The attempt's outcome (call once complete): the SMSC ids are moved
    /// out of the parts' outcomes.
    fn outcome(&mut self, classify: impl Fn(u32) -> ErrorClass) -> GroupOutcome {
        let accepted = |o: &Option<PartOutcome>| {
            matches!(o, Some(PartOutcome::Sent(SubmitOutcome::Accepted(_))))
        };
        if self.outcomes.iter().all(accepted) {
            let ids = self
                .outcomes
                .iter_mut()
                .filter_map(|o| match o {
                    Some(PartOutcome::Sent(SubmitOutcome::Accepted(id))) => {
                        Some(std::mem::take(id))
                    }
                    _ => None,
                })
                .collect();
            return GroupOutcome::Accepted(ids);
        }
        let outcomes: Vec<&PartOutcome> = self.outcomes.iter().flatten().collect();
        let sent = outcomes.iter().any(|o| matches!(o, PartOutcome::Sent(_)));
        if !sent {
            return if outcomes.iter().any(|o| **o == PartOutcome::WaitExpired) {
                GroupOutcome::WaitExpired
            } else {
                GroupOutcome::NotSent
            };
        }
        let rank = |code: u32| match classify(code) {
            ErrorClass::Permanent => 3,
            ErrorClass::Temporary => 2,
            ErrorClass::Throttled => 1,
            ErrorClass::Ok => 0,
        };
        outcomes
            .iter()
            .filter_map(|o| match o {
                PartOutcome::Sent(SubmitOutcome::Refused(code)) => Some(*code),
                _ => None,
            })
            .max_by_key(|code| rank(*code))
            .map_or(GroupOutcome::Unknown, GroupOutcome::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::status;
    use smppd_sqlite::{MessageId, Priority};

    fn group(parts: usize) -> PartGroup {
        PartGroup::new(
            QueuedMessage {
                id: MessageId(1),
                source: "a".into(),
                destination: "b".into(),
                text: "t".into(),
                attempts: 0,
                parts: parts as u32,
                data_coding: None,
                priority: Priority::Normal,
                validity_until_ms: None,
                send_at_ms: None,
            },
            parts,
        )
    }

    fn accepted(id: &str) -> PartOutcome {
        PartOutcome::Sent(SubmitOutcome::Accepted(id.into()))
    }

    #[test]
    fn every_part_accepted_gives_their_ids_in_order() {
        let mut g = group(3);
        assert!(!g.record(2, accepted("c")));
        assert!(!g.record(0, accepted("a")));
        assert!(g.record(1, accepted("b")));
        assert_eq!(
            g.outcome(status::classify),
            GroupOutcome::Accepted(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn an_attempt_finishes_once_every_part_is_in_and_only_once() {
        let mut g = group(2);
        g.record(1, accepted("b"));
        assert_eq!(g.finish(status::classify), None, "a part is missing");
        g.record(0, accepted("a"));
        let (message, outcome) = g.finish(status::classify).unwrap();
        assert_eq!(message.id, MessageId(1));
        assert_eq!(
            outcome,
            GroupOutcome::Accepted(vec!["a".into(), "b".into()])
        );
        g.record(0, PartOutcome::Sent(SubmitOutcome::Unknown));
        assert_eq!(
            g.finish(status::classify),
            None,
            "a late outcome reports nothing twice"
        );
    }

    #[test]
    fn the_worst_refusal_wins() {
        let mut g = group(3);
        g.record(
            0,
            PartOutcome::Sent(SubmitOutcome::Refused(status::ESME_RTHROTTLED)),
        );
        g.record(
            1,
            PartOutcome::Sent(SubmitOutcome::Refused(status::ESME_RINVDSTADR)),
        );
        g.record(2, accepted("c"));
        assert_eq!(
            g.outcome(status::classify),
            GroupOutcome::Refused(status::ESME_RINVDSTADR)
        );
    }

    #[test]
    fn a_part_sent_without_an_answer_makes_the_outcome_unknown() {
        let mut g = group(2);
        g.record(0, accepted("a"));
        g.record(1, PartOutcome::Sent(SubmitOutcome::Unknown));
        assert_eq!(g.outcome(status::classify), GroupOutcome::Unknown);
        let mut g = group(2);
        g.record(0, accepted("a"));
        g.record(1, PartOutcome::NotSent);
        assert_eq!(
            g.outcome(status::classify),
            GroupOutcome::Unknown,
            "part of it went out"
        );
    }

    #[test]
    fn nothing_sent_is_not_an_attempt() {
        let mut g = group(2);
        g.record(0, PartOutcome::NotSent);
        g.record(1, PartOutcome::WaitExpired);
        assert_eq!(g.outcome(status::classify), GroupOutcome::WaitExpired);
        let mut g = group(1);
        g.record(0, PartOutcome::NotSent);
        assert_eq!(g.outcome(status::classify), GroupOutcome::NotSent);
    }

    #[test]
    fn a_second_outcome_for_a_part_is_ignored() {
        let mut g = group(1);
        g.record(0, accepted("a"));
        g.record(0, PartOutcome::Sent(SubmitOutcome::Unknown));
        assert_eq!(
            g.outcome(status::classify),
            GroupOutcome::Accepted(vec!["a".into()])
        );
    }
}
