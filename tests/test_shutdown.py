"""Ctrl-C ends the show promptly even when its parts are stuck: the panel is serving, OBS control is
connecting to a server that never answers, and the RTMP output is connecting to one that never
answers either. The clean stop and the process exit each take at most 2 s, and the recording is whole."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.media import stream_summary

pytestmark = pytest.mark.integration
STOP_S = 2.0


class SilentServer:
    """Accepts TCP connections and never says a word (an OBS or an ingest server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_time(line: str) -> float:
    stamp = line[:23]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_ctrl_c_stops_and_exits_within_2s_with_stuck_obs_and_rtmp(tmp_path: Path):
    obs, ingest = SilentServer(), SilentServer()
    panel_port = free_port()
    config = tmp_path / "show.yaml"
    config.write_text(f"""
video: {{width: 320, height: 180}}
chat: {{sources: []}}
character: {{memory: {{enabled: false}}}}
outputs:
  recording: {{directory: {tmp_path / "rec"}}}
  rtmp: [{{url: "rtmp://127.0.0.1:{ingest.port}/live/test", stream_key_env: null}}]
obs: {{enabled: true, port: {obs.port}, password_env: null}}
panel: {{enabled: true, port: {panel_port}, db_path: {tmp_path / "panel.db"}}}
""")
    log = (tmp_path / "show.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "streamer.cli", "run", "-c", str(config)], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # on air, the panel answering, OBS and RTMP both stuck connecting
            assert proc.poll() is None, (tmp_path / "show.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the show never came up"
            try:
                up = httpx.get(f"http://127.0.0.1:{panel_port}/", timeout=1).status_code == 200
            except httpx.HTTPError:
                up = False
            text = (tmp_path / "show.log").read_text()
            if up and obs.accepted and ingest.accepted and "stagecast.show: show starting" in text:
                break
            time.sleep(0.2)
        time.sleep(3)  # a few seconds of recording
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        exited = time.time()
    finally:
        if proc.poll() is None:
            proc.kill()
        obs.close()
        ingest.close()
    text = (tmp_path / "show.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    stopped = next(line for line in text.splitlines() if "show stopped after" in line)
    frames = int(re.search(r"after (\d+) frames", stopped).group(1))  # type: ignore[union-attr]
    print(f"\nclean stop {log_time(stopped) - sent:.2f} s, process exit {exited - sent:.2f} s after SIGINT")
    assert log_time(stopped) - sent <= STOP_S, text[-3000:]
    assert exited - sent <= STOP_S, text[-3000:]
    assert "stagecast.lifecycle" not in text, text[-3000:]  # no part of the show was abandoned (a stuck sink may be)
    (recording,) = sorted((tmp_path / "rec").glob("*.mkv"))
    assert int(stream_summary(recording)["video"]["nb_read_frames"]) == frames
