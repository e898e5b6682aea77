"""Which words of a growing utterance are settled, and where their audio can be cut off.

Whisper revises the last words of a decode when more audio arrives (a word cut mid-way, a sentence
not yet finished). A word that two decodes in a row give the same, and that ends `guard` samples or
more before the audio's end, rarely changes again (the LocalAgreement policy of whisper_streaming),
so it can be committed and its audio need not be decoded again.

Word times from cross-attention alignment are only roughly right (a Japanese character is about
150 ms, the error about as much), and cutting inside a sound makes the next decode hear half a
syllable twice or not at all. Cutting between two words of one phrase is not safe either: the
decode of the rest loses the words it would have leant on (espeak's "what time the next train"
came back as "what I'm the next train"). So the audio is only cut in a pause between phrases, at
least 100 ms quiet; where speech runs on without one, nothing is committed until a pause comes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.listen.transcript import Word, normalize_word

FRAME = 160  # 10 ms at 16 kHz
QUIET_DB = 30.0  # a frame this far below the loud frames is silence
MIN_QUIET = 10  # frames (100 ms): a phrase break; a stop consonant's closure or a word gap is 30-60 ms


def agreed_words(previous: Sequence[Word], current: Sequence[Word], stable_until: int) -> int:
    """How many leading words of `current` agree with `previous` and end by `stable_until`."""
    n = 0
    for before, now in zip(previous, current, strict=False):
        if normalize_word(before.text) != normalize_word(now.text) or now.end > stable_until:
            break
        n += 1
    return n


def quiet_cut(audio: np.ndarray, start: int, words: Sequence[Word], n: int) -> tuple[int, int]:
    """Where to cut after at most `n` words: (k, cut) with the cut in a pause, or (0, start) where there is none.

    `audio` is the whole utterance, `words` (times in its samples) were decoded from `start` on. The
    latest pause wins. The words before it are those that end by its middle; aligned times run early
    rather than late, so a word that ends inside the pause's second half could be on either side,
    and that pause is passed over.
    """
    for a, b in reversed(pauses(audio, start)):
        cut = (a + b) // 2
        k = 0
        while k < len(words) and words[k].end <= cut:
            k += 1
        if 0 < k <= n and (k == len(words) or words[k].end > b):
            return k, cut
    return 0, start


def pauses(audio: np.ndarray, start: int) -> list[tuple[int, int]]:
    """[a, b) sample spans after `start` that are MIN_QUIET frames or more of silence (relative to the loud frames)."""
    frames = audio[start : start + (audio.shape[0] - start) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    if frames.shape[0] == 0:
        return []
    levels = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    quiet = [*(levels < np.percentile(levels, 90) - QUIET_DB).tolist(), False]
    spans, begin = [], None
    for i, q in enumerate(quiet):
        if q and begin is None:
            begin = i
        elif not q and begin is not None:
            if i - begin >= MIN_QUIET:
                spans.append((start + begin * FRAME, start + i * FRAME))
            begin = None
    return spans
