"""Render one job wherever it runs (a Ray worker on any node, or this process) and hand back the video.

The video is written to a temporary file on the worker and returned as bytes, so the driver writes every
output into its own --out-dir whether or not the nodes share a filesystem. The raw frame and audio hashes
come from the renderer itself (before encoding): they are what makes a cluster render comparable, byte for
byte, with a local one.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from streamer.batch.jobs import RenderJob


@dataclass(frozen=True)
class JobResult:
    name: str
    frames: int
    fps: int
    video_sha256: str  # of the raw RGB frames, in order
    audio_sha256: str  # of the raw audio samples, in order
    video: bytes  # the encoded file
    render_s: float  # wall seconds the render took on its worker
    host: str
    pid: int
    node: str = ""  # the Ray node id, when rendered as a Ray task

    @property
    def video_seconds(self) -> float:
        return self.frames / self.fps


def render_job(job: RenderJob, threads: int | None = None) -> JobResult:
    """Render `job` here with `threads` torch threads (a task's CPU share; None: the local default).

    The frames do not depend on the thread count (tests/test_batch.py renders with both)."""
    from streamer.assembly import configure_torch_threads
    from streamer.render_script import render_script

    configure_torch_threads(threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stagecast-batch-") as tmp:
        out = Path(tmp) / job.name
        result = render_script(job.config, job.lines, out)
        video = out.read_bytes()
    return JobResult(job.name, result.frames, job.config.video.fps, result.video_sha256, result.audio_sha256,
                     video, time.perf_counter() - start, socket.gethostname(), os.getpid())
