"""Reading a config: YAML validated into `StagecastConfig`, `${VAR}` filled from the environment,
relative paths resolved.

Errors name the file, the key path and what was expected, because a streamer editing YAML at
2 a.m. needs to know exactly which line to fix. `${VAR}` in any string is replaced from the
environment so secrets never live in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.render.procedural.look import LOOKS, load_look
from streamer.assets import DEFAULT_CONFIG
from streamer.config.base import ConfigError
from streamer.config.chat import ReplaySourceConfig
from streamer.config.stagecast import StagecastConfig

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute_env(value: Any, path: str, source: str) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string; a missing variable is an error naming it."""
    if isinstance(value, dict):
        return {k: _substitute_env(v, f"{path}.{k}" if path else str(k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{source}: {path}: environment variable {name} is not set")

        return _ENV_PATTERN.sub(repl, value)
    return value


def format_errors(error: ValidationError, source: str, title: str = "invalid configuration",
                  unknown_hint: str = "see configs/default.yaml for the known keys") -> str:
    """A validation error as one line per wrong key: where, what is wrong, and the value given."""
    lines = [f"{source}: {title}"]
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
        # Union members show up in the path ("replay", "local"); keep them, they say which shape failed.
        what = item["msg"]
        if item["type"] == "extra_forbidden":
            what = f"unknown key (check the spelling; {unknown_hint})" if unknown_hint else \
                "unknown key (check the spelling)"
        got = item.get("input")
        got_text = "" if item["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc or '(top level)'}: {what}{got_text}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> StagecastConfig:
    """Validate already-loaded YAML data; relative paths are taken relative to `base_dir`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    data = _substitute_env(data, "", source)
    try:
        config = StagecastConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source)) from None
    if base_dir is not None:
        _resolve_paths(config, base_dir)
    if isinstance(config.character.look, str) and config.character.look not in LOOKS:
        try:
            load_look(config.character.look, base_dir)
        except ValueError as exc:
            raise ConfigError(f"{source}: invalid configuration\n  character.look: {exc}") from None
    pack = config.character.sprite_pack()
    if config.character.appearance == "sprites" and not (pack / "rig.yaml").is_file():
        raise ConfigError(f"{source}: invalid configuration\n  character.sprites: {pack} is not a sprite pack "
                          "(no rig.yaml there; see configs/characters/sprite-demo)")
    return config


def _resolve_paths(config: StagecastConfig, base_dir: Path) -> None:
    rec = config.outputs.recording
    if not rec.directory.is_absolute():
        rec.directory = (Path.cwd() / rec.directory).resolve()
    for src in config.chat.sources:
        if isinstance(src, ReplaySourceConfig) and not src.path.is_absolute():
            src.path = (base_dir / src.path).resolve()
        token_file = getattr(src, "token_file", None)  # twitch / youtube: relative to the config file
        if token_file is not None and not token_file.is_absolute():
            src.token_file = (base_dir / token_file).resolve()  # type: ignore[union-attr]
    ch = config.character
    for holder, attr in ((ch, "persona"), (ch, "sprites"), (ch.llama, "model_path"), (ch.piper, "model_path"),
                         (ch.piper, "config_path"), (ch.coqui, "model_dir"), (ch.coqui, "speaker_wav")):
        value = getattr(holder, attr, None) if holder is not None else None
        if value is not None and not value.is_absolute():
            setattr(holder, attr, (base_dir / value).resolve())
    if isinstance(ch.look, str) and ch.look not in LOOKS and not Path(ch.look).is_absolute():
        ch.look = str((base_dir / ch.look).resolve())
    if ch.live2d and isinstance(ch.live2d.get("model"), str) and not Path(ch.live2d["model"]).is_absolute():
        ch.live2d["model"] = str((base_dir / ch.live2d["model"]).resolve())
    if not ch.memory.path.is_absolute():
        ch.memory.path = (Path.cwd() / ch.memory.path).resolve()
    if config.panel.db_path is not None and not config.panel.db_path.is_absolute():
        config.panel.db_path = (base_dir / config.panel.db_path).resolve()


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's data; a missing file or bad YAML is a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_config(path: Path | str | None = None) -> StagecastConfig:
    """Load a YAML file (default: configs/default.yaml, else the embedded defaults)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return parse_config({}, "<embedded defaults>", Path.cwd())
        path = DEFAULT_CONFIG
    path = Path(path)
    config = parse_config(read_yaml(path, "config"), str(path), path.resolve().parent)
    config.panel.config_path = path.resolve()  # the panel's admin "reload" re-reads this file
    return config
