"""Typed events the engine emits and accepts. No string dispatch past the edge."""

from __future__ import annotations

from dataclasses import dataclass

from engine.state import EMOTIONS


@dataclass(frozen=True)
class EmotionCue:
    """Raise an emotion to `intensity` over attack_s, hold it hold_s, let it go over release_s."""

    emotion: str
    intensity: float = 1.0
    hold_s: float = 2.0
    attack_s: float = 0.15
    release_s: float = 0.6

    def __post_init__(self) -> None:
        if self.emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {self.emotion!r}; known: {', '.join(EMOTIONS)}")
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"emotion intensity must be within 0..1, got {self.intensity}")
        if self.hold_s < 0 or self.attack_s < 0 or self.release_s < 0:
            raise ValueError("emotion attack/hold/release must not be negative")


@dataclass(frozen=True)
class SpokenWord:
    """The word being heard at a frame, for captions and word-level progress."""

    speech_id: int
    index: int
    text: str


@dataclass(frozen=True)
class SpeechEnded:
    """What viewers actually heard of one scheduled speech."""

    speech_id: int
    turn_id: str | None
    full_text: str
    played_text: str
    interrupted: bool
    end_sample: int
