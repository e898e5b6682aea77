"""uvicorn's HTTP/1.1 protocol with a connection cap and a deadline for reading each request.

uvicorn times out idle keep-alive connections, but a connection that never sends a request, or stops
halfway through its headers or body, is held for ever: 400 of them were still held after 5 s. Here
every connection must deliver a complete request within `read_timeout_s` of connecting (or of
starting the next one), and at most `max_connections` are open at once (the rest are closed as soon
as they are accepted). A request already read and being answered, and a connection upgraded to a
WebSocket, are not timed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("stagecast.panel")


class GuardedH11Protocol(H11Protocol):
    max_connections = 100
    read_timeout_s = 10.0
    refused = 0
    timed_out = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, max_connections: int, read_timeout_s: float) -> type[GuardedH11Protocol]:
        """A subclass with these limits (uvicorn takes a protocol class, not an instance)."""
        return type(cls.__name__, (cls,), {"max_connections": max_connections, "read_timeout_s": read_timeout_s})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            type(self).refused += 1
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)

    def on_response_complete(self) -> None:
        if self.cycle is None or not self.cycle.more_body:
            self._disarm()  # idle from here: uvicorn's keep-alive timeout takes over
        # else: answered early (a 401 before the body) while the body still trickles in: the deadline stands
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:  # closed, or now a WebSocket
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            return  # the whole request arrived; the app is answering it
        type(self).timed_out += 1
        log.debug("panel: closed a connection that sent no complete request in %.0f s", self.read_timeout_s)
        transport.abort()
