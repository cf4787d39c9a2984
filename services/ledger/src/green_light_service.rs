//! `ips.v1.GreenLightService`: the officers' pending approvals, the coaches' live green lights
//! and the team leaders' lead times, from the green-light read model.
//!
//! Statuses that depend on time (an approval that has expired, or expires within 5 days) are
//! computed against the ledger's clock when read, and a watch re-evaluates them on a timer as
//! well as on every projected batch: a decision expires at the end of its validity without any
//! request arriving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use domain::InputError;
use proto::v1::{self, green_light_service_server::GreenLightService};
use rpc::{errors, fields};
use sqlx::PgPool;
use store::green_light::StoredDecision;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::clock::Clock;

/// Days before the end of an approval's validity from which it shows as expiring.
pub const EXPIRING_WITHIN_DAYS: i64 = 5;
/// The last end of validity from which a running activity's approval is listed again (on the
/// coach's board and the deciding agency's list): expired, or expiring within
/// [`EXPIRING_WITHIN_DAYS`].
pub(crate) fn running_approvals_ending_by(today: NaiveDate) -> NaiveDate {
    today + chrono::Duration::days(EXPIRING_WITHIN_DAYS)
}

/// Most open gates one watch follows.
pub const WATCHED_GATES_MAX: i64 = 5_000;
/// Updates queued per watch before the watch waits for the client.
pub const WATCH_QUEUE_LENGTH_MAX: usize = 256;
/// How often a watch re-evaluates time-dependent statuses without any new event.
pub const WATCH_REEVALUATION_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) const PENDING_APPROVALS: &str = "ips.v1.GreenLightService/PendingApprovals";
pub(crate) const WATCH_GREEN_LIGHT: &str = "ips.v1.GreenLightService/WatchGreenLight";

/// The basis of a green-light read: the activity is the IPS unit's own record; gates of other
/// agencies are shown under the consents that make them visible.
pub(crate) fn watch_basis(
    reader: &domain::Reader,
    participants: &std::collections::HashMap<uuid::Uuid, &domain::Participant>,
    participant_id: uuid::Uuid,
    today: NaiveDate,
) -> String {
    let Some(participant) = participants.get(&participant_id) else {
        return "own_records".into();
    };
    let own = if reader.actor.role == domain::Role::Auditor {
        "audit"
    } else {
        "own_records"
    };
    let mut bases = std::collections::BTreeSet::from([own.to_owned()]);
    for agency in domain::Agency::ALL {
        if let Ok(basis) = participant.gate_sight(reader, agency, today) {
            if matches!(basis, domain::Basis::Consent(_)) {
                bases.insert(basis.log_text());
            }
        }
    }
    crate::reading::basis_text(&bases, "own_records")
}

/// A `PendingApprovals` request as the read path took it: what the access log keeps so the page
/// can be rebuilt (issue 11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PendingRequestRecord {
    pub agency: String,
    pub unit: Option<String>,
    pub page_size: u32,
    /// The page token the read continued from (empty: the first page).
    pub after: String,
}

/// A `WatchGreenLight` request as the read path took it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WatchRequestRecord {
    pub coach_person_id: Option<String>,
    pub participant_id: Option<uuid::Uuid>,
}

/// One `PendingApprovals` page as its reader sees it.
pub(crate) struct PendingPage {
    pub response: v1::PendingApprovalsResponse,
    /// Each participant shown, with the basis it was shown under.
    pub bases: BTreeMap<uuid::Uuid, String>,
    /// Each participant shown, with the entry its read-model rows were folded through.
    pub read_model_sequences: BTreeMap<uuid::Uuid, u64>,
}

/// A pending-approvals page from the rows the page query returned (one more than `page_size`
/// tells whether another page follows), as `reader` may see it on `today`: a request is the
/// IPS unit's activity, so the deciding party sees it only under the participant's consent
/// IPS unit → that party (the coach's watch says so when missing). Hidden rows still advance
/// the page token, so a page may be short. Shared by the live read and its rebuild.
pub(crate) fn pending_page(
    mut rows: Vec<store::green_light::GateRow>,
    page_size: u32,
    today: NaiveDate,
    reader: &domain::Reader,
    openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
) -> PendingPage {
    let next_page_token = if rows.len() > page_size as usize {
        rows.truncate(page_size as usize);
        rows.last().map(page_token).unwrap_or_default()
    } else {
        String::new()
    };
    let party = reader.party();
    let mut bases: BTreeMap<uuid::Uuid, String> = BTreeMap::new();
    let mut read_model_sequences = BTreeMap::new();
    rows.retain(|row| {
        let basis = openable.get(&row.participant_id).and_then(|participant| {
            party.and_then(|party| participant.requests_visible_to(party, today).ok())
        });
        match basis {
            Some(basis) => {
                bases.insert(row.participant_id, basis.log_text());
                read_model_sequences.insert(row.participant_id, row.through_sequence);
                true
            }
            None => false,
        }
    });
    let approvals = rows
        .iter()
        .map(|row| {
            let state = gate_state(row, today);
            v1::PendingApproval {
                participant_id: row.participant_id.to_string(),
                activity_id: row.activity_id.to_string(),
                activity_kind: row.activity_kind.clone(),
                planned_start: row.planned_start.to_string(),
                gate: row.gate.clone(),
                status: state.status,
                requested_on: row.requested_on.to_string(),
                waiting_days: state.waiting_days,
                running: row.running,
            }
        })
        .collect();
    PendingPage {
        response: v1::PendingApprovalsResponse {
            approvals,
            next_page_token,
        },
        bases,
        read_model_sequences,
    }
}

/// The service implementation.
pub struct GreenLightApi {
    pub(crate) pool: PgPool,
    pub(crate) access_log: crate::reading::AccessLog,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) projector_progress: watch::Receiver<u64>,
}

fn day(value: Option<NaiveDate>) -> String {
    value.map(|day| day.to_string()).unwrap_or_default()
}

fn agency_wire(token: &str) -> i32 {
    fields::agency_to_wire(token)
}

/// A gate's status on `today`.
pub(crate) fn gate_state(row: &store::green_light::GateRow, today: NaiveDate) -> v1::GateState {
    let (status, expiring) = match row.decision {
        None => (v1::GateStatus::Requested, false),
        Some(StoredDecision::InformationNeeded) => (v1::GateStatus::InfoNeeded, false),
        Some(StoredDecision::Rejected) => (v1::GateStatus::Rejected, false),
        Some(StoredDecision::Approved) => match row.valid_to {
            Some(valid_to) if today > valid_to => (v1::GateStatus::Expired, false),
            Some(valid_to) => (
                v1::GateStatus::Approved,
                today >= valid_to - chrono::Duration::days(EXPIRING_WITHIN_DAYS),
            ),
            None => (v1::GateStatus::Approved, false),
        },
    };
    let final_decision = matches!(
        status,
        v1::GateStatus::Approved | v1::GateStatus::Rejected | v1::GateStatus::Expired
    );
    let waiting_days = if final_decision {
        0
    } else {
        u32::try_from((today - row.requested_on).num_days().max(0)).unwrap_or(u32::MAX)
    };
    v1::GateState {
        gate: row.gate.clone(),
        deciding_agency: agency_wire(&row.deciding_agency),
        status: status as i32,
        requested_on: row.requested_on.to_string(),
        decided_on: day(row.decided_on),
        valid_from: day(row.valid_from),
        valid_to: day(row.valid_to.filter(|valid_to| valid_to.year_ce().1 < 9999)),
        expiring,
        waiting_days,
        guidance: String::new(),
    }
}

/// A gate the reader may not see: its deciding agency and name, nothing of its state.
fn unknown_gate(row: &store::green_light::GateRow, guidance: String) -> v1::GateState {
    v1::GateState {
        gate: row.gate.clone(),
        deciding_agency: agency_wire(&row.deciding_agency),
        status: v1::GateStatus::UnknownNoConsent as i32,
        guidance,
        ..Default::default()
    }
}

use chrono::Datelike;

/// The light of one activity: GREEN when every gate is approved for the planned start and not
/// expired, RED when a gate is rejected, WAITING otherwise.
#[cfg(test)]
fn activity_light(rows: &[&store::green_light::GateRow], today: NaiveDate) -> v1::ActivityLight {
    activity_light_for(rows, today, |_| Ok(None))
}

/// The light of one activity as a reader may see it: a gate whose deciding agency the reader
/// may not see (`gate_visible` returns `Err(guidance)`) is UNKNOWN_NO_CONSENT and makes the
/// light UNKNOWN, never RED; a visible gate may carry guidance (`Ok(Some(..))`), e.g. that the
/// deciding agency cannot see the request.
fn activity_light_for(
    rows: &[&store::green_light::GateRow],
    today: NaiveDate,
    gate_visible: impl Fn(&store::green_light::GateRow) -> Result<Option<String>, String>,
) -> v1::ActivityLight {
    let first = rows[0];
    // The row of an activity that needs no gate carries the activity, not a gate.
    let rows: Vec<&store::green_light::GateRow> = rows
        .iter()
        .copied()
        .filter(|row| row.gate != store::green_light::NO_GATE)
        .collect();
    let gates: Vec<v1::GateState> = rows
        .iter()
        .map(|row| match gate_visible(row) {
            Ok(guidance) => v1::GateState {
                guidance: guidance.unwrap_or_default(),
                ..gate_state(row, today)
            },
            Err(guidance) => unknown_gate(row, guidance),
        })
        .collect();
    let any_unknown = gates
        .iter()
        .any(|gate| gate.status == v1::GateStatus::UnknownNoConsent as i32);
    let approved_for_start = |row: &&store::green_light::GateRow| {
        row.decision == Some(StoredDecision::Approved)
            && row
                .valid_from
                .is_some_and(|from| from <= first.planned_start)
            && row
                .valid_to
                .is_some_and(|to| first.planned_start <= to && today <= to)
    };
    let light = if any_unknown {
        v1::Light::Unknown
    } else if gates
        .iter()
        .any(|gate| gate.status == v1::GateStatus::Rejected as i32)
    {
        v1::Light::Red
    } else if rows.iter().all(approved_for_start) {
        v1::Light::Green
    } else {
        v1::Light::Waiting
    };
    v1::ActivityLight {
        participant_id: first.participant_id.to_string(),
        activity_id: first.activity_id.to_string(),
        activity_kind: first.activity_kind.clone(),
        planned_start: first.planned_start.to_string(),
        light: light as i32,
        gates,
        running: first.running,
    }
}

/// Replaces every gate of an agency the reader may not see with one neutral line per such
/// agency, present whether or not that agency decides any gate of the activity: the kind of
/// gate (an FK decision or an FK agreement) and its mere presence (a psychiatry gate) are the
/// agency's information. The light is then UNKNOWN, never RED or GREEN.
fn hide_gates_of_agencies_without_consent(
    light: &mut v1::ActivityLight,
    hidden: &[(domain::Agency, String)],
) {
    if hidden.is_empty() {
        return;
    }
    light
        .gates
        .retain(|gate| gate.status != v1::GateStatus::UnknownNoConsent as i32);
    for (agency, guidance) in hidden {
        light.gates.push(v1::GateState {
            gate: domain::visibility::deciding_party(*agency)
                .token()
                .to_owned(),
            deciding_agency: agency_wire(agency.token()),
            status: v1::GateStatus::UnknownNoConsent as i32,
            guidance: guidance.clone(),
            ..Default::default()
        });
    }
    light.light = v1::Light::Unknown as i32;
}

/// Groups gate rows (ordered by participant, activity) into activity lights as `reader` may
/// see them; participants missing from `participants` (not openable) are left out.
pub(crate) fn lights(
    rows: &[store::green_light::GateRow],
    today: NaiveDate,
    reader: &domain::Reader,
    participants: &std::collections::HashMap<uuid::Uuid, &domain::Participant>,
) -> BTreeMap<(uuid::Uuid, uuid::Uuid), v1::ActivityLight> {
    let mut grouped: BTreeMap<(uuid::Uuid, uuid::Uuid), Vec<&store::green_light::GateRow>> =
        BTreeMap::new();
    for row in rows {
        grouped
            .entry((row.participant_id, row.activity_id))
            .or_default()
            .push(row);
    }
    grouped
        .into_iter()
        .filter_map(|(key, rows)| {
            let participant = participants.get(&key.0)?;
            let hidden = participant.hidden_gate_agencies(reader, today);
            let mut light = activity_light_for(&rows, today, |row| {
                let deciding_agency = domain::Agency::from_token(&row.deciding_agency)
                    .ok_or_else(|| format!("unknown deciding agency {}", row.deciding_agency))?;
                participant.gate_sight(reader, deciding_agency, today)?;
                // An open request the decider cannot see would wait forever: say so.
                let open = matches!(row.decision, None | Some(StoredDecision::InformationNeeded));
                Ok(open
                    .then(|| {
                        participant
                            .requests_visible_to(
                                domain::visibility::deciding_party(deciding_agency),
                                today,
                            )
                            .err()
                    })
                    .flatten())
            });
            hide_gates_of_agencies_without_consent(&mut light, &hidden);
            Some((key, light))
        })
        .collect()
}

pub(crate) fn page_token(row: &store::green_light::GateRow) -> String {
    format!(
        "{}/{}/{}/{}",
        row.requested_on, row.participant_id, row.activity_id, row.gate
    )
}

pub(crate) fn parse_page_token(
    token: &str,
) -> Result<Option<(NaiveDate, uuid::Uuid, uuid::Uuid, String)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        errors::invalid_input(&InputError::new(
            "page_token",
            "is not a token this service issued",
        ))
    };
    let parts: Vec<&str> = token.split('/').collect();
    let [day, participant, activity, gate] = parts.as_slice() else {
        return Err(invalid());
    };
    Ok(Some((
        NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| invalid())?,
        uuid::Uuid::parse_str(participant).map_err(|_| invalid())?,
        uuid::Uuid::parse_str(activity).map_err(|_| invalid())?,
        (*gate).to_owned(),
    )))
}

#[tonic::async_trait]
impl GreenLightService for GreenLightApi {
    async fn pending_approvals(
        &self,
        request: Request<v1::PendingApprovalsRequest>,
    ) -> Result<Response<v1::PendingApprovalsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let agency = match v1::Agency::try_from(request.agency) {
            Ok(v1::Agency::Unspecified) => reader.agency,
            Ok(v1::Agency::Municipality) => domain::Agency::Municipality,
            Ok(v1::Agency::Forsakringskassan) => domain::Agency::Forsakringskassan,
            Ok(v1::Agency::Arbetsformedlingen) => domain::Agency::Arbetsformedlingen,
            Ok(v1::Agency::Psychiatry) => domain::Agency::Psychiatry,
            Err(_) => {
                return Err(errors::invalid_input(&InputError::new(
                    "agency",
                    "must name an agency",
                )))
            }
        };
        // Requests are addressed to one agency; only its officers see them.
        if agency != reader.agency {
            return Err(errors::permission_denied(
                &rpc::access::AccessDenied::OtherAgency {
                    service: agency.token(),
                    caller: reader.agency.token(),
                },
            ));
        }
        let agency = agency.token();
        let unit = if request.unit.trim().is_empty() {
            None
        } else {
            Some(
                domain::UnitId::parse(&request.unit)
                    .map_err(|error| errors::invalid_input(&error))?,
            )
        };
        let page_size = match request.page_size {
            0 => 100,
            size if size > 1_000 => {
                return Err(errors::invalid_input(&InputError::new(
                    "page_size",
                    "must be at most 1000",
                )))
            }
            size => size,
        };
        let after = parse_page_token(&request.page_token)?;
        let today = self.clock.today();
        let projector_checkpoint = crate::reading::projector_checkpoint(&self.pool).await;
        let rows = store::green_light::pending(
            &self.pool,
            agency,
            unit.as_ref().map(|unit| unit.0.as_str()),
            after,
            running_approvals_ending_by(today),
            i64::from(page_size) + 1,
        )
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
        let listed: Vec<uuid::Uuid> = rows.iter().map(|row| row.participant_id).collect();
        let openable = crate::reading::open(&self.pool, &reader, &listed).await?;
        let page = pending_page(rows, page_size, today, &reader, &openable);
        let request_record = PendingRequestRecord {
            agency: agency.to_owned(),
            unit: unit.map(|unit| unit.0),
            page_size,
            after: request.page_token.clone(),
        };
        let context = crate::reading::ReadContext {
            request: serde_json::to_value(&request_record).unwrap_or_default(),
            business_date: today,
            projector_checkpoint,
        };
        let shown = serde_json::json!({ "next_page_token": page.response.next_page_token });
        crate::reading::log_read(
            &self.access_log,
            &reader,
            PENDING_APPROVALS,
            &context,
            page.bases
                .into_iter()
                .map(|(participant_id, basis)| crate::reading::ParticipantRead {
                    participant_id,
                    basis,
                    history_sequence: openable
                        .get(&participant_id)
                        .map(|participant| participant.chain_head().0),
                    read_model_sequence: page.read_model_sequences.get(&participant_id).copied(),
                    shown: Some(shown.clone()),
                }),
        )
        .await?;
        Ok(Response::new(page.response))
    }

    type WatchGreenLightStream = ReceiverStream<Result<v1::GreenLightUpdate, Status>>;

    async fn watch_green_light(
        &self,
        request: Request<v1::WatchGreenLightRequest>,
    ) -> Result<Response<Self::WatchGreenLightStream>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let (coach, participant) = match (
            request.coach_person_id.trim(),
            request.participant_id.trim(),
        ) {
            ("", "") => {
                return Err(errors::invalid_input(&InputError::new(
                    "coach_person_id",
                    "or participant_id is required",
                )))
            }
            (coach, "") => (
                Some(domain::PersonId::parse(coach).map_err(|error| {
                    errors::invalid_input(&InputError::new("coach_person_id", error.reason))
                })?),
                None,
            ),
            ("", participant) => (
                None,
                Some(
                    fields::required_participant_id(participant)
                        .map_err(|error| errors::invalid_input(&error))?,
                ),
            ),
            _ => {
                return Err(errors::invalid_input(&InputError::new(
                    "participant_id",
                    "give either coach_person_id or participant_id, not both",
                )))
            }
        };
        // A participant the reader may not open (another unit, a protected identity) is
        // refused, as on every read by participant id; one not recorded yet is watched until
        // it is, so a watch may be opened before the first event.
        if let Some(participant_id) = participant {
            if let Err(status) =
                crate::reading::open_one(&self.pool, &reader, participant_id.0).await
            {
                if status.code() == tonic::Code::PermissionDenied {
                    return Err(status);
                }
            }
        }
        let request_record = WatchRequestRecord {
            coach_person_id: coach.as_ref().map(|coach| coach.0.clone()),
            participant_id: participant.map(|participant_id| participant_id.0),
        };
        let (sender, receiver) = mpsc::channel(WATCH_QUEUE_LENGTH_MAX);
        let pool = self.pool.clone();
        let access_log = self.access_log.clone();
        let clock = self.clock.clone();
        let mut progress = self.projector_progress.clone();
        tokio::spawn(async move {
            let mut sent: BTreeMap<(uuid::Uuid, uuid::Uuid), v1::ActivityLight> = BTreeMap::new();
            let mut initial = true;
            let mut folded = crate::reading::FoldedParticipants::default();
            loop {
                let today = clock.today();
                let projector_checkpoint = crate::reading::projector_checkpoint(&pool).await;
                let rows = match store::green_light::open_gates(
                    &pool,
                    coach.as_ref().map(|coach| coach.0.as_str()),
                    participant,
                    running_approvals_ending_by(today),
                    WATCHED_GATES_MAX,
                )
                .await
                {
                    Ok(rows) => rows,
                    Err(error) => {
                        let _ = sender
                            .send(Err(crate::store_errors::from_store(&error)))
                            .await;
                        return;
                    }
                };
                let mut listed: Vec<uuid::Uuid> =
                    rows.iter().map(|row| row.participant_id).collect();
                listed.dedup();
                let participants = match folded.refresh(&pool, &reader, &listed).await {
                    Ok(participants) => participants,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                // Watching another unit's coach is refused like reading their participants:
                // a board with a participant of another unit that the reader may not open.
                if initial && coach.is_some() {
                    let other_unit = rows.iter().any(|row| {
                        !participants.contains_key(&row.participant_id)
                            && row
                                .unit
                                .as_deref()
                                .is_some_and(|unit| unit != reader.actor.unit.0)
                    });
                    if other_unit {
                        let refused = domain::visibility::OpenRefused::OtherUnit {
                            unit: reader.actor.unit.0.clone(),
                        };
                        let _ = sender
                            .send(Err(errors::denied(refused.rule(), &refused.to_string())))
                            .await;
                        return;
                    }
                }
                let current = lights(&rows, today, &reader, &participants);
                // What left the board since the last push (started, ended, withdrawn, or no
                // longer shown to this reader) is pushed as a removal.
                let removed: Vec<(uuid::Uuid, uuid::Uuid)> = sent
                    .keys()
                    .filter(|key| !current.contains_key(*key))
                    .copied()
                    .collect();
                // Every update is a read: log one entry per participant about to be pushed, with
                // the activities pushed (ids only) so the push can be rebuilt from the events.
                let mut pushed: BTreeMap<uuid::Uuid, Vec<serde_json::Value>> = BTreeMap::new();
                for key in &removed {
                    pushed
                        .entry(key.0)
                        .or_default()
                        .push(serde_json::json!({ "activity_id": key.1, "removed": true }));
                }
                for (key, light) in &current {
                    if sent.get(key) != Some(light) {
                        pushed
                            .entry(key.0)
                            .or_default()
                            .push(serde_json::json!({ "activity_id": key.1, "removed": false }));
                    }
                }
                let mut read_model_sequences: BTreeMap<uuid::Uuid, u64> = BTreeMap::new();
                for row in &rows {
                    read_model_sequences.insert(row.participant_id, row.through_sequence);
                }
                let context = crate::reading::ReadContext {
                    request: serde_json::to_value(&request_record).unwrap_or_default(),
                    business_date: today,
                    projector_checkpoint,
                };
                if let Err(status) = crate::reading::log_read(
                    &access_log,
                    &reader,
                    WATCH_GREEN_LIGHT,
                    &context,
                    pushed.into_iter().map(|(participant_id, updates)| {
                        crate::reading::ParticipantRead {
                            participant_id,
                            basis: watch_basis(&reader, &participants, participant_id, today),
                            history_sequence: participants
                                .get(&participant_id)
                                .map(|participant| participant.chain_head().0),
                            read_model_sequence: read_model_sequences.get(&participant_id).copied(),
                            shown: Some(
                                serde_json::json!({ "initial": initial, "updates": updates }),
                            ),
                        }
                    }),
                )
                .await
                {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
                for (participant_id, activity_id) in removed {
                    let update = v1::GreenLightUpdate {
                        activity: Some(v1::ActivityLight {
                            participant_id: participant_id.to_string(),
                            activity_id: activity_id.to_string(),
                            ..Default::default()
                        }),
                        initial: false,
                        removed: true,
                    };
                    if sender.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
                for (key, light) in &current {
                    if sent.get(key) != Some(light) {
                        let update = v1::GreenLightUpdate {
                            activity: Some(light.clone()),
                            initial,
                            removed: false,
                        };
                        if sender.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                }
                sent = current;
                initial = false;
                // Wake on the next projected batch, or re-evaluate time-dependent statuses.
                tokio::select! {
                    changed = progress.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(WATCH_REEVALUATION_INTERVAL) => {}
                    _ = sender.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn gate_lead_times(
        &self,
        request: Request<v1::GateLeadTimesRequest>,
    ) -> Result<Response<v1::GateLeadTimesResponse>, Status> {
        let request = request.into_inner();
        let from = fields::required_date("from", &request.from)
            .map_err(|error| errors::invalid_input(&error))?;
        let to = fields::required_date("to", &request.to)
            .map_err(|error| errors::invalid_input(&error))?;
        if to < from {
            return Err(errors::invalid_input(&InputError::new(
                "to",
                "must not be before from",
            )));
        }
        let rows = store::green_light::lead_times(&self.pool, from, to)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        Ok(Response::new(v1::GateLeadTimesResponse {
            lead_times: rows
                .into_iter()
                .map(
                    |(gate, agency, decisions, median_days, p90_days)| v1::GateLeadTime {
                        gate,
                        deciding_agency: agency_wire(&agency),
                        decisions: u32::try_from(decisions).unwrap_or(u32::MAX),
                        median_days,
                        p90_days,
                    },
                )
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, day).unwrap_or_default()
    }

    fn row(decision: Option<&str>, valid: Option<(u32, u32)>) -> store::green_light::GateRow {
        store::green_light::GateRow {
            participant_id: uuid::Uuid::from_u128(1),
            activity_id: uuid::Uuid::from_u128(2),
            gate: "fk_activity_decision".into(),
            deciding_agency: "fk".into(),
            unit: None,
            coach: None,
            activity_kind: "arbetstraning".into(),
            planned_start: date(20),
            requested_on: date(1),
            decision: decision.map(|token| {
                StoredDecision::from_token(token).expect("the tests name stored decisions")
            }),
            decided_on: decision.map(|_| date(5)),
            valid_from: valid.map(|(from, _)| date(from)),
            valid_to: valid.map(|(_, to)| date(to)),
            open: true,
            running: false,
            through_sequence: 1,
        }
    }

    /// The one check helper of this layer: a gate row read on `today` has `status`, `expiring`
    /// and makes its activity's light `light`.
    fn check(
        row: store::green_light::GateRow,
        today: u32,
        status: v1::GateStatus,
        expiring: bool,
        light: v1::Light,
    ) {
        let state = gate_state(&row, date(today));
        assert_eq!(
            (state.status, state.expiring),
            (status as i32, expiring),
            "{row:?} on day {today}"
        );
        assert_eq!(
            activity_light(&[&row], date(today)).light,
            light as i32,
            "{row:?} on day {today}"
        );
    }

    #[test]
    fn each_status_and_light() {
        check(
            row(None, None),
            10,
            v1::GateStatus::Requested,
            false,
            v1::Light::Waiting,
        );
        check(
            row(Some("information_needed"), None),
            10,
            v1::GateStatus::InfoNeeded,
            false,
            v1::Light::Waiting,
        );
        check(
            row(Some("rejected"), None),
            10,
            v1::GateStatus::Rejected,
            false,
            v1::Light::Red,
        );
        check(
            row(Some("approved"), Some((15, 31))),
            10,
            v1::GateStatus::Approved,
            false,
            v1::Light::Green,
        );
        // Approved until D shows as expiring from D-5, and expired after D, with no new request.
        check(
            row(Some("approved"), Some((15, 31))),
            25,
            v1::GateStatus::Approved,
            false,
            v1::Light::Green,
        );
        check(
            row(Some("approved"), Some((15, 31))),
            26,
            v1::GateStatus::Approved,
            true,
            v1::Light::Green,
        );
        check(
            row(Some("approved"), Some((1, 12))),
            13,
            v1::GateStatus::Expired,
            false,
            v1::Light::Waiting,
        );
        // Approved, but not for the planned start.
        check(
            row(Some("approved"), Some((21, 31))),
            10,
            v1::GateStatus::Approved,
            false,
            v1::Light::Waiting,
        );
    }

    #[test]
    fn waiting_days_count_from_the_request_until_a_final_decision() {
        assert_eq!(gate_state(&row(None, None), date(22)).waiting_days, 21);
        assert_eq!(
            gate_state(&row(Some("information_needed"), None), date(22)).waiting_days,
            21
        );
        assert_eq!(
            gate_state(&row(Some("approved"), Some((15, 31))), date(22)).waiting_days,
            0
        );
    }
}
