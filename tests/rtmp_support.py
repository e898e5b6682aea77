"""A real nginx-rtmp on loopback that tells the test when each publish starts, and a packet sink that
remembers when the show encoded each video frame, so the first frame the server gets after an outage
can be placed against live."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import av

from streamer.outputs.encoder import VIDEO_INDEX
from tests.obs_support import free_port, port_open

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def have_nginx_rtmp() -> bool:
    return shutil.which("nginx") is not None and RTMP_MODULE.exists()


class PublishLog:
    """The HTTP endpoint of nginx-rtmp's ``on_publish``: the monotonic time of every publish, in order."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._cond = threading.Condition()
        log = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with log._cond:
                    log.times.append(time.monotonic())
                    log._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="test-on-publish", daemon=True).start()

    def wait_count(self, count: int, timeout: float) -> float:
        """The time of publish number ``count`` (1-based), waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.times) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"nginx saw {len(self.times)} publishes in time, wanted {count}")
                self._cond.wait(left)
            return self.times[count - 1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NginxRtmp:
    """nginx-rtmp (one process, no master) recording every publish of application ``live``; with a
    ``PublishLog``, nginx reports each publish to it."""

    def __init__(self, root: Path, publishes: PublishLog | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.control_port = free_port()  # nginx-rtmp's control module: drops a publisher on request
        self.records = root / "rec"
        self.records.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None
        on_publish = f"      on_publish http://127.0.0.1:{publishes.port}/publish;\n" if publishes else ""
        (root / "nginx.conf").write_text(f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
user root;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{self.control_port}; location /control {{ rtmp_control all; }} }}
}}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    application live {{
      live on;
      record all;
      record_path {self.records};
      record_unique on;
{on_publish}    }}
  }}
}}
""")

    def start(self) -> float:
        """Start it; returns the monotonic time it first accepted a TCP connection."""
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(self.root / "nginx.conf"), "-p", str(self.root), "-e", str(self.root / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not listen within 10 s")
            time.sleep(0.01)
        return time.monotonic()

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, its connections reset, nothing flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """Fast shutdown: recordings are closed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def drop_publisher(self, name: str) -> None:
        """The server ends a publish it had accepted (``/control/drop/publisher``), as a platform does."""
        url = f"http://127.0.0.1:{self.control_port}/control/drop/publisher?app=live&name={name}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert reply.status == 200, reply.status

    def recordings(self) -> list[Path]:
        return sorted(self.records.glob("*.flv"), key=lambda p: p.stat().st_mtime)


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an H.264 packet, Annex B (the encoder's) or length-prefixed (FLV's)."""
    if data.startswith((b"\0\0\1", b"\0\0\0\1")):
        return [n.rstrip(b"\0") for n in data.split(b"\0\0\1") if n.rstrip(b"\0")]
    units, i = [], 0
    while i + 4 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        units.append(data[i + 4:i + 4 + size].rstrip(b"\0"))
        i += 4 + size
    return units


def frame_id(data: bytes) -> str:
    """Identifies a coded picture across containers: the hash of its largest NAL unit (the slice)."""
    return hashlib.sha1(max(nal_units(data), key=len)).hexdigest()


class EncodeLog:
    """A packet sink beside the show's outputs: when (monotonic) each video frame left the encoder."""

    name = "encode-log"

    def __init__(self) -> None:
        self.frames: dict[str, tuple[float, int]] = {}  # frame_id -> (time, pts)
        self.order: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def start(self, encoder: object) -> None:
        pass

    def write(self, packet: av.Packet) -> None:
        if packet.stream_index != VIDEO_INDEX or packet.pts is None:
            return
        now = time.monotonic()
        key = frame_id(bytes(packet))
        with self._lock:
            self.frames[key] = (now, packet.pts)
            self.order.append((now, packet.pts))

    def close(self) -> None:
        pass

    def newest_pts(self, at: float) -> int:
        """The newest frame encoded by monotonic time ``at``: the live edge then."""
        with self._lock:
            return max(pts for t, pts in self.order if t <= at)

    def lookup(self, key: str) -> tuple[float, int]:
        with self._lock:
            return self.frames[key]


def first_video_packet(path: Path) -> bytes:
    """The first coded picture in a recording (what the server got first)."""
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.size:
                return bytes(packet)
    raise AssertionError(f"no video in {path}")
