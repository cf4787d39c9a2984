//! The green-light read model: every gate of every proposed activity, with its latest decision.
//!
//! Which gates an activity needs is the domain's decision (`domain::gates`), so the projector
//! does not re-implement it: for each participant a batch touches, it folds that participant's
//! history into the aggregate and writes every activity's request (open or not, so a decision
//! that arrives in the same batch as the start is still recorded for the lead times). The same rules then
//! answer the coach's board, the officers' pending approvals and the lead-time report.

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use domain::gates::{self, GateDecision};
use domain::{Participant, ParticipantEvent, ParticipantId};
use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::StoreError;

/// Rewrites one participant's rows from their folded history, inside the projector's transaction.
pub(crate) async fn refresh(
    transaction: &mut Transaction<'_, Postgres>,
    participant_id: ParticipantId,
) -> Result<(), StoreError> {
    let mut participant = Participant::default();
    {
        let mut rows = sqlx::query("SELECT payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1 ORDER BY sequence")
            .bind(participant_id.to_string())
            .fetch(&mut **transaction);
        while let Some(row) = rows.try_next().await? {
            let payload: serde_json::Value = row.try_get("payload")?;
            let event: ParticipantEvent = serde_json::from_value(payload)
                .map_err(|error| StoreError::Unreadable(error.to_string()))?;
            participant.apply(event);
        }
    }
    sqlx::query(
        "UPDATE green_light_gates SET open = false, running = false WHERE participant_id = $1",
    )
    .bind(participant_id.0)
    .execute(&mut **transaction)
    .await?;
    for row in gate_rows(participant_id, &participant) {
        sqlx::query(
            "INSERT INTO green_light_gates (participant_id, activity_id, gate, deciding_agency, unit, coach, activity_kind,
                 planned_start, requested_on, open, decision, decided_on, valid_from, valid_to, running, through_sequence,
                 stated_only)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $14, $10, $11, $12, $13, $15, $16, $17)
             ON CONFLICT (participant_id, activity_id, gate) DO UPDATE SET
                 deciding_agency = $4, unit = $5, coach = $6, activity_kind = $7, planned_start = $8, requested_on = $9,
                 open = $14, decision = $10, decided_on = $11, valid_from = $12, valid_to = $13, running = $15,
                 through_sequence = $16, stated_only = $17",
        )
        .bind(row.participant_id)
        .bind(row.activity_id)
        .bind(&row.gate)
        .bind(&row.deciding_agency)
        .bind(&row.unit)
        .bind(&row.coach)
        .bind(&row.activity_kind)
        .bind(row.planned_start)
        .bind(row.requested_on)
        .bind(row.decision.map(StoredDecision::token))
        .bind(row.decided_on)
        .bind(row.valid_from)
        .bind(row.valid_to)
        .bind(row.open)
        .bind(row.running)
        .bind(i64::try_from(row.through_sequence).unwrap_or(i64::MAX))
        .bind(row.stated_only)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// The rows [`refresh`] writes for a participant folded through some entry: the one mapping
/// from the aggregate's gates to the read model, used by the projector and by an auditor
/// rebuilding a read of the read model from the events.
pub fn gate_rows(participant_id: ParticipantId, participant: &Participant) -> Vec<GateRow> {
    let (unit, coach) = participant
        .unit_and_coach()
        .map_or((None, None), |(unit, coach)| {
            (Some(unit.0.clone()), Some(coach.0.clone()))
        });
    let through_sequence = participant.chain_head().0;
    let mut rows = Vec::new();
    for request in gates::requests(participant.activities(), participant.situation()) {
        // An activity that needs no gate still has its row (gate `NO_GATE`), so it is on the
        // board like any other: whether an activity shows must not tell a reader without
        // consent that some agency decides a gate of it.
        let no_gate = [gates::GateView {
            kind: gates::GateKind::FkActivityDecision,
            decided: None,
            stated_only: false,
        }];
        let (views, placeholder) = if request.gates.is_empty() {
            (&no_gate[..], true)
        } else {
            (&request.gates[..], false)
        };
        for gate in views {
            let (gate_token, deciding_agency) = if placeholder {
                (NO_GATE, NO_GATE)
            } else {
                (gate.kind.token(), gate.kind.deciding_agency().token())
            };
            let (decision, decided_on, valid_from, valid_to) = match &gate.decided {
                None => (None, None, None, None),
                Some(decided) => match &decided.decision {
                    GateDecision::Approved { valid } => (
                        Some(StoredDecision::Approved),
                        Some(decided.decided_on),
                        Some(valid.from),
                        Some(valid.to),
                    ),
                    GateDecision::Rejected => (
                        Some(StoredDecision::Rejected),
                        Some(decided.decided_on),
                        None,
                        None,
                    ),
                    GateDecision::InformationNeeded => (
                        Some(StoredDecision::InformationNeeded),
                        Some(decided.decided_on),
                        None,
                        None,
                    ),
                },
            };
            rows.push(GateRow {
                participant_id: participant_id.0,
                activity_id: request.activity_id.0,
                gate: gate_token.to_owned(),
                deciding_agency: deciding_agency.to_owned(),
                unit: unit.clone(),
                coach: coach.clone(),
                activity_kind: activity_kind_token(request.kind),
                planned_start: request.planned_start,
                requested_on: request.proposed_on,
                decision,
                decided_on,
                valid_from: valid_from.map(clamp_date),
                valid_to: valid_to.map(clamp_date),
                open: request.open,
                running: request.running,
                through_sequence,
                stated_only: gate.stated_only && !placeholder,
            });
        }
    }
    rows
}

/// PostgreSQL's `date` ends at year 5874897; an open-ended approval is stored as 9999-12-31.
fn clamp_date(day: NaiveDate) -> NaiveDate {
    day.min(NaiveDate::from_ymd_opt(9999, 12, 31).expect("9999-12-31 is a date"))
}

/// An activity kind's stored token: its serde name (`arbetstraning`, ...).
fn activity_kind_token(kind: domain::values::ActivityKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(token)) => token,
        other => unreachable!("ActivityKind serialises as its snake_case name, not {other:?}"),
    }
}

/// A gate's latest decision as the read model stores it (`green_light_gates.decision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredDecision {
    /// Approved, for the row's validity period.
    Approved,
    /// Rejected.
    Rejected,
    /// The decider needs more information (the request stays open).
    InformationNeeded,
}

impl StoredDecision {
    /// Every decision.
    pub const ALL: [Self; 3] = [Self::Approved, Self::Rejected, Self::InformationNeeded];

    /// The stored token (the SQL of this module names these too).
    pub fn token(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::InformationNeeded => "information_needed",
        }
    }

    /// The decision a stored token names.
    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|decision| decision.token() == token)
    }
}

/// The `gate` and `deciding_agency` of the one row of an activity that needs no gate. No
/// agency's pending list or lead times ever match it; the board shows the activity, no gate.
pub const NO_GATE: &str = "none";

/// One gate row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateRow {
    /// The participant.
    pub participant_id: uuid::Uuid,
    /// The activity.
    pub activity_id: uuid::Uuid,
    /// The gate's token.
    pub gate: String,
    /// The deciding agency's token.
    pub deciding_agency: String,
    /// The participant's unit.
    pub unit: Option<String>,
    /// The participant's coach.
    pub coach: Option<String>,
    /// The activity kind's token.
    pub activity_kind: String,
    /// The planned start.
    pub planned_start: NaiveDate,
    /// When the request was made.
    pub requested_on: NaiveDate,
    /// The latest decision, or none yet.
    pub decision: Option<StoredDecision>,
    /// When decided.
    pub decided_on: Option<NaiveDate>,
    /// Approval validity.
    pub valid_from: Option<NaiveDate>,
    /// Approval validity.
    pub valid_to: Option<NaiveDate>,
    /// Proposed and not yet started: its gates are still awaited.
    pub open: bool,
    /// The activity has started and not ended (the row is listed for an approval that ends).
    pub running: bool,
    /// The participant's entry the row was folded through (its chain head then).
    pub through_sequence: u64,
    /// The gate applies only because of the participant's own statement of a benefit
    /// (`domain::gates::stated_only_gates`): unknown until FK's record exists, and on no
    /// agency's pending list while undecided.
    pub stated_only: bool,
}

impl GateRow {
    /// Whether [`pending`] lists the row for `agency` (and `unit`), exactly as its WHERE clause
    /// decides (the cursor and the order aside): for rebuilding a page from the events.
    pub fn is_pending_for(
        &self,
        agency: &str,
        unit: Option<&str>,
        running_approvals_ending_by: NaiveDate,
    ) -> bool {
        self.deciding_agency == agency
            && unit.is_none_or(|unit| self.unit.as_deref() == Some(unit))
            && ((self.open
                && !(self.stated_only && self.decision.is_none())
                && matches!(
                    self.decision,
                    None | Some(StoredDecision::InformationNeeded)
                ))
                || self.is_renewal_due(running_approvals_ending_by))
    }

    /// Whether [`open_gates`] lists the row (its participant or coach filter aside).
    pub fn is_on_board(&self, running_approvals_ending_by: NaiveDate) -> bool {
        self.open || self.is_renewal_due(running_approvals_ending_by)
    }

    fn is_renewal_due(&self, running_approvals_ending_by: NaiveDate) -> bool {
        self.running
            && self.decision == Some(StoredDecision::Approved)
            && self
                .valid_to
                .is_some_and(|valid_to| valid_to <= running_approvals_ending_by)
    }

    /// The page order of [`pending`] (and its continuation token).
    pub fn pending_order(&self) -> (NaiveDate, uuid::Uuid, uuid::Uuid, &str) {
        (
            self.requested_on,
            self.participant_id,
            self.activity_id,
            &self.gate,
        )
    }
}

const COLUMNS: &str = "participant_id, activity_id, gate, deciding_agency, unit, coach, activity_kind, planned_start, requested_on, decision, decided_on, valid_from, valid_to, open, running, through_sequence, stated_only";

fn gate_row(row: &sqlx::postgres::PgRow) -> Result<GateRow, StoreError> {
    let participant_id: uuid::Uuid = row.try_get("participant_id")?;
    // Whether a gate counts as approved is decided from this value: one the projector never
    // writes is reported, not read as some decision.
    let decision = row
        .try_get::<Option<String>, _>("decision")?
        .map(|token| {
            StoredDecision::from_token(&token).ok_or_else(|| {
                StoreError::Unreadable(format!(
                    "green_light_gates.decision `{token}` of participant {participant_id} is no decision"
                ))
            })
        })
        .transpose()?;
    Ok(GateRow {
        participant_id,
        activity_id: row.try_get("activity_id")?,
        gate: row.try_get("gate")?,
        deciding_agency: row.try_get("deciding_agency")?,
        unit: row.try_get("unit")?,
        coach: row.try_get("coach")?,
        activity_kind: row.try_get("activity_kind")?,
        planned_start: row.try_get("planned_start")?,
        requested_on: row.try_get("requested_on")?,
        decision,
        decided_on: row.try_get("decided_on")?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        open: row.try_get("open")?,
        running: row.try_get("running")?,
        through_sequence: u64::try_from(row.try_get::<i64, _>("through_sequence")?).unwrap_or(0),
        stated_only: row.try_get("stated_only")?,
    })
}

/// Gates waiting on `agency`: open ones with no decision yet or more information needed, and
/// approvals of running activities that end on or before `running_approvals_ending_by` (they
/// need a new decision); optionally for one unit, oldest request first, after the
/// `(requested_on, participant, activity, gate)` cursor.
pub async fn pending(
    pool: &PgPool,
    agency: &str,
    unit: Option<&str>,
    after: Option<(NaiveDate, uuid::Uuid, uuid::Uuid, String)>,
    running_approvals_ending_by: NaiveDate,
    limit: i64,
) -> Result<Vec<GateRow>, StoreError> {
    let (after_day, after_participant, after_activity, after_gate) = match after {
        Some((day, participant, activity, gate)) => {
            (Some(day), Some(participant), Some(activity), Some(gate))
        }
        None => (None, None, None, None),
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM green_light_gates
         WHERE deciding_agency = $1 AND ($2::text IS NULL OR unit = $2)
           AND ((open AND NOT (stated_only AND decision IS NULL)
                 AND (decision IS NULL OR decision = 'information_needed'))
                OR (running AND decision = 'approved' AND valid_to <= $8))
           AND ($3::date IS NULL OR (requested_on, participant_id, activity_id, gate) > ($3, $4, $5, $6))
         ORDER BY requested_on, participant_id, activity_id, gate LIMIT $7"
    ))
    .bind(agency)
    .bind(unit)
    .bind(after_day)
    .bind(after_participant)
    .bind(after_activity)
    .bind(after_gate)
    .bind(limit)
    .bind(running_approvals_ending_by)
    .fetch_all(pool)
    .await?;
    rows.iter().map(gate_row).collect()
}

/// The open gates of a coach's participants, or of one participant, and the approvals of their
/// running activities that end on or before `running_approvals_ending_by`; only of the
/// participants `among` when given (a watch re-reading those a projected batch changed).
pub async fn open_gates(
    pool: &PgPool,
    coach: Option<&str>,
    participant_id: Option<ParticipantId>,
    among: Option<&[uuid::Uuid]>,
    running_approvals_ending_by: NaiveDate,
    limit: i64,
) -> Result<Vec<GateRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM green_light_gates
         WHERE (open OR (running AND decision = 'approved' AND valid_to <= $4))
           AND ($1::text IS NULL OR coach = $1) AND ($2::uuid IS NULL OR participant_id = $2)
           AND ($5::uuid[] IS NULL OR participant_id = ANY($5))
         ORDER BY participant_id, activity_id, gate LIMIT $3"
    ))
    .bind(coach)
    .bind(participant_id.map(|id| id.0))
    .bind(limit)
    .bind(running_approvals_ending_by)
    .bind(among)
    .fetch_all(pool)
    .await?;
    rows.iter().map(gate_row).collect()
}

/// One cell of the lead-time report: a gate (with its deciding agency) over a period of whole
/// calendar months. The figures are the read model's; whether a reader may see them is the
/// ledger's decision (`lead_time_cell_count_min`), which needs `fewest_decisions_in_a_month`.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadTimeCell {
    pub gate: String,
    pub deciding_agency: String,
    pub decisions: i64,
    /// The smallest count among the period's months in which this gate had any decision: a
    /// cell is only as safe as its thinnest month, since two periods differing by that month
    /// subtract to it.
    pub fewest_decisions_in_a_month: i64,
    pub median_days: f64,
    pub p90_days: f64,
}

/// Lead times (request → decision, in days) per gate and agency for decisions made within
/// `[from, to]`: count, the fewest in any one calendar month with decisions, median and 90th
/// percentile. Months are those of the business date the decision was made on.
pub async fn lead_times(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<LeadTimeCell>, StoreError> {
    let rows = sqlx::query(
        "WITH decided AS (
             SELECT gate, deciding_agency, decided_on - requested_on AS days,
                    date_trunc('month', decided_on) AS month
             FROM green_light_gates
             WHERE decision IN ('approved', 'rejected') AND decided_on BETWEEN $1 AND $2
         ), monthly AS (
             SELECT gate, deciding_agency, min(decisions) AS fewest
             FROM (SELECT gate, deciding_agency, count(*) AS decisions
                   FROM decided GROUP BY gate, deciding_agency, month) AS per_month
             GROUP BY gate, deciding_agency
         )
         SELECT decided.gate, decided.deciding_agency, count(*) AS decisions,
                monthly.fewest AS fewest_decisions_in_a_month,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY decided.days) AS median_days,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY decided.days) AS p90_days
         FROM decided JOIN monthly ON monthly.gate = decided.gate
                                  AND monthly.deciding_agency = decided.deciding_agency
         GROUP BY decided.gate, decided.deciding_agency, monthly.fewest
         ORDER BY decided.gate",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LeadTimeCell {
                gate: row.try_get("gate")?,
                deciding_agency: row.try_get("deciding_agency")?,
                decisions: row.try_get("decisions")?,
                fewest_decisions_in_a_month: row.try_get("fewest_decisions_in_a_month")?,
                median_days: row.try_get("median_days")?,
                p90_days: row.try_get("p90_days")?,
            })
        })
        .collect()
}
