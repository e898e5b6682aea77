"""The `sprites` appearance: a PNGTuber-style character of layered PNG parts posed by a YAML rig.

The pack is read once (`rig.load_rig`); every image is premultiplied, scaled to the output
resolution and stored as a float tensor [4, h, w] with a transparent 1-pixel border, with colour
stored as 255*c + 0.5 so that the final uint8 cast is the rounding (as in the procedural renderer).
Per frame there is only Python arithmetic on the state (which image, where, how turned) and, per
visible layer, work inside its own bounding box:

* upright layers are resampled separably: a sub-pixel shift is one `lerp` of two slices per axis
  (none when it lands on whole pixels), a vertical stretch (breathing) a row gather + `lerp`;
* turned layers go through `grid_sample` over their box. A run of consecutive layers turned by
  the same angle (the head and everything drawn on it) is first composited upright into one
  local canvas and turned once: one rotation per frame instead of one per part, at the price of
  a second (sub-pixel) resampling of the parts on the head;
* compositing is premultiplied "over" on a float canvas covering only the union of the boxes,
  with temporaries carved from a scratch arena reused from frame to frame.

Each frame of a batch is drawn on its own with the same ops and shapes, so a state renders to the
same bytes whatever batch it is in.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.lifecycle import Lifecycle
from engine.render.sprites.rig import SpritePackError, SpriteRig, load_rig
from engine.state import EMOTIONS, IDX, STATE_FIELDS, VISEMES, P

__all__ = ["SpritePackError", "SpritesRenderer", "probe_sprites"]

_SIGNED = {"head_yaw", "head_pitch", "head_roll", "gaze_x", "gaze_y", "brow_l", "brow_r"}
_LO = [-1.0 if name in _SIGNED else 0.0 for name in STATE_FIELDS]
_MOUTH = [IDX[f"mouth_{v}"] for v in VISEMES]
_EMOTION = [IDX[e] for e in EMOTIONS]


_FAR = 1 << 30  # an axis limit that never clips (local canvases of merged layers)


@dataclass(frozen=True)
class _Layer:
    """One part (or a merged run of parts) to draw in one frame: its image, pose and box."""

    image: Tensor  # [4, hp, wp], encoded premultiplied, transparent 1-pixel border
    rows: Tensor | None  # the same as [hp, 4, wp] for parts that scale (a row gather is then a memcpy)
    pivot: tuple[float, float]  # in the padded, scaled image
    origin: tuple[float, float]  # where the pivot lands, output pixels
    angle: float  # radians, clockwise on screen
    scale: tuple[float, float]
    opacity: float
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 in the frame, clipped

    @property
    def path(self) -> str:
        """shift: upright, unscaled (slices + lerp); rows: only stretched vertically; grid: the rest."""
        if self.angle == 0.0 and self.scale == (1.0, 1.0):
            return "shift"
        if self.angle == 0.0 and self.scale[0] == 1.0 and self.rows is not None:
            return "rows"
        return "grid"

    def edge(self, axis: int) -> float:
        """Where the padded image's left (axis 0) or top (axis 1) edge lands when upright."""
        return self.origin[axis] - self.scale[axis] * self.pivot[axis]


def _axis_span(t: float, s: float, n: int, lo: int, hi: int) -> tuple[int, int]:
    """Output pixels [a, b) that an axis of n padded source pixels covers when placed at t with scale s."""
    if s == 1.0:
        a = math.ceil(t)
        b = a + (n if a == t else n - 1)  # the border pixels are transparent: skip what only they touch
    else:
        a, b = math.floor(t), math.ceil(t + s * n)
    return max(a, lo), min(b, hi)


class _Arena:
    """Scratch memory reused from frame to frame: megabyte temporaries that malloc hands back to the OS
    page-fault afresh every frame, which measured as a third of the frame time at 1280x720."""

    def __init__(self) -> None:
        self.buf = torch.empty(0)
        self.used = self.high = 0

    def reset(self) -> None:
        if self.high > self.buf.numel():
            self.buf = torch.empty(self.high + self.high // 4)
        self.used = 0

    def take(self, *shape: int) -> Tensor:
        n = math.prod(shape)
        start, self.used = self.used, self.used + (n + 15) // 16 * 16  # 64-byte aligned pieces
        self.high = max(self.high, self.used)
        if self.used > self.buf.numel():
            return torch.empty(shape)
        return self.buf[start : start + n].view(shape)


def _shift(img: Tensor, dim: int, t: float, a: int, b: int, arena: _Arena) -> Tensor:
    """Output pixels [a, b) of an unscaled axis placed at t: one slice, or a lerp of two for a sub-pixel t."""
    start = math.ceil(t)
    f = start - t  # the same weight for every pixel of the axis
    lo = img.narrow(dim, a - start, b - a)
    if f == 0.0:
        return lo
    return torch.lerp(lo, img.narrow(dim, a - start + 1, b - a), f, out=arena.take(*lo.shape))


def _over(dst: Tensor, src: Tensor, opacity: float, arena: _Arena) -> None:
    """Premultiplied "over" in place: dst = src * k + dst * (1 - k * alpha)."""
    cn = dst.shape[0]
    keep = torch.mul(src[3:4], -opacity / 255.5, out=arena.take(1, *src.shape[1:])).add_(1.0)
    if opacity == 1.0:
        torch.addcmul(src[:cn], dst, keep, out=dst)
    else:
        dst.mul_(keep).add_(src[:cn], alpha=opacity)


class SpritesRenderer(Lifecycle):
    """The `sprites` Renderer: states [B, P] -> frames [B, H, W, 3] (or RGBA) uint8 on the CPU."""

    def __init__(self, width: int, height: int, pack_dir: Path | str) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"output {width}x{height} is too small")
        self.width, self.height = width, height
        self.rig: SpriteRig = load_rig(pack_dir)
        cw, ch = self.rig.canvas
        self.zoom = min(width / cw, height / ch)
        self.offset = ((width - cw * self.zoom) / 2.0, (height - ch * self.zoom) / 2.0)
        self._images: list[dict[str, Tensor]] = []
        self._rows: list[dict[str, Tensor] | None] = []
        self._pivots: list[tuple[float, float]] = []
        with torch.no_grad():
            for part in self.rig.parts:
                scaled = {k: self._prepare(v) for k, v in part.images.items()}
                h, w = next(iter(part.images.values())).shape[:2]
                hs, ws = next(iter(scaled.values())).shape[1:]
                self._images.append(scaled)
                rows = {k: v.permute(1, 0, 2).contiguous() for k, v in scaled.items()} if part.scale else None
                self._rows.append(rows)
                self._pivots.append((part.pivot[0] * (ws - 2) / w + 1.0, part.pivot[1] * (hs - 2) / h + 1.0))
        bg = torch.tensor(self.rig.background, dtype=torch.uint8)
        self._blank = {3: bg.expand(height, width, 3).contiguous(),
                       4: torch.zeros(height, width, 4, dtype=torch.uint8)}
        self._fill = {3: bg.float().add(0.5).view(3, 1, 1), 4: torch.full((4, 1, 1), 0.5)}
        self._arena = _Arena()
        self._lock = threading.Lock()  # the arena is per renderer: one frame at a time

    def _prepare(self, rgba: np.ndarray) -> Tensor:
        """Premultiplied [h, w, 4] in 0..1 -> scaled [4, h + 2, w + 2] in the 255*c + 0.5 encoding."""
        img = torch.from_numpy(rgba).permute(2, 0, 1).unsqueeze(0)
        h, w = img.shape[2:]
        size = (max(1, round(h * self.zoom)), max(1, round(w * self.zoom)))
        if size != (h, w):
            down = size[0] < h
            img = F.interpolate(img, size=size, mode="bilinear" if down else "bicubic", align_corners=False,
                                antialias=down)
            alpha = img[:, 3:4].clamp(0.0, 1.0)
            img = torch.cat([torch.minimum(img[:, :3].clamp(min=0.0), alpha), alpha], dim=1)
        alpha = img[:, 3:4]
        enc = torch.cat([img[:, :3] * 255.0 + 0.5 * alpha, alpha * 255.5], dim=1)
        return F.pad(enc, (1, 1, 1, 1)).squeeze(0).contiguous()

    # -- per frame: Python arithmetic on the state -----------------------------------------------

    def _layers(self, values: list[float]) -> list[_Layer]:
        """Choose each part's image and pose it (parents first); the visible ones in draw order."""
        v = [min(max(x, lo), 1.0) if math.isfinite(x) else 0.0 for x, lo in zip(values, _LO, strict=True)]
        rig, z = self.rig, self.zoom
        poses: dict[str, tuple[float, float, float, float, float]] = {}  # x, y (canvas px), angle, sx, sy
        for i in rig.order:
            part = rig.parts[i]
            dx = part.position[0] + sum(v[k] * mx for k, mx, _ in part.move)
            dy = part.position[1] + sum(v[k] * my for k, _, my in part.move)
            angle = math.radians(sum(v[k] * deg for k, deg in part.rotate))
            sx = max(0.05, 1.0 + sum(v[k] * gx for k, gx, _ in part.scale))
            sy = max(0.05, 1.0 + sum(v[k] * gy for k, _, gy in part.scale))
            if part.parent is not None:  # the parent's scale moves the child but does not stretch it
                px, py, pa, psx, psy = poses[part.parent]
                dx, dy = dx * psx, dy * psy
                c, s = math.cos(pa), math.sin(pa)
                dx, dy, angle = px + c * dx - s * dy, py + s * dx + c * dy, angle + pa
            poses[part.name] = (dx, dy, angle, sx, sy)
        out = []
        for i, part in enumerate(rig.parts):
            opacity = 1.0
            if part.opacity is not None:
                opacity = min(max(sum(v[k] * w for k, w in part.opacity), 0.0), 1.0)
                if opacity < 1.0 / 512.0:
                    continue
            x, y, angle, sx, sy = poses[part.name]
            key = self._choose(part.select, v, self._images[i])
            rows = self._rows[i]
            layer = _Layer(self._images[i][key], rows[key] if rows else None, self._pivots[i],
                           (self.offset[0] + z * x, self.offset[1] + z * y), angle, (sx, sy), opacity)
            box = self._box(layer)
            if box[0] < box[2] and box[1] < box[3]:
                out.append(replace(layer, box=box))
        return out

    def _choose(self, select: str | None, v: list[float], images: dict[str, Tensor]) -> str:
        """The image key for this state: eye openness by thresholds, the strongest viseme / emotion;
        eyes and mouth then take their `<key>_<emotion>` variant where the pack has one."""
        th = self.rig.thresholds
        if select is None:
            return ""
        weights = [v[k] for k in _EMOTION]
        best = max(range(len(weights)), key=weights.__getitem__)  # ties: the first, so deterministic
        emotion = EMOTIONS[best] if weights[best] >= th.emotion else "neutral"
        if select == "emotion":
            return emotion if emotion in images else "neutral"
        if select == "mouth":
            mouth = [v[k] for k in _MOUTH]
            top = max(range(len(mouth)), key=mouth.__getitem__)
            key = VISEMES[top] if top and mouth[top] >= th.mouth else "closed"
        else:
            value = v[IDX[select]]
            key = "closed" if value < th.eye_closed else "half" if value < th.eye_half and "half" in images else "open"
        return f"{key}_{emotion}" if f"{key}_{emotion}" in images else key

    def _box(self, layer: _Layer) -> tuple[int, int, int, int]:
        hp, wp = layer.image.shape[1:]
        if layer.path != "grid":
            x0, x1 = _axis_span(layer.edge(0), layer.scale[0], wp, 0, self.width)
            y0, y1 = _axis_span(layer.edge(1), layer.scale[1], hp, 0, self.height)
            return x0, y0, x1, y1
        (px, py), (ox, oy), (sx, sy) = layer.pivot, layer.origin, layer.scale
        c, s = math.cos(layer.angle), math.sin(layer.angle)
        xs, ys = [], []
        for u, w in ((0.0, 0.0), (wp, 0.0), (0.0, hp), (wp, hp)):
            a, b = (u - px) * sx, (w - py) * sy
            xs.append(ox + c * a - s * b)
            ys.append(oy + s * a + c * b)
        return (max(math.floor(min(xs)), 0), max(math.floor(min(ys)), 0),
                min(math.ceil(max(xs)), self.width), min(math.ceil(max(ys)), self.height))

    def _flatten(self, layers: list[_Layer]) -> list[_Layer]:
        """Merge each run of consecutive layers turned by the same angle (a head and everything on it)
        into one upright local canvas, so the run costs one rotation instead of one per part."""
        out: list[_Layer] = []
        i = 0
        while i < len(layers):
            j = i + 1
            if layers[i].path == "grid" and layers[i].scale == (1.0, 1.0):
                while j < len(layers) and layers[j].angle == layers[i].angle and layers[j].scale == (1.0, 1.0):
                    j += 1
            if j - i == 1:
                out.append(layers[i])
            else:
                merged = self._merge(layers[i:j])
                box = self._box(merged)
                if box[0] < box[2] and box[1] < box[3]:
                    out.append(replace(merged, box=box))
            i = j
        return out

    def _merge(self, run: list[_Layer]) -> _Layer:
        first = run[0]
        c, s = math.cos(first.angle), math.sin(first.angle)
        # the run's upright frame: pixel-aligned with the first (usually largest) layer, so it is a copy
        fx, fy = first.pivot[0] - math.floor(first.pivot[0]), first.pivot[1] - math.floor(first.pivot[1])
        placed = []
        for la in run:
            dx, dy = la.origin[0] - first.origin[0], la.origin[1] - first.origin[1]
            tx, ty = c * dx + s * dy - la.pivot[0] + fx, -s * dx + c * dy - la.pivot[1] + fy
            if la is first:
                tx, ty = float(math.floor(-la.pivot[0] + fx)), float(math.floor(-la.pivot[1] + fy))
            hp, wp = la.image.shape[1:]
            placed.append((la, tx, ty, *_axis_span(tx, 1.0, wp, -_FAR, _FAR), *_axis_span(ty, 1.0, hp, -_FAR, _FAR)))
        x0, x1 = min(p[3] for p in placed), max(p[4] for p in placed)
        y0, y1 = min(p[5] for p in placed), max(p[6] for p in placed)
        local = self._arena.take(4, y1 - y0 + 2, x1 - x0 + 2).zero_()  # transparent, 1-pixel border
        for la, tx, ty, xa, xb, ya, yb in placed:
            src = _shift(_shift(la.image, 1, ty, ya, yb, self._arena), 2, tx, xa, xb, self._arena)
            dst = local[:, ya - y0 + 1 : yb - y0 + 1, xa - x0 + 1 : xb - x0 + 1]
            if la is first:  # over a transparent canvas is the layer itself
                dst.copy_(src) if la.opacity == 1.0 else torch.mul(src, la.opacity, out=dst)
            else:
                _over(dst, src, la.opacity, self._arena)
        pivot = (1.0 - x0 + fx, 1.0 - y0 + fy)
        return _Layer(local, None, pivot, first.origin, first.angle, (1.0, 1.0), 1.0)

    # -- per frame: pixels -----------------------------------------------------------------------

    def _warp(self, layer: _Layer) -> Tensor:
        """The layer's pixels over its box, [4, y1 - y0, x1 - x0]."""
        x0, y0, x1, y1 = layer.box
        path = layer.path
        if path == "shift":
            rows = _shift(layer.image, 1, layer.edge(1), y0, y1, self._arena)
            return _shift(rows, 2, layer.edge(0), x0, x1, self._arena)
        if path == "rows":
            assert layer.rows is not None
            n, sy, t = layer.rows.shape[0], layer.scale[1], layer.edge(1)
            u = ((torch.arange(y0, y1, dtype=torch.float64) + (0.5 - t)) / sy - 0.5).clamp(0.0, n - 1.0)
            i0 = u.floor().clamp(max=n - 2.0)
            idx, w = i0.long(), (u - i0).float().view(-1, 1, 1)
            shape = (y1 - y0, *layer.rows.shape[1:])
            lo = torch.index_select(layer.rows, 0, idx, out=self._arena.take(*shape))
            hi = torch.index_select(layer.rows, 0, idx + 1, out=self._arena.take(*shape))
            rows = torch.lerp(lo, hi, w, out=lo)
            return _shift(rows, 2, layer.edge(0), x0, x1, self._arena).permute(1, 0, 2)
        img = layer.image
        hp, wp = img.shape[1:]
        (px, py), (ox, oy), (sx, sy) = layer.pivot, layer.origin, layer.scale
        c, s = math.cos(layer.angle), math.sin(layer.angle)
        # output pixel centre (X + .5, Y + .5) -> image point, in grid_sample's [-1, 1] units
        kx, ky = 2.0 / (sx * wp), 2.0 / (sy * hp)
        cx = 2.0 * px / wp - 1.0 + kx * (c * (0.5 - ox) + s * (0.5 - oy))
        cy = 2.0 * py / hp - 1.0 + ky * (-s * (0.5 - ox) + c * (0.5 - oy))
        xs = torch.arange(x0, x1, dtype=torch.float64)
        ys = torch.arange(y0, y1, dtype=torch.float64)
        grid = self._arena.take(1, y1 - y0, x1 - x0, 2)
        torch.add((xs * (c * kx)).float().view(1, -1), (ys * (s * kx) + cx).float().view(-1, 1), out=grid[0, :, :, 0])
        torch.add((xs * (-s * ky)).float().view(1, -1), (ys * (c * ky) + cy).float().view(-1, 1), out=grid[0, :, :, 1])
        return F.grid_sample(img.unsqueeze(0), grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]

    def _frame(self, state: Tensor, out: Tensor) -> None:
        """Draw one state into `out` [H, W, C], which holds the background already."""
        self._arena.reset()
        layers = self._flatten(self._layers(state.tolist()))
        if not layers:
            return
        cn = out.shape[-1]
        ux0, uy0 = min(la.box[0] for la in layers), min(la.box[1] for la in layers)
        ux1, uy1 = max(la.box[2] for la in layers), max(la.box[3] for la in layers)
        canvas = self._arena.take(cn, uy1 - uy0, ux1 - ux0)
        canvas.copy_(self._fill[cn].expand_as(canvas))
        for layer in layers:
            x0, y0, x1, y1 = layer.box
            dst = canvas[:, y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0]
            _over(dst, self._warp(layer), layer.opacity, self._arena)
        if cn == 4:  # straight alpha for consumers: rgb = (c - .5) * 255 / (a - .5) + .5
            scale = torch.sub(canvas[3:4], 0.5, out=self._arena.take(1, *canvas.shape[1:]))
            torch.reciprocal(scale.clamp_(min=1e-3), out=scale).mul_(255.0)
            canvas[:3].sub_(0.5).mul_(scale).add_(0.5).clamp_(0.0, 255.5)
        region = out[uy0:uy1, ux0:ux1]
        for ch in range(cn):  # one plane at a time: much faster than a permuted copy
            region[:, :, ch].copy_(canvas[ch])

    def _draw(self, states: Tensor, channels: int) -> Tensor:
        if states.ndim != 2 or states.shape[1] != P:
            raise ValueError(f"states must be [B, {P}], got {tuple(states.shape)}")
        # The scratch arena outlives a call: allocate it as normal tensors even when the caller runs in
        # inference mode (the frame loop does), or a later call outside it could not write into them.
        with torch.inference_mode(False), torch.no_grad(), self._lock:
            states = states.detach().to("cpu", torch.float32)
            out = self._blank[channels].expand(states.shape[0], -1, -1, -1).clone()
            for b in range(states.shape[0]):
                self._frame(states[b], out[b])
        return out

    def render(self, states: Tensor) -> Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 on the CPU, over the rig's background colour."""
        return self._draw(states, 3)

    def render_rgba(self, states: Tensor) -> Tensor:
        """states [B, P] -> [B, H, W, 4] uint8, transparent background, straight (not premultiplied) alpha."""
        return self._draw(states, 4)


def probe_sprites(pack: Path | str) -> tuple[bool, str]:
    """`stagecast check`: does the pack load, and if not, why not."""
    try:
        rig = load_rig(pack)
    except SpritePackError as exc:
        return False, " ".join(line.strip() for line in str(exc).splitlines())
    images = sum(len(p.images) for p in rig.parts)
    return True, f"{pack}: {len(rig.parts)} parts, {images} images, canvas {rig.canvas[0]}x{rig.canvas[1]}"
