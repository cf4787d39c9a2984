//! Invariant 1 of ARCHITECTURE.md, checked: the domain crate depends on no I/O crate and its code
//! reads no clock and mints no random ids (those come in through commands, so every decision
//! can be replayed).

use std::path::Path;

const FORBIDDEN_DEPENDENCIES: [&str; 8] = [
    "tonic",
    "sqlx",
    "async-nats",
    "postgres-es",
    "tokio-postgres",
    "reqwest",
    "hyper",
    "prost",
];
const FORBIDDEN_CALLS: [&str; 5] = [
    "Utc::now",
    "Local::now",
    "now_v7",
    "new_v4",
    "SystemTime::now",
];

fn check(text: &str, forbidden: &[&str], what: &str) {
    let found: Vec<&&str> = forbidden
        .iter()
        .filter(|needle| text.contains(**needle))
        .collect();
    assert!(found.is_empty(), "{what} contains {found:?}");
}

#[test]
fn the_domain_has_no_io_dependencies() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .unwrap_or_default();
    let dependencies = manifest
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default();
    let names: Vec<&str> = dependencies
        .lines()
        .filter_map(|line| line.split(['.', '=', ' ']).next())
        .collect();
    for forbidden in FORBIDDEN_DEPENDENCIES {
        assert!(
            !names.contains(&forbidden),
            "crates/domain depends on {forbidden}"
        );
    }
    assert!(names.contains(&"cqrs-es"), "the manifest was not read");
}

#[test]
fn the_domain_reads_no_clock_and_mints_no_ids() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = 0;
    for entry in std::fs::read_dir(source).into_iter().flatten().flatten() {
        let path = entry.path();
        // Tests may build fixtures however they like.
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().ends_with("_tests.rs"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        check(code, &FORBIDDEN_CALLS, &path.display().to_string());
        files += 1;
    }
    assert!(files >= 5, "the sources were not read");
}
