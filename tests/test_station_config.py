"""The station file refuses what cannot work, naming it; a bad show config is refused alone; without Ray,
`stagecast station` says how to install it (no cluster needed for any of these)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamer.config import ConfigError
from streamer.station.config import ShowEntry, check_resources, load_station, parse_station

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]
SMALL = {"video": {"width": 256, "height": 144}, "chat": {"sources": []}, "listen": {"enabled": False}}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_duplicate_show_name_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, {"shows": [{"name": "aiko", "config": SMALL}, {"name": "aiko", "config": SMALL}]})
    with pytest.raises(ConfigError, match=r"duplicate show name 'aiko'") as caught:
        load_station(path)
    assert str(path) in str(caught.value)


def test_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, {"shows": [{"name": "aiko", "config": SMALL, "num_cpu": 2}]})
    with pytest.raises(ConfigError, match=r"shows\.0\.num_cpu: unknown key"):
        load_station(path)
    with pytest.raises(ConfigError, match=r"station\.pannel: unknown key"):
        parse_station({"station": {"pannel": {}}, "shows": []})


@pytest.mark.parametrize(("entry", "message"), [
    ({"num_cpus": 0}, r"shows\.0\.num_cpus: Input should be greater than 0"),
    ({"num_gpus": -1}, r"shows\.0\.num_gpus: Input should be greater than or equal to 0"),
])
def test_negative_or_zero_resources_are_refused(entry: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_station({"shows": [{"name": "aiko", "config": SMALL, **entry}]})


def test_resources_no_node_has_are_refused_naming_the_show() -> None:
    nodes = [{"CPU": 2.0}, {"CPU": 1.0, "GPU": 1.0}]
    check_resources([ShowEntry(name="fits", num_cpus=1, num_gpus=0.5)], nodes)  # a fraction of the GPU node
    with pytest.raises(ConfigError, match=r"show 'big': asks for 64 CPU and 0 GPU; the largest node has 2 CPU"):
        check_resources([ShowEntry(name="fits"), ShowEntry(name="big", num_cpus=64)], nodes)
    with pytest.raises(ConfigError, match=r"show 'gpu': asks for 2 CPU and 1 GPU"):  # no node has both
        check_resources([ShowEntry(name="gpu", num_cpus=2, num_gpus=1)], nodes)


def test_a_show_config_that_fails_validation_is_refused_alone(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("video: {width: 256, height: 144, fps: 29}\n", encoding="utf-8")
    path = _write(tmp_path, {"shows": [{"name": "good", "config": SMALL},
                                       {"name": "bad", "config": "bad.yaml"},
                                       {"name": "typo", "config": SMALL, "overrides": {"shoe": {}}}]})
    station = load_station(path)
    assert [s.name for s in station.shows] == ["good"]
    assert set(station.refused) == {"bad", "typo"}
    assert "bad.yaml" in station.refused["bad"] and "fps" in station.refused["bad"]
    assert "shoe: unknown key" in station.refused["typo"]
    good = station.shows[0].config()
    assert (good.video.width, good.panel.enabled, good.outputs.recording.prefix) == (256, False, "good")


def _stagecast(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_station_cli_refuses_a_bad_station_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"shows": [{"name": "a", "config": SMALL}, {"name": "a", "config": SMALL}]})
    result = _stagecast(["station", "-c", str(path)], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "duplicate show name 'a'" in result.stderr


def test_without_ray_station_says_how_to_install_and_the_show_is_unchanged(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "ray.py").write_text("raise ImportError('No module named ray (hidden by the test)')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hide), str(REPO)])}
    path = _write(tmp_path, {"shows": [{"name": "a", "config": SMALL}]})
    result = _stagecast(["station", "-c", str(path)], tmp_path, env)
    assert result.returncode == 2
    assert "pip install 'stagecast[station]'" in result.stderr
    listing = _stagecast(["station", "list"], tmp_path, env)
    assert listing.returncode == 2 and "stagecast[station]" in listing.stderr
    # the single show never needs Ray: everything `stagecast run` builds imports with Ray hidden
    show = subprocess.run([sys.executable, "-c", "import streamer.attachments, streamer.cli.run, streamer.show"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert show.returncode == 0, show.stderr
