//! `ips.v1.CaseloadService`: a unit's caseload board (active participants per coach, the waiting
//! list, follow-ups due) and one participant's placement, from the caseload read model.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use domain::InputError;
use proto::v1::{self, caseload_service_server::CaseloadService};
use rpc::{errors, fields};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::clock::Clock;

/// Most active participants one board lists (a unit of 50 coaches at 20 each).
pub const CASELOAD_PARTICIPANTS_MAX: i64 = 1_000;
/// Longest follow-up horizon, in days.
pub const FOLLOW_UP_HORIZON_DAYS_MAX: u32 = 365;
/// Follow-up horizon when the caller does not say, in days.
pub const FOLLOW_UP_HORIZON_DAYS_DEFAULT: u32 = 14;
/// Months between two follow-ups (DOMAIN.md §3: every two months).
pub const FOLLOW_UP_INTERVAL_MONTHS: u32 = 2;

/// The service implementation.
pub struct CaseloadApi {
    pub(crate) pool: PgPool,
    pub(crate) clock: std::sync::Arc<dyn Clock>,
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// When the next two-monthly follow-up is due: two months after the last one, or after enrolment.
pub fn follow_up_due_on(row: &store::CaseloadRow) -> Option<NaiveDate> {
    let base = row.last_follow_up_at.or(row.enrolled_at)?.date_naive();
    base.checked_add_months(Months::new(FOLLOW_UP_INTERVAL_MONTHS))
}

fn participant(row: &store::CaseloadRow) -> v1::CaseloadParticipant {
    v1::CaseloadParticipant {
        participant_id: row.participant_id.to_string(),
        coach_person_id: row.coach.clone().unwrap_or_default(),
        lifecycle: row.lifecycle.clone(),
        enrolled_at: time(row.enrolled_at),
        last_follow_up_at: time(row.last_follow_up_at),
        follow_up_due_on: follow_up_due_on(row)
            .map(|day| day.to_string())
            .unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl CaseloadService for CaseloadApi {
    async fn get_caseload(
        &self,
        request: Request<v1::GetCaseloadRequest>,
    ) -> Result<Response<v1::GetCaseloadResponse>, Status> {
        let request = request.into_inner();
        let unit =
            domain::UnitId::parse(&request.unit).map_err(|error| errors::invalid_input(&error))?;
        let coach = if request.coach_person_id.trim().is_empty() {
            None
        } else {
            Some(
                domain::PersonId::parse(&request.coach_person_id).map_err(|error| {
                    errors::invalid_input(&InputError::new("coach_person_id", error.reason))
                })?,
            )
        };
        let horizon_days = match request.follow_up_horizon_days {
            0 => FOLLOW_UP_HORIZON_DAYS_DEFAULT,
            days if days > FOLLOW_UP_HORIZON_DAYS_MAX => {
                return Err(errors::invalid_input(&InputError::new(
                    "follow_up_horizon_days",
                    "must be at most 365",
                )));
            }
            days => days,
        };
        let store::caseload::Board {
            active,
            waiting_list: waiting,
        } = store::caseload::board(
            &self.pool,
            &unit.0,
            coach.as_ref().map(|coach| coach.0.as_str()),
            CASELOAD_PARTICIPANTS_MAX,
        )
        .await
        .map_err(|error| errors::from_store(&error))?;
        let mut coaches: Vec<v1::CoachCaseload> = Vec::new();
        for row in &active {
            let name = row.coach.clone().unwrap_or_default();
            match coaches.last_mut() {
                Some(last) if last.coach_person_id == name => last.active_participants += 1,
                _ => coaches.push(v1::CoachCaseload {
                    coach_person_id: name,
                    active_participants: 1,
                }),
            }
        }
        let horizon = self.clock.now().date_naive() + Duration::days(i64::from(horizon_days));
        let mut due: Vec<&store::CaseloadRow> = active
            .iter()
            .filter(|row| follow_up_due_on(row).is_some_and(|due_on| due_on <= horizon))
            .collect();
        due.sort_by_key(|row| follow_up_due_on(row));
        Ok(Response::new(v1::GetCaseloadResponse {
            unit: unit.0,
            coaches,
            active: active.iter().map(participant).collect(),
            waiting_list: waiting
                .iter()
                .map(|row| v1::WaitingParticipant {
                    participant_id: row.participant_id.to_string(),
                    waiting_since: time(row.waiting_since),
                    offered_coach_person_id: row.offered_coach.clone().unwrap_or_default(),
                })
                .collect(),
            follow_ups_due: due.into_iter().map(participant).collect(),
        }))
    }

    async fn get_placement(
        &self,
        request: Request<v1::GetPlacementRequest>,
    ) -> Result<Response<v1::Placement>, Status> {
        let participant_id = fields::required_participant_id(&request.into_inner().participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        let row = store::caseload::participant(&self.pool, participant_id)
            .await
            .map_err(|error| errors::from_store(&error))?;
        let row = row.ok_or_else(|| errors::participant_not_found(&participant_id.to_string()))?;
        Ok(Response::new(v1::Placement {
            participant_id: participant_id.to_string(),
            unit: row.unit.unwrap_or_default(),
            coach_person_id: row.coach.unwrap_or_default(),
            lifecycle: row.lifecycle,
        }))
    }
}
