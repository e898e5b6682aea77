"""Hostile input: whatever a viewer or a broken server sends becomes a clean ChatMessage or a
logged rejection; nothing raises out of an adapter or the moderator."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.chat.twitch import TwitchEventSubSource, _message
from streamer.chat.youtube import normalize_api_item
from streamer.config import BackoffConfig, ModerationRulesConfig, TwitchSourceConfig
from streamer.events import ChatKind, ChatMessage, Fragment
from streamer.moderation import Moderator
from tests.fakes.twitch_eventsub import CLIENT_ID, TOKEN, FakeTwitch, chat_event, emote_fragment

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"]
# Inside a word; whitespace between two real pieces ("bad word") is two words, not a disguise (the
# spaced-out forms are in test_moderation_disguise.py).
SEPARATORS = [".", "-", "_", "*", "..."]


def assert_clean(text: str, limit: int) -> None:
    assert len(text) <= limit
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3000), roles=st.frozensets(st.sampled_from(["mod", "vip", "subscriber"])),
       paid=st.booleans())
def test_any_text_from_any_viewer_is_cleaned_or_rejected(text: str, roles: frozenset[str], paid: bool) -> None:
    m = Moderator(rules=ModerationRulesConfig(max_length=200, banned_words=["badword"]))
    msg = ChatMessage("twitch", "v", text, user_id="v", roles=roles, amount=1.0 if paid else None)
    decision = m.check_message(msg)
    assert_clean(decision.text, 200)
    assert decision.accepted or decision.rule
    assert m.decisions[-1].rule == decision.rule


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(word=st.sampled_from(["badword", "scam", "坏蛋"]), data=st.data())
def test_banned_words_hidden_with_zero_width_or_spacing_are_caught(word: str, data: st.DataObject) -> None:
    pieces = []
    for ch in word:
        pieces.append(ch.upper() if data.draw(st.booleans()) else ch)
        pieces.append(data.draw(st.sampled_from(ZERO_WIDTH + SEPARATORS + [""])))
    hidden = "".join(pieces).strip(" .-_*")
    prefix = data.draw(st.sampled_from(["", "you ", "hey! "]))
    m = Moderator(rules=ModerationRulesConfig(banned_words=["badword", "scam", "坏蛋"]))
    decision = m.check_message(ChatMessage("youtube", "v", prefix + hidden, user_id="v"))
    assert decision.rule == "banned_word", repr(prefix + hidden)


@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.dictionaries(st.sampled_from(["message", "chatter_user_id", "chatter_user_name", "badges", "cheer",
                                              "message_id", "broadcaster_user_login", "bits", "viewers", "tier",
                                              "is_anonymous", "user_name", "from_broadcaster_user_name"]),
                             json_values, max_size=8),
       sub_type=st.sampled_from(["channel.chat.message", "channel.cheer", "channel.subscribe", "channel.raid", "x"]))
def test_twitch_events_of_any_shape_normalize_or_are_skipped(event: dict[str, Any], sub_type: str) -> None:
    out = _message(event, sub_type, "n-1", 1.0)
    if sub_type == "x":  # not for the character: skipped
        assert out is None
        return
    # every known event normalizes, whatever its fields hold, to a message of its kind
    assert isinstance(out, ChatMessage) and out.platform == "twitch"
    kinds = {"channel.chat.message": {ChatKind.CHAT, ChatKind.CHEER}, "channel.cheer": {ChatKind.CHEER},
             "channel.subscribe": {ChatKind.SUBSCRIPTION}, "channel.raid": {ChatKind.RAID}}
    assert out.kind in kinds[sub_type]
    assert all(isinstance(v, str) for v in (out.text, out.user_name, out.user_id, out.channel, out.message_id))
    assert out.user_name and len(out.user_name) <= 200 and out.message_id


@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=json_values | st.fixed_dictionaries(
    {"id": json_values, "snippet": st.dictionaries(st.sampled_from(["type", "displayMessage", "superChatDetails",
                                                                    "textMessageDetails", "publishedAt"]),
                                                   json_values | st.sampled_from(["textMessageEvent",
                                                                                  "superChatEvent"])),
     "authorDetails": json_values}))
def test_youtube_items_of_any_shape_normalize_or_are_skipped(item: Any) -> None:
    out = normalize_api_item(item, "chat")
    snippet = item.get("snippet") if isinstance(item, dict) else None
    kind = snippet.get("type") if isinstance(snippet, dict) else None
    kinds = {"textMessageEvent": ChatKind.CHAT, "superChatEvent": ChatKind.SUPER_CHAT}
    # not a chat message, or no id to track it by: skipped
    if not isinstance(kind, str) or kind not in kinds or item.get("id") in (None, ""):
        assert out is None
        return
    assert isinstance(out, ChatMessage)  # a chat message with an id normalizes, whatever else it holds
    assert out.platform == "youtube" and out.kind == kinds[kind] and out.message_id == str(item["id"])[:200]
    assert isinstance(out.text, str) and out.user_name and len(out.user_name) <= 200


@pytest.mark.integration
def test_malformed_frames_huge_rtl_and_emote_only_messages_over_the_wire() -> None:
    async def main() -> tuple[list[ChatMessage], TwitchEventSubSource]:
        fake = FakeTwitch()
        await fake.start()
        cfg = TwitchSourceConfig(type="twitch", broadcaster_id="42", user_id="7", eventsub_url=fake.ws_url,
                                 helix_url=fake.helix_url, oauth_url=fake.oauth_url,
                                 backoff=BackoffConfig(initial_s=0.01, max_s=0.05))
        source = TwitchEventSubSource(cfg, env={"TWITCH_TOKEN": TOKEN, "TWITCH_CLIENT_ID": CLIENT_ID})
        it = source.messages()
        got: list[ChatMessage] = []
        pending = asyncio.ensure_future(anext(it))
        for garbage in ["{not json", "[]", "null", '{"metadata": 5, "payload": {}}',
                        '{"metadata": {"message_type": "notification"}, "payload": {"event": "x"}}',
                        json.dumps({"metadata": {"message_type": "notification", "message_id": "g1",
                                                 "subscription_type": "channel.chat.message"},
                                    "payload": {"event": {"message": {"text": 12345, "fragments": "nope"},
                                                          "badges": [None, 3, {"set_id": []}],
                                                          "cheer": {"bits": "x"}}}}),
                        "x" * 100]:
            await fake.send_raw(garbage)
        await fake.publish("channel.chat.message", chat_event("\u202eevil\u202c " + "lorem ipsum dolor " * 20_000,
                                                                 message_id="huge"))
        await fake.publish("channel.chat.message", chat_event(
            "Kappa PogChamp", message_id="emotes",
            fragments=[emote_fragment("Kappa", "25"), {"type": "text", "text": " ", "emote": None, "cheermote": None},
                       emote_fragment("PogChamp", "88")]))
        await fake.publish("channel.chat.message", chat_event("ok then", message_id="last"))
        async with asyncio.timeout(15):
            got.append(await pending)
            while len(got) < 4:
                got.append(await anext(it))
        await it.aclose()
        await fake.stop()
        return got, source

    got, source = asyncio.run(main())
    assert [m.message_id for m in got] == ["g1", "huge", "emotes", "last"]
    assert got[0].text == "12345" and got[0].fragments == () and got[0].amount is None
    assert source.malformed >= 4 and source.connects == 1  # garbage never cost the connection
    m = Moderator(rules=ModerationRulesConfig(max_length=300))
    huge = m.check_message(got[1])
    assert huge.accepted and len(huge.text) <= 300 and "\u202e" not in huge.text
    assert got[2].emote_only and m.check_message(got[2]).rule == "emote_only"
    assert m.check_message(ChatMessage("x", "y", "Kappa", fragments=(Fragment("emote", "Kappa"),),
                                       amount=5.0)).accepted  # a paid emote is still an answerable message
