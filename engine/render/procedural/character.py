"""The built-in `procedural` character: an anime-style host drawn by torch from the state vector.

No art files: every part is an anti-aliased signed-distance shape in normalized coordinates
(unit = frame height), so the character scales with the output resolution. Speed comes from
layout decided once in __init__ (see `layout`):

* the background (and anything else that never moves) is cached as a uint8 frame;
* neck and torso only move with the breath, so they are cached as rows and shifted;
* every moving part is drawn inside a *tight* box that follows the head: its size is fixed,
  its position is an integer offset computed per state, and the pixels are gathered from and
  scattered back to the canvas by flat indices (Gather / ScatterND in ONNX). Mirrored pairs
  (eyes, brows, cheeks, twintails) are one batched draw over 2B regions;
* head pose is applied to the *coordinates* (one rotation + offset per box), parallax between
  layers is an offset per layer;
* compositing is premultiplied `lerp` on a planar float canvas covering the character only,
  with colors stored as 255*c + 0.5 so the final uint8 cast is the rounding.

The torch program lives in `ProceduralCharacter.forward` (an nn.Module without data-dependent
control flow, for ONNX export); `ProceduralRenderer` (renderer.py) is the `Renderer` around it, running
the module as a `torch.jit.trace` program (default), compiled by inductor for the CPU, or eagerly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from engine.render.procedural import canvas_ops, expression, parts
from engine.render.procedural.layout import (
    _RANGES,
    BREATH_RISE,
    HEAD_SHIFT_X,
    HEAD_SHIFT_Y,
    MARGIN_PX,
    NECK_Y,
    PARALLAX,
    PIVOT_Y,
    ROLL_MAX,
    Box,
    DynBox,
    Layout,
    _background,
)
from engine.render.procedural.look import CharacterLook
from engine.render.procedural.palette import palette
from engine.render.procedural.parts import TAIL_TIE
from engine.render.procedural.region import Region
from engine.state import IDX, STATE_FIELDS, P


def _cat(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack per-side parameter dicts along the batch (side-major), for a batched pair draw."""
    return {k: torch.cat([d[k] for d in items]) for k in items[0]}


class ProceduralCharacter(nn.Module):
    """states [B, P] float32 -> frames [B, H, W, 3] uint8 (or RGBA with straight alpha)."""

    # Buffers read by name (register_buffer in __init__; rows_*, grid_*, xb_* and yb_* by getattr).
    palette: Tensor
    lo: Tensor
    hi: Tensor
    frame0: Tensor
    canvas0: Tensor
    canvas0_compiled: Tensor
    X_chin: Tensor
    Y_chin: Tensor
    row_index: Tensor

    def __init__(
        self, width: int, height: int, look: CharacterLook | None = None, rgba: bool = False, tight: bool = True
    ) -> None:
        super().__init__()
        if width < 16 or height < 16:
            raise ValueError(f"output {width}x{height} is too small")
        self.look = look or CharacterLook()
        self.width, self.height, self.rgba = width, height, rgba
        lay = self.layout = Layout(width, height, self.look, tight)
        self.S = lay.S
        self.aa = lay.S * height  # pixels per head unit
        self.lw = 0.032 * self.look.line_width
        ch = self.channels = 4 if rgba else 3
        self.traceable = False  # True: move pixels with index ops only (set for ONNX export and CUDA graphs)
        self.compiled = False  # True: the torch.compile form (see `for_compiler`)
        self.float_frame = False  # True: the whole frame in float, cast to uint8 last (see `for_export`)
        self._background: list[str] = []  # the float frame's pieces around the character's box
        pal = palette(self.look)
        self._color_index = {name: i for i, name in enumerate(pal)}
        colors = torch.tensor([list(c) + ([255.0] if rgba else []) for c in pal.values()]) + 0.5
        self.register_buffer("palette", colors.view(len(pal), 1, ch, 1, 1), persistent=False)
        lo = torch.zeros(P)
        hi = torch.ones(P)
        for name, (low, high) in _RANGES.items():
            lo[IDX[name]], hi[IDX[name]] = low, high
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("hi", hi, persistent=False)
        if rgba:
            frame = torch.zeros(1, height, width, 4, dtype=torch.uint8)
        else:
            frame = (
                (_background(width, height, self.look) + 0.5).to(torch.uint8).permute(1, 2, 0).unsqueeze(0)
            )
        c = lay.char
        self.canvas_hw = (c.y1 - c.y0, c.x1 - c.x0)
        self.register_buffer("frame0", frame.contiguous(), persistent=False)
        canvas0 = frame[:, c.y0 : c.y1, c.x0 : c.x1, :].permute(0, 3, 1, 2).float() + 0.5
        self.register_buffer("canvas0", canvas0.contiguous(), persistent=False)
        self.boxes: dict[str, Box] = {}
        for name in ("neck", "torso", "chin"):
            b = lay.boxes[name]
            self.boxes[name] = Box(b.y0 - c.y0, b.y1 - c.y0, b.x0 - c.x0, b.x1 - c.x0)
            xs = (torch.arange(b.x0, b.x1, dtype=torch.float64) + 0.5 - width / 2) / height
            ys = (torch.arange(b.y0, b.y1, dtype=torch.float64) + 0.5) / height
            self.register_buffer(f"X_{name}", xs.float().view(1, 1, 1, -1), persistent=False)
            self.register_buffer(f"Y_{name}", ys.float().view(1, 1, -1, 1), persistent=False)
        for name in ("neck", "torso"):
            self.register_buffer(f"rows_{name}", self._row_layer(lay.boxes[name], pal, rgba), persistent=False)
        rows = max(self.boxes[n].y1 - self.boxes[n].y0 for n in ("neck", "torso"))
        self.register_buffer("row_index", torch.arange(rows, dtype=torch.int64), persistent=False)
        hc, wc = self.canvas_hw
        for name, d in lay.dyn.items():
            h, w = d.size
            # constant part of the flat index: channel plane + row * canvas width + column
            grid = (
                torch.arange(ch).view(ch, 1, 1) * (hc * wc)
                + torch.arange(h).view(1, h, 1) * wc
                + torch.arange(w).view(1, 1, w)
            )
            self.register_buffer(f"grid_{name}", grid.unsqueeze(0), persistent=False)
            xb = (torch.arange(w) + (c.x0 + 0.5 - width / 2)).float().view(1, 1, 1, w)
            yb = (torch.arange(h) + (c.y0 + 0.5)).float().view(1, 1, h, 1)
            self.register_buffer(f"xb_{name}", xb, persistent=False)
            self.register_buffer(f"yb_{name}", yb, persistent=False)

    def for_compiler(self) -> ProceduralCharacter:
        """Switch to the form torch.compile runs fast on the CPU.

        * Pixels move through opaque canvas ops (`canvas_ops`), so each part stays a kernel over
          its own box.
        * The canvas is stored as float16; every part still computes in float32 (the casts fuse
          into its kernel). A 1080p frame moves ~100 MB through memory, and on a 2-core VM that
          traffic, not the arithmetic, set the pace: half the bytes made a 1080p frame 13 % faster
          (interleaved A/B, 16.2 vs 18.5 ms). Near white a float16 step is 1/8 of a level, so a
          pixel can round one level away from eager (0.2 % of a 1080p frame's pixels did).
          RGBA keeps float32: un-premultiplying a half-transparent edge doubled that error.
        """
        self.compiled = True
        canvas0 = self.canvas0 if self.rgba else self.canvas0.half()
        self.register_buffer("canvas0_compiled", canvas0, persistent=False)
        return self

    def for_export(self) -> ProceduralCharacter:
        """Switch to the form exported to ONNX (for ONNX Runtime and TensorRT) and captured in CUDA graphs.

        * Pixels move through index ops (`traceable`): offsets never leave the device.
        * The frame is assembled in float around the character's box and cast to uint8 as the very
          last op, so no op but that Cast touches uint8: TensorRT 10 takes uint8 only as a network
          input or output. The pixels are those of `forward` in the other forms, bit for bit.
        """
        self.traceable = True
        self.float_frame = True
        c = self.layout.char
        planar = self.frame0.permute(0, 3, 1, 2).float()
        pieces = {"bg_top": planar[:, :, : c.y0], "bg_left": planar[:, :, c.y0 : c.y1, : c.x0],
                  "bg_right": planar[:, :, c.y0 : c.y1, c.x1 :], "bg_bottom": planar[:, :, c.y1 :]}
        self._background = []
        for name, piece in pieces.items():
            if piece.numel():  # a box at the frame's edge leaves that piece empty: no zero-size tensor in the graph
                self.register_buffer(name, piece.contiguous(), persistent=False)
                self._background.append(name)
        return self

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
        # whole numbers, added as int64: an fp16 engine would round float row numbers
        idx = (self.row_index[:h].view(1, -1) + shift.to(torch.int64).view(-1, 1)).reshape(-1)
        r0 = torch.index_select(layer, 0, idx)
        r1 = torch.index_select(layer, 0, idx + 1)
        rows = torch.lerp(r0, r1, frac.view(-1, 1, 1).repeat_interleave(h, 0))
        rows = rows.view(-1, h, rows.shape[1], rows.shape[2]).permute(0, 2, 1, 3)
        self._paint_static(canvas, b, lambda reg: torch.addcmul(rows[:, :-1], reg, rows[:, -1:]))

    # -- helpers ---------------------------------------------------------------------------------

    def _col(self, name: str) -> Tensor:
        return self.palette[self._color_index[name]]

    def _region(self, d: DynBox, pose: dict[str, Tensor], batch: int) -> Region:
        """Where a tight box sits for each state (and side): integer offsets -> flat indices + coords."""
        hc, wc = self.canvas_hw
        h, w = d.size
        c = self.layout.char
        H = float(self.height)
        ox: list[Tensor] = []
        oy: list[Tensor] = []
        for side in range(d.sides):
            u = -d.ref[0] if d.sides == 2 and side == 0 else d.ref[0]
            px, py = self._head_point(pose, d.layer, u, d.ref[1])
            dx = self.width / 2 + d.rel[side][0] - MARGIN_PX - c.x0
            dy = d.rel[side][1] - MARGIN_PX - c.y0
            rx = px * H + dx
            ry = py * H + dy
            ox.append(torch.floor(rx).clamp(0.0, float(wc - w)))
            oy.append(torch.floor(ry).clamp(0.0, float(hc - h)))
        x0, y0 = torch.cat(ox), torch.cat(oy)  # [S*B, 1, 1, 1], whole numbers
        n = x0.shape[0]
        moves = "ops" if self.compiled else "index" if self.traceable or torch.compiler.is_compiling() else "views"
        index = x0
        if moves == "index":
            plane = torch.arange(batch, device=x0.device).repeat(d.sides).view(-1, 1, 1, 1) * (self.channels * hc * wc)
            # in int64 from the whole-number offsets on: y0 * wc overflows float16 (and rounds past 2048)
            base = plane + y0.to(torch.int64) * wc + x0.to(torch.int64)
            index = (base + getattr(self, f"grid_{d.name}")).reshape(-1)
        X = (x0 + getattr(self, f"xb_{d.name}")) / H
        Y = (y0 + getattr(self, f"yb_{d.name}")) / H
        return Region(index, (n, self.channels, h, w), X, Y, x0, y0, batch, moves)

    def _coords(
        self,
        reg: Region,
        pose: dict[str, Tensor],
        layer: str,
        su: Tensor | float = 1.0,
        sv: Tensor | float = 1.0,
        ou: Tensor | float = 0.0,
        ov: Tensor | float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Head-layer coordinates of a region's pixels, (su*(u - ou), sv*(v - ov)): one full op each."""
        kx, ky = PARALLAX[layer]
        X, Y = reg.X, reg.Y
        cos_s, sin_s = pose["cos_s"], pose["sin_s"]
        cu = pose["cu"] + kx * pose["yaw"] + ou
        cv = pose["cv"] + ky * pose["pitch"] + ov
        u = X * (cos_s * su) + (Y * (sin_s * su) - cu * su)
        v = (Y * (cos_s * sv) - cv * sv) - X * (sin_s * sv)
        return u, v

    def _head_point(
        self, pose: dict[str, Tensor], layer: str, u: Tensor | float, v: float
    ) -> tuple[Tensor, Tensor]:
        """Frame position (frame heights, x from the centre line) of head-layer point (u, v) at each pose."""
        kx, ky = PARALLAX[layer]
        a = (pose["yaw"] * kx + u) * self.S
        b = (pose["pitch"] * ky + v) * self.S
        return pose["cx"] + a * pose["cos"] - b * pose["sin"], pose["cy"] + a * pose["sin"] + b * pose["cos"]

    def _hang_coords(self, reg: Region, pose: dict[str, Tensor], sign: Tensor) -> tuple[Tensor, Tensor]:
        """Back-layer coordinates (u mirrored by `sign`) of a part hanging upright from its tie.

        The tie turns with the head; the twintail below it hangs under gravity, so head roll moves
        it but does not turn it, and its box is ~30 % narrower than one swept by the roll.
        """
        au, av = TAIL_TIE[0], TAIL_TIE[1]
        ax, ay = self._head_point(pose, "back", sign * au, av)
        return (reg.X - ax) * (sign * (1.0 / self.S)) + au, (reg.Y - ay) * (1.0 / self.S) + av

    def _draw(
        self,
        canvas: Tensor,
        name: str,
        pose: dict[str, Tensor],
        batch: int,
        paint: Callable[[Tensor, Region, dict[str, Tensor], int | None], Tensor],
    ) -> None:
        """Gather a part's region(s), paint, scatter back: one batched call for a safe mirrored pair."""
        d = self.layout.dyn[name]
        if d.sides == 1 or d.paired:
            pz = pose if d.sides == 1 else _cat([pose, pose])
            r = self._region(d, pose, batch)
            r.repaint(canvas, lambda reg: paint(reg, r, pz, None))
            return
        for side in range(2):  # the two boxes can overlap: draw one after the other, like layers
            single = DynBox(d.name, d.layer, (-d.ref[0] if side == 0 else d.ref[0], d.ref[1]), (d.rel[side],),
                            d.size, 1, False)
            r = self._region(single, pose, batch)

            def one_side(reg: Tensor, r: Region = r, side: int = side) -> Tensor:
                return paint(reg, r, pose, side)

            r.repaint(canvas, one_side)

    def _torso_coords(self, box: str, breath: Tensor) -> tuple[Tensor, Tensor]:
        X, Y = getattr(self, f"X_{box}"), getattr(self, f"Y_{box}")
        return X * (1.0 / self.S), Y * (1.0 / self.S) - (NECK_Y - BREATH_RISE * breath) * (1.0 / self.S)

    # -- the program -----------------------------------------------------------------------------

    def forward(self, states: Tensor) -> Tensor:
        if self.float_frame:
            return self._float_frame(self._straight(self._canvas(states)))
        pixels = self.char_pixels(states)
        c = self.layout.char
        out = self.frame0.expand(pixels.shape[0], -1, -1, -1).clone()
        out[:, c.y0 : c.y1, c.x0 : c.x1, :] = pixels
        return out

    def char_pixels(self, states: Tensor) -> Tensor:
        """states [B, P] -> the character's box of the frame, [B, h, w, C] uint8 (`layout.char`).

        Everything outside that box is `frame0`. The compiled program stops here and the renderer
        writes the box into a recycled frame (`FramePool`).
        """
        return self._finish(self._canvas(states))

    def _float_frame(self, pixels: Tensor) -> Tensor:
        """The character's box [B, C, h, w] (float, straight alpha) inside the background, then uint8 [B, H, W, C]."""
        batch = pixels.shape[0]

        def bg(name: str) -> list[Tensor]:
            return [getattr(self, name).expand(batch, -1, -1, -1)] if name in self._background else []

        row = bg("bg_left") + [pixels] + bg("bg_right")
        rows = bg("bg_top") + [torch.cat(row, dim=3) if len(row) > 1 else pixels] + bg("bg_bottom")
        frame = torch.cat(rows, dim=2) if len(rows) > 1 else rows[0]
        return frame.permute(0, 2, 3, 1).to(torch.uint8)

    def _canvas(self, states: Tensor) -> Tensor:
        """states [B, P] -> the character's box as the premultiplied planar canvas [B, C, h, w] (float)."""
        s = torch.minimum(torch.maximum(states.float(), self.lo), self.hi)
        f = {name: s[:, i].reshape(-1, 1, 1, 1) for i, name in enumerate(STATE_FIELDS)}
        lay, col, aa, lw = self.layout, self._col, self.aa, self.lw
        batch = s.shape[0]
        pose = self._pose(f)
        canvas = (self.canvas0_compiled if self.compiled else self.canvas0).expand(batch, -1, -1, -1).clone()
        style = self.look.hair_style

        def back(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            u, v = self._coords(r, pz, "back")
            return parts.draw_hair_back(reg, u, v, style, aa, lw, col)

        def side_sign(side: int | None) -> Tensor:
            """u is mirrored per side (both sides of a batched pair when None): a box never draws the other tail."""
            one = torch.ones_like(pose["yaw"])
            return torch.cat([-one, one]) if side is None else (one if side == 1 else -one)

        def mirrored(draw: Callable[..., Tensor]) -> Callable[[Tensor, Region, dict[str, Tensor], int | None], Tensor]:
            def paint(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
                u, v = self._coords(r, pz, "back", su=side_sign(side))
                return draw(reg, u, v, aa, lw, col)

            return paint

        def hanging(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            u, v = self._hang_coords(r, pz, side_sign(side))
            return parts.draw_tail(reg, u, v, aa, lw, col)

        self._draw(canvas, "back", pose, batch, back)
        if style == "twintails":
            self._draw(canvas, "tail", pose, batch, hanging)
            self._draw(canvas, "tie", pose, batch, mirrored(parts.draw_tail_tie))
        shift_px = f["breath"] * lay.breath_px
        shift = torch.floor(shift_px)
        frac = shift_px - shift
        self._paste_rows(canvas, "neck", shift, frac)
        self._paste_rows(canvas, "torso", shift, frac)
        tx, ty = self._torso_coords("chin", f["breath"])
        X, Y = self.X_chin, self.Y_chin
        cb = self.boxes["chin"]
        chin = Region(X, (0, 0, 0, 0), X, Y, X, X, batch, "views")  # coordinates only: this box is static
        u, v = self._coords(chin, pose, "face")
        self._paint_static(canvas, cb, lambda region: parts.draw_neck_shadow(region, tx, ty, u, v, aa, col))

        def face(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            u, v = self._coords(r, pz, "face")
            uh, vh = self._coords(r, pz, "hair")
            return parts.draw_face(reg, u, v, uh, vh, parts.bangs_edge(uh), aa, lw, col)

        self._draw(canvas, "head", pose, batch, face)
        eyes = expression.eye_params(f, lay, self.look, self.aa)

        def pick(params: list[dict[str, Tensor]], side: int | None) -> dict[str, Tensor]:
            return _cat(params) if side is None else params[side]

        def cheek(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            p = pick(eyes, side)
            ex, ey = self._coords(r, pz, "features", su=p["su"], sv=p["sv"], ou=p["ou"], ov=lay.eye_cy)
            return parts.draw_blush(reg, ex, ey, p["blush"], col)

        def eye(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            p = pick(eyes, side)
            ex, ey = self._coords(r, pz, "features", su=p["su"], sv=p["sv"], ou=p["ou"], ov=lay.eye_cy)
            return parts.draw_eye(reg, ex, ey, p, p["aa"], col)

        self._draw(canvas, "cheek", pose, batch, cheek)
        self._draw(canvas, "eye", pose, batch, eye)
        mp = expression.mouth_params(f, self.look)

        def mouth(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            mx, my = self._coords(r, pz, "features", ov=lay.mouth_cy)
            return parts.draw_mouth(reg, mx, my, mp, aa, lw * 0.8, col)

        def hair_front(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            uh, vh = self._coords(r, pz, "hair")
            return parts.draw_hair_front(reg, uh, vh, parts.bangs_edge(uh), lay.lock_len, aa, lw, col)

        self._draw(canvas, "mouth", pose, batch, mouth)
        self._draw(canvas, "head", pose, batch, hair_front)
        brows = expression.brow_params(f, lay)

        def brow(reg: Tensor, r: Region, pz: dict[str, Tensor], side: int | None) -> Tensor:
            p = pick(brows, side)
            bx, by = self._coords(r, pz, "features", su=p["su"], ou=p["ou"])
            return parts.draw_brow(reg, bx, by, p, aa, col)

        self._draw(canvas, "brow", pose, batch, brow)
        return canvas

    def _paint_static(self, canvas: Tensor, b: Box, paint: Callable[[Tensor], Tensor]) -> None:
        """Repaint a box that never moves (neck, torso, the head's shadow on the neck)."""
        region = paint(canvas[:, :, b.y0 : b.y1, b.x0 : b.x1].float())
        if self.compiled:
            canvas_ops.paste(canvas, region.to(canvas.dtype), [-1, b.y0, b.x0])
        else:
            canvas[:, :, b.y0 : b.y1, b.x0 : b.x1] = region

    def _finish(self, canvas: Tensor) -> Tensor:
        return self._straight(canvas).permute(0, 2, 3, 1).to(torch.uint8)

    def _straight(self, canvas: Tensor) -> Tensor:
        """The canvas in float32 with straight alpha (colors are 255*c + 0.5: the uint8 cast rounds)."""
        canvas = canvas.float()  # the compiled form's float16 canvas (a no-op otherwise)
        if self.rgba:  # un-premultiply so consumers get straight alpha
            alpha = canvas[:, 3:4] - 0.5
            rgb = (canvas[:, :3] - 0.5) * (255.0 / alpha.clamp(min=1e-3)) + 0.5
            canvas = torch.cat([rgb.clamp(max=255.5), canvas[:, 3:4]], dim=1)
        return canvas

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
            "cos": cos,
            "sin": sin,
            "cx": cx,
            "cy": cy,
        }
