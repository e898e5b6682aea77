"""Chat message in -> first audio sample out, over N turns per brain/voice pair.

The real director, moderator, chunker, voice and timeline; a thread pulls frames on the live clock
(see benchmarks/harness.py).  Each turn is interrupted right after its first sound.  Pairs:
scripted+espeak, scripted+piper (when the piper extra is installed), openai-fake (TTFT 200 ms,
50 tokens/s, a local OpenAI-compatible server) + espeak.

    python benchmarks/latency.py [--turns 100]   ->  benchmarks/results/latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import RealtimePuller, measure_chat_latency
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.timeline import Timeline
from engine.voice.base import VoiceError
from engine.voice.espeak import EspeakVoice
from streamer.director import build_director
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from tests.fakes.openai_server import FakeOpenAIServer

TB = TimeBase(30, 48000)
TEXTS = ["hello!", "how are you?", "what's your name?", "do you like music?", "wow that's cool", "I had a bad day"]
TARGETS_MS = {"scripted+espeak": 150.0, "openai-fake+espeak": 350.0}


def messages(n: int) -> list[ChatMessage]:
    return [ChatMessage("bench", f"viewer{i % 17}", TEXTS[i % len(TEXTS)], user_id=f"u{i % 17}") for i in range(n)]


async def run_pair(brain, voice, turns: int) -> dict:
    timeline = Timeline(TB)
    director = build_director(timeline, brain, voice, Moderator(300, []), "Aiko", cooldown_s=0)
    puller = RealtimePuller(timeline)
    puller.start()
    runner = asyncio.create_task(director.run())
    try:
        stats = await measure_chat_latency(director, puller, messages(turns))
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        puller.stop()
        await director.aclose()
    return {"median_ms": round(stats.median_ms, 1), "p95_ms": round(stats.p95_ms, 1),
            "max_ms": round(max(stats.samples_ms), 1), "turns": turns, "late_frames": puller.late_frames}


async def main(turns: int) -> dict:
    espeak = EspeakVoice(sample_rate=TB.sample_rate)
    espeak.prewarm()
    runs = []
    result = await run_pair(ScriptedBrain("Aiko"), espeak, turns)
    runs.append({"brain": "scripted", "voice": "espeak", **result})
    try:
        from engine.voice.piper import PiperVoice

        piper = PiperVoice(sample_rate=TB.sample_rate, timing_voice=espeak)
        piper.prewarm()
        result = await run_pair(ScriptedBrain("Aiko"), piper, turns)
        runs.append({"brain": "scripted", "voice": "piper", **result})
    except VoiceError as exc:
        print(f"skipping piper: {exc}", file=sys.stderr)
    async with FakeOpenAIServer(ttft_s=0.2, tokens_per_s=50) as server:
        brain = OpenAICompatBrain(server.base_url, "fake")
        result = await run_pair(brain, espeak, turns)
        await brain.aclose()
        disconnects = sum(r.disconnected.is_set() for r in server.requests)
    runs.append({"brain": "openai-fake(ttft=200ms,50tok/s)", "voice": "espeak", **result,
                 "streams_closed_on_interrupt": disconnects})
    return {"runs": runs, "targets_ms": TARGETS_MS, "machine": {"cpus": __import__("os").cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latency.json")
    args = parser.parse_args()
    report = asyncio.run(main(args.turns))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for run in report["runs"]:
        print(f"{run['brain']:>34} + {run['voice']:<7} median {run['median_ms']:7.1f} ms  p95 {run['p95_ms']:7.1f} ms")
