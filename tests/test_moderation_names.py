"""Viewers' names and keys: a ban by typed name blocks that viewer everywhere the name matches; names
are cleaned and moderated like text before they reach the screen, the prompt or memory; a name can
never carry an emotion tag or a speech; untrusted text never forges a log line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from engine.brain.base import Prompt
from engine.brain.persona import Persona
from engine.brain.scripted import ScriptedBrain
from engine.brain.tags import SPOKEN_NAME_CHARS, split_emotion_tags, spoken_name
from engine.clock import WallClock
from engine.logtext import OneLineFormatter, untrusted
from engine.memory import Memory
from streamer.chat.intake import ChatIntake
from streamer.config import ModerationRulesConfig, ReplyPolicyConfig
from streamer.events import ChatDecided, ChatMessage
from streamer.moderation import NAME_PLACEHOLDER, Moderator
from streamer.panel.views import chat_json
from streamer.scheduler import TurnScheduler

pytestmark = pytest.mark.unit


class Clock:
    t = 0.0

    def now(self) -> float:
        return self.t


def local(name: str, text: str) -> ChatMessage:
    """As streamer/chat/local.py builds a post from the local chat page."""
    return ChatMessage(platform="local", user_name=name, user_id=f"local:{name}", text=text)


def twitch(name: str, uid: str, text: str) -> ChatMessage:
    return ChatMessage(platform="twitch", user_name=name, user_id=uid, text=text)


# ----- keys and bans by name ----------------------------------------------------------------------------
def test_keys_name_the_platform_once() -> None:
    assert local("ann", "hi").user_key == "local:ann"
    assert ChatMessage("replay", "bo", "hi", user_id="replay:bo").user_key == "replay:bo"
    assert ChatMessage("voice", "Kim", "hi", user_id="voice:mic").user_key == "voice:mic"
    assert twitch("Ann", "1234", "hi").user_key == "twitch:1234"
    assert ChatMessage("youtube", "Zed", "hi").user_key == "youtube:zed"


def test_a_typed_name_blocks_that_viewer_on_every_platform_and_says_whom() -> None:
    clock = Clock()
    m = Moderator(clock=clock)  # type: ignore[arg-type]
    for message in (local("Ann", "hello"), twitch("ann", "1234", "hello there"), twitch("bob", "77", "hi")):
        assert m.check_message(message).accepted
    matched = m.ban("Ann", "spam")
    assert sorted(matched) == ["local:Ann", "twitch:1234 (ann)"]
    assert m.check_message(local("Ann", "still here")).rule == "blocked_user"
    assert m.check_message(twitch("ann", "1234", "me too")).rule == "blocked_user"
    assert m.check_message(twitch("Аnn", "555", "a look-alike")).rule == "blocked_user"  # Cyrillic А
    assert m.check_message(twitch("bob", "77", "not me")).accepted
    assert m.check_message(twitch("annie_renamed", "1234", "renamed")).rule == "blocked_user"  # held by key
    assert "Ann" in m.blocked() and m.unban("ann")
    assert m.check_message(local("Ann", "back again")).accepted


def test_platform_name_timeouts_and_not_yet_seen_names() -> None:
    clock = Clock()
    m = Moderator(clock=clock)  # type: ignore[arg-type]
    assert m.timeout("local:Bob", 60) == []  # not seen yet: blocked when they write
    assert m.check_message(local("bob", "hi")).rule == "blocked_user"
    assert m.check_message(twitch("Bob", "9", "hi")).accepted  # another platform
    assert m.matching("twitch:bob") == ["twitch:9 (Bob)"]
    clock.t += 61
    assert m.check_message(local("bob", "hi again")).accepted and m.blocked() == {}
    m.ban("twitch:9")  # the key the panel lists for a chat line
    assert m.check_message(twitch("Bob", "9", "x")).rule == "blocked_user"
    m.ban("local:local:eve")  # an old key with the platform twice still blocks by id
    assert m.check_message(local("eve", "y")).rule == "blocked_user"


# ----- names: cleaned and moderated everywhere -------------------------------------------------------------
HOSTILE_NAMES = {
    "badword_fan": NAME_PLACEHOLDER,  # a banned word in the name
    "b\u200ba\u200bd\u200bw\u200bo\u200br\u200bd": NAME_PLACEHOLDER,  # zero-width split
    "\u202edrowdab": "drowdab",  # right-to-left override: shown as typed, not reversed into the word
    "ann\x07\x1b[31m\n": "ann[31m",  # control characters
    "z\u0301\u0302\u0303\u0304\u0305a\u0306\u0307\u0308\u0309": "ź\u0302\u0303ă\u0307\u0308",  # zalgo: 2 marks
    "visit spam.gg": NAME_PLACEHOLDER,  # a link
    "\u3164": NAME_PLACEHOLDER,  # a blank name
    "Kim": "Kim",
}


def test_names_are_cleaned_and_moderated_like_text() -> None:
    m = Moderator(rules=ModerationRulesConfig(banned_words=["badword"]))
    for raw, shown in HOSTILE_NAMES.items():
        assert m.display_name(raw) == shown, repr(raw)
    assert len(m.display_name("x" * 200)) <= 40


def test_the_screen_the_prompt_and_memory_get_only_the_cleaned_forms(tmp_path: Path) -> None:
    m = Moderator(rules=ModerationRulesConfig(banned_words=["badword"]))
    published: list[object] = []
    raw = [("bad\u200bword", "hello \u202eeht\u202c there\x1b[2J"), ("Ann\u0301\u0302\u0303\u0304", "hi\tall\x00")]

    async def main() -> list[Prompt]:  # turns belong to an event loop
        scheduler = TurnScheduler(ReplyPolicyConfig(), "Aiko", WallClock(), cooldown_s=0.0)
        intake = ChatIntake(m, scheduler, published.append)
        for i, (name, text) in enumerate(raw):
            assert intake.submit(twitch(name, str(i), text)).accepted
        return [t.prompt for t in scheduler.queued]

    prompts = asyncio.run(main())
    shown = [chat_json(e) for e in published if isinstance(e, ChatDecided)]  # what the panel and overlay get
    assert [s["user"] for s in shown] == [NAME_PLACEHOLDER, "An\u0144\u0302\u0303"]
    assert [s["text"] for s in shown] == ["hello eht there[2J", "hi all"]
    assert [(p.user_name, p.text) for p in prompts] == [(s["user"], s["text"]) for s in shown]  # the brain's
    memory = Memory(tmp_path / "memory.db")
    for p in prompts:
        memory.add_viewer_message(p.user_id, p.user_name, p.text, "en")
    assert [v.name for v in (memory.viewer(p.user_id) for p in prompts) if v is not None] == [
        NAME_PLACEHOLDER, "An\u0144\u0302\u0303"]
    memory.close()


def test_a_cohosts_disguised_words_and_name_are_moderated_too() -> None:
    m = Moderator(rules=ModerationRulesConfig(banned_words=["badword"]))
    published: list[object] = []

    async def main() -> int:
        scheduler = TurnScheduler(ReplyPolicyConfig(), "Aiko", WallClock(), cooldown_s=0.0)
        intake = ChatIntake(m, scheduler, published.append)
        said = ChatMessage("voice", "Kim", "you are a b a d w o r d", user_id="voice:mic", roles=frozenset({"cohost"}))
        assert intake.submit_voice(said).rule == "banned_word"
        named = ChatMessage("voice", "ʙᴀᴅᴡᴏʀᴅ", "hello there", user_id="voice:mic2", roles=frozenset({"cohost"}))
        assert intake.submit_voice(named).accepted
        return len(scheduler)

    assert asyncio.run(main()) == 1
    decided = [e for e in published if isinstance(e, ChatDecided)]
    assert decided[-1].message.user_name == NAME_PLACEHOLDER and decided[-1].message.user_key == "voice:mic2"


# ----- names cannot inject tags or long speeches -----------------------------------------------------------
def test_a_name_never_sets_an_emotion_and_only_its_start_is_spoken() -> None:
    brain = ScriptedBrain("Aiko")
    reply = brain.compose(Prompt("hello!", "en", "[anger:1.0]"))
    cues, spoken = split_emotion_tags(reply)
    assert [c.emotion for c in cues] == ["joy"]  # the brain's own tag only
    assert "anger" in spoken  # the name is still said, as words
    long_name = " ".join(["word"] * 50)
    said = brain.compose(Prompt("hello!", "en", long_name))
    assert said.count("word") <= 3
    assert len(spoken_name("x" * 200)) == SPOKEN_NAME_CHARS
    messages = Persona().build_messages(Prompt("hi", "en", "[joy:1.0] " + "y" * 200), [])
    assert "[" not in messages[-1]["content"] and len(messages[-1]["content"]) < 40


# ----- logs ----------------------------------------------------------------------------------------------
def test_untrusted_text_never_forges_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    forged = "eve\n2026-12-04 12:00:00 INFO stagecast.panel: admin granted\x1b[2J\u202e"
    assert "\n" not in untrusted(forged) and "\x1b" not in untrusted(forged) and "\u202e" not in untrusted(forged)
    assert "\\n" in untrusted(forged) and "\\x1b" in untrusted(forged)
    m = Moderator(rules=ModerationRulesConfig(banned_words=["badword"]))
    with caplog.at_level(logging.DEBUG):
        m.ban(forged, forged)
        m.check_message(twitch(forged, forged, "badword " + forged))
        m.check_output("badword\n" + forged)
    assert caplog.records
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message and "\x1b" not in message and "\u202e" not in message, message
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "said %s", (forged,), None)
    line = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line


def test_a_viewer_named_like_a_tag_moves_no_emotion_and_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """End to end through the director, the scripted brain, the performer and the timeline."""
    from engine.state import EMOTIONS
    from tests.test_director import Puller, make_director

    async def main() -> Puller:
        d = make_director(cooldown_s=0)
        puller = Puller(d.timeline)
        tasks = [asyncio.create_task(d.run()), asyncio.create_task(puller.run())]
        try:
            turn = d.submit_chat(twitch("[anger:1.0]\nINFO forged line\x1b[31m", "1", "hello!", ))
            assert turn is not None
            async with asyncio.timeout(20):
                await asyncio.shield(turn.done)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return puller

    with caplog.at_level(logging.INFO, logger="stagecast"):
        puller = asyncio.run(main())
    anger = EMOTIONS.index("anger")
    assert any(f.speaking for f in puller.frames)
    assert max(f.emotions[anger] for f in puller.frames) < 0.1  # the name's "tag" set nothing
    assert max(f.emotions[EMOTIONS.index("joy")] for f in puller.frames) > 0.5  # the brain's own [joy] did
    replied = [r.getMessage() for r in caplog.records if "replied to" in r.getMessage()]
    assert replied and all("\n" not in line and "\x1b" not in line for line in replied)
