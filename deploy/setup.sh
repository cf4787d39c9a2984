#!/usr/bin/env bash
# Makes a machine ready to run the IPS Samverkan test suite: the tests need a
# PostgreSQL server that accepts password-less TCP logins as user `postgres` on
# 127.0.0.1, and a nats-server with JetStream on 127.0.0.1. On dev machines and
# CI both already run, so every step first checks and only acts when something
# is missing; running this again (or where everything is up) changes nothing.
# Targets Debian 12, runs as root, and downloads nothing but the two Debian
# packages (postgresql, nats-server) when they are not installed.
#
# Env overrides (used for the readiness checks only; servers this script starts
# use the default ports):
#   IPS_SETUP_PG_PORT    PostgreSQL port to check (default 5432)
#   IPS_SETUP_NATS_PORT  NATS client port to check (default 4222)
set -euo pipefail

PG_PORT="${IPS_SETUP_PG_PORT:-5432}"
NATS_PORT="${IPS_SETUP_NATS_PORT:-4222}"
HOST=127.0.0.1
WAIT_SECONDS=30

NATS_BIN=/usr/sbin/nats-server
NATS_STORE=/var/lib/nats-server
NATS_LOG=/var/log/nats-server.log
HBA_MARKER="# ips-samverkan deploy/setup.sh: trust local connections (dev/CI only)"

say() { printf '%s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
    [[ ${EUID} -eq 0 ]] || die "$1 needs root; re-run as root"
}

# --- helpers ---------------------------------------------------------------

pg_answers() {
    pg_isready -q -t 2 -h "$HOST" -p "$PG_PORT" >/dev/null 2>&1
}

# Succeeds when `postgres` can log in over TCP without any password source.
pg_login_works() {
    env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 \
        psql -X -w -q -At -h "$HOST" -p "$PG_PORT" -U postgres -d postgres \
        -c 'select 1' >/dev/null 2>&1
}

tcp_open() { # host port
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# Prints the INFO line a NATS server sends on connect (empty if none).
nats_info() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r -t 4 line <&3 && printf "%s\n" "$line"' \
        "$HOST" "$NATS_PORT" 2>/dev/null || true
}

wait_for() { # description command...
    local what=$1; shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
    say "$what"
}

# --- packages --------------------------------------------------------------

missing=()
NATS_INSTALLED_NOW=0
if ! command -v psql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1 \
    || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    missing+=(postgresql)
fi
if [[ ! -x $NATS_BIN ]]; then
    missing+=(nats-server)
fi
if ((${#missing[@]})); then
    need_root "installing ${missing[*]}"
    say "packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    if [[ " ${missing[*]} " == *" nats-server "* ]]; then NATS_INSTALLED_NOW=1; fi
else
    say "packages: postgresql and nats-server already installed"
fi

# --- PostgreSQL ------------------------------------------------------------

pg_ver=$(ls /etc/postgresql 2>/dev/null | head -1 || true)

pg_ensure_cluster() {
    if [[ -z $pg_ver ]]; then
        pg_ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1 || true)
        [[ -n $pg_ver ]] || die "postgresql: no server version found under /usr/lib/postgresql"
    fi
    if [[ ! -f /etc/postgresql/$pg_ver/main/postgresql.conf ]]; then
        say "postgresql: creating cluster $pg_ver/main"
        pg_createcluster "$pg_ver" main >/dev/null || die "postgresql: pg_createcluster $pg_ver main failed"
    fi
}

# Makes listen_addresses cover localhost; prints "changed" if it edited it.
pg_ensure_listen() {
    local cur
    # Unset (pg_conftool fails) means the built-in default, 'localhost'.
    cur=$(pg_conftool -s "$pg_ver" main show listen_addresses 2>/dev/null) || return 0
    cur=${cur//[\' ]/}
    case ",$cur," in
        *,localhost,* | *,127.0.0.1,* | *,\*,* | *,0.0.0.0,*) return 0 ;;
    esac
    local new=localhost${cur:+,$cur}
    pg_conftool "$pg_ver" main set listen_addresses "$new" >/dev/null \
        || die "postgresql: could not set listen_addresses"
    say "postgresql: listen_addresses set to '$new'" >&2
    echo changed
}

if pg_answers; then
    say "postgresql: already running on $HOST:$PG_PORT"
else
    need_root "starting PostgreSQL"
    pg_ensure_cluster
    changed=$(pg_ensure_listen)
    if pg_ctlcluster "$pg_ver" main status >/dev/null 2>&1; then
        if [[ -n $changed ]]; then
            say "postgresql: restarting cluster $pg_ver/main to apply listen_addresses"
            pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main restart \
                || die "postgresql: restart of cluster $pg_ver/main failed"
        else
            say "postgresql: cluster $pg_ver/main runs but does not answer on $HOST:$PG_PORT (port $(pg_conftool -s "$pg_ver" main show port 2>/dev/null || echo '?'))"
        fi
    else
        say "postgresql: starting cluster $pg_ver/main"
        pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main start \
            || die "postgresql: start of cluster $pg_ver/main failed (see /var/log/postgresql/postgresql-$pg_ver-main.log)"
    fi
    wait_for "postgresql: answering on $HOST:$PG_PORT" pg_answers \
        || die "postgresql: nothing answers on $HOST:$PG_PORT after ${WAIT_SECONDS}s (cluster $pg_ver/main is configured for port $(pg_conftool -s "$pg_ver" main show port 2>/dev/null || echo '?'); log: /var/log/postgresql/postgresql-$pg_ver-main.log)"
fi

if pg_login_works; then
    say "postgresql: user postgres can log in over TCP without password"
else
    need_root "configuring pg_hba.conf"
    [[ -n $pg_ver && -f /etc/postgresql/$pg_ver/main/postgresql.conf ]] \
        || die "postgresql: 'psql -h $HOST -p $PG_PORT -U postgres -d postgres' fails and no local cluster exists to configure; allow trust auth for postgres on that server"
    hba=$(pg_conftool -s "$pg_ver" main show hba_file 2>/dev/null || echo "/etc/postgresql/$pg_ver/main/pg_hba.conf")
    [[ -f $hba ]] || die "postgresql: pg_hba.conf not found at $hba"
    if grep -qxF "$HBA_MARKER" "$hba"; then
        say "postgresql: trust rules already present in $hba; reloading"
    else
        say "postgresql: adding trust rules for local, 127.0.0.1/32 and ::1/128 to $hba"
        [[ -e $hba.ips-setup.orig ]] || cp -p "$hba" "$hba.ips-setup.orig"
        tmp=$(mktemp)
        {
            printf '%s\n' "$HBA_MARKER" \
                'local   all   all                  trust' \
                'host    all   all   127.0.0.1/32   trust' \
                'host    all   all   ::1/128        trust' ''
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba" # keeps owner and mode of $hba
        rm -f "$tmp"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main reload \
        || die "postgresql: reload of cluster $pg_ver/main failed"
    WAIT_SECONDS=10 wait_for "postgresql: user postgres can now log in over TCP without password" pg_login_works \
        || die "postgresql: 'psql -h $HOST -p $PG_PORT -U postgres -d postgres' still fails after editing $hba; is the server on $HOST:$PG_PORT cluster $pg_ver/main?"
fi

# --- NATS ------------------------------------------------------------------

nats_running() { start-stop-daemon --status --exec "$NATS_BIN" >/dev/null 2>&1; }

start_nats() {
    need_root "starting nats-server"
    say "nats: starting nats-server with JetStream on $HOST:4222 (log: $NATS_LOG)"
    mkdir -p "$NATS_STORE"
    start-stop-daemon --start --oknodo --background --exec "$NATS_BIN" -- \
        -a 127.0.0.1 -p 4222 -js -sd "$NATS_STORE" -l "$NATS_LOG" \
        || die "nats: start-stop-daemon failed to start $NATS_BIN"
    local deadline=$((SECONDS + WAIT_SECONDS))
    until tcp_open "$HOST" "$NATS_PORT"; do
        if ! nats_running; then
            die "nats: nats-server exited right after start; last log lines:
$(tail -n 5 "$NATS_LOG" 2>/dev/null)"
        fi
        ((SECONDS < deadline)) || die "nats: nothing listens on $HOST:$NATS_PORT after ${WAIT_SECONDS}s (see $NATS_LOG; this script starts nats-server on port 4222 only)"
        sleep 1
    done
    say "nats: listening on $HOST:$NATS_PORT"
}

if tcp_open "$HOST" "$NATS_PORT"; then
    say "nats: already running on $HOST:$NATS_PORT"
else
    start_nats
fi

info=$(nats_info)
[[ $info == INFO* ]] || die "nats: $HOST:$NATS_PORT accepts connections but sent no NATS INFO line; is it nats-server?"
if [[ $info != *'"jetstream":true'* ]]; then
    # Installing the Debian package on a systemd host starts its service with
    # /etc/nats-server.conf, which has no JetStream. Only that server, which
    # this run brought up, is replaced; a server that ran before is left alone.
    if ((NATS_INSTALLED_NOW)) && command -v systemctl >/dev/null 2>&1 \
        && systemctl is-active --quiet nats-server 2>/dev/null; then
        say "nats: packaged nats-server service runs without JetStream; disabling it"
        systemctl disable --now nats-server >/dev/null 2>&1 || die "nats: could not stop the nats-server service"
        deadline=$((SECONDS + WAIT_SECONDS))
        while tcp_open "$HOST" "$NATS_PORT"; do
            ((SECONDS < deadline)) || die "nats: $HOST:$NATS_PORT still busy after stopping the service"
            sleep 1
        done
        start_nats
        info=$(nats_info)
    fi
    [[ $info == *'"jetstream":true'* ]] \
        || die "nats: the server on $HOST:$NATS_PORT runs without JetStream; restart it with -js (e.g. $NATS_BIN -a 127.0.0.1 -p 4222 -js -sd $NATS_STORE)"
fi
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")
say "nats: JetStream enabled (nats-server ${version:-unknown version})"

say "setup: ready (postgresql $HOST:$PG_PORT, nats $HOST:$NATS_PORT)"
