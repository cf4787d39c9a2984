//! The fault schedule: which faults, against what, for how long, and at which point of the run,
//! all drawn from one seed, so a run that found something can be repeated fault for fault.
//!
//! A fault's moment is a count of definite answers (not a clock time): the machine's speed
//! decides how long a run takes, but not where in the workload each fault lands. Faults run one
//! after another, each finished (the process back, the node caught up) before the next, so the
//! system is always one failure away from losing quorum, never two.

use std::fmt;

/// A small, seeded pseudo-random generator (SplitMix64): the probe needs reproducible draws,
/// not cryptographic ones, and no dependency for it.
#[derive(Clone, Debug)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// A generator whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low + 1)
    }

    /// An index below `count` (0 when `count` is 0).
    pub fn below(&mut self, count: usize) -> usize {
        if count == 0 {
            return 0;
        }
        (self.next_u64() % count as u64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = self.below(index + 1);
            items.swap(index, other);
        }
    }
}

/// How much the probe does: events, writers and how many of each fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The mode's name, as printed.
    pub name: &'static str,
    /// Definite answers to collect at the least (the run goes on until every fault has run).
    pub events_min: u64,
    /// Concurrent writers (each an officer working through its own participants).
    pub writers: usize,
    /// Ledger processes.
    pub ledgers: usize,
    /// `kill -9` of a ledger, restarted after a while.
    pub ledger_kills: usize,
    /// A NATS node killed and started again; about half of them the stream's leader.
    pub nats_restarts: usize,
    /// PostgreSQL stopped at once (as a crash) and started again.
    pub postgres_restarts: usize,
    /// SIGSTOP/SIGCONT of a ledger for less than `pinned_client_timeout_ms`.
    pub short_pauses: usize,
    /// SIGSTOP/SIGCONT of a ledger for more than `pinned_client_timeout_ms`, so its partitions
    /// move while it sleeps and it wakes up believing it still holds them.
    pub long_pauses: usize,
}

impl Mode {
    /// The full mode of issue 15: at least 100,000 events, 10 ledger kills, 10 NATS node
    /// restarts, 3 PostgreSQL restarts and 5 pauses.
    pub fn full() -> Self {
        Self {
            name: "full",
            events_min: 100_000,
            writers: 24,
            ledgers: 3,
            ledger_kills: 10,
            nats_restarts: 10,
            postgres_restarts: 3,
            short_pauses: 3,
            long_pauses: 3,
        }
    }

    /// The short mode the test suite runs: a few thousand events, at least two of each fault.
    pub fn short() -> Self {
        Self {
            name: "short",
            events_min: 2_000,
            writers: 12,
            ledgers: 3,
            ledger_kills: 2,
            nats_restarts: 2,
            postgres_restarts: 2,
            short_pauses: 2,
            long_pauses: 2,
        }
    }

    /// How many faults the mode injects.
    pub fn faults(&self) -> usize {
        self.ledger_kills
            + self.nats_restarts
            + self.postgres_restarts
            + self.short_pauses
            + self.long_pauses
    }
}

/// Which NATS node a restart hits; the leader is only known when the fault runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatsTarget {
    /// The node leading the agency stream at that moment.
    StreamLeader,
    /// A node that does not lead it (the first or second after the leader).
    Follower(usize),
}

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of ledger `ledger`; started again after `down_ms`.
    LedgerKill {
        /// Which ledger (0-based).
        ledger: usize,
        /// How long it stays dead.
        down_ms: u64,
    },
    /// SIGKILL of a NATS node; started again after `down_ms` and waited for until the stream
    /// has every replica current.
    NatsRestart {
        /// Which node.
        target: NatsTarget,
        /// How long it stays down.
        down_ms: u64,
    },
    /// PostgreSQL stopped `immediate` (a crash: no checkpoint, connections cut); started again
    /// after `down_ms`.
    PostgresRestart {
        /// How long it stays down.
        down_ms: u64,
    },
    /// SIGSTOP of ledger `ledger`, SIGCONT after `paused_ms`.
    Pause {
        /// Which ledger (0-based).
        ledger: usize,
        /// How long it is stopped.
        paused_ms: u64,
        /// Whether `paused_ms` exceeds `bus.pinned_client_timeout_ms` (its partitions move).
        longer_than_pin_timeout: bool,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LedgerKill { ledger, down_ms } => {
                write!(formatter, "kill -9 ledger {ledger}, down {down_ms} ms")
            }
            Self::NatsRestart {
                target: NatsTarget::StreamLeader,
                down_ms,
            } => write!(
                formatter,
                "kill the stream leader's NATS node, down {down_ms} ms"
            ),
            Self::NatsRestart {
                target: NatsTarget::Follower(offset),
                down_ms,
            } => write!(
                formatter,
                "kill a follower NATS node (leader + {offset}), down {down_ms} ms"
            ),
            Self::PostgresRestart { down_ms } => {
                write!(formatter, "crash PostgreSQL, down {down_ms} ms")
            }
            Self::Pause {
                ledger,
                paused_ms,
                longer_than_pin_timeout,
            } => write!(
                formatter,
                "SIGSTOP ledger {ledger} for {paused_ms} ms ({} the pin timeout)",
                if *longer_than_pin_timeout {
                    "longer than"
                } else {
                    "shorter than"
                }
            ),
        }
    }
}

/// A fault and the moment it is due: once `at_answers` definite answers have come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedFault {
    /// Definite answers collected before the fault starts.
    pub at_answers: u64,
    /// The fault.
    pub fault: Fault,
}

/// Draws the schedule for `mode` from `seed`. `pinned_client_timeout_ms` separates short pauses
/// from long ones. The faults are spread evenly over 5–85 % of `events_min` (each moved by up
/// to a third of the gap), in a seeded order.
pub fn plan(seed: u64, mode: &Mode, pinned_client_timeout_ms: u64) -> Vec<PlannedFault> {
    let mut random = SeededRandom::new(seed);
    let mut faults = Vec::with_capacity(mode.faults());
    let ledgers = mode.ledgers.max(1);
    for _ in 0..mode.ledger_kills {
        faults.push(Fault::LedgerKill {
            ledger: random.below(ledgers),
            down_ms: random.between(200, 3_000),
        });
    }
    for restart in 0..mode.nats_restarts {
        // Alternate, so both kinds come even in the short mode's two.
        let target = if restart % 2 == 0 {
            NatsTarget::StreamLeader
        } else {
            NatsTarget::Follower(1 + random.below(2))
        };
        faults.push(Fault::NatsRestart {
            target,
            down_ms: random.between(500, 4_000),
        });
    }
    for _ in 0..mode.postgres_restarts {
        faults.push(Fault::PostgresRestart {
            down_ms: random.between(1_000, 5_000),
        });
    }
    for _ in 0..mode.short_pauses {
        faults.push(Fault::Pause {
            ledger: random.below(ledgers),
            paused_ms: random.between(100, pinned_client_timeout_ms * 6 / 10),
            longer_than_pin_timeout: false,
        });
    }
    for _ in 0..mode.long_pauses {
        faults.push(Fault::Pause {
            ledger: random.below(ledgers),
            paused_ms: random.between(
                pinned_client_timeout_ms * 3 / 2,
                pinned_client_timeout_ms * 3,
            ),
            longer_than_pin_timeout: true,
        });
    }
    random.shuffle(&mut faults);
    let first = mode.events_min / 20;
    let span = mode.events_min * 85 / 100 - first;
    let gap = span / (faults.len() as u64).max(1);
    faults
        .into_iter()
        .enumerate()
        .map(|(index, fault)| {
            let jitter = random.between(0, gap / 3);
            PlannedFault {
                at_answers: first + gap * index as u64 + jitter,
                fault,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(plan: &[PlannedFault], matches: impl Fn(&Fault) -> bool) -> usize {
        plan.iter()
            .filter(|planned| matches(&planned.fault))
            .count()
    }

    fn holds_the_modes_counts(mode: &Mode, seed: u64) {
        let pin_timeout_ms = 2_000;
        let plan = plan(seed, mode, pin_timeout_ms);
        assert_eq!(plan.len(), mode.faults());
        assert_eq!(
            count(&plan, |fault| matches!(fault, Fault::LedgerKill { .. })),
            mode.ledger_kills
        );
        assert_eq!(
            count(&plan, |fault| matches!(
                fault,
                Fault::PostgresRestart { .. }
            )),
            mode.postgres_restarts
        );
        assert!(
            count(&plan, |fault| matches!(
                fault,
                Fault::NatsRestart {
                    target: NatsTarget::StreamLeader,
                    ..
                }
            )) >= 1,
            "the leader is among the NATS restarts"
        );
        for planned in &plan {
            if let Fault::Pause {
                paused_ms,
                longer_than_pin_timeout,
                ..
            } = planned.fault
            {
                assert_eq!(longer_than_pin_timeout, paused_ms > pin_timeout_ms);
            }
        }
        assert_eq!(
            count(&plan, |fault| matches!(
                fault,
                Fault::Pause {
                    longer_than_pin_timeout: true,
                    ..
                }
            )),
            mode.long_pauses
        );
        assert!(plan
            .windows(2)
            .all(|pair| pair[0].at_answers < pair[1].at_answers));
        assert!(plan
            .last()
            .is_some_and(|last| last.at_answers < mode.events_min));
    }

    #[test]
    fn each_mode_plans_what_the_issue_asks() {
        let full = Mode::full();
        assert!(full.events_min >= 100_000);
        assert!(full.ledger_kills >= 10 && full.nats_restarts >= 10);
        assert!(full.postgres_restarts >= 3 && full.short_pauses + full.long_pauses >= 5);
        let short = Mode::short();
        for at_least_two in [
            short.ledger_kills,
            short.nats_restarts,
            short.postgres_restarts,
            short.short_pauses,
            short.long_pauses,
        ] {
            assert!(at_least_two >= 2);
        }
        for seed in [0, 1, 42, u64::MAX] {
            holds_the_modes_counts(&full, seed);
            holds_the_modes_counts(&short, seed);
        }
    }

    #[test]
    fn the_same_seed_plans_the_same_faults_and_another_seed_others() {
        let mode = Mode::short();
        assert_eq!(plan(7, &mode, 2_000), plan(7, &mode, 2_000));
        assert_ne!(plan(7, &mode, 2_000), plan(8, &mode, 2_000));
    }
}
