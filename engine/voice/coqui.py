"""The `coqui` voice: XTTS v2 (Coqui TTS) from a local model folder, optional and heavy.

Needs ``pip install coqui-tts torchaudio`` (not an extra of ours: it pins large, conflicting
dependencies) and a model folder holding ``config.json``, ``model.pth``, ``vocab.json`` (and usually
``speakers_xtts.pth``), copied in by hand: XTTS weights are not on PyPI and this project never downloads.
A reference clip (``speaker_wav``, a few seconds of clean speech) sets the character's timbre.  XTTS is
multilingual (en, zh-cn, ja, ...) at 24 kHz; it reports no timings, so marks are borrowed from espeak.
It wants a GPU: on a CPU a sentence takes several times its own length.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.lifecycle import Lifecycle
from engine.voice.aligned import borrow_timings, resample
from engine.voice.base import Speech, Voice, VoiceError

XTTS_LANGUAGE = {"en": "en", "zh": "zh-cn", "ja": "ja"}
XTTS_RATE = 24000
_REQUIRED = ("config.json", "model.pth", "vocab.json")


def check_model_dir(model_dir: str | Path) -> Path:
    """The folder, if it holds an XTTS v2 model; VoiceError naming what is missing otherwise."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise VoiceError(f"coqui voice: model folder {path} does not exist (copy an XTTS v2 model there)")
    missing = [f for f in _REQUIRED if not (path / f).is_file()]
    if missing:
        raise VoiceError(f"coqui voice: {path} is missing {', '.join(missing)} (an XTTS v2 folder has {_REQUIRED})")
    return path


def _import_xtts() -> tuple[Any, Any]:
    try:
        import torchaudio  # noqa: F401  (XTTS loads reference audio through it)
    except ImportError as exc:
        raise VoiceError("coqui voice needs torchaudio: pip install torchaudio (matching the torch version)") from exc
    try:
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except ImportError as exc:
        raise VoiceError("coqui voice needs Coqui TTS: pip install coqui-tts") from exc
    return XttsConfig, Xtts


class CoquiXttsVoice(Lifecycle):
    """XTTS v2 loaded once; one inference at a time."""

    def __init__(
        self,
        model_dir: str | Path,
        speaker_wav: str | Path,
        sample_rate: int = 48000,
        device: str = "cpu",
        temperature: float = 0.7,
        timing_voice: Voice | None = None,
    ) -> None:
        self.sample_rate = int(sample_rate)
        path = check_model_dir(model_dir)
        speaker = Path(speaker_wav).expanduser()
        if not speaker.is_file():
            raise VoiceError(f"coqui voice: speaker_wav {speaker} does not exist (a few seconds of the voice to clone)")
        xtts_config_cls, xtts_cls = _import_xtts()
        try:
            config = xtts_config_cls()
            config.load_json(str(path / "config.json"))
            model = xtts_cls.init_from_config(config)
            model.load_checkpoint(config, checkpoint_dir=str(path), eval=True)
            model.to(device)
            self._latent, self._embedding = model.get_conditioning_latents(audio_path=[str(speaker)])
        except Exception as exc:
            raise VoiceError(f"coqui voice: cannot load XTTS from {path}: {exc}") from exc
        self._model = model
        self.temperature = temperature
        if timing_voice is None:
            from engine.voice.espeak import EspeakVoice

            timing_voice = EspeakVoice(sample_rate=self.sample_rate)
        self._timing = timing_voice
        self._lock = threading.Lock()

    def synthesize(self, text: str, language: str) -> Speech:
        lang = XTTS_LANGUAGE.get(language)
        if lang is None:
            raise VoiceError(f"coqui voice: no XTTS language for {language!r}; supported {sorted(XTTS_LANGUAGE)}")
        if not text.strip():
            return Speech(text, language, np.zeros(0, dtype=np.float32), self.sample_rate)
        with self._lock:
            out = self._model.inference(text, lang, self._latent, self._embedding, temperature=self.temperature)
        wav = out["wav"]
        wav = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
        pcm = resample(np.asarray(wav, dtype=np.float32), XTTS_RATE, self.sample_rate)
        phonemes, words = borrow_timings(self._timing.synthesize(text, language), pcm, self.sample_rate)
        return Speech(text, language, pcm, self.sample_rate, phonemes, words)
