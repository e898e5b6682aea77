"""The live show: the composition root.

It builds the core (engine parts, the turn pipeline, the frame loop, the outputs, chat intake) and
its control surface, starts every part in order and closes them in reverse. Everything that feeds
or steers the show from outside (chat sources, the panel, OBS, listeners) is an `Attachment`,
started last with the control surface (`streamer.attachments.build_attachments(config)` builds
what a config asks for). asyncio owns chat and the director; the frame loop and the encoder run in
their own threads. The show ends on Ctrl-C/SIGTERM, `ShowControl.stop()`, or when `duration` of
stream time has been produced, and closes its recordings cleanly either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from typing import Protocol

from engine import language
from engine.clock import FrameClock
from engine.frameloop import FrameLoop
from engine.lifecycle import Component, Lifecycle, Lifecycles, cancel_and_wait
from streamer.assembly import build_engine, configure_torch_threads, encoder_settings
from streamer.audio_tap import OutputAudioTap
from streamer.bus import EventBus
from streamer.chat.intake import ChatIntake
from streamer.config import StagecastConfig
from streamer.control import ShowControl, ShowParts, SinkView
from streamer.director import build_director
from streamer.events import HealthStatus, ShowStopping, SinkChanged
from streamer.frame_events import FrameEvents
from streamer.health import HealthBoard, watch_llm
from streamer.outputs.factory import build_sinks
from streamer.outputs.hub import OutputHub
from streamer.outputs.sink import PacketSink

log = logging.getLogger("stagecast.show")
STATUS_EVERY_S = 10.0
CLOSE_BUDGET_S = 1.5  # every part closes within this, whatever it does (Ctrl-C to exit <= 2 s)
SINK_CLOSE_S = 0.5  # outputs still stuck after this at the end of a show are abandoned (the recording is not)


class Attachment(Protocol):
    """Something that steers or watches the show from outside (the panel, OBS, a listener)."""

    name: str

    async def start(self, control: ShowControl) -> None: ...

    async def aclose(self) -> None: ...


class _Attached(Lifecycle):
    """An attachment as a part of the show: started with the control surface."""

    def __init__(self, attachment: Attachment, control: ShowControl) -> None:
        self.attachment, self.control = attachment, control

    async def start(self) -> None:
        await self.attachment.start(self.control)

    async def aclose(self) -> None:
        await self.attachment.aclose()


class _StatusLog(Lifecycle):
    """A line in the log every STATUS_EVERY_S: frames, late frames, queue, encoder."""

    def __init__(self, control: ShowControl) -> None:
        self.control = control
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-log")

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            s = self.control.status()
            sinks = ", ".join(_sink_line(k) for k in s.sinks)
            log.info("stream %.0f s: %d frames, %d late, queue %d, encoder %.1f ms, sinks: %s", s.stream_s, s.frames,
                     s.late_frames, len(s.queue), s.encoder.ms_median, sinks or "none")


def _sink_line(sink: SinkView) -> str:
    """An output in the periodic log: its state as viewers get it, and for a network link its outage."""
    line = f"{sink.name} {sink.state}"
    if sink.link is not None:
        now = f"{sink.off_air_s:.0f} s off air now, " if sink.state not in ("live", "closed") else ""
        line += f" ({now}{sink.off_air_total_s:.0f} s in all, {sink.reconnects} reconnects, {sink.dropped} dropped)"
    elif sink.dropped or sink.restarts:
        line += f" ({sink.dropped} dropped, {sink.restarts} restarts)"
    return line


class Show:
    def __init__(self, config: StagecastConfig, extra_sinks: Sequence[PacketSink] = (),
                 attachments: Sequence[Attachment] = ()) -> None:
        configure_torch_threads()
        self.config = config
        self.bus = EventBus()
        self.health = HealthBoard(self.bus.publish)
        self.parts = build_engine(config, with_memory=True)
        watch_llm(self.parts.brain, self.health)
        self.timebase = self.parts.timebase
        self.timeline = self.parts.timeline
        self.clock = self.parts.clock
        d = config.director
        self.director = build_director(
            self.timeline, self.parts.brain, self.parts.voice, self.parts.moderator, config.character.name,
            clock=self.clock, health=self.health, publish=self.bus.publish, memory=self.parts.memory,
            policy=d.policy, cooldown_s=d.cooldown_s, queue_cap=d.queue_cap, brain_timeout_s=d.brain_timeout_s,
            voice_timeout_s=d.voice_timeout_s, max_reply_s=d.max_reply_s)
        self.intake = ChatIntake(self.parts.moderator, self.director.scheduler, self.bus.publish)
        sinks, frame_sinks = build_sinks(config, publish=self.bus.publish)
        self.hub = OutputHub(encoder_settings(config), [*sinks, *extra_sinks], frame_sinks=frame_sinks,
                             publish=self.bus.publish, sink_close_s=SINK_CLOSE_S)
        self.bus.subscribe(self._sink_health, SinkChanged, inline=True)
        self.tap = OutputAudioTap(self.timebase.sample_rate)  # the show's own voice, for the echo guard
        duration = config.show.duration_s
        self.loop = FrameLoop(
            FrameClock(self.timebase, virtual=config.show.mode == "virtual"),
            self.timeline,
            self.parts.animator,
            self.parts.renderer,
            self.hub,
            max_frames=None if duration is None else round(duration * self.timebase.fps),
            observers=[FrameEvents(self.bus, self.timeline, self.tap)],
            thread_nice=config.show.frame_nice,
        )
        self.attachments: list[Attachment] = list(attachments)
        self.restarts: dict[str, int] = {}
        self.control = ShowControl(ShowParts(
            timebase=self.timebase, clock=self.clock, virtual=config.show.mode == "virtual",
            width=config.video.width, height=config.video.height, director=self.director, intake=self.intake,
            moderator=self.parts.moderator, loop=self.loop, hub=self.hub, health=self.health, bus=self.bus,
            attachments=[a.name for a in self.attachments], restarts=self.restarts, request_stop=self.request_stop,
            timeline=self.timeline, tap=self.tap))
        self._stop = asyncio.Event()

    def attach(self, *attachments: Attachment) -> None:
        """Add attachments before `run` (they start after the core, in this order)."""
        self.attachments.extend(attachments)
        self.control.attached([a.name for a in self.attachments])

    def _sink_health(self, event: SinkChanged) -> None:
        # connecting with no error yet is a start, not a fault; an error while connecting is
        ok = event.state in ("live", "ok", "closed") or (event.state == "connecting" and not event.detail)
        self.health.report(f"sink:{event.name}", HealthStatus.OK if ok else HealthStatus.DEGRADED, event.detail)

    def request_stop(self) -> None:
        self._stop.set()

    def _parts_in_order(self) -> list[tuple[str, Component]]:
        """Start order; the show closes them in reverse."""
        p = self.parts
        parts: list[tuple[str, Component]] = []
        if p.memory is not None:
            parts.append(("memory", p.memory))
        parts += [("brain", p.brain), ("voice", p.voice), ("renderer", p.renderer), ("outputs", self.hub),
                  ("frame loop", self.loop),
                  ("director", self.director), ("status log", _StatusLog(self.control))]
        parts += [(a.name, _Attached(a, self.control)) for a in self.attachments]
        return parts

    async def run(self) -> int:
        """Run until stopped or the duration is reached. Returns a process exit code."""
        loop = asyncio.get_running_loop()
        self.bus.bind(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        mode = "virtual" if self.loop.clock.virtual else "live"
        log.info("show starting (%s mode, %dx%d @ %d fps)", mode, self.config.video.width,
                 self.config.video.height, self.timebase.fps)
        parts = Lifecycles(close_budget_s=CLOSE_BUDGET_S)
        order = self._parts_in_order()
        began = time.monotonic()
        try:
            # models load before the clock starts: lingua holds the GIL ~1 s while it loads
            await asyncio.to_thread(language.warmup)
            await parts.prewarm(order)
            loaded = time.monotonic()
            for name, part in order:
                try:
                    await parts.start(name, part)
                except Exception as exc:
                    if name not in {a.name for a in self.attachments}:
                        raise
                    log.error("%s could not start (%s); the show runs without it", name, exc)
                    self.health.report(name, HealthStatus.DOWN, str(exc))
                if part is self.loop:
                    log.info("on air (models and programs loaded in %.1f s)", loaded - began)
            finished = asyncio.ensure_future(asyncio.to_thread(self.loop.finished.wait))
            stopped = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({finished, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if not finished.done():
                    self.loop.stop()
                    await finished
        finally:
            self.bus.publish(ShowStopping())
            await parts.aclose()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        stats = self.loop.stats
        log.info("show stopped after %d frames (%d late)", stats.frames, stats.late_frames)
        if self.loop.error is not None:
            log.error("the frame loop failed: %s", self.loop.error)
            return 1
        return 0
