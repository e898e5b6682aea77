"""A wheel installed into a fresh venv runs from any folder: its configs, characters, overlays and
panel pages come with it (package data found through importlib.resources), not from the checkout.

Hermetic and offline: the wheel is built from a copy of the sources with the build tools already in
this venv (no build isolation), installed without dependencies, and the fresh venv borrows this
venv's site-packages for torch & co through a .pth file. A .pth line only adds a folder to sys.path,
so the editable install of stagecast in that folder (itself a .pth hook) does not come along.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.wheel_build import build_project_wheel

pytestmark = pytest.mark.integration


# Run inside the installed venv: where each shipped file the default show needs resolves to.
PROBE = """
import json, streamer
from streamer.assets import OVERLAY_DIR, PANEL_STATIC_DIR
from streamer.config import ReplaySourceConfig, load_config
from streamer.station.panel import STATIC as STATION_STATIC
config = load_config()
files = {
    "streamer": streamer.__file__,
    "default.yaml": str(config.panel.config_path),
    "character.look": config.character.look,
    "demo chat": str(next(s.path for s in config.chat.sources if isinstance(s, ReplaySourceConfig))),
    "sprite rig": str(config.character.sprite_pack() / "rig.yaml"),
    "overlay": str(OVERLAY_DIR / "chat.html"),
    "panel page": str(PANEL_STATIC_DIR / "panel.html"),
    "station page": str(STATION_STATIC / "station.js"),
}
print(json.dumps(files))
"""


def _run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building the wheel needs setuptools")
def test_wheel_installed_elsewhere_finds_its_files(tmp_path: Path):
    wheel = build_project_wheel(tmp_path)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel])
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    borrowed = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site_packages / "stagecast-test-deps.pth").write_text("".join(f"{path}\n" for path in borrowed))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    check = _run([python, "-m", "streamer.cli", "check"], cwd=elsewhere, env=env)
    assert "config OK" in check.stdout
    assert (venv / "bin" / "stagecast").is_file()

    files = json.loads(_run([python, "-c", PROBE], cwd=elsewhere, env=env).stdout)
    for what, path in files.items():
        assert Path(path).is_file(), f"{what}: {path} is not a file"
        assert Path(path).is_relative_to(site_packages), f"{what}: {path} is not the installed copy"
