"""One voice per language: e.g. piper for English, espeak for Chinese, kokoro for Japanese.

Neural voices are mostly single-language, while the character answers in the viewer's language; the
router picks the voice for each sentence's language and falls back to a default (espeak speaks all three).
A line that mixes scripts ("Hello everyone, 大家好！") is split into runs by script and each run is
voiced by its own language's voice; the runs are stitched into one Speech whose text is the line as
written, so captions keep its spacing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.language import script_runs
from engine.lifecycle import Lifecycle
from engine.voice.base import PhonemeMark, Speech, SpeechRun, Voice, VoiceError, WordMark


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
        runs = [(chunk, lang) for chunk, lang in script_runs(text, language) if chunk.strip()]
        if not runs:
            return self.voice_for(language).synthesize(text, language)
        if len(runs) == 1:  # one script: its own language's voice ("OK!" in a Chinese reply is English)
            run_language = runs[0][1]
            voice = self.voice_for(run_language)
            speech = voice.synthesize(text, run_language)
            speech.runs = [SpeechRun(0, speech.samples, text, run_language, type(voice).__name__)]
            return speech
        return stitch(text, language, [(chunk, lang, self.voice_for(lang)) for chunk, lang in runs], self.sample_rate)

    def prewarm(self) -> None:
        for voice in {id(v): v for v in [*self.voices.values(), self.default] if v is not None}.values():
            voice.prewarm()


def stitch(text: str, language: str, runs: list[tuple[str, str, Voice]], sample_rate: int) -> Speech:
    """Voice each (text, language, voice) run and join them end to end: one Speech for the whole line,
    its phoneme and word marks moved to where each run starts, `runs` saying who spoke what."""
    pcm: list[np.ndarray] = []
    phonemes: list[PhonemeMark] = []
    words: list[WordMark] = []
    spoken: list[SpeechRun] = []
    offset = 0
    for chunk, lang, voice in runs:
        part = voice.synthesize(chunk.strip(), lang)
        if part.sample_rate != sample_rate:
            raise VoiceError(f"{type(voice).__name__} spoke at {part.sample_rate} Hz, not {sample_rate}")
        pcm.append(part.pcm.astype(np.float32, copy=False))
        phonemes += [PhonemeMark(m.sample + offset, m.phoneme, m.viseme) for m in part.phonemes]
        words += [WordMark(w.start + offset, w.end + offset, w.text) for w in part.words]
        spoken.append(SpeechRun(offset, offset + part.samples, chunk, lang, type(voice).__name__))
        offset += part.samples
    audio = np.concatenate(pcm) if pcm else np.zeros(0, np.float32)
    return Speech(text, language, audio, sample_rate, phonemes, words, spoken)
