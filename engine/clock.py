"""Time in a show: the time base, the frame clock that paces frames, and the stream clock.

The frame clock says when frame n is due: t0 + n/F in live mode, at once in virtual mode. Pacing
against an absolute schedule means lateness never accumulates into drift; the same frame loop
runs both modes, so tests in virtual time exercise the code that goes on air.

The stream clock is the one object everything else asks for "now" and sleeps on: stream time is
the frames produced so far over the frame rate, so cooldowns, rate limits and timeouts behave the
same in live mode and in virtual mode at any speed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TimeBase:
    """Video at `fps`, audio at `sample_rate`; every frame carries exactly `samples_per_frame`."""

    fps: int = 30
    sample_rate: int = 48000

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.sample_rate <= 0:
            raise ValueError("fps and sample_rate must be positive")
        if self.sample_rate % self.fps:
            raise ValueError(
                f"audio.sample_rate ({self.sample_rate}) / video.fps ({self.fps}) must be an integer so every frame "
                "carries a whole number of samples (e.g. 48000 with 24, 25, 30, 50, 60)")

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    def frame_start_sample(self, n: int) -> int:
        return n * self.samples_per_frame

    def frame_at_seconds(self, seconds: float) -> int:
        """The first frame whose start is at or after `seconds` of stream time."""
        return -int(-round(seconds * self.fps * 1e6) // 1_000_000)

    def frames_for_samples(self, samples: int) -> int:
        return -(-samples // self.samples_per_frame)


class FrameClock:
    """Tells the frame loop when frame n is due. `virtual=True` never waits."""

    def __init__(self, timebase: TimeBase, virtual: bool = False) -> None:
        self.timebase = timebase
        self.virtual = virtual
        self._t0: float | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._t0 = time.monotonic()

    def due_time(self, n: int) -> float:
        assert self._t0 is not None, "start() the clock first"
        return self._t0 + n / self.timebase.fps

    def wait_for(self, n: int) -> float:
        """Block until frame n is due; return how late we already are (seconds, 0 if early)."""
        if self.virtual:
            return 0.0
        if self._t0 is None:
            self.start()
        due = self.due_time(n)
        now = time.monotonic()
        if now < due:
            self._stop.wait(due - now)  # wakes early only when stopping
            return 0.0
        return now - due

    def is_late(self, n: int) -> bool:
        """True when frame n's display slot has already passed (live mode only)."""
        if self.virtual or self._t0 is None:
            return False
        return time.monotonic() > self.due_time(n + 1)

    def stop(self) -> None:
        self._stop.set()


class StreamClock(Protocol):
    """Stream time in seconds, and sleeping on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, seconds: float) -> None: ...


class FrameProgress(Protocol):
    """What produces frames: the first frame not yet produced, and a wait for frame n (the timeline)."""

    @property
    def timebase(self) -> TimeBase: ...

    @property
    def next_frame(self) -> int: ...

    async def wait_for_frame(self, n: int) -> int: ...


class ShowClock:
    """Stream time of a running show: frames produced over the frame rate (wall time in live mode)."""

    def __init__(self, progress: FrameProgress) -> None:
        self._progress = progress
        self._fps = progress.timebase.fps

    def now(self) -> float:
        return self._progress.next_frame / self._fps

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)

    async def sleep_until(self, seconds: float) -> None:
        """Return once the frame that starts at or after `seconds` is due to be produced next."""
        frame = self._progress.timebase.frame_at_seconds(seconds)
        if frame > 0:
            await self._progress.wait_for_frame(frame - 1)


class WallClock:
    """Monotonic wall time, for parts that run without a frame loop (unit tests, tools)."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds - time.monotonic()))
