//! The ingest loop: one puller routes each delivery to its participant's lane, the lanes apply
//! one delivery at a time, and at shutdown everything unfinished is handed back within the
//! drain limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bus::{Delivery, IngestConsumer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::applier::Applier;
use super::ordering::{lane_of, DeliveryContiguity};

/// How often the puller looks again whether the store answers, while it does not.
const PULL_PAUSE_WHILE_STORE_UNAVAILABLE: Duration = Duration::from_millis(100);

/// How often the consumer's lag (for metrics) and ack floor (for ordering) are sampled.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples the consumer's state: lag for metrics, and the ack floor for ordering.
async fn sample_consumer(consumer: &mut IngestConsumer, applier: &Applier) {
    match consumer.state().await {
        Ok(state) => {
            let counters = &applier.counters;
            counters.consumer_pending.set(state.pending);
            counters.consumer_ack_pending.set(state.ack_pending);
            applier
                .ack_floor_stream_sequence
                .fetch_max(state.ack_floor_stream_sequence, Ordering::Relaxed);
        }
        Err(error) => tracing::warn!(%error, "could not read the consumer's state"),
    }
}

/// Pulls until shutdown, routing each delivery to its participant's lane; then lets the lanes
/// finish what they hold and returns.
pub async fn run(
    mut consumer: IngestConsumer,
    applier: Arc<Applier>,
    shutdown: watch::Receiver<bool>,
) {
    let lanes = applier.config.lanes;
    let drain_timeout = Duration::from_millis(applier.config.drain_timeout_ms);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = JoinSet::new();
    for _ in 0..lanes {
        let (sender, mut receiver) =
            mpsc::channel::<Delivery>(applier.config.lane_queue_length_max);
        senders.push(sender);
        let applier = applier.clone();
        let shutdown = shutdown.clone();
        workers.spawn(async move {
            while let Some(delivery) = receiver.recv().await {
                if *shutdown.borrow() {
                    // Not started: handed back at once, so a long queue drains in no time.
                    applier.hand_back(&delivery).await;
                    continue;
                }
                tokio::select! {
                    () = applier.process(&delivery, &shutdown) => {}
                    () = drain_deadline(shutdown.clone(), drain_timeout) => {
                        // Dropping the attempt is safe: if its commit landed, the redelivery is
                        // a no-op (the aggregate remembers the event id).
                        tracing::warn!(stream_sequence = delivery.stream_sequence(), "unfinished at the drain deadline; handed back");
                        applier.hand_back(&delivery).await;
                    }
                }
            }
        });
    }
    let mut contiguity = DeliveryContiguity::default();
    let mut pull_failures: u32 = 0;
    let mut lag_sampled_at = tokio::time::Instant::now() - LAG_SAMPLE_INTERVAL;
    while !*shutdown.borrow() {
        if lag_sampled_at.elapsed() >= LAG_SAMPLE_INTERVAL {
            lag_sampled_at = tokio::time::Instant::now();
            sample_consumer(&mut consumer, &applier).await;
        }
        if applier.counters.store_unavailable_since_seconds.get() != 0 {
            // Pulled now, a message would only wait behind the outage, and every ack_wait it
            // waits would count as one more delivery towards park_after_deliveries (parking
            // healthy messages as poison). The lanes keep what they hold and retry themselves.
            tokio::time::sleep(PULL_PAUSE_WHILE_STORE_UNAVAILABLE).await;
            continue;
        }
        let mut batch = match consumer.pull().await {
            Ok(batch) => {
                pull_failures = 0;
                batch
            }
            Err(error) => {
                pull_failures = pull_failures.saturating_add(1);
                tracing::warn!(%error, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(
                    100 * u64::from(pull_failures.min(50)),
                ))
                .await;
                continue;
            }
        };
        while let Some(item) = batch.next().await {
            match item {
                Ok(delivery) if *shutdown.borrow() => applier.hand_back(&delivery).await,
                Ok(delivery) => {
                    // Before the lane sees it, so its check already counts this delivery.
                    contiguity.observe(
                        delivery.consumer_sequence(),
                        delivery.stream_sequence(),
                        delivery.delivered_count() <= 1,
                        &applier.order_watermark,
                    );
                    let lane = lane_of(&applier.subjects, delivery.subject(), lanes);
                    // A full lane (wedged by an outage) must not keep the puller from stopping.
                    let mut stopping = shutdown.clone();
                    tokio::select! {
                        permit = senders[lane].reserve() => match permit {
                            Ok(permit) => permit.send(delivery),
                            Err(_) => tracing::error!(lane, "ingest lane stopped unexpectedly"),
                        },
                        () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                            applier.hand_back(&delivery).await
                        }
                    }
                }
                Err(error @ bus::BusError::DeliveryUnreadable(_)) => {
                    // Without its positions it can be neither ordered, parked nor acked; the
                    // server redelivers it after ack_wait.
                    tracing::error!(%error, "a delivery without readable delivery information was left unprocessed");
                }
                Err(error) => tracing::debug!(%error, "pull ended with an error"),
            }
        }
    }
    drop(senders);
    // Each lane is bounded by the drain deadline already; this bounds the nak calls after it.
    let drained = tokio::time::timeout(drain_timeout + DRAIN_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::error!("ingest lanes did not stop in time; abandoned (their deliveries come back after ack_wait)");
        workers.abort_all();
    }
    tracing::info!(
        handed_back = applier.counters.handed_back_at_shutdown.get(),
        "ingest drained"
    );
}

/// What stopping may take beyond `ingest.drain_timeout_ms`: handing the unfinished deliveries
/// back (one nak each, no reply awaited).
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Completes `drain_timeout` after `shutdown` turns true (never, until it does).
pub async fn drain_deadline(mut shutdown: watch::Receiver<bool>, drain_timeout: Duration) {
    let asked = shutdown.wait_for(|stop| *stop).await.is_ok();
    if !asked {
        // The sender is gone without a shutdown: nothing will ever ask to stop.
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(drain_timeout).await;
}
