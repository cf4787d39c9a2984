//! `fuzz`: the fuzz program's full mode (issue 15). Replays `regressions.txt`, then runs the
//! three cheap properties (requests for every agency write method, raw bus messages, raw
//! officer tokens) for `--cases` cases each, then stores a sample of everything accepted in a
//! scratch database of its own (`IPS_TEST_DATABASE_URL`'s server) and projects it. Prints the
//! seed, the counts and the wall time; exits non-zero on the first broken property, printing
//! the shrunk input and its line for `regressions.txt`.
//!
//! `cargo run --release -p fuzz -- --cases 1000000 --seed 42`

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use fuzz::{Failure, Tally};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Fuzz the agency edge, the bus decode and the token verifier")]
struct Arguments {
    /// Cases per cheap property (requests, bus messages, tokens).
    #[arg(long, default_value_t = 1_000_000)]
    cases: u32,
    /// The seed (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Accepted requests kept per method for the storage phase.
    #[arg(long, default_value_t = 300)]
    storage_per_method: usize,
    /// Recorded bus messages kept for the storage phase.
    #[arg(long, default_value_t = 3_000)]
    storage_bus: usize,
}

fn print_tally(name: &str, tally: &Tally, seconds: f64) {
    println!(
        "{name}: {} cases in {seconds:.1} s ({:.0} cases/s)",
        tally.cases,
        tally.cases as f64 / seconds.max(1e-9)
    );
    for (outcome, count) in &tally.outcomes {
        println!("  {outcome:<48} {count:>10}");
    }
}

fn report(failure: &Failure) -> anyhow::Error {
    eprintln!(
        "PROPERTY BROKEN in {}: {}",
        failure.property, failure.reason
    );
    eprintln!("minimal input: {}", failure.input);
    if let Some(line) = &failure.regression_line {
        eprintln!("regressions.txt line:\n{line}");
    }
    anyhow::anyhow!("{} property broken", failure.property)
}

/// Synchronous: the cheap properties run the aggregate's async `handle` on a plain executor,
/// which must not run inside a tokio task (tokio's cooperative budget is never refilled there,
/// and the executor waits for ever); only the storage phase gets a runtime.
fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let seed = arguments.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
    });
    println!("fuzz: seed {seed}, {} cases per property", arguments.cases);
    let started = Instant::now();

    let mut replayed = 0;
    for line in fuzz::regressions::lines(fuzz::regressions::REGRESSIONS) {
        fuzz::regressions::replay(line)
            .map_err(|broken| anyhow::anyhow!("regression case fails again: {broken}\n{line}"))?;
        replayed += 1;
    }
    println!("regressions: {replayed} cases replayed, all hold");

    let phase = Instant::now();
    let (requests, request_samples) =
        fuzz::run_requests(seed, arguments.cases, arguments.storage_per_method)
            .map_err(|failure| report(&failure))?;
    print_tally("requests", &requests, phase.elapsed().as_secs_f64());
    println!(
        "  accepted by method ({} methods):",
        requests.accepted_by_method.len()
    );
    for (method, count) in &requests.accepted_by_method {
        println!("    {method:<60} {count:>8}");
    }

    let phase = Instant::now();
    let (bus, bus_samples) = fuzz::run_bus(seed, arguments.cases, arguments.storage_bus)
        .map_err(|failure| report(&failure))?;
    print_tally("bus", &bus, phase.elapsed().as_secs_f64());

    let phase = Instant::now();
    let tokens = fuzz::run_tokens(seed, arguments.cases).map_err(|failure| report(&failure))?;
    print_tally("tokens", &tokens, phase.elapsed().as_secs_f64());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(store_phase(request_samples, bus_samples))?;
    println!(
        "fuzz: all properties hold; seed {seed}; {} cases of the cheap properties in {:.1} s wall time (regressions, storage included)",
        requests.cases + bus.cases + tokens.cases,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Stores the samples in a scratch database of its own, then drops it.
async fn store_phase(
    request_samples: Vec<domain::Submission>,
    bus_samples: fuzz::BusSamples,
) -> anyhow::Result<()> {
    let phase = Instant::now();
    let samples = request_samples.len() + bus_samples.recorded.len();
    let database = testkit::TestDatabase::create()
        .await
        .context("scratch database")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(fuzz::storage::STORAGE_CONCURRENCY as u32 + 2)
        .connect(&database.url)
        .await?;
    let stored = fuzz::storage::store_samples(
        &pool,
        request_samples
            .into_iter()
            .chain(bus_samples.recorded)
            .collect(),
        bus_samples.parked,
    )
    .await;
    pool.close().await;
    database.drop_database().await;
    let stored =
        stored.map_err(|broken| anyhow::anyhow!("PROPERTY BROKEN in storage: {broken}"))?;
    println!(
        "storage: {samples} samples stored in {:.1} s ({} accepted, {} recorded as rejections; {} event rows, {} timeline rows; {} refused bus messages parked)",
        phase.elapsed().as_secs_f64(),
        stored.accepted,
        stored.rejected,
        stored.event_rows,
        stored.timeline_rows,
        stored.parked
    );
    Ok(())
}
