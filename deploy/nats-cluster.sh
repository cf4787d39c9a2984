#!/usr/bin/env bash
# Starts, stops or reports the project's three-node JetStream cluster on loopback: the pinned
# nats-server of deploy/setup.sh (fetched by it when missing), one process per
# deploy/nats/cluster/node-<n>.conf, every node with `sync_interval: always`. Clients connect to
# any of nats://127.0.0.1:4251,nats://127.0.0.1:4252,nats://127.0.0.1:4253 (the services take
# that list as `bus.nats_url`; set `bus.stream_replicas = 3` so the agency stream is R3).
# State (stores, logs, pid files) lives under /var/tmp/ips-samverkan/cluster/node-<n>/, kept
# across stop and start; `stop --wipe` also removes it.
#
#   deploy/nats-cluster.sh start | stop [--wipe] | status
set -euo pipefail

cd "$(dirname "$0")/.."

NATS_VERSION=2.15.1 # as pinned in deploy/setup.sh
NATS_BIN="$PWD/deploy/.local/nats-server-$NATS_VERSION/nats-server"
STATE=/var/tmp/ips-samverkan/cluster
NODES=(1 2 3)
HOST=127.0.0.1
WAIT_SECONDS=30

say() { printf 'nats-cluster: %s\n' "$*"; }
die() { printf 'nats-cluster: ERROR: %s\n' "$*" >&2; exit 1; }

client_port() { echo $((4250 + $1)); }
monitor_port() { echo $((8250 + $1)); }
pidfile() { echo "$STATE/node-$1/nats-server.pid"; }
running() { start-stop-daemon --status --pidfile "$(pidfile "$1")" >/dev/null 2>&1; }
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }
http_get() { # port path
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET $2 HTTP/1.0\r\n\r\n" >&3 && cat <&3' \
        "$HOST" "$1" "$2" 2>/dev/null || true
}
# The JetStream meta leader as node <n> sees it (empty while none is elected).
meta_leader() {
    http_get "$(monitor_port "$1")" /jsz | tr -d ' \n' \
        | sed -n 's/.*"meta_cluster":{[^}]*"leader":"\([^"]*\)".*/\1/p' | head -1
}

start() {
    if [[ ! -x $NATS_BIN ]]; then
        say "the pinned nats-server is not unpacked yet; running deploy/setup.sh"
        ./deploy/setup.sh
    fi
    for node in "${NODES[@]}"; do
        if running "$node"; then
            say "node $node already running (pid $(cat "$(pidfile "$node")"))"
            continue
        fi
        tcp_open "$HOST" "$(client_port "$node")" \
            && die "port $(client_port "$node") is taken by another process; node $node cannot start"
        mkdir -p "$STATE/node-$node/store"
        start-stop-daemon --start --background --make-pidfile --pidfile "$(pidfile "$node")" \
            --exec "$NATS_BIN" -- -c "$PWD/deploy/nats/cluster/node-$node.conf" \
            -sd "$STATE/node-$node/store" -l "$STATE/node-$node/nats-server.log" \
            || die "start-stop-daemon failed to start node $node"
        say "node $node starting on $HOST:$(client_port "$node") (log: $STATE/node-$node/nats-server.log)"
    done
    # Ready when every node answers and JetStream has a meta leader (streams can be created).
    local deadline=$((SECONDS + WAIT_SECONDS))
    for node in "${NODES[@]}"; do
        until [[ $(http_get "$(monitor_port "$node")" /healthz?js-enabled-only=true) == *'"status":"ok"'* ]] \
            && [[ -n $(meta_leader "$node") ]]; do
            running "$node" || die "node $node exited; last log lines:
$(tail -n 5 "$STATE/node-$node/nats-server.log" 2>/dev/null)"
            ((SECONDS < deadline)) || die "node $node not ready after ${WAIT_SECONDS}s (see $STATE/node-$node/nats-server.log)"
            sleep 0.5
        done
    done
    say "ready: nats://127.0.0.1:4251,nats://127.0.0.1:4252,nats://127.0.0.1:4253 (sync_interval: always on every node)"
}

stop() {
    for node in "${NODES[@]}"; do
        if running "$node"; then
            start-stop-daemon --stop --retry TERM/10/KILL/5 --pidfile "$(pidfile "$node")" >/dev/null \
                || die "could not stop node $node"
            say "node $node stopped"
        else
            say "node $node was not running"
        fi
        rm -f "$(pidfile "$node")"
    done
    if [[ ${1:-} == --wipe ]]; then
        rm -rf "$STATE"
        say "state removed ($STATE)"
    fi
}

status() {
    local down=0
    for node in "${NODES[@]}"; do
        if running "$node"; then
            local leader
            leader=$(meta_leader "$node")
            say "node $node up (pid $(cat "$(pidfile "$node")"), $HOST:$(client_port "$node"), meta leader ${leader:-none})"
        else
            say "node $node down"
            down=$((down + 1))
        fi
    done
    ((down == 0))
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    status) status ;;
    *) die "usage: $0 start | stop [--wipe] | status" ;;
esac
