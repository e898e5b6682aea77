"""Where the procedural character's parts can be, in pixels: decided once per (resolution, look).

Two kinds of boxes. Static boxes (neck, torso, the neck shadow) never move, so they are plain
slices. Moving parts get a *tight* box: its size is the part's extent around a reference point
over every pose (yaw, pitch, roll), and its position is recomputed per state from the head pose
as an integer pixel offset. A moving part is therefore drawn on a few thousand pixels where a box
covering its whole range of motion would be 2-5x larger. Mirrored pairs (eyes, brows, cheeks,
twintails) are drawn as one batch of 2B regions when their boxes can never overlap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from engine.render.procedural.look import CharacterLook
from engine.render.procedural.parts import TAIL_TIE

ROLL_MAX = math.radians(10.0)
HEAD_SHIFT_X = 0.012  # frame heights the head travels per unit of yaw
HEAD_SHIFT_Y = 0.008  # ... and per unit of pitch (up is up)
BREATH_RISE = 0.006  # frame heights the shoulders rise at full breath
NECK_Y = 0.665  # torso origin: base of the neck, frame heights from the top
CHIN_Y = 0.58  # where the chin sits at rest; the head pivots just below it
PIVOT_Y = 0.62
CHIN = 1.35  # chin distance below the cranium centre, head units
MARGIN_PX = 3

# Parallax per head layer, head units per unit of (yaw, pitch): features move most, the hair
# behind the head moves against them, which is what reads as a turn.
PARALLAX: dict[str, tuple[float, float]] = {
    "back": (-0.08, 0.05),
    "face": (0.05, -0.03),
    "hair": (0.11, -0.06),
    "features": (0.22, -0.13),
}

# Mouth shape per viseme: half-width, opening above / below the lip line, teeth show.
MOUTH_SHAPES: dict[str, tuple[float, float, float, float]] = {
    "closed": (0.14, 0.0, 0.0, 0.0),
    "a": (0.19, 0.05, 0.27, 0.5),
    "i": (0.25, 0.03, 0.07, 1.0),
    "u": (0.075, 0.05, 0.065, 0.0),
    "e": (0.2, 0.04, 0.15, 0.8),
    "o": (0.12, 0.09, 0.17, 0.0),
}

# Documented ranges of the state fields; states are clamped so parts stay inside their boxes.
_RANGES: dict[str, tuple[float, float]] = {
    "head_yaw": (-1.0, 1.0),
    "head_pitch": (-1.0, 1.0),
    "head_roll": (-1.0, 1.0),
    "gaze_x": (-1.0, 1.0),
    "gaze_y": (-1.0, 1.0),
    "brow_l": (-1.0, 1.0),
    "brow_r": (-1.0, 1.0),
}



@dataclass(frozen=True)
class DynBox:
    """A moving part's tight box: fixed size, per-state offset from a reference point.

    `ref` is the reference point in head units of `layer` (side 1; side 0 mirrors u). At run time
    the box's top-left pixel is floor(ref_px + rel) - MARGIN_PX, clamped into the canvas.
    """

    name: str
    layer: str
    ref: tuple[float, float]
    rel: tuple[tuple[float, float], ...]  # per side: (min x, min y) of the part around ref, pixels
    size: tuple[int, int]  # (h, w), already clipped to the canvas
    sides: int  # 1, or 2 for a mirrored pair drawn as one batch
    paired: bool  # a pair whose two boxes never overlap (drawn together); else drawn one after the other


class Box(NamedTuple):
    """Pixel box [y0, y1) x [x0, x1) in frame coordinates."""

    y0: int
    y1: int
    x0: int
    x1: int

    def union(self, other: Box) -> Box:
        return Box(
            min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1)
        )


class Layout:
    """Where every part can possibly be, in pixels: decided once per (resolution, look)."""

    def __init__(self, width: int, height: int, look: CharacterLook, tight: bool = True) -> None:
        """tight=False gives every moving part the whole canvas: the slow reference the tests check against."""
        self.width, self.height, self.look, self.tight = width, height, look, tight
        s = self.S = look.head_size
        self.head_cy = CHIN_Y - CHIN * s
        self.eye_cx = 0.45 * look.eye_spacing
        self.eye_cy = 0.37
        self.eye_w = 0.29 * look.eye_size
        self.brow_cx = 0.44 * look.eye_spacing
        self.brow_w = 0.27 * look.eye_size
        self.mouth_cy = 0.97
        self.lock_len = {"bob": 1.05, "long": 1.7, "twintails": 0.95}[look.hair_style]
        ew = self.eye_w * 1.25  # widest an eye gets (yaw towards it, surprise)
        # the inner lash ends at -1.07 eye units; a tighter inner edge lets the two eyes be batched
        e = (self.eye_cx - 1.12 * ew, self.eye_cx + 1.4 * ew, self.eye_cy - 1.5 * ew, self.eye_cy + 1.1 * ew)
        ew_min = self.eye_w * 0.82  # narrowest (yaw away): bounds a part's edge that lies below the eye
        ck = (self.eye_cx - 0.45 * ew, self.eye_cx + 1.15 * ew, self.eye_cy + 1.0 * ew_min, self.eye_cy + 1.9 * ew)
        bw = self.brow_w
        b = (self.brow_cx - 1.05 * bw, self.brow_cx + 1.05 * bw, -0.62, 0.3)
        back = {
            "bob": (-1.32, 1.32, -1.3, 1.3),
            "long": (-2.0, 2.0, -1.3, 4.8),
            "twintails": (-1.32, 1.32, -1.3, 1.22),  # the crown circle reaches v = 1.15 + outline
        }[look.hair_style]
        torso = self._torso_box((-2.4, 2.4, 0.2, (1.0 - NECK_Y) / s + 0.1))
        neck = self._torso_box((-0.62, 0.62, -2.35, 0.3))
        self.face_rect = (-1.05, 1.05, -1.06, CHIN + 0.06)
        self.hair_rect = (-1.23, 1.23, -1.22, self.lock_len + 0.05)
        self.mouth_rect = (-0.42, 0.42, self.mouth_cy - 0.38, self.mouth_cy + 0.45)
        self.boxes: dict[str, Box] = {
            "back": self._head_box(back, "back"),
            "neck": Box(neck.y0, torso.y0, neck.x0, neck.x1),
            "torso": torso,
            "chin": self._torso_box((-0.62, 0.62, -2.35, 0.05)),
            "head": self._head_box(self.face_rect, "face").union(self._head_box(self.hair_rect, "hair")),
            "cheek0": self._mirror(self._head_box(ck, "features")),
            "cheek1": self._head_box(ck, "features"),
            "eye0": self._mirror(self._head_box(e, "features")),
            "eye1": self._head_box(e, "features"),
            "brow0": self._mirror(self._head_box(b, "features")),
            "brow1": self._head_box(b, "features"),
            "mouth": self._head_box(self.mouth_rect, "features"),
        }
        tail = (0.8, 2.45, -0.8, 3.72)  # tip at v = 3.68 with its outline
        cu, cv, r = TAIL_TIE
        tie = (cu - r - 0.09, cu + r + 0.09, cv - r - 0.09, cv + r + 0.09)  # with the thickest outline
        if look.hair_style == "twintails":
            tb = self._hang_box(tail, (cu, cv))
            self.boxes["tail0"], self.boxes["tail1"] = self._mirror(tb), tb
        self.breath_px = BREATH_RISE * height
        self.row_pad = math.ceil(self.breath_px) + 2  # extra rows a row layer needs below its box
        char = self.boxes["back"]
        for box in self.boxes.values():
            char = char.union(box)
        self.char = char
        twin = look.hair_style == "twintails"
        self.dyn = self._dynamic_boxes(back, (tail, tie) if twin else None, e, ck, b)

    def _to_box(self, xs: list[float], ys: list[float]) -> Box:
        w, h = self.width, self.height
        x0 = max(0, math.floor(min(xs) * h + w / 2) - MARGIN_PX)
        x1 = min(w, math.ceil(max(xs) * h + w / 2) + MARGIN_PX)
        y0 = max(0, math.floor(min(ys) * h) - MARGIN_PX)
        y1 = min(h, math.ceil(max(ys) * h) + MARGIN_PX)
        return Box(y0, max(y1, y0 + 1), x0, max(x1, x0 + 1))

    def _head_box(self, rect: tuple[float, float, float, float], layer: str) -> Box:
        """Bounding box of a head-layer rect over the extremes of yaw, pitch and roll."""
        kx, ky = PARALLAX[layer]
        u0, u1, v0, v1 = rect
        xs: list[float] = []
        ys: list[float] = []
        grid = (-1.0, -0.5, 0.0, 0.5, 1.0)
        for yaw, pitch, roll in itertools.product(grid, grid, grid):
            th = roll * ROLL_MAX
            c, sn = math.cos(th), math.sin(th)
            cx, cy = self._head_center(yaw, pitch, c, sn)
            for u, v in ((u0, v0), (u0, v1), (u1, v0), (u1, v1)):
                uu, vv = (u + kx * yaw) * self.S, (v + ky * pitch) * self.S
                xs.append(cx + uu * c - vv * sn)
                ys.append(cy + uu * sn + vv * c)
        return self._to_box(xs, ys)

    def _hang_box(self, rect: tuple[float, float, float, float], anchor: tuple[float, float]) -> Box:
        """Bounding box of a back-layer rect hanging from `anchor`: it follows the anchor, not the roll."""
        u0, u1, v0, v1 = rect
        au, av = anchor
        xs: list[float] = []
        ys: list[float] = []
        for yaw, pitch, c, sn in self._sweep():
            ax, ay = self.ref_px("back", au, av, yaw, pitch, c, sn)
            for u, v in itertools.product((u0, u1), (v0, v1)):
                xs.append((ax - self.width / 2) / self.height + (u - au) * self.S)
                ys.append(ay / self.height + (v - av) * self.S)
        return self._to_box(xs, ys)

    def _head_center(self, yaw: float, pitch: float, c: float, sn: float) -> tuple[float, float]:
        arm = PIVOT_Y - self.head_cy
        return arm * sn + yaw * HEAD_SHIFT_X, PIVOT_Y - arm * c - pitch * HEAD_SHIFT_Y

    def _torso_box(self, rect: tuple[float, float, float, float]) -> Box:
        x0, x1, y0, y1 = rect
        s = self.S
        return self._to_box([x0 * s, x1 * s], [NECK_Y - BREATH_RISE + y0 * s, NECK_Y + y1 * s])

    def _mirror(self, box: Box) -> Box:
        """The same box reflected about the frame's vertical centre line (pixel exact)."""
        return Box(box.y0, box.y1, self.width - box.x1, self.width - box.x0)

    # -- tight boxes for moving parts -------------------------------------------------------------

    def _dynamic_boxes(
        self,
        back: tuple[float, float, float, float],
        tails: tuple[tuple[float, float, float, float], tuple[float, float, float, float]] | None,
        eye: tuple[float, float, float, float],
        cheek: tuple[float, float, float, float],
        brow: tuple[float, float, float, float],
    ) -> dict[str, DynBox]:
        specs: list[tuple[str, int, list[tuple[tuple[float, float, float, float], str]]]] = [
            ("back", 1, [(back, "back")]),
            ("head", 1, [(self.face_rect, "face"), (self.hair_rect, "hair")]),
            ("cheek", 2, [(cheek, "features")]),
            ("eye", 2, [(eye, "features")]),
            ("mouth", 1, [(self.mouth_rect, "features")]),
            ("brow", 2, [(brow, "features")]),
        ]
        if tails is not None:  # the ties get their own small boxes: a tail's box is mostly empty around them
            specs[1:1] = [("tail", 2, [(tails[0], "back")]), ("tie", 2, [(tails[1], "back")])]
        hang = {"tail": TAIL_TIE[:2]}  # twintails hang from their ties under gravity (no roll)
        return {name: self._dyn(name, sides, items, hang.get(name)) for name, sides, items in specs}

    def _sweep(self) -> list[tuple[float, float, float, float]]:
        """Poses to bound over: (yaw, pitch, cos, sin); roll finely, since extremes can lie inside."""
        grid = (-1.0, -0.5, 0.0, 0.5, 1.0)
        rolls = [i / 20.0 for i in range(-20, 21)]
        out = []
        for yaw, pitch, roll in itertools.product(grid, grid, rolls):
            th = roll * ROLL_MAX
            out.append((yaw, pitch, math.cos(th), math.sin(th)))
        return out

    def ref_px(
        self, layer: str, u: float, v: float, yaw: float, pitch: float, c: float, sn: float
    ) -> tuple[float, float]:
        """Frame pixel position (x, y; pixel j spans [j, j+1)) of head-layer point (u, v) at a pose."""
        kx, ky = PARALLAX[layer]
        cx, cy = self._head_center(yaw, pitch, c, sn)
        uu, vv = (u + kx * yaw) * self.S, (v + ky * pitch) * self.S
        return (cx + uu * c - vv * sn) * self.height + self.width / 2, (cy + uu * sn + vv * c) * self.height

    def _dyn(
        self,
        name: str,
        sides: int,
        items: list[tuple[tuple[float, float, float, float], str]],
        hang: tuple[float, float] | None = None,
    ) -> DynBox:
        """A part's tight box over every pose. With `hang` (an anchor in back-layer units) the part
        follows the anchor but keeps upright: its box is just the rect, not the rect swept by roll."""
        (u0, u1, v0, v1), layer = items[0]
        ref = hang if hang is not None else ((u0 + u1) / 2, (v0 + v1) / 2)
        unit_px = self.S * self.height
        rels: list[tuple[float, float]] = []
        h = w = 0
        for side in range(sides):
            m = -1.0 if sides == 2 and side == 0 else 1.0  # side 0 is the mirror image (screen left)
            lo_x = lo_y = math.inf
            hi_x = hi_y = -math.inf
            for yaw, pitch, c, sn in self._sweep():
                rx, ry = self.ref_px(layer, m * ref[0], ref[1], yaw, pitch, c, sn)
                for (a0, a1, b0, b1), lay in items:
                    for u, v in itertools.product((m * a0, m * a1), (b0, b1)):
                        if hang is None:
                            x, y = self.ref_px(lay, u, v, yaw, pitch, c, sn)
                        else:
                            x, y = rx + (u - m * ref[0]) * unit_px, ry + (v - ref[1]) * unit_px
                        lo_x, hi_x = min(lo_x, x - rx), max(hi_x, x - rx)
                        lo_y, hi_y = min(lo_y, y - ry), max(hi_y, y - ry)
            rels.append((lo_x, lo_y))
            w = max(w, math.ceil(hi_x - lo_x) + 2 * MARGIN_PX + 2)
            h = max(h, math.ceil(hi_y - lo_y) + 2 * MARGIN_PX + 2)
        ch = self.char
        size = (min(ch.y1 - ch.y0, h), min(ch.x1 - ch.x0, w))
        if not self.tight:
            size = (ch.y1 - ch.y0, ch.x1 - ch.x0)
        box = DynBox(name, layer, ref, tuple(rels), size, sides, False)
        if sides == 2 and self.tight:
            box = DynBox(name, layer, ref, tuple(rels), size, 2, self._never_overlap(box))
        return box

    def offset(self, box: DynBox, side: int, yaw: float, pitch: float, roll: float) -> tuple[int, int]:
        """Canvas (y0, x0) of a tight box at one pose: the float64 twin of the module's tensor code."""
        th = roll * ROLL_MAX
        u, v = box.ref
        u = -u if box.sides == 2 and side == 0 else u
        rx, ry = self.ref_px(box.layer, u, v, yaw, pitch, math.cos(th), math.sin(th))
        ch, (h, w) = self.char, box.size
        x0 = min(max(math.floor(rx + box.rel[side][0]) - MARGIN_PX - ch.x0, 0), ch.x1 - ch.x0 - w)
        y0 = min(max(math.floor(ry + box.rel[side][1]) - MARGIN_PX - ch.y0, 0), ch.y1 - ch.y0 - h)
        return y0, x0

    def _never_overlap(self, box: DynBox) -> bool:
        """True when the two sides' boxes stay at least 2 px apart at every pose (safe to batch)."""
        h, w = box.size
        for yaw, pitch, c, sn in self._sweep():
            roll = math.atan2(sn, c) / ROLL_MAX
            (ya, xa), (yb, xb) = (self.offset(box, s, yaw, pitch, roll) for s in (0, 1))
            if not (abs(xa - xb) >= w + 2 or abs(ya - yb) >= h + 2):
                return False
        return True


def _background(width: int, height: int, look: CharacterLook) -> Tensor:
    """Static backdrop [3, H, W] in 0..255: soft gradient, glow behind the host, polka dots."""
    h = height
    y = ((torch.arange(height, dtype=torch.float64) + 0.5) / h).view(-1, 1)
    x = ((torch.arange(width, dtype=torch.float64) + 0.5 - width / 2) / h).view(1, -1)
    top = torch.tensor(look.background_top, dtype=torch.float64).view(3, 1, 1)
    bottom = torch.tensor(look.background_bottom, dtype=torch.float64).view(3, 1, 1)
    pat = torch.tensor(look.background_pattern, dtype=torch.float64).view(3, 1, 1)
    t = y.clamp(0, 1)
    img = top + (bottom - top) * (t * t * (3 - 2 * t))
    img = img.expand(3, height, width).clone()
    glow = (1 - ((x * x + (y - 0.5) ** 2).sqrt() / 0.55)).clamp(0, 1) ** 1.5
    img = img + (pat - img) * (0.45 * glow)
    step = 0.09
    gy = y / step
    row = torch.floor(gy)
    gx = x / step + 0.5 * (row % 2)
    dx, dy = gx - torch.floor(gx) - 0.5, gy - row - 0.5
    dot = ((0.17 - (dx * dx + dy * dy).sqrt()) * step * h + 0.5).clamp(0, 1)
    img = img + (pat - img) * (0.35 * dot)
    for bx, by, br in ((-0.62, 0.22, 0.16), (0.7, 0.3, 0.12), (0.55, 0.85, 0.2), (-0.5, 0.8, 0.1)):
        d = ((x - bx) ** 2 + (y - by) ** 2).sqrt()
        img = img + (pat - img) * (0.22 * ((br - d) * h * 0.05).clamp(0, 1))
    return img.clamp(0, 255).float()


