#!/usr/bin/env bash
# Fuzzes the running HTTP API with Schemathesis, driven by its own
# OpenAPI document (GET /openapi.json), end to end:
#
#   1. installs Schemathesis into a venv under the cargo target dir (once);
#   2. builds smppd and the bundled SMSC simulator;
#   3. starts the simulator and smppd on free local ports, with a temporary
#      config and database (one tenant, key `fuzz-secret-key`, an admin
#      token, no webhooks: nothing is sent anywhere but to the local
#      simulator);
#   4. runs `schemathesis run` (every check is on by default) against /openapi.json, with the
#      credentials and the few expected answers of
#      examples/fuzz/schemathesis.toml, and stops both processes.
#
# Usage: examples/fuzz/schemathesis.sh [extra schemathesis options...]
#   e.g. examples/fuzz/schemathesis.sh --max-examples 50 --seed 1
# Environment: PROFILE=debug to skip the release build; SCHEMATHESIS to use
# an installed schemathesis instead of the venv.
# Exit code: Schemathesis's (0 when no check failed).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
VENV="$TARGET/schemathesis-venv"
if [ -z "${SCHEMATHESIS:-}" ]; then
    if [ ! -x "$VENV/bin/schemathesis" ]; then
        echo "installing schemathesis into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet schemathesis
    fi
    SCHEMATHESIS="$(cd "$VENV" && pwd)/bin/schemathesis"
fi

if [ "$PROFILE" = release ]; then
    cargo build --release --bin smppd --example smsc_simulator
else
    cargo build --bin smppd --example smsc_simulator
fi
BIN="$(cd "$TARGET/$PROFILE" && pwd)"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SMPP_PORT=$(free_port)
HTTP_PORT=$(free_port)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

KEY=fuzz-secret-key
ADMIN_TOKEN=fuzz-admin-token-0123456789
cat >"$WORK/smppd.toml" <<TOML
[http]
listen = "127.0.0.1:$HTTP_PORT"
admin_token = "$ADMIN_TOKEN"

[database]
path = "$WORK/smppd.db"
synchronous = "normal"

[[tenants]]
id = "fuzz"
api_key = "$KEY"

[[tenants.channels]]
name = "simulator"
host = "127.0.0.1"
port = $SMPP_PORT
system_id = "fuzz"
password = "fuzz-pw"
TOML

"$BIN/examples/smsc_simulator" --listen "127.0.0.1:$SMPP_PORT" --account fuzz:fuzz-pw \
    --dlr-delay-ms 20 >"$WORK/simulator.log" 2>&1 &
PIDS+=($!)
RUST_LOG=${RUST_LOG:-warn} "$BIN/smppd" --config "$WORK/smppd.toml" >"$WORK/smppd.log" 2>&1 &
PIDS+=($!)

BASE="http://127.0.0.1:$HTTP_PORT"
ready() {
    python3 -c "import urllib.request; urllib.request.urlopen('$BASE/ready', timeout=1)" 2>/dev/null
}
for _ in $(seq 1 150); do
    ready && break
    sleep 0.2
done
if ! ready; then
    echo "smppd did not become ready; its log:" >&2
    cat "$WORK/smppd.log" >&2
    exit 1
fi

# Run from the temporary directory: Schemathesis keeps a cache in its
# working directory.
CONFIG="$PWD/examples/fuzz/schemathesis.toml"
set +e
(cd "$WORK" && SMPPD_FUZZ_KEY=$KEY SMPPD_FUZZ_ADMIN_TOKEN=$ADMIN_TOKEN \
    "$SCHEMATHESIS" --config-file "$CONFIG" run "$BASE/openapi.json" \
    --request-timeout 5 \
    "$@")
status=$?
set -e
if grep -q -i "panicked" "$WORK/smppd.log"; then
    echo "smppd panicked:" >&2
    grep -i -A5 "panicked" "$WORK/smppd.log" >&2
    status=1
fi
exit $status
