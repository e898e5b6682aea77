"""Where the procedural renderer keeps what it builds, so a build outlives the process that made it.

Exported ONNX graphs, TensorRT engines, inductor's compiled kernels and the compiled-program
markers all live under one folder. Inductor's own default is /tmp, which a reboot empties; a
rebuild costs about a minute on 2 cores, so its cache is moved here unless the user set
TORCHINDUCTOR_CACHE_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.cache import cache_root


def cache_dir() -> Path:
    """Where exported graphs and engines are kept: $STAGECAST_CACHE or ~/.cache/stagecast."""
    return cache_root() / "render"


def inductor_cache_dir() -> Path:
    """The folder inductor's cache is (or will be) in: the user's choice, else the stagecast cache."""
    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or cache_dir() / "torchinductor")


def use_persistent_inductor_cache() -> Path:
    """Point inductor at `inductor_cache_dir()` (before its first build in this process)."""
    folder = inductor_cache_dir()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder
