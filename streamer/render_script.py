"""`stagecast render`: a script of timed turns -> one video file, offline and deterministic.

Every action is pinned to a frame: a chat or say line is performed at its frame by the same
performer as the live show (brain, output moderation, voice, timeline), while the frame loop
waits, so the same script and seed give the same frames byte for byte. Script lines (JSONL):
  {"t": 0.5, "user": "alex", "text": "hello!"}            a chat message the brain answers
  {"t": 3.0, "say": "こんにちは", "lang": "ja"}              spoken verbatim
  {"t": 4.0, "emotion": "joy", "intensity": 0.8, "hold": 2}  an emotion cue
  {"t": 5.2, "interrupt": true}                            cut speech at the next frame boundary
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.clock import FrameClock
from engine.events import EmotionCue, SpeechEnded
from engine.frameloop import FrameLoop, FrameObserver
from engine.language import detect_language
from engine.state import EMOTIONS
from streamer.assembly import EngineParts, build_engine, encoder_settings
from streamer.config import StagecastConfig
from streamer.health import HealthBoard
from streamer.outputs.file_sink import SingleFileSink
from streamer.outputs.hub import OutputHub
from streamer.performer import Performer
from streamer.turns import Priority, Turn, prompt_for


class ScriptError(ValueError):
    """A script line that cannot be performed; the message starts with `path:line:`."""


class ScriptLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    t: float = Field(ge=0)
    user: str = "viewer"
    text: str | None = None
    say: str | None = None
    lang: str | None = None
    emotion: str | None = None
    intensity: float = Field(0.8, ge=0, le=1)
    hold: float = Field(2.0, ge=0)
    interrupt: bool = False

    @field_validator("emotion")
    @classmethod
    def _known_emotion(cls, value: str | None) -> str | None:
        # checked here, not when the cue is built mid-render, so the error names the script line
        if value is not None and value not in EMOTIONS:
            raise ValueError(f"unknown emotion {value!r}; known: {', '.join(EMOTIONS)}")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> ScriptLine:
        actions = [self.text is not None, self.say is not None, self.interrupt]
        if sum(actions) > 1 or (sum(actions) == 0 and self.emotion is None):
            raise ValueError("each line needs exactly one of text, say, interrupt (or only an emotion)")
        return self


def _describe(exc: ValidationError) -> str:
    """pydantic's errors as `field: message; ...` (its own str() starts with a line naming only the model)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_script(text: str, name: str | Path) -> list[ScriptLine]:
    """Script lines from JSONL text, sorted by time; a bad line raises ScriptError naming `name:line`."""
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            lines.append(ScriptLine.model_validate(json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise ScriptError(f"{name}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except ValidationError as exc:
            raise ScriptError(f"{name}:{number}: {_describe(exc)}") from None
    return sorted(lines, key=lambda line: line.t)


def read_script(path: Path) -> list[ScriptLine]:
    """The script file at `path`; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_script(text, path)


@dataclass
class RenderResult:
    frames: int
    video_sha256: str
    audio_sha256: str
    interrupts: list[list[SpeechEnded]]
    out: Path | None


class _Hasher:
    """Consumer that fingerprints raw frames and audio, then forwards to the real output."""

    def __init__(self, forward: OutputHub | None) -> None:
        self.video = hashlib.sha256()
        self.audio = hashlib.sha256()
        self.forward = forward

    def submit(self, n: int, rgb: np.ndarray, audio: np.ndarray) -> None:
        self.video.update(np.ascontiguousarray(rgb).tobytes())
        self.audio.update(np.ascontiguousarray(audio).tobytes())
        if self.forward is not None:
            self.forward.submit(n, rgb, audio)


def _perform_line(line: ScriptLine, index: int, frame: int, performer: Performer) -> None:
    """Perform a chat or say line now, from `frame` on, through the same performer as the live show."""
    text = line.say if line.say is not None else line.text
    assert text is not None

    async def perform() -> None:
        if line.say is not None:
            turn = Turn(f"r{index}", Priority.SAY, prompt_for(text, line.lang, "moderator"), verbatim=True)
        else:
            cleaned = performer.moderator.check_input(text).text
            turn = Turn(f"r{index}", Priority.CHAT, prompt_for(cleaned, line.lang or detect_language(text), line.user))
        await performer.perform(turn, [], at_frame=frame)

    asyncio.run(perform())


def render_script(
    config: StagecastConfig,
    script: list[ScriptLine],
    out: Path | None,
    tail_s: float = 1.0,
    observers: Sequence[FrameObserver] = (),
    parts: EngineParts | None = None,
) -> RenderResult:
    parts = parts or build_engine(config)
    parts.prewarm()
    tb, timeline = parts.timebase, parts.timeline
    d = config.director
    performer = Performer(timeline, parts.brain, parts.voice, parts.moderator, HealthBoard(),
                          brain_timeout_s=d.brain_timeout_s, voice_timeout_s=d.voice_timeout_s,
                          max_reply_s=d.max_reply_s)
    actions: dict[int, list[Callable[[], object]]] = defaultdict(list)
    interrupts: list[list[SpeechEnded]] = []

    def emotion(cue: EmotionCue, frame: int) -> Callable[[], object]:
        return lambda: timeline.add_emotion(cue, at_frame=frame)

    def cut(frame: int) -> Callable[[], object]:
        return lambda: interrupts.append(timeline.cut(at_frame=frame))

    def perform(line: ScriptLine, index: int, frame: int) -> Callable[[], object]:
        return lambda: _perform_line(line, index, frame, performer)

    for index, line in enumerate(script):
        frame = tb.frame_at_seconds(line.t)
        if line.emotion is not None:
            actions[frame].append(emotion(EmotionCue(line.emotion, line.intensity, line.hold), frame))
        if line.interrupt:
            actions[frame].append(cut(frame))
        elif line.text is not None or line.say is not None:
            actions[frame].append(perform(line, index, frame))
    last_action = max(actions, default=0)
    tail = round(tail_s * tb.fps)
    hub = OutputHub(encoder_settings(config), [SingleFileSink(out)]) if out is not None else None
    if hub is not None:
        hub.open()
    hasher = _Hasher(hub)
    loop: FrameLoop

    last_busy = [0]

    def before_frame(n: int) -> None:
        for action in actions.pop(n, []):
            action()
        if timeline.busy_until_frame() > n:  # speech still due at or after this frame
            last_busy[0] = n
        if n >= last_action and n - last_busy[0] >= tail:
            loop.stop()

    loop = FrameLoop(FrameClock(tb, virtual=True), timeline, parts.animator, parts.renderer, hasher,
                     before_frame=before_frame, observers=observers)
    try:
        loop.run()
    finally:
        performer.close()
        if hub is not None:
            hub.close()
        parts.close()
    if loop.error is not None:
        raise loop.error
    return RenderResult(loop.stats.frames, hasher.video.hexdigest(), hasher.audio.hexdigest(), interrupts, out)
