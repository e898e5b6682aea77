"""Load generator for benchmarks/flood.py, run as its own process so its work does not share the show's
interpreter: chat POSTs to the local chat page and wrong panel tokens (a real token id with random
secrets) at fixed total rates over keep-alive connections, paced against an absolute schedule (what
falls behind it when the server answers slowly is not sent: `achieved_rate` says what was). A
connection the server closes is reopened. Prints a JSON summary per target.

usage: python benchmarks/flood_load.py CHAT_PORT CHAT_RATE PANEL_PORT TOKEN_RATE TOKEN_ID SECONDS
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable


class Target:
    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.errors = 0
        self.reconnects = 0

    def summary(self, elapsed: float) -> dict[str, object]:
        lat = sorted(self.latencies)
        sent = sum(self.counts.values())
        return {"counts": {str(k): v for k, v in sorted(self.counts.items())}, "answered": sent,
                "achieved_rate": round(sent / elapsed, 1), "errors": self.errors, "reconnects": self.reconnects,
                "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
                "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2) if lat else None}


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and "close" in value.lower():
            close = True
    await reader.readexactly(length)
    return int(status_line.split()[1]), close


async def worker(port: int, make: Callable[[], bytes], period: float, offset: float, t0: float, end: float,
                 target: Target) -> None:
    loop = asyncio.get_running_loop()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    k = 0
    while True:
        due = t0 + offset + k * period
        if due >= end or loop.time() >= end:  # a window lasts its seconds: requests behind schedule are not sent
            break
        k += 1
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                target.reconnects += 1
            assert reader is not None
            sent = loop.time()
            writer.write(make())
            status, close = await asyncio.wait_for(read_response(reader), 30)
            target.counts[status] += 1
            target.latencies.append(loop.time() - sent)
            if close:
                writer.close()
                writer = None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            target.errors += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def main() -> None:
    chat_port, chat_rate, panel_port, token_rate, token_id, seconds = sys.argv[1:7]
    duration = float(seconds)
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.3
    chat, tokens = Target("chat"), Target("tokens")
    n = [0]

    def chat_request() -> bytes:
        n[0] += 1
        body = json.dumps({"user": f"flood{n[0] % 50}", "text": f"flood message number {n[0]} hello there"}).encode()
        return (f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:{chat_port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def token_request() -> bytes:
        token = f"sc_{token_id}_{secrets.token_urlsafe(32)}"
        return (f"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1:{panel_port}\r\n"
                f"Authorization: Bearer {token}\r\n\r\n").encode()

    jobs = []
    for port, rate, conns, make, target in ((int(chat_port), float(chat_rate), 50, chat_request, chat),
                                            (int(panel_port), float(token_rate), 4, token_request, tokens)):
        if rate <= 0:
            continue
        period = conns / rate
        jobs += [worker(port, make, period, i * period / conns, t0, t0 + duration, target) for i in range(conns)]
    wall0 = time.time()
    await asyncio.gather(*jobs)
    elapsed = max(1e-6, loop.time() - t0)
    print(json.dumps({"chat": chat.summary(elapsed), "tokens": tokens.summary(elapsed), "elapsed_s": elapsed,
                      "wall_start": wall0, "wall_end": time.time()}))


if __name__ == "__main__":
    asyncio.run(main())
