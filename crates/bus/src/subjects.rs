//! The subject scheme, in one place.
//!
//! - Events: `<prefix>.<agency>.<participant_id>`. The agency token is the publisher's; NATS
//!   permissions (issue 5) let each agency publish only under its own token, and the ledger
//!   checks that the envelope names the same agency as the subject.
//! - Verdicts: `<prefix>.verdict.<agency>.<event_id>` (core NATS, not stored), the agency being
//!   the event's publisher: NATS permissions let each agency subscribe only to its own.
//! - Status look-ups: `<prefix>.ledger.status.<agency>` (core NATS request/reply): an agency may
//!   ask only on its own subject, and the ledger answers there only about that agency's events.
//! - Replies (JetStream PubAcks, status answers) go to the agency's own inbox prefix
//!   `_INBOX.<agency>`, so no agency can listen to another's replies. It is not under the
//!   subject prefix: NATS permissions name it, and `_INBOX` is where replies live by convention.
//!
//! - Stored events: the stream's subject transform rewrites `<prefix>.<agency>.<participant_id>`
//!   to `<prefix>.<partition>.<agency>.<participant_id>`, the partition being
//!   `partition(N, participant_id)` (the server's hash of the participant token alone, so every
//!   agency's events about one participant land in one partition). Each partition's consumer
//!   filters `<prefix>.<partition>.*.*`. Publishers never see the stored form.
//!
//! `verdict` and `ledger` are not agency tokens, so the event stream never captures them.

use domain::{Agency, EventId, ParticipantId};

/// Builds and parses subjects under one prefix.
#[derive(Clone, Debug)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (e.g. `ips.v1`, or a unique one per test).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Where an agency publishes an event about a participant.
    pub fn event(&self, agency: Agency, participant_id: ParticipantId) -> String {
        format!("{}.{}.{}", self.prefix, agency.token(), participant_id)
    }

    /// Everything an agency may publish to (the stream's subjects, and the NATS permission).
    pub fn agency_wildcard(&self, agency: Agency) -> String {
        format!("{}.{}.*", self.prefix, agency.token())
    }

    /// Every agency's stored events about one participant (for reading them back in stream
    /// order), whatever its partition.
    pub fn participant_wildcard(&self, participant_id: ParticipantId) -> String {
        format!("{}.*.*.{}", self.prefix, participant_id)
    }

    /// The stream's subject transform: what it captures and what it stores, with the partition
    /// computed from the participant token only (wildcard 2).
    pub fn partition_transform(&self, partitions: u32) -> (String, String) {
        (
            format!("{}.*.*", self.prefix),
            format!(
                "{}.{{{{partition({partitions},2)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}",
                self.prefix
            ),
        )
    }

    /// The stored events of one partition (its consumer's filter).
    pub fn partition_filter(&self, partition: u32) -> String {
        format!("{}.{partition}.*.*", self.prefix)
    }

    /// Reads partition, agency and participant id back from a stored event subject.
    pub fn parse_stored_event(&self, subject: &str) -> Option<(u32, Agency, ParticipantId)> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        let (partition_token, published) = rest.split_once('.')?;
        let partition = partition_token.parse().ok()?;
        let (agency, participant_id) = self.parse_event(&format!("{}.{published}", self.prefix))?;
        Some((partition, agency, participant_id))
    }

    /// The stream captures every agency's events and nothing else.
    pub fn stream_subjects(&self) -> Vec<String> {
        Agency::ALL
            .into_iter()
            .map(|agency| self.agency_wildcard(agency))
            .collect()
    }

    /// Reads the agency and participant id back from an event subject.
    pub fn parse_event(&self, subject: &str) -> Option<(Agency, ParticipantId)> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        let (agency_token, participant_token) = rest.split_once('.')?;
        let agency = Agency::from_token(agency_token)?;
        let participant_id = ParticipantId::parse(participant_token).ok()?;
        Some((agency, participant_id))
    }

    /// Where the ledgers reading through the consumers named `consumer_name` announce that they
    /// are live (and say goodbye), to share the partitions. Outside the stream's subjects.
    pub fn ledger_presence(&self, consumer_name: &str) -> String {
        format!("{}.ledger.presence.{consumer_name}", self.prefix)
    }

    /// Where the ledger announces its verdict on one event that `agency` published.
    pub fn verdict(&self, agency: Agency, event_id: EventId) -> String {
        format!("{}.verdict.{}.{}", self.prefix, agency.token(), event_id)
    }

    /// Where `agency` asks the ledger about its own events.
    pub fn status_requests(&self, agency: Agency) -> String {
        format!("{}.ledger.status.{}", self.prefix, agency.token())
    }

    /// Every agency's status subject, where the ledger listens.
    pub fn status_requests_of_every_agency(&self) -> String {
        format!("{}.ledger.status.*", self.prefix)
    }

    /// The agency a status request came from, read from its subject.
    pub fn parse_status_request(&self, subject: &str) -> Option<Agency> {
        let token = subject
            .strip_prefix(&self.prefix)?
            .strip_prefix(".ledger.status.")?;
        Agency::from_token(token)
    }

    /// The inbox prefix of `agency`'s connection: replies to it arrive only there.
    pub fn inbox_prefix(&self, agency: Agency) -> String {
        format!("_INBOX.{}", agency.token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_subject_round_trips_and_foreign_subjects_do_not_parse() {
        let subjects = Subjects::new("t1.ips.v1");
        let Ok(participant_id) = ParticipantId::parse("0193a1b2-0000-4000-8000-000000000007")
        else {
            panic!("a valid id")
        };
        let subject = subjects.event(Agency::Forsakringskassan, participant_id);
        assert_eq!(subject, format!("t1.ips.v1.fk.{participant_id}"));
        assert_eq!(
            subjects.parse_event(&subject),
            Some((Agency::Forsakringskassan, participant_id))
        );
        assert_eq!(
            subjects.parse_event(&format!("t1.ips.v1.police.{participant_id}")),
            None
        );
        assert_eq!(
            subjects.parse_event(&format!("t2.ips.v1.fk.{participant_id}")),
            None
        );
        assert_eq!(subjects.parse_event("t1.ips.v1.fk.not-a-uuid"), None);
        assert_eq!(
            subjects.parse_stored_event(&format!("t1.ips.v1.3.fk.{participant_id}")),
            Some((3, Agency::Forsakringskassan, participant_id))
        );
        assert_eq!(subjects.parse_stored_event(&subject), None);
        assert_eq!(subjects.partition_filter(3), "t1.ips.v1.3.*.*".to_owned());
    }
}
