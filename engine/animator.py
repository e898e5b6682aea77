"""The animator: frame index + timeline inputs -> CharacterState.

Idle life (breath, blinks, saccades, head sway) is a pure function of (seed, n): no state
accumulates, so hour 100 looks like hour 1, and any frame can be recomputed exactly. Listening and
thinking (engine/listen_pose.py) overlay it from the frame's inputs alone, so they stay pure too.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.listen_pose import ListenPose
from engine.noise import hash01
from engine.state import EMOTIONS, IDX, VISEMES, P
from engine.timeline import FrameInputs


class Animator:
    """Turns the timeline's per-frame inputs into the renderer's state vector."""

    def __init__(
        self,
        fps: int,
        seed: int = 7,
        blink_period_s: float = 3.6,
        gaze_period_s: float = 1.7,
        listen_pose: ListenPose | None = None,
    ) -> None:
        self.fps = fps
        self.seed = seed
        self.listen_pose = listen_pose or ListenPose()
        self.blink_block = max(8, round(blink_period_s * fps))
        self.gaze_block = max(4, round(gaze_period_s * fps))
        self._blink_len = max(5, round(0.2 * fps))

    # ----- idle components (pure in n) -----------------------------------------------------------
    def breath(self, n: int) -> float:
        phase = 2 * math.pi * ((n / self.fps) % 4.2) / 4.2
        return 0.5 - 0.5 * math.cos(phase)

    def eye_open(self, n: int) -> float:
        """1 open, 0 closed. One blink per block at a seeded offset, sometimes a double blink."""
        block = n // self.blink_block
        closed = 0.0
        for b in (block - 1, block):
            if b < 0:
                continue
            start = b * self.blink_block + int(hash01(self.seed, 1, b) * (self.blink_block - 2 * self._blink_len))
            closed = max(closed, self._blink_profile(n - start))
            if hash01(self.seed, 2, b) < 0.15:  # double blink
                closed = max(closed, self._blink_profile(n - start - self._blink_len - 1))
        return 1.0 - closed

    def _blink_profile(self, t: int) -> float:
        """Closure 0..1 over a blink: quick close, brief hold, slower open."""
        length = self._blink_len
        if t < 0 or t >= length:
            return 0.0
        close_frames = max(1, length // 3)
        if t < close_frames:
            return (t + 1) / close_frames
        return max(0.0, 1.0 - (t - close_frames) / (length - close_frames))

    def gaze(self, n: int) -> tuple[float, float]:
        """Saccades: the gaze holds a seeded target per block and jumps in two frames."""
        block = n // self.gaze_block
        t = n - block * self.gaze_block

        def target(b: int) -> tuple[float, float]:
            if hash01(self.seed, 3, b) < 0.45:  # often look back at the camera
                return 0.0, 0.0
            return (hash01(self.seed, 4, b) * 2 - 1) * 0.7, (hash01(self.seed, 5, b) * 2 - 1) * 0.4

        cur = target(block)
        if t >= 2 or block == 0:
            return cur
        prev = target(block - 1)
        a = (t + 1) / 3
        return prev[0] + (cur[0] - prev[0]) * a, prev[1] + (cur[1] - prev[1]) * a

    def head(self, n: int, energy: float) -> tuple[float, float, float]:
        """Slow sway from incommensurate sines, plus small nods while speaking."""
        t = n / self.fps
        two_pi = 2 * math.pi
        yaw = 0.12 * math.sin(two_pi * (t % 11.3) / 11.3) + 0.05 * math.sin(two_pi * (t % 4.7) / 4.7 + 1.0)
        pitch = 0.06 * math.sin(two_pi * (t % 7.9) / 7.9 + 0.5) + 0.12 * energy * math.sin(two_pi * (t % 0.9) / 0.9)
        roll = 0.10 * math.sin(two_pi * (t % 13.7) / 13.7 + 2.0)
        return yaw, pitch, roll

    # ----- the state ---------------------------------------------------------------------------
    def state(self, inputs: FrameInputs) -> torch.Tensor:
        """CharacterState [P] float32 for frame inputs.n."""
        n = inputs.n
        s = np.zeros(P, dtype=np.float32)
        visemes = inputs.visemes
        energy = float(1.0 - visemes[0])
        yaw, pitch, roll = self.head(n, energy)
        s[IDX["head_yaw"]], s[IDX["head_pitch"]], s[IDX["head_roll"]] = yaw, pitch, roll
        s[IDX["breath"]] = self.breath(n)
        eye = self.eye_open(n)
        surprise = float(inputs.emotions[EMOTIONS.index("surprise")])
        s[IDX["eye_open_l"]] = s[IDX["eye_open_r"]] = eye
        gx, gy = self.gaze(n)
        s[IDX["gaze_x"]], s[IDX["gaze_y"]] = gx, gy
        # brows lift a little on stressed syllables and with surprise
        brow = 0.25 * energy * (0.5 + 0.5 * math.sin(n * 0.7)) + 0.5 * surprise
        s[IDX["brow_l"]] = s[IDX["brow_r"]] = min(1.0, brow)
        start = IDX["mouth_closed"]
        s[start : start + len(VISEMES)] = visemes
        e0 = IDX[EMOTIONS[0]]
        s[e0 : e0 + len(EMOTIONS)] = inputs.emotions
        s[IDX["blush"]] = min(1.0, 0.6 * float(inputs.emotions[EMOTIONS.index("joy")]))
        if not inputs.speaking and self.listen_pose.acts(inputs.listen, self.fps):  # speech wins
            self.listen_pose.apply(s, inputs.listen, n, self.fps, self.seed)
        return torch.from_numpy(s)
