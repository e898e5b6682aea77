"""RTMP output (Twitch, YouTube, nginx-rtmp) that survives the ingest server going away.

The hub thread only buffers packets (:class:`ThreadedMuxSink`). The sink thread muxes FLV with
PyAV into the stdin of a relay child process (``rtmp_relay.py``) that owns FFmpeg's RTMP
client, so a hung connect/handshake can never freeze this process (see that module for why).

Dead connections are detected three ways: FFmpeg write errors (RST, refused) end the child;
the child's TCP watchdog shuts a socket down whose acknowledged-byte count stops moving while
data is queued; and the parent kills a child whose stdin stops draining for ``stall_seconds``
(``connect_timeout`` before it reported publishing).

While the server is away, :meth:`RtmpSink._probe` tries a plain TCP connect to its host and port
(no RTMP handshake) every fraction of a second, and one relay waits loaded (:meth:`RtmpSink._standby`).
Once the server accepts, that relay gets its config; the stream goes in only once it is ready,
starting on a keyframe asked for then, so the first frame the server gets is the live one.

Timestamps are rebased to 0 per connection, starting on a video keyframe: each publish is a
new stream for the server, the way OBS reconnects, so nginx-rtmp recordings and Twitch's
ingest see a stream that starts at 0 instead of hours in.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import av

from .encoder import AUDIO_INDEX, VIDEO_INDEX, AVEncoder
from .network_sink import RESUME_LIVE, Publish, ThreadedMuxSink, mask_url

log = logging.getLogger("stagecast.outputs.rtmp")

_RELAY = Path(__file__).with_name("rtmp_relay.py")


def spawn_relay() -> subprocess.Popen[bytes]:
    """A relay child; it loads Python and PyAV, then waits for its config line."""
    return subprocess.Popen([sys.executable, "-u", str(_RELAY)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


class _PipeWriter:
    """File-like for PyAV: writes to a pipe, raising TimeoutError when it does not drain."""

    def __init__(self, fd: int, stall_seconds: float) -> None:
        self.fd = fd
        self.stall_seconds = stall_seconds
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        deadline = time.monotonic() + self.stall_seconds
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"relay did not take data for {self.stall_seconds:.1f}s")
            _, writable, _ = select.select([], [self.fd], [], remaining)
            if not writable:
                continue
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                continue
        return len(data)


class _RelayConnection:
    """One RTMP publish: a relay child and the FLV muxer feeding it."""

    def __init__(self, encoder: AVEncoder, url: str, secret: str | None, stall_seconds: float,
                 connect_timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        self.stall_seconds = stall_seconds
        self.connect_timeout = connect_timeout
        self.started = time.monotonic()
        self.ready_event = threading.Event()
        self.live = threading.Event()
        self.error = ""
        self.proc = proc if proc is not None else spawn_relay()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"url": url, "secret": secret or "", "stall_seconds": stall_seconds})
                              .encode() + b"\n")
        self.proc.stdin.flush()
        self._reader = threading.Thread(target=self._read_status, daemon=True, name="stagecast-rtmp-relay")
        self._reader.start()
        self.failed = False
        try:
            if not self.ready_event.wait(connect_timeout) or self.proc.poll() is not None:
                raise ConnectionError(self.error or f"the RTMP relay did not start within {connect_timeout:.0f}s")
            self.writer = _PipeWriter(self.proc.stdin.fileno(), connect_timeout)
            self.out = av.open(self.writer, "w", format="flv", options={"flvflags": "no_duration_filesize"})
            video, audio = encoder.add_streams(self.out)
        except Exception:
            self.proc.kill()
            self.proc.wait()
            raise
        self.streams = {VIDEO_INDEX: video, AUDIO_INDEX: audio}

    def _read_status(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line == "ready":
                self.ready_event.set()
            elif line == "live":
                self.live.set()
                self.writer.stall_seconds = self.stall_seconds
            elif line.startswith("error "):
                self.error = line[6:]
        self.ready_event.set()  # the relay exited: nobody waits for a line that will never come

    def send(self, packet: av.Packet) -> None:
        packet.stream = self.streams[packet.stream_index]
        try:
            self.out.mux_one(packet)
        except Exception:
            self.failed = True
            self.check()
            raise

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            self.failed = True
            self._reader.join(1.0)  # pick up its last status line
            raise ConnectionError(self.error or f"relay exited with code {code}")
        if not self.live.is_set() and time.monotonic() - self.started > self.connect_timeout:
            self.failed = True
            raise TimeoutError(f"not publishing after {self.connect_timeout:.0f}s")

    def ready(self) -> bool:
        return self.live.is_set()

    def close(self) -> None:
        if not self.live.is_set():
            self.failed = True  # never published: no trailer to send, and the relay may be stuck connecting
        if not self.failed:
            try:
                self.out.close()  # FLV trailer into the pipe, bounded by the writer's stall timeout
            except Exception:
                log.debug("rtmp: closing the FLV muxer failed", exc_info=True)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(0.2 if self.failed else self.stall_seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.failed:
            try:
                self.out.close()
            except Exception:
                pass


class RtmpSink(ThreadedMuxSink):
    """Publish the shared H.264/AAC packets to ``url`` (+ ``/stream_key``); reconnects forever."""

    def __init__(
        self,
        url: str,
        stream_key: str | None = None,
        buffer_seconds: float = 10,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        name: str | None = None,
        publish: Publish | None = None,
        stall_seconds: float = 5.0,
        connect_timeout: float = 10.0,
        drain_seconds: float = 5.0,
        resume: str = RESUME_LIVE,
        probe_max: float = 0.5,
    ) -> None:
        if not url.startswith(("rtmp://", "rtmps://")):
            raise ValueError(f"RTMP url must start with rtmp:// or rtmps://, got {mask_url(url)!r}")
        self._url = f"{url.rstrip('/')}/{stream_key}" if stream_key else url
        self._secret = stream_key
        parts = urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "rtmps" else 1935)
        self.stall_seconds = stall_seconds
        self.connect_timeout = connect_timeout
        self._spare: subprocess.Popen[bytes] | None = None  # a relay waiting for its config (sink thread only)
        super().__init__(name or f"rtmp:{self.masked_url}", buffer_seconds, backoff_initial, backoff_max,
                         publish, drain_seconds, resume=resume, probe_max=probe_max)

    @property
    def masked_url(self) -> str:
        """The publish URL with the stream key replaced by ``****`` (safe to log/show)."""
        return mask_url(self._url, self._secret)

    def _connect(self, encoder: AVEncoder) -> _RelayConnection:
        log.info("%s: connecting to %s", self.name, self.masked_url)
        spare, self._spare = self._spare, None
        if spare is not None and spare.poll() is not None:
            spare = None
        return _RelayConnection(encoder, self._url, self._secret, self.stall_seconds, self.connect_timeout, spare)

    def _standby(self) -> None:
        """While off air, keep one relay started and waiting: loading Python and PyAV took over a
        second on a busy machine, and a reconnect should not wait for it."""
        if self._spare is None or self._spare.poll() is not None:
            self._spare = spawn_relay()

    def _finish(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()
            spare.wait()

    def _probe(self) -> str:
        """A TCP connect to the ingest's host and port, closed at once: "" when it accepts."""
        try:
            with socket.create_connection((self._host, self._port), timeout=min(1.0, self.connect_timeout)):
                return ""
        except OSError as exc:
            return f"cannot reach {self._host}:{self._port} ({type(exc).__name__}: {exc.strerror or exc})"
