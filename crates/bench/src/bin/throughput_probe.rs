//! Throughput probe: events per second from gRPC to PostgreSQL through the whole path
//! (municipality service → JetStream → ledger → aggregate → events table → verdict back),
//! printed beside the raw ceilings measured in the same run: a bare PostgreSQL
//! one-row-per-transaction insert loop, and bare JetStream publishes with awaited acks.
//!
//! `cargo run --release -p bench --bin throughput_probe -- [events] [concurrent_clients]
//! [--nats-sync always|default|both]` (defaults 10000, 64 and the shared server of
//! `IPS_TEST_NATS_URL`). Uses a fresh database and stream, like the tests. With `--nats-sync`,
//! each run gets a nats-server of its own (the pinned binary): `always` is the project's
//! `sync_interval: always`, `default` the server's lazy fsync, and `both` runs the two one after
//! the other in the same process, so what fsync-per-write costs is read off one run.

use std::time::{Duration, Instant};

use bench::{percentile, rate};
use domain::Role;
use futures::future::join_all;
use proto::v1;

fn as_coach<T>(message: T) -> tonic::Request<T> {
    testkit::as_caller(message, "coach-17", Role::Coach, "hudiksvall-ips")
}

/// One client's share: participants driven sequentially (referral, enrolment, consents), each
/// RPC waiting for the ledger's verdict. Returns per-RPC latencies.
async fn drive(
    mut client: v1::municipality_service_client::MunicipalityServiceClient<
        tonic::transport::Channel,
    >,
    events: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(events);
    let mut participant_id = String::new();
    for index in 0..events {
        let started = Instant::now();
        let response = match index % 10 {
            0 => {
                let request = v1::ReferParticipantRequest {
                    source: v1::ReferralSource::Ifo as i32,
                    ..Default::default()
                };
                client
                    .refer_participant(as_coach(request))
                    .await?
                    .into_inner()
            }
            1 => {
                let request = v1::EnrollParticipantRequest {
                    participant_id: participant_id.clone(),
                    unit: "hudiksvall-ips".into(),
                    coach_person_id: "coach-17".into(),
                    ..Default::default()
                };
                client
                    .enroll_participant(as_coach(request))
                    .await?
                    .into_inner()
            }
            month => {
                let request = v1::GrantConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: v1::ConsentParty::SocialServices as i32,
                    recipient: v1::ConsentParty::IpsUnit as i32,
                    data_categories: vec![v1::DataCategory::SocialAssistanceStatus as i32],
                    valid_from: format!("2026-{month:02}-01"),
                    valid_to: format!("2026-{month:02}-28"),
                    ..Default::default()
                };
                client.grant_consent(as_coach(request)).await?.into_inner()
            }
        };
        anyhow::ensure!(
            response.status == v1::WriteStatus::Accepted as i32,
            "not accepted: {response:?}"
        );
        if index % 10 == 0 {
            participant_id = response.participant_id;
        }
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = bench::numeric_arguments();
    let events = arguments.first().copied().unwrap_or(10_000);
    let clients = arguments.get(1).copied().unwrap_or(64).max(1);
    let sync = std::env::args()
        .skip_while(|argument| argument != "--nats-sync")
        .nth(1);
    let policies: Vec<Option<testkit::FsyncPolicy>> = match sync.as_deref() {
        None => vec![None],
        Some("always") => vec![Some(testkit::FsyncPolicy::Always)],
        Some("default") => vec![Some(testkit::FsyncPolicy::ServerDefault)],
        Some("both") => vec![
            Some(testkit::FsyncPolicy::ServerDefault),
            Some(testkit::FsyncPolicy::Always),
        ],
        Some(other) => anyhow::bail!("--nats-sync takes always, default or both, not {other}"),
    };
    for policy in policies {
        let server = match policy {
            Some(policy) => Some(testkit::NatsServer::start(policy).await?),
            None => None,
        };
        let label = match policy {
            None => "the shared nats-server (IPS_TEST_NATS_URL)",
            Some(testkit::FsyncPolicy::Always) => "own nats-server, sync_interval: always",
            Some(testkit::FsyncPolicy::ServerDefault) => {
                "own nats-server, default lazy fsync (2 min timer)"
            }
        };
        let options = testkit::StackOptions {
            nats_url: server.as_ref().map(|server| server.url.clone()),
            ..testkit::StackOptions::default()
        };
        probe(events, clients, label, options).await?;
    }
    Ok(())
}

async fn probe(
    events: usize,
    clients: usize,
    label: &str,
    options: testkit::StackOptions,
) -> anyhow::Result<()> {
    let per_client = events / clients;
    let events = per_client * clients;

    let stack = testkit::Stack::start_with(options).await?;
    println!("throughput probe on {label}: {events} events, {clients} concurrent gRPC clients, fresh database and stream");

    let postgres_elapsed =
        bench::ceilings::postgres_insert_loop(&stack.database.url, events).await?;
    let jetstream_elapsed =
        bench::ceilings::jetstream_publish_loop(&stack.bus_config, events).await?;

    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        handles.push(stack.municipality().await?);
    }
    let started = Instant::now();
    let results = join_all(handles.into_iter().map(|client| drive(client, per_client))).await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = Vec::with_capacity(events);
    for result in results {
        latencies.extend(result?);
    }
    latencies.sort();

    let pool = stack.database.pool().await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        stored as usize == events,
        "expected {events} stored events, found {stored}"
    );
    pool.close().await;

    println!(
        "  bare PostgreSQL, one row per transaction, 1 connection : {:>8.0} rows/s",
        rate(events, postgres_elapsed)
    );
    println!(
        "  bare JetStream publish, ack awaited, one at a time    : {:>8.0} msgs/s",
        rate(events, jetstream_elapsed)
    );
    println!(
        "  gRPC → JetStream → ledger → PostgreSQL, verdict back  : {:>8.0} events/s",
        rate(events, elapsed)
    );
    println!(
        "  per-RPC latency (verdict included): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        percentile(&latencies, 100.0).as_secs_f64() * 1e3
    );
    stack.stop().await;
    Ok(())
}
