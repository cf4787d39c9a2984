#!/usr/bin/env bash
# The README's first command: make the machine ready, build, start the stack (ledger and
# municipality service) against a demo database and the default JetStream stream, and drive
# synthetic participants through the real gRPC API with `ipsctl demo`, which prints their
# timelines and checks their hash chains. The services are stopped with SIGTERM (a graceful
# drain) at the end, unless --keep is given, in which case they keep running for grpcurl or
# `ipsctl timeline <participant-id>` and this script prints how to stop them.
set -euo pipefail

cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

./deploy/setup.sh

demo_database="${IPS_DEMO_DATABASE:-ips_demo}"
pg_admin_url="postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/postgres"
if ! psql "$pg_admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$demo_database'" | grep -q 1; then
    psql "$pg_admin_url" -qc "CREATE DATABASE $demo_database"
    echo "demo: created database $demo_database"
fi

echo "demo: building (the first build takes a few minutes)"
cargo build --quiet --bin ledger --bin municipality --bin ipsctl

state_dir=deploy/.local
mkdir -p "$state_dir"
# Each service reads only its own keys (unknown IPS_* keys are refused), so pass them per process.
demo_database_url="postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/$demo_database"
export IPS_BUS__NATS_URL="nats://127.0.0.1:${IPS_SETUP_NATS_PORT:-4222}"
ledger_port="${IPS_DEMO_LEDGER_PORT:-50050}"
municipality_port="${IPS_DEMO_MUNICIPALITY_PORT:-50051}"

IPS_STORE__DATABASE_URL="$demo_database_url" IPS_SERVER__LISTEN_ADDRESS="127.0.0.1:$ledger_port" target/debug/ledger >"$state_dir/ledger.log" 2>&1 &
ledger_pid=$!
IPS_SERVER__LISTEN_ADDRESS="127.0.0.1:$municipality_port" target/debug/municipality >"$state_dir/municipality.log" 2>&1 &
municipality_pid=$!
echo "$ledger_pid $municipality_pid" >"$state_dir/pids"

stop_stack() {
    kill -TERM "$municipality_pid" "$ledger_pid" 2>/dev/null || true
    wait "$municipality_pid" "$ledger_pid" 2>/dev/null || true
    echo "demo: stack stopped (logs in $state_dir/)"
}
$keep || trap stop_stack EXIT

wait_for_port() {
    local port=$1 name=$2 pid=$3
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
wait_for_port "$ledger_port" ledger "$ledger_pid"
wait_for_port "$municipality_port" municipality "$municipality_pid"
echo "demo: ledger on 127.0.0.1:$ledger_port, municipality on 127.0.0.1:$municipality_port"

IPS_MUNICIPALITY_ADDRESS="http://127.0.0.1:$municipality_port" IPS_LEDGER_ADDRESS="http://127.0.0.1:$ledger_port" target/debug/ipsctl demo

if $keep; then
    echo "demo: the stack keeps running; stop it with: kill -TERM $ledger_pid $municipality_pid"
fi
