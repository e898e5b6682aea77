"""An LLM brain with a scripted stand-in: the show keeps answering while the LLM server is down.

After a failed reply the wrapper asks the server at once whether it is up ("up", "busy" with an
abandoned reply, "down"); the next turn waits briefly for that answer.  A server that is down, or
`degrade_after` failures in a row, switch the show to the fallback brain; a busy server gets the
fallback for that one turn (no request queues behind an abandoned one).  While degraded, the server
is asked every `recheck_s`, and the LLM is used again as soon as it answers.  Every switch is
reported through `on_state(state, detail)`: the show turns it into health ("llm" ok/degraded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from engine.brain.base import Brain, BrainError, HistoryEntry, Prompt
from engine.lifecycle import Lifecycle

log = logging.getLogger("stagecast.brain.fallback")


class ProbedBrain(Brain, Protocol):
    """A brain that can say whether its server answers: "up", "busy" or "down"."""

    abandoned: bool  # a request of ours may still be running on the server

    async def probe(self, timeout_s: float = 2.0) -> str: ...

    def cover_line(self, language: str) -> str | None: ...

    @property
    def max_wait_s(self) -> float: ...


class FallbackBrain(Lifecycle):
    def __init__(self, primary: ProbedBrain, fallback: Brain, *, degrade_after: int = 2, recheck_s: float = 2.0,
                 probe_timeout_s: float = 2.0, name: str = "LLM",
                 on_state: Callable[[str, str], None] | None = None) -> None:
        self.primary = primary
        self.fallback = fallback
        self.degrade_after = max(1, degrade_after)
        self.recheck_s = recheck_s
        self.probe_timeout_s = probe_timeout_s
        self.name = name
        self.on_state = on_state
        self.degraded = False
        self.failures = 0  # in a row
        self.primary_started_at: float | None = None  # time.monotonic() the LLM was last asked for a reply
        self.used: list[str] = []  # "primary"/"fallback" per reply (the latest 200), for tests and status
        self._probe: asyncio.Task[bool] | None = None  # the check after a failure: True when the LLM may be asked
        self._recheck: asyncio.Task[None] | None = None

    @property
    def max_wait_s(self) -> float:
        return self.primary.max_wait_s + self.probe_timeout_s

    def cover_line(self, language: str) -> str | None:
        return self.primary.cover_line(language)

    async def start(self) -> None:
        await self.primary.start()
        await self.fallback.start()

    async def aclose(self) -> None:
        for task in (self._probe, self._recheck):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self.primary.aclose()
        await self.fallback.aclose()

    def _report(self, state: str, detail: str) -> None:
        if self.on_state is not None:
            self.on_state(state, detail)

    def _degrade(self, why: str) -> None:
        if not self.degraded:
            log.warning("%s: %s; the scripted brain answers until it is back", self.name, why)
        self.degraded = True
        self._report("degraded", f"{why}; answering with the scripted brain")
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._recheck_loop(), name="llm-recheck")

    def _recover(self) -> None:
        if self.degraded:
            log.info("%s: the server answers again; back to the LLM", self.name)
        self.degraded = False
        self.failures = 0
        self._report("ok", "")

    async def _recheck_loop(self) -> None:
        while self.degraded:
            await asyncio.sleep(self.recheck_s)
            if await self.primary.probe(self.probe_timeout_s) == "up":
                self._recover()

    async def _check(self) -> bool:
        """After a failure: is the server down (switch now, so health says so at once), busy, or up?"""
        state = await self.primary.probe(self.probe_timeout_s)
        if state == "down":
            self._degrade("the server does not answer")
        elif state == "busy":
            self._report("degraded", "the server is still busy with an abandoned reply")
        return state == "up"

    async def _choose(self) -> bool:
        """True: ask the LLM this turn."""
        if self._probe is None and self.primary.abandoned and not self.degraded:
            self._probe = asyncio.create_task(self._check(), name="llm-probe")  # an interrupted reply may linger
        if self._probe is not None:  # the check started after the last failure
            probe, self._probe = self._probe, None
            if not await probe and not self.degraded:  # busy: the fallback answers; asked again next turn
                return False
        if self.degraded:  # do not wait for the next recheck when a turn is waiting now
            if await self.primary.probe(self.probe_timeout_s) != "up":
                return False
            self._recover()
        return True

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        use_primary = await self._choose()
        self.used = [*self.used[-199:], "primary" if use_primary else "fallback"]
        if not use_primary:
            async with contextlib.aclosing(self.fallback.reply(prompt, history)) as stream:
                async for piece in stream:
                    yield piece
            return
        self.primary_started_at = time.monotonic()
        try:
            async with contextlib.aclosing(self.primary.reply(prompt, history)) as stream:
                async for piece in stream:
                    yield piece
        except BrainError as exc:
            self.failures += 1
            self._probe = asyncio.create_task(self._check(), name="llm-probe")
            if self.failures >= self.degrade_after:
                self._degrade(f"{self.failures} failed replies in a row ({exc})")
            else:
                self._report("degraded", str(exc))
            raise
        self._recover()  # health dedups repeated "ok"
