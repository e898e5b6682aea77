"""Moderation rules on ChatMessages: each rule fires, names itself, and is logged for the panel."""

from __future__ import annotations

import logging

import pytest

from streamer.config import ModerationRulesConfig
from streamer.events import ChatMessage, Fragment
from streamer.moderation import Moderator

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def msg(text: str, user: str = "ann", **kw: object) -> ChatMessage:
    return ChatMessage("twitch", user, text, user_id=user, message_id=f"id-{text[:10]}", **kw)


def mod(clock: Clock | None = None, **kw: object) -> Moderator:
    return Moderator(rules=ModerationRulesConfig(**kw), clock=clock or Clock())


@pytest.mark.parametrize(
    "text",
    ["b.a.d", "b a d", "B-A-D!", "b\u200ba\u200bd", "ｂａｄ", "bád", "b4d", "8@d", "bаd",  # Cyrillic а
     "you are so b_a_d", "B\u0301AD", "b\u2066a\u2069d"],
)
def test_hidden_banned_words_are_caught(text: str) -> None:
    decision = mod(banned_words=["bad"]).check_message(msg(text))
    assert not decision.accepted and decision.rule == "banned_word", text


@pytest.mark.parametrize("text", ["badge", "a bandana", "grab a drink", "abad", "b and d", "club a dance"])
def test_innocent_words_pass(text: str) -> None:
    d = mod(banned_words=["bad"]).check_message(msg(text))
    assert d.accepted, (text, d)


def test_links_blocked_unless_allowed_and_mods_exempt() -> None:
    m = mod(allowed_domains=["youtube.com"])
    for text in ["see https://evil.example/x", "www.spam.net", "free skins at scam.gg", "go to evil dot com"]:
        assert m.check_message(msg(text, user=text)).rule == "link", text
    assert m.check_message(msg("watch https://www.youtube.com/watch?v=1", user="x")).accepted
    assert m.check_message(msg("rules at rules.example.com", user="m", roles=frozenset({"mod"}))).accepted


def test_spam_duplicates_copypasta_and_rate_limit() -> None:
    clock = Clock()
    m = mod(clock, rate_per_minute=6, rate_burst=2, duplicate_window_s=30, copypasta_users=3)
    assert m.check_message(msg("a" * 40)).rule == "spam"
    assert m.check_message(msg("buy buy buy buy buy buy buy now", user="b")).rule == "spam"
    assert m.check_message(msg("hello there", user="c")).accepted
    assert m.check_message(msg("Hello  there!", user="c")).rule == "duplicate"
    clock.t += 31
    assert m.check_message(msg("hello there", user="c")).accepted
    pasta = "this stream is sponsored by nobody at all"
    assert m.check_message(msg(pasta, user="p1")).accepted
    assert m.check_message(msg(pasta, user="p2")).accepted
    assert m.check_message(msg(pasta, user="p3")).rule == "copypasta"
    clock.t += 100
    assert [m.check_message(msg(f"msg number {i}", user="r")).rule for i in range(3)] == [None, None, "rate_limit"]
    clock.t += 10  # 6/min refills one token in 10 s
    assert m.check_message(msg("msg number 9", user="r")).accepted
    assert m.check_message(msg("paid again", user="r", amount=5.0, currency="USD")).accepted


def test_ban_timeout_unban() -> None:
    clock = Clock()
    m = mod(clock)
    m.ban("twitch:eve", "spam bot")
    assert m.check_message(msg("hi", user="eve")).rule == "blocked_user"
    assert m.unban("twitch:eve") and m.check_message(msg("hi again", user="eve")).accepted
    m.timeout("twitch:tim", 60)
    assert m.check_message(msg("hi", user="tim")).rule == "blocked_user"
    assert "twitch:tim" in m.blocked()
    clock.t += 61
    assert m.check_message(msg("hi", user="tim")).accepted and "twitch:tim" not in m.blocked()


def test_language_allow_list_emote_only_and_length() -> None:
    m = mod(languages=["en", "ja"], reject_length=1000, max_length=20)
    assert m.check_message(msg("hola amigo", language="es")).rule == "language"
    assert m.check_message(msg("こんにちは", language="ja", user="j")).accepted
    emotes = msg("Kappa Kappa", user="e", fragments=(Fragment("emote", "Kappa", "25"), Fragment("text", " "),
                                                     Fragment("emote", "Kappa", "25")))
    assert m.check_message(emotes).rule == "emote_only"
    assert m.check_message(msg("x y " * 600, user="l")).rule == "too_long"
    capped = m.check_message(msg("a fairly long message that goes on", user="c"))
    assert capped.accepted and len(capped.text) == 20 and capped.text.endswith("…")


def test_output_is_checked_too_and_every_decision_is_logged_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    m = mod(banned_words=["secret"], decision_log_size=10)
    with caplog.at_level(logging.INFO, logger="stagecast.moderation"):
        out = m.check_output("the s e c r e t is out")
    assert not out.accepted and out.rule == "banned_word"
    assert "rule=banned_word" in caplog.text and "character output" in caplog.text
    for i in range(25):
        m.check_message(msg(f"message {i}", user=f"u{i}"))
    assert len(m.decisions) == 10 and m.decisions[-1].user_key == "twitch:u24" and m.decisions[-1].accepted
    assert m.counts["banned_word"] == 1 and m.counts["accepted"] == 25
