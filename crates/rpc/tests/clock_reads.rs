//! No service reads the system clock or takes a UTC date behind its injected clock's back
//! (issue 10). A decision by "now" reads the clock the service was started with, and a decision
//! by "today" takes the business day (`domain::business_date`, Stockholm's date), so a test can
//! put any service at any instant and the day turns at Swedish midnight everywhere.
//!
//! The check reads the production sources (before any `#[cfg(test)]`) of the services and the
//! crates they run on; each allowed exception names why it is not a business decision.

use std::path::{Path, PathBuf};

/// Folders of production code, relative to the workspace root.
const SOURCES: [&str; 9] = [
    "services/ledger/src",
    "services/municipality/src",
    "services/forsakringskassan/src",
    "services/arbetsformedlingen/src",
    "services/psychiatry/src",
    "crates/rpc/src",
    "crates/store/src",
    "crates/bus/src",
    "crates/telemetry/src",
];

/// A clock read or a UTC date that bypasses the injected clock or the business day.
const FORBIDDEN: [&str; 3] = ["Utc::now", "Local::now", ".date_naive()"];

/// (file, text, why it is allowed there).
const ALLOWED: [(&str, &str, &str); 3] = [
    (
        "crates/rpc/src/clock.rs",
        "Utc::now",
        "the system clock itself",
    ),
    (
        "crates/rpc/src/identity.rs",
        "Utc::now",
        "signing a token stamps it with the issuer's real time",
    ),
    (
        "crates/rpc/src/fields.rs",
        ".date_naive()",
        "the plausible-date range is checked on the UTC date as well as the business day",
    ),
];

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn services_read_time_only_through_their_clock_and_days_only_as_business_days() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for folder in SOURCES {
        rust_files(&root.join(folder), &mut files);
    }
    assert!(files.len() >= 30, "the sources were not read: {files:?}");
    let mut offences = Vec::new();
    for path in &files {
        let relative = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for needle in FORBIDDEN {
                let allowed = ALLOWED
                    .iter()
                    .any(|(file, text, _)| relative == *file && needle == *text);
                if line.contains(needle) && !allowed {
                    offences.push(format!("{relative}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "read the injected clock (`clock.now()`, `clock.today()`) and take days with \
         `domain::business_date`:\n{}",
        offences.join("\n")
    );
}
