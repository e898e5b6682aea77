"""The frame loop: one thread that turns the timeline into frames on the master clock.

Every frame n: run actions due at n, pull the timeline, animate, render, hand (image, audio) to
the consumer, then tell the observers what the frame carried. In live mode a frame whose slot has
already passed repeats the last image (a late frame) — time and audio never skip. Virtual mode is
the same code with a clock that never waits.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from engine.animator import Animator
from engine.clock import FrameClock
from engine.lifecycle import Lifecycle
from engine.priority import set_thread_nice
from engine.render.base import Renderer
from engine.timeline import FrameInputs, Timeline

log = logging.getLogger("stagecast.frameloop")


class FrameConsumer(Protocol):
    def submit(self, n: int, rgb: np.ndarray, audio: np.ndarray) -> None:
        """Take frame n's picture [H,W,3] uint8 and its audio [samples_per_frame] float32."""
        ...


FrameObserver = Callable[[int, FrameInputs, torch.Tensor], None]
"""Called on the frame-loop thread after each frame with what the frame carried; must be quick."""


@dataclass
class LoopStats:
    frames: int = 0
    late_frames: int = 0
    render_errors: int = 0
    ms_animate: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    ms_render: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    ms_submit: deque[float] = field(default_factory=lambda: deque(maxlen=300))

    def medians(self) -> dict[str, float]:
        def med(d: deque[float]) -> float:
            return statistics.median(d) if d else 0.0

        return {"animate": med(self.ms_animate), "render": med(self.ms_render), "submit": med(self.ms_submit)}


class FrameLoop(Lifecycle):
    def __init__(
        self,
        clock: FrameClock,
        timeline: Timeline,
        animator: Animator,
        renderer: Renderer,
        consumer: FrameConsumer,
        max_frames: int | None = None,
        before_frame: Callable[[int], None] | None = None,
        observers: Sequence[FrameObserver] = (),
        thread_nice: int | None = None,
    ) -> None:
        """`thread_nice`: the OS priority of the loop's thread in the live show (engine.priority)."""
        self.clock = clock
        self.timeline = timeline
        self.animator = animator
        self.renderer = renderer
        self.consumer = consumer
        self.max_frames = max_frames
        self.before_frame = before_frame
        self.observers = tuple(observers)
        self.thread_nice = thread_nice
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_image: np.ndarray | None = None
        self.latest: tuple[int, np.ndarray] | None = None  # (n, image) for previews; replaced, never mutated
        self.error: BaseException | None = None
        self.finished = threading.Event()

    async def start(self) -> None:
        """Run on a thread of its own (the live show)."""
        self._thread = threading.Thread(target=self._run_guarded, name="frame-loop", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        self.stop()
        await asyncio.to_thread(self.finished.wait)

    def stop(self) -> None:
        self._stop.set()
        self.clock.stop()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Run on the calling thread (offline rendering and tests)."""
        self._run_guarded()

    def _run_guarded(self) -> None:
        try:
            if self._thread is threading.current_thread():  # its own thread: the live show
                set_thread_nice(self.thread_nice, "frame loop")
            self._run()
        except BaseException as exc:
            self.error = exc
            log.exception("frame loop stopped by an error")
        finally:
            self.finished.set()

    def _run(self) -> None:
        # first renders pay one-time costs (allocations, kernels); pay them before the clock starts
        from engine.state import neutral_state

        self._render(neutral_state())
        self.clock.start()
        n = 0
        while not self._stop.is_set() and (self.max_frames is None or n < self.max_frames):
            self.step(n)
            n += 1

    def step(self, n: int) -> None:
        """Produce frame n (public so tests can drive the loop frame by frame)."""
        self.clock.wait_for(n)
        if self.before_frame is not None:
            self.before_frame(n)
        t0 = time.perf_counter()
        inputs = self.timeline.pull(n)
        state = self.animator.state(inputs)
        t1 = time.perf_counter()
        if self._last_image is not None and self.clock.is_late(n):
            image = self._last_image  # behind schedule: keep time, repeat the picture
            self.stats.late_frames += 1
        else:
            image = self._render(state)
        t2 = time.perf_counter()
        self.consumer.submit(n, image, inputs.audio)
        self.latest = (n, image)
        t3 = time.perf_counter()
        for observe in self.observers:
            observe(n, inputs, state)
        self.stats.frames += 1
        self.stats.ms_animate.append((t1 - t0) * 1000)
        self.stats.ms_render.append((t2 - t1) * 1000)
        self.stats.ms_submit.append((t3 - t2) * 1000)

    def _render(self, state: torch.Tensor) -> np.ndarray:
        """Render one state; on failure repeat the last picture (black before the first) — time goes on."""
        try:
            with torch.inference_mode():
                image = self.renderer.render(state.unsqueeze(0))[0].numpy()
        except Exception:
            self.stats.render_errors += 1
            log.exception("render failed; repeating the last frame")
            if self._last_image is None:
                self._last_image = np.zeros((self.renderer.height, self.renderer.width, 3), dtype=np.uint8)
            return self._last_image
        self._last_image = image
        return image
