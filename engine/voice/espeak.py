"""espeak-ng voice backend: fast, offline, deterministic speech with phoneme and word timings.

libespeak-ng (shipped by the ``espeakng-loader`` wheel, no system install) is driven through ctypes in
synchronous mode: ``espeak_Synth`` returns only after our callback has received every int16 sample and
every event, so one call is one complete utterance.  The library is a process-wide singleton with global
state (current voice, parameters, callback), so all use goes through one lock; callers on several threads
are serialized, which is fine because a short sentence takes a few milliseconds.

Event samples are at espeak's native rate (22050 Hz); audio is resampled with soxr and the marks scaled
to the output rate.  Hanzi and kanji are converted to pinyin / kana first (see :mod:`textprep`).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.lifecycle import Lifecycle
from engine.voice.base import PhonemeMark, Speech, VoiceError, WordMark
from engine.voice.textprep import Span, prepare
from engine.voice.visemes import viseme_for

log = logging.getLogger("stagecast.voice.espeak")

DEFAULT_VOICES: dict[str, str] = {
    "en": "en-us",
    "zh": "cmn-latn-pinyin",  # plain "cmn" reads tone-numbered pinyin as English
    "ja": "ja",
}

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EV_LIST_TERMINATED = 0
_EV_WORD = 1
_EV_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3

# espeak keeps synthesis state in C statics across utterances: the pitch "flutter" table index and the
# cycle counter behind "roughness" make the same text sound (slightly) different depending on what was
# spoken before.  This voice variant switches both off so output depends only on (text, voice, params).
_VARIANT = "stagecast"
_VARIANT_TEXT = "language variant\nname stagecast\nflutter 0\nroughness 8\n"
# Below 100 so the wavegen never clips: clipping lowers a static gain that later utterances inherit.
_VOLUME = 75


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # native-rate sample index from the utterance start
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class _RawEvent:
    kind: int
    text_position: int
    length: int
    sample: int
    name: str  # phoneme mnemonic for phoneme events


class _Engine:
    """The one libespeak-ng instance in this process; every method must be called with _LOCK held."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise VoiceError("espeak voice needs the 'espeakng-loader' package (pip install espeakng-loader)") from exc
        lib_path = espeakng_loader.get_library_path()
        data_path = _data_with_variant(str(espeakng_loader.get_data_path()))
        try:
            lib = ctypes.CDLL(str(lib_path))
        except OSError as exc:
            raise VoiceError(f"cannot load libespeak-ng from {lib_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        options = _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT  # never let the library exit() our process
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), options)
        if rate <= 0:
            raise VoiceError(f"espeak_Initialize failed ({rate}); is espeak-ng-data at {data_path}?")
        self.lib = lib
        self.native_rate = int(rate)
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds a raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._chunks: list[bytes] = []
        self._events: list[_RawEvent] = []
        self._srand: Callable[[int], object] | None
        try:  # rand() feeds breath noise in some voices; reseed per utterance for determinism
            self._srand = ctypes.CDLL(None).srand
        except (OSError, AttributeError):
            self._srand = None

    def _on_synth(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:
        try:
            if count > 0 and wav:
                self._chunks.append(ctypes.string_at(wav, count * 2))
            i = 0
            while events and events[i].type != _EV_LIST_TERMINATED:
                ev = events[i]
                if ev.type in (_EV_WORD, _EV_PHONEME):
                    name = ev.id.string.decode("utf-8", "replace") if ev.type == _EV_PHONEME else ""
                    self._events.append(_RawEvent(ev.type, ev.text_position, ev.length, ev.sample, name))
                i += 1
        except Exception:  # must not unwind through C; keep what we have
            return 0
        return 0

    def synth(self, text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, list[_RawEvent]]:
        # Select voice and parameters every call: other EspeakVoice instances share this engine.
        name = voice if "+" in voice else f"{voice}+{_VARIANT}"
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise VoiceError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(_PARAM_VOLUME, _VOLUME, 0)
        if self._srand is not None:
            self._srand(1)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        chunks, events = self._chunks, self._events
        self._chunks, self._events = [], []
        if err != 0:
            raise VoiceError(f"espeak_Synth failed with error {err}")
        pcm = np.frombuffer(b"".join(chunks), dtype=np.int16).copy()
        return pcm, events


def _data_with_variant(data_path: str) -> str:
    """A private espeak-ng-data (symlinks to the wheel's files) that also holds our voice variant."""
    root = tempfile.mkdtemp(prefix="stagecast-espeak-")
    atexit.register(shutil.rmtree, root, True)
    mirror = os.path.join(root, "espeak-ng-data")
    try:
        os.mkdir(mirror)
        for name in os.listdir(data_path):
            if name != "voices":
                os.symlink(os.path.join(data_path, name), os.path.join(mirror, name))
        voices = os.path.join(mirror, "voices")
        os.mkdir(voices)
        for name in os.listdir(os.path.join(data_path, "voices")):
            if name != "!v":
                os.symlink(os.path.join(data_path, "voices", name), os.path.join(voices, name))
        shutil.copytree(os.path.join(data_path, "voices", "!v"), os.path.join(voices, "!v"))
        with open(os.path.join(voices, "!v", _VARIANT), "w", encoding="utf-8") as f:
            f.write(_VARIANT_TEXT)
    except OSError as exc:
        raise VoiceError(f"cannot prepare espeak-ng data from {data_path}: {exc}") from exc
    return mirror


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """Initialize libespeak-ng once per process (caller holds _LOCK)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _span_for(spans: list[Span], position: int, length: int) -> int | None:
    """Index of the display span an espeak word event (0-based char position) belongs to."""
    for i, (start, end, _) in enumerate(spans):
        if start <= position < end:
            return i
    for i, (start, end, _) in enumerate(spans):  # e.g. "$3.50": the event starts at "$", the span at "3"
        if start < position + max(length, 1) and end > position:
            return i
    return None


def build_marks(
    events: list[_RawEvent], spans: list[Span], scale: float, n_out: int
) -> tuple[list[PhonemeMark], list[WordMark]]:
    """Phoneme and word marks at the output rate from espeak's event stream.

    A word spans from its first phoneme to the next phoneme event after its last one (a pause or the
    next word), so the silence espeak inserts at commas and between pinyin syllables is in no word.
    """
    timeline: list[tuple[int, str, int | None]] = []  # (sample, phoneme, span index; None = pause)
    current: int | None = None
    for ev in events:
        if ev.kind == _EV_WORD:
            current = _span_for(spans, ev.text_position - 1, ev.length)
        elif ev.name and not ev.name.startswith("("):  # "(en)" etc. are language switches, not sounds
            pos = min(max(round(ev.sample * scale), 0), n_out)
            timeline.append((pos, ev.name, None if ev.name.startswith("_") else current))

    phonemes: list[PhonemeMark] = []
    for pos, name, _ in timeline:
        if pos >= n_out:
            continue
        mark = PhonemeMark(pos, name, viseme_for(name))
        if phonemes and phonemes[-1].sample >= pos:  # zero-length phoneme: the later one is what plays
            phonemes[-1] = PhonemeMark(phonemes[-1].sample, name, mark.viseme)
        else:
            phonemes.append(mark)

    bounds: dict[int, list[int]] = {}
    for k, (pos, _, span) in enumerate(timeline):
        if span is None:
            continue
        end = next((p for p, _, _ in timeline[k + 1 :] if p > pos), n_out)
        if span in bounds:
            bounds[span][0] = min(bounds[span][0], pos)
            bounds[span][1] = max(bounds[span][1], end)
        else:
            bounds[span] = [pos, end]
    words = [
        WordMark(start, min(end, n_out), spans[i][2])
        for i, (start, end) in sorted(bounds.items(), key=lambda kv: kv[1][0])
        if start < n_out and end > start
    ]
    return phonemes, words


class EspeakVoice(Lifecycle):
    """Offline espeak-ng voice for en / zh / ja (plus any espeak voice added via `voices`)."""

    def __init__(
        self,
        sample_rate: int = 48000,
        voices: dict[str, str] | None = None,
        rate_wpm: int = 165,
        pitch: int = 50,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.voices = {**DEFAULT_VOICES, **(voices or {})}
        self.rate_wpm = rate_wpm
        self.pitch = pitch
        with _LOCK:
            self.native_rate = _engine().native_rate  # fail fast if the library is missing

    def synthesize(self, text: str, language: str) -> Speech:
        """Blocking synthesis of one utterance; thread-safe (espeak calls are serialized)."""
        voice = self.voices.get(language)
        if voice is None:
            raise VoiceError(f"espeak voice has no language {language!r}; supported: {sorted(self.voices)}")
        spoken, spans = prepare(text, language)
        if not spoken.strip():
            return Speech(text, language, np.zeros(0, dtype=np.float32), self.sample_rate)
        with _LOCK:
            native, events = _engine().synth(spoken, voice, self.rate_wpm, self.pitch)
        pcm = self._resample(native)
        scale = self.sample_rate / self.native_rate
        phonemes, words = build_marks(events, spans, scale, int(pcm.shape[0]))
        return Speech(text, language, pcm, self.sample_rate, phonemes, words)

    def prewarm(self) -> None:
        """Load every voice and text frontend once so the first live sentence is fast. A language whose
        front-end is missing is logged and skipped: the show goes on air, and only replies in that
        language fail (with the same message, as a voice health event)."""
        samples = {"en": "Hello.", "zh": "你好。", "ja": "こんにちは。"}
        for language in self.voices:
            try:
                self.synthesize(samples.get(language, "a"), language)
            except VoiceError as exc:
                log.warning("espeak: %s replies will fail: %s", language, exc)

    def _resample(self, native: np.ndarray) -> np.ndarray:
        audio = native.astype(np.float32) / 32768.0
        if audio.size == 0 or self.sample_rate == self.native_rate:
            return audio
        import soxr

        out = soxr.resample(audio, self.native_rate, self.sample_rate, quality="HQ")
        return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
