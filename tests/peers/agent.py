#!/usr/bin/env python3
"""A test voice agent speaking Twilio Media Streams v1 over Python's `websockets` (PyPI).

It is the independent far side of trunx's agent bridge in tests/agent_python.rs: another
websocket implementation, another language, written from the published protocol.

On `start` it speaks an utterance (raw 8 kHz mu-law bytes from --utterance), sent as fast as
the socket takes it, as agents do, in 20 ms `media` messages, then a `mark`. What it does
next is chosen by flags:
  --clear-after-ms N   send `clear` N ms after `start` (barge-in)
  --close-after-ms N   close the socket (code 1000) N ms after `start`
  --drop-after-ms N    drop the TCP connection without a close frame N ms after `start`,
                       on the first connection only (an outage: trunx should reconnect)
  --garbage            also send messages that are not the protocol
  --refuse N           refuse the first N connection attempts (HTTP 503)
  --accept-delay-ms N  answer each opening handshake N ms late (a slow agent)
Every event received is logged as one JSON line with its arrival time (--log).
"""

import argparse
import asyncio
import base64
import json
import time

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--utterance", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--clear-after-ms", type=int)
    p.add_argument("--close-after-ms", type=int)
    p.add_argument("--drop-after-ms", type=int)
    p.add_argument("--garbage", action="store_true")
    p.add_argument("--refuse", type=int, default=0)
    p.add_argument("--accept-delay-ms", type=int, default=0)
    args = p.parse_args()
    utterance = open(args.utterance, "rb").read()
    log = open(args.log, "a", buffering=1)
    state = {"connections": 0, "refused": 0}

    def note(**fields):
        fields["t"] = time.monotonic()
        log.write(json.dumps(fields) + "\n")

    async def refuse(connection, request):
        note(event="_request")
        if state["refused"] < args.refuse:
            state["refused"] += 1
            note(event="_refused", n=state["refused"])
            return Response(503, "Service Unavailable", Headers(), b"busy\n")
        if args.accept_delay_ms:
            await asyncio.sleep(args.accept_delay_ms / 1000)
            note(event="_accepting")
        return None

    async def later(ms, action):
        await asyncio.sleep(ms / 1000)
        await action()

    async def handle(ws):
        state["connections"] += 1
        connection = state["connections"]
        note(event="_connection", n=connection,
             authorization=ws.request.headers.get("Authorization"))
        sid = None
        tasks = []
        try:
            async for text in ws:
                msg = json.loads(text)
                event = msg.get("event")
                entry = {"event": event, "connection": connection}
                if event == "media":
                    m = msg["media"]
                    entry.update(chunk=m["chunk"], timestamp=m["timestamp"],
                                 track=m["track"], bytes=len(base64.b64decode(m["payload"])))
                elif event == "start":
                    entry["start"] = msg["start"]
                    entry["streamSid"] = msg["streamSid"]
                elif event in ("mark", "dtmf", "stop", "connected"):
                    entry[event] = msg.get(event) or msg
                note(**entry)
                if event != "start":
                    continue
                sid = msg["streamSid"]
                for i in range(0, len(utterance), 160):
                    chunk = utterance[i:i + 160]
                    await ws.send(json.dumps({
                        "event": "media", "streamSid": sid,
                        "media": {"payload": base64.b64encode(chunk).decode()}}))
                await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                          "mark": {"name": "utterance-end"}}))
                note(event="_spoke", bytes=len(utterance), connection=connection)
                if args.garbage:
                    await ws.send("this is not json")
                    await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                              "media": {"payload": "%%%not base64%%%"}}))
                if args.clear_after_ms is not None:
                    async def clear():
                        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
                        note(event="_cleared", connection=connection)
                    tasks.append(asyncio.create_task(later(args.clear_after_ms, clear)))
                if args.close_after_ms is not None:
                    async def close():
                        note(event="_closing", connection=connection)
                        await ws.close(1000, "goodbye")
                    tasks.append(asyncio.create_task(later(args.close_after_ms, close)))
                if args.drop_after_ms is not None and connection == 1:
                    async def drop():
                        note(event="_dropping", connection=connection)
                        ws.transport.abort()
                    tasks.append(asyncio.create_task(later(args.drop_after_ms, drop)))
        except Exception as e:  # the connection went away: log it, keep serving
            note(event="_error", error=repr(e), connection=connection)
        finally:
            # The closing handshake as the agent's library saw it: the close frame the
            # caller answered with (None when the connection just ended without one).
            rcvd = ws.protocol.close_rcvd
            note(event="_closed", connection=connection,
                 close_rcvd=rcvd.code if rcvd is not None else None)

    async def run():
        async with serve(handle, "127.0.0.1", args.port, process_request=refuse,
                         max_size=2 ** 20):
            note(event="_listening", port=args.port)
            await asyncio.Future()

    asyncio.run(run())


if __name__ == "__main__":
    main()
