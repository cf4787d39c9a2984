#!/usr/bin/env bash
# The README's first command: make the machine ready, build, start the stack (the ledger and the
# four agency services) against a demo database and the default JetStream stream, and drive
# twenty synthetic participants through the real gRPC APIs with `ipsctl demo`, which prints a
# timeline, every participant's chain check and the caseload board. The services are stopped with SIGTERM (a graceful
# drain) at the end, unless --keep is given, in which case they keep running for grpcurl or
# `ipsctl timeline <participant-id>` and this script prints how to stop them.
set -euo pipefail

cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

./deploy/setup.sh

demo_database="${IPS_DEMO_DATABASE:-ips_demo}"
pg_admin_url="postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/postgres"
# The demo starts from an empty history each run, so its board and timelines are the demo's own.
psql "$pg_admin_url" -qc "DROP DATABASE IF EXISTS $demo_database WITH (FORCE)"
psql "$pg_admin_url" -qc "CREATE DATABASE $demo_database"
echo "demo: fresh database $demo_database"

echo "demo: building (the first build takes a few minutes)"
cargo build --quiet --bin ledger --bin municipality --bin forsakringskassan --bin arbetsformedlingen --bin psychiatry --bin ipsctl

state_dir=deploy/.local
mkdir -p "$state_dir"
# Each service reads only its own keys (unknown IPS_* keys are refused), so pass them per process.
demo_database_url="postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/$demo_database"
export IPS_BUS__NATS_URL="nats://127.0.0.1:${IPS_SETUP_NATS_PORT:-4222}"
# Ports below Linux's ephemeral range (32768–60999), so an outgoing connection of one service
# can never hold a port another is about to listen on.
base_port="${IPS_DEMO_BASE_PORT:-7400}"
ledger_port=$base_port
pids=()
start_service() { # name port [extra env assignments...]
    local name=$1 port=$2
    shift 2
    env "$@" IPS_SERVER__LISTEN_ADDRESS="127.0.0.1:$port" "target/debug/$name" >"$state_dir/$name.log" 2>&1 &
    pids+=($!)
    echo "$name $! $port" >>"$state_dir/services"
}
: >"$state_dir/services"
start_service ledger "$ledger_port" IPS_STORE__DATABASE_URL="$demo_database_url" IPS_METRICS_LISTEN_ADDRESS="127.0.0.1:$((base_port + 90))"
start_service municipality $((base_port + 1)) IPS_PLACES__LEDGER_ADDRESS="http://127.0.0.1:$ledger_port"
start_service forsakringskassan $((base_port + 2))
start_service arbetsformedlingen $((base_port + 3))
start_service psychiatry $((base_port + 4))

stop_stack() {
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    echo "demo: stack stopped (logs in $state_dir/)"
}
$keep || trap stop_stack EXIT

wait_for_port() {
    local name=$1 pid=$2 port=$3
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: $name exited; its log:" >&2
            cat "$state_dir/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "demo: $name did not listen on $port within 10 s" >&2
    exit 1
}
while read -r name pid port; do wait_for_port "$name" "$pid" "$port"; done <"$state_dir/services"
echo "demo: ledger on 127.0.0.1:$ledger_port (metrics on :$((base_port + 90))/metrics), agencies on :$((base_port + 1))..$((base_port + 4))"

export IPS_LEDGER_ADDRESS="http://127.0.0.1:$ledger_port"
export IPS_MUNICIPALITY_ADDRESS="http://127.0.0.1:$((base_port + 1))"
export IPS_FK_ADDRESS="http://127.0.0.1:$((base_port + 2))"
export IPS_AF_ADDRESS="http://127.0.0.1:$((base_port + 3))"
export IPS_PSYCHIATRY_ADDRESS="http://127.0.0.1:$((base_port + 4))"
target/debug/ipsctl demo

if $keep; then
    echo "demo: the stack keeps running; stop it with: kill -TERM ${pids[*]}"
fi
