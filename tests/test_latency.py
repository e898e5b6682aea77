"""Chat -> first audible sample through the real director, real espeak voice and a real timeline pulled
on the live clock (benchmarks/harness.py). The first sentence is scheduled as soon as it is complete,
so the budget is the brain's time to first token plus at most 150 ms."""

import asyncio

import pytest

from benchmarks.harness import RealtimePuller, measure_chat_latency
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.director import build_director
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration
TB = TimeBase(30, 48000)
TTFT_S = 0.2


def chats(n: int) -> list[ChatMessage]:
    return [ChatMessage("test", f"viewer{i}", "hello!", user_id=f"u{i}", language="en") for i in range(n)]


async def run_turns(brain, n: int):
    voice = EspeakVoice(sample_rate=TB.sample_rate)
    voice.prewarm()
    timeline = Timeline(TB)
    director = build_director(timeline, brain, voice, Moderator(300, []), "Aiko", cooldown_s=0)
    puller = RealtimePuller(timeline)
    puller.start()
    runner = asyncio.create_task(director.run())
    try:
        return await measure_chat_latency(director, puller, chats(n))
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        puller.stop()


# A short first sentence, then far more text than the server can stream before the interrupt (about
# 12 s at 50 tokens/s), so "each stream was closed mid-way" holds however slow the machine is.
LONG_REPLY = "[joy] Hi there! " + " ".join(["I have so much to tell you about today's stream."] * 60)


def test_openai_brain_first_audio_within_ttft_plus_150ms():
    async def main():
        async with FakeOpenAIServer(ttft_s=TTFT_S, tokens_per_s=50, reply=LONG_REPLY) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            stats = await run_turns(brain, 8)
            await brain.aclose()
            # every turn was interrupted right after its first sound: each stream was closed
            for record in server.requests:
                await asyncio.wait_for(record.disconnected.wait(), 10)
            return stats, server.requests

    stats, requests = asyncio.run(main())
    assert len(requests) == 8
    assert all(not r.completed for r in requests)
    assert min(stats.samples_ms) >= TTFT_S * 1000  # sanity: nothing is heard before the first token
    assert stats.median_ms <= TTFT_S * 1000 + 150, stats.samples_ms


def test_scripted_brain_first_audio_within_150ms():
    stats = asyncio.run(run_turns(ScriptedBrain("Aiko"), 8))
    assert stats.median_ms <= 150, stats.samples_ms
