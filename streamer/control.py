"""The show's one control surface: typed commands, a typed status snapshot and the event stream.

Everything that steers or watches a running show from outside (the panel, metrics, OBS, chat
sources, listeners, a station) goes through a `ShowControl`. The show core imports none of them.
Commands run on the show's event loop thread (the director is not thread-safe); `status()` and
`latest_frame()` may be called from any thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.clock import StreamClock, TimeBase
from engine.events import EmotionCue
from engine.frameloop import FrameLoop
from engine.listening import ListenCue
from engine.timeline import ScheduledSpeech, Timeline
from streamer.audio_tap import OutputAudioTap
from streamer.bus import EventBus, Subscription
from streamer.chat.intake import ChatIntake
from streamer.director import Director
from streamer.events import ChatDecided, ChatMessage, Health, HealthStatus, ListeningSwitched, ModerationDecision
from streamer.health import HealthBoard
from streamer.moderation import Moderator
from streamer.outputs.hub import OutputHub
from streamer.turns import Priority, Turn


class ActionError(RuntimeError):
    """A command that cannot be carried out now; the message says why."""


class AudioInlet(Protocol):
    """An audio input fed from outside the listener (the panel's co-host page pushes into it)."""

    name: str
    speaker: str

    def push(self, pcm: np.ndarray) -> None:
        """16 kHz mono float32 samples, on the show's event loop."""
        ...


@dataclass
class ListenSwitches:
    """What moderators set for listening: on/off for the show, and muted inputs."""

    enabled: bool = True
    muted: set[str] = field(default_factory=set)


# ----- the status snapshot ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnView:
    id: str
    priority: str
    user: str
    text: str
    language: str
    status: str
    waiting_s: float
    played_text: str = ""


@dataclass(frozen=True)
class SpeechView:
    id: int
    text: str
    language: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class EncoderView:
    frames_encoded: int
    errors: int
    ms_median: float
    ms_ema: float
    queue_depth: int
    queue_capacity: int


@dataclass(frozen=True)
class SinkView:
    """An output as viewers get it: for a network sink, ``state`` is its link's (connecting, live,
    reconnecting, closed) and ``dropped`` counts what the link dropped too; ``link`` is then the
    link's own status, and ``None`` for an output without one (the recording)."""

    name: str
    state: str
    packets: int
    error: str | None
    dropped: int
    restarts: int
    reconnects: int = 0
    off_air_s: float = 0.0  # seconds off air now (0.0 while live)
    off_air_total_s: float = 0.0  # every second off air since the show started
    link: dict[str, Any] | None = None


@dataclass(frozen=True)
class BlockView:
    user: str
    until: float | None  # wall-clock time the block ends; None for a ban
    reason: str


@dataclass(frozen=True)
class ShowStatus:
    mode: str
    width: int
    height: int
    fps: int
    frames: int
    stream_s: float
    late_frames: int
    render_errors: int
    frame_ms: dict[str, float]
    encoder: EncoderView
    sinks: tuple[SinkView, ...]
    chat_sources: tuple[str, ...]
    paused: bool
    current: TurnView | None
    speeches: tuple[SpeechView, ...]
    queue: tuple[TurnView, ...]
    recent_turns: tuple[TurnView, ...]
    dropped_turns: int
    turns_by_status: dict[str, int]
    speech_latencies_ms: tuple[float, ...]
    health: dict[str, Health]
    restarts: dict[str, int]
    banned_words: tuple[str, ...]
    blocked: tuple[BlockView, ...]
    listening: ListenView
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ListenView:
    enabled: bool
    muted: tuple[str, ...]
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class InterruptResult:
    was_speaking: bool
    cut_frame: int | None
    heard: tuple[str, ...]
    cut_at: float = field(default_factory=time.time)


def _turn_view(turn: Turn, now: float) -> TurnView:
    p = turn.prompt
    return TurnView(turn.id, turn.priority.name.lower(), p.user_name, p.text[:300], p.language, turn.status.value,
                    round(now - turn.created, 1), turn.played_text[:300])


def _speech_view(item: ScheduledSpeech) -> SpeechView:
    speech = item.speech
    return SpeechView(item.id, speech.text, speech.language, tuple(w.text for w in speech.words))


@dataclass
class ShowParts:
    """The core a control surface steers (built by the show)."""

    timebase: TimeBase
    clock: StreamClock
    virtual: bool
    width: int
    height: int
    director: Director
    intake: ChatIntake
    moderator: Moderator
    loop: FrameLoop
    hub: OutputHub
    health: HealthBoard
    bus: EventBus
    attachments: list[str]  # names of what is attached (chat sources, panel, OBS, listeners)
    restarts: dict[str, int]  # component -> restarts after failures (chat sources)
    request_stop: Callable[[], None]
    timeline: Timeline
    tap: OutputAudioTap


class ShowControl:
    def __init__(self, parts: ShowParts) -> None:
        self._p = parts
        self.banned_words: list[str] = sorted(parts.moderator.rules.banned_words)
        self.listen_switches = ListenSwitches()
        self._audio_inputs: dict[str, AudioInlet] = {}
        self._listen_inputs: dict[str, str] = {}  # every input a listener hears -> its speaker

    @property
    def timebase(self) -> TimeBase:
        return self._p.timebase

    # ----- events --------------------------------------------------------------------------------------
    def subscribe(self, handler: Callable[[Any], None], *types: type, inline: bool = False) -> Subscription:
        """Receive the show's events (see streamer.events); `inline` runs on the publisher's thread."""
        return self._p.bus.subscribe(handler, *types, inline=inline)

    def publish(self, event: object) -> None:
        """An attachment's own events on the show's stream (what a listener heard, its state)."""
        self._p.bus.publish(event)

    def report_health(self, component: str, status: HealthStatus, detail: str = "") -> None:
        """An attachment's own health (OBS, a chat source), shown with the show's."""
        self._p.health.report(component, status, detail)

    def attached(self, names: list[str]) -> None:
        """What is attached to the show now (status lists the chat sources among them)."""
        self._p.attachments = list(names)

    def count_restart(self, component: str) -> None:
        """An attachment restarted after a failure (counted in status and metrics)."""
        self._p.restarts[component] = self._p.restarts.get(component, 0) + 1

    # ----- turns -----------------------------------------------------------------------------------------
    def submit_chat(self, message: ChatMessage) -> ModerationDecision:
        """A viewer's message: moderated, then offered to the scheduler under the reply rules."""
        return self._p.intake.submit(message)

    def submit_turn(self, text: str, user_name: str, priority: Priority = Priority.VOICE, language: str | None = None,
                    user_id: str = "") -> Turn:
        """A turn that skips the chat reply rules (a co-host's words, a station's script); the text
        should already be moderated."""
        director = self._p.director
        turn = director.scheduler.new_turn(priority, text, language, user_name, user_id)
        return director.submit(turn)

    def submit_voice(self, text: str, speaker: str, language: str | None, input_name: str) -> ModerationDecision:
        """A co-host's recognised words: moderated like chat (a banned word is never repeated), then a
        turn ranked above chat and below a moderator's say-now; memory keeps it under the speaker's name."""
        message = ChatMessage(platform="voice", user_name=speaker, text=text, user_id=f"voice:{input_name}",
                              message_id=f"voice:{input_name}:{time.monotonic_ns()}",
                              language=language or "en", roles=frozenset({"cohost"}))
        return self._p.intake.submit_voice(message)

    def say(self, text: str, language: str | None = None, emotion: EmotionCue | None = None) -> Turn:
        """Moderator say-now: jumps every queue, spoken verbatim (still output-moderated)."""
        return self._p.director.say(text, language, emotion)

    def interrupt(self) -> InterruptResult:
        results = self._p.director.interrupt()
        spf = self._p.timebase.samples_per_frame
        return InterruptResult(bool(results), results[0].end_sample // spf if results else None,
                               tuple(r.played_text for r in results if r.played_text))

    def emotion(self, cue: EmotionCue) -> int:
        """Start an emotion envelope at the next frame; returns that frame."""
        return self._p.director.emotion(cue)

    def pause(self) -> None:
        """The character stops taking turns; the stream and idle motion go on."""
        self._p.director.pause()

    def resume(self) -> None:
        self._p.director.resume()

    def skip(self) -> str:
        """Skip the current turn, or the next queued one; returns its id."""
        turn = self._p.director.skip()
        if turn is None:
            raise ActionError("nothing to skip: not speaking and the queue is empty")
        return turn.id

    def clear(self) -> int:
        """Drop every queued turn; returns how many."""
        return self._p.director.clear()

    # ----- viewers -----------------------------------------------------------------------------------------
    def timeout(self, user: str, seconds: float, reason: str = "") -> float:
        """Block a viewer for `seconds` of stream time; returns the wall-clock time it ends. `user` is a
        key ("twitch:1234"), a "platform:name" or a name (every platform); see `matching`."""
        self._p.moderator.timeout(user, seconds, reason)
        return time.time() + seconds

    def ban(self, user: str, reason: str = "") -> list[str]:
        """Block a viewer until unbanned (a key, a "platform:name" or a name on every platform);
        returns the recently seen viewers it matches."""
        return self._p.moderator.ban(user, reason)

    def matching(self, user: str) -> list[str]:
        """The recently seen viewers a ban or timeout of `user` blocks ("twitch:1234 (Ann)")."""
        return self._p.moderator.matching(user)

    def unban(self, user: str) -> None:
        if not self._p.moderator.unban(user):
            raise ActionError(f"{user!r} is not banned or timed out")

    def blocked(self) -> list[BlockView]:
        now_stream, now_wall = self._p.clock.now(), time.time()
        return [BlockView(user, None if until == float("inf") else now_wall + (until - now_stream), reason)
                for user, (until, reason) in self._p.moderator.blocked().items()]

    def set_banned_words(self, words: list[str]) -> list[str]:
        cleaned = sorted({w.strip() for w in words if w.strip()})
        self._p.moderator.set_banned_words(cleaned)
        self.banned_words = cleaned
        return cleaned

    def apply_config(self, config: Any) -> dict[str, Any]:
        """Apply the parts of a reloaded config that can change live; returns what changed."""
        changed: dict[str, Any] = {}
        moderator = self._p.moderator
        if sorted(config.moderation.banned_words) != self.banned_words:
            changed["moderation.banned_words"] = self.set_banned_words(config.moderation.banned_words)
        if config.moderation.max_length != moderator.max_length:
            moderator.max_length = config.moderation.max_length
            changed["moderation.max_length"] = moderator.max_length
        scheduler = self._p.director.scheduler
        for key in ("cooldown_s", "queue_cap"):
            value = getattr(config.director, key)
            if getattr(scheduler, key) != value:
                setattr(scheduler, key, value)
                changed[f"director.{key}"] = value
        return {"changed": changed}

    def stop(self) -> None:
        """End the show (recordings close cleanly)."""
        self._p.request_stop()

    # ----- listening -----------------------------------------------------------------------------------
    def add_listen_input(self, name: str, speaker: str) -> None:
        """A listener hears this input (shown in status; moderators can mute it)."""
        self._listen_inputs[name] = speaker

    def add_audio_input(self, inlet: AudioInlet) -> None:
        """A listener offers an input that others feed (the co-host page)."""
        self._audio_inputs[inlet.name] = inlet
        self._listen_inputs[inlet.name] = inlet.speaker

    def audio_input(self, name: str) -> AudioInlet | None:
        return self._audio_inputs.get(name)

    def set_listening(self, enabled: bool) -> None:
        self.listen_switches.enabled = enabled
        self._p.bus.publish(ListeningSwitched(enabled, tuple(sorted(self.listen_switches.muted))))

    def mute_input(self, name: str, muted: bool) -> None:
        if muted:
            self.listen_switches.muted.add(name)
        else:
            self.listen_switches.muted.discard(name)
        self._p.bus.publish(ListeningSwitched(self.listen_switches.enabled, tuple(sorted(self.listen_switches.muted))))

    def listen_cue(self, cue: ListenCue) -> None:
        """The listening performance: someone speaks to the character, pauses, stops; it thinks."""
        self._p.timeline.listen(cue)

    def is_speaking(self) -> bool:
        """True while the character's voice is on air (or scheduled from the next frame on)."""
        timeline = self._p.timeline
        return timeline.busy_until_frame() > timeline.next_frame

    def recent_output_audio(self, seconds: float) -> np.ndarray:
        """The newest `seconds` of the show's own audio at the show's sample rate (the echo guard)."""
        return self._p.tap.recent(seconds)

    # ----- views -------------------------------------------------------------------------------------------
    def latest_frame(self) -> tuple[int, np.ndarray] | None:
        """The newest picture (n, [H, W, 3] uint8) for previews; never mutated after it is published."""
        return self._p.loop.latest

    def recent_chat(self, limit: int = 100) -> list[ChatDecided]:
        return list(self._p.intake.recent)[-limit:]

    def status(self) -> ShowStatus:
        p = self._p
        stats = p.loop.stats
        hub = p.hub.stats()
        director = p.director
        now = time.monotonic()
        current = director.current
        return ShowStatus(
            mode="virtual" if p.virtual else "live",
            width=p.width, height=p.height, fps=p.timebase.fps,
            frames=stats.frames,
            stream_s=round(stats.frames / p.timebase.fps, 2),
            late_frames=stats.late_frames,
            render_errors=stats.render_errors,
            frame_ms={k: round(v, 2) for k, v in stats.medians().items()},
            encoder=EncoderView(hub.frames_encoded, hub.encode_errors, round(hub.encode_ms_median, 2),
                                round(hub.encode_ms_ema, 2), hub.queue_depth, hub.queue_capacity),
            sinks=tuple(SinkView(s.name, s.state, s.packets, s.error, s.dropped, s.restarts, s.reconnects,
                                 s.off_air_s, s.off_air_total_s, s.link) for s in hub.sinks.values()),
            chat_sources=tuple(a.removeprefix("chat:") for a in p.attachments if a.startswith("chat:")),
            paused=director.paused,
            current=_turn_view(current, now) if current is not None else None,
            speeches=tuple(_speech_view(s) for s in current.scheduled) if current is not None else (),
            queue=tuple(_turn_view(t, now) for t in director.queued),
            recent_turns=tuple(_turn_view(t, now) for t in list(director.completed)[-8:]),
            dropped_turns=director.dropped,
            turns_by_status=dict(director.finished),
            speech_latencies_ms=tuple(director.performer.speech_latencies),
            health=p.health.snapshot(),
            restarts=dict(p.restarts),
            banned_words=tuple(self.banned_words),
            blocked=tuple(self.blocked()),
            listening=ListenView(self.listen_switches.enabled, tuple(sorted(self.listen_switches.muted)),
                                 tuple(sorted(self._listen_inputs))),
        )
