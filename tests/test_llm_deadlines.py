"""Deadlines shaped like an LLM (first token, between tokens) and no request queued behind an abandoned
one on a single-slot server (the fake emulates llama-cpp-python's lock; tests/fakes/openai_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from engine.brain.base import Prompt
from engine.brain.fallback import FallbackBrain
from engine.brain.openai_compat import BrainBusyError, BrainTimeoutError, OpenAICompatBrain
from engine.brain.scripted import ScriptedBrain
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration
HELLO = Prompt("hello!", "en", "alex", "u1")


async def drain(brain, prompt: Prompt = HELLO) -> str:
    return "".join([piece async for piece in brain.reply(prompt, [])])


def test_first_token_deadline_scales_with_the_prompt_the_server_must_read():
    brain = OpenAICompatBrain("http://127.0.0.1:9/v1", "m", first_token_s=5, first_token_per_1k_s=20,
                              max_first_token_s=30)
    assert brain.first_token_deadline(0) == 5
    assert brain.first_token_deadline(500) == 15
    assert brain.first_token_deadline(5000) == 30


@pytest.mark.parametrize(("ttft_s", "tokens_per_s", "which"), [(1.5, 100, "first token"), (0.0, 1.5, "next token")])
def test_a_missed_deadline_is_a_brain_error_and_closes_the_stream(ttft_s, tokens_per_s, which):
    async def main():
        async with FakeOpenAIServer(ttft_s=ttft_s, tokens_per_s=tokens_per_s) as server:
            brain = OpenAICompatBrain(server.base_url, "m", first_token_s=0.4, first_token_per_1k_s=0,
                                      between_tokens_s=0.3)
            began = time.monotonic()
            with pytest.raises(BrainTimeoutError) as info:
                await drain(brain)
            took = time.monotonic() - began
            await asyncio.wait_for(server.requests[0].disconnected.wait(), 2)
            await brain.aclose()
            return info.value, took

    error, took = asyncio.run(main())
    assert which in str(error) and "/chat/completions" in str(error)
    assert took < 1.4  # the deadline, not the server's pace, ended it


def test_no_request_queues_behind_an_abandoned_reply():
    async def main():
        async with FakeOpenAIServer(ttft_s=0.01, tokens_per_s=20, single_slot=True, linger_s=1.5) as server:
            llm = OpenAICompatBrain(server.base_url, "m", idle_wait_s=0.3)
            # a reply abandoned mid-stream (an interrupt): the server keeps its slot a while
            async with contextlib.aclosing(llm.reply(HELLO, [])) as stream:
                await anext(stream)
            with pytest.raises(BrainBusyError, match="still busy"):
                await drain(llm)
            busy_requests = len(server.requests)
            # behind the fallback wrapper the scripted brain answers that turn instead
            await asyncio.sleep(1.7)  # the first one's slot is free again
            brain = FallbackBrain(llm, ScriptedBrain("Aiko"), probe_timeout_s=0.3)
            async with contextlib.aclosing(brain.reply(HELLO, [])) as stream:  # abandon another one
                await anext(stream)
            stand_in = await drain(brain)
            used_while_busy = brain.used[-1]
            await asyncio.sleep(1.7)  # the slot is free again
            back = await drain(brain)
            await brain.aclose()
            return busy_requests, stand_in, used_while_busy, back, brain.used, len(server.requests)

    busy_requests, stand_in, used_while_busy, back, used, requests = asyncio.run(main())
    assert busy_requests == 1  # the busy reply never reached the server
    assert used_while_busy == "fallback" and "alex" in stand_in
    assert used[-1] == "primary" and "Thanks for coming by" in back
    assert requests == 3  # the first, the second abandoned one, and the one after the slot was free
    assert used == ["primary", "fallback", "primary"]
