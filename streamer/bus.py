"""The show's event bus: one stream of typed events that anyone can subscribe to.

Publishers run on any thread (the frame loop, sink threads, the event loop). A subscriber picks
where it is called: on the show's event loop (the default; from other threads the call is handed
over with `call_soon_threadsafe`), or `inline` on the publisher's thread for consumers that must
see every frame at once and do almost nothing (probes in tests and benchmarks). A subscriber that
raises is logged and counted; it never reaches the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("stagecast.bus")

Handler = Callable[[Any], None]


@dataclass(eq=False)
class Subscription:
    handler: Handler
    types: tuple[type, ...]
    inline: bool
    bus: EventBus | None = field(default=None, repr=False)
    errors: int = 0

    def close(self) -> None:
        if self.bus is not None:
            self.bus._remove(self)
            self.bus = None


class EventBus:
    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()  # replaced, never mutated: publishers iterate lock-free
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.handler_errors = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver non-inline events on `loop` (the show's event loop) from now on."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def subscribe(self, handler: Handler, *types: type, inline: bool = False) -> Subscription:
        """Call `handler(event)` for every event of `types` (all events when none are given)."""
        sub = Subscription(handler, types, inline, self)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def wants(self, kind: type) -> bool:
        """True when someone subscribes to `kind` (publishers skip building events nobody reads)."""
        return any(not s.types or kind in s.types for s in self._subs)

    def publish(self, event: object) -> None:
        kind = type(event)
        loop = self._loop
        for sub in self._subs:
            if sub.types and kind not in sub.types:
                continue
            if sub.inline or loop is None or threading.get_ident() == self._loop_thread:
                self._call(sub, event)
                continue
            try:
                loop.call_soon_threadsafe(self._call, sub, event)
            except RuntimeError:  # the loop closed: the show is over
                return

    def _call(self, sub: Subscription, event: object) -> None:
        if sub.bus is None:
            return  # unsubscribed while the event was on its way
        try:
            sub.handler(event)
        except Exception:
            sub.errors += 1
            self.handler_errors += 1
            if sub.errors == 1:
                log.exception("event subscriber %r failed on %s; it stays subscribed",
                              getattr(sub.handler, "__qualname__", sub.handler), type(event).__name__)
