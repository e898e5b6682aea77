"""Where a co-host's voice comes in: the panel's co-host page, any stream FFmpeg reads, a local device.

Every input yields 16 kHz mono float32 chunks on the event loop. Decoding and capture run on their
own threads; the hand-off is a bounded queue that drops the oldest audio when the listener falls
behind (a live conversation wants the newest words, not a backlog).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import numpy as np

from streamer.backoff import Backoff
from streamer.config import BrowserInputConfig, DeviceInputConfig, StreamInputConfig

log = logging.getLogger("stagecast.listen.inputs")

RATE = 16_000
QUEUE_S = 10.0  # audio held for a listener that fell behind; older audio is dropped


class InputError(RuntimeError):
    """An input cannot deliver audio (not audio, unreachable, no device); the message says why."""


class AudioInput(Protocol):
    name: str
    speaker: str
    kind: str  # browser | stream | device: the echo guard applies to the last two
    backoff: Backoff  # between attempts after the input failed

    def chunks(self) -> AsyncIterator[np.ndarray]:
        """16 kHz mono float32 chunks until the input ends; raises InputError when it fails."""
        ...

    def close(self) -> None: ...


class _Queue:
    """A drop-oldest hand-off from a capture thread (or the loop) to the listener on the loop."""

    def __init__(self, seconds: float = QUEUE_S) -> None:
        self._queue: asyncio.Queue[np.ndarray | BaseException | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._limit = int(seconds * RATE)
        self._held = 0
        self.dropped_s = 0.0

    def put(self, item: np.ndarray | BaseException | None) -> None:
        """From any thread."""
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:  # the loop closed: the show is over
            pass

    def _put(self, item: np.ndarray | BaseException | None) -> None:
        if isinstance(item, np.ndarray):
            self._held += item.shape[0]
            while self._held > self._limit and not self._queue.empty():
                old = self._queue.get_nowait()
                if isinstance(old, np.ndarray):
                    self._held -= old.shape[0]
                    self.dropped_s += old.shape[0] / RATE
        self._queue.put_nowait(item)

    async def items(self) -> AsyncIterator[np.ndarray]:
        """Chunks until the producer puts None (the end); an exception it puts is raised here."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self._held -= item.shape[0]
            yield item


class BrowserInput:
    """Fed by the panel's co-host WebSocket (`push`); ends only with the show."""

    kind = "browser"

    def __init__(self, config: BrowserInputConfig) -> None:
        self.name, self.speaker = config.name, config.speaker
        self.backoff = Backoff(1.0, 10.0)
        self._queue: _Queue | None = None
        self.received_s = 0.0

    def push(self, pcm: np.ndarray) -> None:
        if self._queue is not None:
            self.received_s += pcm.shape[0] / RATE
            self._queue.put(pcm)

    async def chunks(self) -> AsyncIterator[np.ndarray]:
        self._queue = _Queue()
        async for chunk in self._queue.items():
            yield chunk

    def close(self) -> None:
        if self._queue is not None:
            self._queue.put(None)


class StreamInput:
    """Any URL or file FFmpeg reads, decoded and resampled with PyAV on a thread of its own."""

    kind = "stream"

    def __init__(self, config: StreamInputConfig, open_timeout_s: float = 5.0, read_timeout_s: float = 3.0) -> None:
        self.config = config
        self.name, self.speaker = config.name, config.speaker
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self._stop = threading.Event()
        self.backoff = Backoff.from_config(config.backoff)

    async def chunks(self) -> AsyncIterator[np.ndarray]:
        queue = _Queue()
        self._stop.clear()
        thread = threading.Thread(target=self._read, args=(queue,), name=f"listen-{self.name}", daemon=True)
        thread.start()
        try:
            async for chunk in queue.items():
                yield chunk
        finally:
            self._stop.set()

    def close(self) -> None:
        self._stop.set()

    def _read(self, queue: _Queue) -> None:
        try:
            while not self._stop.is_set():
                self._read_once(queue)
                if not self.config.loop:
                    break
            queue.put(None)
        except InputError as exc:
            queue.put(exc)
        except Exception as exc:  # PyAV's errors name the URL and the reason
            queue.put(InputError(f"{self.name}: {type(exc).__name__}: {exc}"))

    def _read_once(self, queue: _Queue) -> None:
        import av

        container = av.open(self.config.url, format=self.config.format,
                            timeout=(self.open_timeout_s, self.read_timeout_s))
        try:
            if not container.streams.audio:
                raise InputError(f"{self.name}: {self.config.url} has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            realtime = self.config.realtime and "://" not in self.config.url
            started, delivered = time.monotonic(), 0.0
            self.backoff.reset()
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                for out in resampler.resample(frame):
                    pcm = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    queue.put(pcm)
                    delivered += pcm.shape[0] / RATE
                if realtime:  # a file plays at its own pace, as a live source would deliver it
                    ahead = delivered - (time.monotonic() - started)
                    if ahead > 0.05:
                        self._stop.wait(ahead)
        finally:
            container.close()


class DeviceInput:
    """A local capture device through sounddevice (`pip install 'stagecast[mic]'`)."""

    kind = "device"

    def __init__(self, config: DeviceInputConfig) -> None:
        self.config = config
        self.name, self.speaker = config.name, config.speaker
        self.backoff = Backoff(1.0, 30.0)  # a missing device or library does not come back by itself soon
        self._stream: Any = None

    async def chunks(self) -> AsyncIterator[np.ndarray]:
        try:
            import sounddevice as sd
        except ImportError as exc:
            raise InputError(f"{self.name}: the device input needs sounddevice and PortAudio: "
                             f"pip install 'stagecast[mic]' ({exc})") from None
        queue = _Queue()

        def callback(data: np.ndarray, frames: int, when: Any, status: Any) -> None:
            queue.put(data[:, 0].astype(np.float32, copy=True))

        try:
            self._stream = sd.InputStream(device=self.config.device, channels=1, samplerate=RATE, dtype="float32",
                                          blocksize=RATE // 50, callback=callback)
            self._stream.start()
        except Exception as exc:
            raise InputError(f"{self.name}: cannot open the capture device {self.config.device!r}: {exc}") from None
        try:
            async for chunk in queue.items():
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()


def make_input(config: BrowserInputConfig | StreamInputConfig | DeviceInputConfig) -> AudioInput:
    if isinstance(config, BrowserInputConfig):
        return BrowserInput(config)
    if isinstance(config, StreamInputConfig):
        return StreamInput(config)
    return DeviceInput(config)
