#!/usr/bin/env bash
# A local two-node trunx cluster without docker: PostgreSQL from the Debian package in a temp
# dir, the simulated carrier, and two `trunx serve` nodes sharing the database, then a small
# campaign through node b's API and GET /nodes. Everything stops on exit (Ctrl-C or the end).
#   scripts/cluster.sh [PROSPECTS]        (needs: apt-get install postgresql; cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
BIN=./target/release/trunx
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "install PostgreSQL: sudo apt-get install postgresql" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release
DIR=$(mktemp -d /tmp/trunx-cluster.XXXX)
RUN=(); [ "$(id -u)" = 0 ] && { chown postgres "$DIR"; RUN=(runuser -u postgres --); }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
PGPORT=${PGPORT:-55433}
"${RUN[@]}" "$PGBIN/initdb" -A trust -U trunx -D "$DIR/pg" >/dev/null
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w \
    -o "-p $PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR" start >/dev/null
DB="postgres://trunx@127.0.0.1:$PGPORT/postgres"
echo "PostgreSQL: $DB"

"$BIN" carrier-sim --listen 127.0.0.1:0 --mix human=20,machine_beep=20,busy=40,invalid=20 \
    --answer-ms 300-1000 > "$DIR/sim.out" 2>/dev/null & PIDS+=($!)
for _ in $(seq 50); do [ -s "$DIR/sim.out" ] && break; sleep 0.1; done
SIM=$(head -1 "$DIR/sim.out" | sed 's/.*"sip":"\([^"]*\)".*/\1/')
echo "carrier-sim: $SIM"
KEY=$(TRUNX_DATABASE_URL=$DB "$BIN" keys create --name cluster | tail -1)
printf 'max_calls_per_hour = 100000\nmax_calls_per_day = 100000\nhealthy_min = 0.0\npulled_below = 0.0\n' > "$DIR/cid.toml"
node() { # ID API_PORT SIP_PORT RTP_RANGE
    TRUNX_DATABASE_URL=$DB TRUNX_API_ADDR=127.0.0.1:$2 TRUNX_TRUNK_URI=sip:$SIM \
    TRUNX_SIP_ADDR=127.0.0.1:$3 TRUNX_RTP_PORTS=$4 TRUNX_CALLER_ID_POLICY=$DIR/cid.toml \
    TRUNX_PUBLIC_BASE_URL=http://trunx.cluster.local RUST_LOG=warn \
        "$BIN" serve --node-id "$1" 2> "$DIR/$1.log" & PIDS+=($!)
}
node a 18081 18082 41000-44999
node b 18091 18092 45000-48999
for p in 18081 18091; do
    for _ in $(seq 100); do curl -sf -H "Authorization: Bearer $KEY" http://127.0.0.1:$p/nodes >/dev/null && break; sleep 0.1; done
done
API=http://127.0.0.1:18091; H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
curl -sf "${H[@]}" -X POST $API/dids -d '{"numbers":["+12125550100","+12125550101"]}' >/dev/null
# A voicemail message (a campaign that plays a message to whoever answers abandons nobody).
AUD=$(curl -sf -H "Authorization: Bearer $KEY" -H "Content-Type: audio/mpeg" -X POST \
    --data-binary @audio-fixtures/prompts/voicemail-10s.mp3 "$API/audio/upload?name=vm.mp3" \
    | sed 's/.*"id":"\([^"]*\)".*/\1/')
CID=$(curl -sf "${H[@]}" -X POST $API/campaigns -d '{"name":"cluster","mode":{"calls_per_second":10,
    "voicemailAudioUrl":"/audio/'"$AUD"'/file"},"callerIds":["+12125550100","+12125550101"]}' \
    | sed 's/.*"id":"\([^"]*\)".*/\1/')
PREFIX=${PREFIX:-+8135550}  # Tokyo: inside its calling window 23:00-12:00 UTC
PHONES=$(python3 -c "import json; print(json.dumps({'phones': ['$PREFIX%04d' % i for i in range($N)]}))")
curl -sf "${H[@]}" -X POST "$API/campaigns/$CID/prospects" -d "$PHONES"; echo
curl -sf "${H[@]}" -X POST "$API/campaigns/$CID/start" >/dev/null
echo "campaign $CID: $N prospects at 10 calls/s over both nodes"
for _ in $(seq 90); do
    S=$(curl -sf "${H[@]}" "$API/campaigns/$CID/stats"); echo "$S"
    case "$S" in *"\"queued\":0,\"dialing\":0"*) break;; esac; sleep 2
done
curl -sf "${H[@]}" "$API/nodes"; echo
