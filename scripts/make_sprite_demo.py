"""Draw the demo sprite pack (configs/characters/sprite-demo): "Pip", a fox-eared kid in a hoodie.

Every part is drawn with Pillow's ImageDraw at 4x and downsampled (LANCZOS; Pillow premultiplies
RGBA while resizing) so the edges are anti-aliased. The rig.yaml is written from the same geometry,
so pivots and positions always match the art. Deterministic: running it again gives the same files.

    python scripts/make_sprite_demo.py [--out configs/characters/sprite-demo] [--sheet docs/contact_sheet_sprites.png]

--sheet also renders the pack with the `sprites` renderer into a contact sheet (rows: neutral and each
emotion; columns: each viseme), as tests/test_render_sprites.py::test_contact_sheet does.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

SS = 4  # supersampling factor
OUT = Path(__file__).resolve().parent.parent / "configs" / "characters" / "sprite-demo"
Pt = tuple[float, float]
Color = tuple[int, ...]

LINE = (86, 48, 46, 255)
SKIN, SKIN_SHADE = (255, 230, 212, 255), (246, 200, 182, 255)
HAIR, HAIR_DARK, HAIR_LIGHT = (240, 146, 66, 255), (206, 104, 46, 255), (255, 196, 120, 255)
EAR_INNER = (255, 232, 204, 255)
HOODIE, HOODIE_SHADE, HOODIE_LINE = (114, 134, 214, 255), (88, 104, 184, 255), (52, 56, 110, 255)
STRING = (255, 246, 230, 255)
IRIS, IRIS_DARK, IRIS_LIGHT = (62, 124, 104, 255), (30, 64, 58, 255), (120, 196, 160, 255)
MOUTH, TONGUE, TEETH = (150, 52, 64, 255), (236, 118, 128, 255), (255, 255, 255, 255)
BLUSH = (255, 128, 140, 130)
WHITE = (255, 255, 255, 255)


class Part:
    """A transparent image at 4x whose coordinates are canvas pixels (origin = the part's top-left)."""

    def __init__(self, x0: float, y0: float, w: int, h: int) -> None:
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.img = Image.new("RGBA", (w * SS, h * SS), (0, 0, 0, 0))

    def _xy(self, pts: Sequence[Pt]) -> list[Pt]:
        return [((x - self.x0) * SS, (y - self.y0) * SS) for x, y in pts]

    def layer(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        im = Image.new("RGBA", self.img.size, (0, 0, 0, 0))
        return im, ImageDraw.Draw(im)

    def add(self, im: Image.Image, clip: Image.Image | None = None) -> None:
        """Composite a drawn layer over the part, optionally only where `clip` (an L mask) is set."""
        if clip is not None:
            im.putalpha(ImageChops.multiply(im.getchannel("A"), clip))
        self.img = Image.alpha_composite(self.img, im)

    def mask(self, pts: Sequence[Pt]) -> Image.Image:
        """A polygon's coverage, as an L image (for clipping), without drawing it."""
        im = Image.new("L", self.img.size, 0)
        ImageDraw.Draw(im).polygon(self._xy(pts), fill=255)
        return im

    def fill(self, pts: Sequence[Pt], color: Color, clip: Image.Image | None = None) -> Image.Image:
        """Fill a polygon; returns its mask (to clip shading to it)."""
        im, d = self.layer()
        d.polygon(self._xy(pts), fill=color)
        self.add(im, clip)
        return im.getchannel("A")

    def stroke(self, pts: Sequence[Pt], width: float, color: Color, closed: bool = False,
               clip: Image.Image | None = None) -> None:
        """A polyline with round joins and caps."""
        im, d = self.layer()
        xy = self._xy(list(pts) + ([pts[0]] if closed else []))
        r = width * SS / 2
        d.line(xy, fill=color, width=max(1, round(width * SS)))
        for x, y in xy:
            d.ellipse((x - r, y - r, x + r, y + r), fill=color)
        self.add(im, clip)

    def shape(self, pts: Sequence[Pt], color: Color, line: Color = LINE, width: float = 3.0,
              clip: Image.Image | None = None) -> Image.Image:
        mask = self.fill(pts, color, clip)
        if width > 0:
            self.stroke(pts, width, line, closed=True, clip=clip)
        return mask

    def save(self, path: Path) -> None:
        self.img.resize((self.w, self.h), Image.Resampling.LANCZOS).save(path, optimize=True)

    def pivot(self, x: float, y: float) -> list[float]:
        """A canvas point in this part's image pixels (for the rig)."""
        return [round(x - self.x0, 2), round(y - self.y0, 2)]


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 96, a0: float = 0.0,
            a1: float = 2 * math.pi) -> list[Pt]:
    return [(cx + rx * math.cos(a0 + (a1 - a0) * i / (n - 1)), cy + ry * math.sin(a0 + (a1 - a0) * i / (n - 1)))
            for i in range(n)]


def bezier(p0: Pt, p1: Pt, p2: Pt, p3: Pt, n: int = 32) -> list[Pt]:
    out = []
    for i in range(n):
        t = i / (n - 1)
        a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
        out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def mirror(pts: Sequence[Pt], cx: float = 256.0) -> list[Pt]:
    return [(2 * cx - x, y) for x, y in reversed(pts)]


# -- the parts (canvas 512 x 512, character centred on x = 256) ---------------------------------------

NECK = (256.0, 352.0)  # the head turns about this point
BODY_PIVOT = (256.0, 520.0)
EYE_R, EYE_L = (213.0, 272.0), (299.0, 272.0)  # screen left is the character's right eye
MOUTH_C = (256.0, 322.0)
BROWS_C = (256.0, 238.0)


def body() -> Part:
    p = Part(96, 326, 320, 194)
    p.shape([(238, 326), (274, 326), (276, 372), (236, 372)], SKIN)  # neck
    p.fill(ellipse(256, 336, 26, 13), SKIN_SHADE, clip=p.mask([(238, 326), (274, 326), (276, 372), (236, 372)]))
    hood = ellipse(256, 372, 62, 22)
    p.shape(hood, HOODIE_SHADE, HOODIE_LINE)
    left = bezier((200, 370), (150, 372), (128, 392), (118, 440)) + [(104, 530)]
    torso = left + mirror(left)
    mask = p.shape(torso, HOODIE, HOODIE_LINE)
    p.fill(bezier((118, 440), (150, 470), (150, 500), (146, 530)) + [(96, 530)], HOODIE_SHADE, clip=mask)
    p.fill(mirror(bezier((118, 440), (150, 470), (150, 500), (146, 530)) + [(96, 530)]), HOODIE_SHADE, clip=mask)
    collar = bezier((206, 372), (220, 400), (292, 400), (306, 372))
    p.stroke(collar, 3.0, HOODIE_LINE)
    for x, dx in ((238, -4), (274, 4)):
        string = [(x, 394), (x + dx * 0.5, 420), (x + dx, 446)]
        p.stroke(string, 4.0, HOODIE_LINE)
        p.stroke(string, 2.2, STRING)
        tip = ellipse(x + dx, 450, 4.5, 6)
        p.shape(tip, STRING, HOODIE_LINE, 1.6)
    p.stroke([(192, 520), (204, 488), (308, 488), (320, 520)], 3.0, HOODIE_LINE)  # the pocket
    star = [(336 + r * math.sin(k * math.pi / 5), 430 - r * math.cos(k * math.pi / 5))
            for k in range(10) for r in ((11.0, 4.6)[k % 2],)]
    p.shape(star, (255, 214, 92, 255), LINE, 2.0)
    return p


def hair_back() -> Part:
    p = Part(120, 60, 272, 300)
    back = bezier((256, 134), (182, 132), (132, 180), (136, 262)) + bezier((136, 262), (138, 310), (150, 340),
                                                                             (176, 350))
    back += [(256, 330)]
    back = back + mirror(back)
    p.shape(back, HAIR_DARK, LINE)
    for side in (1, -1):
        ear = [(256 - side * 66, 168), (256 - side * 98, 70), (256 - side * 30, 136)]
        ear = bezier(ear[0], (256 - side * 84, 130), (256 - side * 102, 96), ear[1], 24) + bezier(
            ear[1], (256 - side * 80, 84), (256 - side * 50, 110), ear[2], 24)
        mask = p.shape(ear, HAIR, LINE)
        inner = bezier((256 - side * 68, 156), (256 - side * 82, 126), (256 - side * 90, 104), (256 - side * 92, 88),
                       20) + bezier((256 - side * 92, 88), (256 - side * 74, 100), (256 - side * 56, 124),
                                    (256 - side * 44, 142), 20)
        p.fill(inner, EAR_INNER, clip=mask)
        tip = bezier((256 - side * 98, 70), (256 - side * 96, 84), (256 - side * 90, 92), (256 - side * 80, 96), 12)
        p.fill(tip + [(256 - side * 84, 80)], (255, 250, 240, 255), clip=mask)
    return p


def head() -> Part:
    p = Part(150, 150, 212, 206)
    face = bezier((256, 168), (318, 168), (352, 208), (350, 262)) + bezier((350, 262), (348, 312), (300, 342),
                                                                             (256, 342))
    face = face + mirror(face)
    mask = p.shape(face, SKIN)
    p.fill(ellipse(256, 160, 104, 52), SKIN_SHADE, clip=mask)  # shade under the bangs
    return p


def hair_front() -> Part:
    p = Part(130, 110, 252, 250)
    top = bezier((152, 268), (140, 170), (200, 124), (256, 124)) + mirror(
        bezier((152, 268), (140, 170), (200, 124), (256, 124)))
    edge: list[Pt] = []
    tips = [(166, 306), (196, 222), (228, 232), (256, 212), (288, 234), (318, 222), (346, 306)]
    for (x0, y0), (x1, y1) in itertools.pairwise(tips):
        mx = (x0 + x1) / 2
        edge += bezier((x0, y0), (mx - 4, min(y0, y1) - 28), (mx + 4, min(y0, y1) - 28), (x1, y1), 16)
    bangs = list(reversed(top)) + edge
    mask = p.shape(bangs, HAIR)
    shine = bezier((200, 150), (230, 136), (282, 136), (312, 150), 20) + bezier(
        (312, 150), (290, 158), (222, 158), (200, 150), 20)
    p.fill(shine, HAIR_LIGHT, clip=mask)
    for x in (212, 300):
        p.stroke(bezier((x, 170), (x - 2, 190), (x + 4, 208), (x, 224), 12), 2.0, HAIR_DARK, clip=mask)
    ahoge = bezier((254, 126), (250, 100), (270, 90), (284, 100), 20) + bezier((284, 100), (270, 100), (262, 110),
                                                                                (262, 126), 20)
    p.shape(ahoge, HAIR)
    return p


def clip_star() -> Part:
    p = Part(300, 150, 40, 40)
    star = [(320 + r * math.sin(k * math.pi / 5), 170 - r * math.cos(k * math.pi / 5))
            for k in range(10) for r in ((15.0, 6.5)[k % 2],)]
    p.shape(star, (255, 226, 96, 255), LINE, 2.4)
    p.fill(ellipse(316, 166, 3, 2.2), WHITE)
    return p


def eye(state: str) -> Part:
    """The screen-left eye; the other is the same image mirrored by the rig."""
    cx, cy = EYE_R
    p = Part(cx - 28, cy - 34, 56, 68)
    if state == "closed":
        lid = bezier((cx - 19, cy - 2), (cx - 8, cy + 12), (cx + 8, cy + 12), (cx + 19, cy - 2), 24)
        p.stroke(lid, 4.2, LINE)
        p.stroke([(cx - 19, cy - 2), (cx - 25, cy - 8)], 3.0, LINE)
        return p
    if state == "joy":  # happy eyes: an upturned arc
        arc = bezier((cx - 18, cy + 8), (cx - 10, cy - 10), (cx + 10, cy - 10), (cx + 18, cy + 8), 24)
        p.stroke(arc, 4.6, LINE)
        p.stroke([arc[0], (cx - 24, cy + 10)], 3.0, LINE)
        return p
    white = ellipse(cx, cy + 2, 19, 25)
    mask = p.shape(white, WHITE, LINE, 2.0)
    if state == "surprise":  # small irises in wide whites
        p.fill(ellipse(cx + 1, cy + 4, 9, 12), IRIS_DARK, clip=mask)
        p.fill(ellipse(cx + 1, cy + 6, 7, 9), IRIS, clip=mask)
        p.fill(ellipse(cx + 1, cy + 4, 3.5, 4.5), IRIS_DARK, clip=mask)
        p.fill(ellipse(cx - 2, cy - 1, 3, 3.5), WHITE, clip=mask)
        p.stroke(ellipse(cx, cy + 2, 20, 26, 48, math.pi * 1.08, math.pi * 1.92), 3.4, LINE)
        return p
    p.fill(ellipse(cx + 1, cy + 5, 15, 21), IRIS_DARK, clip=mask)
    p.fill(ellipse(cx + 1, cy + 8, 12, 16), IRIS, clip=mask)
    p.fill(ellipse(cx + 1, cy + 16, 9, 7), IRIS_LIGHT, clip=mask)
    p.fill(ellipse(cx + 1, cy + 5, 6, 8), IRIS_DARK, clip=mask)
    p.fill(ellipse(cx - 5, cy - 5, 5.5, 6.5), WHITE, clip=mask)
    p.fill(ellipse(cx + 7, cy + 14, 2.6, 2.6), WHITE, clip=mask)
    if state == "half":
        lid_line = bezier((cx - 22, cy + 2), (cx - 10, cy - 4), (cx + 10, cy - 4), (cx + 22, cy + 2), 24)
        cover = lid_line + [(cx + 30, cy - 40), (cx - 30, cy - 40)]
        im, d = p.layer()
        d.polygon(p._xy(cover), fill=(255, 255, 255, 255))
        keep = ImageChops.invert(im.getchannel("A"))
        p.img.putalpha(ImageChops.multiply(p.img.getchannel("A"), keep))
        p.stroke(lid_line[2:-2], 4.2, LINE)
        p.stroke([lid_line[2], (cx - 25, cy - 4)], 3.0, LINE)
    else:
        lash = ellipse(cx, cy + 2, 20, 26, 48, math.pi * 1.08, math.pi * 1.92)
        p.stroke(lash, 4.2, LINE)
        p.stroke([lash[0], (cx - 25, cy - 14)], 3.0, LINE)
    return p


def mouth(viseme: str) -> Part:
    cx, cy = MOUTH_C
    p = Part(cx - 32, cy - 22, 64, 48)
    if viseme == "closed":
        p.stroke(bezier((cx - 12, cy - 2), (cx - 8, cy + 4), (cx - 3, cy + 4), (cx, cy), 16), 2.6, LINE)
        p.stroke(bezier((cx, cy), (cx + 3, cy + 4), (cx + 8, cy + 4), (cx + 12, cy - 2), 16), 2.6, LINE)
        return p
    if viseme == "smile":  # joy: a wide open smile
        outline = [(cx - 15, cy - 3), (cx + 15, cy - 3)] + bezier((cx + 15, cy - 3), (cx + 13, cy + 14),
                                                                   (cx - 13, cy + 14), (cx - 15, cy - 3), 28)
        mask = p.shape(outline, MOUTH, LINE, 2.4)
        p.fill(ellipse(cx, cy + 10, 9, 5), TONGUE, clip=mask)
        return p
    if viseme == "frown":  # sorrow
        p.stroke(bezier((cx - 11, cy + 4), (cx - 6, cy - 3), (cx + 6, cy - 3), (cx + 11, cy + 4), 20), 2.6, LINE)
        return p
    if viseme == "pout":  # anger: a pout with a fang
        p.stroke(bezier((cx - 12, cy + 3), (cx - 6, cy - 2), (cx + 6, cy - 2), (cx + 12, cy + 3), 20), 2.6, LINE)
        p.shape([(cx + 3, cy - 0.5), (cx + 9, cy + 0.8), (cx + 6.5, cy + 6)], TEETH, LINE, 1.4)
        return p
    if viseme == "gasp":  # surprise: a small round mouth
        p.shape(ellipse(cx, cy + 2, 5, 6), MOUTH, LINE, 2.2)
        return p
    if viseme == "tongue":  # fun: the cat mouth with the tongue out
        p.shape(ellipse(cx + 5, cy + 4, 5, 5.5, 32, 0, math.pi) + [(cx, cy + 1), (cx + 10, cy + 1)], TONGUE, LINE,
                1.8)
        p.stroke(bezier((cx - 12, cy - 2), (cx - 8, cy + 4), (cx - 3, cy + 4), (cx, cy), 16), 2.6, LINE)
        p.stroke(bezier((cx, cy), (cx + 3, cy + 4), (cx + 8, cy + 4), (cx + 12, cy - 2), 16), 2.6, LINE)
        return p
    w, top, bottom = {"a": (16, -5, 16), "i": (19, -4, 7), "u": (7, -5, 7), "e": (16, -4, 11), "o": (11, -9, 13)}[
        viseme]
    if viseme in ("u", "o"):
        outline = ellipse(cx, cy + (top + bottom) / 2, w, (bottom - top) / 2)
    else:
        outline = bezier((cx - w, cy + top), (cx - w * 0.4, cy + top - 2), (cx + w * 0.4, cy + top - 2),
                         (cx + w, cy + top), 20)
        outline += bezier((cx + w, cy + top), (cx + w * 0.9, cy + bottom), (cx - w * 0.9, cy + bottom),
                          (cx - w, cy + top), 28)
    mask = p.shape(outline, MOUTH, LINE, 2.4)
    if viseme in ("a", "e", "o"):
        p.fill(ellipse(cx, cy + bottom + 1, w * 0.75, (bottom - top) * 0.38), TONGUE, clip=mask)
    if viseme in ("i", "e", "a"):
        p.fill([(cx - w, cy + top - 4), (cx + w, cy + top - 4), (cx + w, cy + top + 3.5), (cx - w, cy + top + 3.5)],
               TEETH, clip=mask)
    return p


BROW_SHAPES: dict[str, tuple[float, float, float]] = {
    # (lift of the inner end, lift of the outer end, arch), canvas px, for the screen-left brow
    "neutral": (0, 0, 3),
    "joy": (5, 4, 5),
    "anger": (-6, 6, 1),
    "sorrow": (7, -4, 1),
    "surprise": (10, 8, 6),
    "fun": (4, 5, 4),
}


def brows(emotion: str) -> Part:
    cx, cy = BROWS_C
    p = Part(cx - 72, cy - 24, 144, 40)
    inner, outer, arch = BROW_SHAPES[emotion]
    for side in (-1, 1):
        i_lift, o_lift = inner, outer
        if emotion == "fun" and side == 1:
            i_lift, o_lift = -1, -2  # one brow down: a playful smirk
        x_in, x_out = cx + side * 18, cx + side * 58
        pts = bezier((x_out, cy - o_lift), (x_out - side * 12, cy - o_lift - arch - 2),
                     (x_in + side * 12, cy - i_lift - arch), (x_in, cy - i_lift), 24)
        p.stroke(pts, 4.6, (118, 62, 44, 255))
        p.stroke(pts[5:-5], 1.6, (176, 96, 56, 255))
    return p


def blush() -> Part:
    p = Part(166, 292, 180, 26)
    for cx in (200, 312):
        im, d = p.layer()
        d.ellipse(p._xy([(cx - 20, 296), (cx + 20, 314)]), fill=BLUSH)
        p.add(im)
        for k in (-8, 0, 8):
            p.stroke([(cx + k + 3, 299), (cx + k - 3, 310)], 1.6, (236, 96, 110, 200))
    return p


def sweat() -> Part:
    p = Part(342, 194, 28, 42)
    drop = bezier((356, 200), (350, 214), (346, 218), (346, 222), 16) + ellipse(356, 222, 10, 9, 40, math.pi,
                                                                                   0) + bezier(
        (366, 222), (366, 218), (362, 214), (356, 200), 16)
    p.shape(drop, (170, 220, 255, 230), (70, 120, 190, 255), 2.0)
    p.fill(ellipse(352, 222, 2.5, 3.5), WHITE)
    return p


def anger() -> Part:
    p = Part(170, 150, 40, 40)
    red = (226, 52, 64, 255)
    cx, cy = 190, 170
    for ax, ay in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        arc = bezier((cx + ax * 3, cy + ay * 12), (cx + ax * 4, cy + ay * 4), (cx + ax * 4, cy + ay * 4),
                     (cx + ax * 12, cy + ay * 3), 16)
        p.stroke(arc, 3.6, red)
    return p


RIG = """\
# "Pip", the demo sprite pack: drawn by scripts/make_sprite_demo.py (which also writes this file).
# Format: engine/render/sprites/rig.py. Coordinates are canvas pixels, x right, y down; a pivot is in
# its own image's pixels; a position is the pivot's offset from the parent's pivot (roots: the canvas).
version: 1
canvas: [512, 512]
background: [204, 236, 222]
thresholds: {{eye_closed: 0.25, eye_half: 0.7, mouth: 0.15, emotion: 0.3}}
parts:  # drawn in this order, back to front
  hair_back:
    parent: head
    image: hair_back.png
    pivot: {hair_back_pivot}
    move: {{head_yaw: [-6, 0], head_pitch: [0, 3]}}  # moves against the face: depth
  body:
    image: body.png
    pivot: {body_pivot}
    position: {body_pos}
    scale: {{breath: [0.0, 0.03]}}  # the chest rises; the head rides on it
  head:
    parent: body
    image: head.png
    pivot: {head_pivot}  # the neck: the head tilts about it
    position: {head_pos}
    move: {{head_yaw: [10, 0], head_pitch: [0, -6]}}
    rotate: {{head_roll: 9}}
  blush:
    parent: head
    image: blush.png
    pivot: {blush_pivot}
    position: {blush_pos}
    move: {{head_yaw: [14, 0], head_pitch: [0, -8]}}
    opacity: {{blush: 1.0, joy: 0.35, fun: 0.25}}
  # eyes and mouth: one image per state, plus `<state>_<emotion>` variants shown while that emotion leads
  eye_r:  # the character's right eye, on screen left
    parent: head
    select: eye_open_r
    images: {{open: eye_open.png, half: eye_half.png, closed: eye_closed.png,
             open_joy: eye_joy.png, half_joy: eye_joy.png, open_surprise: eye_surprise.png}}
    pivot: {eye_pivot}
    position: {eye_r_pos}
    move: {{head_yaw: [14, 0], head_pitch: [0, -8]}}
  eye_l:
    parent: head
    select: eye_open_l
    images: {{open: eye_open.png, half: eye_half.png, closed: eye_closed.png,
             open_joy: eye_joy.png, half_joy: eye_joy.png, open_surprise: eye_surprise.png,
             open_fun: eye_joy.png, half_fun: eye_joy.png}}  # fun: a wink
    flip: true
    pivot: {eye_pivot_flipped}
    position: {eye_l_pos}
    move: {{head_yaw: [14, 0], head_pitch: [0, -8]}}
  mouth:
    parent: head
    select: mouth
    images: {{closed: mouth_closed.png, a: mouth_a.png, i: mouth_i.png, u: mouth_u.png, e: mouth_e.png,
             o: mouth_o.png, closed_joy: mouth_smile.png, closed_sorrow: mouth_frown.png,
             closed_anger: mouth_pout.png, closed_surprise: mouth_gasp.png, closed_fun: mouth_tongue.png}}
    pivot: {mouth_pivot}
    position: {mouth_pos}
    move: {{head_yaw: [14, 0], head_pitch: [0, -8]}}
  hair_front:
    parent: head
    image: hair_front.png
    pivot: {hair_front_pivot}
    position: {hair_front_pos}
    move: {{head_yaw: [6, 0], head_pitch: [0, -4]}}
  star_clip:  # an accessory on the bangs
    parent: hair_front
    image: star_clip.png
    pivot: {star_pivot}
    position: {star_pos}
  brows:
    parent: head
    select: emotion
    images: {{neutral: brows_neutral.png, joy: brows_joy.png, anger: brows_anger.png, sorrow: brows_sorrow.png,
             surprise: brows_surprise.png, fun: brows_fun.png}}
    pivot: {brows_pivot}
    position: {brows_pos}
    move: {{head_yaw: [14, 0], head_pitch: [0, -8], brow_l: [0, -3], brow_r: [0, -3]}}
  sweat:
    parent: head
    image: sweat.png
    pivot: {sweat_pivot}
    position: {sweat_pos}
    opacity: sorrow
  anger_mark:
    parent: head
    image: anger_mark.png
    pivot: {anger_pivot}
    position: {anger_pos}
    opacity: anger
"""


def _rel(point: Pt, parent: Pt) -> list[float]:
    return [round(point[0] - parent[0], 2), round(point[1] - parent[1], 2)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet PNG here")
    ap.add_argument("--cell", type=int, default=256, help="contact sheet cell size in pixels")
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Part] = {
        "body": body(), "hair_back": hair_back(), "head": head(), "hair_front": hair_front(), "blush": blush(),
        "star_clip": clip_star(), "sweat": sweat(), "anger_mark": anger(),
    }
    for state in ("open", "half", "closed", "joy", "surprise"):
        parts[f"eye_{state}"] = eye(state)
    for v in ("closed", "a", "i", "u", "e", "o", "smile", "frown", "pout", "gasp", "tongue"):
        parts[f"mouth_{v}"] = mouth(v)
    for e in BROW_SHAPES:
        parts[f"brows_{e}"] = brows(e)
    for name, part in parts.items():
        part.save(out / f"{name}.png")
    eye_part = parts["eye_open"]
    hb, hf, bl, st = parts["hair_back"], parts["hair_front"], parts["blush"], parts["star_clip"]
    star_c, sweat_c, anger_c = (320.0, 170.0), (356.0, 214.0), (190.0, 170.0)
    blush_c, hair_c = (256.0, 305.0), (256.0, 230.0)
    eye_px = eye_part.pivot(*EYE_R)
    values = {
        "hair_back_pivot": hb.pivot(*NECK),
        "body_pivot": parts["body"].pivot(*BODY_PIVOT), "body_pos": list(BODY_PIVOT),
        "head_pivot": parts["head"].pivot(*NECK), "head_pos": _rel(NECK, BODY_PIVOT),
        "blush_pivot": bl.pivot(*blush_c), "blush_pos": _rel(blush_c, NECK),
        "eye_pivot": eye_px, "eye_pivot_flipped": [round(eye_part.w - eye_px[0], 2), eye_px[1]],
        "eye_r_pos": _rel(EYE_R, NECK), "eye_l_pos": _rel(EYE_L, NECK),
        "mouth_pivot": parts["mouth_a"].pivot(*MOUTH_C), "mouth_pos": _rel(MOUTH_C, NECK),
        "hair_front_pivot": hf.pivot(*hair_c), "hair_front_pos": _rel(hair_c, NECK),
        "star_pivot": st.pivot(*star_c), "star_pos": _rel(star_c, hair_c),
        "brows_pivot": parts["brows_neutral"].pivot(*BROWS_C), "brows_pos": _rel(BROWS_C, NECK),
        "sweat_pivot": parts["sweat"].pivot(*sweat_c), "sweat_pos": _rel(sweat_c, NECK),
        "anger_pivot": parts["anger_mark"].pivot(*anger_c), "anger_pos": _rel(anger_c, NECK),
    }
    (out / "rig.yaml").write_text(RIG.format(**{k: _flow(v) for k, v in values.items()}), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.glob("*.png"))
    print(f"wrote {len(parts)} PNGs ({total / 1024:.0f} KiB) and rig.yaml to {out}")
    if args.sheet is not None:
        contact_sheet(out, args.sheet, args.cell)
        print(f"wrote {args.sheet} ({args.sheet.stat().st_size / 1024:.0f} KiB)")
    return 0


def contact_sheet(pack: Path, path: Path, cell: int) -> None:
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine.render.sprites.renderer import SpritesRenderer
    from engine.state import EMOTIONS, VISEMES, make_state

    renderer = SpritesRenderer(cell, cell, pack)
    rows = []
    for emotion in (None, *EMOTIONS):
        extra = {emotion: 1.0} if emotion else {}
        states = [make_state(**extra) if v == "closed" else make_state(**({"mouth_closed": 0.0, f"mouth_{v}": 1.0}
                                                                           | extra)) for v in VISEMES]
        rows.append(torch.cat(list(renderer.render(torch.stack(states))), dim=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(torch.cat(rows, dim=0).numpy()).save(path, optimize=True)


def _flow(v: list[float]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in v) + "]"


if __name__ == "__main__":
    raise SystemExit(main())
