//! The ingest loop: one puller per partition of this ledger's share routes each delivery to its
//! participant's lane, the lanes (shared by all partitions) apply one delivery at a time, a
//! partition leaving the share is released once its deliveries are finished, and at shutdown
//! everything unfinished is handed back within the drain limit and the pins are released.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bus::{Delivery, IngestConsumer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use futures::FutureExt;

use super::applier::Applier;
use super::ordering::{lane_of, DeliveryContiguity};
use super::sharing::Share;

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

/// Pulls this ledger's share of the partitions until shutdown, routing each delivery to its
/// participant's lane; then lets the lanes finish what they hold, releases the pins it holds
/// (so the next ledger takes its partitions at once) and returns.
pub async fn run(
    consumers: Vec<IngestConsumer>,
    applier: Arc<Applier>,
    share: watch::Receiver<Share>,
    shutdown: watch::Receiver<bool>,
) {
    let lanes = applier.config.lanes;
    let drain_timeout = Duration::from_millis(applier.config.drain_timeout_ms);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = JoinSet::new();
    for _ in 0..lanes {
        let (sender, mut receiver) =
            mpsc::channel::<(u32, Delivery)>(applier.config.lane_queue_length_max);
        senders.push(sender);
        let applier = applier.clone();
        let shutdown = shutdown.clone();
        workers.spawn(async move {
            while let Some((partition, delivery)) = receiver.recv().await {
                if *shutdown.borrow() {
                    // Not started: handed back at once, so a long queue drains in no time.
                    applier.hand_back(&delivery).await;
                } else {
                    tokio::select! {
                        () = applier.process(&delivery, &shutdown) => {}
                        () = drain_deadline(shutdown.clone(), drain_timeout) => {
                            // Dropping the attempt is safe: if its commit landed, the redelivery
                            // is a no-op (the aggregate remembers the event id).
                            tracing::warn!(stream_sequence = delivery.stream_sequence(), "unfinished at the drain deadline; handed back");
                            applier.hand_back(&delivery).await;
                        }
                    }
                }
                applier
                    .partition_orders
                    .get(partition as usize)
                    .in_flight
                    .fetch_sub(1, Ordering::SeqCst);
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
            share.clone(),
            shutdown.clone(),
        ));
    }
    let mut held = Vec::new();
    while let Some(joined) = pullers.join_next().await {
        if let Ok((consumer, Some(pin_id))) = joined {
            held.push((consumer, pin_id));
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
    // Only now, with nothing of theirs in flight here: the next ledger takes them at once
    // (what was handed back included) instead of after pinned_client_timeout_ms.
    let releases = held.into_iter().map(|(mut consumer, pin_id)| {
        let counters = applier.counters.clone();
        async move {
            match consumer.release_pin(&pin_id).await {
                Ok(true) => counters.pins_released.inc(),
                Ok(false) => 0,
                Err(error) => {
                    tracing::warn!(%error, partition = consumer.partition(), "could not release the pin at shutdown; it lapses after pinned_client_timeout_ms");
                    0
                }
            };
        }
    });
    if tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(releases))
        .await
        .is_err()
    {
        tracing::warn!("releasing the pins at shutdown took too long; the rest lapse after pinned_client_timeout_ms");
    }
    tracing::info!(
        handed_back = applier.counters.handed_back_at_shutdown.get(),
        pins_released = applier.counters.pins_released.get(),
        "ingest drained"
    );
}

/// How often a releasing puller looks whether its partition's deliveries are finished.
const IN_FLIGHT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// What one partition's puller needs to route deliveries to the lanes.
struct Router<'a> {
    applier: &'a Applier,
    senders: &'a [mpsc::Sender<(u32, Delivery)>],
    partition: u32,
    contiguity: DeliveryContiguity,
    held_pin_id: Option<String>,
}

impl Router<'_> {
    /// Routes one delivery to its participant's lane (or hands it back when stopping).
    async fn route(&mut self, delivery: Delivery, stopping: &mut watch::Receiver<bool>) {
        if *stopping.borrow() {
            return self.applier.hand_back(&delivery).await;
        }
        if let Some(pin_id) = delivery.pin_id() {
            if self.held_pin_id.as_deref() != Some(pin_id) {
                self.held_pin_id = Some(pin_id.to_owned());
            }
        }
        let order = self.applier.partition_orders.get(self.partition as usize);
        // Before the lane sees it, so its check already counts this delivery.
        self.contiguity.observe(
            delivery.consumer_sequence(),
            delivery.stream_sequence(),
            delivery.delivered_count() <= 1,
            &order.order_watermark,
        );
        let lane = lane_of(
            &self.applier.subjects,
            delivery.subject(),
            self.senders.len(),
        );
        // A full lane (wedged by an outage) must not keep the puller from stopping.
        tokio::select! {
            permit = self.senders[lane].reserve() => match permit {
                Ok(permit) => {
                    order.in_flight.fetch_add(1, Ordering::SeqCst);
                    permit.send((self.partition, delivery));
                }
                Err(_) => tracing::error!(lane, "ingest lane stopped unexpectedly"),
            },
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                self.applier.hand_back(&delivery).await
            }
        }
    }

    /// Releases the partition after it left this ledger's share: waits (at most
    /// `drain_timeout`) until the lanes have finished what it routed, then releases the pin if
    /// this ledger still holds it.
    async fn release(
        &mut self,
        consumer: &mut IngestConsumer,
        drain_timeout: Duration,
        stopping: &mut watch::Receiver<bool>,
    ) {
        let order = self.applier.partition_orders.get(self.partition as usize);
        let finished = tokio::time::timeout(drain_timeout, async {
            while order.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(IN_FLIGHT_POLL_INTERVAL).await;
            }
        });
        tokio::select! {
            result = finished => if result.is_err() {
                // Releasing anyway is safe: the ordering read and the optimistic check keep
                // order if the next owner gets a later message of one of these participants.
                tracing::warn!(partition = self.partition, "deliveries still unfinished when releasing the partition");
            },
            // At shutdown the pin is released after the lanes have drained (see `run`).
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => return,
        }
        let Some(pin_id) = self.held_pin_id.take() else {
            return;
        };
        match consumer.release_pin(&pin_id).await {
            Ok(released) => {
                if released {
                    self.applier.counters.pins_released.inc();
                }
                tracing::info!(
                    partition = self.partition,
                    released,
                    "partition left this ledger's share"
                );
            }
            Err(error) => {
                tracing::warn!(%error, partition = self.partition, "could not release the pin; it lapses after pinned_client_timeout_ms")
            }
        }
    }
}

/// One partition's puller: while the partition is this ledger's share, keeps a pinned pull
/// stream open (on standby while another ledger still holds the pin) and routes what it
/// receives to the lanes; when it leaves the share, releases it. Returns, at shutdown, the
/// consumer and the pin it holds, to be released once the lanes have drained.
async fn pull_partition(
    mut consumer: IngestConsumer,
    applier: Arc<Applier>,
    senders: Arc<Vec<mpsc::Sender<(u32, Delivery)>>>,
    mut share: watch::Receiver<Share>,
    shutdown: watch::Receiver<bool>,
) -> (IngestConsumer, Option<String>) {
    let partition = consumer.partition();
    let drain_timeout = Duration::from_millis(applier.config.drain_timeout_ms);
    let mut router = Router {
        applier: &applier,
        senders: &senders,
        partition,
        contiguity: DeliveryContiguity::default(),
        held_pin_id: None,
    };
    let mut stream_failures: u32 = 0;
    let mut lag_sampled_at = tokio::time::Instant::now() - LAG_SAMPLE_INTERVAL;
    let mut stopping = shutdown.clone();
    // Once the sharing has stopped publishing (it ends at shutdown), the last share stands.
    let mut share_open = true;
    'share: while !*shutdown.borrow() {
        let (owned, take_over) = {
            let current = share.borrow_and_update();
            (current.owns(partition), current.takes_over(partition))
        };
        if !owned {
            tokio::select! {
                changed = share.changed(), if share_open => share_open = changed.is_ok(),
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => break 'share,
            }
            continue 'share;
        }
        if take_over {
            // Its owner vanished without releasing it; nobody else will.
            match consumer.unpin().await {
                Ok(()) => {
                    applier.counters.pins_taken_over.inc();
                }
                Err(error) => {
                    tracing::warn!(%error, partition, "could not release a vanished ledger's pin; it lapses after pinned_client_timeout_ms")
                }
            }
        }
        'streams: while !*shutdown.borrow() {
            if applier.counters.store_unavailable_since_seconds.get() != 0 {
                // Received now, a message would only wait behind the outage, and every
                // ack_wait it waits would count as one more delivery towards
                // park_after_deliveries (parking healthy messages as poison). The lanes keep
                // what they hold and retry themselves. The pull stream is closed meanwhile and
                // this ledger stops announcing itself, so the others take its partitions.
                if share.has_changed().unwrap_or(false) && !share.borrow().owns(partition) {
                    router
                        .release(&mut consumer, drain_timeout, &mut stopping)
                        .await;
                    continue 'share;
                }
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
                    changed = share.changed(), if share_open => {
                        share_open = changed.is_ok();
                        if share.borrow().owns(partition) {
                            continue;
                        }
                        // What the stream has already received is this ledger's to finish;
                        // dropping the stream then stops the pulls.
                        while let Some(Some(item)) = deliveries.next().now_or_never() {
                            if let Ok(delivery) = item {
                                router.route(delivery, &mut stopping).await;
                            }
                        }
                        drop(deliveries);
                        router.release(&mut consumer, drain_timeout, &mut stopping).await;
                        continue 'share;
                    }
                    () = async { let _ = stopping.wait_for(|stop| *stop).await; } => break 'share,
                    () = tokio::time::sleep(LAG_SAMPLE_INTERVAL) => continue,
                };
                let Some(item) = item else {
                    // The stream ended (the consumer went away or the connection broke): reopen.
                    continue 'streams;
                };
                match item {
                    Ok(delivery) => router.route(delivery, &mut stopping).await,
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
    let held_pin_id = router.held_pin_id.take();
    (consumer, held_pin_id)
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
