//! A stream and subject prefix of each test's own on the shared NATS server, and the sweep of
//! streams that crashed runs left behind.

use crate::{nats_url, unique_suffix, LEFTOVER_AGE_SWEEP_SECONDS};

/// Bus settings unique to one test: stream, subject prefix, short timings.
pub fn unique_bus_config() -> bus::BusConfig {
    let suffix = unique_suffix();
    bus::BusConfig {
        nats_url: nats_url(),
        stream_name: format!("IPS_T_{suffix}"),
        subject_prefix: format!("t{suffix}.ips.v1"),
        // Leftover test streams hold little and age out.
        stream_max_age_ms: 6 * 60 * 60 * 1000,
        duplicate_window_ms: 60 * 60 * 1000,
        stream_max_bytes: 256 * 1024 * 1024,
        ack_wait_ms: 3_000,
        fetch_wait_ms: 200,
        // Several partitions, so every test runs the partitioned path; fewer than the default,
        // since every ledger keeps a pull stream open on each.
        partitions: 4,
        // A dead test ledger's partitions move within seconds (the floor for fetch_wait_ms 200).
        pinned_client_timeout_ms: 1_500,
        // Ledgers see each other (and each other's absence) within a second.
        ledger_heartbeat_interval_ms: 200,
        ledger_presumed_gone_after_ms: 1_000,
        rebalance_interval_ms: 300,
        ..bus::BusConfig::default()
    }
}

/// The partition the server's `partition(N, participant)` transform gives `participant_id`:
/// FNV-1a (32 bit) of the participant token, modulo `partitions`. For tests that must act on a
/// participant's partition consumer; `tests/partitions.rs` checks it against the stored subjects.
pub fn partition_of(participant_id: domain::ParticipantId, partitions: u32) -> u32 {
    const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;
    let hash = participant_id
        .to_string()
        .bytes()
        .fold(FNV_OFFSET_BASIS, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(FNV_PRIME)
        });
    hash % partitions
}

/// Deletes a test's stream, and any leftover test streams older than a few hours.
pub async fn delete_streams(bus_config: &bus::BusConfig) {
    let urls: Vec<&str> = bus_config.nats_urls().collect();
    let Ok(client) = async_nats::connect(urls.as_slice()).await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client);
    let _ = jetstream.delete_stream(&bus_config.stream_name).await;
    let mut names = jetstream.stream_names();
    let now = chrono::Utc::now().timestamp();
    let mut stale = Vec::new();
    while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
        let created = name
            .strip_prefix("IPS_T_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > LEFTOVER_AGE_SWEEP_SECONDS) {
            stale.push(name);
        }
    }
    for name in stale {
        let _ = jetstream.delete_stream(&name).await;
    }
}
