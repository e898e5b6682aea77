"""Fault injection for the show: wrappers around the REAL components that fail on cue.

They stand between the show and its parts exactly where a crashing library, a hung model or a
full disk would, so the tests prove containment in the real pipeline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import av

from engine.brain.base import Brain, HistoryEntry, Prompt
from engine.voice.base import Speech, Voice
from streamer.events import ChatMessage


class FaultyBrain:
    """Raises or hangs on the first `times` replies, then behaves like the real brain."""

    def __init__(self, real: Brain, mode: str, times: int = 1) -> None:
        self.real, self.mode, self.left = real, mode, times

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncIterator[str]:
        if self.left > 0:
            self.left -= 1
            if self.mode == "raise":
                raise RuntimeError("injected brain failure")
            await asyncio.Event().wait()  # hang forever
        async for piece in self.real.reply(prompt, history):
            yield piece


class FaultyVoice:
    def __init__(self, real: Voice, times: int = 1) -> None:
        self.real, self.left = real, times
        self.sample_rate = real.sample_rate

    def synthesize(self, text: str, language: str) -> Speech:
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("injected voice failure")
        return self.real.synthesize(text, language)


class FaultyRenderer:
    """Raises on the render of frame number `at` (counting calls)."""

    def __init__(self, real: Any, at: int) -> None:
        self.real, self.at, self.calls = real, at, 0
        self.width, self.height = real.width, real.height

    def render(self, states: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("injected render failure")
        return self.real.render(states)


class FaultySink:
    """A packet sink that raises on packet `raise_at`, or blocks from packet `block_at` until released."""

    def __init__(self, name: str, raise_at: int | None = None, block_at: int | None = None) -> None:
        self.name = name
        self.raise_at, self.block_at = raise_at, block_at
        self.release = threading.Event()
        self.seen = 0
        self.written = 0
        self.starts = 0

    def start(self, encoder: Any) -> None:
        self.starts += 1

    def write(self, packet: av.Packet) -> None:
        self.seen += 1
        if self.seen == self.raise_at:
            raise OSError("injected sink failure")
        if self.block_at is not None and self.seen >= self.block_at:
            self.release.wait()
        self.written += 1

    def close(self) -> None:
        self.release.set()


class FlakyChatSource:
    """Yields one message, then drops the connection once; the show must reconnect it."""

    def __init__(self) -> None:
        self.name = "flaky"
        self.connects = 0

    async def messages(self) -> AsyncIterator[ChatMessage]:
        self.connects += 1
        yield ChatMessage(platform="flaky", user_name=f"u{self.connects}", user_id=f"u{self.connects}",
                          text=f"hello number {self.connects}", message_id=f"m{self.connects}")
        if self.connects == 1:
            raise ConnectionResetError("injected disconnect")
        await asyncio.Event().wait()


class CancelSwallowingBrain:
    """The real brain behind a client library that catches CancelledError and streams on (it happens:
    broad ``except BaseException`` retries); the director's interrupt must hold regardless."""

    def __init__(self, real: Brain) -> None:
        self.real = real
        self.swallowed = 0
        self.started = asyncio.Event()

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncIterator[str]:
        async for piece in self.real.reply(prompt, history):
            self.started.set()
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.swallowed += 1
            yield piece
