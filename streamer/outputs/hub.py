"""Encode once on a worker thread and fan the packets out to every output sink.

The render loop must never wait on x264 or on a slow disk/network, except through the bounded
queue: when it is full ``submit`` blocks, which is the backpressure the caller measures as
lateness. A failing sink is logged and disabled; the show goes on with the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import av
import numpy as np

from engine.lifecycle import Lifecycle

from .encoder import AVEncoder, EncoderSettings
from .sink import FrameSink, LinkedSink, PacketSink
from .sink_runner import Publish, SinkRunner, SinkStatus

log = logging.getLogger("stagecast.outputs.hub")

_STOP = object()


@dataclass
class HubStats:
    """Snapshot for dashboards / lateness accounting."""

    frames_submitted: int
    frames_encoded: int
    encode_errors: int
    encode_ms_ema: float
    encode_ms_median: float
    queue_depth: int
    queue_capacity: int
    sinks: dict[str, SinkStatus] = field(default_factory=dict)


class OutputHub(Lifecycle):
    """Owns one :class:`AVEncoder` on its own thread and feeds its packets to ``sinks``.

    ``frame_sinks`` get each raw RGB frame (same thread, same disable-on-error policy) so a
    virtual camera needs no decoder and no second encode.
    """

    def __init__(
        self,
        settings: EncoderSettings,
        sinks: Sequence[PacketSink],
        queue_frames: int = 8,
        copy_frames: bool = True,
        frame_sinks: Sequence[FrameSink] = (),
        publish: Publish | None = None,
        sink_close_s: float = 10.0,
    ) -> None:
        # Build the encoder here so bad settings fail in the caller, not silently on the thread.
        self.settings = settings
        self.sink_close_s = sink_close_s  # on close, how long the sinks together may take to finish
        self.encoder = AVEncoder(settings)
        self._copy = copy_frames
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_frames))
        names: set[str] = set()

        def status(i: int, name: str) -> SinkStatus:  # names are unique across both kinds of sink
            if name in names:
                name = f"{name}#{i}"
            names.add(name)
            return SinkStatus(name)

        self._sinks: list[tuple[PacketSink, SinkStatus]] = [(s, status(i, s.name)) for i, s in enumerate(sinks)]
        self._frame_sinks: list[tuple[FrameSink, SinkStatus]] = [
            (s, status(i, s.name)) for i, s in enumerate(frame_sinks)
        ]
        self._publish = publish
        self._runners: list[SinkRunner] = []
        self._lock = threading.Lock()
        self._closed = False
        self._submitted = 0
        self._encoded = 0
        self._errors = 0
        self._ema_ms = 0.0
        self._recent_ms: deque[float] = deque(maxlen=120)
        self._thread = threading.Thread(target=self._run, name="stagecast-output-hub", daemon=True)

    def open(self) -> None:
        """Start the encoder thread (the sinks start on their own threads with the first packet)."""
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()

    async def start(self) -> None:
        self.open()

    async def aclose(self) -> None:
        """Drain, flush and close every sink, off the event loop; a sink still stuck after
        `sink_close_s` is abandoned, so a stopping show never waits on a dead network."""
        await asyncio.to_thread(self.close, self.sink_close_s + 1.0)

    # -- caller side -----------------------------------------------------------------------------
    def submit(self, n: int, rgb: np.ndarray, audio: np.ndarray) -> None:
        """Queue frame ``n`` for encoding; blocks while the queue is full (backpressure)."""
        if self._closed:
            raise RuntimeError("OutputHub is closed")
        if self._thread.ident is None:
            raise RuntimeError("OutputHub is not open: call open() (or use it as a context manager) first")
        if self._copy:
            rgb = np.array(rgb, copy=True)
            audio = np.array(audio, dtype=np.float32, copy=True)
        self._queue.put((n, rgb, audio))
        self._submitted += 1

    def close(self, timeout: float | None = None) -> None:
        """Drain queued frames, flush the encoder, close every sink and join the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.ident is None:  # never opened: nothing to drain
            return
        if self._thread.is_alive():
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("output hub: worker did not finish within %.1fs", timeout or 0.0)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> HubStats:
        """Cheap snapshot; safe to call from any thread."""
        recent = list(self._recent_ms)
        return HubStats(
            frames_submitted=self._submitted,
            frames_encoded=self._encoded,
            encode_errors=self._errors,
            encode_ms_ema=self._ema_ms,
            encode_ms_median=statistics.median(recent) if recent else 0.0,
            queue_depth=self._queue.qsize(),
            queue_capacity=self._queue.maxsize,
            sinks={st.name: _merged(st, sink) for sink, st in [*self._sinks, *self._frame_sinks]},
        )

    # -- worker side -----------------------------------------------------------------------------
    def _run(self) -> None:
        # each packet sink gets its own thread: a slow or failing one never holds up the others
        self._runners = [SinkRunner(sink, st, self.encoder, publish=self._publish) for sink, st in self._sinks]
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                n, rgb, audio = item
                for sink, st in self._frame_sinks:
                    if st.state == "ok" and self._call(sink, st, "write_frame", n, rgb):
                        st.packets += 1  # frames, for a frame sink
                t0 = time.perf_counter()
                try:
                    packets = self.encoder.encode(n, rgb, audio)
                except Exception:
                    self._errors += 1
                    log.exception("output hub: encoding frame %d failed; frame dropped", n)
                    continue
                ms = (time.perf_counter() - t0) * 1000.0
                self._recent_ms.append(ms)
                self._ema_ms = ms if self._encoded == 0 else 0.9 * self._ema_ms + 0.1 * ms
                self._encoded += 1
                self._fan_out(packets)
            try:
                self._fan_out(self.encoder.flush())
            except Exception:
                log.exception("output hub: encoder flush failed")
        finally:
            for runner in self._runners:  # every sink closes at once; one stuck sink delays no other
                runner.stop()
            deadline = time.monotonic() + self.sink_close_s
            for runner in self._runners:
                runner.join(deadline - time.monotonic())
            for sink, st in self._frame_sinks:
                if st.state == "ok" and self._call(sink, st, "close"):
                    st.state = "closed"
            self.encoder.close()

    def _fan_out(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            for runner in self._runners:
                runner.put(packet)

    def _call(self, sink: FrameSink, st: SinkStatus, method: str, *args: Any) -> bool:
        """Invoke a sink method; on error log it, disable the sink and report False."""
        try:
            getattr(sink, method)(*args)
            return True
        except Exception as exc:
            st.state = "disabled"
            st.error = f"{type(exc).__name__}: {exc}"
            log.exception("output hub: sink %r failed in %s(); disabled", st.name, method)
            if method != "close":
                try:
                    sink.close()
                except Exception:
                    log.debug("output hub: closing failed sink %r also failed", st.name, exc_info=True)
            return False


def _merged(st: SinkStatus, sink: object) -> SinkStatus:
    """A copy of the runner's view of ``sink``, with its network link where it has one: whether
    viewers get the stream is the link's to say, not the runner's (which only hands packets on)."""
    out = SinkStatus(st.name, st.state, st.packets, st.error, st.dropped, st.restarts)
    if not isinstance(sink, LinkedSink):
        return out
    link = sink.status
    if st.state == "ok":
        out.state = link.state or "connecting"
        out.error = link.error or None
    out.dropped += link.packets_dropped
    out.reconnects = link.reconnects
    out.off_air_s = round(link.off_air_s, 2)
    out.off_air_total_s = round(link.off_air_total_s, 2)
    out.link = dataclasses.asdict(link)
    return out
