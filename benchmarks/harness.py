"""Chat-to-first-audio measurement on the real path: director -> brain -> chunker -> voice -> timeline.

A :class:`RealtimePuller` thread stands in for the frame loop: it pulls timeline frames on the live
master clock (frame n at t0 + n/F, exactly as `FrameLoop` paces) but renders nothing, so the number
measured is the character's latency, not the renderer's.  The first audible sample of a turn is the
first sample above a small threshold in a pulled frame; its wall time is the frame's pull time plus the
sample's offset inside the frame.  Shared by tests/test_latency.py and benchmarks/latency.py.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.clock import FrameClock
from engine.timeline import Timeline

AUDIBLE = 1e-3  # about -60 dBFS


class RealtimePuller:
    """Pulls frames in real time in its own thread; `arm()` then await `audible` for the next sound."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.timebase = timeline.timebase
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._armed: tuple[asyncio.AbstractEventLoop, asyncio.Future[float]] | None = None
        self._lock = threading.Lock()
        self.late_frames = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="puller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def arm(self) -> asyncio.Future[float]:
        """A future resolved with the wall time (time.monotonic) of the next audible sample."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        with self._lock:
            self._armed = (loop, fut)
        return fut

    def _run(self) -> None:
        clock = FrameClock(self.timebase, virtual=False)
        clock.start()
        rate = self.timebase.sample_rate
        n = 0
        while not self._stop.is_set():
            if clock.wait_for(n) > 1.0 / self.timebase.fps:
                self.late_frames += 1
            pulled_at = time.monotonic()
            frame = self.timeline.pull(n)
            n += 1
            with self._lock:
                armed = self._armed
            if armed is None or not frame.speaking:
                continue
            loud = np.flatnonzero(np.abs(frame.audio) > AUDIBLE)
            if loud.size == 0:
                continue
            with self._lock:
                self._armed = None
            loop, fut = armed
            loop.call_soon_threadsafe(_resolve, fut, pulled_at + float(loud[0]) / rate)


def _resolve(fut: asyncio.Future[float], value: float) -> None:
    if not fut.done():
        fut.set_result(value)


@dataclass
class LatencyStats:
    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def measure_chat_latency(
    director: Any, puller: RealtimePuller, messages: list[Any], timeout_s: float = 10.0
) -> LatencyStats:
    """Submit each chat message, time it to its first audible sample, then interrupt and go on.

    The director must be running (``director.run()`` task) with cooldown 0; `messages` are
    ``streamer.events.ChatMessage``.  Interrupting right after the first sound keeps 100 turns short
    and exercises cancellation of the brain stream on every turn.  Pass the director's voice
    `executor` to let a cancelled turn's in-flight synthesis finish before the next message, so each
    turn starts from an idle character (what a viewer meets) rather than behind the last one's backlog.
    """
    out: list[float] = []
    for message in messages:
        audible = puller.arm()
        start = time.monotonic()
        turn = director.submit_chat(message)
        if turn is None:
            raise RuntimeError("the director did not queue the message")
        heard_at = await asyncio.wait_for(audible, timeout_s)
        out.append((heard_at - start) * 1000.0)
        director.interrupt()
        assert turn.done is not None
        await asyncio.wait_for(asyncio.shield(turn.done), timeout_s)
        timeline = director.timeline  # let the cut's fade-out play before listening for the next turn
        await asyncio.wait_for(timeline.wait_for_frame(timeline.next_frame + 1), timeout_s)
        await director.performer.settle()
    return LatencyStats(out)
