"""One voice per language: e.g. piper for English, espeak for Chinese, kokoro for Japanese.

Neural voices are mostly single-language, while the character answers in the viewer's language; the
router picks the voice for each sentence's language and falls back to a default (espeak speaks all three).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.lifecycle import Lifecycle
from engine.voice.base import Speech, Voice, VoiceError


class LanguageRouter(Lifecycle):
    """A Voice that delegates by language; every voice must run at the same sample rate."""

    def __init__(self, voices: Mapping[str, Voice], default: Voice | None = None) -> None:
        rates = {v.sample_rate for v in [*voices.values(), *([default] if default else [])]}
        if len(rates) != 1:
            raise VoiceError(f"all routed voices must share one sample rate, got {sorted(rates)}")
        self.voices = dict(voices)
        self.default = default
        self.sample_rate = rates.pop()

    def voice_for(self, language: str) -> Voice:
        voice = self.voices.get(language, self.default)
        if voice is None:
            raise VoiceError(f"no voice for language {language!r}; configured: {sorted(self.voices)}")
        return voice

    def synthesize(self, text: str, language: str) -> Speech:
        return self.voice_for(language).synthesize(text, language)

    def prewarm(self) -> None:
        for voice in {id(v): v for v in [*self.voices.values(), self.default] if v is not None}.values():
            voice.prewarm()
