"""The built-in `procedural` renderer: an anime-style host drawn by torch from the state vector.

No art files: every part is an anti-aliased signed-distance shape in normalized coordinates
(unit = frame height), so the character scales with the output resolution. Speed comes from
layout decided once in __init__:

* the background (and anything else that never moves) is cached as a uint8 frame;
* every moving part is evaluated only inside a constant pixel box that covers its whole range
  of motion (head, hair, neck, torso, then small eye/brow/mouth boxes), found by sweeping the
  pose extremes at construction;
* head pose is applied to the *coordinates* (one rotation + offset per box, i.e. one fused
  broadcast op per axis), and parallax between layers is an offset per layer;
* compositing is premultiplied `lerp` on a planar float canvas covering the character only,
  with colors stored as 255*c + 0.5 so the final uint8 cast is the rounding.

The torch program lives in `ProceduralCharacter.forward` (an nn.Module without data-dependent
control flow, for ONNX export); `ProceduralRenderer` is the `Renderer` around it.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from engine.render import _procedural_parts as parts
from engine.render.look import CharacterLook
from engine.state import IDX, STATE_FIELDS, VISEMES, P

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

_PALETTE_NAMES: tuple[str, ...] = (
    "skin",
    "skin_shadow",
    "line",
    "hair",
    "hair_dark",
    "hair_highlight",
    "hair_line",
    "eye_white",
    "iris",
    "iris_dark",
    "iris_light",
    "pupil",
    "lash",
    "mouth",
    "tongue",
    "teeth",
    "lip",
    "blush",
    "clothes",
    "clothes_shadow",
    "collar",
    "accent",
)

_malloc_tuned = False


def tune_glibc_malloc() -> bool:
    """Keep freed multi-megabyte temporaries in the heap instead of returning them to the OS.

    glibc mmaps big blocks and unmaps them on free, so each frame's temporaries page-fault
    afresh; on VMs that alone costs several times the arithmetic. Process-wide and idempotent.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = any(libc.mallopt(m_mmap_threshold, size) == 1 for size in (256 << 20, 32 << 20))
    ok = ok and libc.mallopt(m_trim_threshold, 512 << 20) == 1
    _malloc_tuned = ok
    return ok


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[float, float, float]:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _palette(look: CharacterLook) -> dict[str, tuple[float, ...]]:
    """Look colors plus the few derived ones (darker strokes, tinted shadows)."""
    pal: dict[str, tuple[float, ...]] = {n: tuple(float(c) for c in getattr(look, n)) for n in _PALETTE_NAMES}
    pal["blush_line"] = _blend(look.blush, look.line, 0.35)
    pal["eye_shadow"] = _blend(look.eye_white, look.iris_dark, 0.3)
    pal["mouth_line"] = _blend(look.line, look.mouth, 0.3)
    pal["brow"] = _blend(look.hair_line, look.hair_dark, 0.35)
    return pal


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

    def __init__(self, width: int, height: int, look: CharacterLook) -> None:
        self.width, self.height, self.look = width, height, look
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
        e = (self.eye_cx - 1.3 * ew, self.eye_cx + 1.4 * ew, self.eye_cy - 1.5 * ew, self.eye_cy + 1.1 * ew)
        ck = (
            self.eye_cx - 0.45 * ew,
            self.eye_cx + 1.15 * ew,
            self.eye_cy + 1.0 * ew,
            self.eye_cy + 1.9 * ew,
        )
        bw = self.brow_w
        b = (self.brow_cx - 1.05 * bw, self.brow_cx + 1.05 * bw, -0.62, 0.3)
        back = {
            "bob": (-1.32, 1.32, -1.3, 1.3),
            "long": (-2.0, 2.0, -1.3, 4.8),
            "twintails": (-1.32, 1.32, -1.3, 0.9),
        }[look.hair_style]
        torso = self._torso_box((-2.4, 2.4, 0.2, (1.0 - NECK_Y) / s + 0.1))
        neck = self._torso_box((-0.62, 0.62, -2.35, 0.3))
        self.boxes: dict[str, Box] = {
            "back": self._head_box(back, "back"),
            "neck": Box(neck.y0, torso.y0, neck.x0, neck.x1),
            "torso": torso,
            "chin": self._torso_box((-0.62, 0.62, -2.35, 0.05)),
            "head": self._head_box((-1.05, 1.05, -1.06, CHIN + 0.06), "face").union(
                self._head_box((-1.23, 1.23, -1.22, self.lock_len + 0.05), "hair")
            ),
            "cheek0": self._mirror(self._head_box(ck, "features")),
            "cheek1": self._head_box(ck, "features"),
            "eye0": self._mirror(self._head_box(e, "features")),
            "eye1": self._head_box(e, "features"),
            "brow0": self._mirror(self._head_box(b, "features")),
            "brow1": self._head_box(b, "features"),
            "mouth": self._head_box((-0.42, 0.42, self.mouth_cy - 0.38, self.mouth_cy + 0.45), "features"),
        }
        if look.hair_style == "twintails":
            tail = self._head_box((0.8, 2.45, -0.8, 3.65), "back")
            self.boxes["tail0"], self.boxes["tail1"] = self._mirror(tail), tail
        self.breath_px = BREATH_RISE * height
        self.row_pad = math.ceil(self.breath_px) + 2  # extra rows a row layer needs below its box
        char = self.boxes["back"]
        for box in self.boxes.values():
            char = char.union(box)
        self.char = char

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


class ProceduralCharacter(nn.Module):
    """states [B, P] float32 -> frames [B, H, W, 3] uint8 (or RGBA with straight alpha)."""

    def __init__(
        self, width: int, height: int, look: CharacterLook | None = None, rgba: bool = False
    ) -> None:
        super().__init__()
        if width < 16 or height < 16:
            raise ValueError(f"output {width}x{height} is too small")
        self.look = look or CharacterLook()
        self.width, self.height, self.rgba = width, height, rgba
        lay = self.layout = Layout(width, height, self.look)
        self.S = lay.S
        self.aa = lay.S * height  # pixels per head unit
        self.lw = 0.032 * self.look.line_width
        ch = 4 if rgba else 3
        pal = _palette(self.look)
        self._color_index = {name: i for i, name in enumerate(pal)}
        colors = torch.tensor([list(c) + ([255.0] if rgba else []) for c in pal.values()]) + 0.5
        self.register_buffer("palette", colors.view(len(pal), 1, ch, 1, 1), persistent=False)
        lo = torch.zeros(P)
        hi = torch.ones(P)
        for name, (a, b) in _RANGES.items():
            lo[IDX[name]], hi[IDX[name]] = a, b
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("hi", hi, persistent=False)
        if rgba:
            frame = torch.zeros(1, height, width, 4, dtype=torch.uint8)
        else:
            frame = (
                (_background(width, height, self.look) + 0.5).to(torch.uint8).permute(1, 2, 0).unsqueeze(0)
            )
        c = lay.char
        self.register_buffer("frame0", frame.contiguous(), persistent=False)
        canvas0 = frame[:, c.y0 : c.y1, c.x0 : c.x1, :].permute(0, 3, 1, 2).float() + 0.5
        self.register_buffer("canvas0", canvas0.contiguous(), persistent=False)
        self.boxes: dict[str, Box] = {}
        for name in ("neck", "torso"):
            self.register_buffer(
                f"rows_{name}", self._row_layer(lay.boxes[name], pal, rgba), persistent=False
            )
        self.register_buffer(
            "row_index",
            torch.arange(
                max(
                    lay.boxes["neck"].y1 - lay.boxes["neck"].y0, lay.boxes["torso"].y1 - lay.boxes["torso"].y0
                ),
                dtype=torch.float32,
            ),
            persistent=False,
        )
        for name, b in lay.boxes.items():
            rel = Box(b.y0 - c.y0, b.y1 - c.y0, b.x0 - c.x0, b.x1 - c.x0)
            self.boxes[name] = rel
            xs = (torch.arange(b.x0, b.x1, dtype=torch.float64) + 0.5 - width / 2) / height
            ys = (torch.arange(b.y0, b.y1, dtype=torch.float64) + 0.5) / height
            self.register_buffer(f"X_{name}", xs.float().view(1, 1, 1, -1), persistent=False)
            self.register_buffer(f"Y_{name}", ys.float().view(1, 1, -1, 1), persistent=False)

    def _row_layer(self, box: Box, pal: dict[str, tuple[float, ...]], rgba: bool) -> Tensor:
        """Neck and torso at rest, premultiplied, as rows [h + pad, C + 1, w]: (G, T) with out = in*T + G.

        They only ever move vertically (breath), so the frame takes two gathered rows and a lerp
        instead of re-evaluating every shape.
        """
        lay, s = self.layout, self.S
        ys = (torch.arange(box.y0, box.y1 + lay.row_pad, dtype=torch.float32) + 0.5) / self.height
        xs = (torch.arange(box.x0, box.x1, dtype=torch.float32) + 0.5 - self.width / 2) / self.height
        tx, ty = (xs / s).view(1, 1, 1, -1), ((ys - NECK_Y) / s).view(1, 1, -1, 1)
        colors = {k: torch.tensor([*c, 255.0]).view(1, 4, 1, 1) for k, c in pal.items()}
        reg = torch.zeros(1, 4, ys.numel(), xs.numel())
        reg = parts.draw_neck(reg, tx, ty, self.aa, self.lw, colors.__getitem__)
        reg = parts.draw_torso(reg, tx, ty, self.aa, self.lw, colors.__getitem__)
        alpha = reg[:, 3:4] / 255.0
        g = reg + 0.5 * alpha if rgba else reg[:, :3] + 0.5 * alpha
        layer = torch.cat([g, 1.0 - alpha], dim=1)[0]  # [C + 1, rows, w]
        return layer.permute(1, 0, 2).contiguous()

    def _paste_rows(self, canvas: Tensor, box: str, shift: Tensor, frac: Tensor) -> None:
        """Composite a row layer shifted up by (shift + frac) pixels onto its box."""
        b = self.boxes[box]
        h = b.y1 - b.y0
        layer = getattr(self, f"rows_{box}")
        idx = (self.row_index[:h].view(1, -1) + shift.view(-1, 1)).to(torch.int64).reshape(-1)
        r0 = torch.index_select(layer, 0, idx)
        r1 = torch.index_select(layer, 0, idx + 1)
        rows = torch.lerp(r0, r1, frac.view(-1, 1, 1).repeat_interleave(h, 0))
        rows = rows.view(-1, h, rows.shape[1], rows.shape[2]).permute(0, 2, 1, 3)
        reg = self._region(canvas, box)
        canvas[:, :, b.y0 : b.y1, b.x0 : b.x1] = torch.addcmul(rows[:, :-1], reg, rows[:, -1:])

    # -- helpers ---------------------------------------------------------------------------------

    def _col(self, name: str) -> Tensor:
        return self.palette[self._color_index[name]]

    def _xy(self, box: str) -> tuple[Tensor, Tensor]:
        return getattr(self, f"X_{box}"), getattr(self, f"Y_{box}")

    def _region(self, canvas: Tensor, box: str) -> Tensor:
        b = self.boxes[box]
        return canvas[:, :, b.y0 : b.y1, b.x0 : b.x1]

    def _put(self, canvas: Tensor, box: str, reg: Tensor) -> None:
        b = self.boxes[box]
        canvas[:, :, b.y0 : b.y1, b.x0 : b.x1] = reg

    def _coords(
        self,
        box: str,
        pose: dict[str, Tensor],
        layer: str,
        su: Tensor | float = 1.0,
        sv: Tensor | float = 1.0,
        ou: Tensor | float = 0.0,
        ov: Tensor | float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Head-layer coordinates of a box's pixels, (su*(u - ou), sv*(v - ov)): one full op each."""
        kx, ky = PARALLAX[layer]
        X, Y = self._xy(box)
        cos_s, sin_s = pose["cos_s"], pose["sin_s"]
        cu = pose["cu"] + kx * pose["yaw"] + ou
        cv = pose["cv"] + ky * pose["pitch"] + ov
        u = X * (cos_s * su) + (Y * (sin_s * su) - cu * su)
        v = (Y * (cos_s * sv) - cv * sv) - X * (sin_s * sv)
        return u, v

    def _torso_coords(self, box: str, breath: Tensor) -> tuple[Tensor, Tensor]:
        X, Y = self._xy(box)
        return X * (1.0 / self.S), Y * (1.0 / self.S) - (NECK_Y - BREATH_RISE * breath) * (1.0 / self.S)

    # -- the program -----------------------------------------------------------------------------

    def forward(self, states: Tensor) -> Tensor:
        s = torch.minimum(torch.maximum(states.float(), self.lo), self.hi)
        f = {name: s[:, i].reshape(-1, 1, 1, 1) for i, name in enumerate(STATE_FIELDS)}
        lay, col, aa, lw = self.layout, self._col, self.aa, self.lw
        pose = self._pose(f)
        canvas = self.canvas0.expand(s.shape[0], -1, -1, -1).clone()

        u, v = self._coords("back", pose, "back")
        style = self.look.hair_style
        self._put(
            canvas, "back", parts.draw_hair_back(self._region(canvas, "back"), u, v, style, aa, lw, col)
        )
        if style == "twintails":
            for box in ("tail0", "tail1"):
                u, v = self._coords(box, pose, "back")
                self._put(canvas, box, parts.draw_tail(self._region(canvas, box), u, v, aa, lw, col))
        shift_px = f["breath"] * self.layout.breath_px
        shift = torch.floor(shift_px)
        frac = shift_px - shift
        self._paste_rows(canvas, "neck", shift, frac)
        self._paste_rows(canvas, "torso", shift, frac)
        tx, ty = self._torso_coords("chin", f["breath"])
        u, v = self._coords("chin", pose, "face")
        self._put(canvas, "chin", parts.draw_neck_shadow(self._region(canvas, "chin"), tx, ty, u, v, aa, col))

        u, v = self._coords("head", pose, "face")
        uh, vh = self._coords("head", pose, "hair")
        edge = parts.bangs_edge(uh)
        self._put(
            canvas, "head", parts.draw_face(self._region(canvas, "head"), u, v, uh, vh, edge, aa, lw, col)
        )

        eyes = self._eye_params(f)
        for side, p in enumerate(eyes):
            box = f"cheek{side}"
            ex, ey = self._coords(box, pose, "features", su=p["su"], sv=p["sv"], ou=p["ou"], ov=lay.eye_cy)
            self._put(canvas, box, parts.draw_blush(self._region(canvas, box), ex, ey, p["blush"], col))
        for side, p in enumerate(eyes):
            box = f"eye{side}"
            ex, ey = self._coords(box, pose, "features", su=p["su"], sv=p["sv"], ou=p["ou"], ov=lay.eye_cy)
            self._put(canvas, box, parts.draw_eye(self._region(canvas, box), ex, ey, p, p["aa"], col))

        mp = self._mouth_params(f)
        mx, my = self._coords("mouth", pose, "features", ov=lay.mouth_cy)
        self._put(
            canvas, "mouth", parts.draw_mouth(self._region(canvas, "mouth"), mx, my, mp, aa, lw * 0.8, col)
        )

        self._put(
            canvas,
            "head",
            parts.draw_hair_front(self._region(canvas, "head"), uh, vh, edge, lay.lock_len, aa, lw, col),
        )
        for side, p in enumerate(self._brow_params(f)):
            box = f"brow{side}"
            bx, by = self._coords(box, pose, "features", su=p["su"], ou=p["ou"])
            self._put(canvas, box, parts.draw_brow(self._region(canvas, box), bx, by, p, aa, col))
        return self._finish(canvas)

    def _finish(self, canvas: Tensor) -> Tensor:
        if self.rgba:  # un-premultiply so consumers get straight alpha
            alpha = canvas[:, 3:4] - 0.5
            rgb = (canvas[:, :3] - 0.5) * (255.0 / alpha.clamp(min=1e-3)) + 0.5
            canvas = torch.cat([rgb.clamp(max=255.5), canvas[:, 3:4]], dim=1)
        c = self.layout.char
        out = self.frame0.expand(canvas.shape[0], -1, -1, -1).clone()
        out[:, c.y0 : c.y1, c.x0 : c.x1, :] = canvas.permute(0, 2, 3, 1).to(torch.uint8)
        return out

    def _pose(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
        """Head rotation (roll about a pivot under the chin) and translation, per state."""
        th = f["head_roll"] * ROLL_MAX
        t2 = th * th  # Taylor series: bit-identical for any batch size, unlike sin/cos kernels
        sin = th * (1.0 - t2 * (1.0 / 6.0) * (1.0 - t2 * (1.0 / 20.0)))
        cos = 1.0 - t2 * 0.5 * (1.0 - t2 * (1.0 / 12.0) * (1.0 - t2 * (1.0 / 30.0)))
        arm = PIVOT_Y - self.layout.head_cy
        cx = arm * sin + f["head_yaw"] * HEAD_SHIFT_X
        cy = PIVOT_Y - arm * cos - f["head_pitch"] * HEAD_SHIFT_Y
        cos_s, sin_s = cos * (1.0 / self.S), sin * (1.0 / self.S)
        return {
            "cos_s": cos_s,
            "sin_s": sin_s,
            "cu": cx * cos_s + cy * sin_s,
            "cv": cy * cos_s - cx * sin_s,
            "yaw": f["head_yaw"],
            "pitch": f["head_pitch"],
        }

    def _eye_params(self, f: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        """Lid curves, gaze and scale per eye; eye 0 is on screen left (the character's right)."""
        lay = self.layout
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
            a1 = 0.1 - 0.24 * ang + 0.16 * sor
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
                    "aa": ew * self.aa,
                }
            )
        return out

    def _brow_params(self, f: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        lay = self.layout
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

    def _mouth_params(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
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
            shape[0] * self.look.mouth_width + 0.035 * joy + 0.07 * fun + 0.03 * ang - 0.03 * sor - 0.04 * sur
        )
        return {
            "W": width.clamp(0.05, 0.4),
            "Ht": (shape[1] + 0.02 * joy + 0.01 * fun + 0.05 * sur).clamp(0.0, 0.15),
            "Hb": (shape[2] + 0.15 * joy + 0.09 * fun + 0.03 * ang + 0.12 * sur).clamp(0.0, 0.32),
            "K": 0.07 * joy + 0.09 * fun - 0.06 * ang - 0.075 * sor,
            "asym": 0.035 * fun,
            "teeth": 0.05 * (shape[3] + 0.8 * fun + 0.6 * ang).clamp(max=1.0),
        }


class ProceduralRenderer:
    """The `procedural` Renderer: built-in character, no assets, CPU or GPU torch."""

    def __init__(
        self,
        width: int,
        height: int,
        look: CharacterLook | None = None,
        device: str = "cpu",
        tune_malloc: bool = True,
    ) -> None:
        if tune_malloc:
            tune_glibc_malloc()
        self.width, self.height = width, height
        self.look = look or CharacterLook()
        self.device = torch.device(device)
        self.module = ProceduralCharacter(width, height, self.look).to(self.device).eval()
        self._rgba_module: ProceduralCharacter | None = None

    def _check(self, states: Tensor) -> Tensor:
        if states.ndim != 2 or states.shape[1] != P:
            raise ValueError(f"states must be [B, {P}], got {tuple(states.shape)}")
        return states.to(self.device, torch.float32)

    def render(self, states: Tensor) -> Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 on the CPU."""
        with torch.no_grad():
            return self.module(self._check(states)).cpu()

    def render_rgba(self, states: Tensor) -> Tensor:
        """states [B, P] -> [B, H, W, 4] uint8, transparent background, straight (not premultiplied) alpha."""
        if self._rgba_module is None:
            self._rgba_module = ProceduralCharacter(self.width, self.height, self.look, rgba=True)
            self._rgba_module = self._rgba_module.to(self.device).eval()
        with torch.no_grad():
            return self._rgba_module(self._check(states)).cpu()
