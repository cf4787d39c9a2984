#!/usr/bin/env bash
# The README's first command: make the machine ready, build, start the stack (the ledger and the
# four agency services, over mTLS with the development PKI, each on NATS as its own user of a
# nats-server the demo starts on :7422) against a demo database, and drive
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
./deploy/dev-pki.sh "$state_dir/pki"
# mTLS and token keys: every service reads the same development PKI.
export IPS_IDENTITY__CA_CERTIFICATE_PATH="$state_dir/pki/ca.pem"
export IPS_IDENTITY__CERTIFICATE_PATH="$state_dir/pki/server.pem"
export IPS_IDENTITY__PRIVATE_KEY_PATH="$state_dir/pki/server.key.pem"
export IPS_IDENTITY__TOKEN_VERIFYING_KEYS_DIRECTORY="$state_dir/pki"
# Each service reads only its own keys (unknown IPS_* keys are refused), so pass them per process.
# The ledger migrates as the owner, then works as ips_service (SELECT/INSERT only on the events
# and the access log; the migrations create the role and its grants).
demo_database_url="postgres://ips_service@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/$demo_database"
demo_migration_database_url="postgres://postgres@127.0.0.1:${IPS_SETUP_PG_PORT:-5432}/$demo_database"
# Ports below Linux's ephemeral range (32768–60999), so an outgoing connection of one service
# can never hold a port another is about to listen on.
base_port="${IPS_DEMO_BASE_PORT:-7400}"
ledger_port=$base_port
pids=()

nats_pid=""
stop_stack() {
    # The services drain first (they ack over NATS), then the demo's nats-server stops.
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    if [ -n "$nats_pid" ]; then
        kill -TERM "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
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

# The demo's own nats-server, with one NATS user per agency (deploy/nats/agency-users.conf): each
# agency service may publish only under its own subjects. Fresh passwords and an empty JetStream
# store each run; the tests' server on 4250 is left alone. It is the pinned nats-server with
# `sync_interval: always`, like every nats-server the project starts.
nats_port=$((base_port + 22))
nats_server="deploy/.local/nats-server-2.15.1/nats-server" # the pinned binary setup.sh unpacked
nats_store="$state_dir/nats-store"
rm -rf "$nats_store"
declare -A nats_password
for user in municipality fk af psychiatry ledger; do
    # nats-server reads these as config values, so they start with a letter.
    nats_password[$user]="pw$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
done
env IPS_NATS_PASSWORD_MUNICIPALITY="${nats_password[municipality]}" IPS_NATS_PASSWORD_FK="${nats_password[fk]}" \
    IPS_NATS_PASSWORD_AF="${nats_password[af]}" IPS_NATS_PASSWORD_PSYCHIATRY="${nats_password[psychiatry]}" \
    IPS_NATS_PASSWORD_LEDGER="${nats_password[ledger]}" \
    "$nats_server" -c deploy/nats/agency-users.conf -js -a 127.0.0.1 -p "$nats_port" -sd "$nats_store" \
    >"$state_dir/nats-server.log" 2>&1 &
nats_pid=$!
nats_url="nats://127.0.0.1:$nats_port"
as_nats_user() { # user -> env assignments for a service connecting as that NATS user
    echo "IPS_BUS__NATS_URL=$nats_url IPS_BUS__NATS_USER=$1 IPS_BUS__NATS_PASSWORD=${nats_password[$1]}"
}

start_service() { # name port [extra env assignments...]
    local name=$1 port=$2
    shift 2
    env "$@" IPS_SERVER__LISTEN_ADDRESS="127.0.0.1:$port" "${CARGO_TARGET_DIR:-target}/debug/$name" >"$state_dir/$name.log" 2>&1 &
    pids+=($!)
    echo "$name $! $port" >>"$state_dir/services"
}
: >"$state_dir/services"
wait_for_port nats-server "$nats_pid" "$nats_port"
echo "demo: nats-server with per-agency users on 127.0.0.1:$nats_port"
# shellcheck disable=SC2046
start_service ledger "$ledger_port" $(as_nats_user ledger) IPS_STORE__DATABASE_URL="$demo_database_url" IPS_STORE__MIGRATION_DATABASE_URL="$demo_migration_database_url" IPS_METRICS_LISTEN_ADDRESS="127.0.0.1:$((base_port + 90))"
# shellcheck disable=SC2046
start_service municipality $((base_port + 1)) $(as_nats_user municipality) IPS_PLACES__LEDGER_ADDRESS="https://127.0.0.1:$ledger_port"
# shellcheck disable=SC2046
start_service forsakringskassan $((base_port + 2)) $(as_nats_user fk)
# shellcheck disable=SC2046
start_service arbetsformedlingen $((base_port + 3)) $(as_nats_user af)
# shellcheck disable=SC2046
start_service psychiatry $((base_port + 4)) $(as_nats_user psychiatry)

while read -r name pid port; do wait_for_port "$name" "$pid" "$port"; done <"$state_dir/services"
echo "demo: ledger on 127.0.0.1:$ledger_port (metrics on :$((base_port + 90))/metrics), agencies on :$((base_port + 1))..$((base_port + 4))"

export IPS_LEDGER_ADDRESS="https://127.0.0.1:$ledger_port"
export IPS_MUNICIPALITY_ADDRESS="https://127.0.0.1:$((base_port + 1))"
export IPS_FK_ADDRESS="https://127.0.0.1:$((base_port + 2))"
export IPS_AF_ADDRESS="https://127.0.0.1:$((base_port + 3))"
export IPS_PSYCHIATRY_ADDRESS="https://127.0.0.1:$((base_port + 4))"
IPS_PKI_DIRECTORY="$state_dir/pki" "${CARGO_TARGET_DIR:-target}/debug/ipsctl" demo

if $keep; then
    echo "demo: the stack keeps running; stop it with: kill -TERM ${pids[*]}; kill -TERM $nats_pid"
fi
