"""One thread per packet sink, so a sink that blocks or fails never stalls the encoder or the others.

The hub hands every packet to each runner without waiting. A runner whose sink falls behind drops
packets (and then waits for the next keyframe, so the output stays decodable); a sink that raises
is closed and started again after an exponential backoff, resuming on a keyframe. Status changes
are published as SinkChanged events.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from streamer.backoff import Backoff
from streamer.events import SinkChanged

from .encoder import VIDEO_INDEX, AVEncoder
from .sink import PacketSink

log = logging.getLogger("stagecast.outputs.runner")
_STOP = object()

Publish = Callable[[object], None]  # the show's EventBus.publish


@dataclass
class SinkStatus:
    """Health of one sink: ok, degraded (dropping or restarting) or closed, as its runner sees it.

    For a sink with a network link, :meth:`OutputHub.stats` fills in the link: ``state`` is then
    the link's (connecting, live, reconnecting, closed) while the runner is ok, ``dropped`` adds
    the packets the link dropped, and the reconnects and seconds off air are the link's.
    """

    name: str
    state: str = "ok"
    packets: int = 0
    error: str | None = None
    dropped: int = 0
    restarts: int = 0
    reconnects: int = 0
    off_air_s: float = 0.0  # seconds the link has been off air now (0.0 while live, or without a link)
    off_air_total_s: float = 0.0  # every second off air since the sink started
    link: dict[str, Any] | None = None  # the network link's own status (LinkStatus), where there is one


class SinkRunner:
    def __init__(self, sink: PacketSink, status: SinkStatus, encoder: AVEncoder, max_queue: int = 900,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 publish: Publish | None = None, stall_s: float = 2.0) -> None:
        self.sink = sink
        self.stall_s = stall_s
        self._busy_since: float | None = None
        self.status = status
        self.encoder = encoder
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.publish = publish
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._need_keyframe = False
        self._backoff = Backoff(backoff_initial, backoff_max)  # doubling, no jitter
        self._started = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{status.name}", daemon=True)
        self._thread.start()

    def put(self, packet: av.Packet) -> None:
        """Never blocks: a full queue means the sink is stuck, so the packet is dropped."""
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > self.stall_s:
            self._set("degraded", f"a write has been blocked for over {self.stall_s:.0f} s")
        try:
            self._queue.put_nowait(packet)
        except queue.Full:
            self.status.dropped += 1
            self._need_keyframe = True
            self._set("degraded", "sink is not keeping up; dropping packets until it does")

    def stop(self) -> None:
        """Ask the worker to finish the queued packets and close the sink (returns at once). A full
        queue means the sink is stuck: its backlog is dropped so the request gets through."""
        while True:
            try:
                self._queue.put_nowait(_STOP)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.status.dropped += 1
                except queue.Empty:
                    pass

    def join(self, timeout: float) -> bool:
        """Wait for the sink to close; False (logged) when it is still stuck: its daemon thread is abandoned."""
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            log.error("sink %s did not close in time; abandoning it", self.status.name)
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.stop()
        self.join(timeout)

    # -- worker ------------------------------------------------------------------------------------
    def _set(self, state: str, detail: str = "") -> None:
        if state == self.status.state and detail == (self.status.error or ""):
            return
        self.status.state = state
        self.status.error = detail or None
        if self.publish is not None:
            self.publish(SinkChanged(self.status.name, state, detail))

    def _start(self) -> bool:
        try:
            self.sink.start(self.encoder)
        except Exception as exc:
            self._failed("start", exc)
            return False
        self._started = True
        self._need_keyframe = True
        return True

    def _failed(self, method: str, exc: Exception) -> None:
        delay = self._backoff.next_delay()
        log.exception("sink %s failed in %s(); restarting in %.0f s", self.status.name, method, delay)
        self._set("degraded", f"{type(exc).__name__}: {exc}")
        if method != "start":
            try:
                self.sink.close()
            except Exception:
                log.debug("closing failed sink %s also failed", self.status.name, exc_info=True)
        self._started = False
        self._retry_at = time.monotonic() + delay
        self.status.restarts += 1

    def _run(self) -> None:
        self._retry_at = 0.0
        self._start()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if not self._started:
                if time.monotonic() < self._retry_at or not self._start():
                    self.status.dropped += 1
                    continue
            packet: av.Packet = item
            if self._need_keyframe:
                if not (packet.stream_index == VIDEO_INDEX and packet.is_keyframe):
                    continue
                self._need_keyframe = False
            self._busy_since = time.monotonic()
            try:
                self.sink.write(packet)
            except Exception as exc:
                self._failed("write", exc)
                continue
            finally:
                self._busy_since = None
            self.status.packets += 1
            if self.status.state != "ok" and self._queue.qsize() < self._queue.maxsize // 2:
                self._backoff.reset()
                self._set("ok")
        if self._started:
            try:
                self.sink.close()
                self._set("closed")
            except Exception as exc:
                log.exception("sink %s failed to close", self.status.name)
                self._set("degraded", f"{type(exc).__name__}: {exc}")
