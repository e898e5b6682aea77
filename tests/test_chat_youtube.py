"""YouTube adapters: the Data API backend against a local liveChatMessages server; the pytchat
watchdog against a stand-in reader with pytchat's public interface (pytchat's endpoints are
hard-coded in the library, so it cannot be pointed at a local server)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from streamer.chat.youtube import YouTubeApiSource, YouTubeError, YouTubePytchatSource
from streamer.config import BackoffConfig, YouTubeSourceConfig
from streamer.events import ChatKind, ChatMessage
from tests.fakes.youtube_livechat import (
    API_KEY,
    CHAT_ID,
    OAUTH_TOKEN,
    VIDEO_ID,
    FakeYouTube,
    author,
    super_chat,
    super_sticker,
    text_message,
)

pytestmark = pytest.mark.integration
FAST = BackoffConfig(initial_s=0.01, max_s=0.02)


def api_source(fake: FakeYouTube, env: dict[str, str] | None = None, **kw: Any) -> YouTubeApiSource:
    cfg = YouTubeSourceConfig(type="youtube", api_url=fake.api_url, min_poll_s=0, backoff=FAST,
                              **({"live_chat_id": CHAT_ID} | kw))
    return YouTubeApiSource(cfg, env={"YOUTUBE_API_KEY": API_KEY} if env is None else env)


async def drain(it: AsyncIterator[ChatMessage], limit_s: float = 15) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    async with asyncio.timeout(limit_s):
        async for m in it:
            out.append(m)
    return out


def with_fake(coro_fn: Any) -> Any:
    async def main() -> Any:
        fake = FakeYouTube()
        await fake.start()
        try:
            return await coro_fn(fake)
        finally:
            await fake.stop()

    return asyncio.run(main())


def test_text_super_chat_and_super_sticker_arrive_normalized() -> None:
    async def body(fake: FakeYouTube) -> list[ChatMessage]:
        fake.post(text_message("m1", "こんにちは、元気？", author("Hana", "UChana", mod=True, sponsor=True)),
                  super_chat("m2", "love the stream", 5_000_000, "USD", author("Rich", "UCrich")),
                  super_sticker("m3", "a dancing cat", 2_000_000, "JPY"),
                  {"kind": "youtube#liveChatMessage", "id": "m4", "snippet": {"type": "messageDeletedEvent"}})
        fake.offline = True
        return await drain(api_source(fake, live_chat_id="", video_id=VIDEO_ID).messages())

    text, chat, sticker = with_fake(body)
    assert (text.platform, text.channel, text.message_id, text.user_id, text.user_name) == (
        "youtube", CHAT_ID, "m1", "UChana", "Hana")
    assert text.roles == {"mod", "subscriber"} and text.language == "ja" and text.amount is None
    assert (chat.amount, chat.currency, chat.kind, chat.text) == (5.0, "USD", ChatKind.SUPER_CHAT, "love the stream")
    assert (sticker.amount, sticker.currency, sticker.kind) == (2.0, "JPY", ChatKind.SUPER_STICKER)
    assert "a dancing cat" in sticker.text


def test_403_429_500_bad_json_and_overlap_lose_and_duplicate_nothing() -> None:
    async def body(fake: FakeYouTube) -> tuple[list[ChatMessage], YouTubeApiSource, list]:
        source = api_source(fake)
        it = source.messages()
        got: list[ChatMessage] = []
        fake.post(*(text_message(f"a{i}", f"first batch {i}") for i in range(5)))
        async with asyncio.timeout(15):
            while len(got) < 5:
                got.append(await anext(it))
            fake.faults.extend([403, 429, 500, "badjson", "overlap"])
            fake.post(*(text_message(f"b{i}", f"second batch {i}") for i in range(5)))
            while len(got) < 10:
                got.append(await anext(it))
            fake.faults.extend([500, "overlap"])
            fake.post(*(text_message(f"c{i}", f"third batch {i}") for i in range(3)))
            fake.offline = True
            got.extend([m async for m in it])
        return got, source, fake.requests

    got, source, requests = with_fake(body)
    ids = [m.message_id for m in got]
    assert ids == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)] + [f"c{i}" for i in range(3)]
    assert source.retries == 5 and source.duplicates >= 2
    served = [s for s, _ in requests]
    for status in (403, 429, 500, "badjson"):
        assert status in served
    # every retry asked for the same page as the failed request before it
    for (status, token), (_, next_token) in itertools.pairwise(requests):
        if status != 200:
            assert next_token == token


def test_oauth_token_works_and_fatal_errors_stop_with_a_reason() -> None:
    async def body(fake: FakeYouTube) -> tuple[list[ChatMessage], str, str]:
        fake.post(text_message("x1", "hello there everyone"))
        fake.offline = True
        ok = await drain(api_source(fake, env={"YOUTUBE_OAUTH_TOKEN": OAUTH_TOKEN}).messages())
        with pytest.raises(YouTubeError) as bad_key:
            await drain(api_source(fake, env={"YOUTUBE_API_KEY": "nope"}).messages())
        with pytest.raises(YouTubeError) as no_env:
            await drain(api_source(fake, env={}).messages())
        return ok, str(bad_key.value), str(no_env.value)

    ok, bad_key, no_env = with_fake(body)
    assert [m.message_id for m in ok] == ["x1"]
    assert "401" in bad_key and "nope" not in bad_key
    assert "YOUTUBE_API_KEY" in no_env


class StandInReader:
    """pytchat.core.PytchatCore's public surface: is_alive/get/terminate/raise_for_status."""

    def __init__(self, batches: list[list[Any]], block: threading.Event | None = None, die_after: int | None = None):
        self.batches = batches
        self.block = block
        self.die_after = die_after
        self.calls = 0
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive

    def get(self) -> Any:
        self.calls += 1
        if self.block is not None and self.calls > len(self.batches):
            self.block.wait(30)  # a hung HTTP read
        if self.die_after is not None and self.calls > self.die_after:
            self.alive = False
            return []
        return SimpleNamespace(items=self.batches[self.calls - 1] if self.calls <= len(self.batches) else [])

    def terminate(self) -> None:
        self.alive = False

    def raise_for_status(self) -> None:
        if not self.alive:
            raise RuntimeError("ChatDataFinished")


def item(i: str, text: str, amount: float = 0.0, currency: str = "", kind: str = "textMessage") -> Any:
    who = SimpleNamespace(name=f"user{i}", channelId=f"UC{i}", isChatOwner=False, isChatModerator=False,
                          isChatSponsor=False)
    return SimpleNamespace(id=i, type=kind, message=text, timestamp=1_700_000_000_000, amountValue=amount,
                           currency=currency, author=who)


def test_pytchat_stalled_and_dead_readers_are_restarted_without_duplicates() -> None:
    release = threading.Event()
    readers = [
        StandInReader([[item("1", "one"), item("2", "two")]], block=release),  # hangs on its 2nd read
        StandInReader([[item("2", "two"), item("3", "three", 3.0, "EUR", "superChat")]], die_after=1),  # dies
        StandInReader([[item("3", "three"), item("4", "four")]]),
    ]
    made: list[str] = []

    def factory(video_id: str) -> StandInReader:
        made.append(video_id)
        return readers[len(made) - 1]

    async def main() -> tuple[list[ChatMessage], YouTubePytchatSource]:
        cfg = YouTubeSourceConfig(type="youtube", backend="pytchat", video_id=VIDEO_ID, stall_timeout_s=0.3,
                                  min_poll_s=0, backoff=FAST)
        source = YouTubePytchatSource(cfg, factory=factory)
        it = source.messages()
        got: list[ChatMessage] = []
        try:
            async with asyncio.timeout(15):
                while len(got) < 4:
                    got.append(await anext(it))
        finally:
            release.set()
            await it.aclose()
        return got, source

    got, source = asyncio.run(main())
    assert [m.message_id for m in got] == ["1", "2", "3", "4"]
    assert got[2].kind is ChatKind.SUPER_CHAT and (got[2].amount, got[2].currency) == (3.0, "EUR")
    assert source.restarts == 2 and len(made) == 3 and source.duplicates == 2
    assert readers[0].alive is False  # the stalled reader was terminated


def test_polling_interval_from_the_api_is_obeyed() -> None:
    """liveChatMessages.list says how long to wait (`pollingIntervalMillis`): with no floor of our
    own (`min_poll_s: 0`), successive polls are at least that far apart, measured at the server."""
    async def body(fake: FakeYouTube) -> tuple[list[float], list[str]]:
        fake.polling_ms = 400
        fake.post(text_message("i1", "first"))
        it = api_source(fake).messages()
        got = [(await anext(it)).message_id]
        second = asyncio.ensure_future(anext(it))  # keeps polling (empty pages) until i2 is posted
        await fake.wait_requests(4)
        fake.post(text_message("i2", "second"))
        got.append((await second).message_id)
        await it.aclose()
        return list(fake.request_times), got

    times, got = with_fake(body)
    assert got == ["i1", "i2"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 4 and min(gaps) >= 0.4 - 0.005, gaps  # monotonic clock; asyncio.sleep never wakes early
