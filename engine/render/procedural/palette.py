"""The procedural character's colors: the look's named colors plus the few derived from them."""

from __future__ import annotations

from engine.render.procedural.look import CharacterLook

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


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[float, float, float]:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def palette(look: CharacterLook) -> dict[str, tuple[float, ...]]:
    """Look colors plus the few derived ones (darker strokes, tinted shadows)."""
    pal: dict[str, tuple[float, ...]] = {n: tuple(float(c) for c in getattr(look, n)) for n in _PALETTE_NAMES}
    pal["blush_line"] = _blend(look.blush, look.line, 0.35)
    pal["eye_shadow"] = _blend(look.eye_white, look.iris_dark, 0.3)
    pal["mouth_line"] = _blend(look.line, look.mouth, 0.3)
    pal["brow"] = _blend(look.hair_line, look.hair_dark, 0.35)
    return pal
