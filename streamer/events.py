"""Typed events of the show. Adapters parse raw input into these at the edge; nothing past the
edge dispatches on strings. The show publishes the `ShowEvent`s at the bottom on its event bus:
the panel, metrics, OBS and the overlays learn everything they show from them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from engine.events import SpeechEnded


class ChatKind(str, Enum):
    """What a chat item is: a plain message, or a platform event carried as a message."""

    CHAT = "chat"
    CHEER = "cheer"  # Twitch bits (amount in bits, currency "BITS")
    SUBSCRIPTION = "subscription"
    RAID = "raid"
    SUPER_CHAT = "super_chat"  # YouTube paid message
    SUPER_STICKER = "super_sticker"


@dataclass(frozen=True)
class Fragment:
    """One piece of a message as the platform split it: plain text, an emote, a mention or a cheermote.
    Kept so moderation can tell an emote-only message from words, and overlays can draw emotes."""

    kind: str  # "text" | "emote" | "mention" | "cheermote"
    text: str
    emote_id: str = ""


@dataclass(frozen=True)
class ChatMessage:
    """One viewer message, normalized across platforms."""

    platform: str
    user_name: str
    text: str
    user_id: str = ""
    channel: str = ""
    message_id: str = ""
    roles: frozenset[str] = frozenset()  # broadcaster / mod / vip / subscriber
    timestamp: float = field(default_factory=time.time)
    language: str = "en"
    amount: float | None = None
    currency: str | None = None
    fragments: tuple[Fragment, ...] = ()
    kind: ChatKind = ChatKind.CHAT

    @property
    def paid(self) -> bool:
        return bool(self.amount)

    @property
    def user_key(self) -> str:
        """Stable per-platform identity for rate limits and bans (ids survive renames; names are a
        fallback): "twitch:1234", "local:ann". Sources whose ids already name the platform ("local:ann",
        "voice:mic") are not prefixed twice."""
        who = self.user_id or self.user_name.casefold()
        return who if who.startswith(f"{self.platform}:") else f"{self.platform}:{who}"

    @property
    def emote_only(self) -> bool:
        """True when the platform marked every non-blank piece as an emote."""
        pieces = [f for f in self.fragments if f.text.strip()]
        return bool(pieces) and all(f.kind == "emote" for f in pieces)


@dataclass(frozen=True)
class ModerationDecision:
    """Whether a text may go on; `rule` names what fired so moderators can see why."""

    accepted: bool
    text: str
    rule: str | None = None
    detail: str = ""


class HealthStatus(str, Enum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class Health:
    component: str
    status: HealthStatus
    detail: str = ""
    timestamp: float = field(default_factory=time.time)


# ----- what the show publishes ---------------------------------------------------------------------
@dataclass(frozen=True)
class ChatDecided:
    """A chat message went through moderation (accepted or not) and, if accepted, the reply policy."""

    message: ChatMessage
    decision: ModerationDecision
    queued: bool = False  # offered to the scheduler and kept (not sampled out)


@dataclass(frozen=True)
class TurnChanged:
    """A turn's status moved (queued, thinking, speaking, done, interrupted, skipped, failed)."""

    turn_id: str
    status: str
    priority: str
    user: str
    text: str
    language: str
    played_text: str = ""  # what viewers heard (the whole reply once it is done)
    reply_to: ChatMessage | None = None  # the chat message the turn answers


@dataclass(frozen=True)
class SpeechStarted:
    """Scheduled speech became audible at `start_sample`."""

    speech_id: int
    turn_id: str | None
    text: str
    language: str
    words: tuple[str, ...]
    start_sample: int


@dataclass(frozen=True)
class CaptionChanged:
    """The word being heard changed (or speech started/stopped) at frame `n`."""

    n: int
    speaking: bool
    speech_id: int | None = None
    index: int | None = None
    words: tuple[str, ...] = ()
    language: str | None = None
    spaces: tuple[bool, ...] = ()  # a space before each word, as the line is written (mixed-script lines)


@dataclass(frozen=True)
class EmotionChanged:
    """The character's emotion weights moved by more than a display step at frame `n`."""

    n: int
    values: tuple[float, ...]


@dataclass(frozen=True)
class PauseChanged:
    paused: bool


@dataclass(frozen=True)
class HealthChanged:
    health: Health


@dataclass(frozen=True)
class SinkChanged:
    """An output's state changed (live, reconnecting, degraded, closed); `detail` never holds a secret."""

    name: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class FrameTick:
    """One produced frame, published only while someone subscribes to it (tests, soak probes)."""

    n: int
    wall: float
    speaking: bool
    word: str | None
    speech_id: int | None
    emotions: tuple[float, ...]
    samples: int  # audio samples the frame carried


@dataclass(frozen=True)
class Heard:
    """What a co-host said, as recognised: partial while they speak, final when they stop."""

    input: str
    speaker: str
    utterance: int  # counts per input; a final closes its partials
    text: str
    language: str | None
    partial: bool
    audio_s: float = 0.0
    decode_ms: float = 0.0
    speech_end: float | None = None  # time.time() the speech ended in the input (finals; for latency)
    end_detected: float | None = None  # time.time() the VAD decided it had ended


@dataclass(frozen=True)
class ListeningChanged:
    """An input's listening state: idle, listening (someone speaks), thinking (they stopped, the reply is
    on its way), or muted; `enabled` is the show-wide switch."""

    input: str
    speaker: str
    state: str
    enabled: bool = True


@dataclass(frozen=True)
class ListeningSwitched:
    """A moderator switched listening on or off, or muted or unmuted inputs."""

    enabled: bool
    muted: tuple[str, ...]


@dataclass(frozen=True)
class BargeIn:
    """A co-host's speech cut the character off; `latency_ms` runs from speech onset in the input audio."""

    input: str
    speaker: str
    latency_ms: float
    heard: tuple[str, ...] = ()  # what viewers heard of the speech that was cut
    cut_frame: int | None = None  # the frame boundary the cut acted at


@dataclass(frozen=True)
class ShowStopping:
    """The show is about to close its parts."""


ShowEvent = (ChatDecided | TurnChanged | SpeechStarted | SpeechEnded | CaptionChanged | EmotionChanged
             | PauseChanged | HealthChanged | SinkChanged | FrameTick | Heard | ListeningChanged | ListeningSwitched
             | BargeIn | ShowStopping)
