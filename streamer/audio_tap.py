"""The last seconds of the show's own audio, as it went on air: the echo guard compares what a
stream or device input hears with it, so the character's voice coming back never counts as a co-host."""

from __future__ import annotations

import threading

import numpy as np


class OutputAudioTap:
    def __init__(self, sample_rate: int, seconds: float = 6.0) -> None:
        self.sample_rate = sample_rate
        self._ring = np.zeros(int(sample_rate * seconds), dtype=np.float32)
        self._written = 0  # samples written since the show began
        self._lock = threading.Lock()

    def write(self, audio: np.ndarray) -> None:
        """One frame's audio (frame thread)."""
        n = audio.shape[0]
        with self._lock:
            start = self._written % self._ring.shape[0]
            end = start + n
            if end <= self._ring.shape[0]:
                self._ring[start:end] = audio
            else:
                split = self._ring.shape[0] - start
                self._ring[start:] = audio[:split]
                self._ring[: n - split] = audio[split:]
            self._written += n

    def recent(self, seconds: float) -> np.ndarray:
        """The newest `seconds` of output (fewer at the start of a show), oldest sample first."""
        with self._lock:
            n = min(int(seconds * self.sample_rate), self._written, self._ring.shape[0])
            end = self._written % self._ring.shape[0]
            if n <= end:
                return self._ring[end - n:end].copy()
            return np.concatenate([self._ring[self._ring.shape[0] - (n - end):], self._ring[:end]])
