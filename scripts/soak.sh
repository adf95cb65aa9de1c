#!/usr/bin/env bash
# scripts/soak.sh MINUTES: `trunx serve` dials a campaign against `trunx carrier-sim` while it is
# killed with SIGKILL and restarted every 20-60 s (random). At the end, from the carrier's own
# INVITE count per number and the API:
#   - 0 prospects dialled twice (no number reached the carrier in two new INVITEs; no retries);
#   - 0 outcomes lost (every number the carrier saw is a prospect with a final status and one
#     attempt, every prospect with an attempt reached the carrier);
#   - the stats invariants hold exactly (total = queued + dialing + sending + sent + completed +
#     cancelled, completed = noAnswer + busy + voicemail + humanConnected + failed + delivered)
#     and match the prospects listed;
#   - RSS flat: the server's RSS sampled before each kill, first vs last.
# Figures go to stdout and $SOAK_DIR/report.json. Exit 0 only when every check holds.
set -euo pipefail
MINUTES=${1:?usage: scripts/soak.sh MINUTES}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TRUNX_BIN:-$ROOT/target/release/trunx}
CPS=${SOAK_CPS:-3}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl missing: apt-get install -y curl" >&2; exit 2; }
DIR=${SOAK_DIR:-$(mktemp -d /tmp/trunx-soak.XXXXXX)}
mkdir -p "$DIR"
BASE=${SOAK_PORT_BASE:-27000}
SIM_PORT=$BASE; API_PORT=$((BASE + 1)); HTTP_PORT=$((BASE + 2)); SIP_PORT=$((BASE + 3))
API=http://127.0.0.1:$API_PORT
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The simulated carrier: humans, machines with and without beep, busy, no answer, invalid.
"$BIN" carrier-sim --listen 127.0.0.1:$SIM_PORT --seed 11 \
    --mix human=35,machine_beep=30,machine_nobeep=5,busy=10,no_answer=10,invalid=10 \
    --rtp-ports $((BASE + 100))-$((BASE + 999)) --answer-ms 500-2500 --ring-cap-secs 20 \
    --max-call-secs 60 >"$DIR/sim.out" 2>"$DIR/sim.err" &
SIM_PID=$!; PIDS+=($SIM_PID)
# The voicemail message over HTTP on loopback.
(cd "$ROOT/audio-fixtures/prompts" && exec python3 -m http.server $HTTP_PORT --bind 127.0.0.1) \
    >"$DIR/http.log" 2>&1 &
PIDS+=($!)

# One caller ID carries the whole run: lift its hourly/daily caps (default 30/h, 100/day) and
# never pull it for a poor answer rate, so the soak measures restarts, not caller-ID policy.
cat >"$DIR/caller_id.toml" <<'TOML'
max_calls_per_hour = 1000000
max_calls_per_day = 10000000
healthy_min = 0.0
pulled_below = 0.0
TOML
export TRUNX_CALLER_ID_POLICY=$DIR/caller_id.toml
export TRUNX_DATABASE_URL=sqlite://$DIR/soak.db TRUNX_API_ADDR=127.0.0.1:$API_PORT \
    TRUNX_SIP_ADDR=127.0.0.1:$SIP_PORT TRUNX_RTP_PORTS=$((BASE + 1000))-$((BASE + 2999)) \
    TRUNX_TRUNK_URI=sip:127.0.0.1:$SIM_PORT TRUNX_TRUNK_MAX_CPS=$CPS TRUNX_RING_TIMEOUT=15 \
    TRUNX_FETCH_ALLOW_PRIVATE=true TRUNX_LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn}
KEY=$("$BIN" keys create --name soak 2>/dev/null | tail -1)
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")

SERVE_PID=
start_serve() {
    "$BIN" serve >>"$DIR/serve.log" 2>&1 &
    SERVE_PID=$!; PIDS+=($SERVE_PID)
    for _ in $(seq 100); do curl -sf "${H[@]}" "$API/campaigns" >/dev/null && return 0; sleep 0.1; done
    echo "trunx serve did not come up, see $DIR/serve.log" >&2; exit 1
}
start_serve

# Numbers inside their calling window (08:00-21:00 local) for the whole run.
need=$((CPS * 60 * MINUTES + 600))
phones=$(python3 - "$need" "$MINUTES" <<'PY'
import sys, datetime, zoneinfo
need, minutes = int(sys.argv[1]), int(sys.argv[2])
blocks = [("+1212555","America/New_York"),("+1213555","America/Los_Angeles"),("+4420794","Europe/London"),
          ("+4930901","Europe/Berlin"),("+9714555","Asia/Dubai"),("+9122610","Asia/Kolkata"),
          ("+6565550","Asia/Singapore"),("+8135550","Asia/Tokyo"),("+6128555","Australia/Sydney"),
          ("+6493555","Pacific/Auckland"),("+5511355","America/Sao_Paulo")]
now = datetime.datetime.now(datetime.timezone.utc)
def open_for(tz):
    for m in (0, minutes + 15):
        t = (now + datetime.timedelta(minutes=m)).astimezone(zoneinfo.ZoneInfo(tz))
        if not (8 <= t.hour < 21): return False
    return True
ok = [b for b, tz in blocks if open_for(tz)]
if not ok: sys.exit("no number block is inside its calling window for the whole run")
out = [f"{ok[i % len(ok)]}{i // len(ok):04d}" for i in range(min(need, 10000 * len(ok)))]
print(",".join(f'"{p}"' for p in out[:10000]))
PY
)
camp=$(curl -sf "${H[@]}" -X POST "$API/campaigns" -d "{\"name\":\"soak\",\"mode\":{\"voicemailAudioUrl\":\"http://127.0.0.1:$HTTP_PORT/voicemail-10s.mp3\",\"calls_per_second\":$CPS,\"max_retries\":0},\"callerIds\":[\"+12125550100\"]}")
CID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$camp")
curl -sf "${H[@]}" -X POST "$API/campaigns/$CID/prospects" -d "{\"phones\":[${phones}]}" >/dev/null
curl -sf "${H[@]}" -X POST "$API/campaigns/$CID/start" >/dev/null
echo "soak: $MINUTES min, campaign $CID at $CPS cps, dir $DIR"

END=$(( $(date +%s) + MINUTES * 60 ))
KILLS=0; RSS=()
while :; do
    left=$(( END - $(date +%s) ))
    [ "$left" -le 0 ] && break
    nap=$(( 20 + RANDOM % 41 ))
    [ "$nap" -gt "$left" ] && { sleep "$left"; break; }
    sleep "$nap"
    RSS+=("$(awk '/VmRSS/{print $2}' /proc/$SERVE_PID/status)")
    kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    KILLS=$((KILLS + 1))
    start_serve
done
# Let the calls in flight end, then stop everything cleanly.
curl -sf "${H[@]}" -X POST "$API/campaigns/$CID/pause" >/dev/null || true
for _ in $(seq 120); do
    d=$(curl -sf "${H[@]}" "$API/campaigns/$CID/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dialing"])')
    [ "$d" = 0 ] && break; sleep 1
done
RSS+=("$(awk '/VmRSS/{print $2}' /proc/$SERVE_PID/status)")
curl -sf "${H[@]}" "$API/campaigns/$CID/stats" >"$DIR/stats.json"
: >"$DIR/prospects.jsonl"; cursor=
while :; do
    page=$(curl -sf "${H[@]}" "$API/campaigns/$CID/prospects?limit=1000${cursor:+&cursor=$cursor}")
    echo "$page" >>"$DIR/prospects.jsonl"
    cursor=$(printf '%s' "$page" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("nextCursor") or "")')
    [ -z "$cursor" ] && break
done
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
kill -INT "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true

python3 - "$DIR" "$MINUTES" "$KILLS" "${RSS[*]}" <<'PY'
import json, sys
d, minutes, kills, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(x) for x in sys.argv[4].split()]
sim = json.loads(open(f"{d}/sim.out").read().strip().splitlines()[-1])
stats = json.load(open(f"{d}/stats.json"))
prospects = [p for line in open(f"{d}/prospects.jsonl") for p in json.loads(line)["data"]]
invites = sim["invites_by_number"]
by_phone = {p["phone"]: p for p in prospects}
twice = sorted(n for n, c in invites.items() if c > 1)
final = {"completed", "cancelled"}
lost = sorted(n for n in invites if n not in by_phone or by_phone[n]["status"] not in final)
attempted = [p for p in prospects if p["attempts"] > 0]
never_reached = sorted(p["phone"] for p in attempted if p["phone"] not in invites)
multi_attempt = sorted(p["phone"] for p in attempted if p["attempts"] > 1)
s = stats
inv = (s["total"] == s["queued"] + s["dialing"] + s["sending"] + s["sent"] + s["completed"] + s["cancelled"]
       and s["completed"] == s["noAnswer"] + s["busy"] + s["voicemail"] + s["humanConnected"] + s["failed"] + s["delivered"])
count = lambda st: sum(1 for p in prospects if p["status"] == st)
listed = (s["total"] == len(prospects) and s["queued"] == count("queued") and s["completed"] == count("completed")
          and s["dialing"] == 0)
rss_flat = len(rss) >= 2 and rss[-1] <= max(rss[0] * 1.5, rss[0] + 32768)
report = {"minutes": minutes, "kills": kills, "carrier_invites": sum(invites.values()),
          "numbers_invited": len(invites), "dialled_twice": len(twice), "outcomes_lost": len(lost),
          "attempted_not_reaching_carrier": len(never_reached), "multi_attempt": len(multi_attempt),
          "stats": stats, "stats_invariants": inv, "stats_match_prospects": listed,
          "rss_kb_first": rss[0] if rss else None, "rss_kb_last": rss[-1] if rss else None,
          "rss_kb_max": max(rss) if rss else None, "rss_flat": rss_flat,
          "carrier": {k: sim[k] for k in ("calls", "answered", "cancelled", "bye_received", "ack_timeouts", "unknown_dialog", "invite_retransmissions")},
          "examples": {"twice": twice[:5], "lost": lost[:5], "never_reached": never_reached[:5]}}
json.dump(report, open(f"{d}/report.json", "w"), indent=1)
print(json.dumps(report, indent=1))
ok = not twice and not lost and not never_reached and not multi_attempt and inv and listed and rss_flat
print("SOAK", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
