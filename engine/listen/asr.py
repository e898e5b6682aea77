"""Speech to text with faster-whisper (CTranslate2, int8 on CPU): a loaded model, and one recognizer per utterance.

`WhisperRecognizer` owns the model (loaded in `prewarm`) and decodes blocking, one call at a time, on
at most `cpu_threads` threads. `Utterance` recognises while the speaker talks: each `partial()`
decodes the audio after the last committed word, and words that two partials in a row agree on are
committed (see :mod:`agreement`), so `final()` decodes only the tail with the committed text as its
prompt. Whisper always encodes a 30 s window, so a decode costs the encoder's fixed time plus the
decoder's per-token time; committing saves the latter, and `final()` never pays for the whole
utterance again.

`decode` drives faster-whisper one level below `transcribe` (`encode`, `generate_segments`,
`find_alignment`), so the encoder output that picks the language is the one decoded, and word times
cost one alignment pass; the extra pins faster-whisper below 2 for that.

The language is chosen per utterance among `languages` only: Whisper's probabilities over all of its
languages are restricted to the allowed ones and the best one wins, so a Japanese speaker is never
"detected" as Korean and decoded as such.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.lifecycle import Lifecycle
from engine.listen.agreement import agreed_words, quiet_cut
from engine.listen.errors import ListenError, import_faster_whisper
from engine.listen.model_files import whisper_model_dir
from engine.listen.transcript import Transcript, Word, join_text

log = logging.getLogger("stagecast.listen")

SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One decode of some audio: raw text (Whisper's spaces kept), words (samples relative to that audio), language."""

    text: str
    words: list[Word]
    language: str
    language_prob: float


class WhisperRecognizer(Lifecycle):
    """A Whisper model for short utterances in a few allowed languages. Blocking: call from worker threads."""

    def __init__(
        self,
        model: str | Path = "base",
        compute_type: str = "int8",
        cpu_threads: int = 1,
        languages: Sequence[str] = ("en", "zh", "ja"),
        beam_size: int = 5,
    ) -> None:
        if not languages:
            raise ValueError("at least one language must be allowed")
        self.model = model
        self.compute_type = compute_type
        self.cpu_threads = max(1, int(cpu_threads))
        self.languages = tuple(languages)
        self.beam_size = beam_size
        self._model: Any = None
        self._options: Any = None  # faster-whisper's TranscriptionOptions with our settings
        self._lock = threading.Lock()  # one decode at a time: the model has one worker

    def prewarm(self) -> None:
        """Find (or join) the model files and load the model."""
        with self._lock:
            self._load()

    async def aclose(self) -> None:
        self._model = None

    def utterance(self, guard_s: float = 1.0) -> Utterance:
        """A new utterance to feed while the speaker talks."""
        return Utterance(self, guard_s=guard_s)

    def recognize(self, pcm16k: np.ndarray) -> Transcript:
        """A whole utterance at once (no partials)."""
        utt = self.utterance()
        utt.feed(pcm16k)
        return utt.final()

    def decode(
        self, audio: np.ndarray, language: str | None = None, prompt: str = "", words: bool = False
    ) -> Decoded:
        """Decode 16 kHz float32 audio; `language=None` picks the best allowed one from this audio."""
        fw = import_faster_whisper()
        with self._lock:
            model = self._load()
            features = model.feature_extractor(np.asarray(audio, dtype=np.float32))
            first = model.encode(fw.audio.pad_or_trim(features))  # reused by the decode: one encoder pass
            prob = 1.0
            if language is None:
                language, prob = self._pick_language(model, first)
            tokenizer = fw.tokenizer.Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
            )
            options = dataclasses.replace(self._options, initial_prompt=prompt or None)
            segments = list(model.generate_segments(features, tokenizer, options, False, first))
            found = self._align(model, tokenizer, segments, first, features.shape[-1] - 1) if words else []
        return Decoded("".join(s.text for s in segments), found, language, prob)

    @staticmethod
    def _align(model: Any, tokenizer: Any, segments: list[Any], encoded: Any, frames: int) -> list[Word]:
        """Word times for the first 30 s window, from one cross-attention alignment pass.

        faster-whisper's own `word_timestamps` re-seeks to the last word's end and decodes the rest of
        the window again (a second encoder pass, and often a hallucinated "Thank you." on the silence
        after the speech), which doubled a partial's cost; aligning the decoded tokens once does not.
        """
        tokens = [t for s in segments if s.seek == 0 for t in s.tokens if t < tokenizer.eot]
        if not tokens:
            return []
        frames = min(frames, model.feature_extractor.nb_max_frames)
        timed = model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        sr = SAMPLE_RATE
        return [Word(w["word"], round(w["start"] * sr), round(w["end"] * sr)) for w in timed if w["word"]]

    def _pick_language(self, model: Any, encoded: Any) -> tuple[str, float]:
        if not model.model.is_multilingual:
            return "en", 1.0
        probs = {token[2:-2]: p for token, p in model.model.detect_language(encoded)[0]}
        allowed = {lang: probs.get(lang, 0.0) for lang in self.languages}
        best = max(allowed, key=lambda lang: allowed[lang])
        return best, allowed[best] / (sum(allowed.values()) or 1.0)

    def _load(self) -> Any:
        """The model, loaded on first need (caller holds the lock)."""
        if self._model is not None:
            return self._model
        fw = import_faster_whisper()
        folder = whisper_model_dir(self.model)
        t0 = time.perf_counter()
        try:
            model = fw.WhisperModel(
                str(folder), device="cpu", compute_type=self.compute_type, cpu_threads=self.cpu_threads, num_workers=1
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ListenError(f"cannot load the whisper model in {folder}: {exc}") from exc
        unknown = [lang for lang in self.languages if lang not in model.supported_languages]
        if unknown:
            raise ListenError(f"whisper model {self.model!r} does not know languages {unknown}")
        # faster-whisper's own defaults for everything we do not set; the audio is never decoded here.
        _, info = model.transcribe(
            np.zeros(SAMPLE_RATE // 10, dtype=np.float32),
            language=self.languages[0],
            beam_size=self.beam_size,
            temperature=0.0,  # no temperature fallback: bounded, repeatable decode times
            condition_on_previous_text=False,
            without_timestamps=True,  # fewer tokens; word times come from the alignment pass
            vad_filter=False,  # the caller's VAD already cut the utterance
        )
        self._options = info.transcription_options
        self._model = model
        log.info("whisper model %s loaded from %s in %.2f s", self.model, folder, time.perf_counter() - t0)
        return model


class Utterance:
    """One utterance, recognised while it grows. `feed` from the audio thread; `partial`/`final` from a worker.

    How a caller gets the transcript soon after the speaker stops: start feeding about 250 ms before
    SpeechStart.sample (keep a short ring buffer; Whisper misses a first word cut at its onset), call
    `partial()` every 0.5-1 s and at once on each Pause (a pause may be the end), and at SpeechEnd
    call `final(end)` with the end in this utterance's samples: when the partial that began in the
    pause heard all the speech, nothing is decoded again.
    """

    def __init__(self, recognizer: WhisperRecognizer, guard_s: float = 1.0) -> None:
        self._rec = recognizer
        self._guard = int(guard_s * SAMPLE_RATE)
        self._chunks: list[np.ndarray] = []
        self._audio = np.zeros(0, dtype=np.float32)
        self._fed = 0
        self._feed_lock = threading.Lock()
        self._committed: list[Word] = []
        self._offset = 0  # first sample not covered by the committed words
        self._previous: list[Word] = []  # the last partial's uncommitted words
        self._decoded_until = 0  # audio length at the last partial
        self._hypothesis = ""  # the last partial's text
        self._decode_lock = threading.Lock()  # partial and final take turns
        self._language: str | None = None  # fixed once words are committed in it
        self._detected = ("", 0.0)  # the latest choice of language and its probability

    @property
    def committed_text(self) -> str:
        return join_text(*(w.text for w in self._committed))

    def feed(self, pcm16k: np.ndarray) -> None:
        """Append 16 kHz float32 samples."""
        block = np.asarray(pcm16k, dtype=np.float32).reshape(-1)
        with self._feed_lock:
            self._chunks.append(block)
            self._fed += block.shape[0]

    def partial(self) -> Transcript | None:
        """Decode the audio after the committed words; None when nothing new has come since the last call."""
        with self._decode_lock:
            return self._partial()

    def final(self, end: int | None = None) -> Transcript:
        """The whole transcript: what is left after the committed words, decoded with them as the prompt.

        `end` is where the speech ended (SpeechEnd.sample, counted from this utterance's first sample):
        if the last partial already heard up to there, only silence came after it, so its text is final
        and nothing is decoded again.
        """
        with self._decode_lock:
            audio = self._snapshot()
            t0 = time.perf_counter()
            if end is not None and self._hypothesis and self._decoded_until >= end:
                return self._transcript(self._hypothesis, False, audio, t0)
            tail = ""
            if audio.shape[0] - self._offset >= SAMPLE_RATE // 10:
                tail = self._decode(audio, words=False).text
            return self._transcript(join_text(*(w.text for w in self._committed), tail), False, audio, t0)

    def _partial(self) -> Transcript | None:
        audio = self._snapshot()
        if audio.shape[0] - self._decoded_until < SAMPLE_RATE // 10 or audio.shape[0] - self._offset < SAMPLE_RATE // 2:
            return None
        t0 = time.perf_counter()
        decoded = self._decode(audio, words=True)
        self._decoded_until = audio.shape[0]
        words = [Word(w.text, w.start + self._offset, w.end + self._offset) for w in decoded.words]
        agreed = agreed_words(self._previous, words, stable_until=audio.shape[0] - self._guard)
        n, cut = quiet_cut(audio, self._offset, words, agreed)
        if n:
            self._committed += words[:n]
            self._offset = cut
            self._language = decoded.language
        self._previous = words[n:]
        self._hypothesis = join_text(*(w.text for w in self._committed), *(w.text for w in words[n:]))
        return self._transcript(self._hypothesis, True, audio, t0)

    def _decode(self, audio: np.ndarray, words: bool) -> Decoded:
        decoded = self._rec.decode(audio[self._offset :], self._language, self.committed_text, words)
        if self._language is None:  # still choosing: the latest decode's choice stands
            self._detected = (decoded.language, decoded.language_prob)
        return decoded

    def _snapshot(self) -> np.ndarray:
        with self._feed_lock:
            if self._chunks:
                self._audio = np.concatenate([self._audio, *self._chunks])
                self._chunks = []
            return self._audio

    def _transcript(self, text: str, partial: bool, audio: np.ndarray, t0: float) -> Transcript:
        return Transcript(
            text=text,
            language=self._detected[0],
            language_prob=self._detected[1],
            partial=partial,
            audio_s=audio.shape[0] / SAMPLE_RATE,
            decode_s=time.perf_counter() - t0,
        )
