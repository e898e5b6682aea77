"""Typed events of the show. Adapters parse raw input into these at the edge; nothing past the
edge dispatches on strings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum


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
