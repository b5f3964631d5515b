#!/usr/bin/env bash
# Cross-check with an independent HTTP load generator: oha
# (https://github.com/hatoo/oha; `cargo install oha --locked`) sends the
# POSTs instead of our load_client, at concurrency 50, to one tenant whose
# two sessions go to the bundled simulator. Prints oha's rate and
# latency percentiles, the time until every message is final (polling
# /v1/stats every 10 ms), and the engine's CPU per message.
#
#   examples/bench/oha.sh [--messages N] [--message-id-format hex|decimal|uuid] [--no-build]
#
# Needs oha (or OHA=/path/to/oha), curl and python3. Builds release into
# $CARGO_TARGET_DIR (default /tmp/target-bench), like run.sh. Uses
# 127.0.0.1:18081 (HTTP) and 127.0.0.1:27751 (SMPP).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
OHA=${OHA:-oha}
N=60000 FORMAT=hex BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
        --messages) N=$2; shift ;;
        --message-id-format) FORMAT=$2; shift ;;
        --no-build) BUILD=0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v "$OHA" >/dev/null || { echo "oha not found: cargo install oha --locked (or set OHA)" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --locked --bin smppd --example smsc_simulator)
fi
B=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

RUST_LOG=warn "$B/examples/smsc_simulator" --listen 127.0.0.1:27751 --account t1:pw1 \
    --dlr-delay-ms 0 --message-id-format "$FORMAT" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
# The config run.sh writes for one tenant, from the same templates.
HERE=$ROOT/examples/bench
sed -e 's|@HTTP_ADDR@|127.0.0.1:18081|' -e "s|@DB_PATH@|$WORK/smppd.db|" \
    -e 's|@SYNCHRONOUS@|full|' -e 's|@HTTP_WORKERS@||' -e 's|@ENGINE_THREADS@||' \
    -e 's|@FAIR_SHARE@|auto|' "$HERE/engine.toml.tmpl" >"$WORK/smppd.toml"
sed -e 's|@TENANT@|t1|g' -e 's|@API_KEY@|bench-key-t1|' -e 's|@PASSWORD@|pw1|' \
    -e 's|@WEIGHT@|1|' -e 's|@SMSC_PORT@|27751|' -e 's|@SESSIONS@|2|' -e 's|@WINDOW@|100|' \
    "$HERE/tenant.toml.tmpl" >>"$WORK/smppd.toml"
RUST_LOG=warn "$B/smppd" --config "$WORK/smppd.toml" >"$WORK/engine.log" 2>&1 &
ENGINE=$!
PIDS+=("$ENGINE")
for _ in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18081/ready)" = 200 ] && break
    sleep 0.2
done

cpu() { awk '{print $14 + $15}' "/proc/$ENGINE/stat"; }
final() {
    curl -s http://127.0.0.1:18081/v1/stats -H 'Authorization: Bearer bench-key-t1' |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["final"])'
}
cpu0=$(cpu)
start=$(date +%s.%N)
"$OHA" -n "$N" -c 50 --no-tui --output-format json -m POST \
    -H 'Authorization: Bearer bench-key-t1' -H 'Content-Type: application/json' \
    -d '{"to":"+4915112345678","from":"ACME","text":"hello benchmark 1234"}' \
    http://127.0.0.1:18081/v1/messages >"$WORK/oha.json"
for _ in $(seq 1 60000); do
    [ "$(final)" = "$N" ] && break
    sleep 0.01
done
end=$(date +%s.%N)
cpu1=$(cpu)
python3 - "$WORK/oha.json" "$N" "$start" "$end" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$FORMAT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[2]); start, end = float(sys.argv[3]), float(sys.argv[4])
ticks = float(sys.argv[6]) - float(sys.argv[5]); hz = float(sys.argv[7])
s, lp = d["summary"], d["latencyPercentiles"]
print(f"oha, {n} messages, concurrency 50, simulator ids {sys.argv[8]}:")
print(f"  accepted      {s['requestsPerSec']:.0f} req/s, success {s['successRate'] * 100:.2f} %, "
      f"status codes {d.get('statusCodeDistribution')}")
print(f"  latency       p50 {lp['p50'] * 1e3:.2f} / p95 {lp['p95'] * 1e3:.2f} / p99 {lp['p99'] * 1e3:.2f} ms")
print(f"  end to end    {n / (end - start):.0f} msg/s (every message final, polled every 10 ms)")
print(f"  engine CPU    {ticks / hz * 1e6 / n:.1f} us/msg")
PY
