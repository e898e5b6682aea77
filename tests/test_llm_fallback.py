"""The `openai` brain failing gracefully: the sentence on air finishes, a cover line follows, the
scripted brain stands in while the server is down, and the LLM is back soon after the server is.

Real director, espeak voice and timeline; the LLM endpoint is the local fake speaking the OpenAI wire
format (tests/fakes/openai_server.py), killed and restarted on the same port."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from engine.brain.fallback import FallbackBrain
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.persona import COVER_LINES
from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.lifecycle import cancel_and_wait
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.director import build_director
from streamer.events import ChatMessage, HealthStatus
from streamer.health import HealthBoard, watch_llm
from streamer.moderation import Moderator
from tests.fakes.openai_server import FakeOpenAIServer
from tests.test_director import Puller

pytestmark = pytest.mark.integration
TB = TimeBase(30, 48000)
REPLY = "[joy] Hi there friend! " + " ".join(["Here is one more sentence of a long answer."] * 12)


def chat(text: str, user: str) -> ChatMessage:
    return ChatMessage(platform="test", user_name=user, user_id=user, text=text, language="en")


async def answered(director, text: str, user: str):
    turn = director.submit_chat(chat(text, user))
    assert turn is not None
    return await asyncio.wait_for(asyncio.shield(turn.done), 30)


def test_server_killed_mid_reply_then_restarted(caplog):
    caplog.set_level(logging.INFO)

    async def main():
        server = FakeOpenAIServer(ttft_s=0.01, tokens_per_s=15, reply=REPLY)
        await server.__aenter__()
        port = server.port
        llm = OpenAICompatBrain(server.base_url, "fake", connect_timeout_s=1.0)
        brain = FallbackBrain(llm, ScriptedBrain("Aiko"), recheck_s=0.5, probe_timeout_s=1.0)
        health = HealthBoard()
        watch_llm(brain, health)
        director = build_director(Timeline(TB), brain, EspeakVoice(sample_rate=48000), Moderator(300, []), "Aiko",
                                  cooldown_s=0, health=health)
        puller = Puller(director.timeline)
        tasks = [asyncio.create_task(director.run()), asyncio.create_task(puller.run())]
        try:
            first = director.submit_chat(chat("tell me a long story", "alex"))
            await asyncio.wait_for(first.speaking.wait(), 20)  # "Hi there friend!" is on air
            await server.kill()
            await asyncio.wait_for(asyncio.shield(first.done), 30)
            llm_health = health.get("llm")
            second = await answered(director, "hello!", "sam")
            used_second = brain.used[-1]
            # the server comes back on the same port: the LLM answers again within 10 s
            server = FakeOpenAIServer(ttft_s=0.01, tokens_per_s=200, port=port)
            await server.__aenter__()
            back_at = time.monotonic()
            while True:
                later = await answered(director, f"are you back? {time.monotonic()}", "kim")
                if brain.used[-1] == "primary" or time.monotonic() - back_at > 15:
                    break
                await asyncio.sleep(0.2)
            recovered_s = time.monotonic() - back_at
            return first, llm_health, second, used_second, later, recovered_s, health, list(director.history)
        finally:
            await cancel_and_wait(*tasks)
            await brain.aclose()
            await director.aclose()
            await server.__aexit__()

    first, llm_health, second, used_second, later, recovered_s, health, history = asyncio.run(main())
    cover = "Oops, my thoughts got tangled, one sec!"
    assert cover in COVER_LINES["en"]
    # the sentence on air finished, the half-written one was dropped, the cover line followed
    assert first.status == "failed"
    assert first.played_text == f"Hi there friend! {cover}", first.played_text
    assert llm_health is not None and llm_health.status == HealthStatus.DEGRADED
    assert "scripted brain" in llm_health.detail
    # the next message: the scripted fallback
    assert used_second == "fallback" and second.status == "done"
    assert "sam" in second.played_text and ("Welcome" in second.played_text or "great to see" in second.played_text)
    # back to the LLM within 10 s of the restart
    assert later.status == "done" and "Thanks for coming by" in later.played_text
    assert recovered_s < 10, recovered_s
    assert health.get("llm").status == HealthStatus.OK
    # history keeps what was said (without the cover line)
    assert history[0].text == "tell me a long story" and history[1].text == "Hi there friend!"
    # expected failures are one log line each, never a traceback
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert any("the brain failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("mode", "why"), [("http500", "HTTP 500"), ("http429", "too many requests"),
                                           ("http404", "not found")])
def test_a_failed_turn_that_said_nothing_leaves_no_history(caplog, mode, why):
    caplog.set_level(logging.INFO)

    async def main():
        server = FakeOpenAIServer(mode=mode)
        async with server:
            llm = OpenAICompatBrain(server.base_url, "fake", connect_timeout_s=1.0)
            director = build_director(Timeline(TB), llm, EspeakVoice(sample_rate=48000), Moderator(300, []),
                                      "Aiko", cooldown_s=0)
            puller = Puller(director.timeline)
            tasks = [asyncio.create_task(director.run()), asyncio.create_task(puller.run())]
            try:
                turn = await answered(director, "hello?", "alex")
            finally:
                await cancel_and_wait(*tasks)
                await llm.aclose()
                await director.aclose()
            return turn, list(director.history)

    turn, history = asyncio.run(main())
    assert turn.status == "failed"
    assert turn.played_text == "Oops, my thoughts got tangled, one sec!"  # the cover line alone
    assert history == []  # the unanswered message would make the model answer it next time
    failed = [r.getMessage() for r in caplog.records if "the brain failed" in r.getMessage()]
    assert len(failed) == 1 and why in failed[0] and "\n" not in failed[0]
    assert not [r for r in caplog.records if r.exc_info]  # an expected failure: no traceback
