"""Shared machinery for network outputs: a non-blocking sink that muxes on its own thread.

The hub thread only clones a packet into a bounded buffer (``write`` never touches the network).
The sink's worker thread owns the connection. While the server is away it probes it cheaply (a
TCP connect, :meth:`ThreadedMuxSink._probe`) at a short, capped interval, so the stream is back
within about a second of the server accepting again; the long exponential backoff is kept for a
server that accepts but refuses the stream. Each connection starts on a video keyframe with
timestamps rebased to 0.

Resuming (``resume``): ``"live"`` (the default) drops what the outage buffered and starts each
connection on a fresh keyframe requested from the encoder, so viewers come back at the live edge;
``"buffered"`` sends what is buffered (at most ``buffer_seconds``, oldest whole GOP dropped
first), so viewers stay behind live by the length of the outage for the rest of the show.
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
RESUME_LIVE, RESUME_BUFFERED = "live", "buffered"
STABLE_S = 2.0  # a link live this long that drops is an outage (probe at once), not a flapping server


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
    """A network sink's link as status, panel and metrics report it (errors masked, never a secret)."""

    state: str = ""
    error: str = ""  # why the link is not live now; "" while live
    last_error: str = ""  # the last failure seen, kept after the link came back
    reconnects: int = 0  # times the link came back live after it was lost
    attempts: int = 0  # connection attempts, the first included
    packets_sent: int = 0
    packets_dropped: int = 0  # packets viewers never got: an outage, a full buffer
    live_since: float | None = None  # time.monotonic() of the last transition to live
    off_air_s: float = 0.0  # seconds since the link stopped being live (0.0 while live)
    off_air_total_s: float = 0.0  # every second the link was not live, since the sink started


_CLOSED_GATE, _AWAIT_KEY, _OPEN = 0, 1, 2  # what `write` does with a packet (see ThreadedMuxSink._admit)
_PREROLL = 4  # audio packets kept before a keyframe: those overlapping it prime the decoder


class ThreadedMuxSink:
    """Base for outputs whose I/O may stall: buffer + worker thread + probe, reconnect, backoff.

    Subclasses implement :meth:`_connect` and, where the server can be probed, :meth:`_probe`.
    ``write`` is safe to call from the hub thread and only takes a short lock.
    """

    def __init__(
        self,
        name: str,
        buffer_seconds: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        publish: Publish | None = None,
        drain_seconds: float = 5.0,
        resume: str = RESUME_LIVE,
        probe_initial: float = 0.1,
        probe_max: float = 0.5,
    ) -> None:
        if buffer_seconds <= 0:
            raise ValueError("buffer_seconds must be > 0")
        if resume not in (RESUME_LIVE, RESUME_BUFFERED):
            raise ValueError(f"resume must be {RESUME_LIVE!r} or {RESUME_BUFFERED!r}, got {resume!r}")
        self.name = name
        self.buffer_seconds = Fraction(buffer_seconds).limit_denominator(1000)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.probe_initial = probe_initial
        self.probe_max = probe_max
        self.drain_seconds = drain_seconds
        self.resume = resume
        self.publish = publish
        self._encoder: AVEncoder | None = None
        self._buf: deque[av.Packet] = deque()
        self._gate = _OPEN if resume == RESUME_BUFFERED else _CLOSED_GATE
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = LinkStatus()
        self._status_lock = threading.Lock()
        self._off_since: float | None = None  # monotonic start of the current time off air
        self._went_live = False

    # -- sink protocol (hub thread) ---------------------------------------------------------------
    def start(self, encoder: AVEncoder) -> None:
        """Start the worker thread; it connects while the hub keeps encoding."""
        self._encoder = encoder
        with self._status_lock:
            self._off_since = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"stagecast-sink-{self.name}", daemon=True)
        self._thread.start()

    def write(self, packet: av.Packet) -> None:
        """Buffer a clone of ``packet`` (or drop it while off air in live mode); never blocks on I/O."""
        if self._thread is None:
            raise RuntimeError("start(encoder) must be called before write()")
        copy = clone_packet(packet)
        with self._cond:
            trimmed, dropped = self._admit(copy)
            self._cond.notify()
        if trimmed or dropped:
            with self._status_lock:
                self._status.packets_dropped += trimmed + dropped
        if trimmed:
            log.warning("%s: buffer over %.1fs; dropped the oldest GOP (%d packets)",
                        self.name, float(self.buffer_seconds), trimmed)

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
        """A copy of the current link status, seconds off air up to now (any thread)."""
        with self._status_lock:
            status = LinkStatus(**vars(self._status))
            if self._off_since is not None:
                status.off_air_s = time.monotonic() - self._off_since
                status.off_air_total_s += status.off_air_s
        return status

    # -- subclass hooks ----------------------------------------------------------------------------
    def _connect(self, encoder: AVEncoder) -> Connection:
        raise NotImplementedError

    def _standby(self) -> None:
        """Prepare what the next connection needs while the server is away (e.g. start a process)."""

    def _finish(self) -> None:
        """Release what :meth:`_standby` prepared; called once when the worker ends."""

    def _probe(self) -> str:
        """Why the server cannot take a connection now ("" when it can). Cheap: called every
        fraction of a second while the server is away. A connectionless output has nothing to ask."""
        return ""

    # -- buffer ------------------------------------------------------------------------------------
    def _admit(self, packet: av.Packet) -> tuple[int, int]:
        """Take one packet under ``_cond``: (packets trimmed off a full buffer, packets dropped off air).

        The gate is open while a connection sends. Off air in live mode it is closed: video is
        dropped and only the newest few audio packets are kept, for the next start. Once a new
        connection is up it waits for a keyframe: the first one opens it.
        """
        if self._gate == _OPEN:
            self._buf.append(packet)
            return self._trim(), 0
        if self._gate == _AWAIT_KEY and _is_key(packet):
            self._buf.append(packet)
            self._gate = _OPEN
            return 0, 0
        if packet.stream_index != AUDIO_INDEX:
            return 0, 1
        self._buf.append(packet)
        if len(self._buf) > _PREROLL:
            self._buf.popleft()
            return 0, 1
        return 0, 0

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

    def _set_gate(self, gate: int) -> None:
        """Live mode only: closing drops what is buffered (it is the past by the time the link is
        back); awaiting a key asks the encoder for one, so the next connection starts on it."""
        if self.resume != RESUME_LIVE:
            return
        dropped = 0
        with self._cond:
            self._gate = gate
            if gate == _CLOSED_GATE:
                audio = [p for p in self._buf if p.stream_index == AUDIO_INDEX][-_PREROLL:]
                dropped = len(self._buf) - len(audio)
                self._buf = deque(audio)
        if dropped:
            with self._status_lock:
                self._status.packets_dropped += dropped
        if gate == _AWAIT_KEY and self._encoder is not None:
            self._encoder.request_keyframe()

    def _next(self, timeout: float) -> av.Packet | None:
        with self._cond:
            if (not self._buf or self._gate != _OPEN) and not self._stopping.is_set():
                self._cond.wait(timeout)
            if self._gate != _OPEN:
                return None  # only preroll audio waits here until a keyframe opens the gate
            return self._buf.popleft() if self._buf else None

    # -- worker ------------------------------------------------------------------------------------
    def _set_state(self, state: str, error: str = "") -> None:
        """Record the link state and why it is not live; a change is logged and published.

        The log line names the new state, with the reason in parentheses when it is not live.
        """
        now = time.monotonic()
        with self._status_lock:
            st = self._status
            changed = state != st.state or error != st.error
            entered = state != st.state
            if state == LIVE:
                error = ""
                if self._off_since is not None:
                    st.off_air_total_s += now - self._off_since
                    self._off_since = None
                st.live_since = now
                if st.state == RECONNECTING:
                    st.reconnects += 1
            elif state == CLOSED:
                if self._off_since is not None:
                    st.off_air_total_s += now - self._off_since
                    self._off_since = None
            elif self._off_since is None:
                self._off_since = now
            st.state = state
            st.error = error
            if error:
                st.last_error = error
        if entered:
            log.log(logging.WARNING if error else logging.INFO, "%s: %s%s", self.name, state,
                    f" ({error})" if error else "")
        elif changed and error:
            log.warning("%s: still %s (%s)", self.name, state, error)
        if changed and self.publish is not None:
            self.publish(SinkChanged(self.name, state, error))

    def _wait_for_server(self, state: str) -> bool:
        """Probe until the server accepts (True) or the sink stops (False)."""
        probe = Backoff(self.probe_initial, self.probe_max)
        try:
            self._standby()
        except Exception:  # only a head start: the connection prepares itself when this fails
            log.warning("%s: could not prepare the next connection", self.name, exc_info=True)
        while not self._stopping.is_set():
            why = self._probe()
            if not why:
                return True
            self._set_state(state, why)
            if self._stopping.wait(probe.next_delay()):
                return False
        return False

    def _run(self) -> None:
        assert self._encoder is not None
        refused = Backoff(self.backoff_initial, self.backoff_max)  # doubling, no jitter
        state = CONNECTING
        self._set_state(state)
        while not self._stopping.is_set():
            if not self._wait_for_server(state):
                break
            conn: Connection | None = None
            self._went_live = False
            error = ""
            with self._status_lock:
                self._status.attempts += 1
            try:
                conn = self._connect(self._encoder)
                self._set_gate(_AWAIT_KEY)
                self._pump(conn)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                self._set_gate(_CLOSED_GATE)
                if conn is not None:
                    conn.close()
            if self._stopping.is_set():
                break
            if self._went_live:
                state = RECONNECTING
                self._set_state(state, f"link lost: {error or 'the connection ended'}")
                live_since = self._status.live_since or 0.0
                if time.monotonic() - live_since >= STABLE_S:  # a working link was lost: probe again at once
                    refused.reset()
                    continue
                # live for a moment only: a server that takes the stream and drops it gets the backoff,
                # so a link that fails at once does not reconnect (and ask for keyframes) in a tight loop
                if self._stopping.wait(refused.next_delay()):
                    break
                continue
            why = self._probe()
            if why:  # the server went away again: back to probing it
                self._set_state(state, why)
                continue
            delay = refused.next_delay()  # the server is up but did not take the stream
            self._set_state(state, f"{error or 'not published'}; next try in {delay:.1f} s")
            if self._stopping.wait(delay):
                break
        try:
            self._finish()
        except Exception:
            log.warning("%s: releasing the prepared connection failed", self.name, exc_info=True)
        self._set_state(CLOSED)

    def _pump(self, conn: Connection) -> None:
        """Resume on a keyframe, then send until stopped (returns) or an error (raises)."""
        preroll: deque[av.Packet] = deque(maxlen=_PREROLL)
        v_off: int | None = None  # per-connection rebase, in each stream's own time base
        a_off: int | None = None
        deadline: float | None = None
        unconfirmed = 0  # packets sent before the server took the stream: counted once it has
        while True:
            if not self._went_live and conn.ready():
                self._went_live = True
                with self._status_lock:
                    self._status.packets_sent += unconfirmed
                self._set_state(LIVE)
            if self._stopping.is_set():
                if not self._went_live:
                    return  # nobody is watching a stream that never started: nothing to drain
                deadline = deadline or time.monotonic() + self.drain_seconds
                with self._cond:
                    empty = not self._buf or self._gate != _OPEN
                if empty or time.monotonic() > deadline:
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
            if not self._went_live:
                unconfirmed += 1
                continue
            with self._status_lock:
                self._status.packets_sent += 1

    def _video_tb(self) -> Fraction:
        assert self._encoder is not None
        return self._encoder.video_time_base


def _t(packet: av.Packet) -> Fraction:
    return (packet.pts or 0) * packet.time_base


def _is_key(packet: av.Packet) -> bool:
    return packet.stream_index == VIDEO_INDEX and packet.is_keyframe
