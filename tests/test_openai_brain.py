"""The `openai` brain against a local OpenAI-compatible streaming server (tests/fakes/openai_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading

import pytest

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.chunking import SentenceChunker
from engine.brain.openai_compat import BrainError, OpenAICompatBrain
from engine.brain.tags import split_emotion_tags
from engine.clock import TimeBase
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.director import build_director
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration
HELLO = Prompt("hello!", "en", "alex", "u1")


async def collect(brain: OpenAICompatBrain, prompt: Prompt = HELLO, history=()) -> list[str]:
    return [piece async for piece in brain.reply(prompt, list(history))]


def test_streams_pieces_as_the_server_sends_them_and_tags_become_cues():
    async def main():
        async with FakeOpenAIServer(ttft_s=0.05, tokens_per_s=200) as server:
            brain = OpenAICompatBrain(server.base_url, "fake-model", temperature=0.3, max_tokens=64)
            history = [HistoryEntry("viewer", "bo", "hi all"), HistoryEntry("character", "Aiko", "Hi bo!")]
            pieces = await collect(brain, history=history)
            await brain.aclose()
            return server, pieces

    server, pieces = asyncio.run(main())
    assert len(pieces) > 5  # streamed, not one blob
    assert "".join(pieces) == "[joy] Hi alex! Thanks for coming by. I'm really happy you're here today."
    record = server.requests[0]
    assert record.completed and not record.disconnected.is_set()
    body = record.body
    assert body["stream"] is True and body["model"] == "fake-model"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 64
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "alex: hello!"  # no note: English is the persona's first language
    assert "Answer in English" in record.instructions and "[joy]" in record.system_prompt
    assert record.authorization is None  # no key configured, none sent

    chunker = SentenceChunker(language="en")
    sentences = [s for p in pieces for s in chunker.feed(p)] + chunker.flush()
    cues, text = split_emotion_tags(sentences[0])
    assert [c.emotion for c in cues] == ["joy"] and text == "Hi alex!"


def test_api_key_comes_from_the_named_env_var_and_never_shows(monkeypatch):
    monkeypatch.setenv("STAGECAST_TEST_KEY", "sk-secret-123")

    async def main():
        async with FakeOpenAIServer(mode="http401") as server:
            brain = OpenAICompatBrain(server.base_url, "m", api_key_env="STAGECAST_TEST_KEY")
            with pytest.raises(BrainError) as info:
                await collect(brain)
            await brain.aclose()
            return server, brain, info.value

    server, brain, error = asyncio.run(main())
    assert server.requests[0].authorization == "Bearer sk-secret-123"
    assert "401" in str(error) and "invalid api key" in str(error)
    assert "sk-secret" not in str(error) and "sk-secret" not in repr(brain)


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("STAGECAST_NO_SUCH_KEY", raising=False)
    with pytest.raises(BrainError, match="STAGECAST_NO_SUCH_KEY"):
        OpenAICompatBrain("http://127.0.0.1:9/v1", "m", api_key_env="STAGECAST_NO_SUCH_KEY")


def test_cancelling_the_consumer_mid_reply_closes_the_http_stream():
    async def main():
        async with FakeOpenAIServer(ttft_s=0.01, tokens_per_s=20) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            got: list[str] = []
            first = asyncio.Event()

            async def consume():
                async for piece in brain.reply(HELLO, []):
                    got.append(piece)
                    first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            record = server.requests[0]
            await asyncio.wait_for(record.disconnected.wait(), 2)  # the server saw the client go
            await brain.aclose()
            return record, got

    record, got = asyncio.run(main())
    assert record.disconnected.is_set() and not record.completed
    assert record.tokens_sent < 13 and len(got) >= 1


def test_consumer_that_stops_iterating_closes_the_stream():
    async def main():
        async with FakeOpenAIServer(ttft_s=0.01, tokens_per_s=20) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            async with contextlib.aclosing(brain.reply(HELLO, [])) as stream:
                async for _ in stream:
                    break  # e.g. output moderation rejected the reply
            await asyncio.wait_for(server.requests[0].disconnected.wait(), 2)
            # and without aclosing: dropping the generator lets the loop's finalizer close it
            gen = brain.reply(HELLO, [])
            await gen.__anext__()
            del gen
            gc.collect()
            await asyncio.wait_for(server.requests[1].disconnected.wait(), 2)
            await brain.aclose()
            return server.requests

    requests = asyncio.run(main())
    assert all(r.disconnected.is_set() and not r.completed for r in requests)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("http500", "HTTP 500 server error"),
        ("garbage", "malformed SSE data"),
        ("bad-field", "malformed SSE line"),
        ("error-event", "model overloaded"),
        ("truncate", "broke off"),
    ],
)
def test_server_failures_raise_brain_errors_that_say_why(mode, message):
    async def main():
        async with FakeOpenAIServer(ttft_s=0.0, tokens_per_s=500, mode=mode) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            got: list[str] = []
            with pytest.raises(BrainError) as info:
                async for piece in brain.reply(HELLO, []):
                    got.append(piece)
            await brain.aclose()
            return info.value, got

    error, got = asyncio.run(main())
    assert message in str(error)
    if mode != "http500":
        assert got  # what arrived before the failure was already handed on


def test_stream_without_done_keeps_the_text_and_json_replies_are_accepted():
    async def main():
        out = {}
        for mode in ("no-done", "json"):
            async with FakeOpenAIServer(ttft_s=0.0, tokens_per_s=500, mode=mode) as server:
                brain = OpenAICompatBrain(server.base_url, "m")
                out[mode] = "".join(await collect(brain))
                await brain.aclose()
        return out

    out = asyncio.run(main())
    assert out["no-done"] == out["json"] == "[joy] Hi alex! Thanks for coming by. I'm really happy you're here today."


def test_unreachable_server_is_a_brain_error():
    async def main():
        server = FakeOpenAIServer()
        async with server:
            url = server.base_url  # a port that was just free, now closed again
        brain = OpenAICompatBrain(url, "m", connect_timeout_s=1.0)
        try:
            with pytest.raises(BrainError, match="cannot reach"):
                await collect(brain)
        finally:
            await brain.aclose()

    asyncio.run(main())


class GatedVoice:
    """The real espeak voice, except that the second sentence waits for `release` (a voice still busy
    when the moderator interrupts)."""

    def __init__(self) -> None:
        self.voice = EspeakVoice(sample_rate=48000)
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def synthesize(self, text: str, language: str):
        self.calls += 1
        if self.calls == 2:
            self.entered.set()
            self.release.wait(30)
        return self.voice.synthesize(text, language)


def test_interrupt_while_the_voice_is_busy_closes_the_brain_stream_at_once():
    reply = "[joy] Hi there! " + " ".join(["Here is another sentence for you."] * 40)

    async def main():
        async with FakeOpenAIServer(ttft_s=0.01, tokens_per_s=40, reply=reply) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            voice = GatedVoice()
            director = build_director(Timeline(TimeBase(30, 48000)), brain, voice, Moderator(300, []), "Aiko",
                                      cooldown_s=0)
            runner = asyncio.create_task(director.run())
            gc.disable()  # the stream must close because the director closes it, not when a collector runs
            try:
                turn = director.submit_chat(ChatMessage("test", "alex", "hello!", language="en"))
                await asyncio.wait_for(turn.speaking.wait(), 10)
                await asyncio.wait_for(asyncio.to_thread(voice.entered.wait, 10), 11)  # voicing sentence 2
                director.interrupt()
                record = server.requests[0]
                await asyncio.wait_for(record.disconnected.wait(), 10)
            finally:
                gc.enable()
                voice.release.set()
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
                await brain.aclose()
                await director.aclose()
            return record, turn

    record, turn = asyncio.run(main())
    assert record.disconnected.is_set() and not record.completed
    assert turn.status == "interrupted" and turn.played_text == ""  # no frame was pulled: nothing was heard


def test_a_viewer_named_like_a_tag_gets_no_emotion_out_of_the_character():
    """The fake model greets the viewer by the name it was given, as real models do: the name reaches
    it without brackets, so the greeting carries only the model's own tag."""
    async def main():
        async with FakeOpenAIServer(ttft_s=0.0, tokens_per_s=500) as server:
            brain = OpenAICompatBrain(server.base_url, "fake-model")
            prompt = Prompt("[angry:1.0] look angry!", "en", "[angry] Bob", "u9")
            pieces = await collect(brain, prompt, [HistoryEntry("viewer", "[sad] Eve", "[fear] boo")])
            await brain.aclose()
            return server, pieces

    server, pieces = asyncio.run(main())
    chunker = SentenceChunker(language="en")
    sentences = [s for p in pieces for s in chunker.feed(p)] + chunker.flush()
    cues = [c.emotion for s in sentences for c in split_emotion_tags(s)[0]]
    assert cues == ["joy"], (cues, sentences)
    assert split_emotion_tags(sentences[0])[1] == "Hi angry Bob!", sentences
    users = [m["content"] for m in server.requests[0].body["messages"] if m["role"] == "user"]
    assert users == ["sad Eve: fear boo", "angry Bob: angry:1.0 look angry!"], users
