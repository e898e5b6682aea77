"""Load generator for the panel's rate-limit test, run as a separate process so its CPU work does not
share the show's interpreter (GIL). Sends GET requests at a fixed total rate over keep-alive
connections, paced against an absolute schedule, and prints a JSON summary of status codes.

usage: PANEL_TOKEN=... python tests/panel_load.py HOST PORT PATH RATE SECONDS CONNECTIONS
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter


async def worker(host: str, port: int, path: str, token: str, period: float, offset: float, t0: float,
                 end: float, counts: Counter[int], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    k = 0
    try:
        while True:
            due = t0 + offset + k * period
            if due >= end:
                return
            k += 1
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = loop.time()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            counts[int(status_line.split()[1])] += 1
            latencies.append(loop.time() - sent)
    finally:
        writer.close()


async def main() -> None:
    host, port, path, rate, seconds, conns = sys.argv[1:7]
    token = os.environ["PANEL_TOKEN"]
    total_rate, duration, n = float(rate), float(seconds), int(conns)
    counts: Counter[int] = Counter()
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    period = n / total_rate
    wall0 = time.time() + 0.2
    await asyncio.gather(*(worker(host, int(port), path, token, period, i * period / n, t0, t0 + duration, counts,
                                  latencies) for i in range(n)))
    elapsed = loop.time() - t0
    latencies.sort()
    print(json.dumps({
        "counts": {str(k): v for k, v in counts.items()},
        "sent": sum(counts.values()),
        "elapsed_s": elapsed,
        "achieved_rate": sum(counts.values()) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "wall_start": wall0,
        "wall_end": time.time(),
    }))


if __name__ == "__main__":
    asyncio.run(main())
