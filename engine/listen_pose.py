"""How listening and thinking look: an overlay on the idle state, computed from one ListenFrame.

Listening: mouth exactly closed, gaze held on the speaker (the camera unless configured), a nod at
each of their pauses, brows that rise with their (smoothed) loudness. Thinking: gaze up and to a
side, that side's brow raised, the head tilted, eased in over a few frames and held. Blinks and
breath stay as they are. Everything is a function of the frame's inputs, so it can be recomputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.listening import ListenFrame
from engine.noise import hash01
from engine.state import IDX, VISEMES

_MOUTH = slice(IDX["mouth_closed"], IDX["mouth_closed"] + len(VISEMES))


@dataclass(frozen=True)
class ListenPose:
    """Tuning of the listening and thinking overlay (state units, see engine/state.py)."""

    gaze: tuple[float, float] = (0.0, 0.0)  # where the speaker is: the camera by default
    nod_depth: float = 0.32  # head_pitch dip at a pause (x 0.8..1.2, seeded per pause)
    nod_s: float = 0.5  # a nod goes down and back up within this time
    brow_gain: float = 0.5  # brow raise at full loudness
    think_gaze: tuple[float, float] = (0.55, 0.5)  # x is mirrored to the chosen side
    think_brow: tuple[float, float] = (0.6, -0.1)  # (the side's brow, the other brow)
    think_head: tuple[float, float, float] = (0.12, 0.12, 0.3)  # (yaw, pitch, roll) toward the side looked at
    think_ease_frames: int = 4  # reaches the full pose after this many frames

    def nod_frames(self, fps: int) -> int:
        return max(3, round(self.nod_s * fps))

    def acts(self, listen: ListenFrame, fps: int) -> bool:
        """Whether this frame differs from idle at all (when not, idle stays byte-identical)."""
        fsp = listen.frames_since_pause
        return (
            listen.active
            or listen.thinking
            or listen.loudness > 0.0
            or (fsp is not None and 0 <= fsp < self.nod_frames(fps))
        )

    def apply(self, s: np.ndarray, listen: ListenFrame, n: int, fps: int, seed: int) -> None:
        """Overlay listening/thinking on the idle state `s` [P] of frame n, in place.
        Call only while the character is not speaking: speech wins."""
        fsp = listen.frames_since_pause
        if fsp is not None and 0 <= fsp < self.nod_frames(fps):
            depth = self.nod_depth * (0.8 + 0.4 * hash01(seed, 6, n - fsp))
            s[IDX["head_pitch"]] -= depth * nod_curve(fsp, self.nod_frames(fps))
        if listen.loudness > 0.0:
            for brow in ("brow_l", "brow_r"):
                s[IDX[brow]] = min(1.0, float(s[IDX[brow]]) + self.brow_gain * listen.loudness)
        if listen.active or listen.thinking:
            s[_MOUTH] = 0.0
            s[IDX["mouth_closed"]] = 1.0
        if listen.active:
            s[IDX["gaze_x"]], s[IDX["gaze_y"]] = self.gaze
        if listen.thinking and listen.frames_since_thinking is not None:
            self._think(s, listen.frames_since_thinking, n, seed)

    def _think(self, s: np.ndarray, since: int, n: int, seed: int) -> None:
        x = min(1.0, (since + 1) / self.think_ease_frames)
        e = 1.0 - (1.0 - x) ** 2  # ease out: fast at first, settling into the hold
        side = 1.0 if hash01(seed, 7, n - since) < 0.5 else -1.0  # one side per thinking episode
        up, other = ("brow_l", "brow_r") if side > 0 else ("brow_r", "brow_l")
        targets = {
            "gaze_x": side * self.think_gaze[0],
            "gaze_y": self.think_gaze[1],
            up: self.think_brow[0],
            other: self.think_brow[1],
        }
        for name, target in targets.items():
            s[IDX[name]] += e * (target - s[IDX[name]])
        yaw, pitch, roll = self.think_head
        s[IDX["head_yaw"]] += e * side * yaw
        s[IDX["head_pitch"]] += e * pitch
        s[IDX["head_roll"]] += e * side * roll


def nod_curve(t: int, length: int) -> float:
    """0 -> 1 -> 0 over `length` frames: down over the first 40%, back up over the rest, smooth at
    both ends and at the bottom."""
    u = (t + 1) / (length + 1)
    if u < 0.4:
        return 0.5 - 0.5 * math.cos(math.pi * u / 0.4)
    return 0.5 + 0.5 * math.cos(math.pi * (u - 0.4) / 0.6)
