"""The live show: chat sources -> moderation -> director -> engine -> frame loop -> outputs.

asyncio owns chat and the director; the frame loop and the encoder run in their own threads.
The show ends on Ctrl-C/SIGTERM or when `duration` of stream time has been produced, and closes
its recordings cleanly either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections import deque
from collections.abc import Callable

from engine import language
from engine.clock import FrameClock
from engine.frameloop import FrameLoop
from streamer.assembly import build_engine, configure_torch_threads, encoder_settings
from streamer.chat.base import ChatSource
from streamer.chat.local import LocalChatSource
from streamer.chat.policy import ReplyPolicy
from streamer.chat.replay import ReplaySource
from streamer.chat.twitch import TwitchAuthError, TwitchEventSubSource
from streamer.chat.youtube import YouTubeError, make_youtube_source
from streamer.config import ChatSourceConfig, LocalSourceConfig, ReplaySourceConfig, StagecastConfig
from streamer.director import Director
from streamer.events import ChatMessage, Health, HealthStatus, ModerationDecision
from streamer.obs import ObsController
from streamer.obs_captions import CaptionFollower
from streamer.outputs.factory import build_sinks
from streamer.outputs.hub import OutputHub

log = logging.getLogger("stagecast.show")
STATUS_EVERY_S = 10.0


class Show:
    def __init__(self, config: StagecastConfig, extra_sinks: list[object] | None = None) -> None:
        configure_torch_threads()
        self.config = config
        self.parts = build_engine(config, with_memory=True)
        warmup = getattr(self.parts.voice, "warmup", None)
        if warmup is not None:
            warmup()  # load the zh/ja text front-ends now, not on the first reply
        language.warmup()  # lingua's models hold the GIL ~1 s while they load: now, not mid-stream
        self.timebase = self.parts.timebase
        self.timeline = self.parts.timeline
        self.director = Director(
            self.timeline,
            self.parts.brain,
            self.parts.voice,
            self.parts.moderator,
            character_name=config.character.name,
            cooldown_s=config.director.cooldown_s,
            queue_cap=config.director.queue_cap,
            clock=self.stream_seconds,
            sleep=self.sleep_for,
            memory=self.parts.memory,
            brain_timeout_s=config.director.brain_timeout_s,
            voice_timeout_s=config.director.voice_timeout_s,
            max_reply_s=config.director.max_reply_s,
            on_health=self.set_health,
        )
        self.health: dict[str, Health] = {}
        sinks, frame_sinks = build_sinks(config, on_status=self._sink_status)
        sinks.extend(extra_sinks or [])
        self.hub = OutputHub(encoder_settings(config), sinks, frame_sinks=frame_sinks,
                             on_sink_status=self._sink_status)
        duration = config.show.duration_s
        self.clock = FrameClock(self.timebase, virtual=config.show.mode == "virtual")
        self.loop = FrameLoop(
            self.clock,
            self.timeline,
            self.parts.animator,
            self.parts.renderer,
            self.hub,
            max_frames=None if duration is None else round(duration * self.timebase.fps),
        )
        self.parts.moderator.clock = self.stream_seconds  # rate limits in stream time (virtual mode too)
        self.policy = ReplyPolicy(config.director.policy, config.character.name,
                                  clock=self.stream_seconds, sleep=self.sleep_for)
        # told about every chat decision (the panel's live chat view)
        self.chat_listeners: list[Callable[[ChatMessage, ModerationDecision], None]] = []
        self.recent_chat: deque[tuple[ChatMessage, ModerationDecision]] = deque(maxlen=200)
        self.sources: list[ChatSource] = [self._make_source(s) for s in config.chat.sources]
        self.source_restarts: dict[str, int] = {}
        self.obs = ObsController(config.obs, on_status=self._obs_status) if config.obs.enabled else None
        self._captions: CaptionFollower | None = None
        self._stop = asyncio.Event()

    def set_health(self, component: str, status: HealthStatus, detail: str = "") -> None:
        """Record a component's health (any thread); logged when it changes."""
        previous = self.health.get(component)
        self.health[component] = Health(component, status, detail)
        if previous is None or previous.status != status:
            level = logging.INFO if status == HealthStatus.OK else logging.WARNING
            log.log(level, "health: %s is %s %s", component, status.value, detail)

    def _sink_status(self, name: str, state: str, detail: str) -> None:
        status = {"live": HealthStatus.OK, "ok": HealthStatus.OK, "closed": HealthStatus.OK}.get(
            state, HealthStatus.DEGRADED)
        self.set_health(f"sink:{name}", status, detail)

    def _obs_status(self, state: str, detail: str) -> None:
        self.set_health("obs", HealthStatus.OK if state == "connected" else HealthStatus.DEGRADED, detail)

    def pause(self) -> None:
        """The character stops taking turns (stream and idle go on); OBS shows the pause scene."""
        self.director.pause()
        if self.obs is not None:
            self.obs.on_pause()

    def resume(self) -> None:
        self.director.resume()
        if self.obs is not None:
            self.obs.on_resume()

    def _make_source(self, cfg: ChatSourceConfig) -> ChatSource:
        if isinstance(cfg, ReplaySourceConfig):
            return ReplaySource(cfg.path, self.sleep_until, loop=cfg.loop, loop_gap_s=cfg.loop_gap_s)
        if isinstance(cfg, LocalSourceConfig):
            return LocalChatSource(cfg.host, cfg.port)
        if cfg.type == "twitch":
            return TwitchEventSubSource(cfg)
        return make_youtube_source(cfg)

    def stream_seconds(self) -> float:
        """Stream time: frames produced so far over the frame rate (wall time in live mode)."""
        return self.timeline.next_frame / self.timebase.fps

    async def sleep_for(self, seconds: float) -> None:
        await self.sleep_until(self.stream_seconds() + seconds)

    async def sleep_until(self, seconds: float) -> None:
        """Wait for a moment of stream time (frames, so it also holds in virtual mode)."""
        frame = self.timebase.frame_at_seconds(seconds)
        if frame > 0:
            await self.timeline.wait_for_frame(frame - 1)

    def on_chat(self, message: ChatMessage) -> ModerationDecision:
        """Moderate one message and offer it to the reply policy. Never raises for bad input."""
        decision = self.parts.moderator.check_message(message)
        self.recent_chat.append((message, decision))
        if decision.accepted:
            self.policy.offer(dataclasses.replace(message, text=decision.text))
        for listener in self.chat_listeners:
            try:
                listener(message, decision)
            except Exception:
                log.exception("chat listener failed; the show goes on")
        return decision

    async def _pump(self, source: ChatSource) -> None:
        backoff = 1.0
        while True:
            component = f"chat:{source.name}"
            try:
                self.set_health(component, HealthStatus.OK)
                async for message in source.messages():
                    self.on_chat(message)
                    backoff = 1.0
                log.info("chat source %s finished", source.name)
                return
            except asyncio.CancelledError:
                raise
            except (TwitchAuthError, YouTubeError) as exc:  # retrying a bad credential never helps
                self.set_health(component, HealthStatus.DOWN, str(exc))
                return
            except Exception as exc:
                self.set_health(component, HealthStatus.DEGRADED, f"{type(exc).__name__}: {exc}")
                self.source_restarts[source.name] = self.source_restarts.get(source.name, 0) + 1
                log.exception("chat source %s failed; restarting in %.0f s", source.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            stats = self.loop.stats
            log.info(
                "stream %.0f s: %d frames, %d late, queue %d, encoder %s",
                stats.frames / self.timebase.fps,
                stats.frames,
                stats.late_frames,
                len(self.director.queued),
                self.hub.stats(),
            )

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until stopped or the duration is reached. Returns a process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        mode = "virtual" if self.clock.virtual else "live"
        log.info("show starting (%s mode, %dx%d @ %d fps)", mode, self.config.video.width,
                 self.config.video.height, self.timebase.fps)
        self.panel = None
        if self.config.panel.enabled:
            from streamer.panel.attach import PanelError, start_panel

            try:
                self.panel = await start_panel(self, self.config.panel)
            except PanelError as exc:
                log.error("%s; running without the panel", exc)
        if self.obs is not None:
            await self.obs.start()
            self._captions = CaptionFollower(self.obs.set_caption, loop, self.timebase.fps)
            self.loop.hooks.append(self._captions)
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(self.director.run(), name="director")]
        tasks += [asyncio.create_task(self._pump(s), name=f"chat:{s.name}") for s in self.sources]
        tasks.append(asyncio.create_task(self.policy.feed(self.director.submit_chat), name="reply-policy"))
        tasks.append(asyncio.create_task(self._report(), name="status"))
        self.loop.start()
        finished = asyncio.ensure_future(asyncio.to_thread(self.loop.finished.wait))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({finished, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self.panel is not None:
                await self.panel.close()
            if self.obs is not None:
                if self._captions is not None:
                    self.loop.hooks.remove(self._captions)
                await self.obs.stop()
            stopped.cancel()
            self.loop.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await finished
            await asyncio.to_thread(self.hub.close)
            aclose = getattr(self.parts.brain, "aclose", None)
            if aclose is not None:
                await aclose()
            await asyncio.to_thread(self.director.close)
            if self.parts.memory is not None:
                self.parts.memory.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        stats = self.loop.stats
        log.info("show stopped after %d frames (%d late)", stats.frames, stats.late_frames)
        if self.loop.error is not None:
            log.error("the frame loop failed: %s", self.loop.error)
            return 1
        return 0

