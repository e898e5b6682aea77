"""The one stagecast cache folder, so everything built or assembled once outlives the process that made it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$STAGECAST_CACHE, else ~/.cache/stagecast (each part keeps its own subfolder)."""
    root = os.environ.get("STAGECAST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stagecast")
    return Path(root)
