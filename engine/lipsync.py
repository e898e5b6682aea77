"""Phoneme timings + audio energy -> a per-frame viseme track, computed once per utterance.

Precomputing the track at scheduling time keeps `Timeline.pull(n)` a cheap lookup and makes the
mouth a pure function of the schedule. The energy gate closes the mouth wherever the audio is
silent, so the mouth never moves without sound even if a backend's phoneme timings are loose.
"""

from __future__ import annotations

import numpy as np

from engine.clock import TimeBase
from engine.state import VISEMES
from engine.voice.base import Speech

_VISEME_INDEX = {v: i for i, v in enumerate(VISEMES)}
ATTACK = 0.65  # fraction of the way to the target per frame when opening
RELEASE = 0.55  # ... when closing
LOOKAHEAD = 0.3  # coarticulation: the mouth anticipates the next frame's shape


def frame_rms(pcm: np.ndarray, samples_per_frame: int) -> np.ndarray:
    """RMS of each whole frame of audio (the last partial frame is zero-padded)."""
    frames = -(-pcm.shape[0] // samples_per_frame)
    padded = np.zeros(frames * samples_per_frame, dtype=np.float32)
    padded[: pcm.shape[0]] = pcm
    return np.sqrt(np.mean(padded.reshape(frames, samples_per_frame) ** 2, axis=1))


def viseme_track(speech: Speech, timebase: TimeBase) -> np.ndarray:
    """[frames, len(VISEMES)] weights; each row sums to 1 (closed takes what the open shapes leave)."""
    spf = timebase.samples_per_frame
    frames = max(1, timebase.frames_for_samples(speech.samples))
    target = np.zeros((frames, len(VISEMES)), dtype=np.float64)
    marks = sorted(speech.phonemes, key=lambda m: m.sample)
    for i, mark in enumerate(marks):
        start = max(0, mark.sample)
        end = marks[i + 1].sample if i + 1 < len(marks) else speech.samples
        end = min(end, frames * spf)
        if end <= start:
            continue
        col = _VISEME_INDEX.get(mark.viseme, 0)
        first, last = start // spf, (end - 1) // spf
        for f in range(first, last + 1):
            overlap = min(end, (f + 1) * spf) - max(start, f * spf)
            target[f, col] += overlap / spf
    open_part = target[:, 1:]
    rms = frame_rms(speech.pcm, spf)[:frames]
    loud = float(np.percentile(rms, 90)) if rms.size else 0.0
    gate = np.clip((rms - 0.12 * loud) / max(0.25 * loud, 1e-6), 0.0, 1.0) if loud > 1e-4 else rms * 0
    open_part *= gate[:, None]
    # coarticulation, then asymmetric smoothing
    ahead = np.vstack([open_part[1:], np.zeros((1, open_part.shape[1]))])
    open_part = (1 - LOOKAHEAD) * open_part + LOOKAHEAD * ahead
    smoothed = np.zeros_like(open_part)
    prev = np.zeros(open_part.shape[1])
    for f in range(frames):
        rate = np.where(open_part[f] > prev, ATTACK, RELEASE)
        prev = prev + rate * (open_part[f] - prev)
        smoothed[f] = prev
    # smoothing must not hold the mouth open into silence: close it wherever the audio is near silent
    silence_gate = np.clip((rms - 0.02 * loud) / max(0.04 * loud, 1e-6), 0.0, 1.0) if loud > 1e-4 else rms * 0
    smoothed *= silence_gate[:, None]
    total = smoothed.sum(axis=1, keepdims=True)
    smoothed = np.where(total > 1.0, smoothed / np.maximum(total, 1e-9), smoothed)
    out = np.zeros((frames, len(VISEMES)), dtype=np.float32)
    out[:, 1:] = smoothed
    out[:, 0] = 1.0 - smoothed.sum(axis=1)
    return out
