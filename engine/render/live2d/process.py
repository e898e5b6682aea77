"""The parent's side of the Live2D GL worker: start `worker.py`, send it calls, report how it died.

The worker runs as a script in its own interpreter (`-P`, so nothing of ours is on its path before
live2d-py), talks `multiprocessing.connection` messages over its stdin/stdout pipes and writes its
log to a temporary file, whose tail comes with every error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine.render.live2d.errors import Live2DError

WORKER = Path(__file__).with_name("worker.py")


def _pipe_pair(proc: subprocess.Popen[bytes]) -> tuple[Connection, Connection]:
    assert proc.stdin is not None and proc.stdout is not None
    tx = Connection(os.dup(proc.stdin.fileno()), readable=False)
    rx = Connection(os.dup(proc.stdout.fileno()), writable=False)
    proc.stdin.close()
    proc.stdout.close()
    return tx, rx


class WorkerProcess:
    """The GL child process and its pipes; errors carry the tail of what it printed."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what, self.timeout_s = what, timeout_s
        self.log = tempfile.TemporaryFile()
        # numpy's BLAS threads would only compete with llvmpipe's rasterizer threads for the cores
        env = dict(os.environ, PYOPENGL_PLATFORM="egl", EGL_PLATFORM="surfaceless", OPENBLAS_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env
        )
        self.tx, self.rx = _pipe_pair(self.proc)

    def log_tail(self, lines: int = 8) -> str:
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        tail = [line for line in text.splitlines() if line.strip() and "\x1b[" not in line][-lines:]
        return "\n".join(tail)

    def call(self, *msg: Any) -> Any:
        try:
            self.tx.send(msg)
            if not self.rx.poll(self.timeout_s):
                raise Live2DError(f"{self.what}: the Live2D worker did not answer within {self.timeout_s:.0f} s")
            status, payload = self.rx.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self.proc.wait(timeout=5)
            why = f"crashed ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"
            tail = self.log_tail()
            raise Live2DError(f"{self.what}: the Live2D worker {why}" + (f"\n{tail}" if tail else "")) from None
        if status != "ok":
            raise Live2DError(f"{self.what}: {payload}")
        return payload

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.tx.send(("close",))
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()
        for conn in (self.tx, self.rx):
            conn.close()
        self.log.close()
