//! The unit's places: whether an enrolment fits a coach's caseload, goes on the waiting list, or
//! is refused because another coach has room; and offering a freed place to the longest-waiting.
//!
//! The municipality service has no database: it asks the ledger's `CaseloadService`, so the
//! answer can lag the newest events by the projector's delay. If the ledger cannot be asked, the
//! enrolment goes through (the waiting list is a planning aid, and agencies keep working while
//! the ledger is down); the coach's board shows the overfull caseload afterwards.

use std::path::Path;

use proto::v1::{self, caseload_service_client::CaseloadServiceClient};
use rpc::identity::pki_files;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

/// A file of the development PKI, the default until a deployment names its own.
fn development_pki_file(name: &str) -> String {
    Path::new(rpc::identity::DEVELOPMENT_PKI_DIRECTORY)
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Waiting-list settings (section `places`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacesConfig {
    /// The ledger's gRPC address, for caseload look-ups.
    pub ledger_address: String,
    /// Other ledgers' addresses, asked in order when the ones before cannot be reached (with
    /// partitioned ledgers every ledger answers from the same read model), so one ledger down
    /// does not turn off the capacity check. At most [`LEDGER_FALLBACK_ADDRESSES_MAX`].
    pub ledger_fallback_addresses: Vec<String>,
    /// Most active participants per coach (IPS fidelity: 20).
    pub coach_active_participants_max: u32,
    /// How long a caseload look-up may take.
    pub lookup_timeout_ms: u64,
    /// The municipality's client certificate towards the ledger, PEM.
    pub client_certificate_path: String,
    /// Its private key, PEM. Never logged.
    pub client_private_key_path: String,
}

impl Default for PlacesConfig {
    fn default() -> Self {
        Self {
            ledger_address: "https://127.0.0.1:7400".into(),
            ledger_fallback_addresses: Vec::new(),
            coach_active_participants_max: 20,
            lookup_timeout_ms: 2_000,
            client_certificate_path: development_pki_file(&pki_files::client_certificate(
                domain::Agency::Municipality.token(),
            )),
            client_private_key_path: development_pki_file(&pki_files::client_private_key(
                domain::Agency::Municipality.token(),
            )),
        }
    }
}

/// Most fallback ledger addresses (each one asked costs up to `lookup_timeout_ms` when down).
pub const LEDGER_FALLBACK_ADDRESSES_MAX: usize = 8;

impl PlacesConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), String> {
        if !self.ledger_address.starts_with("https://") {
            return Err(
                "places.ledger_address must be an https:// address (the ledger takes mTLS only)"
                    .into(),
            );
        }
        if self.ledger_fallback_addresses.len() > LEDGER_FALLBACK_ADDRESSES_MAX {
            return Err(format!(
                "places.ledger_fallback_addresses holds {} addresses, at most {LEDGER_FALLBACK_ADDRESSES_MAX}",
                self.ledger_fallback_addresses.len()
            ));
        }
        if let Some(address) = self
            .ledger_fallback_addresses
            .iter()
            .find(|address| !address.starts_with("https://"))
        {
            return Err(format!(
                "places.ledger_fallback_addresses: `{address}` must be an https:// address (the ledger takes mTLS only)"
            ));
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
    /// `places.ledger_address` first, then each fallback address, in order.
    clients: Vec<(String, CaseloadServiceClient<Channel>)>,
    config: PlacesConfig,
}

impl Places {
    /// A lazily connected client: the service starts even when the ledger is down. It presents
    /// the municipality's client certificate; each look-up carries the token of the officer
    /// whose request needs it, so the ledger logs the read under that officer.
    pub fn new(
        config: PlacesConfig,
        identity: &rpc::identity::IdentityConfig,
    ) -> Result<Self, String> {
        let tls = rpc::identity::client_tls_from_files(
            (
                "identity.ca_certificate_path",
                Path::new(&identity.ca_certificate_path),
            ),
            (
                "places.client_certificate_path",
                Path::new(&config.client_certificate_path),
            ),
            (
                "places.client_private_key_path",
                Path::new(&config.client_private_key_path),
            ),
        )?;
        let clients = std::iter::once(&config.ledger_address)
            .chain(&config.ledger_fallback_addresses)
            .map(|address| {
                let endpoint = Channel::from_shared(address.clone())
                    .map_err(|error| format!("places: ledger address `{address}`: {error}"))?
                    .tls_config(tls.clone())
                    .map_err(|error| format!("places: TLS configuration refused: {error}"))?
                    .timeout(std::time::Duration::from_millis(config.lookup_timeout_ms));
                Ok((
                    address.clone(),
                    CaseloadServiceClient::new(endpoint.connect_lazy()),
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { clients, config })
    }

    /// The unit's load: counts only, plus the longest-waiting participant when asked (the only
    /// participant data, so the access log shows exactly who was read).
    async fn load(
        &self,
        unit: &str,
        include_next_waiting: bool,
        officer: &Officer,
    ) -> Option<v1::UnitLoad> {
        let message = v1::GetUnitLoadRequest {
            unit: unit.to_owned(),
            include_next_waiting,
        };
        self.ask(|mut client| {
            let request = officer.request(message.clone());
            async move { client.get_unit_load(request).await }
        })
        .await
    }

    /// Decides where an enrolment of `coach`'s at `unit` leads.
    pub async fn placing(&self, unit: &str, coach: &str, officer: &Officer) -> Placing {
        let Some(caseload) = self.load(unit, false, officer).await else {
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

    /// Asks the ledgers in order (`places.ledger_address`, then each fallback) until one
    /// answers. A ledger not reached, or not answering within `lookup_timeout_ms`, is passed
    /// over; an answer, even a refusal, ends the asking (another ledger would give the same).
    async fn ask<Answer, Asked>(
        &self,
        call: impl Fn(CaseloadServiceClient<Channel>) -> Asked,
    ) -> Option<Answer>
    where
        Asked: std::future::Future<Output = Result<tonic::Response<Answer>, tonic::Status>>,
    {
        for (address, client) in &self.clients {
            match call(client.clone()).await {
                Ok(response) => return Some(response.into_inner()),
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Cancelled
                            | tonic::Code::DeadlineExceeded
                    ) =>
                {
                    tracing::warn!(ledger = %address, code = ?status.code(), message = status.message(), "caseload look-up: ledger not reached; asking the next");
                }
                Err(status) => {
                    tracing::warn!(ledger = %address, code = ?status.code(), message = status.message(), "caseload look-up failed; going on without it");
                    return None;
                }
            }
        }
        tracing::warn!("caseload look-up: no ledger reached; going on without it");
        None
    }

    /// The unit and coach of a participant, and the longest-waiting participant of that unit
    /// who has not been offered a place yet.
    pub async fn freed_place(
        &self,
        participant_id: &str,
        officer: &Officer,
    ) -> Option<(String, String, String)> {
        let placement = self
            .ask(|mut client| {
                let request = officer.request(v1::GetPlacementRequest {
                    participant_id: participant_id.to_owned(),
                });
                async move { client.get_placement(request).await }
            })
            .await?;
        if placement.unit.is_empty() || placement.coach_person_id.is_empty() {
            return None;
        }
        let load = self.load(&placement.unit, true, officer).await?;
        if load.next_waiting_participant_id.is_empty() {
            return None;
        }
        Some((
            load.next_waiting_participant_id,
            placement.unit,
            placement.coach_person_id,
        ))
    }
}

/// The officer on whose behalf a look-up runs: their token, forwarded as they sent it.
#[derive(Clone, Debug, Default)]
pub struct Officer {
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Officer {
    /// The officer who sent `metadata`.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Self {
        Self {
            authorization: metadata.get(rpc::identity::AUTHORIZATION_HEADER).cloned(),
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert(rpc::identity::AUTHORIZATION_HEADER, value.clone());
        }
        request
    }
}
