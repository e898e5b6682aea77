"""OBS as an attachment of a show: the controller follows the show's captions and pause state
through the control surface, and reports its connection as the show's "obs" health."""

from __future__ import annotations

from streamer.bus import Subscription
from streamer.config import ObsConfig
from streamer.control import ShowControl
from streamer.events import CaptionChanged, HealthStatus, PauseChanged
from streamer.obs import CONNECTED, CONNECTING, STOPPED, ObsChanged, ObsController
from streamer.obs_captions import CaptionFollower


def obs_health(change: ObsChanged) -> HealthStatus:
    """Degraded only when something went wrong: a first connect that has not failed yet, and a clean
    stop, are not faults (the log line "health: obs is degraded" must mean one)."""
    if change.state in (CONNECTED, STOPPED) or (change.state == CONNECTING and not change.detail):
        return HealthStatus.OK
    return HealthStatus.DEGRADED


class ObsAttachment:
    name = "obs"

    def __init__(self, config: ObsConfig) -> None:
        self.config = config
        self.controller: ObsController | None = None
        self._captions: CaptionFollower | None = None
        self._subscriptions: list[Subscription] = []

    async def start(self, control: ShowControl) -> None:
        def report(change: ObsChanged) -> None:
            control.report_health("obs", obs_health(change), change.detail)

        controller = self.controller = ObsController(self.config, publish=report)
        if control.status().paused:
            controller.on_pause()
        self._captions = CaptionFollower(controller.set_caption)
        self._subscriptions = [
            control.subscribe(self._captions, CaptionChanged),
            control.subscribe(lambda e: controller.on_pause() if e.paused else controller.on_resume(), PauseChanged),
        ]
        await controller.start()

    async def aclose(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        if self._captions is not None:
            self._captions.close()
        if self.controller is not None:
            await self.controller.stop()
