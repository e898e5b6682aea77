"""Chat ingestion benchmark: a local EventSub server (separate process) sends 2,000 chat messages/s
for 60 s over a real WebSocket; the Twitch adapter parses them, moderation checks each one
(every rule on), accepted ones are offered to the turn scheduler (its turn loop is not started, so
turns only queue). Reports ingestion -> queue latency (server send timestamp to the end of
`scheduler.offer`), memory growth and losses.

    python benchmarks/chat.py [--rate 2000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.clock import WallClock
from streamer.chat.twitch import TwitchEventSubSource
from streamer.config import ModerationRulesConfig, ReplyPolicyConfig, TwitchSourceConfig
from streamer.moderation import Moderator
from streamer.scheduler import TurnScheduler
from tests.fakes.twitch_eventsub import CLIENT_ID, TOKEN

RESULTS = Path(__file__).resolve().parent / "results" / "chat.json"
REPO = str(Path(__file__).resolve().parent.parent)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(rate: float, seconds: float) -> dict[str, object]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.twitch_eventsub", "--rate", str(rate), "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE, cwd=REPO)
    assert server.stdout is not None
    port = int((await server.stdout.readline()).decode())
    cfg = TwitchSourceConfig(type="twitch", broadcaster_id="42", user_id="7", eventsub_url=f"ws://127.0.0.1:{port}/ws",
                             helix_url=f"http://127.0.0.1:{port}/helix", oauth_url=f"http://127.0.0.1:{port}/oauth2",
                             subscriptions=False, raids=False,
                             queue_size=10_000)
    source = TwitchEventSubSource(cfg, env={"TWITCH_TOKEN": TOKEN, "TWITCH_CLIENT_ID": CLIENT_ID})
    moderator = Moderator(rules=ModerationRulesConfig(banned_words=["badword", "scam", "坏蛋"], languages=[]))
    scheduler = TurnScheduler(ReplyPolicyConfig(answer_one_in=5), "Aiko", WallClock(), queue_cap=20)
    latencies: list[float] = []
    rules: Counter[str] = Counter()
    received = accepted = queued = 0
    rss_start = rss_peak = 0.0
    t_start = time.monotonic()
    async for msg in source.messages():
        if msg.text == "END":
            break
        received += 1
        decision = moderator.check_message(msg)
        rules[decision.rule or "accepted"] += 1
        if decision.accepted:
            accepted += 1
            if scheduler.offer(msg).accepted:
                queued += 1
        latencies.append((time.time() - msg.timestamp) * 1000)
        if received == int(rate * 5):
            rss_start = rss_mb()
        if received % 10_000 == 0:
            rss_peak = max(rss_peak, rss_mb())
    elapsed = time.monotonic() - t_start
    rss_end = rss_mb()
    await server.wait()
    sent = int(rate * seconds)
    steady = latencies[int(rate * 2):]  # skip connection set-up and lingua's first model loads
    return {
        "rate_per_s": rate, "seconds": seconds, "sent": sent, "received": received,
        "adapter_dropped": source._queue.dropped, "duplicates": source.duplicates,
        "accepted": accepted, "queued_for_reply": queued, "turn_queue": len(scheduler),
        "turns_dropped": scheduler.dropped, "sampled_out": scheduler.sampled_out, "rules": dict(rules),
        "lost": sent - received + source._queue.dropped,
        "p50_ms": round(percentile(steady, 0.5), 2), "p99_ms": round(percentile(steady, 0.99), 2),
        "max_ms": round(max(steady), 2) if steady else None,
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
        "rss_peak_mb": round(max(rss_peak, rss_end), 1),
        "rss_growth_mb": round(rss_end - rss_start, 1), "wall_s": round(elapsed, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
