//! The ingest loop: one puller per partition routes each delivery to its participant's lane, the
//! lanes (shared by all partitions) apply one delivery at a time, and at shutdown everything
//! unfinished is handed back within the drain limit.

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

/// Samples one partition consumer's state: lag for metrics, and its ack floor for ordering.
async fn sample_consumer(consumer: &mut IngestConsumer, applier: &Applier) {
    match consumer.state().await {
        Ok(state) => {
            let counters = &applier.counters;
            let order = applier.partition_orders.get(consumer.partition() as usize);
            order.pending.store(state.pending, Ordering::Relaxed);
            order
                .ack_pending
                .store(state.ack_pending, Ordering::Relaxed);
            order
                .ack_floor_stream_sequence
                .fetch_max(state.ack_floor_stream_sequence, Ordering::Relaxed);
            let (pending, ack_pending) = applier.partition_orders.lag_totals();
            counters.consumer_pending.set(pending);
            counters.consumer_ack_pending.set(ack_pending);
        }
        Err(error) => {
            tracing::warn!(%error, partition = consumer.partition(), "could not read the consumer's state")
        }
    }
}

/// Pulls every partition until shutdown, routing each delivery to its participant's lane; then
/// lets the lanes finish what they hold and returns.
pub async fn run(
    consumers: Vec<IngestConsumer>,
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
    let senders = Arc::new(senders);
    let mut pullers = JoinSet::new();
    for consumer in consumers {
        pullers.spawn(pull_partition(
            consumer,
            applier.clone(),
            senders.clone(),
            shutdown.clone(),
        ));
    }
    while pullers.join_next().await.is_some() {}
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

/// One partition's puller: keeps a pinned pull stream open (on standby while another ledger
/// holds the partition) and routes what it receives to the lanes, until shutdown.
async fn pull_partition(
    mut consumer: IngestConsumer,
    applier: Arc<Applier>,
    senders: Arc<Vec<mpsc::Sender<Delivery>>>,
    shutdown: watch::Receiver<bool>,
) {
    let lanes = senders.len();
    let partition = consumer.partition();
    let order = applier.partition_orders.get(partition as usize);
    let mut contiguity = DeliveryContiguity::default();
    let mut stream_failures: u32 = 0;
    let mut lag_sampled_at = tokio::time::Instant::now() - LAG_SAMPLE_INTERVAL;
    let mut stopping = shutdown.clone();
    'streams: while !*shutdown.borrow() {
        if applier.counters.store_unavailable_since_seconds.get() != 0 {
            // Received now, a message would only wait behind the outage, and every ack_wait it
            // waits would count as one more delivery towards park_after_deliveries (parking
            // healthy messages as poison). The lanes keep what they hold and retry themselves.
            // The pull stream is closed meanwhile, so the pin may move to a ledger that can
            // reach the store (after pinned_client_timeout_ms).
            tokio::time::sleep(PULL_PAUSE_WHILE_STORE_UNAVAILABLE).await;
            continue;
        }
        let mut deliveries = match consumer.deliveries().await {
            Ok(deliveries) => {
                stream_failures = 0;
                deliveries
            }
            Err(error) => {
                stream_failures = stream_failures.saturating_add(1);
                tracing::warn!(%error, partition, "opening the pull stream failed; retrying");
                tokio::time::sleep(Duration::from_millis(
                    100 * u64::from(stream_failures.min(50)),
                ))
                .await;
                continue;
            }
        };
        loop {
            if lag_sampled_at.elapsed() >= LAG_SAMPLE_INTERVAL {
                lag_sampled_at = tokio::time::Instant::now();
                sample_consumer(&mut consumer, &applier).await;
            }
            if applier.counters.store_unavailable_since_seconds.get() != 0 {
                continue 'streams;
            }
            let item = tokio::select! {
                item = deliveries.next() => item,
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => break 'streams,
                () = tokio::time::sleep(LAG_SAMPLE_INTERVAL) => continue,
            };
            let Some(item) = item else {
                // The stream ended (the consumer went away or the connection broke): reopen.
                continue 'streams;
            };
            match item {
                Ok(delivery) if *shutdown.borrow() => applier.hand_back(&delivery).await,
                Ok(delivery) => {
                    // Before the lane sees it, so its check already counts this delivery.
                    contiguity.observe(
                        delivery.consumer_sequence(),
                        delivery.stream_sequence(),
                        delivery.delivered_count() <= 1,
                        &order.order_watermark,
                    );
                    let lane = lane_of(&applier.subjects, delivery.subject(), lanes);
                    // A full lane (wedged by an outage) must not keep the puller from stopping.
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
                Err(error) => tracing::debug!(%error, partition, "pull stream error"),
            }
        }
    }
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
