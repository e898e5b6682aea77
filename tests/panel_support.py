"""A real Show (live mode, small picture, no recording, no chat sources) with the real panel attached
(and, when asked, a real listener), running on its own asyncio loop in a background thread, plus a frame
hook that records what every frame carried. Tests talk to it over real HTTP/WebSocket and drive it with
a real Chromium."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.state import EMOTIONS
from streamer.attachments import chat_source
from streamer.chat.pump import ChatPump
from streamer.config import BrowserInputConfig, PanelConfig, parse_config
from streamer.control import ShowControl
from streamer.events import ChatMessage, FrameTick, ModerationDecision
from streamer.listen.inputs import BrowserInput
from streamer.panel.attach import PanelAttachment, PanelHandle
from streamer.panel.store import PanelStore
from streamer.show import Show

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass(frozen=True)
class FrameRecord:
    n: int
    wall: float  # time.time() when the frame was produced
    speaking: bool
    word: str | None
    speech_id: int | None
    emotions: tuple[float, ...]

    @property
    def joy(self) -> float:
        return self.emotions[EMOTIONS.index("joy")]


class FrameRecorder:
    """Subscribed inline to the show's FrameTick events (on the frame-loop thread): keeps every frame's
    essentials."""

    def __init__(self) -> None:
        self.frames: list[FrameRecord] = []
        self._cond = threading.Condition()

    def __call__(self, tick: FrameTick) -> None:
        record = FrameRecord(tick.n, tick.wall, tick.speaking, tick.word, tick.speech_id, tick.emotions)
        with self._cond:
            self.frames.append(record)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[FrameRecord], bool], timeout: float = 30.0,
                 after: int = -1) -> FrameRecord:
        """The first frame numbered above `after` matching `predicate`, waiting for new frames as needed."""
        deadline = time.monotonic() + timeout
        index = 0
        with self._cond:
            while True:
                while index < len(self.frames):
                    record = self.frames[index]
                    index += 1
                    if record.n > after and predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no frame matched in time")
                self._cond.wait(remaining)

    def wait_frame(self, n: int, timeout: float = 30.0) -> FrameRecord:
        return self.wait_for(lambda r: r.n >= n, timeout)

    def snapshot(self) -> list[FrameRecord]:
        with self._cond:
            return list(self.frames)


class LogCapture(logging.Handler):
    """Every log line of the process while the show runs (all threads), formatted with tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def make_tokens(db: Path) -> dict[str, str]:
    store = PanelStore(db)
    try:
        return {role: store.add_token(f"{role}-user", role)[1] for role in ("viewer", "cohost", "mod", "admin")}
    finally:
        store.close()


class AudioProbe:
    """An attachment standing in for the listener (no speech recognition): it offers browser inputs to
    the co-host page through `control.add_audio_input` and drains them, keeping every sample received."""

    def __init__(self, *inputs: tuple[str, str], name: str = "test-audio") -> None:
        self.name = name
        self.inputs = [BrowserInput(BrowserInputConfig(type="browser", name=n, speaker=s)) for n, s in inputs]
        self.received: dict[str, list[np.ndarray]] = {n: [] for n, _ in inputs}
        self._cond = threading.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, control: ShowControl) -> None:
        for inp in self.inputs:
            control.add_audio_input(inp)
            self._tasks.append(asyncio.create_task(self._drain(inp), name=f"test-audio:{inp.name}"))
        await asyncio.sleep(0)  # the drains are waiting before anyone can push

    async def _drain(self, inp: BrowserInput) -> None:
        async for chunk in inp.chunks():
            with self._cond:
                self.received[inp.name].append(chunk)
                self._cond.notify_all()

    async def aclose(self) -> None:
        for inp in self.inputs:
            inp.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def audio(self, name: str) -> np.ndarray:
        with self._cond:
            chunks = list(self.received[name])
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def seconds(self, name: str) -> float:
        with self._cond:
            return sum(c.shape[0] for c in self.received[name]) / 16_000

    def wait_seconds(self, name: str, seconds: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = sum(c.shape[0] for c in self.received[name]) / 16_000
                if got >= seconds:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{name}: {got:.2f} s of audio, wanted {seconds} s")
                self._cond.wait(left)


def browser_listen(*inputs: tuple[str, str], **section: Any) -> dict[str, Any]:
    """A `listen` config section with one browser input (the co-host page) per (name, speaker)."""
    return {"inputs": [{"type": "browser", "name": n, "speaker": s} for n, s in inputs], **section}


class ShowRunner:
    """`listen`: a `listen` config section (e.g. `browser_listen(("cohost", "Kim"))`); when given, a real
    `Listener` built from it (Silero VAD, Whisper) is attached before the panel, as `stagecast run` does,
    and kept as `runner.listener`."""

    def __init__(self, db: Path, panel: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 attachments: Sequence[Any] = (), listen: dict[str, Any] | None = None,
                 extra_sinks: Sequence[Any] = ()) -> None:
        base = {"video": {"width": 256, "height": 256}, "outputs": {"recording": {"enabled": False}},
                "director": {"cooldown_s": 0.0}}
        base.update(config or {})
        if listen is not None:
            base["listen"] = listen
        self.config = parse_config(base)
        self.settings = PanelConfig(port=0, db_path=db, **(panel or {}))
        self.recorder = FrameRecorder()
        self.logs = LogCapture()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.show: Show | None = None
        self.attachments = list(attachments)  # attached before the panel (as the listener is)
        self.extra_sinks = list(extra_sinks)  # packet sinks beside the configured outputs
        self.listener: Any = None
        if listen is not None:
            from streamer.listen.listener import Listener  # needs the listen extra (faster-whisper, Silero)

            self.listener = Listener(self.config.listen)
            self.attachments.append(self.listener)
        self.handle: PanelHandle | None = None
        self.rc: int | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-show", daemon=True)

    @property
    def url(self) -> str:
        assert self.handle is not None
        return self.handle.url.rstrip("/")

    def start(self, timeout: float = 180.0) -> ShowRunner:
        root = logging.getLogger()
        root.addHandler(self.logs)
        self._old_level = root.level
        root.setLevel(logging.DEBUG)
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            raise RuntimeError(f"the show did not start: {self.error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        panel = PanelAttachment(self.settings)
        runner = self

        class Ready:
            """Attached after the panel: the show is on air and the panel serves."""

            name = "test-ready"

            async def start(self, control: ShowControl) -> None:
                runner.handle = panel.handle
                runner._ready.set()

            async def aclose(self) -> None:
                pass

        self.show = Show(self.config, extra_sinks=self.extra_sinks)
        sources = [ChatPump(chat_source(cfg, self.show.clock)) for cfg in self.config.chat.sources]
        self.show.attach(*sources, *self.attachments, panel, Ready())
        self.show.control.subscribe(self.recorder, FrameTick, inline=True)
        self.rc = await self.show.run()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run fn(*args) on the show's event loop thread and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def chat(self, user: str, text: str, user_id: str = "") -> ModerationDecision:
        assert self.show is not None
        message = ChatMessage(platform="test", user_name=user, text=text, user_id=user_id or user)
        return self.call(lambda: self.show.control.submit_chat(message))  # type: ignore[union-attr]

    def late_frames(self) -> int:
        assert self.show is not None
        return self.show.control.status().late_frames

    def stop(self, timeout: float = 60.0) -> None:
        if self.loop is not None and self.show is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.show.request_stop)
        self._thread.join(timeout)
        root = logging.getLogger()
        root.removeHandler(self.logs)
        root.setLevel(self._old_level)
        if self._thread.is_alive():
            raise RuntimeError("the show did not stop")

    def wait_stopped(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
