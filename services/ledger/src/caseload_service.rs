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

/// The access log's name for each read.
const GET_CASELOAD: &str = "ips.v1.CaseloadService/GetCaseload";
const GET_PLACEMENT: &str = "ips.v1.CaseloadService/GetPlacement";
const GET_UNIT_LOAD: &str = "ips.v1.CaseloadService/GetUnitLoad";

/// The service implementation.
pub struct CaseloadApi {
    pub(crate) pool: PgPool,
    pub(crate) folds: std::sync::Arc<crate::reading::ReadFolds>,
    pub(crate) access_log: crate::reading::AccessLog,
    pub(crate) clock: std::sync::Arc<dyn Clock>,
    /// Moves whenever the projector commits: a placement is read from the caseload read model,
    /// which may trail the events the caller has just been told were accepted.
    pub(crate) projector_progress: tokio::sync::watch::Receiver<u64>,
    /// Longest a placement read waits for the read model to reach the participant's head.
    pub(crate) read_your_writes_wait_max_ms: u64,
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// When the next two-monthly follow-up is due: two months after the last one, or after enrolment.
pub fn follow_up_due_on(row: &store::CaseloadRow) -> Option<NaiveDate> {
    let base = crate::clock::business_date(row.last_follow_up_at.or(row.enrolled_at)?);
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

/// Each coach's active participants as counted by PostgreSQL (`store::caseload::unit_load`),
/// on the wire: the one count behind both the capacity check and the board.
fn coach_caseloads(coaches: Vec<(Option<String>, u64)>) -> Vec<v1::CoachCaseload> {
    coaches
        .into_iter()
        .map(|(coach, participants)| v1::CoachCaseload {
            coach_person_id: coach.unwrap_or_default(),
            active_participants: u32::try_from(participants).unwrap_or(u32::MAX),
        })
        .collect()
}

/// The reader's unit must be the board's.
fn own_unit(reader: &domain::Reader, unit: &domain::UnitId) -> Result<(), Status> {
    if *unit == reader.actor.unit {
        return Ok(());
    }
    Err(errors::denied(
        "other_unit",
        &format!(
            "other_unit: {} works for {}, not {}",
            reader.actor.person_id, reader.actor.unit, unit
        ),
    ))
}

impl CaseloadApi {
    /// The SIPs owed on the board's participants, as `reader` may see them on `today`, and the
    /// basis each was shown under (for the access log). The read model names the candidates;
    /// each is folded, so the deadline and the consent decision are the domain's
    /// (`Participant::sip_shown_to`: `Participant::sight` of the discharge-ready notice).
    async fn sips_due(
        &self,
        reader: &domain::Reader,
        active: &[store::CaseloadRow],
        openable: &std::collections::HashSet<uuid::Uuid>,
        today: NaiveDate,
    ) -> Result<(Vec<v1::SipDue>, Vec<(uuid::Uuid, String)>), Status> {
        let candidates: Vec<uuid::Uuid> = active
            .iter()
            .filter(|row| row.sip_ready_on.is_some())
            .map(|row| row.participant_id.0)
            .filter(|participant_id| openable.contains(participant_id))
            .collect();
        let folded = self
            .folds
            .current(&candidates)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let mut sips = Vec::new();
        let mut bases = Vec::new();
        for row in active {
            let Some(participant) = folded
                .get(&row.participant_id.0)
                .map(|fold| &fold.participant)
            else {
                continue;
            };
            // The coach's board names the coach of the read model's row, as its lists do.
            let Some((mut sip, basis)) = crate::green_light_view::sip_due(
                row.participant_id.0,
                participant,
                reader,
                today,
                crate::green_light_view::SipCoach::Withheld,
            ) else {
                continue;
            };
            sip.coach_person_id = row.coach.clone().unwrap_or_default();
            bases.push((row.participant_id.0, basis.log_text()));
            sips.push(sip);
        }
        crate::green_light_view::sort_sips(&mut sips);
        Ok((sips, bases))
    }
}

#[tonic::async_trait]
impl CaseloadService for CaseloadApi {
    async fn get_unit_load(
        &self,
        request: Request<v1::GetUnitLoadRequest>,
    ) -> Result<Response<v1::UnitLoad>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let unit =
            domain::UnitId::parse(&request.unit).map_err(|error| errors::invalid_input(&error))?;
        own_unit(&reader, &unit)?;
        // Counts only, counted by PostgreSQL: every enrolment asks, so the cost must not grow
        // with the unit (it used to read up to 1,000 rows of each list and count them here).
        let load = store::caseload::unit_load(&self.pool, &unit.0)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let mut next_waiting_participant_id = String::new();
        if request.include_next_waiting {
            let waiting: Vec<uuid::Uuid> = store::caseload::waiting_without_offer(
                &self.pool,
                &unit.0,
                CASELOAD_PARTICIPANTS_MAX,
            )
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?
            .into_iter()
            .map(|participant_id| participant_id.0)
            .collect();
            let openable = crate::reading::openable(&self.folds, &reader, &waiting).await?;
            if let Some(next) = waiting
                .iter()
                .find(|participant_id| openable.contains(participant_id))
            {
                crate::reading::log(
                    &self.access_log,
                    &reader,
                    GET_UNIT_LOAD,
                    [(*next, "own_records".to_owned())],
                )
                .await?;
                next_waiting_participant_id = next.to_string();
            }
        }
        Ok(Response::new(v1::UnitLoad {
            unit: unit.0,
            coaches: coach_caseloads(load.coaches),
            waiting: u32::try_from(load.waiting).unwrap_or(u32::MAX),
            next_waiting_participant_id,
        }))
    }

    async fn get_caseload(
        &self,
        request: Request<v1::GetCaseloadRequest>,
    ) -> Result<Response<v1::GetCaseloadResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let unit =
            domain::UnitId::parse(&request.unit).map_err(|error| errors::invalid_input(&error))?;
        // A unit's board is the unit's own: coaches and team leaders see their own unit's.
        own_unit(&reader, &unit)?;
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
        .map_err(|error| crate::store_errors::from_store(&error))?;
        // Counts include everyone (a count identifies no one); the lists leave out participants
        // the reader may not open (protected identity).
        let listed: Vec<uuid::Uuid> = active
            .iter()
            .map(|row| row.participant_id.0)
            .chain(waiting.iter().map(|row| row.participant_id.0))
            .collect();
        let openable = crate::reading::openable(&self.folds, &reader, &listed).await?;
        // Counted whole by PostgreSQL, not from the listed rows, which stop at
        // CASELOAD_PARTICIPANTS_MAX (a coach past the cut would look as if they had room).
        let mut counted = store::caseload::unit_load(&self.pool, &unit.0)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?
            .coaches;
        if let Some(coach) = &coach {
            counted.retain(|(counted_coach, _)| counted_coach.as_deref() == Some(coach.0.as_str()));
        }
        let coaches = coach_caseloads(counted);
        let horizon = self.clock.today() + Duration::days(i64::from(horizon_days));
        let mut due: Vec<&store::CaseloadRow> = active
            .iter()
            .filter(|row| follow_up_due_on(row).is_some_and(|due_on| due_on <= horizon))
            .collect();
        due.sort_by_key(|row| follow_up_due_on(row));
        due.retain(|row| openable.contains(&row.participant_id.0));
        let shown: std::collections::BTreeSet<uuid::Uuid> = listed
            .iter()
            .filter(|participant_id| openable.contains(participant_id))
            .copied()
            .collect();
        let today = self.clock.today();
        let (sips_due, sip_bases) = self.sips_due(&reader, &active, &openable, today).await?;
        crate::reading::log(
            &self.access_log,
            &reader,
            GET_CASELOAD,
            // One entry per participant: a participant whose SIP is shown is logged under the
            // basis that SIP was shown by (the consent for psychiatry's notice).
            shown.iter().map(|participant_id| {
                let basis = sip_bases
                    .iter()
                    .find(|(sip_participant, _)| sip_participant == participant_id)
                    .map_or_else(|| "own_records".to_owned(), |(_, basis)| basis.clone());
                (*participant_id, basis)
            }),
        )
        .await?;
        Ok(Response::new(v1::GetCaseloadResponse {
            unit: unit.0,
            coaches,
            active: active
                .iter()
                .filter(|row| openable.contains(&row.participant_id.0))
                .map(participant)
                .collect(),
            waiting_list: waiting
                .iter()
                .filter(|row| openable.contains(&row.participant_id.0))
                .map(|row| v1::WaitingParticipant {
                    participant_id: row.participant_id.to_string(),
                    waiting_since: time(row.waiting_since),
                    offered_coach_person_id: row.offered_coach.clone().unwrap_or_default(),
                })
                .collect(),
            follow_ups_due: due.into_iter().map(participant).collect(),
            sips_due,
        }))
    }

    async fn get_placement(
        &self,
        request: Request<v1::GetPlacementRequest>,
    ) -> Result<Response<v1::Placement>, Status> {
        let (_, extensions, request) = request.into_parts();
        let reader = crate::reading::reader(&extensions)?;
        let participant_id = fields::required_participant_id(&request.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        crate::reading::open_one(&self.folds, &reader, participant_id.0).await?;
        let recorded_head = crate::reading::recorded_head(&self.pool, participant_id).await?;
        crate::reading::wait_until_projected(
            &self.pool,
            &self.projector_progress,
            participant_id,
            recorded_head,
            std::time::Duration::from_millis(self.read_your_writes_wait_max_ms),
        )
        .await?;
        let row = store::caseload::participant(&self.pool, participant_id)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let row = row.ok_or_else(|| errors::participant_not_found(&participant_id.to_string()))?;
        crate::reading::log(
            &self.access_log,
            &reader,
            GET_PLACEMENT,
            [(participant_id.0, "own_records".to_owned())],
        )
        .await?;
        Ok(Response::new(v1::Placement {
            participant_id: participant_id.to_string(),
            unit: row.unit.unwrap_or_default(),
            coach_person_id: row.coach.unwrap_or_default(),
            lifecycle: row.lifecycle,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrolled_at(text: &str) -> store::CaseloadRow {
        store::CaseloadRow {
            participant_id: domain::ParticipantId(uuid::Uuid::from_u128(1)),
            unit: Some("hudiksvall-ips".into()),
            coach: Some("coach-17".into()),
            lifecycle: "enrolled".into(),
            enrolled_at: DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .ok(),
            waiting_since: None,
            offered_coach: None,
            last_follow_up_at: None,
            sip_ready_on: None,
        }
    }

    #[test]
    fn a_follow_up_is_due_two_months_after_the_swedish_day_of_enrolment() {
        let day = |text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        // 00:30 on 31 March in Stockholm (22:30 UTC on the 30th): due 31 May, not 30 May.
        assert_eq!(
            follow_up_due_on(&enrolled_at("2026-03-30T22:30:00Z")),
            day("2026-05-31")
        );
        // 00:30 on 16 January in Stockholm (winter time).
        assert_eq!(
            follow_up_due_on(&enrolled_at("2026-01-15T23:30:00Z")),
            day("2026-03-16")
        );
        assert_eq!(
            follow_up_due_on(&enrolled_at("2026-01-15T22:30:00Z")),
            day("2026-03-15")
        );
    }
}
