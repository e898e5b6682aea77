"""Support for the listening tests: real speech made at test time, error rates, and a simulated live stream."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from engine.listen.asr import SAMPLE_RATE, Utterance, WhisperRecognizer
from engine.listen.transcript import Transcript


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def sound_span(pcm: np.ndarray, floor: float = 0.01) -> tuple[int, int]:
    """First and last sample louder than `floor`: where a synthesized sentence really starts and ends."""
    loud = np.nonzero(np.abs(pcm) > floor)[0]
    return int(loud[0]), int(loud[-1]) + 1


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[^\w\s']|_", " ", text)


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two token lists (substitutions, insertions, deletions all cost 1)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(ref: str, hyp: str) -> float:
    """Word error rate, case and punctuation ignored."""
    words = _normalize(ref).split()
    return edit_distance(words, _normalize(hyp).split()) / max(1, len(words))


def cer(ref: str, hyp: str) -> float:
    """Character error rate (for scripts without spaces), punctuation and spaces ignored."""
    chars = list("".join(_normalize(ref).split()))
    return edit_distance(chars, list("".join(_normalize(hyp).split()))) / max(1, len(chars))


@dataclass
class Streamed:
    partials: list[Transcript]
    final: Transcript
    committed: str


def stream(rec: WhisperRecognizer, pcm: np.ndarray, end: int | None, every_s: float = 0.75) -> Streamed:
    """Feed `pcm` as if live, with a partial decode each `every_s` of audio, then `final(end)`.

    The clock is the audio itself (not the wall), so which words get committed does not depend on how
    busy the machine is: the same input always takes the same path.
    """
    utt: Utterance = rec.utterance()
    step = round(every_s * SAMPLE_RATE)
    partials = []
    for at in range(0, pcm.shape[0], step):
        utt.feed(pcm[at : at + step])
        if at + step < pcm.shape[0]:
            p = utt.partial()
            if p is not None:
                partials.append(p)
    return Streamed(partials, utt.final(end), utt.committed_text)
