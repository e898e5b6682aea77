"""Small pieces every chat adapter needs: at-most-once delivery, a bounded hand-off, and readers
for untrusted JSON."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from streamer.events import ChatMessage, Fragment

log = logging.getLogger("stagecast.chat")


class RecentIds:
    """Remembers the last `capacity` ids: platforms deliver at least once, and reconnects and
    restarts replay history, so adapters drop an id they have already passed on."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def add(self, key: str) -> bool:
        """True when `key` is new (and now remembered); False for a duplicate."""
        if key in self._ids:
            self._ids.move_to_end(key)
            self.duplicates += 1
            return False
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, key: str) -> bool:
        return key in self._ids


class DropOldestQueue:
    """Adapter -> consumer hand-off. A slow consumer must never stall a socket reader (Twitch
    closes connections that stop reading), so when full the oldest message is dropped and counted."""

    def __init__(self, maxsize: int, name: str) -> None:
        self._queue: asyncio.Queue[ChatMessage] = asyncio.Queue(maxsize)
        self.name = name
        self.dropped = 0

    def put(self, message: ChatMessage) -> None:
        while True:
            try:
                self._queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("%s: consumer too slow, dropped %d oldest messages so far", self.name, self.dropped)

    async def get(self) -> ChatMessage:
        return await self._queue.get()

    def get_nowait(self) -> ChatMessage | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()


def words_text(fragments: Iterable[Fragment], fallback: str) -> str:
    """The text without emotes: what language detection should look at ("Kappa" is not Italian)."""
    parts = [f.text for f in fragments if f.kind != "emote"]
    return " ".join(parts) if parts else fallback


def safe_str(value: object, limit: int = 20_000) -> str:
    """Any JSON value as a bounded string; hostile servers send numbers, nulls and megabytes."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def as_object(value: object) -> dict[str, Any]:
    """A JSON object from an untrusted payload, or ``{}`` when it is anything else."""
    return value if isinstance(value, dict) else {}


def as_array(value: object) -> list[Any]:
    """A JSON array from an untrusted payload, or ``[]`` when it is anything else."""
    return value if isinstance(value, list) else []
