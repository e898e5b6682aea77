"""A chat source attached to a show: its messages go in through the control surface; it restarts
with backoff when it fails and reports its health there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from engine.lifecycle import cancel_and_wait
from streamer.backoff import Backoff
from streamer.bus import Subscription
from streamer.chat.base import ChatReplier, ChatSource, ReportsHealth
from streamer.chat.twitch import TwitchAuthError
from streamer.chat.util import RecentIds
from streamer.chat.youtube import YouTubeError
from streamer.config import BackoffConfig
from streamer.control import ShowControl
from streamer.events import HealthStatus, TurnChanged

log = logging.getLogger("stagecast.chat")

PERMANENT = (TwitchAuthError, YouTubeError)  # retrying a bad credential never helps


class ChatPump:
    """An attachment (see streamer.show.Attachment) that reads one chat source."""

    def __init__(self, source: ChatSource, backoff: BackoffConfig | None = None) -> None:
        self.source = source
        self.name = f"chat:{source.name}"
        self._backoff = Backoff.from_config(backoff or BackoffConfig())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replies: Subscription | None = None
        self._submitted = RecentIds(1000)  # ids of this source's messages, so replies go back only here

    async def start(self, control: ShowControl) -> None:
        if isinstance(self.source, ReportsHealth):  # e.g. "chat:twitch:x:token" -> "twitch token expires in 3h"
            self.source.on_health = lambda part, status, detail: control.report_health(
                f"{self.name}:{part}", status, detail)
        self._spawn(self._run(control), self.name)
        if isinstance(self.source, ChatReplier) and self.source.replies_enabled:
            self._replies = control.subscribe(self._on_turn, TurnChanged)

    async def aclose(self) -> None:
        if self._replies is not None:
            self._replies.close()
        await cancel_and_wait(*self._tasks)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_turn(self, event: TurnChanged) -> None:
        """A reply to one of this source's messages was heard in full: post it into the chat too."""
        message = event.reply_to
        if event.status != "done" or not event.played_text or message is None:
            return
        if message.message_id not in self._submitted:
            return
        assert isinstance(self.source, ChatReplier)
        self._spawn(self.source.send_reply(event.played_text, reply_to=message), f"{self.name}:reply")

    async def _run(self, control: ShowControl) -> None:
        while True:
            try:
                control.report_health(self.name, HealthStatus.OK)
                async for message in self.source.messages():
                    self._submitted.add(message.message_id)
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
