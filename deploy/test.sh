#!/usr/bin/env bash
# Single entry point for running the IPS Samverkan test suite, locally and in
# CI (.ci/run execs this). It first makes sure PostgreSQL and NATS JetStream are
# up (deploy/setup.sh), points the tests at them through IPS_TEST_DATABASE_URL
# and IPS_TEST_NATS_URL (caller's values win), then runs the whole workspace's
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

./deploy/setup.sh

export IPS_TEST_DATABASE_URL="${IPS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/postgres}"
export IPS_TEST_NATS_URL="${IPS_TEST_NATS_URL:-nats://127.0.0.1:${IPS_SETUP_NATS_PORT:-4222}}"
printf 'test: IPS_TEST_DATABASE_URL=%s\n' "$IPS_TEST_DATABASE_URL"
printf 'test: IPS_TEST_NATS_URL=%s\n' "$IPS_TEST_NATS_URL"

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
