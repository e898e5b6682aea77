"""scripts/gpu-run.sh, the one command of the GPU run, rehearsed here without a GPU.

* The dry run: with no CUDA device it says so and exits 0 before installing anything.
* The install step, as the GPU machine runs it: the project's wheel installed with `--no-deps` into
  a fresh interpreter whose other packages (torch & co) are already there. Here the fresh venv
  borrows this venv's site-packages through a .pth file written after the install (so pip sees only
  the fresh venv, as on the GPU image it sees only the image's packages), as tests/test_packaging.py does.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from tests.wheel_build import build_project_wheel

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu-run.sh"


def _run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would really run")
def test_dry_run_without_cuda_skips_cleanly(tmp_path: Path) -> None:
    env = _clean_env(STAGECAST_PYTHON=sys.executable, STAGECAST_WHEELS=str(tmp_path / "no-wheels"),
                     OUT=str(tmp_path))
    proc = _run(["bash", SCRIPT], cwd=tmp_path, env=env)
    assert "no CUDA device here" in proc.stdout and "skipping" in proc.stdout
    assert "gpu-run: installed" not in proc.stdout  # nothing installed
    assert not list(tmp_path.iterdir())  # nor written


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
def test_an_interpreter_without_torch_skips_without_a_gpu_and_is_refused_with_one(tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    env = _clean_env(STAGECAST_PYTHON=str(venv / "bin" / "python"))
    assert "no CUDA device here" in _run(["bash", SCRIPT], env=env).stdout  # plain `bash scripts/gpu-run.sh` here
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: pretend'\n")
    (stub / "nvidia-smi").chmod(0o755)
    env["PATH"] = f"{stub}:{env['PATH']}"
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1 and "cannot import torch" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building the wheel needs setuptools")
def test_install_step_puts_the_project_into_a_fresh_venv_with_no_deps(tmp_path: Path) -> None:
    wheels = build_project_wheel(tmp_path).parent
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])  # with its own pip, as the GPU image's python has
    python = venv / "bin" / "python"

    proc = _run(["bash", SCRIPT, "install"], cwd=REPO,
                env=_clean_env(STAGECAST_PYTHON=str(python), STAGECAST_WHEELS=str(wheels)))
    assert "installed" in proc.stdout  # the script imported engine and streamer once installed
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    assert (site_packages / "engine").is_dir() and (site_packages / "streamer").is_dir()
    assert not (site_packages / "torch").exists()  # --no-deps: the dependencies are the interpreter's own
    borrowed = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site_packages / "zz-borrowed.pth").write_text("".join(f"{path}\n" for path in borrowed))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "import engine, streamer, torch; from engine.render.procedural.runtimes import select_renderer; " \
            "print(engine.__file__); print(streamer.__file__)"
    files = _run([python, "-c", probe], cwd=elsewhere, env=_clean_env()).stdout.split()
    assert all(Path(f).is_relative_to(site_packages) for f in files), files
