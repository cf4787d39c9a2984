#!/usr/bin/env bash
# Creates the development PKI in deploy/.local/pki (or $1) unless it is already there: a local
# CA, the services' server certificate (localhost, 127.0.0.1), and for each organisation
# (municipality, fk, af, psychiatry) a client certificate for mTLS and an Ed25519 key pair for
# signing officer tokens (JWTs; the public key in <agency>.token-verifying.jwks.json under its
# key id). A PKI from before the JWT tokens (no key set file) is replaced. There is no "auth
# off" switch, so development uses these; they never leave the machine (deploy/.local is
# git-ignored). Delete the directory to start over.
set -euo pipefail

cd "$(dirname "$0")/.."
directory="${1:-deploy/.local/pki}"
if [ -f "$directory/ca.pem" ] && [ -f "$directory/psychiatry.token-verifying.jwks.json" ]; then
    echo "dev-pki: $directory already holds a development PKI"
    exit 0
fi
cargo build --quiet --bin ipsctl
"${CARGO_TARGET_DIR:-target}/debug/ipsctl" dev-pki "$directory"
