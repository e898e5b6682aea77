"""Live data for the panel and overlays: captions, emotions, chat, status and preview frames.

Everything comes from the show's event stream and its control surface: caption, emotion, chat,
pause and listening events are turned into WebSocket messages on the event loop; listening events
for an input also go to the co-host page streaming into it. JPEG previews are encoded on
their own thread, a few per second, and only while someone watches. Each WebSocket client has a
bounded queue: a slow client loses messages (counted), never slows the show.
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
from PIL import Image

from engine.state import EMOTIONS
from streamer.bus import Subscription
from streamer.control import ShowControl, ShowStatus
from streamer.events import (
    BargeIn,
    CaptionChanged,
    ChatDecided,
    EmotionChanged,
    Heard,
    ListeningChanged,
    ListeningSwitched,
    PauseChanged,
)
from streamer.panel.auth import Principal
from streamer.panel.views import chat_json, links_json, listen_json, listening_json, status_json

if TYPE_CHECKING:
    from streamer.config import PanelConfig

log = logging.getLogger("stagecast.panel")

TOPICS = frozenset({"status", "caption", "emotion", "chat", "audit", "preview", "listen", "links"})


class Client:
    """One authenticated WebSocket: what it listens to and its outgoing queue. A co-host page's audio
    socket is a client too, of one input (`input`), that gets that input's listening events."""

    def __init__(self, principal: Principal, topics: set[str], size: int = 256, input: str | None = None) -> None:
        self.principal = principal
        self.topics = topics
        self.input = input
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(size)
        self.preview_pending = False
        self.dropped = 0
        self.closed = asyncio.Event()
        self.close_code = 1000
        self.detail = ""  # why the server closes it (sent as an error message first)

    def close(self, code: int, detail: str) -> None:
        """Ask the socket's handler to close with `code` (the first reason given wins)."""
        if not self.closed.is_set():
            self.close_code, self.detail = code, detail
            self.closed.set()

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
    def __init__(self, control: ShowControl, settings: PanelConfig) -> None:
        self.control = control
        self.settings = settings
        self.clients: set[Client] = set()
        self.word: tuple[int, int] | None = None  # (speech id, word index) being heard
        self.speaking = False
        self.paused = False
        self.emotions: list[float] = [0.0] * len(EMOTIONS)
        self.previews_sent = 0
        self.last_preview_ms = 0.0
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-jpeg")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._preview_wanted = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self.extra_status: dict[str, Any] = {}
        self.audio_clients: dict[str, Client] = {}  # input -> the co-host page streaming into it
        self.inputs: dict[str, dict[str, Any]] = {}  # input -> speaker and state, from the listening events

    # ----- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.paused = self.control.status().paused
        on = self.control.subscribe
        self._subscriptions = [on(self._on_caption, CaptionChanged), on(self._on_emotion, EmotionChanged),
                               on(self._on_chat, ChatDecided), on(self._on_pause, PauseChanged),
                               on(self._on_listen, Heard, ListeningChanged, ListeningSwitched, BargeIn)]
        for coro, name in ((self._status_ticker(), "panel-status"), (self._preview_ticker(), "panel-preview")):
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)

    async def close(self) -> None:
        for sub in self._subscriptions:
            sub.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in [*self.clients, *self.audio_clients.values()]:
            client.close(1001, "the panel is closing")
        self._encoder.shutdown(wait=False, cancel_futures=True)

    # ----- event loop: fan-out ---------------------------------------------------------------------
    def broadcast(self, topic: str, message: dict[str, Any], min_role: str = "viewer") -> None:
        data: str | None = None
        for client in self.clients:
            if topic in client.topics and client.principal.allows(min_role):
                data = data or json.dumps(message, ensure_ascii=False)
                client.offer(data)

    def _on_caption(self, event: CaptionChanged) -> None:
        key = (event.speech_id, event.index) if event.speech_id is not None and event.index is not None else None
        self.word, self.speaking = key, event.speaking
        self.broadcast("caption", {"type": "caption", "n": event.n, "speaking": event.speaking,
                                   "speech_id": event.speech_id, "index": event.index, "words": list(event.words),
                                   "language": event.language, "spaces": list(event.spaces)})

    def _on_emotion(self, event: EmotionChanged) -> None:
        self.emotions = list(event.values)
        self.broadcast("emotion", self.emotion_message(event.n))

    def _on_pause(self, event: PauseChanged) -> None:
        self.paused = event.paused
        self.broadcast("emotion", self.emotion_message())  # pause/resume shows on the badge at once

    def _on_chat(self, event: ChatDecided) -> None:
        self.broadcast("chat", {"type": "chat", "item": chat_json(event)})
        self._on_listen(event)  # a co-host's moderated words: captions show them, the panel marks rejections

    def _on_listen(self, event: object) -> None:
        message = listen_json(event)
        if message is None:
            return
        name = message.get("input")
        if name is not None:
            info = self.inputs.setdefault(name, {"speaker": message["speaker"], "state": "idle"})
            info["speaker"] = message["speaker"]
            if message["type"] == "listening":
                info["state"] = message["state"]
        self.broadcast("listen", message)
        targets = self.audio_clients.values() if name is None else [c for c in [self.audio_clients.get(name)] if c]
        if targets:
            data = json.dumps(message, ensure_ascii=False)
            for client in targets:
                client.offer(data)

    def emotion_message(self, n: int | None = None) -> dict[str, Any]:
        top = max(range(len(EMOTIONS)), key=lambda i: self.emotions[i])
        return {
            "type": "emotion",
            "n": n,
            "values": {name: round(v, 2) for name, v in zip(EMOTIONS, self.emotions, strict=True)},
            "dominant": EMOTIONS[top] if self.emotions[top] >= 0.1 else None,
            "speaking": self.speaking,
            "paused": self.paused,
        }

    def on_audit(self, entry: dict[str, Any]) -> None:
        self.broadcast("audit", {"type": "audit", "entry": entry}, min_role="mod")

    def chat_history(self, limit: int) -> list[dict[str, Any]]:
        return [chat_json(item) for item in self.control.recent_chat(limit)]

    # ----- previews ----------------------------------------------------------------------------------
    def _update_preview_wanted(self) -> None:
        if any("preview" in c.topics for c in self.clients):
            self._preview_wanted.set()
        else:
            self._preview_wanted.clear()

    async def _preview_ticker(self) -> None:
        """While someone watches: the newest frame as JPEG, `preview_fps` times a second."""
        period = 1.0 / self.settings.preview_fps
        while True:
            await self._preview_wanted.wait()
            started = time.monotonic()
            latest = self.control.latest_frame()
            if latest is not None:
                await self._send_preview(latest[1])
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def snapshot_jpeg(self) -> bytes | None:
        latest = self.control.latest_frame()
        if latest is None:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, encode_jpeg, latest[1], self.settings.preview_width,
                                          self.settings.preview_quality)

    async def _send_preview(self, image: np.ndarray) -> None:
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

    # ----- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status = self.control.status()
        extra = {
            "panel": {
                "clients": len(self.clients),
                "audio_clients": len(self.audio_clients),
                "previews_sent": self.previews_sent,
                "preview_encode_ms": round(self.last_preview_ms, 2),
                "dropped_messages": sum(c.dropped for c in self.clients),
                **self.extra_status,
            },
            "listening": self.listening(status),
        }
        return status_json(status, self.word, self.emotions, extra)

    def listening(self, status: ShowStatus | None = None) -> dict[str, Any]:
        view = (status or self.control.status()).listening
        known: dict[str, dict[str, Any]] = {}
        for name in {*view.inputs, *self.inputs}:
            inlet = self.control.audio_input(name)
            info = self.inputs.get(name, {})
            client = self.audio_clients.get(name)
            known[name] = {"speaker": inlet.speaker if inlet is not None else info.get("speaker", name),
                           "state": info.get("state", "idle"),
                           "streaming": client.principal.name if client is not None else None}
        return listening_json(view, known)

    def input_state(self, name: str) -> dict[str, Any]:
        """What the co-host page shows first: its input's state and the show's switches."""
        switches = self.control.listen_switches
        inlet = self.control.audio_input(name)
        return {"type": "listening", "input": name, "speaker": inlet.speaker if inlet is not None else name,
                "state": self.inputs.get(name, {}).get("state", "idle"), "enabled": switches.enabled,
                "muted": name in switches.muted}

    async def _status_ticker(self) -> None:
        period = 1.0 / self.settings.status_hz
        while True:
            await asyncio.sleep(period)
            if any("status" in c.topics for c in self.clients):
                self.broadcast("status", self.status())
            if any("links" in c.topics for c in self.clients):  # the status overlay: network outputs only
                self.broadcast("links", links_json(self.control.status()))

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

    def add_audio(self, client: Client) -> None:
        """A co-host page streams into `client.input`; one at a time: the newest takes over (a page that
        reconnects after a network drop must not wait for its old socket to time out)."""
        assert client.input is not None
        old = self.audio_clients.get(client.input)
        if old is not None and old is not client:
            old.close(4409, f"input {client.input!r} was taken over by another co-host page "
                            f"({client.principal.name})")
        self.audio_clients[client.input] = client

    def remove_audio(self, client: Client) -> None:
        if client.input is not None and self.audio_clients.get(client.input) is client:
            del self.audio_clients[client.input]
