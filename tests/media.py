"""ffprobe helpers for tests: what a real player would see in our files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def ffprobe(path: Path, *args: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(out.stdout)


def stream_summary(path: Path) -> dict[str, dict]:
    """codec_type -> stream info, with exact video frame counts (decoded)."""
    info = ffprobe(path, "-count_frames", "-show_streams", "-show_format")
    return {s["codec_type"]: s | {"format": info["format"]} for s in info["streams"]}
