"""What every voice backend produces: PCM at the show's sample rate plus timed phonemes and words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.lifecycle import Component


@dataclass(frozen=True)
class PhonemeMark:
    """A phoneme starting at `sample` (relative to the speech start), with its viseme."""

    sample: int
    phoneme: str
    viseme: str  # one of engine.state.VISEMES


@dataclass(frozen=True)
class WordMark:
    """A word of the display text, audible over [start, end) samples (relative)."""

    start: int
    end: int
    text: str


@dataclass
class Speech:
    """One synthesized utterance. `pcm` is float32 mono in [-1, 1] at `sample_rate`."""

    text: str
    language: str
    pcm: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeMark] = field(default_factory=list)
    words: list[WordMark] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])


class VoiceError(RuntimeError):
    """A voice backend cannot run here (missing library, voice or model); the message says why."""


class Voice(Component, Protocol):
    """Blocking synthesis: call from a worker thread, never on the event loop. `prewarm` loads the
    text front-ends and models, so the first reply does not pay for them."""

    sample_rate: int

    def synthesize(self, text: str, language: str) -> Speech: ...
