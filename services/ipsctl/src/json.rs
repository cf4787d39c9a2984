//! What `--json` prints: one object per read, with field names of its own rather than the
//! protobuf messages serialised as they are, so that scripts keep working when the wire messages
//! grow or are renamed. Enumerations are lower-case words (`municipality`, `accepted`), times
//! are RFC 3339 strings as the services give them, and an absent value is an empty string or 0
//! as on the wire. Adding a field is a compatible change; renaming or removing one is not.

use proto::v1;
use serde::Serialize;

/// The lower-case word of a protobuf enumeration value (`AGENCY_MUNICIPALITY` → `municipality`),
/// or `unknown` for a number this client does not know.
fn enumeration_word(name: Option<&str>, prefix: &str) -> String {
    name.map_or_else(
        || "unknown".to_owned(),
        |name| name.trim_start_matches(prefix).to_ascii_lowercase(),
    )
}

fn agency(value: i32) -> String {
    enumeration_word(
        v1::Agency::try_from(value)
            .ok()
            .map(|agency| agency.as_str_name()),
        "AGENCY_",
    )
}

/// Who acted or read.
#[derive(Clone, Debug, Serialize)]
pub struct Officer {
    /// Person pseudo-id.
    pub person_id: String,
    /// Role token.
    pub role: String,
    /// Unit.
    pub unit: String,
}

impl From<Option<&v1::Actor>> for Officer {
    fn from(actor: Option<&v1::Actor>) -> Self {
        let actor = actor.cloned().unwrap_or_default();
        Self {
            person_id: actor.person_id,
            role: actor.role,
            unit: actor.unit,
        }
    }
}

/// `ipsctl timeline --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// Whose timeline.
    pub participant_id: String,
    /// The entries this reader may see, in sequence order.
    pub entries: Vec<TimelineEntry>,
    /// Sequences below the last shown that this reader may not see (no consent in force for
    /// another agency's events).
    pub not_shown_sequences: Vec<u64>,
    /// True when the timeline has more entries than this page.
    pub more: bool,
    /// 0 while the stored hash chain verifies; otherwise its first bad entry.
    pub chain_broken_at_sequence: u64,
    /// Why that entry does not verify; empty when intact.
    pub chain_broken_reason: String,
}

/// One timeline entry.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    /// The participant's own sequence number, from 1.
    pub sequence: u64,
    /// The event id.
    pub event_id: String,
    /// The body's type, e.g. `ParticipantEnrolled`; `SubmissionRejected` for a refusal.
    pub event_type: String,
    /// The agency that recorded it.
    pub agency: String,
    /// Who did it.
    pub actor: Officer,
    /// When it happened (RFC 3339).
    pub occurred_at: String,
    /// When the ledger recorded it (RFC 3339).
    pub recorded_at: String,
    /// The data category, e.g. `participation`.
    pub data_category: String,
    /// The broken rule when the submission was refused; empty when accepted.
    pub rejected_rule: String,
    /// The event body (the JSON the ledger stored).
    pub body: serde_json::Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl From<&v1::TimelineEntry> for TimelineEntry {
    fn from(entry: &v1::TimelineEntry) -> Self {
        Self {
            sequence: entry.sequence,
            event_id: entry.event_id.clone(),
            event_type: entry.event_type.clone(),
            agency: agency(entry.agency),
            actor: Officer::from(entry.actor.as_ref()),
            occurred_at: entry.occurred_at.clone(),
            recorded_at: entry.recorded_at.clone(),
            data_category: enumeration_word(
                v1::DataCategory::try_from(entry.data_category)
                    .ok()
                    .map(|category| category.as_str_name()),
                "DATA_CATEGORY_",
            ),
            rejected_rule: entry.rejected_rule.clone(),
            // A body that is not JSON (it always is) is kept as the string it came as.
            body: serde_json::from_str(&entry.body_json)
                .unwrap_or_else(|_| serde_json::Value::String(entry.body_json.clone())),
            prev_hash: entry.prev_hash.clone(),
            hash: entry.hash.clone(),
        }
    }
}

impl From<&v1::GetTimelineResponse> for Timeline {
    fn from(response: &v1::GetTimelineResponse) -> Self {
        let mut not_shown_sequences = Vec::new();
        let mut expected = 1;
        for entry in &response.entries {
            not_shown_sequences.extend(expected..entry.sequence);
            expected = entry.sequence + 1;
        }
        Self {
            participant_id: response.participant_id.clone(),
            entries: response.entries.iter().map(TimelineEntry::from).collect(),
            not_shown_sequences,
            more: !response.next_page_token.is_empty(),
            chain_broken_at_sequence: response.chain_broken_at_sequence,
            chain_broken_reason: response.chain_broken_reason.clone(),
        }
    }
}

/// `ipsctl verify --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// Whose chain.
    pub participant_id: String,
    /// True when every entry verifies.
    pub intact: bool,
    /// Entries verified (before the first bad one, when broken).
    pub verified_entries: u64,
    /// The last entry's hash.
    pub head_hash: String,
    /// The first bad entry's sequence; 0 when intact.
    pub first_broken_sequence: u64,
    /// Why it does not verify; empty when intact.
    pub first_broken_reason: String,
}

impl From<&v1::VerifyChainResponse> for Verification {
    fn from(result: &v1::VerifyChainResponse) -> Self {
        Self {
            participant_id: result.participant_id.clone(),
            intact: result.intact,
            verified_entries: result.verified_entries,
            head_hash: result.head_hash.clone(),
            first_broken_sequence: result.first_broken_sequence,
            first_broken_reason: result.first_broken_reason.clone(),
        }
    }
}

/// `ipsctl status --json`.
#[derive(Clone, Debug, Serialize)]
pub struct EventStatus {
    /// The event asked about.
    pub event_id: String,
    /// `unknown` (not recorded yet, or never received), `accepted` or `rejected`.
    pub status: String,
    /// Whose event; empty when unknown.
    pub participant_id: String,
    /// Its sequence in the participant's timeline; 0 when unknown.
    pub sequence: u64,
    /// Its hash; empty when unknown.
    pub hash: String,
    /// The broken rule, when rejected.
    pub rejected_rule: String,
    /// Why, when rejected.
    pub rejected_reason: String,
}

impl From<&v1::GetEventStatusResponse> for EventStatus {
    fn from(status: &v1::GetEventStatusResponse) -> Self {
        Self {
            event_id: status.event_id.clone(),
            status: enumeration_word(
                v1::EventStatus::try_from(status.status)
                    .ok()
                    .map(|status| status.as_str_name()),
                "EVENT_STATUS_",
            ),
            participant_id: status.participant_id.clone(),
            sequence: status.sequence,
            hash: status.hash.clone(),
            rejected_rule: status.rejected_rule.clone(),
            rejected_reason: status.rejected_reason.clone(),
        }
    }
}

/// `ipsctl caseload --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Caseload {
    /// The unit.
    pub unit: String,
    /// Each coach's active participants.
    pub coaches: Vec<CoachLoad>,
    /// The active participants.
    pub active: Vec<CaseloadParticipant>,
    /// Who waits for a place, longest first.
    pub waiting_list: Vec<Waiting>,
    /// Follow-ups due within the horizon, overdue ones included.
    pub follow_ups_due: Vec<CaseloadParticipant>,
}

/// One coach's load.
#[derive(Clone, Debug, Serialize)]
pub struct CoachLoad {
    /// The coach's person pseudo-id.
    pub coach_person_id: String,
    /// Their active participants.
    pub active_participants: u32,
}

/// A participant on the board.
#[derive(Clone, Debug, Serialize)]
pub struct CaseloadParticipant {
    /// The participant.
    pub participant_id: String,
    /// Their coach.
    pub coach_person_id: String,
    /// Where they are (e.g. `enrolled`).
    pub lifecycle: String,
    /// When they were enrolled (RFC 3339).
    pub enrolled_at: String,
    /// Their last follow-up (RFC 3339), empty if none.
    pub last_follow_up_at: String,
    /// When the next follow-up is due (YYYY-MM-DD).
    pub follow_up_due_on: String,
}

impl From<&v1::CaseloadParticipant> for CaseloadParticipant {
    fn from(participant: &v1::CaseloadParticipant) -> Self {
        Self {
            participant_id: participant.participant_id.clone(),
            coach_person_id: participant.coach_person_id.clone(),
            lifecycle: participant.lifecycle.clone(),
            enrolled_at: participant.enrolled_at.clone(),
            last_follow_up_at: participant.last_follow_up_at.clone(),
            follow_up_due_on: participant.follow_up_due_on.clone(),
        }
    }
}

/// A participant on the waiting list.
#[derive(Clone, Debug, Serialize)]
pub struct Waiting {
    /// The participant.
    pub participant_id: String,
    /// Since when (RFC 3339).
    pub waiting_since: String,
    /// The coach a place was offered with; empty if none yet.
    pub offered_coach_person_id: String,
}

impl From<&v1::GetCaseloadResponse> for Caseload {
    fn from(board: &v1::GetCaseloadResponse) -> Self {
        Self {
            unit: board.unit.clone(),
            coaches: board
                .coaches
                .iter()
                .map(|coach| CoachLoad {
                    coach_person_id: coach.coach_person_id.clone(),
                    active_participants: coach.active_participants,
                })
                .collect(),
            active: board.active.iter().map(CaseloadParticipant::from).collect(),
            waiting_list: board
                .waiting_list
                .iter()
                .map(|waiting| Waiting {
                    participant_id: waiting.participant_id.clone(),
                    waiting_since: waiting.waiting_since.clone(),
                    offered_coach_person_id: waiting.offered_coach_person_id.clone(),
                })
                .collect(),
            follow_ups_due: board
                .follow_ups_due
                .iter()
                .map(CaseloadParticipant::from)
                .collect(),
        }
    }
}

/// `ipsctl access-log --json`.
#[derive(Clone, Debug, Serialize)]
pub struct AccessLogExtract {
    /// Whose data was read.
    pub participant_id: String,
    /// The reads, oldest first.
    pub entries: Vec<AccessLogEntry>,
    /// True when the extract has more entries than this page.
    pub more: bool,
}

/// One read of the participant's data.
#[derive(Clone, Debug, Serialize)]
pub struct AccessLogEntry {
    /// Position in the whole log.
    pub position: u64,
    /// When (RFC 3339).
    pub read_at: String,
    /// Who read.
    pub reader: Officer,
    /// The reader's agency.
    pub reader_agency: String,
    /// The RPC that read, e.g. `ips.v1.TimelineService/GetTimeline`.
    pub action: String,
    /// Why the reader could see it: `own_agency`, `consent:<id>`, `audit`, ...
    pub basis: String,
}

impl From<&v1::GetAccessLogExtractResponse> for AccessLogExtract {
    fn from(extract: &v1::GetAccessLogExtractResponse) -> Self {
        Self {
            participant_id: extract.participant_id.clone(),
            entries: extract
                .entries
                .iter()
                .map(|entry| AccessLogEntry {
                    position: entry.position,
                    read_at: entry.read_at.clone(),
                    reader: Officer::from(entry.reader.as_ref()),
                    reader_agency: agency(entry.reader_agency),
                    action: entry.action.clone(),
                    basis: entry.basis.clone(),
                })
                .collect(),
            more: !extract.next_page_token.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_and_words_are_the_documented_ones() {
        let response = v1::GetTimelineResponse {
            participant_id: "p-1".into(),
            entries: vec![
                v1::TimelineEntry {
                    sequence: 1,
                    agency: v1::Agency::Forsakringskassan as i32,
                    data_category: v1::DataCategory::BenefitDecisions as i32,
                    body_json: r#"{"decision":"approved"}"#.into(),
                    ..Default::default()
                },
                v1::TimelineEntry {
                    sequence: 4,
                    agency: 99,
                    body_json: "not json".into(),
                    ..Default::default()
                },
            ],
            next_page_token: "next".into(),
            ..Default::default()
        };
        let value = serde_json::to_value(Timeline::from(&response)).expect("serialises");
        assert_eq!(value["participant_id"], "p-1");
        assert_eq!(value["not_shown_sequences"], serde_json::json!([2, 3]));
        assert_eq!(value["more"], true);
        assert_eq!(value["entries"][0]["agency"], "forsakringskassan");
        assert_eq!(value["entries"][0]["data_category"], "benefit_decisions");
        assert_eq!(value["entries"][0]["body"]["decision"], "approved");
        assert_eq!(value["entries"][1]["agency"], "unknown");
        assert_eq!(value["entries"][1]["body"], "not json");

        let status = v1::GetEventStatusResponse {
            status: v1::EventStatus::Rejected as i32,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(EventStatus::from(&status)).expect("serialises")["status"],
            "rejected"
        );
    }
}
