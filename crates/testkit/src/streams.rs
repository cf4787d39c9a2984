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
        ..bus::BusConfig::default()
    }
}

/// Deletes a test's stream, and any leftover test streams older than a few hours.
pub async fn delete_streams(bus_config: &bus::BusConfig) {
    let Ok(client) = async_nats::connect(&bus_config.nats_url).await else {
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
