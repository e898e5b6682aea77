"""What recognition produces: timed words while the speaker talks, and a transcript per decode."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    """A recognised word over [start, end) samples from the utterance's first sample.

    `text` is as Whisper wrote it: spaced scripts carry their leading space, so words join with "".
    """

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Transcript:
    """One decode's result. `language_prob` is the chosen language's share among the allowed ones."""

    text: str
    language: str
    language_prob: float
    partial: bool
    audio_s: float  # the utterance's audio so far
    decode_s: float  # what this call spent decoding


def join_text(*pieces: str) -> str:
    """Whisper's pieces joined as written (spaces included), with runs of whitespace folded."""
    return re.sub(r"\s+", " ", "".join(pieces)).strip()


def normalize_word(text: str) -> str:
    """A word as compared between two decodes: case, punctuation and spaces do not count."""
    return "".join(ch for ch in text.casefold() if unicodedata.category(ch)[0] not in "PZS")
