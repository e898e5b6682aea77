"""A Live2D model on disk: find its settings file, and check every file it names before Cubism reads any.

Both generations are read: Cubism 3/4/5 (`.model3.json`, `.exp3.json`) and Cubism 2 (`.model.json`,
`.exp.json`). A broken model fails here with the file it is missing or cannot parse, rather than as
a crash inside the Cubism core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.render.live2d.errors import Live2DError

# Words in expression names that identify an emotion, for models whose expressions are named.
EMOTION_WORDS: dict[str, tuple[str, ...]] = {
    "joy": ("joy", "happy", "smile", "glad"),
    "anger": ("anger", "angry", "mad"),
    "sorrow": ("sorrow", "sad", "cry"),
    "surprise": ("surprise", "shock"),
    "fun": ("fun", "laugh", "excite"),
}
_BLEND = {"add": "add", "multiply": "mult", "mult": "mult", "overwrite": "set", "set": "set"}


def find_model_file(path: str | os.PathLike[str]) -> Path:
    """The model settings file for a path that is the file itself or a folder holding exactly one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise Live2DError(f"Live2D model not found: {p}")
    if p.is_dir():
        found = sorted(p.rglob("*.model3.json")) + sorted(p.rglob("*.model.json"))
        if not found:
            raise Live2DError(f"no .model3.json or .model.json under {p}")
        if len(found) > 1:
            names = ", ".join(str(f.relative_to(p)) for f in found[:5])
            raise Live2DError(f"{p} holds several Live2D models ({names}); name the .model3.json / .model.json file")
        p = found[0]
    if not (p.name.endswith(".model3.json") or p.name.endswith(".model.json")):
        raise Live2DError(f"{p}: a Live2D model is a .model3.json (Cubism 3+) or .model.json (Cubism 2) file")
    return p.resolve()


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise Live2DError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Live2DError(f"{path}: not valid JSON ({exc})") from None


@dataclass(frozen=True)
class ModelFiles:
    """What a model settings file references, checked to exist before the Cubism core sees any of it."""


    settings: Path
    cubism: int  # 3 (moc3; Cubism 3/4/5) or 2
    moc: Path
    textures: tuple[Path, ...]
    expressions: dict[str, Path]


def read_model_files(settings: Path) -> ModelFiles:
    """Parse a .model3.json / .model.json and check every file it names, so a broken model names its file."""
    data = _read_json(settings, "Live2D model settings")
    if not isinstance(data, dict):
        raise Live2DError(f"{settings}: expected a JSON object")
    home = settings.parent
    if settings.name.endswith(".model3.json"):
        refs = data.get("FileReferences") or {}
        moc_name, textures = refs.get("Moc"), refs.get("Textures") or []
        exprs = {e.get("Name", ""): e.get("File", "") for e in refs.get("Expressions") or []}
        others = [refs.get("Physics"), refs.get("Pose")]
        cubism, magic = 3, b"MOC3"
    else:
        moc_name, textures = data.get("model"), data.get("textures") or []
        exprs = {e.get("name", ""): e.get("file", "") for e in data.get("expressions") or []}
        others = [data.get("physics"), data.get("pose")]
        cubism, magic = 2, b"moc"
    if not moc_name:
        raise Live2DError(f"{settings}: names no .moc{'3' if cubism == 3 else ''} file")
    moc = home / moc_name
    for name in [moc_name, *textures, *exprs.values(), *[o for o in others if o]]:
        if not (home / name).is_file():
            raise Live2DError(f"{settings}: references {name}, which does not exist ({home / name})")
    with open(moc, "rb") as fh:
        if not fh.read(len(magic)) == magic:
            raise Live2DError(f"{moc}: not a Cubism {cubism} moc file (header is not {magic!r})")
    return ModelFiles(settings, cubism, moc, tuple(home / t for t in textures),
                      {name: home / f for name, f in exprs.items() if name})


def read_expression(path: Path) -> list[tuple[str, str, float]]:
    """An .exp3.json (Cubism 3+) or .exp.json (Cubism 2) -> [(parameter id, add|mult|set, value)]."""
    data = _read_json(path, "Live2D expression")
    out: list[tuple[str, str, float]] = []
    if "Parameters" in data:
        for p in data["Parameters"]:
            out.append((p["Id"], _BLEND.get(str(p.get("Blend", "Add")).lower(), "add"), float(p["Value"])))
        return out
    for p in data.get("params") or []:
        kind = _BLEND.get(str(p.get("calc", "add")).lower(), "add")
        value = float(p["val"])
        if kind == "add":  # Cubism 2 stores absolute values with a default to subtract
            value -= float(p.get("def", 0.0))
        elif kind == "mult":
            value /= float(p.get("def", 1.0)) or 1.0
        out.append((str(p["id"]), kind, value))
    return out


def guess_expressions(names: Iterable[str]) -> dict[str, str]:
    """Emotion -> expression for models whose expression names say what they are ("Happy", "angry01")."""
    out: dict[str, str] = {}
    for emotion, words in EMOTION_WORDS.items():
        for name in names:
            if any(w in name.lower() for w in words):
                out[emotion] = name
                break
    return out
