//! The fuzz program (issue 15): random requests for every write method of the four agency
//! services, raw bytes as messages on the bus, and raw strings as officer tokens, through the
//! real parsing, domain and storage code. Two properties, not one: nothing panics, and
//! everything the edge accepts can be stored (encoded, hashed and inserted into PostgreSQL),
//! so nothing accepted can wedge the ledger.
//!
//! Driven by proptest with a seeded generator, so a run is repeated by its seed, and a failure
//! is shrunk to a small input before it is reported. `src/main.rs` is the program (full mode);
//! `tests/short.rs` runs a short mode in the test suite and replays `regressions.txt`, where
//! every input that once failed stays.

pub mod bus_bytes;
pub mod check;
pub mod json;
pub mod regressions;
pub mod rpcs;
pub mod storage;
pub mod tokens;
pub mod values;
pub mod wire;

use std::cell::RefCell;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{Actor, PersonId, Role, Submission, UnitId};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use check::{Broken, Published};
use rpcs::{Call, Refusal, Rpc};

/// Longest time proptest spends shrinking one failure, in milliseconds.
pub const SHRINK_TIME_MAX_MS: u32 = 120_000;

/// One request case: which method, the request's bytes, and the call around it.
#[derive(Clone, Debug)]
pub struct RequestCase {
    /// Index into [`rpcs::table`].
    pub rpc: usize,
    /// The encoded request.
    pub bytes: Vec<u8>,
    /// Caller, clock, places.
    pub call: Call,
}

/// A seeded runner for `cases` cases. Each property gets its own stream from the same seed.
pub fn runner(seed: u64, stream: u8, cases: u32) -> TestRunner {
    let mut seed_bytes = [0u8; 32];
    for (index, chunk) in seed_bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.rotate_left(index as u32 * 16).to_le_bytes());
    }
    seed_bytes[31] ^= stream;
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_time: SHRINK_TIME_MAX_MS,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    )
}

/// The verified caller, the service clock and the unit's places.
pub fn call() -> BoxedStrategy<Call> {
    let person = values::text(values::Shape::Token)
        .prop_map(|text| PersonId::parse(&text).unwrap_or_else(|_| PersonId("coach-17".into())));
    let unit = values::text(values::Shape::Token)
        .prop_map(|text| UnitId::parse(&text).unwrap_or_else(|_| UnitId("hudiksvall-ips".into())));
    let role = proptest::sample::select(vec![
        Role::Coach,
        Role::TeamLeader,
        Role::CaseOfficer,
        Role::Auditor,
        Role::System,
    ]);
    // 2000-01-01 to 2150-01-01: the service clock of any plausible deployment; mostly after
    // 2100, so that most generated business times (2000-2100) are not in its future.
    let now = prop_oneof![
        2 => 4_102_444_800i64..5_680_281_600,
        1 => 946_684_800i64..5_680_281_600,
    ]
    .prop_map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap_or_default());
    (person, role, unit, now, any::<bool>())
        .prop_map(|(person_id, role, unit, now, on_waiting_list)| Call {
            actor: Actor {
                person_id,
                role,
                unit,
            },
            now,
            on_waiting_list,
        })
        .boxed()
}

/// Request cases over every method, with equal weight.
pub fn request_case(contract: &wire::Contract, table: &[Rpc]) -> BoxedStrategy<RequestCase> {
    let per_method: Vec<BoxedStrategy<(usize, Vec<u8>)>> = table
        .iter()
        .enumerate()
        .map(|(index, rpc)| {
            let encoded = contract.message(rpc.input);
            prop_oneof![
                12 => encoded.clone(),
                1 => wire::mangled(encoded),
            ]
            .prop_map(move |bytes| (index, bytes))
            .boxed()
        })
        .collect();
    (proptest::strategy::Union::new(per_method), call())
        .prop_map(|((rpc, bytes), call)| RequestCase { rpc, bytes, call })
        .boxed()
}

/// What a request case came to.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Refused before publishing.
    Refused(Refusal),
    /// Accepted, but too large for one bus message: refused at the publish.
    TooLarge,
    /// Accepted, published, recorded and storable.
    Accepted(Box<Submission>),
}

/// Runs one request case through the edge and, if accepted, through every in-memory check.
pub fn check_request(
    table: &[Rpc],
    case: &RequestCase,
    bus_config: &bus::BusConfig,
    subjects: &bus::Subjects,
) -> Result<RequestOutcome, Broken> {
    let rpc = table[case.rpc];
    let submission = match (rpc.edge)(&case.bytes, rpc.agency, &case.call) {
        Ok(submission) => submission,
        Err(refusal) => return Ok(RequestOutcome::Refused(refusal)),
    };
    if let Published::TooLarge = check::publish(&submission, bus_config, subjects)? {
        return Ok(RequestOutcome::TooLarge);
    }
    // The ledger stamps the entry with its own clock, which may run behind the service's.
    let event = check::record_first(&submission, case.call.now).map_err(|error| Broken {
        property: "accepted_is_recorded",
        detail: format!("the aggregate records nothing ({error}): {submission:?}"),
    })?;
    check::storable(&event)?;
    Ok(RequestOutcome::Accepted(Box::new(submission)))
}

/// Counts of one property's run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// By outcome (`accepted`, `refused:<field>`, `undecodable`, `token:<rule>`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Accepted cases by method (requests only).
    pub accepted_by_method: BTreeMap<String, u64>,
}

impl Tally {
    fn count(&mut self, outcome: impl Into<String>) {
        *self.outcomes.entry(outcome.into()).or_default() += 1;
    }

    /// How many cases came to `outcome`.
    pub fn of(&self, outcome: &str) -> u64 {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// How many cases came to an outcome starting with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|(outcome, _)| outcome.starts_with(prefix))
            .map(|(_, count)| count)
            .sum()
    }
}

/// A property that failed: proptest's minimal case and why.
#[derive(Debug)]
pub struct Failure {
    /// Which run.
    pub property: &'static str,
    /// The reason (the broken property, or the panic message).
    pub reason: String,
    /// The minimal failing input, as a line for `regressions.txt` where one can be written.
    pub regression_line: Option<String>,
    /// The minimal failing input, debug-printed.
    pub input: String,
}

fn failure<V: std::fmt::Debug>(
    property: &'static str,
    error: TestError<V>,
    line: impl Fn(&V) -> Option<String>,
) -> Failure {
    match error {
        TestError::Fail(reason, value) => Failure {
            property,
            reason: reason.to_string(),
            regression_line: line(&value),
            input: format!("{value:?}"),
        },
        TestError::Abort(reason) => Failure {
            property,
            reason: format!("aborted: {reason}"),
            regression_line: None,
            input: String::new(),
        },
    }
}

fn broken_case(broken: Broken) -> TestCaseError {
    TestCaseError::fail(broken.to_string())
}

/// The outcome name of a refusal: `refused:<field>` or `undecodable`.
fn refusal_name(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Undecodable(_) => "undecodable".to_owned(),
        Refusal::Invalid(error) => {
            // Paths inside a corrected body are cut to their first part.
            let field = error.field.split(['.', '[']).next().unwrap_or("");
            format!("refused:{field}")
        }
    }
}

/// Runs the request property; keeps up to `samples_per_method` accepted submissions of each
/// method for the storage phase.
pub fn run_requests(
    seed: u64,
    cases: u32,
    samples_per_method: usize,
) -> Result<(Tally, Vec<Submission>), Failure> {
    let contract = wire::Contract::load().map_err(|error| Failure {
        property: "requests",
        reason: error.to_string(),
        regression_line: None,
        input: String::new(),
    })?;
    let table = rpcs::table();
    let bus_config = bus::BusConfig::default();
    let subjects = bus::Subjects::new(&bus_config.subject_prefix);
    let strategy = request_case(&contract, &table);
    let tally = RefCell::new(Tally::default());
    let samples: RefCell<BTreeMap<usize, Vec<Submission>>> = RefCell::new(BTreeMap::new());
    let result = runner(seed, 1, cases).run(&strategy, |case| {
        let outcome = check_request(&table, &case, &bus_config, &subjects).map_err(broken_case)?;
        let mut tally = tally.borrow_mut();
        tally.cases += 1;
        match outcome {
            RequestOutcome::Refused(refusal) => tally.count(refusal_name(&refusal)),
            RequestOutcome::TooLarge => tally.count("refused:message_too_large"),
            RequestOutcome::Accepted(submission) => {
                tally.count("accepted");
                let rpc = table[case.rpc];
                *tally
                    .accepted_by_method
                    .entry(format!("{}/{}", rpc.service, rpc.method))
                    .or_default() += 1;
                let mut samples = samples.borrow_mut();
                let kept = samples.entry(case.rpc).or_default();
                if kept.len() < samples_per_method {
                    kept.push(*submission);
                }
            }
        }
        Ok(())
    });
    result.map_err(|error| {
        failure("requests", error, |case: &RequestCase| {
            Some(regressions::request_line(&table, case))
        })
    })?;
    let samples = samples.into_inner().into_values().flatten().collect();
    Ok((tally.into_inner(), samples))
}

/// What the bus property keeps for the storage phase.
#[derive(Debug, Default)]
pub struct BusSamples {
    /// Recorded submissions.
    pub recorded: Vec<Submission>,
    /// Messages the ledger parks, as it parks them.
    pub parked: Vec<store::ParkedMessage>,
}

/// Runs the bus property; keeps up to `samples_max` recorded submissions and as many parked
/// messages for storage.
pub fn run_bus(seed: u64, cases: u32, samples_max: usize) -> Result<(Tally, BusSamples), Failure> {
    let bus_config = bus::BusConfig::default();
    let subjects = bus::Subjects::new(&bus_config.subject_prefix);
    let recorded_at = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let tally = RefCell::new(Tally::default());
    let samples: RefCell<BusSamples> = RefCell::new(BusSamples::default());
    let result = runner(seed, 2, cases).run(&bus_bytes::bus_case(), |case| {
        let outcome =
            bus_bytes::check_bus(&case, &subjects, &bus_config.subject_prefix, recorded_at)
                .map_err(broken_case)?;
        let mut tally = tally.borrow_mut();
        tally.cases += 1;
        let mut samples = samples.borrow_mut();
        let mut park = |message: Box<store::ParkedMessage>| {
            if samples.parked.len() < samples_max {
                samples.parked.push(*message);
            }
        };
        match outcome {
            bus_bytes::BusOutcome::Undecodable(message) => {
                // The reason's rule name: the text before the colon.
                let rule = message.reason.split(':').next().unwrap_or("").to_owned();
                tally.count(format!("parked:{rule}"));
                park(message);
            }
            bus_bytes::BusOutcome::Unrecordable(message) => {
                tally.count("parked:unrecordable");
                park(message);
            }
            bus_bytes::BusOutcome::Recorded(submission) => {
                tally.count("recorded");
                if samples.recorded.len() < samples_max {
                    samples.recorded.push(*submission);
                }
            }
        }
        Ok(())
    });
    result.map_err(|error| failure("bus", error, |case| Some(regressions::bus_line(case))))?;
    Ok((tally.into_inner(), samples.into_inner()))
}

/// Runs the token property.
pub fn run_tokens(seed: u64, cases: u32) -> Result<Tally, Failure> {
    let federation = tokens::Federation::new().map_err(|error| Failure {
        property: "tokens",
        reason: error.to_string(),
        regression_line: None,
        input: String::new(),
    })?;
    let tally = RefCell::new(Tally::default());
    let result = runner(seed, 3, cases).run(&tokens::token_case(), |case| {
        let outcome = tokens::check_token(&federation, &case).map_err(broken_case)?;
        let mut tally = tally.borrow_mut();
        tally.cases += 1;
        match outcome {
            tokens::TokenOutcome::NotAHeader => tally.count("not_a_header"),
            tokens::TokenOutcome::Refused(rule) => tally.count(format!("refused:{rule}")),
            tokens::TokenOutcome::Accepted => tally.count("accepted"),
        }
        Ok(())
    });
    result.map_err(|error| failure("tokens", error, |_| None))?;
    Ok(tally.into_inner())
}
