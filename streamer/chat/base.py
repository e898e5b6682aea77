"""Chat sources yield ChatMessages; the show pumps them through moderation into the director."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from streamer.events import ChatMessage, HealthStatus

PartHealth = Callable[[str, HealthStatus, str], None]  # (part, status, detail), e.g. ("token", OK, "expires in 3h")


class ChatSource(Protocol):
    name: str

    def messages(self) -> AsyncIterator[ChatMessage]: ...


@runtime_checkable
class ChatReplier(Protocol):
    """A source that can post the character's replies back into its chat (Twitch with `replies: true`)."""

    @property
    def replies_enabled(self) -> bool: ...

    async def send_reply(self, text: str, reply_to: ChatMessage | None = None) -> bool: ...


@runtime_checkable
class ReportsHealth(Protocol):
    """A source with parts of its own to report (Twitch/YouTube: the OAuth token and its expiry);
    the pump sets `on_health` before `messages()` starts."""

    on_health: PartHealth | None
