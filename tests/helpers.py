"""Test helpers: synthetic speech with exact, known timings (no voice backend involved)."""

from __future__ import annotations

import numpy as np

from engine.voice.base import PhonemeMark, Speech, WordMark


def tone_speech(words: list[str], word_s: float = 0.3, gap_s: float = 0.05, sample_rate: int = 48000,
                language: str = "en") -> Speech:
    """A 'speech' of sine bursts, one per word, each word an open 'a' viseme."""
    pcm: list[np.ndarray] = []
    marks: list[PhonemeMark] = []
    wmarks: list[WordMark] = []
    pos = 0
    for w in words:
        n = int(word_s * sample_rate)
        t = np.arange(n) / sample_rate
        pcm.append((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        marks.append(PhonemeMark(pos, "a", "a"))
        wmarks.append(WordMark(pos, pos + n, w))
        pos += n
        g = int(gap_s * sample_rate)
        pcm.append(np.zeros(g, dtype=np.float32))
        marks.append(PhonemeMark(pos, "_", "closed"))
        pos += g
    joiner = "" if language in ("zh", "ja") else " "
    return Speech(joiner.join(words), language, np.concatenate(pcm), sample_rate, marks, wmarks)
