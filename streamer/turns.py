"""A turn: one thing the character will say, as a handle that owns its status, its interrupt and
its completion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol

from engine.brain.base import Prompt
from engine.events import EmotionCue, SpeechEnded
from engine.language import detect_language, reply_language
from engine.timeline import ScheduledSpeech
from streamer.events import ChatMessage


class Priority(IntEnum):
    """Which turn goes first: lower is more urgent."""

    SAY = 0  # a moderator's say-now
    VOICE = 1  # a co-host speaking to the character
    PAID = 2
    MOD = 3  # chat from the broadcaster or a moderator
    MENTION = 4  # names the character, or a platform event (raid, sub)
    CHAT = 5


class TurnStatus(StrEnum):
    QUEUED = "queued"
    THINKING = "thinking"
    SPEAKING = "speaking"
    DONE = "done"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({TurnStatus.DONE, TurnStatus.INTERRUPTED, TurnStatus.SKIPPED, TurnStatus.FAILED})


def prompt_for(text: str, language: str | None = None, user_name: str = "", user_id: str = "") -> Prompt:
    """What a turn answers; its language is decided here, once: a language the character speaks."""
    return Prompt(text, reply_language(language or detect_language(text)), user_name, user_id)


class TurnOwner(Protocol):
    """Who performs turns: the handle's interrupt goes there."""

    def interrupt_turn(self, turn: Turn) -> list[SpeechEnded]: ...


@dataclass(eq=False)
class Turn:
    """A reply in the making: what it answers, how urgent it is, and how it ended.

    `done` resolves with the turn itself once it is settled (done, interrupted, skipped, failed).
    `speaking` is set when its first audio is scheduled, `composed` when all of it is."""

    id: str
    priority: Priority
    prompt: Prompt
    verbatim: bool = False  # say-now: speak the text as given, no brain
    emotion: EmotionCue | None = None
    reply_to: ChatMessage | None = None  # the chat message this turn answers, if any
    viewer_key: str | None = None  # set for offered chat: the no-repeat rule looks at it
    arrived: float = 0.0  # stream seconds when it was queued (expiry)
    status: TurnStatus = TurnStatus.QUEUED
    played_text: str = ""
    created: float = field(default_factory=time.monotonic)
    started: float = 0.0  # monotonic time the performer began it
    scheduled: list[ScheduledSpeech] = field(default_factory=list)
    cover: ScheduledSpeech | None = None  # the line that covered a failed brain (not part of the reply)
    done: asyncio.Future[Turn] = field(init=False)
    speaking: asyncio.Event = field(default_factory=asyncio.Event)
    composed: asyncio.Event = field(default_factory=asyncio.Event)
    owner: TurnOwner | None = field(default=None, repr=False)
    observer: Callable[[Turn], None] | None = field(default=None, repr=False)  # told of every status change
    announced: TurnStatus | None = field(default=None, repr=False)  # the last status the observer published

    def __post_init__(self) -> None:
        self.done = asyncio.get_running_loop().create_future()
        self._notify()

    def _notify(self) -> None:
        if self.observer is not None:
            self.observer(self)

    def set_status(self, status: TurnStatus) -> None:
        """Move a turn that is not settled yet (thinking, speaking, or interrupted mid-way)."""
        if not self.done.done() and status != self.status:
            self.status = status
            self._notify()

    def interrupt(self) -> list[SpeechEnded]:
        """Stop this turn: skipped while queued, cut at the next frame while performing."""
        if self.owner is None or self.status.final:
            return []
        return self.owner.interrupt_turn(self)

    async def wait(self) -> Turn:
        """Until the turn is settled (cancelling the wait does not cancel the turn)."""
        return await asyncio.shield(self.done)

    def settle(self, status: TurnStatus) -> bool:
        """Record how the turn ended; only the first call counts."""
        if self.done.done():
            return False
        self.status = status
        self.done.set_result(self)
        self._notify()
        return True
