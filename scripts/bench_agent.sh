#!/usr/bin/env bash
# The agent bridge's two latencies over N real calls on loopback: sipp answers and says
# "hello", trunx decides `human` and hands the call to the Python test agent
# (tests/peers/agent.py), which speaks at once and says goodbye after 1.5 s.
#   handoff: `human` decision -> `start` written on the agent's socket
#   audio:   agent audio received -> its RTP packet sent (first packet of each talk spurt,
#            and audio that arrives into an empty queue while the agent streams)
# Usage: scripts/bench_agent.sh [CALLS]   (needs `make deps agent-venv` and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import sys, wave, struct
def ulaw(s):
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 132
    exp = max(e for e in range(8) if s >= (1 << (e + 7)))
    return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF
def convert(wav, out, start=0, end=None):
    w = wave.open("audio-fixtures/calls/" + wav)
    pcm = struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes()))[start:end]
    open(sys.argv[1] + "/" + out, "wb").write(bytes(ulaw(s) for s in pcm))
convert("0014-human_short.wav", "hello.ulaw")
convert("0076-machine_long.wav", "utterance.ulaw", 4000, 44000)
PY
sed "s#@AUDIO@#$work/hello.ulaw#" tests/peers/uas_stream.xml > "$work/uas.xml"
sipp -sf "$work/uas.xml" -i 127.0.0.1 -p 25070 -mi 127.0.0.1 -mp 25150 -m "$calls" -nostdin \
    >/dev/null 2>&1 &
.venv-agent/bin/python tests/peers/agent.py --port 25090 --utterance "$work/utterance.ulaw" \
    --log "$work/agent.jsonl" --close-after-ms 1500 &
sleep 1
for i in $(seq "$calls"); do
    TRUNX_SIP_ADDR=127.0.0.1:25062 TRUNX_RTP_PORTS=25000-25040 ./target/release/trunx dial +15551230000 \
        --from +15550001111 --trunk sip:127.0.0.1:25070 --agent-url ws://127.0.0.1:25090 --json \
        >> "$work/reports.jsonl"
done
python3 - "$work/reports.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bridged = [r["agent_stats"] for r in rows if r.get("agent_stats") and r["agent_stats"]["handoff_ms"] is not None]
h = sorted(s["handoff_ms"] for s in bridged)
a = [s["audio_latency_ms"] for s in bridged if s["audio_latency_ms"]]
def pct(v, q):
    return v[min(len(v) - 1, max(0, -(-int(q * len(v) * 1000) // 1000) - 1))]
print(json.dumps({
    "calls": len(rows), "bridged": len(bridged),
    "handoff_ms": {"p50": pct(h, .5), "p95": pct(h, .95), "max": h[-1]},
    "audio_latency_ms": {"per_call_p50_median": sorted(x["p50"] for x in a)[len(a) // 2],
                         "max": max(x["max"] for x in a),
                         "samples": sum(x["count"] for x in a)},
}))
PY
