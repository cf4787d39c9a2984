//! Test harness: real PostgreSQL and real NATS, isolated per test.
//!
//! Every test gets its own database (`ips_t_<time>_<random>`) and its own stream, subject prefix
//! and consumer, so tests run in parallel and survive a dirty machine: leftovers from crashed
//! runs never collide with a new run, and ones older than a few hours are swept at start.
//! Services start on port 0 through the same `start` functions the binaries use.
//!
//! Connection defaults match the dev machines and CI; override with `IPS_TEST_DATABASE_URL`
//! (an admin connection, used to create databases) and `IPS_TEST_NATS_URL` (default: the
//! project's own nats-server that `deploy/setup.sh` starts on 4250, with
//! `sync_interval: always`). Tests that need a server or a cluster of their own start one from
//! the pinned binary (`nats.rs`).

mod database;
mod nats;
mod pki;
mod ports;
mod postgres;
mod rival_ledgers;
mod stack;
mod streams;

use domain::{Agency, Role};

pub use database::{edit_entry_around_append_guard, TestDatabase};
pub use nats::{
    nats_server_binary, repository_root, FsyncPolicy, NatsCluster, NatsServer, NatsWithUsers,
    NATS_CLUSTER_NODES, NATS_USERS, PINNED_NATS_SERVER_VERSION,
};
pub use pki::{
    as_auditor, as_caller, as_coach, as_fk_officer, as_officer, as_team_leader, channel,
    channel_as, identity_config, signer, test_pki, token, TestPki,
};
pub use ports::free_ports;
pub use postgres::PrivatePostgres;
pub use rival_ledgers::RivalLedgers;
pub use stack::{agency_config, ledger_config, Stack, StackOptions};
pub use streams::{delete_streams, partition_of, unique_bus_config};

/// How old a leftover test database or stream must be before a new run sweeps it.
pub(crate) const LEFTOVER_AGE_SWEEP_SECONDS: i64 = 6 * 60 * 60;

/// The admin database URL for tests.
pub fn admin_database_url() -> String {
    std::env::var("IPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS URL for tests.
pub fn nats_url() -> String {
    std::env::var("IPS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4250".into())
}

/// How long [`counted`] waits for a ledger's counter to catch up with its commits.
const COUNTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The value of a ledger counter once it has reached `expected`, or its value after
/// [`COUNTED_WITHIN`]. A ledger counts a verdict or a parked message just after its commit, so
/// a counter read the moment the row is visible can still be one short; the caller asserts on
/// what this returns, so a counter that never gets there (or overshoots) still fails.
pub async fn counted(counter: impl Fn() -> u64, expected: u64) -> u64 {
    let deadline = std::time::Instant::now() + COUNTED_WITHIN;
    loop {
        let value = counter();
        if value >= expected || std::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

pub(crate) fn unique_suffix() -> String {
    let seconds = chrono::Utc::now().timestamp();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{seconds}_{}", &random[..12])
}

/// The consents under which the IPS unit's coach sees every gate-deciding party's part of a
/// green light (discloser, recipient, category): FK, AF, psychiatry and social services each
/// to the IPS unit. Without one, that party's gates stay UNKNOWN to the coach.
pub const CONSENTS_FOR_THE_COACH_S_GREEN_LIGHT: [(
    proto::v1::ConsentParty,
    proto::v1::ConsentParty,
    proto::v1::DataCategory,
); 4] = [
    (
        proto::v1::ConsentParty::Forsakringskassan,
        proto::v1::ConsentParty::IpsUnit,
        proto::v1::DataCategory::BenefitDecisions,
    ),
    (
        proto::v1::ConsentParty::Arbetsformedlingen,
        proto::v1::ConsentParty::IpsUnit,
        proto::v1::DataCategory::LabourMarket,
    ),
    (
        proto::v1::ConsentParty::Psychiatry,
        proto::v1::ConsentParty::IpsUnit,
        proto::v1::DataCategory::HealthCoarse,
    ),
    (
        proto::v1::ConsentParty::SocialServices,
        proto::v1::ConsentParty::IpsUnit,
        proto::v1::DataCategory::SocialAssistanceStatus,
    ),
];

/// The IPS unit's consent to FK on activities and work: FK sees the unit's requests for
/// approval (discloser, recipient, category).
pub const CONSENT_FOR_FK_TO_SEE_REQUESTS: (
    proto::v1::ConsentParty,
    proto::v1::ConsentParty,
    proto::v1::DataCategory,
) = (
    proto::v1::ConsentParty::IpsUnit,
    proto::v1::ConsentParty::Forsakringskassan,
    proto::v1::DataCategory::ActivitiesAndWork,
);

/// A chained history of `length` entries written by coach-17, the n-th recorded `n` minutes
/// after `first_recorded_at` (and occurring 30 s before it): referral, enrolment, then employer
/// contacts and profile updates (free text) with a consent every 50 entries. For writing long
/// histories straight into the store (as the replay probe does) or folding them without one.
pub fn linked_history(
    participant_id: domain::ParticipantId,
    length: usize,
    first_recorded_at: chrono::DateTime<chrono::Utc>,
) -> Vec<domain::ParticipantEvent> {
    use domain::{ConsentParty, DataCategory, EventBody, PersonId, UnitId};
    let mut entries: Vec<domain::ParticipantEvent> = Vec::with_capacity(length);
    for index in 0..length {
        let body = match index {
            0 => EventBody::ParticipantReferred {
                source: domain::ReferralSource::Vuxenpsykiatri,
                referrer: None,
            },
            1 => EventBody::ParticipantEnrolled {
                unit: UnitId("hudiksvall-ips".into()),
                coach: PersonId("coach-17".into()),
            },
            index if index % 50 == 0 => EventBody::ConsentGranted {
                consent_id: domain::ConsentId(uuid::Uuid::now_v7()),
                discloser: ConsentParty::SocialServices,
                recipient: ConsentParty::IpsUnit,
                data_categories: vec![DataCategory::SocialAssistanceStatus],
                valid_from: first_recorded_at.date_naive(),
                valid_to: first_recorded_at.date_naive() + chrono::Duration::days(365),
            },
            index if index % 2 == 0 => EventBody::EmployerContactMade {
                employer: format!("Employer {}", index % 97),
                face_to_face: index % 3 == 0,
                with_participant: true,
            },
            index => EventBody::ProfileRecorded {
                preferences: format!("outdoor work, mornings, about {} hours", index % 40),
                hours_per_week_wanted: u8::try_from(index % 40).unwrap_or(20),
                education_level: domain::values::EducationLevel::UpperSecondary,
            },
        };
        let mut submission = coach_submission(participant_id, body);
        let recorded_at = first_recorded_at + chrono::Duration::minutes(index as i64);
        submission.envelope.occurred_at = recorded_at - chrono::Duration::seconds(30);
        let prev_hash = entries
            .last()
            .map_or(domain::chain::GENESIS_HASH.to_owned(), |entry| {
                entry.hash.clone()
            });
        entries.push(domain::ParticipantEvent::link(
            submission,
            recorded_at,
            domain::Outcome::Accepted,
            index as u64 + 1,
            &prev_hash,
        ));
    }
    entries
}

/// The environment a ledger process (the service's binary) needs to run on `database` and
/// `bus_config`'s stream with the test PKI; everything else stays at the binary's defaults,
/// and callers add what they tune (ports, timeouts, log level).
pub fn ledger_process_environment(
    database: &TestDatabase,
    bus_config: &bus::BusConfig,
) -> Vec<(&'static str, String)> {
    let mut environment = vec![
        ("IPS_STORE__DATABASE_URL", database.service_url()),
        ("IPS_STORE__MIGRATION_DATABASE_URL", database.url.clone()),
        ("IPS_BUS__NATS_URL", bus_config.nats_url.clone()),
        ("IPS_BUS__STREAM_NAME", bus_config.stream_name.clone()),
        ("IPS_BUS__SUBJECT_PREFIX", bus_config.subject_prefix.clone()),
        ("IPS_BUS__PARTITIONS", bus_config.partitions.to_string()),
    ];
    environment.extend(identity_environment());
    environment
}

/// The test PKI ([`identity_config`]) as the `IPS_IDENTITY__*` variables any service process
/// reads.
pub fn identity_environment() -> Vec<(&'static str, String)> {
    let identity = identity_config();
    vec![
        (
            "IPS_IDENTITY__CA_CERTIFICATE_PATH",
            identity.ca_certificate_path,
        ),
        ("IPS_IDENTITY__CERTIFICATE_PATH", identity.certificate_path),
        ("IPS_IDENTITY__PRIVATE_KEY_PATH", identity.private_key_path),
        (
            "IPS_IDENTITY__TOKEN_VERIFYING_KEYS_DIRECTORY",
            identity.token_verifying_keys_directory,
        ),
    ]
}

/// coach-17's referral of `participant_id` (from adult psychiatry), naming `referrer` as the
/// referring unit when given: the first event of most tests' participants.
pub fn coach_referral(
    participant_id: domain::ParticipantId,
    referrer: Option<&str>,
) -> domain::Submission {
    coach_submission(
        participant_id,
        domain::EventBody::ParticipantReferred {
            source: domain::ReferralSource::Vuxenpsykiatri,
            referrer: referrer.map(|unit| domain::UnitId(unit.to_owned())),
        },
    )
}

/// coach-17's face-to-face contact with `employer`, without the participant: a plain accepted
/// event to follow a referral with.
pub fn coach_employer_contact(
    participant_id: domain::ParticipantId,
    employer: &str,
) -> domain::Submission {
    coach_submission(
        participant_id,
        domain::EventBody::EmployerContactMade {
            employer: employer.to_owned(),
            face_to_face: true,
            with_participant: false,
        },
    )
}

/// A submission as coach-17 of the Hudiksvall IPS unit would send it, for tests that publish
/// straight onto the stream or into the store (the category follows the event).
pub fn coach_submission(
    participant_id: domain::ParticipantId,
    body: domain::EventBody,
) -> domain::Submission {
    domain::Submission {
        envelope: domain::Envelope {
            event_id: domain::EventId(uuid::Uuid::now_v7()),
            participant_id,
            agency: Agency::Municipality,
            actor: domain::Actor {
                person_id: domain::PersonId("coach-17".into()),
                role: Role::Coach,
                unit: domain::UnitId("hudiksvall-ips".into()),
            },
            occurred_at: chrono::Utc::now(),
            correlation_id: None,
            causation_id: None,
            schema_version: domain::CURRENT_SCHEMA_VERSION,
            data_category: body.data_category(Agency::Municipality),
            retention_class: domain::RetentionClass::SocialServicesFile,
        },
        body,
    }
}
