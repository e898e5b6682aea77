"""Which moderated chat messages the character answers, and when.

A busy chat sends far more than one voice can answer. The policy keeps a small waiting room
in front of the director: regular chat is sampled (1 in N), paid messages, moderators and
mentions of the character always get in; the room has a cap and drops its oldest. The choice of
*which* message to answer is made when the character is free (not when a message arrives), so
the reply goes to the best candidate of that moment: paid > moderators > mentions/events > chat,
oldest first, never the same viewer twice in a row, at least `min_interval_s` apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.language import reply_language
from streamer.config import ReplyPolicyConfig
from streamer.events import ChatKind, ChatMessage

log = logging.getLogger("stagecast.policy")

PAID, MOD, MENTION, CHAT = 0, 1, 2, 3


@dataclass(frozen=True)
class PolicyDecision:
    accepted: bool
    reason: str  # "queued", "sampled_out"


@dataclass
class _Waiting:
    priority: int
    seq: int
    arrived: float
    message: ChatMessage


class ReplyPolicy:
    def __init__(self, config: ReplyPolicyConfig, character_name: str,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """`clock`/`sleep` should be the show's stream-time pair, so virtual mode paces like live."""
        self.config = config
        self.clock = clock
        self._sleep = sleep
        self._names = [n.casefold() for n in [character_name, *config.mention_names] if n.strip()]
        self._waiting: list[_Waiting] = []
        self._seq = 0
        self._regular = 0
        self._last_user: str | None = None
        self._last_reply = -float("inf")
        self._offered = asyncio.Event()
        self.sampled_out = 0
        self.evicted = 0
        self.expired = 0

    def priority(self, msg: ChatMessage) -> int:
        if self.config.paid_first and msg.paid:
            return PAID
        if self.config.mods_first and msg.roles & {"broadcaster", "mod"}:
            return MOD
        text = msg.text.casefold()
        if msg.kind is not ChatKind.CHAT or any(name in text for name in self._names):
            return MENTION
        return CHAT

    def offer(self, msg: ChatMessage) -> PolicyDecision:
        """Call with each message moderation accepted, instead of `director.submit_chat`."""
        priority = self.priority(msg)
        if priority == CHAT:
            self._regular += 1
            if self._regular % self.config.answer_one_in:
                self.sampled_out += 1
                return PolicyDecision(False, "sampled_out")
        self._seq += 1
        self._waiting.append(_Waiting(priority, self._seq, self.clock(), msg))
        if len(self._waiting) > self.config.queue_cap:
            worst = max(self._waiting, key=lambda w: (w.priority, -w.seq))  # the oldest of the least urgent
            self._waiting.remove(worst)
            self.evicted += 1
            log.debug("reply queue full: dropped %s", worst.message.message_id)
        self._offered.set()
        return PolicyDecision(True, "queued")

    @property
    def waiting(self) -> list[ChatMessage]:
        return [w.message for w in sorted(self._waiting, key=lambda w: (w.priority, w.seq))]

    def _expire(self, now: float) -> None:
        keep = [w for w in self._waiting if w.priority == PAID or now - w.arrived <= self.config.max_wait_s]
        self.expired += len(self._waiting) - len(keep)
        self._waiting = keep

    def seconds_until_ready(self) -> float | None:
        """How long until `take` can answer something; None when nothing eligible waits."""
        now = self.clock()
        self._expire(now)
        if not any(self._eligible(w) for w in self._waiting):
            return None
        return max(0.0, self._last_reply + self.config.min_interval_s - now)

    def _eligible(self, w: _Waiting) -> bool:
        return not (self.config.no_repeat_viewer and w.priority != PAID and w.message.user_key == self._last_user)

    def take(self) -> ChatMessage | None:
        """The message to answer now (its language mapped to one the character speaks), or None."""
        now = self.clock()
        if now - self._last_reply < self.config.min_interval_s:
            return None
        self._expire(now)
        candidates = sorted((w for w in self._waiting if self._eligible(w)), key=lambda w: (w.priority, w.seq))
        if not candidates:
            return None
        best = candidates[0]
        self._waiting.remove(best)
        self._last_user = best.message.user_key
        self._last_reply = now
        msg = best.message
        return dataclasses.replace(msg, language=reply_language(msg.language))

    async def feed(self, submit: Callable[[ChatMessage], Any]) -> None:
        """Hand messages to the director one at a time (e.g. `director.submit_chat`), each once
        the previous reply has ended. Runs until cancelled."""
        while True:
            msg = self.take()
            if msg is None:
                wait = self.seconds_until_ready()
                self._offered.clear()
                if wait is None:
                    await self._offered.wait()
                elif wait > 0:  # until the interval has passed, or something more urgent arrives
                    waiters = {asyncio.ensure_future(self._sleep(wait)), asyncio.ensure_future(self._offered.wait())}
                    try:
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for w in waiters:
                            w.cancel()
                continue
            turn = submit(msg)
            done = getattr(turn, "done", None)
            if done is not None:
                await asyncio.shield(done)  # shield: cancelling the feed must not cancel the turn
