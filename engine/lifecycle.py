"""One lifecycle for every part of a show: prewarm, start, aclose.

A show starts its parts in order and closes them in reverse. Every part has all three hooks (the
base class makes them no-ops), so nothing probes for optional methods, and no part starts a
thread or a process before `start`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

log = logging.getLogger("stagecast.lifecycle")


@runtime_checkable
class Component(Protocol):
    """A part with a beginning and an end."""

    def prewarm(self) -> None:
        """Load what is slow to load (models, programs). Blocking; runs in a worker thread."""
        ...

    async def start(self) -> None:
        """Begin: open connections, start threads and tasks."""
        ...

    async def aclose(self) -> None:
        """End and release everything `start` took. Must return promptly and be safe to call twice."""
        ...


class Lifecycle:
    """Base class with no-op hooks, for parts that need only some of them."""

    def prewarm(self) -> None:
        """Nothing to load."""

    async def start(self) -> None:
        """Nothing to start."""

    async def aclose(self) -> None:
        """Nothing to release."""


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel tasks and wait until they have unwound (their own errors are theirs to log)."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class Lifecycles:
    """Parts started in order and closed in reverse; a close that overruns its share is abandoned."""

    def __init__(self, close_budget_s: float = 1.5) -> None:
        self.close_budget_s = close_budget_s
        self._started: list[tuple[str, Component]] = []

    async def prewarm(self, parts: Sequence[tuple[str, Component]]) -> None:
        """Prewarm every part in a worker thread (in order: their loads compete for the same cores)."""
        for name, part in parts:
            t0 = time.perf_counter()
            await asyncio.to_thread(part.prewarm)
            log.debug("%s prewarmed in %.2f s", name, time.perf_counter() - t0)

    async def start(self, name: str, part: Component) -> None:
        await part.start()
        self._started.append((name, part))

    async def aclose(self) -> None:
        """Close the started parts in reverse order within the close budget, whatever each one does."""
        deadline = time.monotonic() + self.close_budget_s
        while self._started:
            name, part = self._started.pop()
            remaining = max(0.05, deadline - time.monotonic())
            try:
                async with asyncio.timeout(remaining):
                    await part.aclose()
            except TimeoutError:
                log.warning("%s did not close in time; abandoned", name)
            except Exception:
                log.exception("%s failed to close", name)
