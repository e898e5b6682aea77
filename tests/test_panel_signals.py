"""uvicorn runs inside the show's loop without taking SIGINT/SIGTERM away from the show."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tests.panel_signal_app", str(tmp_path / "panel.db"), *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    handler = ""
    for line in proc.stdout:  # blocks on the child's output, no sleeping
        if line.startswith("HANDLER "):
            handler = line.split(" ", 1)[1].strip()
        if line.startswith("READY "):
            return proc, handler
    proc.wait(10)
    raise AssertionError(f"the show did not start (rc {proc.returncode})")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_show_keeps_its_signal_handlers_and_stops_cleanly(tmp_path: Path, sig: signal.Signals):
    proc, handler = start(tmp_path)
    try:
        assert handler == "_sighandler_noop"  # asyncio's add_signal_handler, i.e. the show's
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "show stopped after" in out and "panel stopped" in out


def test_plain_uvicorn_would_take_the_handler(tmp_path: Path):
    """The control: uvicorn's own Server replaces the show's SIGINT handler while it serves."""
    proc, handler = start(tmp_path, "plain")
    try:
        assert handler == "Server.handle_exit"
    finally:
        proc.kill()
        proc.communicate(timeout=60)
