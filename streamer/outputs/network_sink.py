"""Shared machinery for network outputs: a non-blocking sink that muxes on its own thread.

The hub thread only clones a packet into a bounded buffer (``write`` never touches the network).
The sink's worker thread owns the connection: it connects, resumes on a video keyframe with
timestamps rebased to 0 for that connection, sends, and on any error closes, backs off
exponentially and reconnects. The buffer holds at most ``buffer_seconds`` of stream time; when it
is over, the oldest whole GOP is dropped so what remains still starts on a keyframe.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import av

from streamer.backoff import Backoff
from streamer.events import SinkChanged

from .encoder import AUDIO_INDEX, VIDEO_INDEX, AVEncoder, clone_packet, packet_pts

log = logging.getLogger("stagecast.outputs.network")

Publish = Callable[[object], None]
"""The show's EventBus.publish: link changes go out as SinkChanged (detail masked, never a secret)."""

CONNECTING, LIVE, RECONNECTING, CLOSED = "connecting", "live", "reconnecting", "closed"


def mask_url(url: str, secret: str | None = None) -> str:
    """Return ``url`` safe to log: the stream key (last path part / query / password) masked."""
    if secret:
        url = url.replace(secret, "****")
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":****@")
    path = parts.path
    if parts.scheme.startswith("rtmp") and path.count("/") >= 2:  # rtmp://host/app/<key>
        path = path.rsplit("/", 1)[0] + "/****"
    query = re.sub(r"(key|passphrase|streamid|token)=[^&]*", r"\1=****", parts.query, flags=re.I)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def ffmpeg_protocols(output: bool = True) -> set[str] | None:
    """Protocol names compiled into the FFmpeg that PyAV loaded, or None when it can't be asked.

    PyAV exposes no protocol list, so this calls ``avio_enum_protocols`` in the already-loaded
    libavformat (found through /proc/self/maps on Linux).
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "libavformat" in line}
        lib = ctypes.CDLL(next(p for p in sorted(paths) if p.startswith("/")))
    except (OSError, StopIteration):
        return None
    lib.avio_enum_protocols.restype = ctypes.c_char_p
    lib.avio_enum_protocols.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
    opaque = ctypes.c_void_p(None)
    names: set[str] = set()
    while (name := lib.avio_enum_protocols(ctypes.byref(opaque), 1 if output else 0)) is not None:
        names.add(name.decode())
    return names


class Connection(Protocol):
    """One live connection; created by :meth:`ThreadedMuxSink._connect` on the sink thread."""

    def send(self, packet: av.Packet) -> None:
        """Mux one packet (already cloned and rebased; ``stream_index`` is VIDEO/AUDIO_INDEX)."""

    def check(self) -> None:
        """Raise if the connection is known dead (called when idle and between packets)."""

    def ready(self) -> bool:
        """True once the far end accepted the stream (RTMP: publishing started)."""

    def close(self) -> None:
        """Tear down; must not block for long and must not raise."""


@dataclass
class LinkStatus:
    """What the show reports as Health: state, last error (masked), reconnects, counters."""

    state: str = ""
    error: str = ""
    reconnects: int = 0
    packets_sent: int = 0
    packets_dropped: int = 0
    live_since: float | None = None  # time.monotonic() of the last transition to live


class ThreadedMuxSink:
    """Base for outputs whose I/O may stall: buffer + worker thread + reconnect with backoff.

    Subclasses implement :meth:`_connect`. ``write`` is safe to call from the hub thread and only
    takes a short lock.
    """

    def __init__(
        self,
        name: str,
        buffer_seconds: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        publish: Publish | None = None,
        drain_seconds: float = 5.0,
    ) -> None:
        if buffer_seconds <= 0:
            raise ValueError("buffer_seconds must be > 0")
        self.name = name
        self.buffer_seconds = Fraction(buffer_seconds).limit_denominator(1000)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.drain_seconds = drain_seconds
        self.publish = publish
        self._encoder: AVEncoder | None = None
        self._buf: deque[av.Packet] = deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = LinkStatus()
        self._status_lock = threading.Lock()
        self._went_live = False

    # -- sink protocol (hub thread) ---------------------------------------------------------------
    def start(self, encoder: AVEncoder) -> None:
        """Start the worker thread; it connects while the hub keeps encoding."""
        self._encoder = encoder
        self._thread = threading.Thread(target=self._run, name=f"stagecast-sink-{self.name}", daemon=True)
        self._thread.start()

    def write(self, packet: av.Packet) -> None:
        """Buffer a clone of ``packet``; never blocks on I/O."""
        if self._thread is None:
            raise RuntimeError("start(encoder) must be called before write()")
        copy = clone_packet(packet)
        with self._cond:
            self._buf.append(copy)
            dropped = self._trim()
            self._cond.notify()
        if dropped:
            with self._status_lock:
                self._status.packets_dropped += dropped
            log.warning("%s: buffer over %.1fs; dropped the oldest GOP (%d packets)",
                        self.name, float(self.buffer_seconds), dropped)

    def close(self, timeout: float | None = None) -> None:
        """Send what is buffered (up to ``drain_seconds``), close the connection, join."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.drain_seconds + 10)
            if self._thread.is_alive():
                log.error("%s: worker did not stop in time", self.name)

    @property
    def status(self) -> LinkStatus:
        """A copy of the current link status (any thread)."""
        with self._status_lock:
            return LinkStatus(**vars(self._status))

    # -- subclass hooks ----------------------------------------------------------------------------
    def _connect(self, encoder: AVEncoder) -> Connection:
        raise NotImplementedError

    # -- buffer ------------------------------------------------------------------------------------
    def _trim(self) -> int:
        """Drop whole GOPs from the front while the buffer spans more than buffer_seconds."""
        dropped = 0
        while len(self._buf) > 1 and _t(self._buf[-1]) - _t(self._buf[0]) > self.buffer_seconds:
            self._buf.popleft()
            dropped += 1
            while self._buf and not _is_key(self._buf[0]):
                self._buf.popleft()
                dropped += 1
        return dropped

    def _next(self, timeout: float) -> av.Packet | None:
        with self._cond:
            if not self._buf and not self._stopping.is_set():
                self._cond.wait(timeout)
            return self._buf.popleft() if self._buf else None

    # -- worker ------------------------------------------------------------------------------------
    def _set_state(self, state: str, error: str = "") -> None:
        with self._status_lock:
            changed = state != self._status.state or error != self._status.error
            self._status.state = state
            if error:
                self._status.error = error
            if state == LIVE:
                self._status.live_since = time.monotonic()
            if state == RECONNECTING:
                self._status.reconnects += 1
        if changed:
            log.info("%s: %s%s", self.name, state, f" ({error})" if error else "")
            if self.publish is not None:
                self.publish(SinkChanged(self.name, state, error))

    def _run(self) -> None:
        assert self._encoder is not None
        backoff = Backoff(self.backoff_initial, self.backoff_max)  # doubling, no jitter
        first = True
        while not self._stopping.is_set():
            self._set_state(CONNECTING if first else RECONNECTING)
            first = False
            conn: Connection | None = None
            self._went_live = False
            try:
                conn = self._connect(self._encoder)
                self._pump(conn)
            except Exception as exc:
                self._set_state(self._status.state, f"{type(exc).__name__}: {exc}")
                log.warning("%s: connection failed: %s: %s", self.name, type(exc).__name__, exc)
            else:
                if self._stopping.is_set():
                    break
            finally:
                if conn is not None:
                    conn.close()
            if self._went_live:
                backoff.reset()  # a connection that worked starts the backoff again
            if self._stopping.wait(backoff.next_delay()):
                break
        self._set_state(CLOSED)

    def _pump(self, conn: Connection) -> None:
        """Resume on a keyframe, then send until stopped (returns) or an error (raises)."""
        preroll: deque[av.Packet] = deque(maxlen=4)
        v_off: int | None = None  # per-connection rebase, in each stream's own time base
        a_off: int | None = None
        deadline: float | None = None
        while True:
            if not self._went_live and conn.ready():
                self._went_live = True
                self._set_state(LIVE)
            if self._stopping.is_set():
                if not self._went_live:
                    return  # nobody is watching a stream that never started: nothing to drain
                deadline = deadline or time.monotonic() + self.drain_seconds
                with self._cond:
                    empty = not self._buf
                if (empty and self._went_live) or time.monotonic() > deadline:
                    return
            packet = self._next(0.25)
            if packet is None:
                conn.check()
                continue
            if v_off is None:
                if packet.stream_index == AUDIO_INDEX:
                    preroll.append(packet)
                    continue
                if not packet.is_keyframe:
                    continue
                start = _t(packet)
                v_off = packet_pts(packet)
                a_off = None
                for p in preroll:  # audio overlapping the keyframe: keeps the decoder primed
                    if _t(p) + Fraction(1024) * p.time_base > start:
                        a_off = a_off if a_off is not None else int(start / p.time_base)
                        p.pts = packet_pts(p) - a_off
                        p.dts = p.pts
                        conn.send(p)
                preroll.clear()
            if packet.stream_index == VIDEO_INDEX:
                packet.pts = packet_pts(packet) - v_off
                packet.dts = packet.dts - v_off if packet.dts is not None else packet.pts
            else:
                if a_off is None:
                    a_off = int(Fraction(v_off) * self._video_tb() / packet.time_base)
                packet.pts = packet_pts(packet) - a_off
                packet.dts = packet.pts
            conn.send(packet)
            with self._status_lock:
                self._status.packets_sent += 1

    def _video_tb(self) -> Fraction:
        assert self._encoder is not None
        return self._encoder.video_time_base


def _t(packet: av.Packet) -> Fraction:
    return (packet.pts or 0) * packet.time_base


def _is_key(packet: av.Packet) -> bool:
    return packet.stream_index == VIDEO_INDEX and packet.is_keyframe
