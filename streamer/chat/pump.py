"""A chat source attached to a show: its messages go in through the control surface; it restarts
with backoff when it fails and reports its health there."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from streamer.backoff import Backoff
from streamer.chat.base import ChatSource
from streamer.chat.twitch import TwitchAuthError
from streamer.chat.youtube import YouTubeError
from streamer.config import BackoffConfig
from streamer.control import ShowControl
from streamer.events import HealthStatus

log = logging.getLogger("stagecast.chat")

PERMANENT = (TwitchAuthError, YouTubeError)  # retrying a bad credential never helps


class ChatPump:
    """An attachment (see streamer.show.Attachment) that reads one chat source."""

    def __init__(self, source: ChatSource, backoff: BackoffConfig | None = None) -> None:
        self.source = source
        self.name = f"chat:{source.name}"
        self._backoff = Backoff.from_config(backoff or BackoffConfig())
        self._task: asyncio.Task[None] | None = None

    async def start(self, control: ShowControl) -> None:
        self._task = asyncio.create_task(self._run(control), name=self.name)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, control: ShowControl) -> None:
        while True:
            try:
                control.report_health(self.name, HealthStatus.OK)
                async for message in self.source.messages():
                    control.submit_chat(message)
                    self._backoff.reset()
                log.info("chat source %s finished", self.source.name)
                return
            except PERMANENT as exc:
                control.report_health(self.name, HealthStatus.DOWN, str(exc))
                return
            except Exception as exc:
                control.report_health(self.name, HealthStatus.DEGRADED, f"{type(exc).__name__}: {exc}")
                control.count_restart(self.name)
                delay = self._backoff.next_delay()
                log.exception("chat source %s failed; restarting in %.1f s", self.source.name, delay)
                await asyncio.sleep(delay)
