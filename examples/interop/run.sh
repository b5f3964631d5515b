#!/usr/bin/env bash
# smppd against an SMSC it did not write: node-smpp (examples/interop/node-smsc),
# an independent SMPP implementation from the npm registry.
#
#   examples/interop/run.sh [--no-build] [--debug] [--messages N]
#
# Checks, end to end over real TCP: binds (2 transceiver sessions),
# N short messages + a 3-part GSM message + a UCS-2 (emoji) message
# submitted and each matched to its receipt (the SMSC's ids are
# upper-case hex, the receipts carry receipted_message_id and
# message_state), MO messages (plain, two UDH parts, two SAR-TLV parts)
# stored as 3 inbound messages, enquire_link on an idle link, and a
# graceful stop that unbinds. Then, against node-smpp's TLS server (the
# test certificates of tests/fixtures/tls): two tenants bind over TLS and
# each sends a 400-character message, one as three parts marked by the SAR
# TLVs (`long_messages = "sar"`), one whole in message_payload
# (`"payload"`). --debug uses the debug build (as left by `cargo test`).
# Needs node and npm (installs node-smpp 0.5.1 on first run), curl and
# jq. Exit 3: node-smpp could not be installed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=1
PROFILE=release
MESSAGES=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --debug) PROFILE=debug ;;
        --messages) MESSAGES=$2; shift ;;
        -h|--help) sed -n "2,14p" "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE
SMSC_PORT=${SMSC_PORT:-27790}
TLS_PORT=${TLS_PORT:-27791}
FIXTURES=$ROOT/tests/fixtures/tls
HTTP_PORT=${HTTP_PORT:-18090}
KEY=interop-secret-key
ADMIN=interop-admin-token-0123
WORK=$(mktemp -d "${TMPDIR:-/tmp}/smppd-interop.XXXXXX")
PIDS=()
log() { printf '%s [interop] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { log "FAILED: $*"; log "smppd log tail:"; tail -20 "$WORK/smppd.log" >&2 || true; exit 1; }

if [ ! -d "$HERE/node-smsc/node_modules/smpp" ]; then
    log "installing node-smpp"
    (cd "$HERE/node-smsc" && npm install --no-audit --no-fund --silent) || {
        log "cannot install node-smpp from the npm registry"
        exit 3
    }
fi
if [ "$BUILD" = 1 ]; then
    flag=$([ "$PROFILE" = release ] && echo --release || true)
    (cd "$ROOT" && cargo build $flag --bin smppd --example load_client)
fi

node "$HERE/node-smsc/smsc.js" "$SMSC_PORT" interop:interpw >"$WORK/smsc.out" 2>"$WORK/smsc.err" &
SMSC_PID=$!
PIDS+=("$SMSC_PID")
node "$HERE/node-smsc/smsc.js" "$TLS_PORT" sar:sarpw,payload:paypw \
    "$FIXTURES/server.pem" "$FIXTURES/server.key" >"$WORK/tls.out" 2>"$WORK/tls.err" &
TLS_PID=$!
PIDS+=("$TLS_PID")
sleep 0.5

cat >"$WORK/smppd.toml" <<TOML
[http]
listen = "127.0.0.1:$HTTP_PORT"
admin_token = "$ADMIN"

[database]
path = "$WORK/smppd.db"

[[tenants]]
id = "interop"
api_key = "$KEY"

[[tenants.channels]]
name = "node"
host = "127.0.0.1"
port = $SMSC_PORT
system_id = "interop"
password = "interpw"
sessions = 2
window = 20
enquire_link_interval_s = 1
TOML
for mode in sar payload; do
    pw=$([ "$mode" = sar ] && echo sarpw || echo paypw)
    cat >>"$WORK/smppd.toml" <<TOML

[[tenants]]
id = "secure-$mode"
api_key = "interop-$mode-key-0001"

[[tenants.channels]]
name = "node-tls"
host = "127.0.0.1"
port = $TLS_PORT
system_id = "$mode"
password = "$pw"
tls = true
tls_ca_file = "$FIXTURES/ca.pem"
long_messages = "$mode"
TOML
done
RUST_LOG=info "$BIN/smppd" --config "$WORK/smppd.toml" >"$WORK/smppd.log" 2>&1 &
SMPPD_PID=$!
PIDS+=("$SMPPD_PID")
API=http://127.0.0.1:$HTTP_PORT
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/ready")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$API/ready")" = 200 ] || fail "smppd not ready (sessions not bound?)"
log "smppd bound 2 sessions to the node SMSC"

send() { # JSON body [API key] -> id
    curl -s -X POST "$API/v1/messages" -H "Authorization: Bearer ${2:-$KEY}" \
        -H 'Content-Type: application/json' -d "$1" | jq -r .id
}
status_of() { curl -s "$API/v1/messages/$1" -H "Authorization: Bearer ${2:-$KEY}"; } # id [API key]
wait_delivered() { # API key, ids: waits up to 5 s for every one to be delivered
    local key=$1 id all
    shift
    for _ in $(seq 1 50); do
        all=1
        for id in "$@"; do
            [ "$(status_of "$id" "$key" | jq -r .status)" = delivered ] || all=0
        done
        [ "$all" = 1 ] && return 0
        sleep 0.1
    done
    return 1
}
LONG=$(printf 'GSM text of four hundred characters. %.0s' $(seq 1 11) | cut -c1-400)
LONG_ID=$(send "{\"to\":\"4915100000001\",\"from\":\"ACME\",\"text\":\"$LONG\"}")
EMOJI_ID=$(send '{"to":"4915100000002","from":"ACME","text":"Ünïcödé 🚀 works"}')

"$BIN/examples/load_client" --url "$API" --key "$KEY" --messages "$MESSAGES" \
    --concurrency 8 --pid "$SMPPD_PID" --wait-timeout-s 60 --no-progress \
    --json "$WORK/load.json" >"$WORK/load.txt" || fail "load client"
DELIVERED=$(curl -s "$API/v1/stats" -H "Authorization: Bearer $KEY" | jq .delivered)
log "$MESSAGES short messages: $(jq -r '.send.accepted' "$WORK/load.json") accepted, $DELIVERED delivered in all"

wait_delivered "$KEY" "$LONG_ID" "$EMOJI_ID" || true
[ "$(status_of "$LONG_ID" | jq -r .status)" = delivered ] || fail "long message: $(status_of "$LONG_ID")"
[ "$(status_of "$LONG_ID" | jq -r .parts)" = 3 ] || fail "long message is not 3 parts"
[ "$(status_of "$EMOJI_ID" | jq -r .status)" = delivered ] || fail "UCS-2 message: $(status_of "$EMOJI_ID")"
log "3-part GSM message and UCS-2 message delivered"
[ "$DELIVERED" = "$((MESSAGES + 2))" ] || fail "expected $((MESSAGES + 2)) delivered, got $DELIVERED"

INBOUND=$(curl -s "$API/v1/inbound" -H "Authorization: Bearer $KEY")
echo "$INBOUND" | jq -e '[.inbound[].text] | sort == ["first half, second half (UDH)", "plain MO from node", "sar one, sar two"]' >/dev/null \
    || fail "inbound messages: $INBOUND"
log "MO: plain, UDH-joined and SAR-joined messages stored as 3 inbound messages"

for mode in sar payload; do
    key=interop-$mode-key-0001
    id=$(send "{\"to\":\"4915100000003\",\"from\":\"ACME\",\"text\":\"$LONG\"}" "$key")
    wait_delivered "$key" "$id" || true
    st=$(status_of "$id" "$key")
    [ "$(echo "$st" | jq -r .status)" = delivered ] || fail "TLS, long_messages = $mode: $st"
    [ "$(echo "$st" | jq -r .parts)" = 3 ] || fail "TLS, $mode: not 3 parts: $st"
done
log "over TLS: a 3-part message with SAR TLVs and one in message_payload delivered"

sleep 2.5 # idle: each session probes the link with enquire_link
kill -TERM "$SMPPD_PID"
wait "$SMPPD_PID" && STOPPED=0 || STOPPED=$?
[ "$STOPPED" = 0 ] || fail "smppd exited with $STOPPED on SIGTERM"
kill -TERM "$SMSC_PID"; wait "$SMSC_PID" || true
SEEN=$(tail -1 "$WORK/smsc.out")
log "node SMSC saw: $SEEN"
echo "$SEEN" | jq -e ".unbinds == 2 and .generic_nacks == 0 and .submits == $((MESSAGES + 4)) \
    and .receipts_acked == .receipts_sent and .mo_acked == 5 and .ucs2_submits == 1 \
    and .submit_parts_with_udh == 3 and .enquire_links >= 2" >/dev/null || fail "node SMSC counters: $SEEN"
kill -TERM "$TLS_PID"; wait "$TLS_PID" || true
TLS_SEEN=$(tail -1 "$WORK/tls.out")
log "node TLS SMSC saw: $TLS_SEEN"
echo "$TLS_SEEN" | jq -e '.binds == 2 and .unbinds == 2 and .generic_nacks == 0 and .submits == 4
    and .submit_parts_with_sar == 3 and .submit_parts_with_udh == 0 and .submit_payloads == 1
    and .payload_octets == 400 and .receipts_sent == 4 and .receipts_acked == 4 and .mo_acked == 5' >/dev/null \
    || fail "node TLS SMSC counters: $TLS_SEEN"
if grep -E " (WARN|ERROR) " "$WORK/smppd.log" >&2; then
    fail "smppd logged warnings or errors (above)"
fi
log "PASS: smppd and node-smpp agree on binds, submits, receipts, MO, enquire_link, unbind, TLS, SAR and message_payload"
