"""The project's wheel, built hermetically for the install tests (test_packaging, test_gpu_run).

Built from a copy of the sources, so the build leaves nothing (build/, *.egg-info) in the checkout,
with the build tools already in this venv (no build isolation: offline) and without dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "engine", "streamer", "configs", "overlays")


def build_project_wheel(tmp_path: Path) -> Path:
    """Build stagecast's wheel into tmp_path / "dist" and return its path."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, src / name)
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q", "--no-deps",
           "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"building the wheel failed\n{proc.stdout}\n{proc.stderr}"
    (wheel,) = (tmp_path / "dist").glob("stagecast-*.whl")
    return wheel
