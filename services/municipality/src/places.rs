//! The unit's places: whether an enrolment fits a coach's caseload, goes on the waiting list, or
//! is refused because another coach has room; and offering a freed place to the longest-waiting.
//!
//! The municipality service has no database: it asks the ledger's `CaseloadService`, so the
//! answer can lag the newest events by the projector's delay. If the ledger cannot be asked, the
//! enrolment goes through (the waiting list is a planning aid, and agencies keep working while
//! the ledger is down); the coach's board shows the overfull caseload afterwards.

use proto::v1::{self, caseload_service_client::CaseloadServiceClient};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

/// Waiting-list settings (section `places`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacesConfig {
    /// The ledger's gRPC address, for caseload look-ups.
    pub ledger_address: String,
    /// Most active participants per coach (IPS fidelity: 20).
    pub coach_active_participants_max: u32,
    /// How long a caseload look-up may take.
    pub lookup_timeout_ms: u64,
}

impl Default for PlacesConfig {
    fn default() -> Self {
        Self {
            ledger_address: "http://127.0.0.1:7400".into(),
            coach_active_participants_max: 20,
            lookup_timeout_ms: 2_000,
        }
    }
}

impl PlacesConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.ledger_address.starts_with("http://")
            || self.ledger_address.starts_with("https://"))
        {
            return Err("places.ledger_address must be an http:// or https:// address".into());
        }
        if !(1..=200).contains(&self.coach_active_participants_max) {
            return Err("places.coach_active_participants_max must be between 1 and 200".into());
        }
        if !(50..=60_000).contains(&self.lookup_timeout_ms) {
            return Err("places.lookup_timeout_ms must be between 50 and 60000".into());
        }
        Ok(())
    }
}

/// Where an enrolment request should lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placing {
    /// The coach has room (or the caseload could not be read).
    Enrol,
    /// Every coach of the unit is full.
    WaitingList,
    /// This coach is full, these others have room.
    CoachFull {
        /// Coaches of the unit with room.
        coaches_with_room: Vec<String>,
    },
}

/// Asks the ledger about places.
#[derive(Clone)]
pub struct Places {
    client: CaseloadServiceClient<Channel>,
    config: PlacesConfig,
}

impl Places {
    /// A lazily connected client: the service starts even when the ledger is down.
    pub fn new(config: PlacesConfig) -> Result<Self, String> {
        let endpoint = Channel::from_shared(config.ledger_address.clone())
            .map_err(|error| format!("places.ledger_address: {error}"))?
            .timeout(std::time::Duration::from_millis(config.lookup_timeout_ms));
        Ok(Self {
            client: CaseloadServiceClient::new(endpoint.connect_lazy()),
            config,
        })
    }

    async fn caseload(&self, unit: &str) -> Option<v1::GetCaseloadResponse> {
        let request = v1::GetCaseloadRequest {
            unit: unit.to_owned(),
            ..Default::default()
        };
        match self.client.clone().get_caseload(request).await {
            Ok(response) => Some(response.into_inner()),
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "caseload look-up failed; enrolling without the capacity check");
                None
            }
        }
    }

    /// Decides where an enrolment of `coach`'s at `unit` leads.
    pub async fn placing(&self, unit: &str, coach: &str) -> Placing {
        let Some(caseload) = self.caseload(unit).await else {
            return Placing::Enrol;
        };
        let maximum = self.config.coach_active_participants_max;
        let count_of = |name: &str| {
            caseload
                .coaches
                .iter()
                .find(|entry| entry.coach_person_id == name)
                .map_or(0, |entry| entry.active_participants)
        };
        if count_of(coach) < maximum {
            return Placing::Enrol;
        }
        let coaches_with_room: Vec<String> = caseload
            .coaches
            .iter()
            .filter(|entry| entry.active_participants < maximum)
            .map(|entry| entry.coach_person_id.clone())
            .collect();
        if coaches_with_room.is_empty() {
            Placing::WaitingList
        } else {
            Placing::CoachFull { coaches_with_room }
        }
    }

    /// The unit and coach of a participant, and the longest-waiting participant of that unit
    /// who has not been offered a place yet.
    pub async fn freed_place(&self, participant_id: &str) -> Option<(String, String, String)> {
        let placement = self
            .client
            .clone()
            .get_placement(v1::GetPlacementRequest {
                participant_id: participant_id.to_owned(),
            })
            .await
            .ok()?
            .into_inner();
        if placement.unit.is_empty() || placement.coach_person_id.is_empty() {
            return None;
        }
        let caseload = self.caseload(&placement.unit).await?;
        let next = caseload
            .waiting_list
            .into_iter()
            .find(|waiting| waiting.offered_coach_person_id.is_empty())?;
        Some((
            next.participant_id,
            placement.unit,
            placement.coach_person_id,
        ))
    }
}
