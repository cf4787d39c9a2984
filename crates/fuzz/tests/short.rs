//! The fuzz program's short mode, in the test suite: a few thousand cases of each property,
//! the storage phase on a database of the test's own, every regression case replayed, and the
//! method table held to the wire contract.

use std::collections::BTreeSet;

/// Cases per cheap property: enough to reach every method several times, seconds to run.
const SHORT_CASES: u32 = 3_000;
/// Accepted requests kept per method for storage.
const SHORT_STORAGE_PER_METHOD: usize = 5;
/// Recorded bus messages kept for storage.
const SHORT_STORAGE_BUS: usize = 100;

fn seed() -> u64 {
    // A fixed seed unless one is given: the suite is repeatable, a developer can vary it.
    std::env::var("IPS_FUZZ_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_260_301)
}

fn fail(failure: &fuzz::Failure) -> ! {
    panic!(
        "{} property broken: {}\nminimal input: {}\nregressions.txt line: {:?}",
        failure.property, failure.reason, failure.input, failure.regression_line
    )
}

#[test]
fn the_method_table_names_every_agency_write_method_of_the_wire_contract() {
    let contract = fuzz::wire::Contract::load().expect("descriptor set");
    let in_contract: BTreeSet<(String, String, String)> =
        contract.methods.iter().cloned().collect();
    let in_table: BTreeSet<(String, String, String)> = fuzz::rpcs::table()
        .iter()
        .map(|rpc| {
            (
                rpc.service.to_owned(),
                rpc.method.to_owned(),
                rpc.input.to_owned(),
            )
        })
        .collect();
    assert_eq!(in_table, in_contract);
    assert_eq!(in_table.len(), fuzz::rpcs::table().len(), "a method twice");
}

#[test]
fn every_regression_case_holds() {
    for line in fuzz::regressions::lines(fuzz::regressions::REGRESSIONS) {
        if let Err(broken) = fuzz::regressions::replay(line) {
            panic!("{broken}\n{line}");
        }
    }
}

#[test]
fn short_mode_requests_bus_messages_and_tokens() {
    let seed = seed();
    let (requests, request_samples) =
        fuzz::run_requests(seed, SHORT_CASES, SHORT_STORAGE_PER_METHOD)
            .unwrap_or_else(|failure| fail(&failure));
    assert_eq!(requests.cases, u64::from(SHORT_CASES));
    // The generators must get past the edge, or the storage property says nothing.
    assert!(requests.of("accepted") > 0, "{requests:?}");
    assert!(requests.starting_with("refused:") > 0, "{requests:?}");
    assert!(!request_samples.is_empty());

    let (bus, bus_samples) = fuzz::run_bus(seed, SHORT_CASES, SHORT_STORAGE_BUS)
        .unwrap_or_else(|failure| fail(&failure));
    assert!(bus.of("recorded") > 0, "{bus:?}");
    assert!(bus.starting_with("parked:") > 0, "{bus:?}");

    let tokens = fuzz::run_tokens(seed, SHORT_CASES).unwrap_or_else(|failure| fail(&failure));
    assert!(tokens.of("accepted") > 0, "{tokens:?}");
    assert!(tokens.starting_with("refused:token_") > 0, "{tokens:?}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let database = testkit::TestDatabase::create().await.expect("database");
        let pool = database.pool().await.expect("pool");
        let samples: Vec<_> = request_samples
            .into_iter()
            .chain(bus_samples.recorded)
            .collect();
        let count = samples.len() as u64;
        let parked = bus_samples.parked.len() as u64;
        let report = fuzz::storage::store_samples(&pool, samples, bus_samples.parked).await;
        pool.close().await;
        database.drop_database().await;
        let report = report.unwrap_or_else(|broken| panic!("storage: {broken}"));
        assert_eq!(report.stored, count);
        assert_eq!(report.parked, parked);
        assert!(report.accepted > 0, "{report:?}");
    });
}
