"""Is what an input hears the character's own voice coming back?

A stream or device input that also carries the show's audio (an OBS mix, a room microphone near a
speaker) must not let the character interrupt or answer itself. The guard compares the loudness
envelope of the input's last second with the envelope of what the show just put on air, at every
delay up to `max_delay_s` (encoders, players and rooms all add some): a high correlation at some
delay means the input is mostly the echo. Envelopes (10 ms RMS in dB) survive codecs, resampling and
room reverb that break sample-level correlation.
"""

from __future__ import annotations

import numpy as np
import soxr

HOP_S = 0.010


def envelope(pcm: np.ndarray, rate: int) -> np.ndarray:
    """10 ms RMS in dB (floor -80)."""
    hop = max(1, int(rate * HOP_S))
    n = pcm.shape[0] // hop
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = pcm[: n * hop].reshape(n, hop).astype(np.float32)
    rms = np.sqrt(np.mean(frames * frames, axis=1) + 1e-12)
    return np.maximum(20 * np.log10(rms), -80.0).astype(np.float32)


class EchoGuard:
    def __init__(self, show_rate: int, input_rate: int = 16_000, max_delay_s: float = 1.0, window_s: float = 1.0,
                 threshold: float = 0.7) -> None:
        self.show_rate, self.input_rate = show_rate, input_rate
        self.max_delay_s, self.window_s, self.threshold = max_delay_s, window_s, threshold

    def score(self, heard: np.ndarray, output: np.ndarray) -> float:
        """Best correlation of the input's last `window_s` with the output over the delays (0..1);
        0 when either is silent."""
        mic = envelope(heard[-int(self.window_s * self.input_rate):], self.input_rate)
        if mic.shape[0] < 20 or float(mic.std()) < 1.0:
            return 0.0
        out16 = soxr.resample(output.astype(np.float32), self.show_rate, self.input_rate) if output.size else output
        ref = envelope(out16, self.input_rate)
        n = mic.shape[0]
        if ref.shape[0] < n or float(ref.max(initial=-80.0)) < -50.0:
            return 0.0
        mic_c = (mic - mic.mean()) / (mic.std() + 1e-6)
        best = 0.0
        max_lag = min(int(self.max_delay_s / HOP_S), ref.shape[0] - n)
        for lag in range(max_lag + 1):  # the echo is `lag` hops later than the output it repeats
            seg = ref[ref.shape[0] - n - lag: ref.shape[0] - lag]
            sd = float(seg.std())
            if sd < 1.0:
                continue
            r = float(np.dot(mic_c, (seg - seg.mean()) / sd)) / n
            best = max(best, r)
        return best

    def is_echo(self, heard: np.ndarray, output: np.ndarray) -> bool:
        return self.score(heard, output) >= self.threshold
