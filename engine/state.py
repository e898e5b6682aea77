"""CharacterState: the flat float vector that the animator produces and the renderer consumes.

One named layout shared by every appearance and runtime, so a state can be batched
(`[B, P]`), exported to ONNX as a plain tensor and compared bit for bit.
"""

from __future__ import annotations

import torch

# Order is the wire format between animator and renderer: append, never reorder.
STATE_FIELDS: tuple[str, ...] = (
    "head_yaw",  # -1..1, left/right turn (about ±20°)
    "head_pitch",  # -1..1, down/up nod (about ±15°)
    "head_roll",  # -1..1, tilt (about ±10°)
    "breath",  # 0..1, chest rise
    "eye_open_l",  # 0 closed .. 1 open
    "eye_open_r",
    "gaze_x",  # -1..1
    "gaze_y",  # -1..1
    "brow_l",  # -1 lowered .. 1 raised
    "brow_r",
    "mouth_closed",  # viseme weights, sum <= 1 with the open ones
    "mouth_a",
    "mouth_i",
    "mouth_u",
    "mouth_e",
    "mouth_o",
    "joy",  # emotion weights 0..1
    "anger",
    "sorrow",
    "surprise",
    "fun",
    "blush",  # 0..1
)
P = len(STATE_FIELDS)
IDX: dict[str, int] = {name: i for i, name in enumerate(STATE_FIELDS)}

VISEMES: tuple[str, ...] = ("closed", "a", "i", "u", "e", "o")
VISEME_FIELDS: tuple[str, ...] = tuple(f"mouth_{v}" for v in VISEMES)
EMOTIONS: tuple[str, ...] = ("joy", "anger", "sorrow", "surprise", "fun")

# How far each open viseme opens the jaw (0..1); used for "mouth openness" measures.
VISEME_OPENNESS: dict[str, float] = {"closed": 0.0, "a": 1.0, "i": 0.35, "u": 0.4, "e": 0.6, "o": 0.8}


def neutral_state() -> torch.Tensor:
    """The rest pose: eyes open, mouth closed, no emotion. Shape [P], float32."""
    s = torch.zeros(P, dtype=torch.float32)
    s[IDX["eye_open_l"]] = 1.0
    s[IDX["eye_open_r"]] = 1.0
    s[IDX["mouth_closed"]] = 1.0
    return s


def mouth_openness(state: torch.Tensor) -> torch.Tensor:
    """Jaw opening implied by the viseme weights; works on [P] or [B, P]."""
    weights = torch.tensor([VISEME_OPENNESS[v] for v in VISEMES], dtype=state.dtype)
    start = IDX["mouth_closed"]
    return (state[..., start : start + len(VISEMES)] * weights).sum(-1)


def make_state(**fields: float) -> torch.Tensor:
    """A neutral state with some fields set by name (tests, contact sheets, cues)."""
    s = neutral_state()
    for name, value in fields.items():
        if name not in IDX:
            raise KeyError(f"unknown CharacterState field {name!r}; known: {', '.join(STATE_FIELDS)}")
        s[IDX[name]] = float(value)
    return s
