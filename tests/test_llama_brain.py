"""The `llama` brain's plumbing without llama.cpp (not installed in CI): path resolution, the clear
import error, and token streaming/cancellation through its worker thread with a stand-in model."""

import asyncio
import contextlib
import importlib.util
import threading

import pytest

from engine.brain.base import Prompt
from engine.brain.llama_local import LlamaLocalBrain, resolve_model_path
from engine.brain.openai_compat import BrainError

pytestmark = pytest.mark.unit


class StandInLlama:
    """Streams create_chat_completion chunks like llama_cpp.Llama, gated so the test controls the pace."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.produced = 0
        self.gate = threading.Semaphore(0)
        self.messages: list[dict] = []

    def create_chat_completion(self, messages, stream, temperature, max_tokens):
        assert stream is True
        self.messages = messages
        for token in self.tokens:
            self.gate.acquire(timeout=5)
            self.produced += 1
            yield {"choices": [{"delta": {"content": token}, "finish_reason": None}]}


def test_model_path_errors_are_clear(tmp_path):
    with pytest.raises(BrainError, match="does not exist"):
        resolve_model_path(tmp_path / "missing.gguf")
    with pytest.raises(BrainError, match=r"pip install no-such-model-pkg"):
        resolve_model_path(None, "no-such-model-pkg")
    with pytest.raises(BrainError, match="set model_path"):
        resolve_model_path(None)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama-cpp-python is installed")
def test_missing_llama_cpp_is_a_clear_error(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(BrainError, match=r"stagecast\[llama\]"):
        LlamaLocalBrain(model)


def test_streams_tokens_and_cancellation_stops_the_worker():
    llama = StandInLlama(["[joy] ", "Hi ", "there! ", "More ", "words ", "here."])
    brain = LlamaLocalBrain(llama=llama)

    async def main():
        got: list[str] = []
        two = asyncio.Event()

        async def consume():
            async for piece in brain.reply(Prompt("hi", "ja", "alex"), []):
                got.append(piece)
                if len(got) == 2:
                    two.set()

        task = asyncio.create_task(consume())
        llama.gate.release(2)
        await asyncio.wait_for(two.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        llama.gate.release(10)  # the worker may produce one more token, then sees the stop flag
        await asyncio.wait_for(asyncio.to_thread(brain._lock.acquire), 5)  # the worker has finished
        brain._lock.release()
        return got

    got = asyncio.run(main())
    assert got == ["[joy] ", "Hi "]
    assert llama.produced <= 3  # stopped long before the reply's end
    assert "Answer in Japanese" in llama.messages[0]["content"]
