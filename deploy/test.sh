#!/usr/bin/env bash
# Single entry point for running the IPS Samverkan test suite, locally and in
# CI (.ci/run execs this). It first holds the code to the house rules: both
# `cargo fmt --all --check` and `cargo clippy --workspace --all-targets -- -D
# warnings` run, each reported as passed or FAILED by name. If either failed it
# stops there (fail fast: no services are set up and no test runs, because a
# suite that is green on unformatted or lint-failing code must not read as a
# pass) and exits with 1. Then it makes sure PostgreSQL and the project's pinned
# nats-server (sync_interval: always, 127.0.0.1:4250) are up (deploy/setup.sh),
# points the tests at them through IPS_TEST_DATABASE_URL and IPS_TEST_NATS_URL
# (caller's values win; the tests' own servers and clusters are started from
# the pinned binary, IPS_TEST_NATS_SERVER), and runs the whole workspace's
# tests with cargo-nextest when installed, else cargo test. Extra arguments are
# passed to the test runner. Exits with the test runner's exit code.
set -euo pipefail

cd "$(dirname "$0")/.."

start=$(date +%s)
report_elapsed() {
    local s=$(($(date +%s) - start))
    printf 'test: elapsed wall time %dm%02ds\n' $((s / 60)) $((s % 60))
}
trap report_elapsed EXIT

# Both checks run even when the first fails, so one run names every problem.
failed_checks=()
run_check() {
    local name="$1"
    shift
    printf 'test: checking %s\n' "$name"
    if "$@"; then
        printf 'test: passed: %s\n' "$name"
    else
        printf 'test: FAILED: %s (exit %d)\n' "$name" "$?" >&2
        failed_checks+=("$name")
    fi
}
run_check "cargo fmt --all --check (fix: cargo fmt --all)" cargo fmt --all --check
run_check "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings
if ((${#failed_checks[@]} > 0)); then
    printf 'test: FAILED before running any test:\n' >&2
    printf 'test:   %s\n' "${failed_checks[@]}" >&2
    printf 'test: no test was run; fix the above and run again\n' >&2
    exit 1
fi

./deploy/setup.sh

export IPS_TEST_DATABASE_URL="${IPS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/postgres}"
export IPS_TEST_NATS_URL="${IPS_TEST_NATS_URL:-nats://127.0.0.1:${IPS_SETUP_NATS_PORT:-4250}}"
printf 'test: IPS_TEST_DATABASE_URL=%s\n' "$IPS_TEST_DATABASE_URL"
printf 'test: IPS_TEST_NATS_URL=%s\n' "$IPS_TEST_NATS_URL"
if [[ $IPS_TEST_NATS_URL != "nats://127.0.0.1:${IPS_SETUP_NATS_PORT:-4250}" ]]; then
    printf 'test: note: IPS_TEST_NATS_URL is not the server deploy/setup.sh started (nats://127.0.0.1:%s)\n' \
        "${IPS_SETUP_NATS_PORT:-4250}" >&2
fi

if cargo nextest --version >/dev/null 2>&1; then
    runner=(cargo nextest run --workspace --no-fail-fast)
else
    runner=(cargo test --workspace --no-fail-fast)
fi
printf 'test: running %s\n' "${runner[*]} $*"

set +e
"${runner[@]}" "$@"
rc=$?
set -e
printf 'test: %s exited with %d\n' "${runner[0]} ${runner[1]}" "$rc"
exit "$rc"
