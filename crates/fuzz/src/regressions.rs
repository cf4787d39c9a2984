//! Every input that once broke a property, kept as a line of `crates/fuzz/regressions.txt`
//! and replayed by the test suite (`tests/short.rs`) and by the program before its run:
//!
//! ```text
//! # why it failed, and what fixed it
//! request <Service>/<Method> <request bytes, hex> <now, Unix s> <person> <role> <unit> <waiting list: 0|1>
//! bus <subject, or - for the payload's own> <payload, hex>
//! ```

use domain::{Actor, PersonId, Role, UnitId};

use crate::bus_bytes::{self, BusCase};
use crate::check::Broken;
use crate::rpcs::{Call, Rpc};
use crate::RequestCase;

/// The regression file's text, built into the program.
pub const REGRESSIONS: &str = include_str!("../regressions.txt");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex at {at}"))
        })
        .collect()
}

/// The line for a request case.
pub fn request_line(table: &[Rpc], case: &RequestCase) -> String {
    let rpc = table[case.rpc];
    let bytes = if case.bytes.is_empty() {
        "-".to_owned()
    } else {
        hex(&case.bytes)
    };
    format!(
        "request {}/{} {bytes} {} {} {} {} {}",
        rpc.service,
        rpc.method,
        case.call.now.timestamp(),
        case.call.actor.person_id,
        case.call.actor.role.token(),
        case.call.actor.unit,
        u8::from(case.call.on_waiting_list)
    )
}

/// The line for a bus case.
pub fn bus_line(case: &BusCase) -> String {
    format!(
        "bus {} {}",
        case.subject
            .as_deref()
            .map_or("-".to_owned(), |subject| hex(subject.as_bytes())),
        hex(&case.payload)
    )
}

/// Replays one line; `Ok` with the outcome when every property holds.
pub fn replay(line: &str) -> Result<String, String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["request", method, bytes, now, person, role, unit, waiting] => {
            let table = crate::rpcs::table();
            let rpc = table
                .iter()
                .position(|rpc| format!("{}/{}", rpc.service, rpc.method) == *method)
                .ok_or_else(|| format!("no method {method}"))?;
            let case = RequestCase {
                rpc,
                bytes: unhex(bytes)?,
                call: Call {
                    actor: Actor {
                        person_id: PersonId::parse(person).map_err(|error| error.to_string())?,
                        role: Role::from_token(role).ok_or("unknown role")?,
                        unit: UnitId::parse(unit).map_err(|error| error.to_string())?,
                    },
                    now: now
                        .parse::<i64>()
                        .ok()
                        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
                        .ok_or("bad time")?,
                    on_waiting_list: *waiting == "1",
                },
            };
            let bus_config = bus::BusConfig::default();
            let subjects = bus::Subjects::new(&bus_config.subject_prefix);
            crate::check_request(&table, &case, &bus_config, &subjects)
                .map(|outcome| format!("{outcome:?}"))
                .map_err(|broken: Broken| broken.to_string())
        }
        ["bus", subject, payload] => {
            let subject = match *subject {
                "-" => None,
                hex_subject => Some(
                    String::from_utf8(unhex(hex_subject)?).map_err(|error| error.to_string())?,
                ),
            };
            let case = BusCase {
                payload: unhex(payload)?,
                subject,
            };
            let bus_config = bus::BusConfig::default();
            let subjects = bus::Subjects::new(&bus_config.subject_prefix);
            let recorded_at =
                chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
            bus_bytes::check_bus(&case, &subjects, &bus_config.subject_prefix, recorded_at)
                .map(|outcome| format!("{outcome:?}"))
                .map_err(|broken| broken.to_string())
        }
        _ => Err(format!("not a regression line: {line}")),
    }
}

/// The regression lines of `text` (comments and blank lines left out).
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}
