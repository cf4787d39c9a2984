//! The invariant "agency services never touch PostgreSQL and have no sqlx dependency"
//! (ARCHITECTURE.md), checked on the resolved dependency graph rather than on manifests: a
//! dependency that pulls sqlx in through another crate (as `store` once did through this one)
//! fails here with the path that brings it in.
//!
//! It asks cargo itself (`cargo tree`, offline: `Cargo.lock` is committed and the build has
//! fetched everything), for the normal and build dependencies that ship in the binary;
//! dev-dependencies (the test harness) may use a database.

use std::process::Command;

/// The agency services: every service but the ledger.
const AGENCY_SERVICES: [&str; 4] = [
    "municipality",
    "forsakringskassan",
    "arbetsformedlingen",
    "psychiatry",
];

/// Crates that mean a database driver ships in the binary.
const FORBIDDEN_CRATES: [&str; 6] = [
    "sqlx",
    "sqlx-core",
    "sqlx-postgres",
    "postgres-es",
    "tokio-postgres",
    "store",
];

fn cargo_tree(arguments: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "--edges", "normal,build"])
        .args(arguments)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => panic!("cargo tree did not run: {error}"),
    };
    assert!(
        output.status.success(),
        "cargo tree {arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Each crate in `service`'s tree once, by name.
fn dependency_names(service: &str) -> Vec<String> {
    let mut names: Vec<String> = cargo_tree(&["--package", service, "--prefix", "none"])
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn no_agency_service_links_sqlx_or_the_store() {
    let mut found = Vec::new();
    for service in AGENCY_SERVICES {
        let names = dependency_names(service);
        assert!(
            names.iter().any(|name| name == "rpc") && names.iter().any(|name| name == service),
            "the dependency tree of {service} was not read: {names:?}"
        );
        let linked: Vec<&str> = FORBIDDEN_CRATES
            .into_iter()
            .filter(|forbidden| names.iter().any(|name| name == forbidden))
            .collect();
        if let Some(first) = linked.first() {
            // The inverted tree is every path from the crate up to the service.
            let path = cargo_tree(&["--package", service, "--invert", first]);
            found.push(format!(
                "{service} links {linked:?}; {first} comes in by:\n{path}"
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_ledger_tree_is_read_the_same_way_and_does_link_sqlx() {
    // The check above can only fail if the listing shows sqlx where it is: the ledger has it.
    let names = dependency_names("ledger");
    assert!(names.iter().any(|name| name == "sqlx"), "{names:?}");
}
