//! `AuditService.ReconstructRead` (issue 11): what a logged read returned, rebuilt from the
//! events, the reader's identity (as the access log names them) and what the access log kept
//! about the read: its request, the business date it judged on, and where the event store and
//! the read model stood for each participant it returned (`store::access_log::ReadRecord`).
//!
//! The rebuild runs the read path's own code on the rebuilt inputs: the timeline's rows are the
//! projector's mapping of the events (`TimelineRow::from_event`) up to the read model's head
//! then; the green-light rows are the projector's (`store::green_light::gate_rows`) of the
//! participant folded through the entry the read model had folded; consents, allow-list and
//! units are the aggregate folded through the head the read folded. Then the same page and
//! visibility functions as the live read (`TimelinePageScan`, `pending_page`, `lights`) decide.
//! What is not in the events is taken from the log: a pending page's continuation token (the
//! page's other rows may belong to participants the reader was not shown, whose positions are
//! not logged) and which activities a watch pushed in that evaluation (a push is a difference
//! from the previous one).

use std::collections::{BTreeMap, HashMap};

use domain::{Participant, ParticipantEvent, ParticipantId, Reader};
use proto::v1;
use rpc::errors;
use sqlx::PgPool;
use tonic::Status;

use crate::green_light_service::{PendingRequestRecord, WatchRequestRecord};
use crate::timeline_service::TimelineRequestRecord;

/// A rebuilt read, and every participant it returned.
pub struct Reconstructed {
    /// The answer.
    pub response: v1::ReconstructReadResponse,
    /// The participants whose data the answer holds (each is logged as an audit).
    pub participant_ids: Vec<uuid::Uuid>,
}

fn not_reconstructible(reason: &str) -> Status {
    errors::read_not_reconstructible(reason)
}

fn unreadable_record(what: &str, error: impl std::fmt::Display) -> Status {
    not_reconstructible(&format!("the access log's {what} does not decode: {error}"))
}

/// The reader as the access log names them.
fn logged_reader(entry: &store::access_log::AccessEntry) -> Result<Reader, Status> {
    let agency = domain::Agency::from_token(&entry.reader_agency)
        .ok_or_else(|| not_reconstructible("the reader's agency is unknown to this build"))?;
    let role = domain::Role::from_token(&entry.reader_role)
        .ok_or_else(|| not_reconstructible("the reader's role is unknown to this build"))?;
    Ok(Reader {
        agency,
        actor: domain::Actor {
            person_id: domain::PersonId(entry.reader_person_id.clone()),
            role,
            unit: domain::UnitId(entry.reader_unit.clone()),
        },
    })
}

/// One participant of the read, with the folds the read stood on.
struct ParticipantAtRead {
    participant_id: ParticipantId,
    /// The events up to the later of the two heads.
    history: Vec<ParticipantEvent>,
    /// Folded through the head the read folded (consents, allow-list, units).
    as_read: Participant,
    /// Folded through the entry the read model had folded.
    as_projected: Participant,
    read: store::access_log::ReadRecord,
}

fn fold_through(history: &[ParticipantEvent], through_sequence: u64) -> Participant {
    let mut participant = Participant::default();
    for event in history
        .iter()
        .take_while(|event| event.sequence <= through_sequence)
    {
        participant.apply_kept(event);
    }
    participant
}

async fn participant_at_read(
    pool: &PgPool,
    entry: &store::access_log::LoggedAccess,
) -> Result<ParticipantAtRead, Status> {
    let read = entry
        .entry
        .read
        .clone()
        .ok_or_else(|| not_reconstructible("one of the read's entries kept nothing"))?;
    let participant_id = ParticipantId(entry.entry.participant_id);
    let history_sequence = read.history_sequence.unwrap_or(0);
    let read_model_sequence = read.read_model_sequence.unwrap_or(0);
    let history = store::events::history_through(
        pool,
        participant_id,
        history_sequence.max(read_model_sequence),
    )
    .await
    .map_err(|error| crate::store_errors::from_store(&error))?;
    Ok(ParticipantAtRead {
        participant_id,
        as_read: fold_through(&history, history_sequence),
        as_projected: fold_through(&history, read_model_sequence),
        history,
        read,
    })
}

/// Rebuilds the read logged at `position`.
pub async fn reconstruct(
    pool: &PgPool,
    config: &crate::config::AuditConfig,
    position: i64,
) -> Result<Reconstructed, Status> {
    let logged = store::access_log::entry(pool, position)
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?
        .ok_or_else(|| errors::access_log_entry_not_found(position.unsigned_abs()))?;
    let read = logged.entry.read.clone().ok_or_else(|| {
        not_reconstructible(&format!(
            "the access log kept only who read and why for {} (written before issue 11, or a read path that keeps no context)",
            logged.entry.action
        ))
    })?;
    let reader = logged_reader(&logged.entry)?;
    let siblings = store::access_log::read_entries(
        pool,
        read.read_id,
        config.reconstruct_participants_max + 1,
    )
    .await
    .map_err(|error| crate::store_errors::from_store(&error))?;
    if siblings.len() as i64 > config.reconstruct_participants_max {
        return Err(errors::audit_too_large(
            "audit.reconstruct_participants_max",
        ));
    }
    let mut participants = Vec::with_capacity(siblings.len());
    for sibling in &siblings {
        participants.push(participant_at_read(pool, sibling).await?);
    }
    let rebuilt = match logged.entry.action.as_str() {
        crate::timeline_service::GET_TIMELINE => {
            let participant = participants
                .iter()
                .find(|participant| participant.participant_id.0 == logged.entry.participant_id)
                .ok_or_else(|| not_reconstructible("the read's entry is missing"))?;
            v1::reconstruct_read_response::Read::Timeline(
                timeline(pool, &reader, participant).await?,
            )
        }
        crate::green_light_service::PENDING_APPROVALS => {
            v1::reconstruct_read_response::Read::PendingApprovals(pending_approvals(
                &reader,
                &read,
                &participants,
            )?)
        }
        crate::green_light_service::WATCH_GREEN_LIGHT => {
            v1::reconstruct_read_response::Read::GreenLightPush(green_light_push(
                &reader,
                &read,
                &participants,
            )?)
        }
        other => {
            return Err(not_reconstructible(&format!(
            "{other} reads are not rebuilt (GetTimeline, PendingApprovals and WatchGreenLight are)"
        )))
        }
    };
    let participant_ids: Vec<uuid::Uuid> = siblings
        .iter()
        .map(|sibling| sibling.entry.participant_id)
        .collect();
    Ok(Reconstructed {
        response: v1::ReconstructReadResponse {
            entry: Some(crate::audit_service::access_log_entry(logged.clone())),
            request_json: domain::chain::canonical_json(&read.request),
            business_date: read.business_date.to_string(),
            history_sequence: read.history_sequence.unwrap_or(0),
            read_model_sequence: read.read_model_sequence.unwrap_or(0),
            projector_checkpoint: read
                .projector_checkpoint
                .and_then(|position| u64::try_from(position).ok())
                .unwrap_or(0),
            participant_ids: participant_ids.iter().map(ToString::to_string).collect(),
            read: Some(rebuilt),
        },
        participant_ids,
    })
}

/// A `GetTimeline` page: the projector's rows of the events up to the read model's head then,
/// through the same page function as the live read.
async fn timeline(
    pool: &PgPool,
    reader: &Reader,
    participant: &ParticipantAtRead,
) -> Result<v1::GetTimelineResponse, Status> {
    let request: TimelineRequestRecord = serde_json::from_value(participant.read.request.clone())
        .map_err(|error| unreadable_record("request", error))?;
    let filter = request.filter();
    let read_model_sequence = participant.read.read_model_sequence.unwrap_or(0);
    let rows = participant
        .history
        .iter()
        .filter(|event| event.sequence > request.after_sequence)
        .take_while(|event| event.sequence <= read_model_sequence)
        .map(store::TimelineRow::from_event)
        .filter(|row| row.as_ref().map_or(true, |row| filter.matches(row)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| crate::store_errors::from_store(&error))?;
    let chain_checked_through = participant
        .read
        .shown
        .as_ref()
        .and_then(|shown| shown.get("chain_checked_through"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let chain = store::events::verify_chain_through(
        pool,
        participant.participant_id,
        chain_checked_through,
    )
    .await
    .map_err(|error| crate::store_errors::from_store(&error))?;
    let mut scan = crate::timeline_service::TimelinePageScan::new(
        &participant.as_read,
        reader,
        participant.read.business_date,
        crate::timeline_service::PageAsked {
            page_size: request.page_size,
            event_types: &request.event_types,
        },
    );
    scan.take(rows)?;
    Ok(scan.finish(participant.participant_id, &chain).0)
}

/// A `PendingApprovals` page: every shown participant's rows (the projector's, of the fold the
/// read model held) between the page's start and the token it handed out, through the same
/// page function as the live read.
fn pending_approvals(
    reader: &Reader,
    read: &store::access_log::ReadRecord,
    participants: &[ParticipantAtRead],
) -> Result<v1::PendingApprovalsResponse, Status> {
    let request: PendingRequestRecord = serde_json::from_value(read.request.clone())
        .map_err(|error| unreadable_record("request", error))?;
    let after = crate::green_light_view::parse_page_token(&request.after)?;
    let next_page_token = read
        .shown
        .as_ref()
        .and_then(|shown| shown.get("next_page_token"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let until = crate::green_light_view::parse_page_token(&next_page_token)?;
    let ends_by = crate::green_light_view::running_approvals_ending_by(read.business_date);
    let mut rows: Vec<store::green_light::GateRow> = participants
        .iter()
        .flat_map(|participant| {
            store::green_light::gate_rows(participant.participant_id, &participant.as_projected)
        })
        .filter(|row| row.is_pending_for(&request.agency, request.unit.as_deref(), ends_by))
        .filter(|row| {
            let key = row.pending_order();
            let after_start = after
                .as_ref()
                .is_none_or(|(day, participant, activity, gate)| {
                    key > (*day, *participant, *activity, gate.as_str())
                });
            let before_end = until
                .as_ref()
                .is_none_or(|(day, participant, activity, gate)| {
                    key <= (*day, *participant, *activity, gate.as_str())
                });
            after_start && before_end
        })
        .collect();
    rows.sort_by(|left, right| left.pending_order().cmp(&right.pending_order()));
    let openable: HashMap<uuid::Uuid, Participant> = participants
        .iter()
        .map(|participant| (participant.participant_id.0, participant.as_read.clone()))
        .collect();
    let mut page = crate::green_light_view::pending_page(
        rows,
        request.page_size,
        read.business_date,
        reader,
        &openable,
    );
    // The rows after the last shown one that filled the page may be other participants' (not
    // shown, not logged): the token the read handed out is the log's.
    page.response.next_page_token = next_page_token;
    // Social services' first page: the SIPs the log says were shown, as the live read
    // computed them from the same folds.
    let shown_sips: HashMap<uuid::Uuid, Participant> = participants
        .iter()
        .filter(|participant| logged_sip(&participant.read))
        .map(|participant| (participant.participant_id.0, participant.as_read.clone()))
        .collect();
    crate::green_light_service::social_services_sips(
        &mut page,
        reader,
        &shown_sips,
        read.business_date,
    );
    Ok(page.response)
}

/// Whether the access log says a participant's SIP was shown on a pending-approvals page.
fn logged_sip(read: &store::access_log::ReadRecord) -> bool {
    read.shown
        .as_ref()
        .and_then(|shown| shown.get("sip"))
        .and_then(serde_json::Value::as_bool)
        == Some(true)
}

/// The updates one `WatchGreenLight` evaluation pushed: for each activity the log says was
/// pushed, its light as the live board computed it (the projector's rows of the fold the read
/// model held, through `lights`), or its removal.
fn green_light_push(
    reader: &Reader,
    read: &store::access_log::ReadRecord,
    participants: &[ParticipantAtRead],
) -> Result<v1::GreenLightPush, Status> {
    let request: WatchRequestRecord = serde_json::from_value(read.request.clone())
        .map_err(|error| unreadable_record("request", error))?;
    let ends_by = crate::green_light_view::running_approvals_ending_by(read.business_date);
    let rows: Vec<store::green_light::GateRow> = participants
        .iter()
        .flat_map(|participant| {
            store::green_light::gate_rows(participant.participant_id, &participant.as_projected)
        })
        .filter(|row| row.is_on_board(ends_by))
        .filter(|row| {
            request
                .coach_person_id
                .as_ref()
                .is_none_or(|coach| row.coach.as_ref() == Some(coach))
        })
        .collect();
    let folded: HashMap<uuid::Uuid, &Participant> = participants
        .iter()
        .map(|participant| (participant.participant_id.0, &participant.as_read))
        .collect();
    let current = crate::green_light_view::lights(&rows, read.business_date, reader, &folded);
    let mut removed = BTreeMap::new();
    let mut changed = BTreeMap::new();
    let mut removed_sips = BTreeMap::new();
    let mut changed_sips = BTreeMap::new();
    for participant in participants {
        let shown = participant
            .read
            .shown
            .as_ref()
            .ok_or_else(|| not_reconstructible("a push kept no list of what it pushed"))?;
        let initial = shown
            .get("initial")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        for update in shown
            .get("updates")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if update.get("sip").and_then(serde_json::Value::as_bool) == Some(true) {
                let participant_id = participant.participant_id.0;
                if update.get("removed").and_then(serde_json::Value::as_bool) == Some(true) {
                    removed_sips.insert(
                        participant_id,
                        crate::green_light_view::sip_removal(participant_id),
                    );
                } else {
                    let (sip, _) = crate::green_light_view::sip_due(
                        participant_id,
                        &participant.as_read,
                        reader,
                        read.business_date,
                        crate::green_light_view::SipCoach::Named,
                    )
                    .ok_or_else(|| {
                        not_reconstructible(&format!(
                            "the SIP of {participant_id} was pushed but is not shown in the rebuild"
                        ))
                    })?;
                    changed_sips.insert(
                        participant_id,
                        v1::GreenLightUpdate {
                            activity: None,
                            initial,
                            removed: false,
                            sip: Some(sip),
                        },
                    );
                }
                continue;
            }
            let activity_id = update
                .get("activity_id")
                .and_then(serde_json::Value::as_str)
                .and_then(|text| uuid::Uuid::parse_str(text).ok())
                .ok_or_else(|| not_reconstructible("a pushed activity id does not decode"))?;
            let key = (participant.participant_id.0, activity_id);
            if update.get("removed").and_then(serde_json::Value::as_bool) == Some(true) {
                removed.insert(key, crate::green_light_view::removal(key));
            } else {
                let light = current.get(&key).cloned().ok_or_else(|| {
                    not_reconstructible(&format!(
                        "activity {activity_id} was pushed but is not on the rebuilt board"
                    ))
                })?;
                changed.insert(
                    key,
                    v1::GreenLightUpdate {
                        activity: Some(light),
                        initial,
                        removed: false,
                        sip: None,
                    },
                );
            }
        }
    }
    // The live watch pushes every removal first, then every change, each in board order;
    // then the SIPs' removals and changes, in participant order.
    Ok(v1::GreenLightPush {
        updates: removed
            .into_values()
            .chain(changed.into_values())
            .chain(removed_sips.into_values())
            .chain(changed_sips.into_values())
            .collect(),
    })
}
