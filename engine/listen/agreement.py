"""Which words of a growing utterance are settled, and where their audio can be cut off.

Whisper revises the last words of a decode when more audio arrives (a word cut mid-way, a sentence
not yet finished). A word that two decodes in a row give the same, and that ends `guard` samples or
more before the audio's end, rarely changes again (the LocalAgreement policy of whisper_streaming),
so it can be committed and its audio need not be decoded again.

Word times from cross-attention alignment are only roughly right (a Japanese character is about
150 ms, the error about as much), and cutting inside a sound makes the next decode hear half a
syllable twice or not at all. So the audio is only ever cut in a quiet stretch between two words;
where speech runs on without one, fewer words are committed (or none, until a pause comes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.listen.transcript import Word, normalize_word

FRAME = 160  # 10 ms at 16 kHz
QUIET_DB = 30.0  # a frame this far below the loud frames is a gap between words
MIN_QUIET = 3  # frames (30 ms): shorter dips are the closure of a stop consonant
SLACK = 960  # samples (60 ms) searched around an aligned word boundary


def agreed_words(previous: Sequence[Word], current: Sequence[Word], stable_until: int) -> int:
    """How many leading words of `current` agree with `previous` and end by `stable_until`."""
    n = 0
    for before, now in zip(previous, current, strict=False):
        if normalize_word(before.text) != normalize_word(now.text) or now.end > stable_until:
            break
        n += 1
    return n


def quiet_cut(audio: np.ndarray, start: int, words: Sequence[Word], n: int) -> tuple[int, int]:
    """The most of the first `n` words that end at a quiet gap, and the sample to cut at: (k, cut), or (0, start).

    `audio` is the whole utterance; `start` is where the words' audio begins (levels are judged there).
    """
    levels = _frame_db(audio[start:])
    if levels.size == 0:
        return 0, start
    quiet = levels < np.percentile(levels, 90) - QUIET_DB
    for k in range(n, 0, -1):
        after = words[k].start if k < len(words) else words[k - 1].end
        lo = max(0, (words[k - 1].end - SLACK - start) // FRAME)
        hi = min(levels.size, (after + SLACK - start) // FRAME + 1)
        run = _longest_run(quiet[lo:hi])
        if run is not None and run[1] - run[0] >= MIN_QUIET:
            return k, start + (lo + (run[0] + run[1]) // 2) * FRAME
    return 0, start


def _frame_db(audio: np.ndarray) -> np.ndarray:
    frames = audio[: audio.shape[0] // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    return np.asarray(10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10))


def _longest_run(mask: np.ndarray) -> tuple[int, int] | None:
    """[begin, end) of the longest run of True, or None."""
    best: tuple[int, int] | None = None
    begin = None
    for i, value in enumerate([*mask.tolist(), False]):
        if value and begin is None:
            begin = i
        elif not value and begin is not None:
            if best is None or i - begin > best[1] - best[0]:
                best = (begin, i)
            begin = None
    return best
