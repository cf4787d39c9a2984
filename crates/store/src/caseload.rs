//! The caseload read model: per participant, the unit, the coach, the lifecycle and the dates a
//! team leader plans with (enrolment, waiting since, last follow-up).
//!
//! Written only by the projector, in the same transaction as the timeline and the checkpoint;
//! read by the ledger's `CaseloadService` and, through it, by the municipality service when it
//! decides between enrolment and the waiting list.

use chrono::{DateTime, NaiveDate, Utc};
use domain::{EventBody, ParticipantEvent, ParticipantId};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::StoreError;

/// One participant's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseloadRow {
    /// The participant.
    pub participant_id: ParticipantId,
    /// The IPS unit, once known.
    pub unit: Option<String>,
    /// The coach, once enrolled.
    pub coach: Option<String>,
    /// `referred`, `declined`, `waiting_list`, `enrolled`, `paused` or `discharged`.
    pub lifecycle: String,
    /// When enrolled (business time).
    pub enrolled_at: Option<DateTime<Utc>>,
    /// Since when waiting for a place.
    pub waiting_since: Option<DateTime<Utc>>,
    /// The coach offered to a waiting participant, if any.
    pub offered_coach: Option<String>,
    /// The latest two-monthly follow-up.
    pub last_follow_up_at: Option<DateTime<Utc>>,
    /// The discharge-ready notice whose SIP has not been held yet (psychiatry's fact: shown
    /// only to a reader who may see the notice).
    pub sip_ready_on: Option<NaiveDate>,
}

/// Applies one recorded event inside the projector's transaction. Rejections change nothing.
pub(crate) async fn apply(
    transaction: &mut Transaction<'_, Postgres>,
    event: &ParticipantEvent,
) -> Result<(), StoreError> {
    if !event.is_accepted() {
        return Ok(());
    }
    let participant_id = event.envelope.participant_id.0;
    let at = event.envelope.occurred_at;
    let body = match &event.body {
        EventBody::EventCorrected { corrected, .. } => match corrected.as_ref() {
            EventBody::DischargeReady { ready_on } => {
                return sip_ready(transaction, participant_id, *ready_on).await;
            }
            // A corrected enrolment moves the participant to the corrected unit and coach.
            EventBody::ParticipantEnrolled { unit, coach }
            | EventBody::ParticipantReEnrolled { unit, coach } => {
                return update(transaction, participant_id, "UPDATE caseload_participants SET unit = $2, coach = $3, updated_at = $4 WHERE participant_id = $1", Some(&unit.0), Some(&coach.0), at).await;
            }
            // A corrected assignment names the coach, as the aggregate folds it; it counts in
            // that coach's load, no longer in the one first named.
            assignment @ EventBody::CoachAssigned { .. } => assignment,
            _ => return Ok(()),
        },
        body => body,
    };
    match body {
        EventBody::ParticipantReferred { .. } => {
            sqlx::query(
                "INSERT INTO caseload_participants (participant_id, lifecycle, referred_at, updated_at) VALUES ($1, 'referred', $2, $2)
                 ON CONFLICT (participant_id) DO UPDATE SET lifecycle = 'referred', referred_at = $2, updated_at = $2",
            )
            .bind(participant_id)
            .bind(at)
            .execute(&mut **transaction)
            .await?;
            Ok(())
        }
        EventBody::ReferralDeclined { .. } => lifecycle(transaction, participant_id, "declined", at).await,
        EventBody::PlacedOnWaitingList { unit } => {
            update(transaction, participant_id, "UPDATE caseload_participants SET lifecycle = 'waiting_list', unit = $2, waiting_since = $4, updated_at = $4 WHERE participant_id = $1 AND $3::text IS NULL", Some(&unit.0), None, at).await
        }
        EventBody::WaitingListPlaceOffered { coach, .. } => {
            update(transaction, participant_id, "UPDATE caseload_participants SET offered_coach = $3, place_offered_at = $4, updated_at = $4 WHERE participant_id = $1 AND $2::text IS NULL", None, Some(&coach.0), at).await
        }
        EventBody::ParticipantEnrolled { unit, coach } | EventBody::ParticipantReEnrolled { unit, coach } => {
            update(
                transaction,
                participant_id,
                "UPDATE caseload_participants SET lifecycle = 'enrolled', unit = $2, coach = $3, enrolled_at = $4, waiting_since = NULL,
                     offered_coach = NULL, place_offered_at = NULL, last_follow_up_at = NULL, updated_at = $4 WHERE participant_id = $1",
                Some(&unit.0),
                Some(&coach.0),
                at,
            )
            .await
        }
        EventBody::CoachAssigned { coach } => {
            update(transaction, participant_id, "UPDATE caseload_participants SET coach = $3, updated_at = $4 WHERE participant_id = $1 AND $2::text IS NULL", None, Some(&coach.0), at).await
        }
        EventBody::ParticipantPaused { .. } => lifecycle(transaction, participant_id, "paused", at).await,
        EventBody::ParticipantResumed => lifecycle(transaction, participant_id, "enrolled", at).await,
        EventBody::ParticipantDischarged { .. } => lifecycle(transaction, participant_id, "discharged", at).await,
        // As the aggregate folds it (`Participant::sip_deadline`): a notice owes a SIP, and a
        // SIP held on or after the notice's day settles it.
        EventBody::DischargeReady { ready_on } => sip_ready(transaction, participant_id, *ready_on).await,
        EventBody::SipHeld { held_on } => {
            sqlx::query("UPDATE caseload_participants SET sip_ready_on = NULL WHERE participant_id = $1 AND sip_ready_on <= $2")
                .bind(participant_id)
                .bind(held_on)
                .execute(&mut **transaction)
                .await?;
            Ok(())
        }
        EventBody::FollowUpRecorded { .. } => {
            update(transaction, participant_id, "UPDATE caseload_participants SET last_follow_up_at = $4, updated_at = $4 WHERE participant_id = $1 AND $2::text IS NULL AND $3::text IS NULL", None, None, at).await
        }
        _ => Ok(()),
    }
}

async fn sip_ready(
    transaction: &mut Transaction<'_, Postgres>,
    participant_id: uuid::Uuid,
    ready_on: NaiveDate,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE caseload_participants SET sip_ready_on = $2 WHERE participant_id = $1")
        .bind(participant_id)
        .bind(ready_on)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

async fn lifecycle(
    transaction: &mut Transaction<'_, Postgres>,
    participant_id: uuid::Uuid,
    lifecycle: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE caseload_participants SET lifecycle = $2, updated_at = $3 WHERE participant_id = $1")
        .bind(participant_id)
        .bind(lifecycle)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

async fn update(
    transaction: &mut Transaction<'_, Postgres>,
    participant_id: uuid::Uuid,
    statement: &str,
    unit: Option<&str>,
    coach: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(statement)
        .bind(participant_id)
        .bind(unit)
        .bind(coach)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

fn row(row: &sqlx::postgres::PgRow) -> Result<CaseloadRow, StoreError> {
    Ok(CaseloadRow {
        participant_id: ParticipantId(row.try_get("participant_id")?),
        unit: row.try_get("unit")?,
        coach: row.try_get("coach")?,
        lifecycle: row.try_get("lifecycle")?,
        enrolled_at: row.try_get("enrolled_at")?,
        waiting_since: row.try_get("waiting_since")?,
        offered_coach: row.try_get("offered_coach")?,
        last_follow_up_at: row.try_get("last_follow_up_at")?,
        sip_ready_on: row.try_get("sip_ready_on")?,
    })
}

const COLUMNS: &str = "participant_id, unit, coach, lifecycle, enrolled_at, waiting_since, offered_coach, last_follow_up_at, sip_ready_on";

/// A unit's board, read from one snapshot so the active list and the waiting list agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// Enrolled and paused participants (optionally one coach's), by coach then enrolment.
    pub active: Vec<CaseloadRow>,
    /// The waiting list, longest-waiting first.
    pub waiting_list: Vec<CaseloadRow>,
}

/// Reads a unit's board in one repeatable-read transaction.
pub async fn board(
    pool: &PgPool,
    unit: &str,
    coach: Option<&str>,
    limit: i64,
) -> Result<Board, StoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let active = active(&mut *transaction, unit, coach, limit).await?;
    let waiting_list = waiting_list(&mut *transaction, unit, limit).await?;
    transaction.commit().await?;
    Ok(Board {
        active,
        waiting_list,
    })
}

/// A unit's load in counts: what an enrolment's capacity check needs, and nothing about anyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitLoad {
    /// Each coach with enrolled or paused participants, by coach (`None`: enrolled without a
    /// coach, last), and how many.
    pub coaches: Vec<(Option<String>, u64)>,
    /// How many wait for a place.
    pub waiting: u64,
}

/// Counts a unit's active participants per coach and its waiting list, in one statement (one
/// snapshot). Counted by PostgreSQL, not from rows read here: an enrolment asks this every
/// time, so its cost must not grow with the unit, and no row limit may cut a count short (a
/// coach cut off a capped list would look as if they had room).
pub async fn unit_load(pool: &PgPool, unit: &str) -> Result<UnitLoad, StoreError> {
    let rows = sqlx::query(
        "SELECT lifecycle = 'waiting_list' AS waiting, coach, count(*) AS participants
         FROM caseload_participants
         WHERE unit = $1 AND lifecycle IN ('enrolled', 'paused', 'waiting_list')
         GROUP BY 1, 2
         ORDER BY 1, 2",
    )
    .bind(unit)
    .fetch_all(pool)
    .await?;
    let mut load = UnitLoad {
        coaches: Vec::new(),
        waiting: 0,
    };
    for row in rows {
        let participants = u64::try_from(row.try_get::<i64, _>("participants")?).unwrap_or(0);
        if row.try_get::<bool, _>("waiting")? {
            load.waiting += participants;
        } else {
            load.coaches
                .push((row.try_get::<Option<String>, _>("coach")?, participants));
        }
    }
    Ok(load)
}

/// The participants of a unit's waiting list who have no place offered, longest-waiting first.
pub async fn waiting_without_offer(
    pool: &PgPool,
    unit: &str,
    limit: i64,
) -> Result<Vec<ParticipantId>, StoreError> {
    let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT participant_id FROM caseload_participants
         WHERE unit = $1 AND lifecycle = 'waiting_list' AND offered_coach IS NULL
         ORDER BY waiting_since, participant_id LIMIT $2",
    )
    .bind(unit)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ParticipantId).collect())
}

/// Enrolled and paused participants of a unit (optionally one coach's), by coach then enrolment.
pub async fn active<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    unit: &str,
    coach: Option<&str>,
    limit: i64,
) -> Result<Vec<CaseloadRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM caseload_participants
         WHERE unit = $1 AND lifecycle IN ('enrolled', 'paused') AND ($2::text IS NULL OR coach = $2)
         ORDER BY coach, enrolled_at, participant_id LIMIT $3"
    ))
    .bind(unit)
    .bind(coach)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(row).collect()
}

/// A unit's waiting list, longest-waiting first.
pub async fn waiting_list<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    unit: &str,
    limit: i64,
) -> Result<Vec<CaseloadRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM caseload_participants WHERE unit = $1 AND lifecycle = 'waiting_list'
         ORDER BY waiting_since, participant_id LIMIT $2"
    ))
    .bind(unit)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(row).collect()
}

/// One participant's row.
pub async fn participant(
    pool: &PgPool,
    participant_id: ParticipantId,
) -> Result<Option<CaseloadRow>, StoreError> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM caseload_participants WHERE participant_id = $1"
    ))
    .bind(participant_id.0)
    .fetch_optional(pool)
    .await?;
    found.as_ref().map(row).transpose()
}

/// Which owed SIPs a read asks for: one coach's participants, one participant, or (neither)
/// every participant with one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SipsAsked<'a> {
    /// Only this coach's participants.
    pub coach: Option<&'a str>,
    /// Only this participant.
    pub participant_id: Option<uuid::Uuid>,
    /// Only these participants (a watch re-reading those a projected batch changed).
    pub among: Option<&'a [uuid::Uuid]>,
}

/// Participants whose discharge-ready notice still owes a SIP (`sip_ready_on` set), earliest
/// notice first: the candidates a read folds and shows only where the reader may see the
/// notice.
pub async fn sips_owed(
    pool: &PgPool,
    asked: SipsAsked<'_>,
    limit: i64,
) -> Result<Vec<CaseloadRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM caseload_participants
         WHERE sip_ready_on IS NOT NULL AND ($1::text IS NULL OR coach = $1)
           AND ($2::uuid IS NULL OR participant_id = $2)
           AND ($4::uuid[] IS NULL OR participant_id = ANY($4))
         ORDER BY sip_ready_on, participant_id LIMIT $3"
    ))
    .bind(asked.coach)
    .bind(asked.participant_id)
    .bind(limit)
    .bind(asked.among)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}
