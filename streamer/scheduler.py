"""The one waiting room for turns: which turn the character performs next, and when.

Every turn waits here: a moderator's say-now, a co-host's words, chat offered after moderation,
turns submitted directly. One priority order (say-now > co-host voice > paid > moderator chat >
mention > chat, oldest first within a rank), one cap (over it the oldest of the least urgent is
dropped, never a say-now), one spacing rule (`cooldown_s` of quiet after a turn ends before the
next one starts; say-now and co-host voice are exempt). Offered chat also passes the reply rules:
regular chat is sampled 1 in N, stale messages expire, and no viewer gets two replies in a row
(unless paid). The choice is made when the character is free, so the reply goes to the best
candidate of that moment. Time is stream time, so virtual mode paces like live mode.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.clock import StreamClock
from engine.events import EmotionCue
from streamer.config import ReplyPolicyConfig
from streamer.events import ChatKind, ChatMessage
from streamer.turns import Priority, Turn, TurnOwner, TurnStatus, prompt_for

log = logging.getLogger("stagecast.scheduler")

EXEMPT_FROM_SPACING = frozenset({Priority.SAY, Priority.VOICE})


@dataclass(frozen=True)
class Offer:
    """What happened to an offered chat message."""

    accepted: bool
    reason: str  # "queued", "sampled_out", "dropped" (over the cap at once)
    turn: Turn | None = None


class TurnScheduler:
    def __init__(self, policy: ReplyPolicyConfig, character_name: str, clock: StreamClock,
                 cooldown_s: float = 1.0, queue_cap: int = 20) -> None:
        self.policy = policy
        self.clock = clock
        self.cooldown_s = cooldown_s
        self.queue_cap = queue_cap
        self._names = [n.casefold() for n in [character_name, *policy.mention_names] if n.strip()]
        self._waiting: list[tuple[int, int, Turn]] = []  # (priority, seq, turn)
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._regular = 0
        self._last_viewer: str | None = None
        self._last_end = -float("inf")
        self._changed = asyncio.Event()
        self.paused = False
        self.owner: TurnOwner | None = None  # who performs the turns (their interrupt goes there)
        self.observer: Callable[[Turn], None] | None = None  # told of every turn's status changes
        self.sampled_out = 0
        self.dropped = 0  # turns dropped over the cap
        self.expired = 0

    # ----- turns in ---------------------------------------------------------------------------------
    def new_turn(self, priority: Priority, text: str, language: str | None = None, user_name: str = "",
                 user_id: str = "", verbatim: bool = False, emotion: EmotionCue | None = None) -> Turn:
        """A turn handle, performed by this scheduler's owner."""
        prompt = prompt_for(text, language, user_name, user_id)
        return Turn(f"t{next(self._ids)}", priority, prompt, verbatim=verbatim, emotion=emotion, owner=self.owner,
                    observer=self.observer)

    def priority_of(self, message: ChatMessage) -> Priority:
        if self.policy.paid_first and message.paid:
            return Priority.PAID
        if self.policy.mods_first and message.roles & {"broadcaster", "mod"}:
            return Priority.MOD
        text = message.text.casefold()
        if message.kind is not ChatKind.CHAT or any(name in text for name in self._names):
            return Priority.MENTION
        return Priority.CHAT

    def offer(self, message: ChatMessage) -> Offer:
        """A moderated chat message: sampled, then queued as a turn under the reply rules."""
        priority = self.priority_of(message)
        if priority == Priority.CHAT:
            self._regular += 1
            if self._regular % self.policy.answer_one_in:
                self.sampled_out += 1
                return Offer(False, "sampled_out")
        turn = self.new_turn(priority, message.text, message.language, message.user_name, message.user_id)
        turn.viewer_key = message.user_key
        turn.reply_to = message
        self.submit(turn)
        if turn.status == TurnStatus.SKIPPED:
            return Offer(False, "dropped", turn)
        return Offer(True, "queued", turn)

    def submit(self, turn: Turn) -> Turn:
        """Queue a turn (no sampling); over the cap the oldest of the least urgent is dropped."""
        turn.arrived = self.clock.now()
        self._waiting.append((turn.priority, next(self._seq), turn))
        while len(self._waiting) > self.queue_cap:
            worst = max(self._waiting, key=lambda e: (e[0], -e[1]))
            if worst[0] == Priority.SAY:
                break
            self._waiting.remove(worst)
            self.dropped += 1
            turn_dropped = worst[2]
            turn_dropped.settle(TurnStatus.SKIPPED)
            log.info("queue full: dropped turn %s", turn_dropped.id)
        self._changed.set()
        return turn

    # ----- turns out ----------------------------------------------------------------------------------
    @property
    def queued(self) -> list[Turn]:
        return [t for _, _, t in sorted(self._waiting, key=lambda e: (e[0], e[1]))]

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.queued)

    def __len__(self) -> int:
        return len(self._waiting)

    def _expire(self, now: float) -> None:
        keep = []
        for entry in self._waiting:
            turn = entry[2]
            if turn.viewer_key is not None and turn.priority != Priority.PAID \
                    and now - turn.arrived > self.policy.max_wait_s:
                turn.settle(TurnStatus.SKIPPED)
                self.expired += 1
            else:
                keep.append(entry)
        self._waiting = keep

    def _eligible(self, turn: Turn) -> bool:
        return not (self.policy.no_repeat_viewer and turn.viewer_key is not None
                    and turn.priority != Priority.PAID and turn.viewer_key == self._last_viewer)

    def _best(self) -> tuple[Turn | None, float]:
        """The turn to perform now, or None and how long until one may start (inf: nothing eligible)."""
        now = self.clock.now()
        self._expire(now)
        wait = float("inf")
        for _, _, turn in sorted(self._waiting, key=lambda e: (e[0], e[1])):
            if not self._eligible(turn):
                continue
            gap = 0.0 if turn.priority in EXEMPT_FROM_SPACING else self._last_end + self.cooldown_s - now
            if gap <= 0:
                return turn, 0.0
            wait = min(wait, gap)
        return None, wait

    def take(self) -> Turn | None:
        """The turn to perform now (removed from the queue), or None."""
        if self.paused:
            return None
        turn, _ = self._best()
        if turn is not None:
            self._waiting = [e for e in self._waiting if e[2] is not turn]
            if turn.viewer_key is not None:
                self._last_viewer = turn.viewer_key
        return turn

    async def next(self) -> Turn:
        """Wait (in stream time) for the next turn to perform."""
        while True:
            self._changed.clear()
            if not self.paused:
                turn = self.take()
                if turn is not None:
                    return turn
                _, wait = self._best()
            else:
                wait = float("inf")
            if wait == float("inf"):
                await self._changed.wait()
                continue
            changed = asyncio.ensure_future(self._changed.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(wait))
            try:  # until the gap has passed, or something changed (a more urgent turn, a resume)
                await asyncio.wait({changed, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                sleeper.cancel()

    def ended(self) -> None:
        """The performed turn has ended: the spacing rule counts from now."""
        self._last_end = self.clock.now()
        self._changed.set()

    # ----- moderator commands -------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._changed.set()

    def remove(self, turn: Turn) -> bool:
        """Take a waiting turn out (skip); False when it was not waiting."""
        before = len(self._waiting)
        self._waiting = [e for e in self._waiting if e[2] is not turn]
        if len(self._waiting) == before:
            return False
        turn.settle(TurnStatus.SKIPPED)
        return True

    def clear(self) -> int:
        """Drop every waiting turn; returns how many."""
        dropped = [t for _, _, t in self._waiting]
        self._waiting = []
        for turn in dropped:
            turn.settle(TurnStatus.SKIPPED)
        return len(dropped)
