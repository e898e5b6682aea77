"""Drawing of the procedural character's parts as anti-aliased distance fields.

Every function works on one box of the canvas: `reg` is a planar [B, C, h, w] float slice with
colors stored as 255*c + 0.5 (so the final cast to uint8 rounds), coordinates are [B, 1, h, w]
tensors (or broadcastable pieces) in the part's own units, and per-state parameters are
[B, 1, 1, 1]. Only elementwise math, clamp and lerp: this must trace and export to ONNX, and it
must give the same bits for a state whether rendered alone or in a batch (no transcendental
functions per pixel, whose vectorised and scalar paths can differ in the last ulp).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Color = Callable[[str], Tensor]  # name -> [1, C, 1, 1]


def cov(d: Tensor, aa: float | Tensor) -> Tensor:
    """Coverage of a pixel by the shape whose signed distance is d (aa = pixels per unit)."""
    return (0.5 - d * aa).clamp(0.0, 1.0)


def over(reg: Tensor, color: Tensor, alpha: Tensor) -> Tensor:
    """Premultiplied 'over' with a flat or per-pixel color.

    Eager and traced, `lerp` is one fused pass. Under torch.compile the plain formula is used:
    inductor's lerp evaluates both of its branches, and the formula made a 1080p frame 5-9 %
    faster (with the same uint8 pixels on the measured frame).
    """
    if torch.compiler.is_compiling():
        return reg + alpha * (color - reg)
    return torch.lerp(reg, color, alpha)


def tri(t: Tensor) -> Tensor:
    """Triangle wave: 1 at integers, 0 at half-integers (hair strands without sin())."""
    return (2.0 * (t - torch.floor(t)) - 1.0).abs()


def _len(x: Tensor, y: Tensor) -> Tensor:
    return (x * x + y * y).sqrt()


def face_sdf(u: Tensor, v: Tensor, chin: float = 1.35) -> Tensor:
    """Anime face: round cranium (radius 1) over a vesica jaw with its point at (0, chin)."""
    c = (chin * chin - 1.0) / 2.0
    d_cran = _len(u, v) - 1.0
    d_jaw = torch.maximum(_len(u.abs() + c, v) - (1.0 + c), -v)
    return torch.minimum(d_cran, d_jaw)


# ----------------------------------------------------------------------------------------------
# hair


def bangs_edge(u: Tensor) -> Tensor:
    """Lower edge of the bangs (y down): a forehead curve with two layers of pointed strands."""
    return -0.15 + 0.26 * u * u + 0.24 * tri(u * 2.2 + 0.5) + 0.08 * tri(u * 4.9 + 0.15)


def hair_front_sdf(u: Tensor, v: Tensor, edge: Tensor, lock_len: float) -> tuple[Tensor, Tensor]:
    """Bangs cap and the two side locks framing the face. Returns (distance, radius from crown)."""
    r = _len(u, v + 0.08)
    d_cap = torch.maximum(r - 1.1, (v - edge) * 0.55)
    t = ((v + 0.25) * (1.0 / (lock_len + 0.25))).clamp(0.0, 1.0)
    hw = 0.2 * (1.0 - t * t) + 0.015
    au = u.abs()
    d_lock = torch.maximum((au - (0.9 + 0.1 * t)).abs() - hw, torch.maximum(v - lock_len, -0.3 - v))
    return torch.minimum(d_cap, d_lock), r


def hair_back_sdf(u: Tensor, v: Tensor, style: str) -> Tensor:
    """Hair behind the head (down behind the body for long hair); twintails' tails are separate."""
    au = u.abs()
    d_top = _len(u, v + 0.05) - 1.2
    vp = v.clamp(min=0.0)
    if style == "bob":
        side = au - (1.24 - 0.06 * vp * vp)
        bottom = v - (1.1 - 0.18 * au + 0.06 * tri(u * 3.0))
    elif style == "long":
        side = au - (1.25 + 0.14 * vp)
        bottom = v - (4.6 - 0.25 * au * au + 0.15 * tri(u * 2.5))
    else:
        side = au - 1.2
        bottom = v - (0.75 + 0.08 * tri(u * 3.0))
    return torch.minimum(d_top, torch.maximum(torch.maximum(side, bottom), -v))


def draw_hair_back(reg: Tensor, u: Tensor, v: Tensor, style: str, aa: float, lw: float, col: Color) -> Tensor:
    d = hair_back_sdf(u, v, style)
    reg = over(reg, col("hair_line"), cov(d - lw, aa))
    return over(reg, col("hair_dark"), cov(d, aa))


def draw_tail(reg: Tensor, u: Tensor, v: Tensor, aa: float, lw: float, col: Color) -> Tensor:
    """One twintail hanging from a tie high on the head; u is mirrored so that the tail's side is u > 0."""
    tx = (u - 1.55 - 0.08 * v) * (1.0 / 0.55)
    ty = (v - 1.45) * (1.0 / 2.1)
    bulge = 1.0 - 0.35 * ty.clamp(min=0.0)  # tails narrow towards their tips
    d = (_len(tx / bulge, ty) - 1.0) * 0.5
    reg = over(reg, col("hair_line"), cov(d - lw, aa))
    return over(reg, col("hair_dark"), cov(d, aa))


TAIL_TIE = (1.08, -0.55, 0.17)  # centre u, v and radius of a twintail's hair tie (back-layer units)


def draw_tail_tie(reg: Tensor, u: Tensor, v: Tensor, aa: float, lw: float, col: Color) -> Tensor:
    """The tie where a twintail leaves the head (its own small box: a third of a tail box's cost)."""
    cu, cv, r = TAIL_TIE
    d_tie = _len(u - cu, v - cv) - r
    reg = over(reg, col("line"), cov(d_tie - lw, aa))
    return over(reg, col("accent"), cov(d_tie, aa))


def draw_hair_front(
    reg: Tensor, u: Tensor, v: Tensor, edge: Tensor, lock_len: float, aa: float, lw: float, col: Color
) -> Tensor:
    d, r = hair_front_sdf(u, v, edge, lock_len)
    a_hair = cov(d, aa)
    reg = over(reg, col("hair_line"), cov(d - lw, aa))
    reg = over(reg, col("hair"), a_hair)
    # "angel ring" highlight, broken into strands, only on the crown
    d_ring = torch.maximum((r - 0.78).abs() - 0.05 * tri(u * 3.1 + 0.25), v + 0.25)
    reg = over(reg, col("hair_highlight"), cov(d_ring, aa) * a_hair)
    # darker strand lines running down from the crown to the notches between strands
    d_str = torch.maximum((1.0 - tri(u * 2.2)) * (0.5 / 2.2) - 0.012, -0.15 - v)
    reg = over(reg, col("hair_dark"), cov(d_str, aa) * a_hair * 0.8)
    return reg


# ----------------------------------------------------------------------------------------------
# face, neck, body


def draw_face(
    reg: Tensor, u: Tensor, v: Tensor, uh: Tensor, vh: Tensor, edge: Tensor, aa: float, lw: float, col: Color
) -> Tensor:
    """Skin with outline, then the bangs' shadow on the forehead (uh, vh: hair-layer coords)."""
    d = face_sdf(u, v)
    a_skin = cov(d, aa)
    reg = over(reg, col("line"), cov(d - lw, aa))
    reg = over(reg, col("skin"), a_skin)
    d_sh = (vh - edge - 0.1) * 0.55
    return over(reg, col("skin_shadow"), cov(d_sh, aa * 0.5) * a_skin)


def neck_sdf(tx: Tensor, ty: Tensor) -> Tensor:
    """Neck plus the skin visible in the V neckline (torso units, y down from the neck base)."""
    flare = (ty - 0.4).clamp(min=0.0)
    d_neck = torch.maximum(tx.abs() - (0.27 + 0.2 * flare * flare), -2.3 - ty)
    return torch.maximum(d_neck, ty - 1.6)


def v_neck(tx: Tensor, ty: Tensor) -> Tensor:
    return (ty - 0.95 + tx.abs() * 1.9) * (1.0 / 2.15)


def draw_neck(reg: Tensor, tx: Tensor, ty: Tensor, aa: float, lw: float, col: Color) -> Tensor:
    """Neck skin with outline (static: it only moves with the breath, see the row layer)."""
    d = neck_sdf(tx, ty)
    reg = over(reg, col("line"), cov(d - lw, aa))
    return over(reg, col("skin"), cov(d, aa))


def draw_neck_shadow(
    reg: Tensor, tx: Tensor, ty: Tensor, u: Tensor, v: Tensor, aa: float, col: Color
) -> Tensor:
    """The head's shadow on the neck, clipped to neck skin (u, v: face coordinates)."""
    inside = cov(neck_sdf(tx, ty), aa)
    d_sh = face_sdf(u * 1.05, v - 0.28)
    return over(reg, col("skin_shadow"), cov(d_sh, aa) * inside)


def draw_torso(reg: Tensor, tx: Tensor, ty: Tensor, aa: float, lw: float, col: Color) -> Tensor:
    """Shoulders in a sailor-style top: body, V neckline, collar with stripe, ribbon."""
    ex, ey = tx * (1.0 / 2.25), (ty - 2.0).clamp(max=0.0) * (1.0 / 1.75)
    k0 = _len(ex, ey)
    k1 = _len(ex * (1.0 / 2.25), ey * (1.0 / 1.75)) + 1e-6
    d_body = k0 * (k0 - 1.0) / k1
    dv = v_neck(tx, ty)
    d_cloth = torch.maximum(d_body, -dv)
    reg = over(reg, col("line"), cov(d_cloth - lw, aa))
    reg = over(reg, col("clothes"), cov(d_cloth, aa))
    # arm shading: the sides of the body turn away from the light
    d_arm = torch.maximum(d_cloth, 1.6 - tx.abs())
    reg = over(reg, col("clothes_shadow"), cov(d_arm, aa))
    # sailor collar: a wide V over the shoulders with a stripe near its edge
    d_out = (ty - 1.75 + tx.abs() * 0.85) * (1.0 / 1.3)
    d_col = torch.maximum(torch.maximum(d_body + 0.06, d_out), -dv)
    reg = over(reg, col("line"), cov(d_col - lw * 0.7, aa))
    reg = over(reg, col("collar"), cov(d_col, aa))
    d_stripe = torch.maximum((d_out + 0.12).abs() - 0.035, d_col)
    reg = over(reg, col("clothes"), cov(d_stripe, aa))
    # ribbon bow at the bottom of the V
    rx, ry = tx, ty - 1.0
    d_bow = torch.maximum(ry.abs() - (0.07 + 0.32 * rx.abs()), rx.abs() - 0.46)
    d_knot = _len(rx, ry) - 0.11
    d_rib = torch.minimum(d_bow, d_knot)
    reg = over(reg, col("line"), cov(d_rib - lw * 0.8, aa))
    reg = over(reg, col("accent"), cov(d_rib, aa))
    return over(reg, col("line"), cov(d_knot.abs() - 0.012, aa) * 0.6)


# ----------------------------------------------------------------------------------------------
# eyes, brows, blush, mouth, nose


def draw_blush(reg: Tensor, ex: Tensor, ey: Tensor, amount: Tensor, col: Color) -> Tensor:
    """Soft cheek blush with three little hatch strokes; eye units, below and outside the eye."""
    bx, by = ex - 0.35, ey - 1.45
    q = (bx * bx + by * by * 4.0) * (1.0 / 0.5)
    soft = (1.0 - q).clamp(0.0, 1.0)
    reg = over(reg, col("blush"), soft * (amount * 0.55))
    hatch = ((tri((bx + by * 0.6) * 3.2) - 0.8) * 6.0).clamp(0.0, 1.0) * ((0.55 - q) * 8.0).clamp(0.0, 1.0)
    return over(reg, col("blush_line"), hatch * ((amount - 0.35) * 1.6).clamp(0.0, 1.0))


def draw_eye(reg: Tensor, ex: Tensor, ey: Tensor, p: dict[str, Tensor], aa: Tensor, col: Color) -> Tensor:
    """One eye in eye units (half-width 1, x towards the outer corner, y down).

    The lids are parabolas whose per-state coefficients already blend open/closed/happy shapes,
    so the per-pixel cost does not grow with the number of expressions.
    """
    x2 = ex * ex
    yu = p["U0"] + ex * p["U1"] + x2 * p["U2"]
    yl = p["L0"] + x2 * p["L2"]
    d_white = torch.maximum(torch.maximum(yu - ey, ey - yl), ex.abs() - 1.0)
    a_white = cov(d_white, aa)
    reg = over(reg, col("eye_white"), a_white)
    # soft lid shadow across the top of the white
    reg = over(reg, col("eye_shadow"), cov(yu + 0.3 - ey, aa * 0.2) * a_white * 0.5)
    # iris with a dark rim and a vertical gradient, pupil, highlights; all clipped to the white
    dx, dy = ex - p["gx"], ey - p["gy"]
    ix, iy = dx * p["irx"], dy * p["iry"]
    q_iris = (ix * ix + iy * iy).sqrt()
    reg = over(reg, col("iris_dark"), cov((q_iris - 1.0) * 0.62, aa) * a_white)
    t = (dy * 0.6 + 0.55).clamp(0.0, 1.0)
    grad = torch.lerp(col("iris"), col("iris_light"), t * t)
    reg = over(reg, grad, cov((q_iris - 0.86) * 0.62, aa) * a_white)
    reg = over(
        reg, col("iris_dark"), cov(iy + 0.1, aa * 0.3) * cov((q_iris - 0.86) * 0.62, aa) * a_white * 0.55
    )
    reg = over(reg, col("pupil"), cov((q_iris - p["pupil"]) * 0.62, aa) * a_white)
    h1x, h1y = dx + 0.3, dy + 0.36
    d_h1 = (h1x * h1x + h1y * h1y * 0.7).sqrt() - 0.24
    h2x, h2y = dx - 0.3, dy - 0.42
    d_h2 = _len(h2x, h2y) - 0.1
    reg = over(reg, col("eye_white"), cov(torch.minimum(d_h1, d_h2), aa) * a_white)
    # upper lash line (also the closed-eye line), thicker towards the outer corner, with a flick
    t_up = 0.13 + 0.06 * ex
    d_lash = torch.maximum((ey - yu + 0.05).abs() - t_up, (ex - 0.05).abs() - 1.12)
    fx = ex - 1.0
    d_flick = torch.maximum((ey - yu - 0.05 + fx * 0.9).abs() - 0.09, (fx - 0.1).abs() - 0.16)
    reg = over(reg, col("lash"), cov(torch.minimum(d_lash, d_flick), aa))
    # lower lash: short and thin near the outer corner, fading as the eye closes
    d_low = torch.maximum((ey - yl - 0.03).abs() - 0.045, (ex - 0.45).abs() - 0.45)
    reg = over(reg, col("lash"), cov(d_low, aa) * p["fade"])
    # double-eyelid crease
    d_cr = torch.maximum((ey - yu + 0.38 - 0.1 * ex).abs() - 0.035, (ex - 0.3).abs() - 0.6)
    return over(reg, col("line"), cov(d_cr, aa) * p["fade"] * 0.6)


def draw_brow(reg: Tensor, bx: Tensor, by: Tensor, p: dict[str, Tensor], aa: float, col: Color) -> Tensor:
    """Brow stroke: a tilted arch, thick at the inner end (bx = -1) and tapering outwards."""
    yc = p["B0"] + bx * p["B1"] + bx * bx * p["B2"]
    half = 0.045 - 0.02 * bx
    d = torch.maximum((by - yc).abs() - half, bx.abs() - 1.0)
    return over(reg, col("brow"), cov(d, aa))


def draw_mouth(
    reg: Tensor, mx: Tensor, my: Tensor, p: dict[str, Tensor], aa: float, lw: float, col: Color
) -> Tensor:
    """Nose mark, then the mouth: outline/closed line, dark interior, teeth, tongue, lower lip."""
    # nose: a short slanted stroke with a soft shade
    ny = my + 0.3
    d_nose = torch.maximum((mx - 0.03 + ny * 0.35).abs() - 0.014, ny.abs() - 0.045)
    reg = over(reg, col("line"), cov(d_nose, aa) * 0.75)
    w = p["W"]
    xn = mx / w
    xn2 = xn * xn
    prof = (1.0 - xn2).clamp(min=0.0).sqrt()
    yc = -p["K"] * xn2 + p["asym"] * xn
    yt = yc - p["Ht"] * prof
    yb = yc + p["Hb"] * prof
    d_in = torch.maximum(torch.maximum(yt - my, my - yb), mx.abs() - w)
    reg = over(reg, col("mouth_line"), cov(d_in - lw, aa))
    a_in = cov(d_in, aa)
    reg = over(reg, col("mouth"), a_in)
    d_teeth = my - (yt + p["teeth"] * prof)
    reg = over(reg, col("teeth"), cov(d_teeth, aa) * a_in)
    y_tongue = yb - p["Hb"] * prof * (0.45 - 0.25 * xn2)
    reg = over(reg, col("tongue"), cov(y_tongue - my, aa) * a_in)
    d_lip = torch.maximum((my - yb - 0.07).abs() - 0.012, mx.abs() - 0.45 * w)
    return over(reg, col("lip"), cov(d_lip, aa) * 0.7)
