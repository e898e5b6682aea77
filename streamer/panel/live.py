"""Live data for the panel and overlays: captions, emotions, chat, status and preview frames.

The frame hook runs on the frame-loop thread every frame; it only compares a few values with the
previous frame and, when something changed, hands them to the event loop with
`call_soon_threadsafe`. JPEG previews are encoded on their own thread, a few per second, and only
while someone watches. Each WebSocket client has a bounded queue: a slow client loses messages
(counted), never slows the show.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from engine.state import EMOTIONS, IDX
from engine.timeline import FrameInputs
from streamer.events import ChatMessage, ModerationDecision
from streamer.panel.auth import Principal
from streamer.panel.control import ShowControl, chat_view

if TYPE_CHECKING:
    from streamer.config import PanelConfig
    from streamer.show import Show

log = logging.getLogger("stagecast.panel")

TOPICS = frozenset({"status", "caption", "emotion", "chat", "audit", "preview"})
_EMO_START = IDX[EMOTIONS[0]]
EMOTION_STEP = 0.05  # emotion changes smaller than this are not sent


class Client:
    """One authenticated WebSocket: what it listens to and its outgoing queue."""

    def __init__(self, principal: Principal, topics: set[str], size: int = 256) -> None:
        self.principal = principal
        self.topics = topics
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(size)
        self.preview_pending = False
        self.dropped = 0
        self.closed = asyncio.Event()
        self.close_code = 1000

    def offer(self, message: str | bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1


def encode_jpeg(image: np.ndarray, width: int, quality: int) -> bytes:
    """[H, W, 3] uint8 -> JPEG bytes no wider than `width` (runs on the encoder thread)."""
    pic = Image.fromarray(image)
    if pic.width > width:
        pic = pic.resize((width, max(2, round(pic.height * width / pic.width))), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    pic.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class LiveFeed:
    def __init__(self, show: Show, control: ShowControl, settings: PanelConfig) -> None:
        self.show = show
        self.control = control
        self.settings = settings
        self.clients: set[Client] = set()
        self.word: tuple[int, int] | None = None  # (speech id, word index) being heard
        self.speaking = False
        self.emotions: list[float] = [0.0] * len(EMOTIONS)
        self.preview_wanted = False  # read by the frame thread
        self.preview_every = max(1, round(show.timebase.fps / settings.preview_fps))
        self.previews_sent = 0
        self.last_preview_ms = 0.0
        self._frame_key: tuple[Any, ...] | None = None
        self._emo_key: tuple[int, ...] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-jpeg")
        self._encoding = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._status_task: asyncio.Task[None] | None = None
        self._hook_errors = 0
        self.extra_status: dict[str, Any] = {}

    # ----- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.show.loop.hooks.append(self.frame_hook)
        self._status_task = asyncio.create_task(self._status_ticker(), name="panel-status")

    async def close(self) -> None:
        try:
            self.show.loop.hooks.remove(self.frame_hook)
        except ValueError:
            pass
        tasks = [t for t in (self._status_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in list(self.clients):
            client.close_code = 1001
            client.closed.set()
        self._encoder.shutdown(wait=False, cancel_futures=True)

    # ----- frame thread ---------------------------------------------------------------------------
    def frame_hook(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        """Called on the frame-loop thread after every frame: compare, and hand over only changes."""
        try:
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            word = inputs.word
            key = (word.speech_id, word.index) if word is not None else None
            frame_key = (key, inputs.speaking)
            if frame_key != self._frame_key:
                self._frame_key = frame_key
                loop.call_soon_threadsafe(self._on_word, n, key, inputs.speaking)
            emotions = state[_EMO_START:_EMO_START + len(EMOTIONS)].tolist()
            emo_key = tuple(round(e / EMOTION_STEP) for e in emotions)
            if emo_key != self._emo_key:
                self._emo_key = emo_key
                loop.call_soon_threadsafe(self._on_emotion, n, emotions)
            if self.preview_wanted and n % self.preview_every == 0:
                loop.call_soon_threadsafe(self._on_preview_due)
        except RuntimeError:  # the loop closed between the check and the call: the show is ending
            pass
        except Exception:  # never let the panel break the stream
            self._hook_errors += 1
            if self._hook_errors == 1:
                log.exception("panel frame hook failed; it keeps running")

    # ----- event loop: fan-out ---------------------------------------------------------------------
    def broadcast(self, topic: str, message: dict[str, Any], min_role: str = "viewer") -> None:
        data: str | None = None
        for client in self.clients:
            if topic in client.topics and client.principal.allows(min_role):
                data = data or json.dumps(message, ensure_ascii=False)
                client.offer(data)

    def _on_word(self, n: int, key: tuple[int, int] | None, speaking: bool) -> None:
        self.word, self.speaking = key, speaking
        message: dict[str, Any] = {"type": "caption", "n": n, "speaking": speaking, "speech_id": None,
                                   "index": None, "words": [], "language": None}
        if key is not None:
            found = self.control.words_of(key[0])
            if found is not None:
                message.update(speech_id=key[0], index=key[1], words=found[0], language=found[1])
        self.broadcast("caption", message)

    def _on_emotion(self, n: int, emotions: list[float]) -> None:
        self.emotions = emotions
        self.broadcast("emotion", self.emotion_message(n))

    def emotion_message(self, n: int | None = None) -> dict[str, Any]:
        top = max(range(len(EMOTIONS)), key=lambda i: self.emotions[i])
        return {
            "type": "emotion",
            "n": n,
            "values": {name: round(v, 2) for name, v in zip(EMOTIONS, self.emotions, strict=True)},
            "dominant": EMOTIONS[top] if self.emotions[top] >= 0.1 else None,
            "speaking": self.speaking,
            "paused": self.show.director.paused,
        }

    def on_chat(self, message: ChatMessage, decision: ModerationDecision) -> None:
        self.broadcast("chat", {"type": "chat", "item": chat_view(message, decision)})

    def on_audit(self, entry: dict[str, Any]) -> None:
        self.broadcast("audit", {"type": "audit", "entry": entry}, min_role="mod")
        self.broadcast("emotion", self.emotion_message())  # pause/resume shows on the badge at once

    # ----- previews ----------------------------------------------------------------------------------
    def _update_preview_wanted(self) -> None:
        self.preview_wanted = any("preview" in c.topics for c in self.clients)

    def _on_preview_due(self) -> None:
        latest = self.show.loop.latest
        if self._encoding or latest is None:
            return
        self._encoding = True
        task = asyncio.create_task(self._send_preview(latest[1]), name="panel-preview")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def snapshot_jpeg(self) -> bytes | None:
        latest = self.show.loop.latest
        if latest is None:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, encode_jpeg, latest[1], self.settings.preview_width,
                                          self.settings.preview_quality)

    async def _send_preview(self, image: np.ndarray) -> None:
        try:
            t0 = time.perf_counter()
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(self._encoder, encode_jpeg, image, self.settings.preview_width,
                                              self.settings.preview_quality)
            self.last_preview_ms = (time.perf_counter() - t0) * 1000
            for client in self.clients:
                if "preview" in client.topics and not client.preview_pending:
                    client.preview_pending = True  # at most one frame waiting per client
                    client.offer(data)
            self.previews_sent += 1
        finally:
            self._encoding = False

    # ----- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        extra = {
            "panel": {
                "clients": len(self.clients),
                "previews_sent": self.previews_sent,
                "preview_encode_ms": round(self.last_preview_ms, 2),
                "dropped_messages": sum(c.dropped for c in self.clients),
                **self.extra_status,
            }
        }
        return self.control.status(self.word, self.emotions, extra)

    async def _status_ticker(self) -> None:
        period = 1.0 / self.settings.status_hz
        while True:
            await asyncio.sleep(period)
            if any("status" in c.topics for c in self.clients):
                self.broadcast("status", self.status())

    # ----- clients --------------------------------------------------------------------------------------
    def add(self, client: Client) -> None:
        self.clients.add(client)
        self._update_preview_wanted()

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        self._update_preview_wanted()

    def set_topics(self, client: Client, topics: set[str]) -> None:
        client.topics = topics & TOPICS
        self._update_preview_wanted()
