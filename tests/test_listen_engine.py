"""Listening: Silero VAD events and Whisper transcripts on real speech made at test time (espeak en, kokoro ja).

Whisper base runs on two threads here; the whole file takes about a minute on 2 cores.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from engine.lifecycle import Component
from engine.listen import ListenError
from engine.listen.agreement import agreed_words, quiet_cut
from engine.listen.asr import SAMPLE_RATE, WhisperRecognizer
from engine.listen.model_files import BASE_SHA256, packaged_base_dir, sha256_of, whisper_model_dir
from engine.listen.transcript import Word
from engine.listen.vad import CHUNK, Level, Pause, SileroVad, SpeechEnd, SpeechStart, VadEvent, VadSegmenter
from engine.voice.espeak import EspeakVoice
from tests.listen_support import cer, silence, sound_span, stream, wer

pytestmark = pytest.mark.integration

EN_1 = "Hello there, how are you doing today?"
EN_2 = "I was wondering about the weather tomorrow."
EN_LONG = "Yesterday I walked to the market, and I bought some fresh apples for my grandmother."
JA = "今日はいい天気なので、公園で散歩しましょう。"  # the comma is a 400 ms pause
MS = SAMPLE_RATE // 1000


@pytest.fixture(scope="module")
def espeak() -> EspeakVoice:
    return EspeakVoice(sample_rate=SAMPLE_RATE)


@pytest.fixture(scope="module")
def recognizer() -> WhisperRecognizer:
    rec = WhisperRecognizer(cpu_threads=2)
    rec.prewarm()
    return rec


@pytest.fixture(scope="module")
def japanese() -> np.ndarray:
    from engine.voice.kokoro import KokoroJaVoice

    return KokoroJaVoice(sample_rate=SAMPLE_RATE).synthesize(JA, "ja").pcm


def feed_live(seg: VadSegmenter, pcm: np.ndarray, block: int = 320) -> list[tuple[VadEvent, int]]:
    """Feed in 20 ms blocks like a microphone; each event with the number of samples fed when it came out."""
    out = []
    for at in range(0, pcm.shape[0], block):
        out += [(e, min(at + block, pcm.shape[0])) for e in seg.feed(pcm[at : at + block])]
    return out


# --- VAD ---------------------------------------------------------------------------------------------------


def test_vad_events_land_where_speech_starts_pauses_and_ends(espeak):
    a, b = espeak.synthesize(EN_1, "en").pcm, espeak.synthesize(EN_2, "en").pcm
    lead, gap = SAMPLE_RATE, round(0.3 * SAMPLE_RATE)
    pcm = np.concatenate([silence(1.0), a, silence(0.3), b, silence(1.0)])
    onset = lead + sound_span(a)[0]
    gap_start = lead + sound_span(a)[1]
    second = lead + a.shape[0] + gap + sound_span(b)[0]
    offset = lead + a.shape[0] + gap + sound_span(b)[1]

    seg = VadSegmenter(SileroVad())  # start 200 ms, end 500 ms, pause 150 ms
    events = feed_live(seg, pcm)
    starts = [(e, t) for e, t in events if isinstance(e, SpeechStart)]
    ends = [(e, t) for e, t in events if isinstance(e, SpeechEnd)]
    pauses = [e for e, _ in events if isinstance(e, Pause)]
    assert len(starts) == 1 and len(ends) == 1, "one utterance: the 300 ms gap is a pause, not an end"

    start, said = starts[0]
    assert onset - CHUNK <= start.sample <= onset + 2 * CHUNK  # Silero reacts within about a chunk
    assert said <= start.sample + 200 * MS + CHUNK  # decided once speech has lasted start_ms
    end, said = ends[0]
    assert offset - CHUNK <= end.sample <= offset + 2 * CHUNK
    assert end.sample + 500 * MS <= said <= end.sample + 500 * MS + CHUNK
    assert any(gap_start - CHUNK <= p.sample <= gap_start + 2 * CHUNK for p in pauses), (pauses, gap_start)
    assert all(p.sample < second or p.sample == end.sample for p in pauses)

    levels = [e for e, _ in events if isinstance(e, Level)]
    assert [lv.sample for lv in levels] == list(range(0, pcm.shape[0] // CHUNK * CHUNK, CHUNK))
    assert levels[0].rms_db < -90 and levels[0].speech_prob < 0.1
    loud = [lv for lv in levels if onset + 2 * CHUNK <= lv.sample <= gap_start - 4 * CHUNK]
    assert np.median([lv.rms_db for lv in loud]) > -30 and np.median([lv.speech_prob for lv in loud]) > 0.8
    assert seg.level is levels[-1] and not seg.speaking


def test_vad_decisions_depend_only_on_the_samples(espeak):
    pcm = np.concatenate([silence(0.5), espeak.synthesize(EN_1, "en").pcm, silence(0.8)])
    seg = VadSegmenter(SileroVad())
    runs = []
    for block in (320, 1000, pcm.shape[0]):
        seg.reset()
        runs.append([e for e, _ in feed_live(seg, pcm, block)])
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("level_db", [-45, -30, -20])
def test_silence_and_white_noise_never_start_speech(level_db):
    noise = np.random.default_rng(7).standard_normal(5 * SAMPLE_RATE).astype(np.float32) * 10 ** (level_db / 20)
    seg = VadSegmenter(SileroVad())
    events = seg.feed(silence(2.0)) + seg.feed(noise)
    assert not [e for e in events if not isinstance(e, Level)]
    assert max(e.speech_prob for e in events if isinstance(e, Level)) < 0.5


def test_silero_takes_512_sample_chunks_and_a_missing_model_is_clear(tmp_path):
    vad = SileroVad()
    assert 0.0 <= vad.prob(np.zeros(CHUNK, dtype=np.float32)) < 0.1
    with pytest.raises(ValueError, match="512"):
        vad.prob(np.zeros(480, dtype=np.float32))
    with pytest.raises(ListenError, match="does not exist"):
        SileroVad(tmp_path / "nope.onnx")


# --- ASR ---------------------------------------------------------------------------------------------------


def test_english_is_recognised_and_detected(recognizer, espeak):
    assert isinstance(recognizer, Component)
    for text in (EN_1, EN_2):
        pcm = np.concatenate([silence(0.2), espeak.synthesize(text, "en").pcm, silence(0.3)])
        result = recognizer.recognize(pcm)
        assert wer(text, result.text) <= 0.30, result.text
        assert result.language == "en" and result.language_prob > 0.8 and not result.partial
        assert result.audio_s == pytest.approx(pcm.shape[0] / SAMPLE_RATE)


def test_japanese_is_recognised_and_detected(recognizer, japanese):
    result = recognizer.recognize(np.concatenate([silence(0.2), japanese, silence(0.3)]))
    assert cer(JA, result.text) <= 0.40, result.text
    assert result.language == "ja" and result.language_prob > 0.8


@pytest.mark.parametrize("language", ["en", "ja"])
def test_streaming_is_as_good_as_whole_and_leaves_only_the_tail(recognizer, espeak, japanese, language):
    if language == "en":
        speech, text, rate = espeak.synthesize(EN_LONG, "en").pcm, EN_LONG, wer
    else:
        speech, text, rate = japanese, JA, cer
    pcm = np.concatenate([silence(0.2), speech, silence(0.5)])  # the 500 ms of silence that ends an utterance
    speech_end = round(0.2 * SAMPLE_RATE) + sound_span(speech)[1]
    whole = recognizer.recognize(pcm)

    live = stream(recognizer, pcm, end=None)
    assert live.partials and all(p.partial for p in live.partials) and not live.final.partial
    assert [p.audio_s for p in live.partials] == sorted(p.audio_s for p in live.partials)
    assert live.committed, "words that two partials agreed on are committed while the speaker talks"
    assert live.final.text.startswith(live.committed)
    streamed = rate(text, live.final.text)
    assert streamed <= rate(text, whole.text) + 0.1 and streamed <= 0.3, (live.final.text, whole.text)
    assert live.final.language == language

    # told where the speech ended, final() reuses a partial that already heard all of it
    told = stream(recognizer, pcm, end=speech_end, every_s=0.6)
    assert told.partials[-1].audio_s * SAMPLE_RATE >= speech_end
    assert told.final.text == told.partials[-1].text and told.final.decode_s < 0.05
    assert rate(text, told.final.text) <= 0.3


def test_only_allowed_languages_are_chosen():
    class Model:
        is_multilingual = True

        @staticmethod
        def detect_language(_encoded: object) -> list[list[tuple[str, float]]]:
            return [[("<|ko|>", 0.6), ("<|ja|>", 0.3), ("<|en|>", 0.1)]]

    outer = type("Outer", (), {"model": Model()})()
    language, prob = WhisperRecognizer(languages=("en", "zh", "ja"))._pick_language(outer, None)
    assert language == "ja" and prob == pytest.approx(0.75)


def test_agreed_words_are_cut_only_at_a_quiet_gap():
    def word(text: str, a_ms: int, b_ms: int) -> Word:
        return Word(text, a_ms * MS, b_ms * MS)

    before = [word(" Hello", 0, 300), word(" there", 300, 600), word(" friend", 650, 900)]
    now = [word(" hello", 0, 300), word(" there,", 300, 620), word(" how", 700, 900), word(" are", 900, 1100)]
    assert agreed_words(before, now, stable_until=2000 * MS) == 2
    assert agreed_words(before, now, stable_until=500 * MS) == 1

    tone = (0.3 * np.sin(np.arange(1200 * MS) * 2 * np.pi * 200 / SAMPLE_RATE)).astype(np.float32)
    gapped = tone.copy()
    gapped[330 * MS : 370 * MS] = 0.0  # a 40 ms dip after " hello": a stop consonant, not a pause
    assert quiet_cut(gapped, 0, now, 2) == (0, 0), "no phrase break: nothing is cut"
    gapped[640 * MS : 760 * MS] = 0.0  # a 120 ms pause after " there," (aligned to end a little early)
    assert quiet_cut(gapped, 0, now, 2) == (2, 700 * MS)
    assert quiet_cut(gapped, 0, now, 1) == (0, 0), "only agreed words are committed"
    late = [*now[:2], word(" how", 700, 750), *now[3:]]  # a word ending inside the pause: which side is it?
    assert quiet_cut(gapped, 0, late, 3) == (0, 0)


# --- model files and errors --------------------------------------------------------------------------------


def test_a_corrupted_joined_model_is_detected_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STAGECAST_CACHE", str(tmp_path))
    folder = whisper_model_dir("base")
    assert folder == tmp_path / "listen" / "whisper-base"
    model_bin = folder / "model.bin"
    with model_bin.open("r+b") as f:  # flip one byte in the middle
        f.seek(model_bin.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="stagecast.listen"):
        assert packaged_base_dir(folder) == folder
    assert "failed its check" in caplog.text and "rebuilding" in caplog.text
    assert sha256_of(model_bin) == BASE_SHA256
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]


def test_missing_extra_or_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ListenError, match="does not exist"):
        WhisperRecognizer(model=tmp_path / "nope").prewarm()
    with pytest.raises(ListenError, match=r"pip install 'stagecast\[listen\]'"):
        whisper_model_dir("small")  # a name that is not on this machine: nothing is downloaded
    (tmp_path / "empty").mkdir()
    with pytest.raises(ListenError, match=r"no model\.bin"):
        whisper_model_dir(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if the extra were not installed
    with pytest.raises(ListenError, match=r"pip install 'stagecast\[listen\]'"):
        WhisperRecognizer().prewarm()
    with pytest.raises(ListenError, match=r"pip install 'stagecast\[listen\]'"):
        SileroVad()  # its model ships inside the faster-whisper wheel
