"""Banned words hold against disguise, in both directions: generated disguises of every banned word are
blocked in chat and in the brain's output, and a corpus of ordinary en/zh/ja sentences (with
near-misses like "I had a bad word day") passes untouched."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.config import ModerationRulesConfig, load_config
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from streamer.moderation.words import BannedWord

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORDS = load_config(ROOT / "configs" / "default.yaml").moderation.banned_words
# A harder list than the default: short words ("ass" must not hit "class"), words whose endings make
# ordinary words ("assess"), and Chinese/Japanese words (no spaces; 他妈妈的 is "his mother's").
MORE_WORDS = ["fuck", "shit", "ass", "bitch", "dick", "*scam*", "傻逼", "他妈的", "死ね"]
CORPUS = [line for line in (ROOT / "tests" / "data" / "ordinary_sentences.txt").read_text("utf-8").splitlines()
          if line.strip() and not line.startswith("#")]

# Look-alikes a viewer can type. Hand-picked from other blocks (the folding itself reads the Unicode
# confusables data, so these are an independent check of it).
LOOK_ALIKES: dict[str, str] = {
    "a": "аαɑ𝐚ａⓐ𝖆ᴀ", "b": "βƅʙ𝐛ｂⓑЬ", "c": "сϲⅽ𝐜ｃⓒᴄ", "d": "ԁⅾ𝐝ｄⓓᴅ", "e": "еε𝐞ｅⓔᴇ", "f": "ƒ𝐟ｆⓕꜰ",
    "g": "ɡ𝐠ｇⓖɢ", "h": "һ𝐡ｈⓗʜ", "i": "іι𝐢ｉⓘɪ", "k": "кκ𝐤ｋⓚᴋ", "n": "ո𝐧ｎⓝɴ", "o": "оο𝐨ｏⓞᴏ",
    "r": "𝐫ｒⓡʀ", "s": "ѕ𝐬ｓⓢꜱ", "t": "τ𝐭ｔⓣᴛ", "u": "υ𝐮ｕⓤᴜ", "w": "ԝ𝐰ｗⓦᴡ", "y": "у𝐲ｙⓨʏ",
}
LEET = {"a": "4@", "b": "8", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7"}
SOFT_SEPARATORS = [".", "....", "-", "_", "·", "・", "ー", "😀", "\u3164", "/", "~", "=", ",", "\u200b", "\u00ad", "+"]
MARKS = ["\u0336", "\u0301", "\u0308"]  # strike-through, accents
SUFFIXES = ["s", "es", "ed", "ing", "in", "er", "y"]


@st.composite
def disguise(draw: st.DrawFn, word: str) -> str:
    """One way a viewer might write `word` so that a plain filter misses it."""
    parsed = BannedWord.parse(word)
    assert parsed is not None
    core = word.strip("*")
    letters = list(core)
    n = len([c for c in letters if c.isalpha()])
    masked = draw(st.sampled_from([None] + list(range(len(letters))))) if n >= 4 else None
    real = draw(st.integers(0, len(letters) - 1))  # one letter stays a letter (maybe a look-alike)
    style = draw(st.sampled_from(["plain", "soft", "spaced"]))
    pieces: list[str] = []
    for i, ch in enumerate(letters):
        low = ch.lower()
        options = [ch, ch.upper()] + list(LOOK_ALIKES.get(low, ""))
        if i != real and not parsed.spaceless:
            options += list(LEET.get(low, ""))
        glyph = "*" if i == masked and i != real else draw(st.sampled_from(options))
        if draw(st.booleans()) and not parsed.spaceless and glyph != "*":
            glyph += draw(st.sampled_from(MARKS))
        repeat = 1 if parsed.spaceless or style == "spaced" else draw(st.sampled_from([1, 1, 3, 5]))
        pieces.append(glyph * repeat)
    if style == "soft":
        text = pieces[0] + "".join(draw(st.sampled_from(SOFT_SEPARATORS + [""])) + p for p in pieces[1:])
    elif style == "spaced":
        gap = draw(st.sampled_from([" ", "  ", " . ", " - ", "\u3000", " 😀 "]))
        text = gap.join(pieces)
    else:
        text = "".join(pieces)
    if not parsed.spaceless and style != "spaced" and draw(st.booleans()):
        text += draw(st.sampled_from(SUFFIXES))
    if parsed.prefix_ok and not parsed.spaceless and style != "spaced" and draw(st.booleans()):
        text = draw(st.sampled_from(["super", "ultra"])) + text
    if parsed.suffix_ok and not parsed.spaceless and style != "spaced" and draw(st.booleans()):
        text += draw(st.sampled_from(["smith", "fest"]))
    before = draw(st.sampled_from(["", "you ", "hey! ", "lol, ", "what a ", "这是"]))
    after = draw(st.sampled_from(["", "!", " lol", "...", " 😀", "。"]))
    return before + text + after


def moderator(words: list[str]) -> Moderator:
    return Moderator(rules=ModerationRulesConfig(banned_words=words))


def _check_all_ways(m: Moderator, text: str) -> None:
    chat = m.check_message(ChatMessage("twitch", "viewer", text, user_id="v", message_id="m"))
    assert chat.rule == "banned_word", (text, unicodedata.normalize("NFC", text), chat)
    assert m.check_output(text).rule == "banned_word", text  # the brain's own words
    assert m.display_name(text) == "viewer", text  # a viewer's name


@pytest.mark.parametrize("word", DEFAULT_WORDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_disguise_of_a_default_banned_word_is_blocked(word: str, data: st.DataObject) -> None:
    _check_all_ways(moderator(DEFAULT_WORDS), data.draw(disguise(word)))


@pytest.mark.parametrize("word", MORE_WORDS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_disguise_of_harder_banned_words_is_blocked(word: str, data: st.DataObject) -> None:
    _check_all_ways(moderator(DEFAULT_WORDS + MORE_WORDS), data.draw(disguise(word)))


@pytest.mark.parametrize(
    "text",
    ["βadword", "ƅadword", "badwοrd", "ʙᴀᴅᴡᴏʀᴅ", "bаdwоrd", "b....a....d....w....o....r....d", "b·a·d·w·o·r·d",
     "b😀a😀d😀w😀o😀r😀d", "b\u3164a\u3164d\u3164w\u3164o\u3164r\u3164d", "bーaーdーwーoーrーd", "baaadwooord",
     "b*dword", "badw*rd", "badwords", "superbadword", "badwording", "b a d w o r d", "b̶a̶d̶w̶o̶r̶d̶"],
)
def test_the_disguises_seen_on_air_are_blocked(text: str) -> None:
    assert moderator(DEFAULT_WORDS).check_input(text).rule == "banned_word", text


@pytest.mark.parametrize("words", [DEFAULT_WORDS, DEFAULT_WORDS + MORE_WORDS], ids=["default", "harder"])
def test_ordinary_sentences_pass_untouched(words: list[str]) -> None:
    assert len(CORPUS) >= 300
    m = moderator(words)
    wrong = []
    for line in CORPUS:
        decision = m.check_input(line)
        if not decision.accepted or decision.text != line or m.check_output(line).rule is not None:
            wrong.append((line, decision.rule, decision.detail))
    assert wrong == []


def test_separators_never_join_two_real_words() -> None:
    m = moderator(["badword", "ass"])
    for text in ["I had a bad word day", "bad, word", "a bad - word", "as she said", "glass",
                 "a ss", "I was a bit sad"]:
        assert m.check_input(text).accepted, text
    for text in ["badwor d", "b adword", "b a d w o r d", "bad.word", "hi,badword"]:
        assert m.check_input(text).rule == "banned_word", text


def test_disguised_words_in_the_characters_own_lines_are_not_spoken() -> None:
    """Through the performer: each sentence is output-moderated before it is voiced."""
    import asyncio

    from engine.brain.scripted import ScriptedBrain
    from engine.timeline import Timeline
    from streamer.director import build_director
    from tests.test_director import TB, VOICE, Puller

    lines = ["You are a βadword!", "Such a ʙᴀᴅᴡᴏʀᴅ day!", "What a superbadword move!", "Never b😀a😀d😀w😀o😀r😀d!",
             "Baaadwooord again!", "This sentence is fine."]

    async def main() -> str:
        d = build_director(Timeline(TB), ScriptedBrain("Aiko"), VOICE, moderator(DEFAULT_WORDS), "Aiko", cooldown_s=0)
        puller = Puller(d.timeline)
        tasks = [asyncio.create_task(d.run()), asyncio.create_task(puller.run())]
        try:
            turn = d.say(" ".join(lines), "en")
            async with asyncio.timeout(30):
                await asyncio.shield(turn.done)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return turn.played_text

    assert asyncio.run(main()) == "This sentence is fine."
