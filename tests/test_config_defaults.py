"""configs/default.yaml says it spells out the embedded defaults: every value it sets must equal the
model's default for that key, so running with the file and running without it are the same show."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from engine.render.procedural.look import load_look
from engine.voice.espeak import DEFAULT_VOICES
from streamer.assets import DEFAULT_CONFIG
from streamer.config import ChatSourceConfig, InputConfig, StagecastConfig

pytestmark = pytest.mark.unit

# Keys whose value in the file is an example, not a default; each is named with why it is skipped.
EXAMPLES = {
    "moderation.banned_words",  # one word to show the list's shape; the embedded default bans nothing
}


def _same_look(raw: Any, default: Any) -> bool:
    """character.look: the file names a look file (relative to it) that draws the default preset."""
    return load_look(raw, DEFAULT_CONFIG.parent) == load_look(default)


def _same_voices(raw: Any, default: Any) -> bool:
    """character.voices: the file spells out espeak's built-in voices, which an empty mapping means."""
    return {**DEFAULT_VOICES, **raw} == {**DEFAULT_VOICES, **default}


def _same_path(raw: Any, default: Any) -> bool:
    """A path before the loader resolves it: the same text as the default path."""
    return Path(raw) == default


# Keys compared by what they mean rather than by their raw YAML value.
EQUIVALENT = {
    "character.look": _same_look,
    "character.voices": _same_voices,
    "outputs.recording.directory": _same_path,
}


# Lists the file fills with examples (the embedded defaults are empty): each entry is checked against
# the defaults of the union member its `type` selects.
TYPED_LISTS = {"chat.sources": ChatSourceConfig, "listen.inputs": InputConfig}


def _member(union: Any, item: dict[str, Any], path: str) -> type[BaseModel]:
    """The member of a discriminated union that this entry's `type` selects."""
    members = typing.get_args(union)
    members = typing.get_args(members[0]) if members and typing.get_args(members[0]) else members
    for model in members:
        if item["type"] in typing.get_args(model.model_fields["type"].annotation):
            return model
    raise AssertionError(f"{path}: unknown type {item['type']!r}")


def _walk(raw: dict[str, Any], model: type[BaseModel], prefix: str) -> list[str]:
    """Compare every value under `raw` with `model`'s defaults; returns the keys compared."""
    compared = []
    for key, value in raw.items():
        path = f"{prefix}{key}"
        assert key in model.model_fields, f"{path}: not a key of {model.__name__}"
        field = model.model_fields[key]
        if path in EXAMPLES:
            continue
        if path in TYPED_LISTS:
            for i, item in enumerate(value):
                compared += _walk(item, _member(TYPED_LISTS[path], item, path), f"{path}[{i}].")
            continue
        if field.is_required():
            continue  # no default to compare with (a source's `type` and `path`)
        default = field.get_default(call_default_factory=True)
        if isinstance(value, dict) and isinstance(default, BaseModel):
            compared += _walk(value, type(default), f"{path}.")
            continue
        same = EQUIVALENT.get(path, lambda raw, default: raw == default)
        assert same(value, default), f"{path}: default.yaml has {value!r}, the model's default is {default!r}"
        compared.append(path)
    return compared


def test_default_yaml_spells_out_the_model_defaults():
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    compared = _walk(raw, StagecastConfig, "")
    assert {"video.fps", "director.cooldown_s", "character.look", "chat.sources[1].port",
            "listen.barge_in", "listen.vad.end_ms"} <= set(compared)
