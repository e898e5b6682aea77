"""Chat sources yield ChatMessages; the show pumps them through moderation into the director."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from streamer.events import ChatMessage


class ChatSource(Protocol):
    name: str

    def messages(self) -> AsyncIterator[ChatMessage]: ...
