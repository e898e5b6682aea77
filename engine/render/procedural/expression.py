"""The procedural character's expression: lid, brow and mouth parameters from the state.

Per-state [B, 1, 1, 1] tensors computed once a frame (no pixels here); the drawing in `parts`
reads them, so `character` keeps to the drawing program.
"""

from __future__ import annotations

import torch
from torch import Tensor

from engine.render.procedural.layout import MOUTH_SHAPES, Layout
from engine.render.procedural.look import CharacterLook
from engine.state import VISEMES


def eye_params(f: dict[str, Tensor], lay: Layout, look: CharacterLook, aa: float) -> list[dict[str, Tensor]]:
    """Lid curves, gaze and scale per eye; eye 0 is on screen left (the character's right)."""
    joy, ang, sor, sur, fun = f["joy"], f["anger"], f["sorrow"], f["surprise"], f["fun"]
    out = []
    for side, sign, open_name in ((0, -1.0, "eye_open_r"), (1, 1.0, "eye_open_l")):
        happy = (joy + fun * (1.0 if side == 1 else 0.25)).clamp(max=1.0)  # fun winks one eye
        o = (
            f[open_name]
            * (1.0 - 0.88 * happy)
            * (1.0 + 0.18 * sur)
            * (1.0 - 0.12 * ang)
            * (1.0 - 0.15 * sor)
        )
        a0 = -1.0 - 0.22 * sur + 0.2 * ang + 0.08 * sor
        a1 = 0.1 - 0.24 * ang + 0.16 * sor - 0.4 * look.eye_tilt
        c0, c2 = 0.4 - 0.55 * happy, -0.28 + 0.9 * happy
        ew = lay.eye_w * (1.0 - 0.18 * f["head_yaw"] * sign) * (1.0 + 0.06 * sur)
        q = 1.0 - 0.12 * sur
        out.append(
            {
                "U0": c0 + o * (a0 - c0),
                "U1": o * a1,
                "U2": c2 + o * (0.62 - c2),
                "L0": c0 + o * (0.78 - c0),
                "L2": c2 + o * (-0.32 - c2),
                "fade": (o * 2.5).clamp(0.0, 1.0),
                "gx": f["gaze_x"] * (0.36 * sign),
                "gy": 0.06 - f["gaze_y"] * 0.26,
                "irx": 1.0 / (0.7 * q),
                "iry": 1.0 / (0.92 * q),
                "pupil": 0.44 - 0.16 * sur,
                "blush": (f["blush"] + 0.3 * joy + 0.2 * fun).clamp(max=1.0),
                "su": sign / ew,
                "sv": 1.0 / ew,
                "ou": torch.full_like(ew, sign * lay.eye_cx),
                "aa": ew * aa,
            }
        )
    return out

def brow_params(f: dict[str, Tensor], lay: Layout) -> list[dict[str, Tensor]]:
    """Brow curve and placement per brow; brow 0 is on screen left."""
    joy, ang, sor, sur = f["joy"], f["anger"], f["sorrow"], f["surprise"]
    out = []
    for sign, name in ((-1.0, "brow_r"), (1.0, "brow_l")):
        out.append(
            {
                "B0": -0.04 - 0.1 * f[name] - 0.15 * sur + 0.08 * ang - 0.03 * joy - 0.05 * sor,
                "B1": 0.12 * sor - 0.11 * ang,
                "B2": 0.06 + 0.03 * joy - 0.03 * ang + 0.02 * sur,
                "su": torch.full_like(joy, sign / lay.brow_w),
                "ou": torch.full_like(joy, sign * lay.brow_cx),
            }
        )
    return out

def mouth_params(f: dict[str, Tensor], look: CharacterLook) -> dict[str, Tensor]:
    """Blend the viseme shapes by weight (missing weight means closed), then add emotions."""
    w = [f[f"mouth_{v}"] for v in VISEMES]
    total = w[0] + w[1] + w[2] + w[3] + w[4] + w[5]
    w[0] = w[0] + (1.0 - total).clamp(min=0.0)
    norm = 1.0 / total.clamp(min=1.0)
    shape = [
        sum(wi * MOUTH_SHAPES[v][k] for wi, v in zip(w, VISEMES, strict=True)) * norm for k in range(4)
    ]
    joy, ang, sor, sur, fun = f["joy"], f["anger"], f["sorrow"], f["surprise"], f["fun"]
    width = (
        shape[0] * look.mouth_width + 0.035 * joy + 0.07 * fun + 0.03 * ang - 0.03 * sor - 0.04 * sur
    )
    return {
        "W": width.clamp(0.05, 0.4),
        "Ht": (shape[1] + 0.02 * joy + 0.01 * fun + 0.05 * sur).clamp(0.0, 0.15),
        "Hb": (shape[2] + 0.15 * joy + 0.09 * fun + 0.03 * ang + 0.12 * sur).clamp(0.0, 0.32),
        "K": 0.07 * joy + 0.09 * fun - 0.06 * ang - 0.075 * sor,
        "asym": 0.035 * fun,
        "teeth": 0.05 * (shape[3] + 0.8 * fun + 0.6 * ang).clamp(max=1.0),
    }
