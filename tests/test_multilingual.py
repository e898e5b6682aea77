"""en/zh/ja end to end: viewer message -> openai brain (local fake) -> reply in the viewer's language ->
espeak speech whose visemes follow its phoneme timings."""

import asyncio
import itertools

import numpy as np
import pytest

from engine.brain.base import Prompt
from engine.brain.chunking import SentenceChunker
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.tags import split_emotion_tags
from engine.clock import TimeBase
from engine.language import detect_language
from engine.lipsync import viseme_track
from engine.state import VISEMES
from engine.voice.espeak import EspeakVoice
from tests.fakes.openai_server import FakeOpenAIServer, asked_language

pytestmark = pytest.mark.integration
TB = TimeBase(30, 48000)
MESSAGES = {"en": "hello, how are you?", "zh": "你好，今天怎么样？", "ja": "こんにちは、元気ですか？"}


def test_each_language_gets_a_reply_and_speech_in_that_language():
    async def main():
        async with FakeOpenAIServer(ttft_s=0.0, tokens_per_s=1000) as server:
            brain = OpenAICompatBrain(server.base_url, "m")
            replies = {}
            for lang, text in MESSAGES.items():
                prompt = Prompt(text, detect_language(text), "alex", "u1")
                chunker = SentenceChunker(language=prompt.language)
                sentences = []
                async for piece in brain.reply(prompt, []):
                    sentences += chunker.feed(piece)
                replies[lang] = sentences + chunker.flush()
            await brain.aclose()
            return replies, server.requests

    replies, requests = asyncio.run(main())
    voice = EspeakVoice(sample_rate=TB.sample_rate)
    for (lang, sentences), request in zip(replies.items(), requests, strict=True):
        assert asked_language(request.instructions) == lang  # the brain asked for the viewer's language
        assert len(sentences) >= 2
        cues, first = split_emotion_tags(sentences[0])
        assert [c.emotion for c in cues] == ["joy"]
        spoken = [first] + [split_emotion_tags(s)[1] for s in sentences[1:]]
        assert detect_language("".join(spoken)) == lang
        for text in spoken:
            speech = voice.synthesize(text, lang)
            assert speech.samples > TB.sample_rate // 4 and speech.language == lang
            marks = speech.phonemes
            assert len(marks) >= 4 and all(a.sample < b.sample for a, b in itertools.pairwise(marks))
            assert {m.viseme for m in marks} - {"closed"}  # the mouth opens
            # the viseme track opens the mouth where the phoneme marks say a vowel is sounding
            track = viseme_track(speech, TB)
            hits = []
            for mark, nxt in itertools.pairwise(marks):
                if mark.viseme == "closed" or nxt.sample - mark.sample < 2 * TB.samples_per_frame:
                    continue
                f = mark.sample // TB.samples_per_frame
                hits.append(track[f : f + 3, VISEMES.index(mark.viseme)].max() > 0.15)
            assert hits and sum(hits) >= 0.6 * len(hits), (lang, text, hits)
            assert np.allclose(track.sum(axis=1), 1.0, atol=1e-4)
            assert speech.words and speech.words[0].start >= 0
