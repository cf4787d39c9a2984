//! `AuditService.ReplayParticipant` (issue 11, DOMAIN.md §7): a participant's history as
//! recorded at T, optionally cut at business time T', as recorded or through a party's eyes, with
//! corrections as recorded or as corrected, ending with the participant folded at that point.
//!
//! Nothing here decides anything of its own: the cut and the fold are the domain's
//! (`domain::replay`, the aggregate's `apply`); what a reader is shown of an entry is
//! `Participant::view_of_entry_shown`, the decision the live `GetTimeline` uses (through
//! `view_of_entry`), the whole body printed from the typed event; whether they could
//! open the participant is `Participant::may_open`; the gates are the green-light read model's
//! rows (`store::green_light::gate_rows`) evaluated by the live board's own `lights` with the
//! replay's business day as "today". So a replay cannot drift from what the live reads showed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::entry_view::ShownBody;
use domain::replay::{ReplayCut, ReplayedHistory};
use domain::{InputError, Participant, ParticipantEvent, ParticipantId, Reader};
use proto::v1;
use proto::wire::WireEnum;
use rpc::{errors, fields};
use tonic::Status;

use crate::config::AuditConfig;

/// A replay request, parsed.
#[derive(Clone, Debug)]
pub struct ReplayRequest {
    /// Whose history.
    pub participant_id: ParticipantId,
    /// Where it is cut.
    pub cut: ReplayCut,
    /// The reader whose view is replayed; `None`: the auditor's own (everything recorded).
    pub as_reader: Option<Reader>,
    /// Corrections as corrected (the current version of each fact) rather than as recorded.
    pub as_corrected: bool,
    /// Entries per streamed message.
    pub page_size: u32,
}

/// What the access log keeps of a replay (the auditor's read of the participant).
#[derive(Clone, Debug, serde::Serialize)]
struct ReplayRequestRecord {
    recorded_at: DateTime<Utc>,
    occurred_at: Option<DateTime<Utc>>,
    as_reader: Option<ReaderRecord>,
    corrections: &'static str,
}

#[derive(Clone, Debug, serde::Serialize)]
struct ReaderRecord {
    agency: &'static str,
    person_id: String,
    role: &'static str,
    unit: String,
}

impl ReplayRequest {
    /// The request as the access log keeps it.
    pub fn record(&self) -> serde_json::Value {
        serde_json::to_value(ReplayRequestRecord {
            recorded_at: self.cut.recorded_at,
            occurred_at: self.cut.occurred_at,
            as_reader: self.as_reader.as_ref().map(|reader| ReaderRecord {
                agency: reader.agency.token(),
                person_id: reader.actor.person_id.0.clone(),
                role: reader.actor.role.token(),
                unit: reader.actor.unit.0.clone(),
            }),
            corrections: if self.as_corrected {
                "as_corrected"
            } else {
                "as_recorded"
            },
        })
        .unwrap_or_default()
    }
}

/// The person a replay reader stands for when the request names none: on no allow-list.
pub const UNNAMED_READER: &str = "unnamed-reader";

/// Parses a replay request. `now` is the ledger clock: T may not lie after it, since entries
/// recorded later would still join a replay "as recorded" at a future T.
pub fn parse_request(
    request: &v1::ReplayParticipantRequest,
    config: &AuditConfig,
    now: DateTime<Utc>,
) -> Result<ReplayRequest, Status> {
    let invalid = |error: InputError| errors::invalid_input(&error);
    let participant_id =
        fields::required_participant_id(&request.participant_id).map_err(invalid)?;
    if request.recorded_at.trim().is_empty() {
        return Err(invalid(InputError::new("recorded_at", "is required")));
    }
    let recorded_at =
        fields::timestamp_or("recorded_at", &request.recorded_at, now).map_err(invalid)?;
    if recorded_at > now {
        return Err(invalid(InputError::new(
            "recorded_at",
            "must not lie after the ledger's clock: what is recorded later would still join the replay",
        )));
    }
    let occurred_at = if request.occurred_at.trim().is_empty() {
        None
    } else {
        Some(fields::timestamp_or("occurred_at", &request.occurred_at, now).map_err(invalid)?)
    };
    let as_reader = request
        .as_reader
        .as_ref()
        .map(replay_reader)
        .transpose()
        .map_err(invalid)?;
    let as_corrected = match v1::CorrectionView::try_from(request.corrections) {
        Ok(v1::CorrectionView::Unspecified | v1::CorrectionView::AsRecorded) => false,
        Ok(v1::CorrectionView::AsCorrected) => true,
        Err(_) => {
            return Err(invalid(InputError::new(
                "corrections",
                "must be AS_RECORDED or AS_CORRECTED",
            )))
        }
    };
    let page_size = match request.page_size {
        0 => config.replay_page_size_default,
        size if size > config.replay_page_size_max => {
            return Err(invalid(InputError::new(
                "page_size",
                format!("must be at most {}", config.replay_page_size_max),
            )))
        }
        size => size,
    };
    Ok(ReplayRequest {
        participant_id,
        cut: ReplayCut {
            recorded_at,
            occurred_at,
        },
        as_reader,
        as_corrected,
        page_size,
    })
}

/// The reader a replay takes the view of: the organisation follows from the consent party,
/// and the role must be one that party's officers have.
fn replay_reader(reader: &v1::ReplayReader) -> Result<Reader, InputError> {
    use domain::{Agency, ConsentParty, Role};
    let party = ConsentParty::from_wire(reader.party)
        .map_err(|_| InputError::new("as_reader.party", "must name a consent party"))?;
    let role = domain::Role::from_token(reader.role.trim()).ok_or_else(|| {
        InputError::new(
            "as_reader.role",
            "must be coach, team_leader or case_officer",
        )
    })?;
    let agency = match (party, role) {
        (ConsentParty::IpsUnit, Role::Coach | Role::TeamLeader) => Agency::Municipality,
        (ConsentParty::SocialServices, Role::CaseOfficer) => Agency::Municipality,
        (ConsentParty::Forsakringskassan, Role::CaseOfficer) => Agency::Forsakringskassan,
        (ConsentParty::Arbetsformedlingen, Role::CaseOfficer) => Agency::Arbetsformedlingen,
        (ConsentParty::Psychiatry, Role::CaseOfficer) => Agency::Psychiatry,
        (
            ConsentParty::IpsUnit
            | ConsentParty::SocialServices
            | ConsentParty::Forsakringskassan
            | ConsentParty::Arbetsformedlingen
            | ConsentParty::Psychiatry,
            Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::Auditor | Role::System,
        ) => {
            return Err(InputError::new(
                "as_reader.role",
                format!(
                    "{} reads as coach or team_leader in the IPS unit, as case_officer elsewhere",
                    role.token()
                ),
            ))
        }
    };
    let unit = domain::UnitId::parse(&reader.unit)
        .map_err(|error| InputError::new("as_reader.unit", error.reason))?;
    let person_id = if reader.person_id.trim().is_empty() {
        domain::PersonId(UNNAMED_READER.to_owned())
    } else {
        domain::PersonId::parse(&reader.person_id)
            .map_err(|error| InputError::new("as_reader.person_id", error.reason))?
    };
    Ok(Reader {
        agency,
        actor: domain::Actor {
            person_id,
            role,
            unit,
        },
    })
}

/// A replay, collected: the entries shown, in sequence order, and the state at the cut.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The entries, as the reader was shown them.
    pub entries: Vec<v1::ReplayEntry>,
    /// The participant at the cut.
    pub state: v1::ReplayState,
}

/// A replay folded and decided, whose entries are rendered page by page as they are streamed
/// (the client decodes one page while the next is rendered).
pub struct PreparedReplay {
    request: ReplayRequest,
    replayed: ReplayedHistory,
    reader: Reader,
    refused: Option<domain::visibility::OpenRefused>,
    /// Each corrected entry's latest correction (index into the entries).
    corrections: HashMap<domain::EventId, usize>,
}

/// Folds `history` (the participant's entries recorded by T, in sequence order) for `request`;
/// `auditor` is the caller, whose view it is when the request names no reader.
pub fn prepare(
    history: Vec<ParticipantEvent>,
    request: ReplayRequest,
    auditor: &Reader,
) -> PreparedReplay {
    let replayed = domain::replay::replay(history, &request.cut);
    prepare_folded(replayed, request, auditor)
}

/// [`prepare`] for a history already cut and folded (`domain::replay::ReplayFold`).
pub fn prepare_folded(
    replayed: ReplayedHistory,
    request: ReplayRequest,
    auditor: &Reader,
) -> PreparedReplay {
    let reader = request.as_reader.clone().unwrap_or_else(|| auditor.clone());
    let refused = replayed.as_recorded.may_open(&reader).err();
    let corrections = domain::replay::latest_corrections(&replayed.entries);
    PreparedReplay {
        request,
        replayed,
        reader,
        refused,
        corrections,
    }
}

/// Replays `history` for `request` and collects every entry and the state.
pub fn replay(history: Vec<ParticipantEvent>, request: &ReplayRequest, auditor: &Reader) -> Replay {
    let prepared = prepare(history, request.clone(), auditor);
    let entries: Vec<v1::ReplayEntry> = prepared.entries().collect();
    let state = prepared.state(entries.len());
    Replay { entries, state }
}

impl PreparedReplay {
    /// The chain head as recorded by T.
    pub fn head_sequence(&self) -> u64 {
        self.replayed.as_recorded.chain_head().0
    }

    /// The entries as the reader was shown them, rendered as they are taken.
    pub fn entries(&self) -> Box<dyn Iterator<Item = v1::ReplayEntry> + Send + '_> {
        if self.refused.is_some() {
            return Box::new(std::iter::empty());
        }
        let viewer = Viewer {
            participant: &self.replayed.as_recorded,
            reader: &self.reader,
            on: self.request.cut.reading_date(),
        };
        let entries = &self.replayed.entries;
        if self.request.as_corrected {
            Box::new(
                entries
                    .iter()
                    .filter(|entry| !self.folded_into_its_original(entry))
                    .filter_map(move |entry| self.as_corrected(&viewer, entry)),
            )
        } else {
            Box::new(
                entries
                    .iter()
                    .filter_map(move |entry| self.as_recorded(&viewer, entry)),
            )
        }
    }

    /// The participant at the cut, after `entries_shown` entries were shown.
    pub fn state(&self, entries_shown: usize) -> v1::ReplayState {
        state(
            &self.request,
            &self.replayed,
            &self.reader,
            self.refused.as_ref(),
            entries_shown,
        )
    }

    /// An accepted correction whose original is in the replay: as corrected, it is shown in
    /// its original's place, not on its own.
    fn folded_into_its_original(&self, entry: &ParticipantEvent) -> bool {
        match &entry.body {
            domain::EventBody::EventCorrected { supersedes, .. } => {
                entry.is_accepted() && self.corrections.contains_key(supersedes)
            }
            _ => false,
        }
    }

    /// As recorded: the entry, naming the latest correction the reader could see that
    /// supersedes it.
    fn as_recorded(
        &self,
        viewer: &Viewer<'_>,
        entry: &ParticipantEvent,
    ) -> Option<v1::ReplayEntry> {
        let (basis, row, body_json) = viewer.view_printed(entry)?;
        let superseded_by_event_id = self
            .corrections
            .get(&entry.envelope.event_id)
            .map(|index| &self.replayed.entries[*index])
            .filter(|correction| viewer.view_shown(correction).is_some())
            .map(|correction| correction.envelope.event_id.to_string())
            .unwrap_or_default();
        Some(v1::ReplayEntry {
            // Rows built from decoded events (`TimelineRow::from_event`) carry a schema version
            // that came from a `u32`, the one thing `entry` checks.
            entry: Some(
                crate::timeline_service::entry_showing(row, body_json)
                    .expect("a row built from a decoded event has a non-negative schema version"),
            ),
            basis: basis.log_text(),
            superseded_by_event_id,
            correction: None,
        })
    }

    /// As corrected: the entry carrying its latest correction's values (as the reader may see
    /// them) with the correction's author, time and reason.
    fn as_corrected(
        &self,
        viewer: &Viewer<'_>,
        entry: &ParticipantEvent,
    ) -> Option<v1::ReplayEntry> {
        let (basis, mut row) = viewer.view(entry)?;
        let correction = self
            .corrections
            .get(&entry.envelope.event_id)
            .map(|index| &self.replayed.entries[*index])
            .and_then(|correction| {
                let (_, correction_row) = viewer.view(correction)?;
                Some((correction, correction_row))
            })
            .map(|(correction, correction_row)| {
                let mut body = correction_row.body;
                let reason = body
                    .get("reason")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                row.body = body
                    .get_mut("corrected")
                    .map(serde_json::Value::take)
                    .unwrap_or_default();
                let envelope = &correction.envelope;
                // The author as the reader is shown it (`EntryView::author_shown`).
                v1::ReplayCorrection {
                    event_id: envelope.event_id.to_string(),
                    sequence: correction.sequence,
                    agency: envelope.agency.to_wire(),
                    author: Some(v1::Actor {
                        person_id: correction_row.actor_person_id,
                        role: correction_row.actor_role,
                        unit: correction_row.actor_unit,
                    }),
                    occurred_at: timestamp(envelope.occurred_at),
                    recorded_at: timestamp(correction.recorded_at),
                    reason,
                }
            });
        Some(v1::ReplayEntry {
            // Rows built from decoded events (`TimelineRow::from_event`) carry a schema version
            // that came from a `u32`, the one thing `entry` checks.
            entry: Some(
                crate::timeline_service::entry(row)
                    .expect("a row built from a decoded event has a non-negative schema version"),
            ),
            basis: basis.log_text(),
            superseded_by_event_id: String::new(),
            correction,
        })
    }
}

/// What one reader is shown of the replayed entries: the live reads' decision, against the
/// participant as recorded by T, on T's date.
#[derive(Clone, Copy)]
struct Viewer<'a> {
    participant: &'a Participant,
    reader: &'a Reader,
    on: NaiveDate,
}

impl Viewer<'_> {
    /// The entry as the reader is shown it, its body as JSON.
    fn view(&self, entry: &ParticipantEvent) -> Option<(domain::Basis, store::TimelineRow)> {
        let (basis, mut row, shown) = self.view_shown(entry)?;
        row.body = match shown {
            ShownBody::Whole => serde_json::to_value(&entry.body).ok()?,
            ShownBody::Only(body) => body,
        };
        Some((basis, row))
    }

    /// The entry as the reader is shown it, its body printed in canonical form: a whole body
    /// straight from the typed event (no `Value` in between), as `GetTimeline` prints it.
    fn view_printed(
        &self,
        entry: &ParticipantEvent,
    ) -> Option<(domain::Basis, store::TimelineRow, String)> {
        let (basis, row, shown) = self.view_shown(entry)?;
        let body_json = match shown {
            ShownBody::Whole => domain::canonical::to_canonical_json(&entry.body).ok()?,
            ShownBody::Only(body) => domain::chain::canonical_json(&body),
        };
        Some((basis, row, body_json))
    }

    /// The live reads' decision on `entry`, and its row with the body left to the caller.
    fn view_shown(
        &self,
        entry: &ParticipantEvent,
    ) -> Option<(domain::Basis, store::TimelineRow, ShownBody)> {
        let mut row = store::TimelineRow::from_event_but_body(entry).ok()?;
        let view = self.participant.view_of_entry_shown(
            self.reader,
            entry.envelope.agency,
            entry.envelope.data_category,
            &entry.body,
            || serde_json::to_value(&entry.body).unwrap_or(serde_json::Value::Null),
            self.on,
        )?;
        crate::timeline_service::envelope_as_shown(&mut row, &view);
        Some((view.basis, row, view.body))
    }
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn token(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The participant at the cut. The auditor's view is the whole fold; a reader's is what their
/// live board showed: the green lights of the activities on it, gates of agencies they had no
/// consent from left UNKNOWN.
fn state(
    request: &ReplayRequest,
    replayed: &ReplayedHistory,
    reader: &Reader,
    refused: Option<&domain::visibility::OpenRefused>,
    entries_shown: usize,
) -> v1::ReplayState {
    let business_date = request.cut.business_date();
    let participant_id = request.participant_id;
    let (head_sequence, head_hash) = replayed.as_recorded.chain_head();
    let mut state = v1::ReplayState {
        participant_id: participant_id.to_string(),
        recorded_at: timestamp(request.cut.recorded_at),
        occurred_at: request.cut.occurred_at.map(timestamp).unwrap_or_default(),
        business_date: business_date.to_string(),
        opened: refused.is_none(),
        refused_rule: refused
            .map(|refused| refused.rule().to_owned())
            .unwrap_or_default(),
        entries_recorded: replayed.recorded_entries as u64,
        entries_in_cut: replayed.entries.len() as u64,
        entries_shown: entries_shown as u64,
        head_sequence,
        head_hash: head_hash.to_owned(),
        ..Default::default()
    };
    if refused.is_some() {
        return state;
    }
    let through_readers_eyes = request.as_reader.is_some();
    let at_cut = replayed.as_of_cut();
    let ends_by = crate::green_light_view::running_approvals_ending_by(business_date);
    let rows: Vec<store::green_light::GateRow> =
        store::green_light::gate_rows(participant_id, at_cut)
            .into_iter()
            .filter(|row| !through_readers_eyes || row.is_on_board(ends_by))
            .collect();
    let participants: HashMap<uuid::Uuid, &Participant> =
        HashMap::from([(participant_id.0, &replayed.as_recorded)]);
    let mut lights = crate::green_light_view::lights(&rows, business_date, reader, &participants);
    if through_readers_eyes {
        state.activities = lights
            .into_values()
            .map(|light| v1::ReplayActivity {
                activity_id: light.activity_id.clone(),
                kind: light.activity_kind.clone(),
                planned_start: light.planned_start.clone(),
                light: Some(light),
                ..Default::default()
            })
            .collect();
        return state;
    }
    state.lifecycle = token(at_cut.lifecycle());
    state.unit = at_cut
        .ips_unit()
        .map(|unit| unit.0.clone())
        .unwrap_or_default();
    state.coach_person_id = at_cut
        .unit_and_coach()
        .map(|(_, coach)| coach.0.clone())
        .unwrap_or_default();
    state.social_services_unit = at_cut
        .social_services_unit()
        .map(|unit| unit.0.clone())
        .unwrap_or_default();
    state.consents_in_force = at_cut
        .consents()
        .iter()
        .filter_map(|consent| {
            let in_force = consent.categories_in_force(business_date);
            (!in_force.is_empty()).then(|| v1::ReplayConsent {
                consent_id: consent.consent_id.0.to_string(),
                discloser: consent.discloser.to_wire(),
                recipient: consent.recipient.to_wire(),
                data_categories: in_force.into_iter().map(WireEnum::to_wire).collect(),
                valid_from: consent.valid_from.to_string(),
                valid_to: consent.valid_to.to_string(),
            })
        })
        .collect();
    state.protected_identity = at_cut.identity_protected();
    state.allowed_persons = at_cut
        .allow_list()
        .unwrap_or_default()
        .iter()
        .map(|allowed| v1::AllowedReader {
            agency: allowed.agency.to_wire(),
            person_id: allowed.person_id.0.clone(),
        })
        .collect();
    state.allowed_readers = state
        .allowed_persons
        .iter()
        .map(|allowed| allowed.person_id.clone())
        .collect();
    state.activities = at_cut
        .activities()
        .iter()
        .map(|(activity_id, activity)| {
            let (status, started_on, ended_on) = match activity.status {
                domain::aggregate::ActivityStatus::Proposed => ("proposed", None, None),
                domain::aggregate::ActivityStatus::Started { started_on } => {
                    ("started", Some(started_on), None)
                }
                domain::aggregate::ActivityStatus::Ended {
                    started_on,
                    ended_on,
                } => ("ended", Some(started_on), Some(ended_on)),
            };
            v1::ReplayActivity {
                activity_id: activity_id.0.to_string(),
                kind: token(activity.kind),
                status: status.to_owned(),
                planned_start: activity.planned_start.to_string(),
                started_on: started_on.map(|day| day.to_string()).unwrap_or_default(),
                ended_on: ended_on.map(|day| day.to_string()).unwrap_or_default(),
                hours_per_week: u32::from(activity.hours_per_week),
                subsidy: activity.subsidy.map(token).unwrap_or_default(),
                employer: activity.employer.clone().unwrap_or_default(),
                light: lights.remove(&(participant_id.0, activity_id.0)),
            }
        })
        .collect();
    state
}
