//! Cross-service tests of IPS Samverkan, run against real PostgreSQL and NATS.
//!
//! The test files live in this folder and start whole stacks through [`testkit`]. This library
//! holds only what several test files build the same way: a submission published straight onto
//! the bus, as a forger or a broken client would, bypassing the agency services; a scrape of
//! the ledger's metrics (raw, and parsed); and the access log as a test reads it.

use domain::{
    Actor, Agency, DataCategory, Envelope, EventBody, EventId, ParticipantId, PersonId,
    RetentionClass, Role, Submission, UnitId,
};

/// A submission whose envelope claims `agency`, for publishing on any subject.
pub fn submission_claiming(
    agency: Agency,
    participant_id: ParticipantId,
    data_category: DataCategory,
    body: EventBody,
) -> Submission {
    Submission {
        envelope: Envelope {
            event_id: EventId(uuid::Uuid::now_v7()),
            participant_id,
            agency,
            actor: Actor {
                person_id: PersonId("forger-1".into()),
                role: Role::CaseOfficer,
                unit: UnitId("fk-lfc".into()),
            },
            occurred_at: chrono::Utc::now(),
            correlation_id: None,
            causation_id: None,
            schema_version: domain::CURRENT_SCHEMA_VERSION,
            data_category,
            retention_class: RetentionClass::AgencyCaseFile,
        },
        body,
    }
}

/// The Prometheus text the stack's ledger serves.
pub async fn ledger_metrics(stack: &testkit::Stack) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = stack
        .ledger_metrics_address
        .ok_or_else(|| anyhow::anyhow!("metrics are on in tests"))?;
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: ledger\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    anyhow::ensure!(response.starts_with("HTTP/1.1 200"), "{response}");
    Ok(response)
}

/// The stack's ledger's scrape, read strictly as OpenMetrics text (it fails if it does not
/// parse), with the response head.
pub async fn ledger_scrape(
    stack: &testkit::Stack,
) -> anyhow::Result<(String, telemetry::metrics::Exposition)> {
    let response = ledger_metrics(stack).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of head: {response}"))?;
    let exposition =
        telemetry::parse_exposition(body).map_err(|error| anyhow::anyhow!("{error}\n{body}"))?;
    Ok((head.to_owned(), exposition))
}

/// A participant's access-log rows, oldest first: (reader person id, action, basis).
pub async fn access_log(
    stack: &testkit::Stack,
    participant_id: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let pool = stack.database.pool().await?;
    let rows = sqlx::query_as(
        "SELECT reader_person_id, action, basis FROM access_log WHERE participant_id = $1::uuid ORDER BY position",
    )
    .bind(participant_id)
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(rows)
}

/// How many times `reader` read `participant_id` through `action`.
pub async fn reads_by(
    stack: &testkit::Stack,
    participant_id: &str,
    reader: &str,
    action: &str,
) -> anyhow::Result<i64> {
    let rows = access_log(stack, participant_id).await?;
    let count = rows
        .iter()
        .filter(|(person, logged, _)| person == reader && logged == action)
        .count();
    Ok(i64::try_from(count)?)
}
