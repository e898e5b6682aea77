"""Borrowed timings: phoneme and word marks for neural voices that report none.

Piper (without the onnx alignment patch), Kokoro and XTTS return audio only.  espeak-ng synthesizes the
same text in a few milliseconds *with* phoneme and word events, so we time-scale espeak's marks onto the
neural audio.  A single linear stretch would drift at pauses (the two voices pause for different
lengths), so the alignment is piecewise: both signals are cut into voiced segments at silences, the
neural audio's segments are merged at all but its longest gaps until the counts match, and each espeak
segment is mapped linearly onto its partner (with no sound at all, the whole span is stretched).
The timeline's energy gate then keeps the mouth shut wherever the neural audio is silent.
"""

from __future__ import annotations

import numpy as np

from engine.voice.base import PhonemeMark, Speech, WordMark

HOP_S = 0.01
MIN_GAP_S = 0.08  # a silence at least this long separates segments (a comma pause, not a stop consonant)
MIN_SEGMENT_S = 0.04


def voiced_segments(pcm: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges of sound, split at silences of at least MIN_GAP_S."""
    hop = max(1, int(sample_rate * HOP_S))
    n = pcm.shape[0] // hop
    if n == 0:
        return []
    rms = np.sqrt(np.mean(pcm[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1))
    loud = float(np.percentile(rms, 95))
    if loud <= 1e-5:
        return []
    voiced = rms > 0.08 * loud
    segments: list[list[int]] = []
    min_gap = max(1, round(MIN_GAP_S / HOP_S))
    gap = 0
    for i, v in enumerate(voiced):
        if v:
            if segments and gap < min_gap:
                segments[-1][1] = i + 1
            else:
                segments.append([i, i + 1])
            gap = 0
        else:
            gap += 1
    min_len = max(1, round(MIN_SEGMENT_S / HOP_S))
    return [(a * hop, b * hop) for a, b in segments if b - a >= min_len]


def _merge_to(segments: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """Merge `segments` into `count` by keeping only the count-1 longest gaps (the real pauses);
    a neural voice's stop consonants make short gaps that espeak's energy contour does not have."""
    if count <= 0 or len(segments) < count:
        return []
    gaps = sorted(range(len(segments) - 1), key=lambda i: segments[i + 1][0] - segments[i][1], reverse=True)
    cuts = sorted(gaps[: count - 1])
    out, start = [], 0
    for c in [*cuts, len(segments) - 1]:
        out.append((segments[start][0], segments[c][1]))
        start = c + 1
    return out


def anchors(ref_pcm: np.ndarray, pcm: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic (reference sample -> target sample) anchor points for np.interp."""
    ref_seg = voiced_segments(ref_pcm, sample_rate)
    tgt_seg = _merge_to(voiced_segments(pcm, sample_rate), len(ref_seg))
    xs, ys = [-1.0], [0.0]  # a sentinel below sample 0, so a segment starting at 0 still anchors
    for (ra, rb), (ta, tb) in zip(ref_seg, tgt_seg, strict=False):
        for r, t in ((ra, ta), (rb, tb)):
            if r > xs[-1] and t >= ys[-1]:
                xs.append(float(r))
                ys.append(float(t))
    if xs[1:2] != [0.0]:
        xs[0] = 0.0  # no anchor at 0: sample 0 maps to 0
    ref_end, tgt_end = float(max(ref_pcm.shape[0], 1)), float(pcm.shape[0])
    if ref_end > xs[-1]:
        xs.append(ref_end)
        ys.append(max(tgt_end, ys[-1]))
    return np.asarray(xs), np.asarray(ys)


def borrow_timings(reference: Speech, pcm: np.ndarray, sample_rate: int) -> tuple[list[PhonemeMark], list[WordMark]]:
    """The reference speech's marks moved onto `pcm` (both at `sample_rate`)."""
    if reference.sample_rate != sample_rate:
        raise ValueError("reference speech must be at the target sample rate")
    n = int(pcm.shape[0])
    if n == 0 or reference.samples == 0:
        return [], []
    xs, ys = anchors(reference.pcm, pcm, sample_rate)

    def move(sample: int) -> int:
        return int(min(max(round(float(np.interp(sample, xs, ys))), 0), n))

    phonemes: list[PhonemeMark] = []
    for mark in reference.phonemes:
        pos = move(mark.sample)
        if pos >= n:
            continue
        if phonemes and phonemes[-1].sample >= pos:
            phonemes[-1] = PhonemeMark(phonemes[-1].sample, mark.phoneme, mark.viseme)
        else:
            phonemes.append(PhonemeMark(pos, mark.phoneme, mark.viseme))
    words = []
    for w in reference.words:
        start, end = move(w.start), move(w.end)
        if end > start:
            words.append(WordMark(start, end, w.text))
    return phonemes, words


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 mono resampled with soxr (HQ), clipped to [-1, 1]."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0 or from_rate == to_rate:
        return audio
    import soxr

    out = soxr.resample(audio, from_rate, to_rate, quality="HQ")
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
