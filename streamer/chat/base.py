"""Chat sources yield ChatMessages; the show pumps them through moderation into the director."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from streamer.events import ChatMessage

# Sleeps until the given stream time (seconds since the show began): wall time in live mode,
# frame time in virtual mode, so replayed chat lands at the same moment of the stream either way.
StreamSleep = Callable[[float], Awaitable[None]]


class ChatSource(Protocol):
    name: str

    def messages(self) -> AsyncIterator[ChatMessage]: ...
