#!/usr/bin/env bash
# Reproduces smppd's benchmark matrix on one machine (see BENCHMARKS.md).
#
#   examples/bench/run.sh                 # matrix (1, 5, 10 tenants x 3 runs) + ceilings
#   examples/bench/run.sh --matrix        # only the tenant matrix
#   examples/bench/run.sh --ceilings      # only the store and raw-SMPP ceilings
#   examples/bench/run.sh --rss           # RSS with a large backlog (SMSC unreachable)
#   examples/bench/run.sh --latency       # accept latency at concurrency 1, 10, 25, 50, 100, 200
#   examples/bench/run.sh --weights       # 3 tenants weighted 1, 2, 4: shares while all send
#   examples/bench/run.sh --trickle       # a heavy tenant beside one sending a trickle (1 connection)
#   examples/bench/run.sh --quick         # 1 run of each, fewer messages: a smoke test
#
# Options (after the mode): --runs N, --total N (messages per run, split over
# the tenants), --tenants "1 5 10", --concurrency N, --sessions N,
# --window N, --synchronous full|normal, --http-workers N, --engine-threads N
# (default: smppd's, one per core), --dlr-delay-ms N, --message-id-format
# hex|decimal|uuid (the simulator's ids; uuid: random, in no order), --rss-messages N,
# --rss-max-send-s N, --rss-drain-max-s N, --weights-list "1 2 4",
# --fair-share auto|always|off (engine.fair_share), --quiet-wait-s N (before each
# run, wait up to N s for the machine to be idle: other builds skew the
# numbers; 0 = do not wait), --out DIR, --no-build.
#
# Everything runs on 127.0.0.1 (HTTP on $HTTP_PORT, the simulator on
# $SMSC_PORT); each run gets a fresh temp directory and database; every
# process started here is stopped on exit. Results are JSON files in --out
# (default examples/bench/results/), summarised by summarize.py.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

MODE=default
RUNS=3
TOTAL=60000
TENANT_COUNTS="1 5 10"
CONCURRENCY=50
SESSIONS=2
WINDOW=100
SYNCHRONOUS=full
DLR_DELAY_MS=0
ID_FORMAT=hex
RSS_MESSAGES=1000000
RSS_MAX_SEND_S=600
RSS_DRAIN_MAX_S=300
QUIET_WAIT_S=120
HTTP_WORKERS=
ENGINE_THREADS=
WEIGHTS="1 2 4"
TENANT_WEIGHTS=
FAIR_SHARE=auto
HTTP_PORT=${HTTP_PORT:-18080}
SMSC_PORT=${SMSC_PORT:-27750}
OUT=$HERE/results
BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
        --matrix) MODE=matrix ;;
        --ceilings) MODE=ceilings ;;
        --rss) MODE=rss ;;
        --quick) MODE=quick ;;
        --latency) MODE=latency ;;
        --weights) MODE=weights ;;
        --trickle) MODE=trickle ;;
        --weights-list) WEIGHTS=$2; shift ;;
        --fair-share) FAIR_SHARE=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --total) TOTAL=$2; shift ;;
        --tenants) TENANT_COUNTS=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --sessions) SESSIONS=$2; shift ;;
        --window) WINDOW=$2; shift ;;
        --synchronous) SYNCHRONOUS=$2; shift ;;
        --dlr-delay-ms) DLR_DELAY_MS=$2; shift ;;
        --message-id-format) ID_FORMAT=$2; shift ;;
        --rss-messages) RSS_MESSAGES=$2; shift ;;
        --rss-max-send-s) RSS_MAX_SEND_S=$2; shift ;;
        --rss-drain-max-s) RSS_DRAIN_MAX_S=$2; shift ;;
        --quiet-wait-s) QUIET_WAIT_S=$2; shift ;;
        --http-workers) HTTP_WORKERS=$2; shift ;;
        --engine-threads) ENGINE_THREADS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n "2,25p" "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# A private target dir by default, so a benchmark build never waits for (or
# blocks) another build of the same tree.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
BIN=$CARGO_TARGET_DIR/release
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/smppd-bench.XXXXXX")
PIDS=()

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "pid $pid did not stop after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [ $status -ne 0 ]; then
        log "failed (exit $status); logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_log() { # FILE PATTERN TIMEOUT_S PID
    local file=$1 pattern=$2 timeout=$3 pid=$4
    for _ in $(seq 1 $((timeout * 10))); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { log "process $pid died; log:"; tail -20 "$file" >&2; return 1; }
        sleep 0.1
    done
    log "timed out waiting for '$pattern' in $file"; tail -20 "$file" >&2
    return 1
}

# The simulator knows one account per tenant: t1/pw1 ... t10/pw10, plus bench/bench.
start_sim() { # DLR_DELAY_MS [extra flags...]
    local delay=$1; shift
    local accounts=(--account bench:bench)
    for i in $(seq 1 10); do accounts+=(--account "t$i:pw$i"); done
    RUST_LOG=warn "$BIN/examples/smsc_simulator" --listen "127.0.0.1:$SMSC_PORT" \
        "${accounts[@]}" --dlr-delay-ms "$delay" --message-id-format "$ID_FORMAT" "$@" \
        >"$WORK/sim.log" 2>&1 &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    wait_for_log "$WORK/sim.log" "listening" 10 "$SIM_PID"
}

write_config() { # DIR TENANTS SMSC_PORT [extra channel lines]
    local dir=$1 tenants=$2 port=$3 extra=${4:-}
    local cfg=$dir/smppd.toml
    sed -e "s|@HTTP_ADDR@|127.0.0.1:$HTTP_PORT|" -e "s|@DB_PATH@|$dir/smppd.db|" \
        -e "s|@SYNCHRONOUS@|$SYNCHRONOUS|" \
        -e "s|@HTTP_WORKERS@|${HTTP_WORKERS:+workers = $HTTP_WORKERS}|" \
        -e "s|@ENGINE_THREADS@|${ENGINE_THREADS:+threads = $ENGINE_THREADS}|" \
        -e "s|@FAIR_SHARE@|$FAIR_SHARE|" \
        "$HERE/engine.toml.tmpl" >"$cfg"
    local weights=($TENANT_WEIGHTS)
    for i in $(seq 1 "$tenants"); do
        sed -e "s|@TENANT@|t$i|g" -e "s|@API_KEY@|bench-key-t$i|" -e "s|@PASSWORD@|pw$i|" \
            -e "s|@WEIGHT@|${weights[$((i - 1))]:-1}|" \
            -e "s|@SMSC_PORT@|$port|" -e "s|@SESSIONS@|$SESSIONS|" -e "s|@WINDOW@|$WINDOW|" \
            "$HERE/tenant.toml.tmpl" >>"$cfg"
        [ -n "$extra" ] && printf '%s\n' "$extra" >>"$cfg"
    done
    echo "$cfg"
}

keys_for() { # TENANTS -> --key flags
    for i in $(seq 1 "$1"); do printf -- '--key bench-key-t%s ' "$i"; done
}

start_engine() { # CONFIG LOG
    RUST_LOG=${ENGINE_LOG:-info} "$BIN/smppd" --config "$1" >"$2" 2>&1 &
    ENGINE_PID=$!
    PIDS+=("$ENGINE_PID")
    # Ready when the HTTP port accepts connections (works at any log level).
    for _ in $(seq 1 1200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then return 0; fi
        kill -0 "$ENGINE_PID" 2>/dev/null || { log "smppd died; log:"; tail -20 "$2" >&2; return 1; }
        sleep 0.1
    done
    log "smppd did not listen on $HTTP_PORT within 120 s"; tail -20 "$2" >&2
    return 1
}

# Busy CPU of the whole machine over 2 s, in % of one core.
machine_busy_pct() {
    local b0 t0 b1 t1
    read -r b0 t0 < <(awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat)
    sleep 2
    read -r b1 t1 < <(awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat)
    echo $(( (b1 - b0) * 100 * $(nproc) / (t1 - t0 > 0 ? t1 - t0 : 1) ))
}

# Waits (up to QUIET_WAIT_S) until other processes use less than 30 % of a core.
wait_quiet() {
    [ "$QUIET_WAIT_S" -gt 0 ] || return 0
    local deadline=$((SECONDS + QUIET_WAIT_S)) pct
    while :; do
        pct=$(machine_busy_pct)
        [ "$pct" -lt 30 ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            log "machine still busy (${pct} % of a core used by other processes); measuring anyway"
            return 0
        fi
        log "machine busy (${pct} % of a core used by other processes); waiting"
    done
}

progress_flag() { [ -t 2 ] || printf -- '--no-progress'; }

machine_info() {
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "nproc: $(nproc)"
        grep -m1 'model name' /proc/cpuinfo || true
        grep -m1 MemTotal /proc/meminfo || true
        uname -srm
        rustc --version
        echo "mode=$MODE runs=$RUNS total=$TOTAL tenants='$TENANT_COUNTS' concurrency=$CONCURRENCY sessions=$SESSIONS window=$WINDOW synchronous=$SYNCHRONOUS dlr_delay_ms=$DLR_DELAY_MS message_id_format=$ID_FORMAT http_workers=${HTTP_WORKERS:-default} engine_threads=${ENGINE_THREADS:-default}"
    } >"$OUT/machine-$MODE.txt"
    cat "$OUT/machine-$MODE.txt" >&2
}

build() {
    [ "$BUILD" = 1 ] || return 0
    log "building release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release --bin smppd \
        --example smsc_simulator --example load_client --example bench_store --example bench_smpp)
}

# ---------------------------------------------------------------- matrix

matrix_run() { # TENANTS RUN MESSAGES_TOTAL [CONCURRENCY NAME]
    local tenants=$1 run=$2 total=$3 concurrency=${4:-$CONCURRENCY}
    local name=${5:-matrix-t$tenants-r$run}
    local dir=$WORK/t$tenants-r$run
    mkdir -p "$dir"
    local per=$((total / tenants))
    wait_quiet
    log "$name: $tenants tenant(s) x $per messages, concurrency $concurrency"
    start_sim "$DLR_DELAY_MS"
    local cfg
    cfg=$(write_config "$dir" "$tenants" "$SMSC_PORT")
    start_engine "$cfg" "$dir/smppd.log"
    # shellcheck disable=SC2046
    "$BIN/examples/load_client" --url "http://127.0.0.1:$HTTP_PORT" $(keys_for "$tenants") \
        --messages "$per" --concurrency "$concurrency" --pid "$ENGINE_PID" --sim-pid "$SIM_PID" \
        --wait-ready-s 30 --wait-timeout-s 300 --label "tenants=$tenants run=$run concurrency=$concurrency" \
        --json "$OUT/$name.json" $(progress_flag) | tee "$OUT/$name.txt" || log "load client failed (see above)"
    stop_pid "$ENGINE_PID"
    stop_pid "$SIM_PID"
    grep -E " (ERROR|WARN) " "$dir/smppd.log" | head -5 >&2 || true
    rm -rf "$dir"
}

matrix() {
    for tenants in $TENANT_COUNTS; do
        for run in $(seq 1 "$RUNS"); do
            matrix_run "$tenants" "$run" "$TOTAL"
        done
    done
}

# Weighted shares: one tenant per weight, the same messages and concurrency
# each; the load client reports each tenant's share of the 202s while all
# are still sending.
weights() {
    # --concurrency connections per tenant here (not in all): each tenant
    # alone offers enough load to saturate the engine, so all of them want
    # more than they get and the weights decide.
    local n
    n=$(wc -w <<<"$WEIGHTS")
    for run in $(seq 1 "$RUNS"); do
        TENANT_WEIGHTS=$WEIGHTS matrix_run "$n" "$run" "$TOTAL" "$((CONCURRENCY * n))" \
            "weights-$FAIR_SHARE-r$run"
    done
}

# Accept latency against concurrency: 1 tenant, one run per level.
latency() {
    for c in 1 10 25 50 100 200; do
        matrix_run 1 1 "$((TOTAL / 2))" "$c" "latency-c$c"
    done
}

# ---------------------------------------------------------------- ceilings

ceilings() {
    local run
    for run in $(seq 1 "$RUNS"); do
        wait_quiet
        log "ceiling: SQLite store, 50 writers waiting for each commit (run $run)"
        "$BIN/examples/bench_store" --writers 50 --messages 4000 --dir "$WORK" \
            --json "$OUT/ceiling-store-r$run.json" | tee "$OUT/ceiling-store-r$run.txt"
        log "ceiling: raw SMPP, in-process simulator (client + simulator in one process) (run $run)"
        "$BIN/examples/bench_smpp" --sessions "$SESSIONS" --window "$WINDOW" --duration-s 10 \
            --json "$OUT/ceiling-smpp-inprocess-r$run.json" | tee "$OUT/ceiling-smpp-inprocess-r$run.txt"
        log "ceiling: raw SMPP against the simulator process the engine uses (run $run)"
        start_sim 0
        "$BIN/examples/bench_smpp" --addr "127.0.0.1:$SMSC_PORT" --system-id bench --password bench \
            --sessions "$SESSIONS" --window "$WINDOW" --duration-s 10 --sim-pid "$SIM_PID" \
            --json "$OUT/ceiling-smpp-external-r$run.json" | tee "$OUT/ceiling-smpp-external-r$run.txt"
        stop_pid "$SIM_PID"
    done
}

# ---------------------------------------------------------------- rss

rss() {
    wait_quiet
    local dir=$WORK/rss
    mkdir -p "$dir"
    # Phase 1: the SMSC port has nothing listening, so every message stays
    # queued in the store; reconnects are retried every ≤ 2 s.
    local cfg
    cfg=$(write_config "$dir" 1 "$SMSC_PORT" "reconnect_max_s = 2")
    ENGINE_LOG=warn start_engine "$cfg" "$dir/smppd.log"
    (
        while kill -0 "$ENGINE_PID" 2>/dev/null; do
            printf '%s %s\n' "$(date +%s)" "$(awk '/VmRSS/{print $2}' "/proc/$ENGINE_PID/status" 2>/dev/null)"
            sleep 2
        done
    ) >"$OUT/rss-samples.txt" &
    PIDS+=("$!")
    log "rss: idle engine RSS $(awk '/VmRSS/{print $2}' "/proc/$ENGINE_PID/status") KiB"
    log "rss: queueing up to $RSS_MESSAGES messages with the SMSC unreachable (at most $RSS_MAX_SEND_S s)"
    "$BIN/examples/load_client" --url "http://127.0.0.1:$HTTP_PORT" --key bench-key-t1 \
        --messages "$RSS_MESSAGES" --concurrency "$CONCURRENCY" --pid "$ENGINE_PID" --no-wait \
        --max-send-s "$RSS_MAX_SEND_S" --label "rss fill (SMSC unreachable)" \
        --json "$OUT/rss-fill.json" $(progress_flag) | tee "$OUT/rss-fill.txt"
    sleep 10
    log "rss: 10 s after the fill: $(awk '/VmRSS/{print $2}' "/proc/$ENGINE_PID/status") KiB; db $(du -sh "$dir" | cut -f1)"
    echo "rss_after_fill_settled_kib $(awk '/VmRSS/{print $2}' "/proc/$ENGINE_PID/status")" >"$OUT/rss-settled.txt"
    # Phase 2: the SMSC appears; the backlog drains (bounded in time).
    log "rss: starting the simulator; draining the backlog (at most $RSS_DRAIN_MAX_S s)"
    start_sim "$DLR_DELAY_MS"
    "$BIN/examples/load_client" --url "http://127.0.0.1:$HTTP_PORT" --key bench-key-t1 --drain \
        --pid "$ENGINE_PID" --wait-timeout-s "$RSS_DRAIN_MAX_S" --label "rss drain" \
        --json "$OUT/rss-drain.json" $(progress_flag) | tee "$OUT/rss-drain.txt" || true
    echo "rss_after_drain_kib $(awk '/VmRSS/{print $2}' "/proc/$ENGINE_PID/status")" >>"$OUT/rss-settled.txt"
    stop_pid "$ENGINE_PID"
    stop_pid "$SIM_PID"
}

machine_info
build
# ---------------------------------------------------------------- trickle

trickle() {
    # Two tenants of equal weight sending at once for 8 s: t1 over
    # CONCURRENCY - 1 connections, t2 over one. Fair sharing must not hold
    # t1 to half the engine because t2 also sends (compare --fair-share off).
    for run in $(seq 1 "$RUNS"); do
        local name=trickle-$FAIR_SHARE-r$run dir=$WORK/trickle-r$run
        mkdir -p "$dir"
        wait_quiet
        log "$name: t1 over $((CONCURRENCY - 1)) connections, t2 over 1, 8 s"
        start_sim "$DLR_DELAY_MS"
        local cfg
        cfg=$(write_config "$dir" 2 "$SMSC_PORT")
        start_engine "$cfg" "$dir/smppd.log"
        "$BIN/examples/load_client" --url "http://127.0.0.1:$HTTP_PORT" --key bench-key-t2 \
            --messages 10000000 --concurrency 1 --max-send-s 8 --no-wait --wait-ready-s 30 \
            --label "$name light" --json "$OUT/$name-light.json" --no-progress >"$OUT/$name-light.txt" &
        local light=$!
        "$BIN/examples/load_client" --url "http://127.0.0.1:$HTTP_PORT" --key bench-key-t1 \
            --messages 10000000 --concurrency "$((CONCURRENCY - 1))" --max-send-s 8 --no-wait \
            --pid "$ENGINE_PID" --wait-ready-s 30 --label "$name heavy" \
            --json "$OUT/$name-heavy.json" $(progress_flag) | tee "$OUT/$name-heavy.txt" ||
            log "load client failed (see above)"
        wait "$light" || log "light load client failed"
        stop_pid "$ENGINE_PID"
        stop_pid "$SIM_PID"
        rm -rf "$dir"
    done
}

case "$MODE" in
    default) matrix; ceilings ;;
    matrix) matrix ;;
    ceilings) ceilings ;;
    rss) rss ;;
    latency) latency ;;
    weights) weights ;;
    trickle) trickle ;;
    quick) RUNS=1; TOTAL=4000; RSS_MESSAGES=20000; matrix; rss ;;
esac
if command -v python3 >/dev/null; then
    python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
fi
log "done; results in $OUT"
