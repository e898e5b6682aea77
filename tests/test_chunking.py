"""Sentence chunking of streamed brain text: Latin ends, CJK ends, early CJK clause splits."""

import pytest

from engine.brain.chunking import SentenceChunker, split_sentences

pytestmark = pytest.mark.unit


def feed_all(chunker: SentenceChunker, text: str, step: int = 1) -> list[tuple[int, str]]:
    """(characters fed when it came out, sentence) for text streamed `step` chars at a time."""
    out = []
    for i in range(0, len(text), step):
        out += [(i + step, s) for s in chunker.feed(text[i : i + step])]
    return out + [(len(text), s) for s in chunker.flush()]


def test_default_behaviour_is_unchanged():
    assert split_sentences("Hi there! Welcome to the stream. 3.5 is fine") == [
        "Hi there!", "Welcome to the stream.", "3.5 is fine"
    ]
    assert split_sentences("你好！欢迎。") == ["你好！", "欢迎。"]
    # without a language, a long CJK clause waits for its full stop
    assert [s for _, s in feed_all(SentenceChunker(), "大家好，欢迎来到我的直播间，今天一起聊天吧。")] == [
        "大家好，欢迎来到我的直播间，今天一起聊天吧。"
    ]


def test_latin_full_stop_needs_the_following_space_but_bangs_do_not():
    chunker = SentenceChunker(language="en")
    assert chunker.feed("Hi alex!") == ["Hi alex!"]  # released at once: the first audio starts sooner
    assert chunker.feed(" It costs 3.") == []  # "3." may be "3.5"
    assert chunker.feed("5 today. Bye") == ["It costs 3.5 today."]


def test_cjk_closing_quote_stays_with_its_sentence():
    assert split_sentences("「はい。」次です。", "ja") == ["「はい。」", "次です。"]


@pytest.mark.parametrize("language", ["zh", "ja"])
def test_long_cjk_clause_is_released_early(language):
    texts = {
        "zh": "大家好，欢迎来到我的直播间，今天一起聊天吧。",
        "ja": "みなさん、こんにちは、今日も配信を始めますよ。",
    }
    text = texts[language]
    out = feed_all(SentenceChunker(language=language), text)
    first_at, first = out[0]
    assert first.endswith(("，", "、")) and first_at < len(text) // 2 + 2
    assert "".join(s for _, s in out) == text  # nothing lost or duplicated


def test_short_cjk_clause_is_not_split():
    assert split_sentences("はい、そうです。", "ja") == ["はい、そうです。"]
