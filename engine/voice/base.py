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


@dataclass(frozen=True)
class SpeechRun:
    """One script run of a mixed-language line: its text, language and the voice that spoke it,
    over [start, end) samples of the stitched speech."""

    start: int
    end: int
    text: str
    language: str
    voice: str


@dataclass
class Speech:
    """One synthesized utterance. `pcm` is float32 mono in [-1, 1] at `sample_rate`."""

    text: str
    language: str
    pcm: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeMark] = field(default_factory=list)
    words: list[WordMark] = field(default_factory=list)
    runs: list[SpeechRun] = field(default_factory=list)  # set when a mixed-language line was voiced in runs

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])

    def word_spaces(self) -> tuple[bool, ...]:
        """Whether the display text has a space before each word (after the previous one), so a
        caption can rebuild the line's own spacing: "Hello everyone 大家好" in a mixed line keeps
        its English spaces, a Chinese run stays unspaced."""
        spaces: list[bool] = []
        at = 0
        for i, word in enumerate(self.words):
            found = self.text.find(word.text, at)
            if found < 0:  # a word the voice rewrote: fall back to spacing by script
                spaces.append(i > 0 and not (_unspaced(word.text[:1]) or _unspaced(self.words[i - 1].text[-1:])))
                continue
            spaces.append(i > 0 and any(ch.isspace() for ch in self.text[at:found]))
            at = found + len(word.text)
        return tuple(spaces)


def _unspaced(ch: str) -> bool:
    """CJK scripts write words without spaces between them."""
    return bool(ch) and ("\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\uffef")


class VoiceError(RuntimeError):
    """A voice backend cannot run here (missing library, voice or model); the message says why."""


class Voice(Component, Protocol):
    """Blocking synthesis: call from a worker thread, never on the event loop. `prewarm` loads the
    text front-ends and models, so the first reply does not pay for them."""

    sample_rate: int

    def synthesize(self, text: str, language: str) -> Speech: ...
