"""The `openai` brain against a real llama-cpp-python server on loopback with the PyPI GGUF (270M Gemma).

Slow (the server reads prompts at ~30-100 tokens/s on 2 cores) and it needs llama-cpp-python, which
compiles llama.cpp (~9 min): skipped with the reason when it is not installed; `scripts/test.sh --slow`
installs it and runs these.  Real director, espeak voice, timeline; prefix-cache hits are read from the
server's log (tests/llama_server.py says how)."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.brain.fallback import FallbackBrain
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.lifecycle import cancel_and_wait
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.cli.llm_check import check_llm
from streamer.config.character import OpenAIBrainConfig
from streamer.director import build_director
from streamer.events import ChatMessage
from streamer.health import HealthBoard, watch_llm
from streamer.moderation import Moderator
from tests.llama_server import MODEL_ALIAS, LlamaServer, missing
from tests.test_director import Puller

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(missing() is not None, reason=str(missing()))]
TB = TimeBase(30, 48000)
MESSAGES = [
    "hello!", "how are you today?", "what is your favourite food?", "do you like music?", "tell me a joke",
    "what games do you play?", "i just got home from work", "what's the weather like there?", "do you have a pet?",
    "what should I cook tonight?", "any movie recommendations?", "i'm learning guitar", "what's your name again?",
    "do you sleep?", "what's your favourite colour?", "i love this stream", "can you sing?",
    "what time is it there?", "what do you think about cats?", "good night!",
]


def make_brain(base_url: str, max_tokens: int = 40) -> tuple[OpenAICompatBrain, FallbackBrain]:
    # generous deadlines: the 2-core machine is shared; this test is about replies and the cache, not speed
    llm = OpenAICompatBrain(base_url, MODEL_ALIAS, system_mode="fold", max_tokens=max_tokens, temperature=0.7,
                            first_token_s=30, first_token_per_1k_s=90, max_first_token_s=120, between_tokens_s=30,
                            connect_timeout_s=2)
    return llm, FallbackBrain(llm, ScriptedBrain("Aiko"), recheck_s=0.5, probe_timeout_s=2)


def make_director(brain, health: HealthBoard | None = None):
    return build_director(Timeline(TB), brain, EspeakVoice(sample_rate=48000), Moderator(300, []), "Aiko",
                          cooldown_s=0, health=health or HealthBoard(), brain_timeout_s=120)


def chat(i: int, text: str) -> ChatMessage:
    user = f"viewer{i % 4}"
    return ChatMessage(platform="test", user_name=user, user_id=user, text=text, language="en")


def test_twenty_turns_are_spoken_and_the_prefix_cache_keeps_hitting(tmp_path):
    async def main(server: LlamaServer):
        config = OpenAIBrainConfig(base_url=server.base_url, model=MODEL_ALIAS, system_mode="system")
        checked = await check_llm(config, chat=True)
        llm, brain = make_brain(server.base_url)
        director = make_director(brain)
        puller = Puller(director.timeline)
        tasks = [asyncio.create_task(director.run()), asyncio.create_task(puller.run())]
        turns, caches = [], []
        try:
            for i, text in enumerate(MESSAGES):
                offset = server.log_offset()
                turn = director.submit_chat(chat(i, text))
                assert turn is not None
                await asyncio.wait_for(asyncio.shield(turn.done), 240)
                turns.append(turn)
                caches.append(server.cache_since(offset))
        finally:
            await cancel_and_wait(*tasks)
            await brain.aclose()
            await director.aclose()
        return checked, turns, caches, brain, llm

    with LlamaServer(tmp_path / "server.log") as server:
        checked, turns, caches, brain, llm = asyncio.run(main(server))
    # `stagecast check --chat` sees that the gemma chat format drops system messages
    assert checked.ok and any("drops system messages" in line for line in checked.lines), checked.lines
    assert [t.status for t in turns] == ["done"] * 20, [(t.status, t.played_text) for t in turns]
    assert all(t.played_text.strip() for t in turns), [t.played_text for t in turns]
    assert brain.used == ["primary"] * 20
    assert llm.builder.counter.remote_calls > 0  # counted with the server's tokenizer
    later = caches[5:]
    hit_rate = sum(c.hit for c in later) / len(later)
    reused = sum(c.reused for c in later) / max(1, sum(c.total for c in later))
    assert hit_rate > 0.8 and reused > 0.8, [(c.reused, c.read) for c in caches]


def test_real_server_killed_mid_reply_falls_back_and_comes_back(tmp_path):
    async def main(server: LlamaServer):
        health = HealthBoard()
        _, brain = make_brain(server.base_url, max_tokens=160)
        watch_llm(brain, health)
        director = make_director(brain, health)
        puller = Puller(director.timeline)
        tasks = [asyncio.create_task(director.run()), asyncio.create_task(puller.run())]
        try:
            first = director.submit_chat(chat(0, "Tell me a very long story about dragons, castles and knights."))
            await asyncio.wait_for(first.speaking.wait(), 120)  # a sentence is on air
            await asyncio.to_thread(server.kill)
            await asyncio.wait_for(asyncio.shield(first.done), 60)
            second = director.submit_chat(chat(1, "hello!"))
            await asyncio.wait_for(asyncio.shield(second.done), 60)
            used_second = brain.used[-1]
            await asyncio.to_thread(server.start)  # same port; returns once it answers /models
            back_at = time.monotonic()
            while True:
                later = director.submit_chat(chat(2 + len(brain.used), f"are you back? ({len(brain.used)})"))
                await asyncio.wait_for(asyncio.shield(later.done), 120)
                if brain.used[-1] == "primary" or time.monotonic() - back_at > 30:
                    break
            assert brain.primary_started_at is not None
            return first, second, used_second, later, brain.primary_started_at - back_at, brain.used[-1]
        finally:
            await cancel_and_wait(*tasks)
            await brain.aclose()
            await director.aclose()

    server = LlamaServer(tmp_path / "server.log")
    server.start()
    try:
        first, second, used_second, later, recovered_s, used_last = asyncio.run(main(server))
    finally:
        server.stop()
    cover = "Oops, my thoughts got tangled, one sec!"
    assert first.status == "failed"
    assert first.played_text.endswith(cover)
    assert first.played_text[: -len(cover)].strip()  # what was on air played out before the cover line
    assert used_second == "fallback" and second.status == "done" and "viewer1" in second.played_text
    assert used_last == "primary" and later.status == "done"
    assert recovered_s < 10, recovered_s  # from the server answering again to the LLM starting a reply

