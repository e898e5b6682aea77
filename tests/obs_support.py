"""A real, headless OBS Studio for the tests: Xvfb + a private HOME + obs-websocket with a password.

OBS 29 (Debian 12) reads ``$HOME/.config/obs-studio/global.ini`` (``XDG_CONFIG_HOME`` is set to
match). ``[General] FirstRun=true`` means "the first run already happened": OBSBasic::OBSInit only
opens the auto-configuration wizard when FirstRun is false *and* there is no LastVersion. The
``[OBSWebSocket]`` section enables the built-in obs-websocket 5 server with a password; it listens
on all interfaces, which is why the password is never optional here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

OBS = shutil.which("obs")
XVFB = shutil.which("Xvfb")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``cond`` until true; return the seconds it took, or fail naming ``what``."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        threading.Event().wait(step)
    return time.monotonic() - t0


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Xvfb:
    """An X server on a display number Xvfb picks itself (``-displayfd``: no race for a free one)."""

    def __init__(self, width: int = 1280, height: int = 720) -> None:
        if XVFB is None:
            raise RuntimeError("Xvfb is not installed (apt-get install xvfb)")
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [XVFB, "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()  # blocks until the server is ready, or EOF if it died
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ObsStudio:
    """One OBS process with its own HOME. ``start`` returns once obs-websocket accepts connections."""

    def __init__(self, home: Path, display: str, port: int, password: str | None = None) -> None:
        if OBS is None:
            raise RuntimeError("obs is not installed (apt-get install obs-studio)")
        self.home, self.display, self.port = home, display, port
        self.password = password or secrets.token_urlsafe(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "obs-stdout.log"
        self.start_s: float | None = None

    def write_config(self) -> None:
        config = self.home / ".config" / "obs-studio"
        config.mkdir(parents=True, exist_ok=True)
        (config / "global.ini").write_text(
            "[General]\nFirstRun=true\n\n"
            "[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\n"
            f"ServerPort={self.port}\nAuthRequired=true\nServerPassword={self.password}\nAlertsEnabled=false\n",
            encoding="utf-8",
        )

    def start(self, timeout: float = 60.0) -> float:
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "WAYLAND", "QT_"))}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), DISPLAY=self.display,
                   LIBGL_ALWAYS_SOFTWARE="1", QT_QPA_PLATFORM="xcb")
        t0 = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(OBS), "--minimize-to-tray", "--multi", "--disable-missing-files-check"],
                cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc
        try:
            wait_until(lambda: proc.poll() is not None or port_open(self.port), timeout, "obs-websocket to listen")
        except AssertionError:
            self.stop()
            raise
        if proc.poll() is not None:
            raise RuntimeError(f"obs exited with {proc.returncode}; log tail:\n{self.log_tail()}")
        self.start_s = time.monotonic() - t0
        return self.start_s

    def kill(self) -> None:
        """SIGKILL, like a crash: no clean websocket close, no saved scene collection."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT (OBS shuts down cleanly), then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def client(self, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        """An independent obsws-python client, to check what OBS really holds."""
        import obsws_python

        return obsws_python.ReqClient(host="127.0.0.1", port=self.port, password=self.password, timeout=timeout)
