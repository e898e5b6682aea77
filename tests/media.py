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


def stream_end_seconds(path: Path, kind: str) -> float:
    """End time (pts + duration of the last packet) of the first stream of `kind`, via PyAV demuxing."""
    import av

    end = 0.0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0] if kind == "audio" else container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
    return end
