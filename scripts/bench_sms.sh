#!/usr/bin/env bash
# The SMS pipeline over a real SMPP connection on loopback: `trunx serve` (API, store, sender)
# against the Perl carrier of the tests (tests/peers/smpp_carrier.pl), one campaign of N
# prospects with per-DID pacing out of the way, from the start request to the last receipt.
# Prints messages/s and the per-message submit -> receipt times from the messages list.
# Usage: scripts/bench_sms.sh [MESSAGES]   (needs `make deps` and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
perl tests/peers/smpp_carrier.pl --port 27750 --system-id bench --password b3nch \
    --receipt-delay-ms 20 > "$work/carrier.out" 2>&1 &
export TRUNX_DATABASE_URL="sqlite://$work/bench.db" TRUNX_API_ADDR=127.0.0.1:28080 \
    TRUNX_SMPP_ADDR=127.0.0.1:27750 TRUNX_SMPP_SYSTEM_ID=bench TRUNX_SMPP_PASSWORD=b3nch \
    TRUNX_SMS_DID_PER_HOUR=3600 TRUNX_SMS_MIN_GAP=0 TRUNX_SMS_GAP_JITTER=0 RUST_LOG=warn
key=$(./target/release/trunx keys create --name bench | tail -1)
./target/release/trunx serve > "$work/serve.log" 2>&1 &
sleep 1
# Numbers whose local time is inside the 07:00-19:00 SMS window now (with an hour of margin).
phones=$(python3 - "$n" <<'PY'
import datetime, json, sys, zoneinfo
n = int(sys.argv[1])
for prefix, zone in [("+1212555", "America/New_York"), ("+1415555", "America/Los_Angeles"),
                     ("+4420755", "Europe/London"), ("+6129255", "Australia/Sydney"),
                     ("+8135555", "Asia/Tokyo")]:
    hour = datetime.datetime.now(zoneinfo.ZoneInfo(zone)).hour
    if 8 <= hour < 18:
        print(json.dumps([f"{prefix}{i:04d}" for i in range(n)]))
        break
else:
    sys.exit("no bench zone is inside the SMS window now")
PY
)
api() { curl -s -H "Authorization: Bearer $key" -H "Content-Type: application/json" "$@"; }
id=$(api -X POST http://127.0.0.1:28080/campaigns -d '{"name":"bench","channel":"sms",
  "mode":{"message":"bench"},"callerIds":["+12125550100","+12125550101"]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api -X POST "http://127.0.0.1:28080/campaigns/$id/prospects" -d "{\"phones\": $phones}" >/dev/null
t0=$(date +%s.%N)
api -X POST "http://127.0.0.1:28080/campaigns/$id/start" >/dev/null
while :; do
    done_n=$(api "http://127.0.0.1:28080/campaigns/$id/stats" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["delivered"])')
    [ "$done_n" -ge "$n" ] && break
    sleep 0.1
done
t1=$(date +%s.%N)
cursor=""; : > "$work/messages.jsonl"
while :; do
    page=$(api "http://127.0.0.1:28080/campaigns/$id/messages?limit=1000${cursor:+&after=$cursor}")
    echo "$page" >> "$work/messages.jsonl"
    cursor=$(echo "$page" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nextCursor"] or "")')
    [ -z "$cursor" ] && break
done
python3 - "$work/messages.jsonl" "$t0" "$t1" "$n" <<'PY'
import datetime, json, sys
rows = [m for line in open(sys.argv[1]) for m in json.loads(line)["data"]]
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
round_trip = sorted(ts(m["receiptAt"]) - ts(m["createdAt"]) for m in rows)
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))]
elapsed = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"messages": len(rows), "delivered": sum(m["status"] == "delivered" for m in rows),
                  "seconds": round(elapsed, 2), "per_second": round(int(sys.argv[4]) / elapsed, 1),
                  "row_to_receipt_ms": {"p50": q(round_trip, .5), "p99": q(round_trip, .99)},
                  "carrier_receipt_delay_ms": 20}))
PY
