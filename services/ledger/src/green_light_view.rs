//! The green-light views: the wire messages (gate states, activity lights, pending-approval
//! pages, watch updates, lead times) built from green-light read-model rows and the folded
//! participants, for a reader on a business day. No I/O: the live reads
//! (`green_light_service`), the auditor's rebuilt reads (`reconstruct`) and the replayed
//! board (`replay`) all call these, so what they show cannot drift apart.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use domain::InputError;
use proto::v1;
use proto::wire::{agency_token_to_wire, WireEnum};
use rpc::errors;
use store::green_light::StoredDecision;
use tonic::Status;

/// Days before the end of an approval's validity from which it shows as expiring.
pub const EXPIRING_WITHIN_DAYS: i64 = 5;
/// The last end of validity from which a running activity's approval is listed again (on the
/// coach's board and the deciding agency's list): expired, or expiring within
/// [`EXPIRING_WITHIN_DAYS`].
pub(crate) fn running_approvals_ending_by(today: NaiveDate) -> NaiveDate {
    today + chrono::Duration::days(EXPIRING_WITHIN_DAYS)
}

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

/// One `PendingApprovals` page as its reader sees it.
pub(crate) struct PendingPage {
    pub response: v1::PendingApprovalsResponse,
    /// Each participant shown, with the basis it was shown under.
    pub bases: BTreeMap<uuid::Uuid, String>,
    /// Each participant shown, with the entry its read-model rows were folded through.
    pub read_model_sequences: BTreeMap<uuid::Uuid, u64>,
}

/// Most read-model rows one `PendingApprovals` request reads once it has a row to show. The
/// rows addressed to an agency include those of participants its reader may not see (no
/// consent IPS unit → the reader's party, a protected identity they are not allowed to open);
/// they are read and passed over. A page cut by this limit is short and its token names its
/// last shown row. A page with nothing to show yet reads on until it has, or the rows end:
/// stopping there would either hand out a token naming a hidden row, or end the list while
/// rows the reader may see still wait behind the hidden ones.
pub const PENDING_ROWS_SCANNED_MAX: usize = 10_000;
/// Most rows one store read of a `PendingApprovals` scan asks for. The first read asks for a
/// page and one more row (a list its reader sees whole costs one read, as it always did);
/// each further read asks for twice as many, so a long run of hidden rows takes few reads.
pub const PENDING_SCAN_BATCH_ROWS_MAX: i64 = 1_024;

/// A position in the pending-approvals order, `GateRow::pending_order`: (requested on,
/// participant, activity, gate).
pub(crate) type PendingPosition = (NaiveDate, uuid::Uuid, uuid::Uuid, String);

fn pending_position(row: &store::green_light::GateRow) -> PendingPosition {
    (
        row.requested_on,
        row.participant_id,
        row.activity_id,
        row.gate.clone(),
    )
}

/// The basis on which `reader` sees a pending request on `today`: its participant is
/// openable, and the request is the IPS unit's activity, so the deciding party sees it only
/// under the participant's consent IPS unit → that party (the coach's watch says so when
/// missing). `None`: hidden.
fn request_sight(
    row: &store::green_light::GateRow,
    reader: &domain::Reader,
    openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
    today: NaiveDate,
) -> Option<domain::Basis> {
    let participant = openable.get(&row.participant_id)?;
    let party = reader.party()?;
    participant.requests_visible_to(party, today).ok()
}

/// A `PendingApprovals` read in progress. It reads the rows addressed to the agency in page
/// order, batch by batch, and keeps only those its reader may see, until it holds a page and
/// one more visible row (so it knows another page follows), the rows end, or it has read
/// [`PENDING_ROWS_SCANNED_MAX`] rows with at least one to show. No I/O: the service reads
/// what [`PendingScan::next_read`] asks for and hands it to [`PendingScan::take`].
pub(crate) struct PendingScan {
    page_size: usize,
    /// Where the next read starts: after the last row read, visible or not. It never leaves
    /// the ledger: a token only ever names a row its reader was shown.
    after: Option<PendingPosition>,
    /// Rows the next read asks for.
    batch: i64,
    scanned: usize,
    ended: bool,
    /// The visible rows read so far, in page order; at most a page and one more.
    visible: Vec<store::green_light::GateRow>,
    /// The folds of the participants of `visible`.
    openable: std::collections::HashMap<uuid::Uuid, domain::Participant>,
    /// Participants read and found hidden, so they are not opened again.
    hidden: std::collections::HashSet<uuid::Uuid>,
}

impl PendingScan {
    /// A scan for a page of `page_size` (at least 1) after `after` (`None`: the first page).
    pub(crate) fn new(page_size: u32, after: Option<PendingPosition>) -> Self {
        let page_size = page_size.max(1) as usize;
        Self {
            page_size,
            after,
            batch: (page_size as i64 + 1).min(PENDING_SCAN_BATCH_ROWS_MAX),
            scanned: 0,
            ended: false,
            visible: Vec::new(),
            openable: std::collections::HashMap::new(),
            hidden: std::collections::HashSet::new(),
        }
    }

    fn complete(&self) -> bool {
        self.ended
            || self.visible.len() > self.page_size
            || (self.scanned >= PENDING_ROWS_SCANNED_MAX && !self.visible.is_empty())
    }

    /// The next store read, (after, limit), or `None` once the page is complete.
    pub(crate) fn next_read(&self) -> Option<(Option<PendingPosition>, i64)> {
        if self.complete() {
            return None;
        }
        // With nothing to show yet the scan reads on past the limit (see the limit's note).
        let limit = if self.visible.is_empty() {
            self.batch
        } else {
            let left = PENDING_ROWS_SCANNED_MAX.saturating_sub(self.scanned);
            self.batch.min(i64::try_from(left).unwrap_or(i64::MAX))
        };
        Some((self.after.clone(), limit))
    }

    /// The participants of `batch` whose folds `take` needs: those not met before.
    pub(crate) fn to_open(&self, batch: &[store::green_light::GateRow]) -> Vec<uuid::Uuid> {
        let mut unseen: Vec<uuid::Uuid> = batch
            .iter()
            .map(|row| row.participant_id)
            .filter(|participant_id| {
                !self.openable.contains_key(participant_id) && !self.hidden.contains(participant_id)
            })
            .collect();
        unseen.sort_unstable();
        unseen.dedup();
        unseen
    }

    /// Takes the rows a read asked for `limit` rows returned, in page order, with the folds
    /// of the participants `to_open` named that `reader` may open.
    pub(crate) fn take(
        &mut self,
        batch: Vec<store::green_light::GateRow>,
        limit: i64,
        mut opened: std::collections::HashMap<uuid::Uuid, domain::Participant>,
        reader: &domain::Reader,
        today: NaiveDate,
    ) {
        self.ended = i64::try_from(batch.len()).unwrap_or(i64::MAX) < limit;
        self.scanned += batch.len();
        self.after = batch.last().map(pending_position);
        self.batch = (self.batch * 2).min(PENDING_SCAN_BATCH_ROWS_MAX);
        for row in batch {
            if self.visible.len() > self.page_size {
                break;
            }
            if let Some(participant) = opened.remove(&row.participant_id) {
                self.openable.insert(row.participant_id, participant);
            }
            if request_sight(&row, reader, &self.openable, today).is_some() {
                self.visible.push(row);
            } else {
                self.openable.remove(&row.participant_id);
                self.hidden.insert(row.participant_id);
            }
        }
    }

    /// The page, and the folds of the participants on it and of the one row after it.
    pub(crate) fn finish(
        self,
        today: NaiveDate,
        reader: &domain::Reader,
    ) -> (
        PendingPage,
        std::collections::HashMap<uuid::Uuid, domain::Participant>,
    ) {
        // Rows left unread (the page filled, or the limit cut the scan): another may follow.
        let page = page_of(
            self.visible,
            self.page_size,
            today,
            reader,
            &self.openable,
            !self.ended,
        );
        (page, self.openable)
    }
}

/// A pending-approvals page from rows in page order, as `reader` may see them on `today`
/// (`request_sight`): the first `page_size` visible rows. Its token names the last row shown,
/// never a hidden one, and is handed out when a visible row follows it, or when the rows were
/// not all read (`rows_unread`). Shared by the live read (through [`PendingScan`]) and its
/// rebuild (through [`pending_page`]).
fn page_of(
    rows: Vec<store::green_light::GateRow>,
    page_size: usize,
    today: NaiveDate,
    reader: &domain::Reader,
    openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
    rows_unread: bool,
) -> PendingPage {
    let mut bases: BTreeMap<uuid::Uuid, String> = BTreeMap::new();
    let mut read_model_sequences = BTreeMap::new();
    let mut shown: Vec<(store::green_light::GateRow, domain::Basis)> = rows
        .into_iter()
        .filter_map(|row| {
            let basis = request_sight(&row, reader, openable, today)?;
            Some((row, basis))
        })
        .collect();
    let more = shown.len() > page_size || rows_unread;
    shown.truncate(page_size);
    // With nothing shown there is no row the token may name; the scan reads on until it has
    // one or the rows end, so it never asks for this.
    let next_page_token = match shown.last() {
        Some((last, _)) if more => page_token(last),
        Some(_) | None => String::new(),
    };
    for (row, basis) in &shown {
        bases.insert(row.participant_id, basis.log_text());
        read_model_sequences.insert(row.participant_id, row.through_sequence);
    }
    let approvals = shown
        .iter()
        .map(|(row, _)| {
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
                valid_to: state.valid_to,
            }
        })
        .collect();
    PendingPage {
        response: v1::PendingApprovalsResponse {
            approvals,
            next_page_token,
            sips_due: Vec::new(),
        },
        bases,
        read_model_sequences,
    }
}

/// A pending-approvals page from every row between a page's start and its end, in page order,
/// as `reader` may see them on `today`: the auditor's rebuild of a logged page (its token is
/// the log's). The live read pages through [`PendingScan`].
pub(crate) fn pending_page(
    rows: Vec<store::green_light::GateRow>,
    page_size: u32,
    today: NaiveDate,
    reader: &domain::Reader,
    openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
) -> PendingPage {
    page_of(rows, page_size as usize, today, reader, openable, false)
}

fn day(value: Option<NaiveDate>) -> String {
    value.map(|day| day.to_string()).unwrap_or_default()
}

/// A gate's status on `today`.
pub(crate) fn gate_state(row: &store::green_light::GateRow, today: NaiveDate) -> v1::GateState {
    let (status, expiring) = match row.decision {
        // Asked of no agency yet: the coach confirms the participant's statement first.
        None if row.stated_only => (v1::GateStatus::UnknownSelfReported, false),
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
        v1::GateStatus::Approved
            | v1::GateStatus::Rejected
            | v1::GateStatus::Expired
            | v1::GateStatus::UnknownSelfReported
    );
    let guidance = if status == v1::GateStatus::UnknownSelfReported {
        format!(
            "self-reported: the participant says they have a benefit that needs this gate, and {agency} has no record of it; confirm with {agency}",
            agency = row.deciding_agency
        )
    } else {
        String::new()
    };
    let waiting_days = if final_decision {
        0
    } else {
        u32::try_from((today - row.requested_on).num_days().max(0)).unwrap_or(u32::MAX)
    };
    v1::GateState {
        gate: row.gate.clone(),
        deciding_agency: agency_token_to_wire(&row.deciding_agency),
        status: status as i32,
        requested_on: row.requested_on.to_string(),
        decided_on: day(row.decided_on),
        valid_from: day(row.valid_from),
        valid_to: day(row.valid_to.filter(|valid_to| valid_to.year_ce().1 < 9999)),
        expiring,
        waiting_days,
        guidance,
    }
}

/// A gate the reader may not see: its deciding agency and name, nothing of its state.
fn unknown_gate(row: &store::green_light::GateRow, guidance: String) -> v1::GateState {
    v1::GateState {
        gate: row.gate.clone(),
        deciding_agency: agency_token_to_wire(&row.deciding_agency),
        status: v1::GateStatus::UnknownNoConsent as i32,
        guidance,
        ..Default::default()
    }
}

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
            Ok(guidance) => {
                // A gate's own guidance (confirm a self-report) comes first.
                let state = gate_state(row, today);
                if state.guidance.is_empty() {
                    v1::GateState {
                        guidance: guidance.unwrap_or_default(),
                        ..state
                    }
                } else {
                    state
                }
            }
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
    } else if gates
        .iter()
        .any(|gate| gate.status == v1::GateStatus::UnknownSelfReported as i32)
    {
        // From the participant's word alone: neither approved nor refused.
        v1::Light::Unknown
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
            deciding_agency: agency.to_wire(),
            status: v1::GateStatus::UnknownNoConsent as i32,
            guidance: guidance.clone(),
            ..Default::default()
        });
    }
    light.light = v1::Light::Unknown as i32;
}

/// The deciding agency of `row` if `reader` may see its gates on `today`
/// (`Participant::gate_sight`), else the guidance naming what is missing.
fn gate_seen(
    participant: &domain::Participant,
    reader: &domain::Reader,
    row: &store::green_light::GateRow,
    today: NaiveDate,
) -> Result<domain::Agency, String> {
    let deciding_agency = domain::Agency::from_token(&row.deciding_agency)
        .ok_or_else(|| format!("unknown deciding agency {}", row.deciding_agency))?;
    participant.gate_sight(reader, deciding_agency, today)?;
    Ok(deciding_agency)
}

/// Groups gate rows (ordered by participant, activity) into activity lights as `reader` may
/// see them; participants missing from `participants` (not openable) are left out, and so is a
/// running activity none of whose rows has a gate the reader may see.
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
            // A running activity is on a board only for an approval that needs renewing (its
            // rows are those approvals). If every one is of an agency the reader may not see,
            // showing the activity would tell that such a gate exists and when it ends. The
            // row of an activity that needs no gate names no agency, so it hides nothing.
            let running = rows.iter().any(|row| row.running);
            let seen = |row: &&store::green_light::GateRow| {
                row.gate == store::green_light::NO_GATE
                    || gate_seen(participant, reader, row, today).is_ok()
            };
            if running && !rows.iter().any(seen) {
                return None;
            }
            let hidden = participant.hidden_gate_agencies(reader, today);
            let mut light = activity_light_for(&rows, today, |row| {
                let deciding_agency = gate_seen(participant, reader, row, today)?;
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

/// Where the next pending-approvals page starts: after this row, in the page query's order.
/// Plain text, so it may only ever name a row its reader was shown (`page_of`).
pub(crate) fn page_token(row: &store::green_light::GateRow) -> String {
    format!(
        "{}/{}/{}/{}",
        row.requested_on, row.participant_id, row.activity_id, row.gate
    )
}

/// Longest page token accepted: what `page_token` writes is a date, two uuids and a gate.
pub(crate) const PAGE_TOKEN_LENGTH_MAX_BYTES: usize = 128;

/// The position a page token names (`None`: the first page); a token this service did not
/// issue is refused.
pub(crate) fn parse_page_token(token: &str) -> Result<Option<PendingPosition>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        errors::invalid_input(&InputError::new(
            "page_token",
            "is not a token this service issued",
        ))
    };
    // A token is short and every part is what this service writes: a day in the edge's
    // range and a known gate. Anything else would go into the query (a day PostgreSQL cannot
    // hold came back UNAVAILABLE) and, whole, into every logged read of the page.
    if token.len() > PAGE_TOKEN_LENGTH_MAX_BYTES {
        return Err(invalid());
    }
    let parts: Vec<&str> = token.split('/').collect();
    let [day, participant, activity, gate] = parts.as_slice() else {
        return Err(invalid());
    };
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| invalid())?;
    domain::values::validate_date_range("page_token", day).map_err(|_| invalid())?;
    let gate = domain::gates::GateKind::from_token(gate).ok_or_else(invalid)?;
    Ok(Some((
        day,
        uuid::Uuid::parse_str(participant).map_err(|_| invalid())?,
        uuid::Uuid::parse_str(activity).map_err(|_| invalid())?,
        gate.token().to_owned(),
    )))
}

/// The key of an activity on a board: (participant id, activity id).
pub(crate) type BoardKey = (uuid::Uuid, uuid::Uuid);

/// The update that takes an activity off a watcher's board: its ids and nothing else.
pub(crate) fn removal(key: BoardKey) -> v1::GreenLightUpdate {
    v1::GreenLightUpdate {
        activity: Some(v1::ActivityLight {
            participant_id: key.0.to_string(),
            activity_id: key.1.to_string(),
            ..Default::default()
        }),
        initial: false,
        removed: true,
        sip: None,
    }
}

/// What one evaluation of a watch pushes, given what it pushed before.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct WatchPush {
    /// Every removal first (what left the board: started, ended, withdrawn, or no longer
    /// shown to this reader), then every changed or new light, each in board order.
    pub updates: Vec<v1::GreenLightUpdate>,
    /// Per participant, the activities pushed (ids only, removals first): what the access log
    /// keeps so the push can be rebuilt from the events.
    pub logged: BTreeMap<uuid::Uuid, Vec<serde_json::Value>>,
}

/// The push that brings a watcher's board from `sent` to `current`; `initial` marks the
/// watch's first evaluation.
pub(crate) fn watch_push(
    sent: &BTreeMap<BoardKey, v1::ActivityLight>,
    current: &BTreeMap<BoardKey, v1::ActivityLight>,
    initial: bool,
) -> WatchPush {
    let mut push = WatchPush::default();
    let removed = sent.keys().filter(|key| !current.contains_key(*key));
    for key in removed {
        push.logged
            .entry(key.0)
            .or_default()
            .push(serde_json::json!({ "activity_id": key.1, "removed": true }));
        push.updates.push(removal(*key));
    }
    for (key, light) in current {
        if sent.get(key) != Some(light) {
            push.logged
                .entry(key.0)
                .or_default()
                .push(serde_json::json!({ "activity_id": key.1, "removed": false }));
            push.updates.push(v1::GreenLightUpdate {
                activity: Some(light.clone()),
                initial,
                removed: false,
                sip: None,
            });
        }
    }
    push
}

/// Most owed SIPs one list or watch evaluation shows.
pub const SIPS_LISTED_MAX: i64 = 1_000;

/// Whose coach a SIP on the wire names: the IPS unit's boards name the coach; social services'
/// list does not (who coaches a participant is the IPS unit's record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SipCoach {
    /// The coach of the participant as folded.
    Named,
    /// Left empty.
    Withheld,
}

/// The SIP owed by `participant` as `reader` may see it on `today`, with the basis it is
/// shown under (`Participant::sip_shown_to`); `None` when none is owed or it is not shown.
pub(crate) fn sip_due(
    participant_id: uuid::Uuid,
    participant: &domain::Participant,
    reader: &domain::Reader,
    today: NaiveDate,
    coach: SipCoach,
) -> Option<(v1::SipDue, domain::Basis)> {
    let (deadline, basis) = participant.sip_shown_to(reader, today)?;
    let coach_person_id = match coach {
        SipCoach::Named => participant
            .unit_and_coach()
            .map(|(_, coach)| coach.0.clone())
            .unwrap_or_default(),
        SipCoach::Withheld => String::new(),
    };
    Some((
        v1::SipDue {
            participant_id: participant_id.to_string(),
            coach_person_id,
            ready_on: deadline.ready_on.to_string(),
            due_by: deadline.due_by.to_string(),
            overdue: deadline.status_on(today) == domain::SipDeadlineStatus::Overdue,
        },
        basis,
    ))
}

/// A SIP list's order: overdue first, then by the last day, then by participant.
pub(crate) fn sort_sips(sips: &mut [v1::SipDue]) {
    sips.sort_by(|left, right| {
        (!left.overdue, &left.due_by, &left.participant_id).cmp(&(
            !right.overdue,
            &right.due_by,
            &right.participant_id,
        ))
    });
}

/// The update that takes a participant's SIP off a watcher's board.
pub(crate) fn sip_removal(participant_id: uuid::Uuid) -> v1::GreenLightUpdate {
    v1::GreenLightUpdate {
        activity: None,
        initial: false,
        removed: true,
        sip: Some(v1::SipDue {
            participant_id: participant_id.to_string(),
            ..Default::default()
        }),
    }
}

/// Adds to `push` what brings a watcher's SIPs from `sent` to `current`: removals (held, or no
/// longer shown), then new or changed ones (a SIP turning overdue at midnight), each in
/// participant order, after the activities' updates.
pub(crate) fn sip_push(
    push: &mut WatchPush,
    sent: &BTreeMap<uuid::Uuid, v1::SipDue>,
    current: &BTreeMap<uuid::Uuid, v1::SipDue>,
    initial: bool,
) {
    for participant_id in sent.keys().filter(|key| !current.contains_key(*key)) {
        push.logged
            .entry(*participant_id)
            .or_default()
            .push(serde_json::json!({ "sip": true, "removed": true }));
        push.updates.push(sip_removal(*participant_id));
    }
    for (participant_id, sip) in current {
        if sent.get(participant_id) != Some(sip) {
            push.logged
                .entry(*participant_id)
                .or_default()
                .push(serde_json::json!({ "sip": true, "removed": false }));
            push.updates.push(v1::GreenLightUpdate {
                activity: None,
                initial,
                removed: false,
                sip: Some(sip.clone()),
            });
        }
    }
}

/// One gate's lead time on the wire, from the read model's (gate, deciding agency, decisions,
/// median days, 90th percentile days).
pub(crate) fn lead_time(
    (gate, agency, decisions, median_days, p90_days): (String, String, i64, f64, f64),
) -> v1::GateLeadTime {
    v1::GateLeadTime {
        gate,
        deciding_agency: agency_token_to_wire(&agency),
        decisions: u32::try_from(decisions).unwrap_or(u32::MAX),
        median_days,
        p90_days,
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
            stated_only: false,
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
    fn a_gate_from_a_self_report_is_unknown_until_decided_and_waits_on_no_agency_list() {
        let mut stated = row(None, None);
        stated.stated_only = true;
        let state = gate_state(&stated, date(10));
        assert_eq!(
            (state.status, state.waiting_days),
            (v1::GateStatus::UnknownSelfReported as i32, 0)
        );
        assert!(state.guidance.contains("confirm with fk"), "{state:?}");
        assert_eq!(
            activity_light(&[&stated], date(10)).light,
            v1::Light::Unknown as i32
        );
        assert!(!stated.is_pending_for("fk", None, date(10)));
        assert!(row(None, None).is_pending_for("fk", None, date(10)));
        // A decision on the gate is the agency's own record: it shows as decided.
        let mut decided = row(Some("approved"), Some((15, 31)));
        decided.stated_only = true;
        check(
            decided,
            10,
            v1::GateStatus::Approved,
            false,
            v1::Light::Green,
        );
        // Another gate's refusal still shows as red.
        let rejected = gate_of(
            row(Some("rejected"), None),
            "af_activity_decision",
            domain::Agency::Arbetsformedlingen,
        );
        assert_eq!(
            activity_light(&[&stated, &rejected], date(10)).light,
            v1::Light::Red as i32
        );
    }

    #[test]
    fn a_sip_push_shows_it_due_then_overdue_then_removed() {
        let participant_id = uuid::Uuid::from_u128(1);
        let sip = |overdue| v1::SipDue {
            participant_id: participant_id.to_string(),
            coach_person_id: "coach-17".into(),
            ready_on: "2026-05-01".into(),
            due_by: "2026-05-04".into(),
            overdue,
        };
        let none = BTreeMap::new();
        let due = BTreeMap::from([(participant_id, sip(false))]);
        let overdue = BTreeMap::from([(participant_id, sip(true))]);
        let pushed = |sent: &BTreeMap<uuid::Uuid, v1::SipDue>, current| {
            let mut push = WatchPush::default();
            sip_push(&mut push, sent, current, false);
            push
        };
        let appears = pushed(&none, &due);
        assert_eq!(appears.updates.len(), 1);
        assert_eq!(appears.updates[0].sip, Some(sip(false)));
        assert!(appears.updates[0].activity.is_none() && !appears.updates[0].removed);
        assert_eq!(pushed(&due, &due), WatchPush::default());
        let turns = pushed(&due, &overdue);
        assert_eq!(turns.updates[0].sip, Some(sip(true)));
        let cleared = pushed(&overdue, &none);
        assert_eq!(cleared.updates, vec![sip_removal(participant_id)]);
        assert_eq!(
            cleared.logged.get(&participant_id),
            Some(&vec![serde_json::json!({ "sip": true, "removed": true })])
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

    fn case_officer_of(agency: domain::Agency) -> domain::Reader {
        domain::Reader {
            agency,
            actor: domain::Actor {
                person_id: domain::PersonId("officer".into()),
                role: domain::Role::CaseOfficer,
                unit: domain::UnitId("unit".into()),
            },
        }
    }

    /// A row of the same activity, decided by another agency.
    fn gate_of(
        mut row: store::green_light::GateRow,
        gate: &str,
        deciding_agency: domain::Agency,
    ) -> store::green_light::GateRow {
        row.gate = gate.into();
        row.deciding_agency = deciding_agency.token().into();
        row
    }

    fn light_named(activity: u128, light: v1::Light) -> v1::ActivityLight {
        v1::ActivityLight {
            participant_id: uuid::Uuid::from_u128(1).to_string(),
            activity_id: uuid::Uuid::from_u128(activity).to_string(),
            light: light as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_gate_state_names_its_deciding_agency_on_the_wire() {
        for agency in domain::Agency::ALL {
            let row = gate_of(row(None, None), "some_gate", agency);
            assert_eq!(
                domain::Agency::from_wire(gate_state(&row, date(10)).deciding_agency),
                Ok(agency)
            );
        }
        let mut unknown = row(None, None);
        unknown.deciding_agency = "tax_agency".into();
        assert_eq!(
            gate_state(&unknown, date(10)).deciding_agency,
            v1::Agency::Unspecified as i32
        );
    }

    #[test]
    fn hidden_agencies_show_one_neutral_line_each_and_the_light_is_unknown_never_red() {
        let rejected = row(Some("rejected"), None);
        let hidden_gate = gate_of(
            row(None, None),
            "psychiatry_gate",
            domain::Agency::Psychiatry,
        );
        let mut light = activity_light_for(&[&rejected, &hidden_gate], date(10), |row| {
            if row.deciding_agency == domain::Agency::Psychiatry.token() {
                Err("no consent from psychiatry".to_owned())
            } else {
                Ok(None)
            }
        });
        assert_eq!(light.light, v1::Light::Unknown as i32);
        let hidden = [
            (domain::Agency::Psychiatry, "ask psychiatry".to_owned()),
            (domain::Agency::Arbetsformedlingen, "ask af".to_owned()),
        ];
        hide_gates_of_agencies_without_consent(&mut light, &hidden);
        assert_eq!(light.light, v1::Light::Unknown as i32);
        // The visible gate keeps its state; the hidden one is gone, its name with it; each
        // hidden agency has one line, whether or not it decides a gate of this activity.
        assert_eq!(light.gates.len(), 3, "{light:?}");
        assert_eq!(light.gates[0], gate_state(&rejected, date(10)));
        assert!(light
            .gates
            .iter()
            .all(|gate| gate.gate != "psychiatry_gate"));
        for (line, (agency, guidance)) in light.gates[1..].iter().zip(&hidden) {
            assert_eq!(line.status, v1::GateStatus::UnknownNoConsent as i32);
            assert_eq!(domain::Agency::from_wire(line.deciding_agency), Ok(*agency));
            assert_eq!(&line.guidance, guidance);
            assert!(line.requested_on.is_empty() && line.decided_on.is_empty());
        }
    }

    #[test]
    fn nothing_hidden_leaves_the_light_as_it_was() {
        let approved = row(Some("approved"), Some((15, 31)));
        let mut light = activity_light(&[&approved], date(10));
        let before = light.clone();
        hide_gates_of_agencies_without_consent(&mut light, &[]);
        assert_eq!(light, before);
        assert_eq!(light.light, v1::Light::Green as i32);
    }

    #[test]
    fn a_page_token_reads_back_and_a_foreign_one_is_refused() {
        let gate_row = row(None, None);
        assert_eq!(
            parse_page_token(&page_token(&gate_row)).ok(),
            Some(Some((
                gate_row.requested_on,
                gate_row.participant_id,
                gate_row.activity_id,
                gate_row.gate.clone()
            )))
        );
        assert_eq!(parse_page_token("").ok(), Some(None));
        let ids = format!("{}/{}", gate_row.participant_id, gate_row.activity_id);
        for foreign in [
            "2026-05-01".to_owned(),
            "yesterday/a/b/c".to_owned(),
            "2026-05-01/a/b/c/d".to_owned(),
            // A gate this service never writes, of any length, and a day PostgreSQL could
            // not hold: refused as input, never sent to the query or the access log.
            format!("2026-05-01/{ids}/{}", "g".repeat(64 * 1024)),
            format!("2026-05-01/{ids}/no_such_gate"),
            format!("2026-05-01/{ids}/fk\u{0}"),
            format!("-10000-01-01/{ids}/fk_activity_decision"),
        ] {
            let refused = parse_page_token(&foreign).expect_err(&foreign);
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{foreign}");
        }
    }

    /// A participant folded from consents granted by the IPS unit's coach, each in force all
    /// of May 2026: (discloser, recipient, category).
    fn consenting(
        participant: u128,
        grants: &[(
            domain::ConsentParty,
            domain::ConsentParty,
            domain::DataCategory,
        )],
    ) -> domain::Participant {
        let mut folded = domain::Participant::default();
        let mut prev_hash = domain::chain::GENESIS_HASH.to_owned();
        for (number, (discloser, recipient, category)) in (1u32..).zip(grants) {
            let body = domain::EventBody::ConsentGranted {
                consent_id: domain::ConsentId(uuid::Uuid::from_u128(u128::from(number))),
                discloser: *discloser,
                recipient: *recipient,
                data_categories: vec![*category],
                valid_from: date(1),
                valid_to: date(31),
            };
            let occurred_at = date(1)
                .and_hms_opt(9, number, 0)
                .unwrap_or_default()
                .and_utc();
            let submission = domain::Submission {
                envelope: domain::Envelope {
                    event_id: domain::EventId(uuid::Uuid::from_u128(u128::from(number))),
                    participant_id: domain::ParticipantId(uuid::Uuid::from_u128(participant)),
                    agency: domain::Agency::Municipality,
                    actor: domain::Actor {
                        person_id: domain::PersonId("coach-17".into()),
                        role: domain::Role::Coach,
                        unit: domain::UnitId("hudiksvall-ips".into()),
                    },
                    occurred_at,
                    correlation_id: None,
                    causation_id: None,
                    schema_version: domain::CURRENT_SCHEMA_VERSION,
                    data_category: body.data_category(domain::Agency::Municipality),
                    retention_class: domain::RetentionClass::SocialServicesFile,
                },
                body,
            };
            let entry = domain::ParticipantEvent::link(
                submission,
                occurred_at,
                domain::Outcome::Accepted,
                u64::from(number),
                &prev_hash,
            );
            prev_hash = entry.hash.clone();
            folded.apply_kept(&entry);
        }
        folded
    }

    /// FK's request for `participant`'s activity, made on `day`.
    fn request_of(participant: u128, day: u32) -> store::green_light::GateRow {
        let mut gate_row = row(None, None);
        gate_row.participant_id = uuid::Uuid::from_u128(participant);
        gate_row.activity_id = uuid::Uuid::from_u128(participant * 1_000 + u128::from(day));
        gate_row.requested_on = date(day);
        gate_row
    }

    /// Every page of a walk through `rows` (the read model, in any order) with `page_size`,
    /// each page's rows read as the live read reads them (`store::green_light::pending`'s
    /// cursor and limit, then the scan), with the number of store reads each page took.
    fn walk(
        mut rows: Vec<store::green_light::GateRow>,
        page_size: u32,
        reader: &domain::Reader,
        openable: &std::collections::HashMap<uuid::Uuid, domain::Participant>,
    ) -> Vec<(v1::PendingApprovalsResponse, usize)> {
        rows.sort_by(|left, right| left.pending_order().cmp(&right.pending_order()));
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let after = parse_page_token(&token).expect("a token the read handed out");
            let mut scan = PendingScan::new(page_size, after);
            let mut reads = 0;
            while let Some((after, limit)) = scan.next_read() {
                reads += 1;
                let batch: Vec<store::green_light::GateRow> = rows
                    .iter()
                    .filter(|row| {
                        after
                            .as_ref()
                            .is_none_or(|(day, participant, activity, gate)| {
                                row.pending_order() > (*day, *participant, *activity, gate.as_str())
                            })
                    })
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .cloned()
                    .collect();
                let opened = scan
                    .to_open(&batch)
                    .into_iter()
                    .filter_map(|participant_id| {
                        let participant = openable.get(&participant_id)?;
                        Some((participant_id, participant.clone()))
                    })
                    .collect();
                scan.take(batch, limit, opened, reader, date(10));
            }
            let (page, _) = scan.finish(date(10), reader);
            token = page.response.next_page_token.clone();
            pages.push((page.response, reads));
            if token.is_empty() {
                return pages;
            }
            assert!(pages.len() <= rows.len(), "the walk makes progress");
        }
    }

    /// The participants a walk's tokens name, and those its pages show, in order.
    fn named_and_shown(
        pages: &[(v1::PendingApprovalsResponse, usize)],
    ) -> (Vec<uuid::Uuid>, Vec<String>) {
        let named = pages
            .iter()
            .filter_map(|(page, _)| parse_page_token(&page.next_page_token).ok().flatten())
            .map(|(_, participant, _, _)| participant)
            .collect();
        let shown = pages
            .iter()
            .flat_map(|(page, _)| &page.approvals)
            .map(|approval| approval.activity_id.clone())
            .collect();
        (named, shown)
    }

    /// FK sees requests under consent IPS unit → FK for activities and work.
    fn seen_by_fk(participant: u128) -> domain::Participant {
        consenting(
            participant,
            &[(
                domain::ConsentParty::IpsUnit,
                domain::ConsentParty::Forsakringskassan,
                domain::DataCategory::ActivitiesAndWork,
            )],
        )
    }

    #[test]
    fn a_page_token_names_only_a_row_its_reader_was_shown() {
        // 1: no consent IPS unit → FK; 2: a protected identity FK may not open; 3: consent.
        let (no_consent, protected, seen) = (1, 2, 3);
        let rows = vec![
            request_of(no_consent, 1),
            request_of(protected, 1),
            request_of(seen, 2),
            request_of(no_consent, 3),
            request_of(protected, 4),
            request_of(seen, 5),
            request_of(protected, 6),
        ];
        let openable = std::collections::HashMap::from([
            (
                uuid::Uuid::from_u128(no_consent),
                domain::Participant::default(),
            ),
            (uuid::Uuid::from_u128(seen), seen_by_fk(seen)),
        ]);
        let reader = case_officer_of(domain::Agency::Forsakringskassan);
        for page_size in [1, 2, 3] {
            let pages = walk(rows.clone(), page_size, &reader, &openable);
            let (named, shown) = named_and_shown(&pages);
            assert!(
                named
                    .iter()
                    .all(|participant| *participant == uuid::Uuid::from_u128(seen)),
                "page size {page_size}: {pages:?}"
            );
            for hidden in [no_consent, protected] {
                let hidden = uuid::Uuid::from_u128(hidden).to_string();
                assert!(
                    pages
                        .iter()
                        .all(|(page, _)| !page.next_page_token.contains(&hidden)
                            && page
                                .approvals
                                .iter()
                                .all(|approval| approval.participant_id != hidden)),
                    "page size {page_size}: {pages:?}"
                );
            }
            // Every visible request is found, in order, each once, and no page is empty.
            assert_eq!(
                shown,
                [request_of(seen, 2), request_of(seen, 5)]
                    .map(|gate_row| gate_row.activity_id.to_string()),
                "page size {page_size}"
            );
            assert!(pages.iter().all(|(page, _)| !page.approvals.is_empty()));
        }
        // A list its reader sees whole costs one store read a page, as it always did.
        let everyone_seen = std::collections::HashMap::from([
            (uuid::Uuid::from_u128(no_consent), seen_by_fk(no_consent)),
            (uuid::Uuid::from_u128(protected), seen_by_fk(protected)),
            (uuid::Uuid::from_u128(seen), seen_by_fk(seen)),
        ]);
        let pages = walk(rows.clone(), 2, &reader, &everyone_seen);
        assert_eq!(
            pages
                .iter()
                .map(|(page, reads)| (page.approvals.len(), *reads))
                .collect::<Vec<_>>(),
            [(2, 1), (2, 1), (2, 1), (1, 1)]
        );
        // Nothing visible at all: one empty last page, no token.
        let pages = walk(rows, 1, &reader, &std::collections::HashMap::new());
        assert_eq!(pages.len(), 1);
        assert!(pages[0].0.approvals.is_empty() && pages[0].0.next_page_token.is_empty());
    }

    #[test]
    fn the_scan_limit_cuts_a_page_after_a_shown_row_and_never_before_the_first() {
        let (hidden, seen) = (1, 2);
        let run = PENDING_ROWS_SCANNED_MAX as u32 + 10;
        let mut rows = vec![request_of(seen, 1)];
        for number in 0..run {
            let mut gate_row = request_of(hidden, 2);
            gate_row.activity_id = uuid::Uuid::from_u128(u128::from(number) + 1);
            rows.push(gate_row);
        }
        rows.push(request_of(seen, 3));
        let openable =
            std::collections::HashMap::from([(uuid::Uuid::from_u128(seen), seen_by_fk(seen))]);
        let reader = case_officer_of(domain::Agency::Forsakringskassan);
        let pages = walk(rows, 5, &reader, &openable);
        // The first page is cut by the limit after its one shown row, and its token names it;
        // the next has nothing to show within the limit, so it reads on to the next visible.
        assert_eq!(
            pages.len(),
            2,
            "{:?}",
            pages.iter().map(|(_, reads)| reads).collect::<Vec<_>>()
        );
        assert_eq!(pages[0].0.approvals.len(), 1);
        assert_eq!(pages[0].0.next_page_token, page_token(&request_of(seen, 1)));
        assert_eq!(pages[1].0.approvals.len(), 1);
        assert_eq!(
            pages[1].0.approvals[0].activity_id,
            request_of(seen, 3).activity_id.to_string()
        );
        assert!(pages[1].0.next_page_token.is_empty());
    }

    #[test]
    fn hidden_rows_never_name_the_page_token() {
        let rows: Vec<store::green_light::GateRow> =
            (1..=3).map(|day| request_of(1, day)).collect();
        let reader = case_officer_of(domain::Agency::Forsakringskassan);
        let nobody_openable = std::collections::HashMap::new();
        let page = pending_page(rows.clone(), 2, date(10), &reader, &nobody_openable);
        assert!(page.response.approvals.is_empty());
        assert!(page.bases.is_empty() && page.read_model_sequences.is_empty());
        assert!(
            page.response.next_page_token.is_empty(),
            "{:?}",
            page.response
        );
        // Seen, the same rows fill a page whose token names its last shown row; the last page
        // hands out no token.
        let seen = std::collections::HashMap::from([(uuid::Uuid::from_u128(1), seen_by_fk(1))]);
        let page = pending_page(rows.clone(), 2, date(10), &reader, &seen);
        assert_eq!(page.response.approvals.len(), 2);
        assert_eq!(page.response.next_page_token, page_token(&rows[1]));
        let last = pending_page(rows, 3, date(10), &reader, &seen);
        assert!(last.response.next_page_token.is_empty());
    }

    #[test]
    fn a_running_activity_is_on_a_board_only_for_a_gate_its_reader_may_see() {
        // Running, its FK approval through day 12 expiring on day 10: the row that puts it on
        // the board.
        let mut renewal = row(Some("approved"), Some((1, 12)));
        renewal.running = true;
        renewal.open = false;
        let key = (renewal.participant_id, renewal.activity_id);
        let coach = domain::Reader {
            agency: domain::Agency::Municipality,
            actor: domain::Actor {
                person_id: domain::PersonId("coach-17".into()),
                role: domain::Role::Coach,
                unit: domain::UnitId("hudiksvall-ips".into()),
            },
        };
        let board = |rows: &[store::green_light::GateRow],
                     reader: &domain::Reader,
                     participant: &domain::Participant| {
            let participants = std::collections::HashMap::from([(key.0, participant)]);
            lights(rows, date(10), reader, &participants)
        };
        let without_consent = domain::Participant::default();
        assert!(
            board(&[renewal.clone()], &coach, &without_consent).is_empty(),
            "FK's expiring approval shows without consent FK → IPS unit"
        );
        let with_consent = consenting(
            1,
            &[(
                domain::ConsentParty::Forsakringskassan,
                domain::ConsentParty::IpsUnit,
                domain::DataCategory::BenefitDecisions,
            )],
        );
        let shown = board(&[renewal.clone()], &coach, &with_consent);
        assert!(shown
            .get(&key)
            .is_some_and(|light| light.running && light.gates.iter().any(|gate| gate.expiring)));
        // FK sees its own gate; an auditor sees every gate.
        let fk = case_officer_of(domain::Agency::Forsakringskassan);
        assert!(board(&[renewal.clone()], &fk, &without_consent).contains_key(&key));
        let mut auditor = case_officer_of(domain::Agency::Municipality);
        auditor.actor.role = domain::Role::Auditor;
        assert!(board(&[renewal.clone()], &auditor, &without_consent).contains_key(&key));
        // A visible agency's renewal shows the activity, the hidden agency as its neutral line.
        let af_renewal = gate_of(
            renewal.clone(),
            "af_activity_decision",
            domain::Agency::Arbetsformedlingen,
        );
        let af_seen = consenting(
            1,
            &[(
                domain::ConsentParty::Arbetsformedlingen,
                domain::ConsentParty::IpsUnit,
                domain::DataCategory::LabourMarket,
            )],
        );
        let shown = board(&[renewal.clone(), af_renewal], &coach, &af_seen);
        assert!(
            shown.get(&key).is_some_and(|light| light
                .gates
                .iter()
                .all(|gate| { gate.gate != "fk_activity_decision" })),
            "{shown:?}"
        );
        // A proposed activity stays on the board with its hidden gates as neutral lines.
        let mut proposed = renewal.clone();
        proposed.running = false;
        proposed.open = true;
        assert!(board(&[proposed], &coach, &without_consent).contains_key(&key));
        // An activity that needs no gate names no agency: an auditor's replay still lists it.
        let mut no_gate = renewal;
        no_gate.gate = store::green_light::NO_GATE.into();
        no_gate.deciding_agency = store::green_light::NO_GATE.into();
        assert!(board(&[no_gate], &auditor, &without_consent).contains_key(&key));
    }

    #[test]
    fn a_watch_pushes_removals_first_then_what_changed_and_logs_each_by_participant() {
        let key = |activity: u128| (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(activity));
        let sent = BTreeMap::from([
            (key(2), light_named(2, v1::Light::Waiting)),
            (key(3), light_named(3, v1::Light::Waiting)),
            (key(5), light_named(5, v1::Light::Green)),
        ]);
        let current = BTreeMap::from([
            (key(3), light_named(3, v1::Light::Green)),
            (key(4), light_named(4, v1::Light::Waiting)),
            (key(5), light_named(5, v1::Light::Green)),
        ]);
        let push = watch_push(&sent, &current, false);
        let pushed: Vec<(String, bool)> = push
            .updates
            .iter()
            .map(|update| {
                let activity = update.activity.clone().unwrap_or_default();
                (activity.activity_id, update.removed)
            })
            .collect();
        assert_eq!(
            pushed,
            [(key(2).1, true), (key(3).1, false), (key(4).1, false)]
                .map(|(activity, removed)| (activity.to_string(), removed))
        );
        assert_eq!(push.updates[0], removal(key(2)));
        assert_eq!(push.updates[1].activity, current.get(&key(3)).cloned());
        assert!(push.updates.iter().all(|update| !update.initial));
        assert_eq!(
            push.logged.get(&key(2).0),
            Some(&vec![
                serde_json::json!({ "activity_id": key(2).1, "removed": true }),
                serde_json::json!({ "activity_id": key(3).1, "removed": false }),
                serde_json::json!({ "activity_id": key(4).1, "removed": false }),
            ])
        );
        // Nothing changed: nothing is pushed, nothing is logged.
        assert_eq!(watch_push(&current, &current, false), WatchPush::default());
        // The first evaluation pushes the whole board, marked initial.
        let first = watch_push(&BTreeMap::new(), &current, true);
        assert_eq!(first.updates.len(), current.len());
        assert!(first
            .updates
            .iter()
            .all(|update| update.initial && !update.removed));
    }

    #[test]
    fn a_lead_time_names_its_agency_on_the_wire() {
        let time = lead_time(("fk_activity_decision".into(), "fk".into(), 7, 3.0, 9.5));
        assert_eq!(
            domain::Agency::from_wire(time.deciding_agency),
            Ok(domain::Agency::Forsakringskassan)
        );
        assert_eq!(
            (
                time.gate.as_str(),
                time.decisions,
                time.median_days,
                time.p90_days
            ),
            ("fk_activity_decision", 7, 3.0, 9.5)
        );
        let unknown = lead_time(("gate".into(), "tax_agency".into(), 1, 0.0, 0.0));
        assert_eq!(unknown.deciding_agency, v1::Agency::Unspecified as i32);
    }
}
