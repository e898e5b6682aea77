"""The station file: which shows run, what each needs (CPUs, a GPU fraction, node labels), and the
station's own panel.

A station file is refused as a whole when it cannot mean anything (a duplicate show name, an unknown
key, resources no node could give); a show whose own config does not validate is refused alone, so the
other shows still run. Errors name the file, the show and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from streamer.config import ConfigError, ConfigModel, PanelConfig, StagecastConfig
from streamer.config.loader import format_errors, parse_config, read_yaml

SHOW_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class StationPanelConfig(PanelConfig):
    """The station's moderator panel: the show panel's settings, on its own port."""

    port: int = Field(8780, ge=0, le=65535, description="0 picks a free port (tests)")


class ShowEntry(ConfigModel):
    """One show: a normal show config (a file, an inline mapping, or both: `overrides` go over the file)."""

    name: str = Field(pattern=SHOW_NAME, description="lower-case letters, digits, '-' and '_'")
    config: Path | dict[str, Any] | None = Field(None, description="show config file (relative to the station "
                                                 "file) or an inline mapping; default: the built-in defaults")
    overrides: dict[str, Any] = Field(default_factory=dict, description="keys set over `config`")
    num_cpus: float = Field(1.0, gt=0, le=1024, description="logical CPUs Ray reserves for the show")
    num_gpus: float = Field(0.0, ge=0, le=64, description="a GPU or a fraction of one")
    labels: dict[str, str] = Field(default_factory=dict, description="node labels the show needs "
                                   "(`ray start --labels`)")
    max_restarts: int = Field(-1, ge=-1, description="Ray actor restarts after the show's process dies; -1: always")


class StationSettings(ConfigModel):
    name: str = Field("stagecast", pattern=SHOW_NAME, description="the Ray namespace the shows live in")
    address: str | None = Field(None, description="Ray cluster: auto, HOST:PORT, or none for a local one")
    status_every_s: float = Field(1.0, gt=0, le=60)
    status_timeout_s: float = Field(2.0, gt=0, le=60, description="a show silent this long is reported hung")
    panel: StationPanelConfig = Field(default_factory=StationPanelConfig)


class StationFile(ConfigModel):
    station: StationSettings = Field(default_factory=StationSettings)
    shows: list[ShowEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class ShowSpec:
    """A show ready to place: its entry and its validated config's source data (the actor parses it again
    where it runs, so a node resolves its own paths and environment)."""

    entry: ShowEntry
    data: dict[str, Any]
    source: str
    base_dir: str

    @property
    def name(self) -> str:
        return self.entry.name

    def config(self) -> StagecastConfig:
        return show_config(self.data, self.source, Path(self.base_dir), self.name)


@dataclass(frozen=True)
class Station:
    settings: StationSettings
    shows: list[ShowSpec]
    refused: dict[str, str]  # show name -> why its config was refused (the others still run)
    path: Path | None = None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` set into `base`; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def show_config(data: dict[str, Any], source: str, base_dir: Path, name: str) -> StagecastConfig:
    """A show's config as a station runs it: the station's panel steers it (its own panel is off), and its
    recordings are named after the show, so shows sharing a folder never mix their segments."""
    config = parse_config(data, source, base_dir)
    config.panel.enabled = False
    if config.outputs.recording.prefix == "stagecast":
        config.outputs.recording.prefix = name
    return config


def show_spec(entry: ShowEntry, base_dir: Path, source: str) -> ShowSpec:
    """Read and validate one show's config; ConfigError names the show and the key."""
    data: dict[str, Any] = {}
    where = f"{source}: show {entry.name!r}"
    if isinstance(entry.config, Path):
        path = entry.config if entry.config.is_absolute() else base_dir / entry.config
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{where}: {path} must be a mapping of sections")
        data, base_dir, where = loaded or {}, path.resolve().parent, f"{where} ({path})"
    elif isinstance(entry.config, dict):
        data = entry.config
    data = _merge(data, entry.overrides)
    spec = ShowSpec(entry, data, where, str(base_dir.resolve()))
    spec.config()  # raises ConfigError naming the file and key
    return spec


def parse_station(data: Any, source: str = "<station>", base_dir: Path | None = None) -> Station:
    """Validate a station file's data. Refuses the whole file for a duplicate name or an unknown key; a show
    whose config fails validation is refused alone (listed in `refused`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with `station` and `shows`")
    try:
        parsed = StationFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, "invalid station file", unknown_hint="")) from None
    seen: set[str] = set()
    for entry in parsed.shows:
        if entry.name in seen:
            raise ConfigError(f"{source}: invalid station file\n  shows: duplicate show name {entry.name!r} "
                              "(each show needs its own name)")
        seen.add(entry.name)
    base = base_dir or Path.cwd()
    shows: list[ShowSpec] = []
    refused: dict[str, str] = {}
    for entry in parsed.shows:
        try:
            shows.append(show_spec(entry, base, source))
        except ConfigError as exc:
            refused[entry.name] = str(exc)
    return Station(parsed.station, shows, refused)


def load_station(path: Path | str) -> Station:
    path = Path(path)
    station = parse_station(read_yaml(path, "station file"), str(path), path.resolve().parent)
    return Station(station.settings, station.shows, station.refused, path.resolve())


def check_resources(shows: list[ShowEntry], nodes: list[dict[str, float]], source: str = "station") -> None:
    """Refuse shows that no node of the cluster could ever hold (`nodes`: each node's total resources)."""
    problems = []
    for entry in shows:
        need = {"CPU": entry.num_cpus, "GPU": entry.num_gpus}
        if not any(all(node.get(k, 0.0) >= v for k, v in need.items() if v > 0) for node in nodes):
            best_cpu = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
            best_gpu = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
            problems.append(f"  show {entry.name!r}: asks for {entry.num_cpus:g} CPU and {entry.num_gpus:g} GPU; "
                            f"the largest node has {best_cpu:g} CPU and {best_gpu:g} GPU")
    if problems:
        raise ConfigError(f"{source}: impossible resources\n" + "\n".join(problems))
