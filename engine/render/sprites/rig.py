"""The `sprites` pack format: `rig.yaml` + PNG parts, read and checked once, before any frame is drawn.

A pack is a folder (see configs/characters/sprite-demo/rig.yaml for a commented example):

    canvas: [512, 512]              # the art's coordinate space; scaled to fit the output, centred
    background: [200, 236, 224]     # RGB behind the character (render_rgba leaves it transparent)
    thresholds: {eye_closed: 0.25, eye_half: 0.7, mouth: 0.15, emotion: 0.3}
    parts:                          # drawn in this order, back to front
      head:
        parent: body                # it moves, turns and breathes with its parent
        image: head.png             # or `images:` + `select:` (below)
        pivot: [110, 196]           # pixels in the image: the point placed by `position`, turned about
        position: [0, -150]         # pivot offset from the parent's pivot (a root: canvas pixels)
        move: {head_yaw: [12, 0], head_pitch: [0, -8]}  # state field -> [dx, dy] px at value 1
        rotate: {head_roll: 8}      # state field -> degrees (clockwise) at value 1
        scale: {breath: [0, 0.02]}  # state field -> [sx, sy] growth at value 1, about the pivot
        opacity: blush              # a field, or {field: weight, ...} summed and clamped to 0..1
        flip: false                 # mirror the image(s) left-right (the pivot is in the mirrored image)
      mouth: {select: mouth, images: {closed: ..., a: ..., i: ..., u: ..., e: ..., o: ...}}
      eye_l: {select: eye_open_l, images: {open: ..., half: ..., closed: ...}}   # half is optional
      # eyes and mouth may add `<state>_<emotion>` images: open_joy, closed_sorrow, ... (see image_keys)
      brows: {select: emotion, images: {neutral: ..., joy: ...}}  # missing emotions fall back to neutral

Children follow their parent's position and rotation, and their offset grows with the parent's
scale, but never inherit the scale itself (a breathing body does not squash the head drawn on it).
Every problem is a `SpritePackError` naming the file and the key or part, so a pack author can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.state import EMOTIONS, IDX, VISEMES

RIG_FILE = "rig.yaml"
EYE_STATES: tuple[str, ...] = ("open", "half", "closed")
SELECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # select -> (required image keys, optional image keys)
    "eye_open_l": (("open", "closed"), ("half",)),
    "eye_open_r": (("open", "closed"), ("half",)),
    "mouth": (VISEMES, ()),
    "emotion": (("neutral",), EMOTIONS),
}


def image_keys(select: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) image keys of a select; eyes and mouth may also have `<state>_<emotion>`
    variants (open_joy: happy eyes, closed_sorrow: a frown) shown while that emotion is the strongest."""
    required, optional = SELECTS[select]
    if select != "emotion":
        optional = optional + tuple(f"{k}_{e}" for k in required + optional for e in EMOTIONS)
    return required, optional


class SpritePackError(ValueError):
    """A sprite pack that cannot be used; the message names the file and the key or part."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Thresholds(_Strict):
    eye_closed: float = Field(0.25, ge=0, le=1, description="eye_open below this -> the closed image")
    eye_half: float = Field(0.7, ge=0, le=1, description="below this -> the half image (when there is one)")
    mouth: float = Field(0.15, ge=0, le=1, description="the strongest viseme below this -> closed")
    emotion: float = Field(0.3, ge=0, le=1, description="the strongest emotion below this -> neutral")


class _Part(_Strict):
    image: str | None = None
    images: dict[str, str] | None = None
    select: Literal["eye_open_l", "eye_open_r", "mouth", "emotion"] | None = None
    parent: str | None = None
    pivot: tuple[float, float] | None = None
    position: tuple[float, float] = (0.0, 0.0)
    move: dict[str, tuple[float, float]] = Field(default_factory=dict)
    rotate: dict[str, float] = Field(default_factory=dict)
    scale: dict[str, tuple[float, float]] = Field(default_factory=dict)
    opacity: str | dict[str, float] | None = None
    flip: bool = False


class _Rig(_Strict):
    version: Literal[1] = 1
    canvas: tuple[int, int]
    background: tuple[int, int, int] = (255, 255, 255)
    thresholds: _Thresholds = Field(default_factory=_Thresholds)
    parts: dict[str, _Part] = Field(min_length=1)


@dataclass
class SpritePart:
    """One checked part: images cropped to their visible pixels, premultiplied float [h, w, 4] in 0..1."""

    name: str
    parent: str | None
    select: str | None
    images: dict[str, np.ndarray]
    pivot: tuple[float, float]  # in the cropped image
    position: tuple[float, float]
    move: list[tuple[int, float, float]] = field(default_factory=list)  # (state index, dx, dy)
    rotate: list[tuple[int, float]] = field(default_factory=list)  # (state index, degrees)
    scale: list[tuple[int, float, float]] = field(default_factory=list)  # (state index, sx, sy)
    opacity: list[tuple[int, float]] | None = None  # (state index, weight); None: always opaque


@dataclass
class SpriteRig:
    """A loaded pack: parts in draw order, plus `order`, the same parts parents-first."""

    path: Path
    canvas: tuple[int, int]
    background: tuple[int, int, int]
    thresholds: _Thresholds
    parts: list[SpritePart]
    order: list[int]


def _format(error: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid sprite rig"]
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        what = {"extra_forbidden": "unknown key", "tuple_type": "should be a list of numbers, like [120, 80]",
                "dict_type": "should be a mapping (key: value)"}.get(item["type"], item["msg"])
        got = item.get("input")
        shown = "" if item["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc or '(top level)'}: {what}{shown}")
    return "\n".join(lines)


def _fields(source: Path, key: str, mapping: dict[str, Any]) -> list[int]:
    unknown = [name for name in mapping if name not in IDX]
    if unknown:
        raise SpritePackError(f"{source}: {key}: unknown state field {unknown[0]!r}; known: {', '.join(IDX)}")
    return [IDX[name] for name in mapping]


def _load_png(pack: Path, source: Path, key: str, name: str, flip: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    path = (pack / name).resolve()
    if not path.is_relative_to(pack.resolve()):
        raise SpritePackError(f"{source}: {key}: image {name!r} must be inside the pack folder {pack}")
    if not path.is_file():
        raise SpritePackError(f"{source}: {key}: image file {name!r} not found ({path})")
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise SpritePackError(f"{source}: {key}: cannot read image {name!r}: {exc}") from None
    if flip:
        rgba = rgba[:, ::-1]
    rgba = rgba.copy()
    rgba[..., :3] *= rgba[..., 3:4]  # premultiplied from here on
    return rgba


def _images(pack: Path, source: Path, name: str, spec: _Part) -> dict[str, np.ndarray]:
    key = f"parts.{name}"
    if (spec.image is None) == (spec.images is None):
        raise SpritePackError(f"{source}: {key}: give exactly one of `image` (a file) or `images` (per state)")
    if spec.image is not None:
        if spec.select is not None:
            raise SpritePackError(f"{source}: {key}.select: `select: {spec.select}` needs `images`, one per state")
        return {"": _load_png(pack, source, f"{key}.image", spec.image, spec.flip)}
    assert spec.images is not None
    if spec.select is None:
        raise SpritePackError(f"{source}: {key}.select: `images` needs `select` (eye_open_l, eye_open_r, "
                              "mouth or emotion) to say which image shows when")
    required, optional = image_keys(spec.select)
    missing = [k for k in required if k not in spec.images]
    if missing:
        raise SpritePackError(f"{source}: {key}.images: missing image for {', '.join(missing)} "
                              f"(select: {spec.select} needs {', '.join(required)})")
    extra = [k for k in spec.images if k not in required + optional]
    if extra:
        raise SpritePackError(f"{source}: {key}.images.{extra[0]}: not a state of select: {spec.select} "
                              f"(known: {', '.join(required + optional)})")
    out = {k: _load_png(pack, source, f"{key}.images.{k}", f, spec.flip) for k, f in spec.images.items()}
    first = next(iter(spec.images))
    h0, w0 = out[first].shape[:2]
    for k, img in out.items():
        if img.shape[:2] != (h0, w0):
            raise SpritePackError(
                f"{source}: {key}.images.{k}: {spec.images[k]} is {img.shape[1]}x{img.shape[0]} but "
                f"{spec.images[first]} is {w0}x{h0}; the images of one part must be the same size")
    return out


def _crop(
    images: dict[str, np.ndarray], pivot: tuple[float, float]
) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """Drop the transparent margin all variants share (PNGTuber layers are often canvas-sized)."""
    alpha = np.zeros(next(iter(images.values())).shape[:2], dtype=bool)
    for img in images.values():
        alpha |= img[..., 3] > 0
    ys, xs = np.nonzero(alpha)
    if ys.size == 0:
        return {k: v[:1, :1] for k, v in images.items()}, (0.0, 0.0)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    return {k: np.ascontiguousarray(v[y0:y1, x0:x1]) for k, v in images.items()}, (pivot[0] - x0, pivot[1] - y0)


def _parents_first(source: Path, specs: dict[str, _Part]) -> list[str]:
    for name, spec in specs.items():
        if spec.parent is not None and spec.parent not in specs:
            raise SpritePackError(f"{source}: parts.{name}.parent: unknown part {spec.parent!r} "
                                  f"(parts: {', '.join(specs)})")
    order: list[str] = []
    done: set[str] = set()
    for start in specs:
        chain: list[str] = []
        part: str | None = start
        while part is not None and part not in done:
            if part in chain:
                cycle = " -> ".join([*chain[chain.index(part):], part])
                raise SpritePackError(f"{source}: parts.{part}.parent: parent cycle {cycle}")
            chain.append(part)
            part = specs[part].parent
        for item in reversed(chain):
            order.append(item)
            done.add(item)
    return order


def load_rig(pack: Path | str) -> SpriteRig:
    """Read and check `pack/rig.yaml` and every image it names; raise SpritePackError saying what is wrong."""
    pack = Path(pack).expanduser()
    source = pack / RIG_FILE
    if not pack.is_dir():
        raise SpritePackError(f"{pack}: sprite pack folder not found")
    if not source.is_file():
        raise SpritePackError(f"{source}: not found (a sprite pack needs a {RIG_FILE} next to its PNG parts)")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpritePackError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpritePackError(f"{source}: the top level must be a mapping (canvas, parts, ...)")
    try:
        rig = _Rig.model_validate(data)
    except ValidationError as exc:
        raise SpritePackError(_format(exc, source)) from None
    if min(rig.canvas) < 1:
        raise SpritePackError(f"{source}: canvas: width and height must be positive, got {list(rig.canvas)}")
    if any(not 0 <= c <= 255 for c in rig.background):
        raise SpritePackError(f"{source}: background: r, g, b must be 0..255, got {list(rig.background)}")
    order = _parents_first(source, rig.parts)
    parts: list[SpritePart] = []
    for name, spec in rig.parts.items():
        key = f"parts.{name}"
        images = _images(pack, source, name, spec)
        h, w = next(iter(images.values())).shape[:2]
        pivot = spec.pivot if spec.pivot is not None else (w / 2.0, h / 2.0)
        if not (0 <= pivot[0] <= w and 0 <= pivot[1] <= h):
            file = spec.image or next(iter((spec.images or {}).values()))
            raise SpritePackError(f"{source}: {key}.pivot: {list(pivot)} lies outside {file} ({w}x{h} pixels)")
        images, pivot = _crop(images, pivot)
        opacity = spec.opacity
        weights = {opacity: 1.0} if isinstance(opacity, str) else opacity
        part = SpritePart(name, spec.parent, spec.select, images, pivot, spec.position)
        part.move = [(i, *v) for i, v in zip(_fields(source, f"{key}.move", spec.move), spec.move.values(),
                                              strict=True)]
        part.rotate = list(zip(_fields(source, f"{key}.rotate", spec.rotate), spec.rotate.values(), strict=True))
        part.scale = [(i, *v) for i, v in zip(_fields(source, f"{key}.scale", spec.scale), spec.scale.values(),
                                               strict=True)]
        if weights is not None:
            part.opacity = list(zip(_fields(source, f"{key}.opacity", weights), weights.values(), strict=True))
        parts.append(part)
    index = {p.name: i for i, p in enumerate(parts)}
    return SpriteRig(pack, rig.canvas, rig.background, rig.thresholds, parts, [index[n] for n in order])
