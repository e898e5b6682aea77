"""Typed events of the show. Adapters parse raw input into these at the edge; nothing past the
edge dispatches on strings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum


class ChatKind(str, Enum):
    """What a chat item is: a plain message, or a platform event carried as a message."""

    CHAT = "chat"
    CHEER = "cheer"  # Twitch bits (amount in bits, currency "BITS")
    SUBSCRIPTION = "subscription"
    RAID = "raid"
    SUPER_CHAT = "super_chat"  # YouTube paid message
    SUPER_STICKER = "super_sticker"


@dataclass(frozen=True)
class Fragment:
    """One piece of a message as the platform split it: plain text, an emote, a mention or a cheermote.
    Kept so moderation can tell an emote-only message from words, and overlays can draw emotes."""

    kind: str  # "text" | "emote" | "mention" | "cheermote"
    text: str
    emote_id: str = ""


@dataclass(frozen=True)
class ChatMessage:
    """One viewer message, normalized across platforms."""

    platform: str
    user_name: str
    text: str
    user_id: str = ""
    channel: str = ""
    message_id: str = ""
    roles: frozenset[str] = frozenset()  # broadcaster / mod / vip / subscriber
    timestamp: float = field(default_factory=time.time)
    language: str = "en"
    amount: float | None = None
    currency: str | None = None
    fragments: tuple[Fragment, ...] = ()
    kind: ChatKind = ChatKind.CHAT

    @property
    def paid(self) -> bool:
        return bool(self.amount)

    @property
    def user_key(self) -> str:
        """Stable per-platform identity for rate limits and bans (ids survive renames; names are a fallback)."""
        return f"{self.platform}:{self.user_id or self.user_name.casefold()}"

    @property
    def emote_only(self) -> bool:
        """True when the platform marked every non-blank piece as an emote."""
        pieces = [f for f in self.fragments if f.text.strip()]
        return bool(pieces) and all(f.kind == "emote" for f in pieces)


class ModAction(str, Enum):
    INTERRUPT = "interrupt"
    SAY = "say"
    EMOTION = "emotion"
    PAUSE = "pause"
    RESUME = "resume"
    SKIP = "skip"
    CLEAR = "clear"
    BAN = "ban"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ModerationDecision:
    """Whether a text may go on; `rule` names what fired so moderators can see why."""

    accepted: bool
    text: str
    rule: str | None = None
    detail: str = ""


class HealthStatus(str, Enum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class Health:
    component: str
    status: HealthStatus
    detail: str = ""
    timestamp: float = field(default_factory=time.time)
