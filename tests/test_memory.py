"""Memory: bounded SQLite store, viewer notes, summaries, and the returning viewer in the next prompt."""

import asyncio
import os

import pytest

from engine.brain.base import Prompt
from engine.brain.openai_compat import OpenAICompatBrain
from engine.memory import Memory, MemoryLimits, extractive_summary
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def test_ten_thousand_turns_stay_under_the_caps(tmp_path):
    path = tmp_path / "memory.db"
    limits = MemoryLimits(window_turns=200, fold_batch=50, max_summaries=100, max_viewers=300, max_bytes=512 * 1024)
    clock = FakeClock()
    memory = Memory(path, limits, clock=clock)
    for i in range(5000):  # 5000 viewer messages + 5000 replies = 10,000 turns
        clock.t += 5
        user = f"user{i % 900}"
        memory.add_viewer_message(user, user, f"I like topic {i % 41} a lot, and this is message {i}.", "en")
        memory.add_character_reply(f"Topic {i % 41} is great, {user}!", "Aiko", "en", user)
    counts = memory.counts()
    assert counts["turns"] <= limits.window_turns + limits.fold_batch
    assert counts["summaries"] <= limits.max_summaries and counts["summaries"] > 0
    assert counts["viewers"] <= limits.max_viewers
    assert memory.size_bytes() <= limits.max_bytes
    memory.close()
    assert os.path.getsize(path) <= limits.max_bytes
    # the newest turns survive, the oldest were folded away
    memory = Memory(path, limits, clock=clock)
    recent = memory.recent(2)
    assert recent[-1].text == "Topic 38 is great, user499!"  # turn 4999
    assert "message 4999" in recent[0].text
    memory.close()


def test_returning_viewer_is_recognized_and_noted():
    clock = FakeClock()
    memory = Memory(":memory:", clock=clock)
    first = memory.add_viewer_message("tw:42", "mika", "hi! I'm from Osaka and I love cats", "en")
    assert first.message_count == 0  # new viewer
    clock.t += 3 * 86400
    again = memory.add_viewer_message("tw:42", "mika", "hello again", "en")
    assert again.message_count == 1 and again.note == "hi! I'm from Osaka and I love cats"
    context = memory.context_for("tw:42")
    assert "returning viewer" in context and "Osaka" in context and "3 days ago" in context
    assert memory.context_for("nobody") == ""


def test_returning_viewers_notes_reach_the_next_prompt():
    memory = Memory(":memory:")
    memory.add_viewer_message("u7", "kenji", "my name is Kenji and I study astronomy", "en")
    memory.add_character_reply("Nice to meet you Kenji!", "Aiko", "en", "u7")

    async def main():
        async with FakeOpenAIServer(ttft_s=0.0, tokens_per_s=500) as server:
            brain = OpenAICompatBrain(server.base_url, "m", context=memory.context_for)
            memory.add_viewer_message("u7", "kenji", "I'm back!", "en")
            _ = [p async for p in brain.reply(Prompt("I'm back!", "en", "kenji", "u7"), [])]
            _ = [p async for p in brain.reply(Prompt("hello", "en", "newbie", "u8"), [])]
            await brain.aclose()
            return server.requests

    requests = asyncio.run(main())
    assert "astronomy" in requests[0].instructions and "kenji is a returning viewer" in requests[0].instructions
    assert "astronomy" not in requests[1].instructions  # notes belong to their viewer


def test_extractive_summary_is_deterministic_and_bounded():
    lines = [f"viewer{i}: I love playing chess on weekends, chess is fun." for i in range(20)]
    lines += ["viewer: lol", "Aiko: Chess talk again, I love it!"]
    a, b = extractive_summary(lines, 120), extractive_summary(list(lines), 120)
    assert a == b and 0 < len(a) <= 120 and "chess" in a.lower()
