"""Twitch EventSub adapter against a local EventSub WebSocket + Helix server speaking Twitch's format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from streamer.chat.twitch import TwitchAuthError, TwitchEventSubSource
from streamer.config import BackoffConfig, TwitchSourceConfig
from streamer.events import ChatKind, ChatMessage
from tests.fakes.twitch_eventsub import CLIENT_ID, TOKEN, FakeTwitch, chat_event, emote_fragment

pytestmark = pytest.mark.integration
ENV = {"TWITCH_TOKEN": TOKEN, "TWITCH_CLIENT_ID": CLIENT_ID}


def make_source(fake: FakeTwitch, env: dict[str, str] | None = None, **kw: object) -> TwitchEventSubSource:
    cfg = TwitchSourceConfig(type="twitch", broadcaster_id="42", user_id="7", channel="streamer",
                             eventsub_url=fake.ws_url, helix_url=fake.helix_url, oauth_url=fake.oauth_url,
                             backoff=BackoffConfig(initial_s=0.01, max_s=0.05), **kw)
    return TwitchEventSubSource(cfg, env=ENV if env is None else env)


async def take(it: AsyncIterator[ChatMessage], n: int, limit_s: float = 15) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    async with asyncio.timeout(limit_s):
        while len(out) < n:
            out.append(await anext(it))
    return out


def run_with_fake(body: Callable[[FakeTwitch], Awaitable[object]]) -> object:
    async def main() -> object:
        fake = FakeTwitch()
        await fake.start()
        try:
            return await body(fake)
        finally:
            await fake.stop()

    return asyncio.run(main())


def test_chat_cheer_sub_and_raid_arrive_normalized() -> None:
    async def body(fake: FakeTwitch) -> tuple[list[ChatMessage], FakeTwitch]:
        source = make_source(fake, cheers=False)
        it = source.messages()
        first = asyncio.ensure_future(take(it, 4))
        await fake.publish("channel.chat.message", chat_event(
            "hi Aiko Kappa", "Yuki", "555", badges=["moderator", "subscriber"], message_id="m-1",
            fragments=[{"type": "text", "text": "hi Aiko ", "cheermote": None, "emote": None},
                       emote_fragment("Kappa", "25")]))
        await fake.publish("channel.chat.message", chat_event("cheer100 great stream", "Bo", "556", bits=100))
        await fake.publish("channel.subscribe", {"user_id": "557", "user_login": "cy", "user_name": "Cy",
                                                 "broadcaster_user_id": "42", "broadcaster_user_login": "streamer",
                                                 "broadcaster_user_name": "streamer", "tier": "2000",
                                                 "is_gift": False})
        await fake.publish("channel.raid", {"from_broadcaster_user_id": "9", "from_broadcaster_user_login": "pal",
                                            "from_broadcaster_user_name": "Pal", "to_broadcaster_user_id": "42",
                                            "to_broadcaster_user_login": "streamer",
                                            "to_broadcaster_user_name": "streamer", "viewers": 37})
        got = await first
        await it.aclose()
        return got, fake

    got, fake = run_with_fake(body)  # type: ignore[misc]
    chat, cheer, sub, raid = got
    assert (chat.platform, chat.channel, chat.message_id, chat.user_id, chat.user_name) == (
        "twitch", "streamer", "m-1", "555", "Yuki")
    assert chat.roles == {"mod", "subscriber"} and chat.text == "hi Aiko Kappa"
    assert [f.kind for f in chat.fragments] == ["text", "emote"] and chat.fragments[1].emote_id == "25"
    assert chat.amount is None and chat.kind is ChatKind.CHAT and chat.language == "en"
    assert chat.timestamp > 1.6e9
    assert (cheer.amount, cheer.currency, cheer.kind) == (100.0, "BITS", ChatKind.CHEER)
    assert sub.kind is ChatKind.SUBSCRIPTION and "tier 2" in sub.text and sub.user_name == "Cy"
    assert raid.kind is ChatKind.RAID and "37 viewers" in raid.text and raid.user_id == "9"
    types = [r["type"] for r in fake.subscription_requests]
    assert types == ["channel.chat.message", "channel.subscribe", "channel.raid"]
    assert all(r["transport"]["method"] == "websocket" and r["transport"]["session_id"].startswith("fake-")
               for r in fake.subscription_requests)


def test_server_closed_socket_is_survived_without_loss_or_duplicates() -> None:
    async def body(fake: FakeTwitch) -> tuple[list[ChatMessage], TwitchEventSubSource, FakeTwitch]:
        source = make_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 10))
        for i in range(5):
            await fake.publish("channel.chat.message", chat_event(f"before {i}", message_id=f"b{i}"))
        closed = await fake.close_live(4000)
        await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != closed)
        for i in range(5):
            await fake.publish("channel.chat.message", chat_event(f"after {i}", message_id=f"a{i}"))
        got = await pending
        await it.aclose()
        return got, source, fake

    got, source, fake = run_with_fake(body)  # type: ignore[misc]
    assert [m.message_id for m in got] == [f"b{i}" for i in range(5)] + [f"a{i}" for i in range(5)]
    assert source.connects == 2 and fake.welcomes == 2
    # a fresh session has no subscriptions, so the adapter created them again
    assert [r["type"] for r in fake.subscription_requests].count("channel.chat.message") == 2


def test_session_reconnect_moves_sockets_without_loss_or_duplicates() -> None:
    async def body(fake: FakeTwitch) -> tuple[list[ChatMessage], TwitchEventSubSource, FakeTwitch]:
        source = make_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 8))
        for i in range(3):
            await fake.publish("channel.chat.message", chat_event(f"old {i}", message_id=f"o{i}"))
        old_id = await fake.ask_reconnect()
        old = fake.sessions[old_id]
        # Twitch may still deliver on the old socket until the new one is welcomed
        await old.ws.send_str(fake.notification(old, "channel.chat.message", chat_event("late", message_id="late"),
                                                "n-late"))
        await old.ws.send_str(fake.notification(old, "channel.chat.message", chat_event("late", message_id="late"),
                                                "n-late"))  # at-least-once: the same notification twice
        await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != old_id)
        for i in range(4):
            await fake.publish("channel.chat.message", chat_event(f"new {i}", message_id=f"n{i}"))
        got = await pending
        extra = asyncio.ensure_future(anext(it))
        await fake.publish("channel.chat.message", chat_event("sentinel", message_id="s"))
        got.append(await asyncio.wait_for(extra, 10))
        await it.aclose()
        return got, source, fake

    got, source, fake = run_with_fake(body)  # type: ignore[misc]
    ids = [m.message_id for m in got]
    assert ids == ["o0", "o1", "o2", "late", "n0", "n1", "n2", "n3", "s"]
    assert source.duplicates >= 1
    # subscriptions moved with the session: nothing was re-created
    assert [r["type"] for r in fake.subscription_requests].count("channel.chat.message") == 1


def test_missing_scope_for_events_still_reads_chat_and_bad_token_stops() -> None:
    async def body(fake: FakeTwitch) -> tuple[ChatMessage, BaseException | None]:
        fake.refuse_types = {"channel.raid"}
        source = make_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("still here"))
        (msg,) = await pending
        await it.aclose()
        bad = make_source(fake, env={"TWITCH_TOKEN": "wrong", "TWITCH_CLIENT_ID": CLIENT_ID})
        error: BaseException | None = None
        try:
            await take(bad.messages(), 1, limit_s=10)
        except TwitchAuthError as exc:
            error = exc
        return msg, error

    msg, error = run_with_fake(body)  # type: ignore[misc]
    assert msg.text == "still here"
    assert isinstance(error, TwitchAuthError) and "401" in str(error)
    assert TOKEN not in str(error) and "wrong" not in str(error)


def test_missing_credentials_fail_fast_without_connecting() -> None:
    async def body(fake: FakeTwitch) -> int:
        source = make_source(fake, env={})
        with pytest.raises(TwitchAuthError, match="TWITCH_TOKEN"):
            await anext(source.messages())
        return fake.welcomes

    assert run_with_fake(body) == 0


def test_replies_are_posted_to_helix_as_replies() -> None:
    async def body(fake: FakeTwitch) -> tuple[bool, list[dict]]:
        source = make_source(fake, replies=True)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("question?", message_id="q-1"))
        (msg,) = await pending
        sent = await source.send_reply("x" * 900, reply_to=msg)
        await it.aclose()
        return sent, fake.chat_posts

    sent, posts = run_with_fake(body)  # type: ignore[misc]
    assert sent is True
    assert posts == [{"broadcaster_id": "42", "sender_id": "7", "message": "x" * 500,
                      "reply_parent_message_id": "q-1"}]


def test_revocation_and_keepalive_frames_do_not_disturb_the_stream() -> None:
    async def body(fake: FakeTwitch) -> list[ChatMessage]:
        source = make_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.send_raw(json.dumps({"metadata": {"message_id": "r", "message_type": "revocation",
                                                     "message_timestamp": "2024-01-01T00:00:00Z",
                                                     "subscription_type": "channel.raid",
                                                     "subscription_version": "1"},
                                        "payload": {"subscription": {"id": "x", "status": "authorization_revoked",
                                                                     "type": "channel.raid"}}}))
        await fake.send_raw(json.dumps({"metadata": {"message_id": "k", "message_type": "session_keepalive",
                                                     "message_timestamp": "2024-01-01T00:00:00Z"},
                                        "payload": {}}))
        await fake.publish("channel.chat.message", chat_event("after revocation"))
        got = await pending
        await it.aclose()
        return got

    (msg,) = run_with_fake(body)  # type: ignore[misc]
    assert msg.text == "after revocation"


def test_the_characters_spoken_reply_is_posted_back_into_twitch_chat(tmp_path) -> None:
    """`replies: true`: once a reply to a Twitch viewer has been heard in full, the show posts exactly
    those words into the chat, as a reply to the viewer's message."""
    from streamer.chat.pump import ChatPump
    from streamer.config import parse_config
    from streamer.events import TurnChanged
    from streamer.show import Show

    async def body(fake: FakeTwitch) -> tuple[list[dict], list[TurnChanged]]:
        config = parse_config({
            "video": {"width": 128, "height": 96}, "chat": {"sources": []}, "panel": {"enabled": False},
            "outputs": {"recording": {"enabled": False}}, "character": {"memory": {"enabled": False}},
            "director": {"cooldown_s": 0},
        })
        show = Show(config, attachments=[ChatPump(make_source(fake, replies=True))])
        done: list[TurnChanged] = []
        show.control.subscribe(lambda e: done.append(e) if e.status == "done" else None, TurnChanged)
        runner = asyncio.create_task(show.run())
        try:
            await fake.wait_for(lambda: fake.live_session() is not None, limit_s=60)
            await fake.publish("channel.chat.message", chat_event("hello Aiko!", "Yuki", "555", message_id="q-7"))
            await fake.wait_for(lambda: bool(fake.chat_posts), limit_s=60)
        finally:
            show.request_stop()
            assert await runner == 0
        return fake.chat_posts, done

    posts, done = run_with_fake(body)  # type: ignore[misc]
    (turn,) = done
    assert turn.reply_to is not None and turn.reply_to.message_id == "q-7" and turn.played_text
    assert posts == [{"broadcaster_id": "42", "sender_id": "7", "message": turn.played_text,
                      "reply_parent_message_id": "q-7"}]
