"""CharacterLook: everything that makes the procedural character *this* character.

Colors, proportions and a hair style, so a stream can restyle its host from config without art
files. The renderer bakes a look into constant buffers at construction; changing the look means
building a new renderer (cheap, tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

RGB = tuple[int, int, int]

HAIR_STYLES: tuple[str, ...] = ("twintails", "long", "bob")


def parse_color(value: Any) -> RGB:
    """'#rrggbb', 'rrggbb' or a 3-sequence of 0..255 ints -> RGB tuple (configs use hex strings)."""
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) != 6:
            raise ValueError(f"color {value!r} is not #rrggbb")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"color {value!r} is not #rrggbb or [r, g, b]")
    r, g, b = (int(c) for c in value)
    for c in (r, g, b):
        if not 0 <= c <= 255:
            raise ValueError(f"color {value!r} has a channel outside 0..255")
    return (r, g, b)


@dataclass(frozen=True)
class CharacterLook:
    """Colors (0..255 RGB), proportions (relative to the defaults) and a hair style."""

    hair_style: str = "twintails"
    # skin and line art
    skin: RGB = (255, 232, 218)
    skin_shadow: RGB = (242, 190, 180)
    line: RGB = (96, 52, 58)
    # hair
    hair: RGB = (122, 96, 196)
    hair_dark: RGB = (82, 60, 148)
    hair_highlight: RGB = (196, 178, 246)
    hair_line: RGB = (58, 38, 104)
    # eyes
    eye_white: RGB = (255, 255, 255)
    iris: RGB = (64, 150, 214)
    iris_dark: RGB = (30, 52, 120)
    iris_light: RGB = (140, 226, 240)
    pupil: RGB = (22, 26, 60)
    lash: RGB = (52, 30, 50)
    # mouth and cheeks
    mouth: RGB = (120, 36, 52)
    tongue: RGB = (236, 116, 128)
    teeth: RGB = (255, 255, 255)
    lip: RGB = (236, 150, 150)
    blush: RGB = (255, 124, 146)
    # clothes and accessories
    clothes: RGB = (52, 64, 118)
    clothes_shadow: RGB = (36, 44, 88)
    collar: RGB = (248, 248, 252)
    accent: RGB = (232, 64, 96)
    # background
    background_top: RGB = (255, 232, 240)
    background_bottom: RGB = (196, 214, 255)
    background_pattern: RGB = (255, 255, 255)
    # proportions: head_size is the face half-width as a fraction of frame height; the rest are scales
    head_size: float = 0.15
    eye_size: float = 1.0
    eye_spacing: float = 1.0
    eye_tilt: float = 0.0  # eye shape: 1 sharp (outer corners up), -1 droopy (outer corners down)
    mouth_width: float = 1.0
    line_width: float = 1.0

    def __post_init__(self) -> None:
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"unknown hair_style {self.hair_style!r}; known: {', '.join(HAIR_STYLES)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "RGB" or (isinstance(value, tuple) and len(value) == 3):
                object.__setattr__(self, f.name, parse_color(value))
        for name in ("head_size", "eye_size", "eye_spacing", "eye_tilt", "mouth_width", "line_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not 0.05 <= self.head_size <= 0.2:
            raise ValueError("head_size must be within 0.05..0.2 of the frame height")
        if not -1.0 <= self.eye_tilt <= 1.0:
            raise ValueError("eye_tilt must be within -1..1 (droopy .. sharp)")
        for name in ("eye_size", "eye_spacing", "mouth_width", "line_width"):
            if not 0.5 <= getattr(self, name) <= 1.6:
                raise ValueError(f"{name} must be within 0.5..1.6")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharacterLook:
        """Build from a config mapping; colors may be '#rrggbb' strings. Unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeyError(f"unknown CharacterLook keys: {', '.join(unknown)}")
        values: dict[str, Any] = {
            k: (parse_color(v) if isinstance(v, str) and k != "hair_style" else v) for k, v in data.items()
        }
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> CharacterLook:
        """A copy with some fields changed (presets are built this way)."""
        return replace(self, **changes)


LOOKS: dict[str, CharacterLook] = {
    "default": CharacterLook(),
    "long": CharacterLook(
        hair_style="long",
        eye_tilt=0.7,
        hair=(70, 58, 64),
        hair_dark=(44, 34, 42),
        hair_highlight=(150, 128, 138),
        hair_line=(30, 22, 28),
        iris=(196, 96, 64),
        iris_dark=(110, 40, 30),
        iris_light=(250, 196, 120),
        clothes=(236, 236, 242),
        clothes_shadow=(196, 198, 214),
        collar=(58, 70, 120),
        accent=(70, 120, 200),
    ),
    "bob": CharacterLook(
        hair_style="bob",
        eye_tilt=-0.6,
        hair=(246, 196, 120),
        hair_dark=(214, 150, 84),
        hair_highlight=(255, 236, 190),
        hair_line=(150, 90, 50),
        iris=(70, 170, 110),
        iris_dark=(26, 90, 60),
        iris_light=(170, 240, 170),
        clothes=(214, 86, 96),
        clothes_shadow=(170, 60, 74),
        accent=(255, 214, 90),
    ),
}


def load_look(spec: str | Mapping[str, Any] | None, base_dir: Path | None = None) -> CharacterLook:
    """The look a config asks for: a preset name, a YAML file of fields, or a mapping of fields.

    A mapping (inline or from a file) may name `preset:` as its base, so a character pack only
    writes what differs ("my host is the bob preset with green eyes"). Errors say which key or
    file is wrong, for the config loader to report.
    """
    if spec is None:
        return LOOKS["default"]
    if isinstance(spec, str):
        if spec in LOOKS:
            return LOOKS[spec]
        path = Path(spec)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if path.suffix not in (".yaml", ".yml"):
            presets = ", ".join(sorted(LOOKS))
            raise ValueError(f"unknown look preset {spec!r}; presets: {presets} (or a look .yaml file)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the look file: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a look file is a mapping of look fields, got {type(data).__name__}")
        try:
            return load_look(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    fields_ = dict(spec)
    preset = fields_.pop("preset", "default")
    if preset not in LOOKS:
        raise ValueError(f"preset: unknown look preset {preset!r}; presets: {', '.join(sorted(LOOKS))}")
    known = {f.name for f in fields(CharacterLook)}
    unknown = sorted(set(fields_) - known)
    if unknown:
        raise ValueError(f"unknown look field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {}
    for key, value in fields_.items():
        try:
            values[key] = parse_color(value) if _is_color_field(key) else value
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{key}: {exc}") from None
    try:
        return LOOKS[preset].with_(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


def _is_color_field(name: str) -> bool:
    return isinstance(getattr(LOOKS["default"], name), tuple)
