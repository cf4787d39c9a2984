//! The fault probe (issue 15): the whole system as separate processes (a private PostgreSQL, a
//! three-node NATS cluster, several ledgers, the four agency services) driven through the public
//! gRPC APIs while faults land at seeded, logged moments: `kill -9` of a ledger, a NATS node
//! (the stream leader too) killed and restarted, PostgreSQL crashed and restarted, and a ledger
//! paused (SIGSTOP) for less and for more than the partitions' failover time. Afterwards it
//! counts, by event id, that every promise of the three answers held (`checks.rs`).
//!
//! It is a program, not a test, because its full mode runs for many minutes; its short mode
//! runs inside the test suite (`tests/short_mode.rs`). The seed fixes the schedule and every
//! request id, so a failing run can be repeated.

pub mod checks;
pub mod processes;
pub mod schedule;
pub mod stack;
pub mod workload;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checks::Counts;
use schedule::{Fault, Mode, NatsTarget, PlannedFault, SeededRandom};
use stack::{lock, take, ProbeStack, AGENCY_SERVICES};
use workload::{AgencyClients, ParticipantRecord, Progress};

/// The partitions' failover time for the probe's ledgers: pauses are drawn shorter and longer.
pub const PINNED_CLIENT_TIMEOUT_MS: u64 = 2_000;

/// How long the probe waits, after the writers stop, for everything to be applied and projected.
const DRAIN_WITHIN: Duration = Duration::from_secs(180);

/// How long a restarted NATS node may take until the stream has all replicas current again.
const NATS_SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Fixes the schedule and the request ids.
    pub seed: u64,
    /// How much to do.
    pub mode: Mode,
    /// Where the service binaries are.
    pub binaries: PathBuf,
    /// Keep the services' logs even when the run passes.
    pub keep_logs: bool,
}

/// A fault as it was carried out.
#[derive(Debug)]
pub struct FaultLog {
    /// What was planned.
    pub planned: PlannedFault,
    /// Definite answers when it started.
    pub answers_at_start: u64,
    /// Time since the writers started.
    pub started_after: Duration,
    /// How long it took (down time and recovery included).
    pub took: Duration,
    /// What it hit, or why it failed.
    pub outcome: Result<String, String>,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The mode's name.
    pub mode: &'static str,
    /// The faults as carried out.
    pub faults: Vec<FaultLog>,
    /// The counts.
    pub counts: Counts,
    /// From the first request to the last answer.
    pub writing: Duration,
    /// The whole run, set-up and checks included.
    pub wall: Duration,
    /// Where the logs are, if kept.
    pub logs: Option<PathBuf>,
}

impl Report {
    /// Whether every promise held.
    pub fn passed(&self) -> bool {
        self.counts.passed()
    }

    /// The report as printed.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "fault probe, {} mode, seed {}: {}",
            self.mode,
            self.seed,
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(text, "fault schedule (as carried out):");
        for (index, fault) in self.faults.iter().enumerate() {
            let _ = writeln!(
                text,
                "  {index:>2}. planned at {} answers, began at {} answers, {:.1} s into the run, took {:.1} s: {} -> {}",
                fault.planned.at_answers,
                fault.answers_at_start,
                fault.started_after.as_secs_f64(),
                fault.took.as_secs_f64(),
                fault.planned.fault,
                match &fault.outcome {
                    Ok(detail) => detail.clone(),
                    Err(error) => format!("FAILED: {error}"),
                }
            );
        }
        let _ = writeln!(
            text,
            "writing took {:.1} s ({:.0} answers/s); the whole run {:.1} s",
            self.writing.as_secs_f64(),
            self.counts.requests as f64 / self.writing.as_secs_f64().max(f64::MIN_POSITIVE),
            self.wall.as_secs_f64()
        );
        text.push_str(&self.counts.render());
        if let Some(logs) = &self.logs {
            let _ = writeln!(text, "service logs kept in {}", logs.display());
        }
        text
    }
}

/// Runs the probe: set-up, writers and faults, drain, checks. Prints the schedule first and
/// progress as it goes; returns the report (an `Err` only when the probe itself could not run).
pub async fn run(options: ProbeOptions) -> anyhow::Result<Report> {
    let started = Instant::now();
    let plan = schedule::plan(options.seed, &options.mode, PINNED_CLIENT_TIMEOUT_MS);
    println!(
        "fault probe, {} mode, seed {}: at least {} events, {} writers, {} ledgers, pin timeout {} ms",
        options.mode.name,
        options.seed,
        options.mode.events_min,
        options.mode.writers,
        options.mode.ledgers,
        PINNED_CLIENT_TIMEOUT_MS
    );
    println!("fault schedule (planned):");
    for (index, planned) in plan.iter().enumerate() {
        println!(
            "  {index:>2}. at {} answers: {}",
            planned.at_answers, planned.fault
        );
    }
    let log_directory = std::env::temp_dir().join(format!(
        "ips-fault-probe-{}-{}",
        options.seed,
        std::process::id()
    ));
    let stack = Arc::new(
        ProbeStack::start(
            &options.binaries,
            options.mode.ledgers,
            PINNED_CLIENT_TIMEOUT_MS,
            log_directory.clone(),
        )
        .await?,
    );
    println!(
        "stack up in {:.1} s: PostgreSQL, 3 NATS nodes, {} ledgers, {} agency services (logs in {})",
        started.elapsed().as_secs_f64(),
        options.mode.ledgers,
        AGENCY_SERVICES.len(),
        log_directory.display()
    );

    let progress = Arc::new(Progress::default());
    let addresses = [0, 1, 2, 3].map(|index| stack.agency_address(index));
    let run_tag = format!("fp{}", options.seed);
    let writing_started = Instant::now();
    let mut writers = Vec::with_capacity(options.mode.writers);
    for writer in 0..options.mode.writers {
        let clients = AgencyClients::connect(addresses).await?;
        writers.push(tokio::spawn(workload::writer(
            clients,
            progress.clone(),
            run_tag.clone(),
            writer,
        )));
    }
    let reporter = tokio::spawn(report_progress(progress.clone(), writing_started));
    let faults = run_faults(
        stack.clone(),
        plan,
        progress.clone(),
        writing_started,
        SeededRandom::new(options.seed ^ 0x5eed),
    )
    .await;
    while progress.answers.load(Ordering::Relaxed) < options.mode.events_min {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress.stop.store(true, Ordering::Relaxed);
    let mut participants: Vec<ParticipantRecord> = Vec::new();
    for writer in writers {
        participants.extend(writer.await?);
    }
    let writing = writing_started.elapsed();
    reporter.abort();
    println!(
        "writers done: {} answers in {:.1} s; waiting for the ledgers to apply and project everything",
        progress.answers.load(Ordering::Relaxed),
        writing.as_secs_f64()
    );

    let mut counts = Counts::from_answers(&participants);
    counts.failed_faults = faults
        .iter()
        .filter_map(|fault| {
            fault
                .outcome
                .as_ref()
                .err()
                .map(|error| format!("{}: {error}", fault.planned.fault))
        })
        .collect();
    let drained_within = wait_for_drain(&stack, &participants).await?;
    println!("drained in {:.1} s", drained_within.as_secs_f64());
    counts.consumers_outstanding = stack.consumers_outstanding().await;
    counts.crashed_services = stack.crashed_services();
    counts
        .check_store(&stack, &participants, &mut SeededRandom::new(options.seed))
        .await?;
    for ledger in &stack.ledgers {
        let mut process = take(ledger);
        if !process.terminate().await {
            counts.crashed_services.push(format!(
                "{} did not drain on SIGTERM within its bound; its log ends:\n{}",
                process.name,
                process.log_tail(20)
            ));
        }
    }
    counts.check_read_models(&stack).await?;
    for agency in &stack.agencies {
        take(agency).terminate().await;
    }
    let passed = counts.passed();
    let keep = options.keep_logs || !passed;
    drop(stack);
    if !keep {
        let _ = std::fs::remove_dir_all(&log_directory);
    }
    Ok(Report {
        seed: options.seed,
        mode: options.mode.name,
        faults,
        counts,
        writing,
        wall: started.elapsed(),
        logs: keep.then_some(log_directory),
    })
}

async fn report_progress(progress: Arc<Progress>, started: Instant) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let answers = progress.answers.load(Ordering::Relaxed);
        println!(
            "  {:>6.0} s: {answers} answers ({:.0}/s), {} UNAVAILABLE so far",
            started.elapsed().as_secs_f64(),
            answers as f64 / started.elapsed().as_secs_f64(),
            progress.unavailable_answers.load(Ordering::Relaxed)
        );
    }
}

/// Carries out the schedule, each fault when its moment has come, one after another.
async fn run_faults(
    stack: Arc<ProbeStack>,
    plan: Vec<PlannedFault>,
    progress: Arc<Progress>,
    started: Instant,
    mut random: SeededRandom,
) -> Vec<FaultLog> {
    let mut log = Vec::with_capacity(plan.len());
    for planned in plan {
        while progress.answers.load(Ordering::Relaxed) < planned.at_answers {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answers_at_start = progress.answers.load(Ordering::Relaxed);
        let started_after = started.elapsed();
        let fault_started = Instant::now();
        let outcome = execute(&stack, planned.fault, &mut random)
            .await
            .map_err(|error| format!("{error:#}"));
        let entry = FaultLog {
            planned,
            answers_at_start,
            started_after,
            took: fault_started.elapsed(),
            outcome,
        };
        println!(
            "  fault at {} answers, {:.1} s: {} -> {} ({:.1} s)",
            entry.answers_at_start,
            entry.started_after.as_secs_f64(),
            entry.planned.fault,
            match &entry.outcome {
                Ok(detail) => detail.clone(),
                Err(error) => format!("FAILED: {error}"),
            },
            entry.took.as_secs_f64()
        );
        log.push(entry);
    }
    log
}

/// Carries out one fault and waits for the system to be whole again.
async fn execute(
    stack: &Arc<ProbeStack>,
    fault: Fault,
    random: &mut SeededRandom,
) -> anyhow::Result<String> {
    match fault {
        Fault::LedgerKill { ledger, down_ms } => {
            let process = &stack.ledgers[ledger];
            let old_pid = {
                let mut process = lock(process);
                let pid = process.pid();
                process.kill();
                pid
            };
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            lock(process).spawn()?;
            ProbeStack::wait_started(process).await?;
            Ok(format!(
                "ledger {ledger} (pid {old_pid:?}) killed, restarted as pid {:?}",
                lock(process).pid()
            ))
        }
        Fault::NatsRestart { target, down_ms } => {
            let stream = &stack.bus_config.stream_name;
            let leader = stack.cluster.stream_leader(stream).await?;
            let node = match target {
                NatsTarget::StreamLeader => leader,
                NatsTarget::Follower(offset) => (leader + offset) % testkit::NATS_CLUSTER_NODES,
            };
            stack.cluster.kill(node);
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            stack.cluster.restart(node).await?;
            let restarted = Instant::now();
            while !stack.stream_settled().await {
                anyhow::ensure!(
                    restarted.elapsed() < NATS_SETTLE_WITHIN,
                    "the stream had not every replica current {NATS_SETTLE_WITHIN:?} after node n{node} restarted"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let new_leader = stack.cluster.stream_leader(stream).await?;
            Ok(format!(
                "node n{node} killed (stream leader was n{leader}), restarted; replicas current after {:.1} s; leader now n{new_leader}",
                restarted.elapsed().as_secs_f64()
            ))
        }
        Fault::PostgresRestart { down_ms } => {
            let crashing = stack.clone();
            tokio::task::spawn_blocking(move || crashing.postgres.crash()).await??;
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            stack.postgres.start_server().await?;
            Ok("PostgreSQL stopped immediate and started again".into())
        }
        Fault::Pause {
            ledger, paused_ms, ..
        } => {
            let process = &stack.ledgers[ledger];
            lock(process).signal("STOP")?;
            tokio::time::sleep(Duration::from_millis(paused_ms)).await;
            lock(process).signal("CONT")?;
            // Whether it lived through waking up (it should).
            tokio::time::sleep(Duration::from_millis(random.between(0, 200))).await;
            match lock(process).exited() {
                None => Ok(format!("ledger {ledger} stopped and continued")),
                Some(status) => anyhow::bail!("ledger {ledger} exited after SIGCONT ({status})"),
            }
        }
    }
}

/// Waits until every answered event is stored, the consumers hold nothing and the projector
/// has caught up with the events table; how long that took.
async fn wait_for_drain(
    stack: &ProbeStack,
    participants: &[ParticipantRecord],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let pool = stack.database.pool().await?;
    let promised: usize = participants
        .iter()
        .flat_map(|participant| &participant.requests)
        .filter(|request| request.answer.promises_storage())
        .count();
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1);
        let projected: bool = sqlx::query_scalar(
            "SELECT coalesce((SELECT last_global_position FROM projector_checkpoints WHERE projector_name = 'timeline'), 0)
                 >= coalesce((SELECT max(global_position) FROM events), 0)",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(false);
        let outstanding = stack.consumers_outstanding().await;
        if usize::try_from(stored).unwrap_or(0) >= promised && projected && outstanding == Some(0) {
            break;
        }
        if started.elapsed() > DRAIN_WITHIN {
            println!(
                "not drained after {DRAIN_WITHIN:?}: {stored} of {promised} stored, projected {projected}, consumers hold {outstanding:?}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;
    Ok(started.elapsed())
}
