//! Sharing the partitions among the live ledgers: who is live, which partitions are this
//! ledger's share, and when that changes.
//!
//! Without it the server pins each partition to whichever ledger pulls first, so one ledger
//! often applies everything and the others only stand by. Here each ledger announces itself
//! every `bus.ledger_heartbeat_interval_ms` on a core-NATS subject
//! (`bus::Subjects::ledger_presence`, nothing stored) and listens there; a ledger not heard from
//! for `bus.ledger_presumed_gone_after_ms` is gone, and one that says goodbye (at shutdown) is
//! gone at once. From the same set of live ledgers every ledger computes the same assignment
//! ([`assign`]: rendezvous hashing with bounded loads), so each gets the floor or the ceiling
//! of partitions / live ledgers and a change of membership moves few partitions. A ledger
//! pulls only its share. A partition that leaves its share is released by its puller (what it
//! delivered is finished, then the pin is released); a partition whose previous owner vanished
//! without a goodbye is unpinned by its new owner; so neither waits `pinned_client_timeout_ms`.
//!
//! Partitions move only when the live set is the same at two evaluations
//! `bus.rebalance_interval_ms` apart (hysteresis: a ledger whose heartbeats come and go does
//! not make pins thrash); a goodbye is acted on at once. A ledger whose store is unavailable
//! stops announcing itself, so the others take its partitions, as the pin's timeout used to.
//!
//! Membership is advisory: ledgers that briefly disagree may both pull a partition (the server
//! pins one) or neither (for one evaluation). Order and exactly-once never rest on it: the
//! ordering read and the optimistic check do.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::counters::IngestCounters;

/// A ledger process's id for the partitions' sharing: new at every start.
pub type LedgerId = uuid::Uuid;

/// What a ledger announces on the presence subject.
#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    ledger_id: LedgerId,
    /// True once, at shutdown: let this ledger go now.
    leaving: bool,
}

/// This ledger's share of the partitions, as last worked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// Which partitions this ledger pulls, by partition number.
    pub owned: Vec<bool>,
    /// Partitions newly this ledger's whose previous owner vanished without a goodbye: their
    /// pins are released before pulling, since nobody else will release them.
    pub take_over: Vec<bool>,
}

impl Share {
    /// Every partition, none taken over: a ledger's share before it has heard of any other.
    pub fn everything(partitions: u32) -> Self {
        Self {
            owned: vec![true; partitions as usize],
            take_over: vec![false; partitions as usize],
        }
    }

    /// Whether `partition` is this ledger's.
    pub fn owns(&self, partition: u32) -> bool {
        self.owned.get(partition as usize).copied().unwrap_or(false)
    }

    /// Whether `partition`'s pin is to be released before this ledger pulls it.
    pub fn takes_over(&self, partition: u32) -> bool {
        self.take_over
            .get(partition as usize)
            .copied()
            .unwrap_or(false)
    }
}

/// The timings of the sharing (from `bus`).
#[derive(Clone, Copy, Debug)]
pub struct SharingTimings {
    /// How often this ledger announces itself.
    pub heartbeat_interval: Duration,
    /// Silence after which another ledger is gone.
    pub presumed_gone_after: Duration,
    /// How often the share is worked out.
    pub rebalance_interval: Duration,
}

impl SharingTimings {
    /// The timings a bus configuration names.
    pub fn of(config: &bus::BusConfig) -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(config.ledger_heartbeat_interval_ms),
            presumed_gone_after: Duration::from_millis(config.ledger_presumed_gone_after_ms),
            rebalance_interval: Duration::from_millis(config.rebalance_interval_ms),
        }
    }
}

/// A ledger's rank for a partition: the same in every process (no per-process hash seed).
fn score(ledger_id: LedgerId, partition: u32) -> u64 {
    let bits = ledger_id.as_u128();
    let mut mixed = (bits as u64)
        ^ ((bits >> 64) as u64).rotate_left(29)
        ^ u64::from(partition).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64's finaliser: every input bit moves every output bit.
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// The owner of each partition among `ledgers`: each partition goes to the ledger ranking it
/// highest that still has room, room being the floor of partitions / ledgers, plus one for as
/// many ledgers as the remainder. So loads differ by at most one, and a ledger joining or
/// leaving mostly moves only the partitions it gains or loses. `None` only with no ledgers.
pub fn assign(ledgers: &BTreeSet<LedgerId>, partitions: u32) -> Vec<Option<LedgerId>> {
    let count = u32::try_from(ledgers.len()).unwrap_or(u32::MAX);
    if count == 0 {
        return vec![None; partitions as usize];
    }
    let floor = partitions / count;
    let mut ceiling_places = partitions % count;
    let mut loads: HashMap<LedgerId, u32> = ledgers.iter().map(|id| (*id, 0)).collect();
    let mut owners = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let mut ranked: Vec<LedgerId> = ledgers.iter().copied().collect();
        ranked.sort_by_key(|id| (std::cmp::Reverse(score(*id, partition)), *id));
        let owner = ranked.into_iter().find(|id| {
            let load = loads[id];
            load < floor || (load == floor && ceiling_places > 0)
        });
        // Room remains while partitions do (the places sum to `partitions`).
        if let Some(owner) = owner {
            let load = loads.entry(owner).or_default();
            if *load == floor {
                ceiling_places -= 1;
            }
            *load += 1;
        }
        owners.push(owner);
    }
    owners
}

/// This ledger's share when the live set moves from `before` to `after`; `said_goodbye` are
/// the ledgers that left saying so (they released their own pins).
fn share_of(
    me: LedgerId,
    before: &BTreeSet<LedgerId>,
    after: &BTreeSet<LedgerId>,
    said_goodbye: &HashSet<LedgerId>,
    partitions: u32,
) -> Share {
    let owners_before = assign(before, partitions);
    let owners_after = assign(after, partitions);
    let owned: Vec<bool> = owners_after
        .iter()
        .map(|owner| *owner == Some(me))
        .collect();
    let take_over = owners_before
        .iter()
        .zip(&owned)
        .map(|(previous, &owned)| {
            owned
                && previous.is_some_and(|previous| {
                    previous != me
                        && !after.contains(&previous)
                        && !said_goodbye.contains(&previous)
                })
        })
        .collect();
    Share { owned, take_over }
}

/// Announces this ledger, follows the others, and publishes this ledger's share whenever it
/// changes, until shutdown; then says goodbye.
// One task's whole wiring, called from one place; a struct for it would only rename the list.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: async_nats::Client,
    presence_subject: String,
    me: LedgerId,
    partitions: u32,
    timings: SharingTimings,
    counters: Arc<IngestCounters>,
    share: watch::Sender<Share>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut presence = match client.subscribe(presence_subject.clone()).await {
        Ok(subscriber) => subscriber,
        Err(error) => {
            // Without presence this ledger keeps pulling everything: failover still works
            // (by the pin's timeout), only the sharing does not.
            tracing::error!(%error, "cannot follow the other ledgers; this ledger pulls every partition");
            return;
        }
    };
    let mut last_heard: HashMap<LedgerId, Instant> = HashMap::new();
    let mut said_goodbye: HashSet<LedgerId> = HashSet::new();
    let mut applied: BTreeSet<LedgerId> = BTreeSet::from([me]);
    let mut candidate = applied.clone();
    counters.ledgers_live.set(1);
    counters.partitions_assigned.set(u64::from(partitions));
    let mut heartbeat = tokio::time::interval(timings.heartbeat_interval);
    let mut rebalance = tokio::time::interval(timings.rebalance_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let announce = |leaving: bool| {
        let payload = serde_json::to_vec(&Announcement {
            ledger_id: me,
            leaving,
        })
        .unwrap_or_default();
        let client = client.clone();
        let subject = presence_subject.clone();
        async move {
            if let Err(error) = client.publish(subject, payload.into()).await {
                tracing::warn!(%error, "could not announce this ledger");
            }
        }
    };
    loop {
        let force = tokio::select! {
            _ = heartbeat.tick() => {
                // A ledger that cannot reach its store stops announcing itself, so the others
                // take its partitions (it pulls nothing meanwhile).
                if counters.store_unavailable_since_seconds.get() == 0 {
                    announce(false).await;
                }
                continue;
            }
            message = futures::StreamExt::next(&mut presence) => {
                let Some(message) = message else {
                    tracing::error!("the presence subscription ended; this ledger's share stays as it is");
                    return;
                };
                let Ok(announcement) = serde_json::from_slice::<Announcement>(&message.payload) else {
                    tracing::warn!(subject = %message.subject, "an unreadable ledger announcement was ignored");
                    continue;
                };
                if announcement.ledger_id == me {
                    continue;
                }
                if !announcement.leaving {
                    last_heard.insert(announcement.ledger_id, Instant::now());
                    continue;
                }
                last_heard.remove(&announcement.ledger_id);
                said_goodbye.insert(announcement.ledger_id);
                true
            }
            _ = rebalance.tick() => false,
            () = async {
                // A sender gone without asking to stop (the ledger dropped, as a crash) is no
                // goodbye: the others must find this ledger silent.
                if shutdown.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {
                announce(true).await;
                // The goodbye must leave before the connection may close.
                let _ = client.flush().await;
                return;
            }
        };
        let now = Instant::now();
        last_heard.retain(|_, heard| now.duration_since(*heard) < timings.presumed_gone_after);
        let live: BTreeSet<LedgerId> = last_heard
            .keys()
            .copied()
            .chain(std::iter::once(me))
            .collect();
        let settled = live == candidate;
        candidate = live.clone();
        if live == applied || !(settled || force) {
            continue;
        }
        let next = share_of(me, &applied, &live, &said_goodbye, partitions);
        tracing::info!(
            live_ledgers = live.len(),
            owned = ?next.owned.iter().enumerate().filter(|(_, owned)| **owned).map(|(partition, _)| partition).collect::<Vec<_>>(),
            "this ledger's share of the partitions changed"
        );
        counters.ledgers_live.set(live.len() as u64);
        counters
            .partitions_assigned
            .set(next.owned.iter().filter(|owned| **owned).count() as u64);
        share.send_replace(next);
        applied = live;
        said_goodbye.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledgers(count: usize) -> Vec<LedgerId> {
        (0..count).map(|_| uuid::Uuid::new_v4()).collect()
    }

    fn loads(owners: &[Option<LedgerId>]) -> HashMap<LedgerId, u32> {
        let mut loads = HashMap::new();
        for owner in owners.iter().flatten() {
            *loads.entry(*owner).or_default() += 1;
        }
        loads
    }

    #[test]
    fn every_partition_has_one_owner_and_loads_differ_by_at_most_one() {
        for partitions in [1_u32, 4, 8, 13, 64] {
            for count in 1..=6 {
                let ids = ledgers(count);
                let set: BTreeSet<_> = ids.iter().copied().collect();
                let owners = assign(&set, partitions);
                assert_eq!(owners.len(), partitions as usize);
                assert!(owners.iter().all(Option::is_some));
                let loads = loads(&owners);
                let floor = partitions / count as u32;
                for id in &ids {
                    let load = loads.get(id).copied().unwrap_or(0);
                    assert!(
                        load == floor || load == floor + 1,
                        "{partitions} partitions over {count} ledgers: a load of {load}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_ledger_computes_the_same_assignment_whatever_the_order_it_heard_in() {
        let ids = ledgers(5);
        let forwards: BTreeSet<_> = ids.iter().copied().collect();
        let backwards: BTreeSet<_> = ids.iter().rev().copied().collect();
        assert_eq!(assign(&forwards, 32), assign(&backwards, 32));
    }

    #[test]
    fn no_ledgers_own_nothing() {
        assert_eq!(assign(&BTreeSet::new(), 3), vec![None; 3]);
    }

    #[test]
    fn a_ledger_joining_takes_partitions_only_for_itself_mostly() {
        // Moves between the ledgers already there are what rendezvous ranking keeps down; a
        // plain `partition mod ledgers` would move most partitions.
        let mut moved_between_others = 0;
        let mut rounds = 0;
        for _ in 0..50 {
            let ids = ledgers(3);
            let before: BTreeSet<_> = ids.iter().copied().collect();
            let joining = uuid::Uuid::new_v4();
            let mut after = before.clone();
            after.insert(joining);
            let owners_before = assign(&before, 64);
            let owners_after = assign(&after, 64);
            moved_between_others += owners_before
                .iter()
                .zip(&owners_after)
                .filter(|(was, is)| was != is && **is != Some(joining))
                .count();
            rounds += 1;
        }
        assert!(
            moved_between_others < rounds * 64 / 4,
            "{moved_between_others} moves between existing ledgers in {rounds} joins of 64 partitions"
        );
    }

    #[test]
    fn only_a_vanished_owners_partitions_are_taken_over() {
        let ids = ledgers(3);
        let me = ids[0];
        let before: BTreeSet<_> = ids.iter().copied().collect();
        let after: BTreeSet<_> = [ids[0], ids[1]].into_iter().collect();
        let owners_before = assign(&before, 16);
        let vanished = share_of(me, &before, &after, &HashSet::new(), 16);
        let goodbye = share_of(me, &before, &after, &HashSet::from([ids[2]]), 16);
        #[allow(clippy::needless_range_loop)] // four arrays indexed by one partition number
        for partition in 0..16 {
            let taken = vanished.take_over[partition];
            assert_eq!(
                taken,
                vanished.owned[partition] && owners_before[partition] == Some(ids[2]),
                "partition {partition}"
            );
            assert!(
                !goodbye.take_over[partition],
                "a goodbye released its own pins"
            );
        }
    }
}
