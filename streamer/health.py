"""The health board: the latest status of every component, logged when it changes and published
on the event bus, so status, panel and metrics tell the same truth."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from streamer.events import Health, HealthChanged, HealthStatus

log = logging.getLogger("stagecast.health")


class HealthBoard:
    def __init__(self, publish: Callable[[object], None] | None = None) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._health: dict[str, Health] = {}

    def report(self, component: str, status: HealthStatus, detail: str = "") -> None:
        """Record a component's health (any thread); logged and published when the status changes."""
        health = Health(component, status, detail)
        with self._lock:
            previous = self._health.get(component)
            self._health[component] = health
        if previous is not None and previous.status == status and previous.detail == detail:
            return
        if previous is None or previous.status != status:
            level = logging.INFO if status == HealthStatus.OK else logging.WARNING
            log.log(level, "health: %s is %s%s", component, status.value, f" ({detail})" if detail else "")
        if self._publish is not None:
            self._publish(HealthChanged(health))

    def get(self, component: str) -> Health | None:
        with self._lock:
            return self._health.get(component)

    def snapshot(self) -> dict[str, Health]:
        with self._lock:
            return dict(self._health)


def watch_llm(brain: object, health: HealthBoard) -> None:
    """A brain with an LLM fallback reports its state as the `llm` component: ok, or degraded with why
    (e.g. "the server does not answer; answering with the scripted brain")."""
    from engine.brain.fallback import FallbackBrain

    if isinstance(brain, FallbackBrain):
        def on_state(state: str, detail: str) -> None:
            health.report("llm", HealthStatus.OK if state == "ok" else HealthStatus.DEGRADED, detail)

        brain.on_state = on_state
