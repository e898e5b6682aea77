"""Listening: what the listener tells the character about someone speaking to it, frame by frame.

The listener (speech recognition, on its own loop) sends `ListenCue`s; the timeline applies each
at the next frame not yet pulled and hands the animator one `ListenFrame` per frame. Everything
the animator needs (smoothed loudness, frames since the last pause or since thinking began) is
in that frame, so the animator stays a pure function of its inputs and the same cue schedule
always gives the same performance.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

LOUDNESS_SMOOTH_S = 0.2  # the loudness the animator sees is a moving average over this window


@dataclass(frozen=True)
class ListenCue:
    """One thing the listener says. Fields left at None (or pause False) change nothing.

    active: someone started (True) or stopped (False) speaking to the character; either resets the
        loudness to `loudness` (0 if not given), and starting ends any thinking.
    loudness: how loud they are now, 0..1 (the timeline smooths it over LOUDNESS_SMOOTH_S).
    pause: they paused just now (an edge: the character nods).
    thinking: think now (True; a no-op while already thinking) or stop thinking (False). Thinking
        also ends by itself once the character's speech becomes audible.
    """

    active: bool | None = None
    loudness: float | None = None
    pause: bool = False
    thinking: bool | None = None

    def __post_init__(self) -> None:
        if self.active is None and self.loudness is None and not self.pause and self.thinking is None:
            raise ValueError("an empty ListenCue says nothing")
        if self.loudness is not None and not (math.isfinite(self.loudness) and 0.0 <= self.loudness <= 1.0):
            raise ValueError(f"listen loudness must be within 0..1, got {self.loudness}")
        if self.active and self.thinking:
            raise ValueError("the character cannot start thinking while someone starts speaking to it")

    # Named forms for the listener's usual messages.
    @classmethod
    def started(cls, loudness: float = 0.0) -> ListenCue:
        return cls(active=True, loudness=loudness)

    @classmethod
    def stopped(cls, think: bool = False) -> ListenCue:
        """They stopped speaking; with think=True the character visibly thinks until it answers."""
        return cls(active=False, thinking=True if think else None)

    @classmethod
    def level(cls, loudness: float) -> ListenCue:
        return cls(loudness=loudness)

    @classmethod
    def paused(cls) -> ListenCue:
        return cls(pause=True)

    @classmethod
    def think(cls) -> ListenCue:
        return cls(thinking=True)

    @classmethod
    def stop_thinking(cls) -> ListenCue:
        return cls(thinking=False)


@dataclass(frozen=True)
class ListenFrame:
    """The listening view of one frame (what the animator reads)."""

    active: bool = False  # someone is speaking to the character
    loudness: float = 0.0  # smoothed, 0..1; eases back to 0 after they stop
    frames_since_pause: int | None = None  # since their latest pause edge (None: none yet)
    thinking: bool = False
    frames_since_thinking: int | None = None  # since thinking began (None when not thinking)


LISTEN_IDLE = ListenFrame()


@dataclass
class _Listen:
    """The folded state of every cue applied so far."""

    active: bool = False
    level: float = 0.0
    pause_frame: int | None = None
    think_frame: int | None = None

    def apply(self, cue: ListenCue, frame: int) -> None:
        """Fields act in a fixed order (active, loudness, pause, thinking) so a cue means one thing."""
        if cue.active is not None:
            self.active = cue.active
            self.level = 0.0
            if cue.active:
                self.think_frame = None
        if cue.loudness is not None:
            self.level = cue.loudness
        if cue.pause:
            self.pause_frame = frame
        if cue.thinking is False:
            self.think_frame = None
        elif cue.thinking and self.think_frame is None:
            self.think_frame = frame


class ListenTrack:
    """Listener cues on the frame clock. Not thread-safe: the Timeline calls it under its lock.

    Memory is bounded: a cue is folded into one small state as soon as its frame is due, so only
    cues scheduled for later frames and the last `smooth_frames` loudness values are kept.
    Frames must be read in order (as the timeline pulls them).
    """

    def __init__(self, smooth_frames: int) -> None:
        self.smooth_frames = max(1, smooth_frames)
        self._state = _Listen()
        self._pending: list[tuple[int, ListenCue]] = []  # frame order, then arrival order
        self._recent: deque[tuple[int, float]] = deque(maxlen=self.smooth_frames)  # (frame, target)
        self._used = False  # no cue yet: every frame is LISTEN_IDLE

    @property
    def pending(self) -> int:
        """Cues scheduled for frames not yet due (for tests and health)."""
        return len(self._pending)

    def add(self, cue: ListenCue, frame: int, due: int) -> None:
        """Schedule `cue` at `frame`; cues at frames <= `due` (the next frame to pull) fold at once."""
        self._used = True
        k = len(self._pending)
        while k > 0 and self._pending[k - 1][0] > frame:
            k -= 1
        self._pending.insert(k, (frame, cue))
        self._fold(due)

    def frame(self, n: int, speech_start: int | None) -> ListenFrame:
        """The view of frame n. `speech_start`: the latest start frame of the speech audible at n
        (None when silent); speech that began since thinking did ends the thinking."""
        if not self._used:
            return LISTEN_IDLE
        self._fold(n)
        s = self._state
        if s.think_frame is not None and speech_start is not None and speech_start >= s.think_frame:
            s.think_frame = None
        target = s.level if s.active else 0.0
        self._recent.append((n, target))
        # frames never read (before the first cue) count as silent, so loudness always ramps in
        loudness = sum(t for f, t in self._recent if n - self.smooth_frames < f <= n) / self.smooth_frames
        return ListenFrame(
            s.active,
            loudness,
            None if s.pause_frame is None else n - s.pause_frame,
            s.think_frame is not None,
            None if s.think_frame is None else n - s.think_frame,
        )

    def _fold(self, upto: int) -> None:
        k = 0
        while k < len(self._pending) and self._pending[k][0] <= upto:
            frame, cue = self._pending[k]
            self._state.apply(cue, frame)
            k += 1
        if k:
            del self._pending[:k]
