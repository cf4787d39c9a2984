//! The three answers of a write, held against a three-node JetStream cluster that loses nodes
//! while officers keep writing through the agencies' gRPC: ACCEPTED (applied) and PENDING
//! (durably in the stream, will be applied) are never lost, and UNAVAILABLE means "unknown":
//! retried with the same `request_id` it ends stored exactly once, whatever the first attempt
//! did. The stream is R3 and every node fsyncs before acknowledging (`NatsCluster`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proto::v1;
use testkit::{as_coach, NatsCluster, Stack, StackOptions, NATS_CLUSTER_NODES};
use tonic::Code;

/// Concurrent officers, and how many referrals each sends (one event each).
const WRITERS: usize = 6;
const REFERRALS_PER_WRITER: usize = 40;
/// How long one request may keep answering UNAVAILABLE before the test gives up on it.
const RETRY_DEADLINE: Duration = Duration::from_secs(60);

fn refer(request_id: &str) -> v1::ReferParticipantRequest {
    v1::ReferParticipantRequest {
        context: Some(v1::WriteContext {
            request_id: request_id.into(),
            ..Default::default()
        }),
        participant_id: String::new(),
        source: v1::ReferralSource::Ifo as i32,
        referrer_unit: "hudiksvall-ifo".into(),
    }
}

/// What one request ended as, after its retries.
#[derive(Debug, Default)]
struct Outcome {
    event_id: String,
    status: i32,
    /// How many attempts answered UNAVAILABLE before it was acknowledged.
    unavailable_answers: usize,
}

async fn write_until_acknowledged(
    client: &mut v1::municipality_service_client::MunicipalityServiceClient<
        tonic::transport::Channel,
    >,
    request_id: &str,
) -> anyhow::Result<Outcome> {
    let deadline = tokio::time::Instant::now() + RETRY_DEADLINE;
    let mut unavailable_answers = 0;
    loop {
        match client.refer_participant(as_coach(refer(request_id))).await {
            Ok(response) => {
                let response = response.into_inner();
                anyhow::ensure!(
                    response.status == v1::WriteStatus::Accepted as i32
                        || response.status == v1::WriteStatus::Pending as i32,
                    "{request_id}: answered {response:?}"
                );
                return Ok(Outcome {
                    event_id: response.event_id,
                    status: response.status,
                    unavailable_answers,
                });
            }
            Err(status) if status.code() == Code::Unavailable => {
                unavailable_answers += 1;
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "{request_id}: still UNAVAILABLE after {RETRY_DEADLINE:?}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => anyhow::bail!("{request_id}: unexpected answer {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_and_then_the_stream_leader_loses_nothing_acknowledged() -> anyhow::Result<()>
{
    let cluster = NatsCluster::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_url: Some(cluster.url()),
        stream_replicas: NATS_CLUSTER_NODES,
        ..StackOptions::default()
    })
    .await?;
    let stream_name = stack.bus_config.stream_name.clone();
    let leader = cluster.stream_leader(&stream_name).await?;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = stack.municipality().await?;
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            let mut outcomes = BTreeMap::new();
            for index in 0..REFERRALS_PER_WRITER {
                let request_id = format!("cluster-{writer}-{index}");
                let outcome = write_until_acknowledged(&mut client, &request_id).await?;
                acknowledged.fetch_add(1, Ordering::SeqCst);
                outcomes.insert(request_id, outcome);
            }
            anyhow::Ok(outcomes)
        }));
    }

    let total = WRITERS * REFERRALS_PER_WRITER;
    let wait_for = |count: usize| {
        let acknowledged = acknowledged.clone();
        async move {
            while acknowledged.load(Ordering::SeqCst) < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // A follower first (writes should not even notice), back after a while; then the leader,
    // which forces an election while writes are in flight.
    let follower = (leader + 1) % NATS_CLUSTER_NODES;
    wait_for(total / 6).await;
    cluster.kill(follower);
    wait_for(total / 3).await;
    cluster.restart(follower).await?;
    wait_for(total / 2).await;
    let leader = cluster.stream_leader(&stream_name).await?;
    cluster.kill(leader);

    let mut outcomes = BTreeMap::new();
    for writer in writers {
        outcomes.extend(writer.await??);
    }
    assert_eq!(outcomes.len(), total);
    let new_leader = cluster.stream_leader(&stream_name).await?;
    assert_ne!(new_leader, leader, "a killed node cannot lead");

    // Everything acknowledged reaches the events table, once.
    let pool = stack.database.pool().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored = stack.stored_events(None).await?;
        if stored as usize >= total || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored_ids: Vec<String> =
        sqlx::query_scalar("SELECT payload->'envelope'->>'event_id' FROM events")
            .fetch_all(&pool)
            .await?;
    let distinct: BTreeSet<&String> = stored_ids.iter().collect();
    assert_eq!(
        distinct.len(),
        stored_ids.len(),
        "an event id is stored twice"
    );
    let missing: Vec<&String> = outcomes
        .iter()
        .filter(|(_, outcome)| !distinct.contains(&outcome.event_id))
        .map(|(request_id, _)| request_id)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never stored: {missing:?}"
    );
    assert_eq!(stored_ids.len(), total, "stored something no request made");
    let rejected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SubmissionRejected'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(rejected, 0);
    pool.close().await;

    let pending = outcomes
        .values()
        .filter(|outcome| outcome.status == v1::WriteStatus::Pending as i32)
        .count();
    let retried = outcomes
        .values()
        .filter(|outcome| outcome.unavailable_answers > 0)
        .count();
    println!(
        "{total} referrals over a 3-node cluster (follower {follower} killed and restarted, leader {leader} killed): {} ACCEPTED, {pending} PENDING, {retried} answered UNAVAILABLE first and were retried; all stored once",
        total - pending
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_agency_stream_is_held_by_every_node() -> anyhow::Result<()> {
    let cluster = NatsCluster::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_url: Some(cluster.url()),
        stream_replicas: NATS_CLUSTER_NODES,
        ..StackOptions::default()
    })
    .await?;
    let client = async_nats::connect(cluster.node_url(0)).await?;
    let mut stream = async_nats::jetstream::new(client)
        .get_stream(&stack.bus_config.stream_name)
        .await?;
    let info = stream.info().await?;
    assert_eq!(info.config.num_replicas, NATS_CLUSTER_NODES);
    let cluster_info = info.cluster.clone().expect("a clustered stream");
    assert!(cluster_info.leader.is_some());
    assert_eq!(cluster_info.replicas.len(), NATS_CLUSTER_NODES - 1);

    // A service started with another replica count refuses the existing stream by name.
    let mut single = stack.bus_config.clone();
    single.stream_replicas = 1;
    let client = bus::connect(&single, "test").await?;
    let refused = bus::setup::ensure_stream(&async_nats::jetstream::new(client), &single)
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("3 replicas, bus.stream_replicas is 1"),
        "{refused}"
    );
    stack.stop().await;
    Ok(())
}
