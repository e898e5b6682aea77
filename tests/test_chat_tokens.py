"""OAuth user tokens keep themselves valid for a whole show: Twitch (validate, refresh before expiry
and after a 401, rotated refresh tokens) and YouTube (Google's token endpoint), against local fakes
that speak the documented wire formats and expire their tokens on command."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamer.chat.twitch import TwitchAuthError, TwitchEventSubSource
from streamer.chat.youtube import YouTubeApiSource, YouTubeError
from streamer.config import BackoffConfig, TwitchSourceConfig, YouTubeSourceConfig
from streamer.events import ChatMessage, HealthStatus
from tests.fakes import twitch_eventsub as tw
from tests.fakes import youtube_livechat as yt
from tests.fakes.twitch_eventsub import FakeTwitch, chat_event
from tests.fakes.youtube_livechat import FakeYouTube, text_message

pytestmark = pytest.mark.integration
REFRESHABLE = {"TWITCH_TOKEN": tw.TOKEN, "TWITCH_CLIENT_ID": tw.CLIENT_ID, "TWITCH_REFRESH_TOKEN": tw.REFRESH_TOKEN,
               "TWITCH_CLIENT_SECRET": tw.CLIENT_SECRET}
Health = list[tuple[str, HealthStatus, str]]


def twitch_source(fake: FakeTwitch, env: dict[str, str] | None = None, user_id: str = tw.USER_ID,
                  **kw: object) -> TwitchEventSubSource:
    cfg = TwitchSourceConfig(type="twitch", broadcaster_id="42", user_id=user_id, channel="streamer",
                             eventsub_url=fake.ws_url, helix_url=fake.helix_url, oauth_url=fake.oauth_url,
                             backoff=BackoffConfig(initial_s=0.01, max_s=0.05), **kw)
    return TwitchEventSubSource(cfg, env=REFRESHABLE if env is None else env)


def watch_health(source: TwitchEventSubSource | YouTubeApiSource) -> Health:
    seen: Health = []
    source.on_health = lambda part, status, detail: seen.append((part, status, detail))
    return seen


async def take(it: AsyncIterator[ChatMessage], n: int, limit_s: float = 20) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    async with asyncio.timeout(limit_s):
        while len(out) < n:
            out.append(await anext(it))
    return out


async def with_twitch(body, **kw: int):  # type: ignore[no-untyped-def]
    fake = FakeTwitch(**kw)
    await fake.start()
    try:
        return await body(fake)
    finally:
        await fake.stop()


async def all_subscribed(fake: FakeTwitch) -> None:
    """The source has made its last subscription (raids): expiring the token now hits the next
    connection, not the rest of this one's subscribing."""
    await fake.wait_for(lambda: fake.live_session("channel.raid") is not None, limit_s=20)


def no_secrets_in(text: str, *secrets: str) -> bool:
    return not any(s in text for s in secrets)


def test_expired_token_is_refreshed_and_chat_resubscribes_after_each_socket_drop(caplog) -> None:
    """The token expires mid-show, then the socket drops: the reconnect's subscriptions get 401, the
    token is refreshed and the subscriptions made again, twice in a row (so the rotated refresh
    token, not the original one, was kept), and no message is lost."""
    caplog.set_level(logging.DEBUG)

    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        health = watch_health(source)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 3))
        await fake.publish("channel.chat.message", chat_event("before", message_id="m0"))
        for i in (1, 2):
            await all_subscribed(fake)
            fake.expire_tokens()
            dropped = await fake.close_live(4000)
            await fake.wait_for(lambda d=dropped: (s := fake.live_session()) is not None and s.id != d)
            await fake.publish("channel.chat.message", chat_event(f"after drop {i}", message_id=f"m{i}"))
        got = await pending
        await it.aclose()
        return got, source, health

    got, source, health = asyncio.run(with_twitch(body))
    assert [m.message_id for m in got] == ["m0", "m1", "m2"]
    assert source.connects == 3
    assert source.token is not None and source.token.refreshes == 2
    assert health[-1][0] == "token" and health[-1][1] is HealthStatus.OK
    assert health[-1][2].startswith("twitch token expires in 3h 59m")
    assert no_secrets_in(caplog.text, tw.TOKEN, tw.REFRESH_TOKEN, tw.CLIENT_SECRET, source.token.access_token)


def test_refresh_wire_format_and_rotation_across_source_restarts() -> None:
    """The refresh is Twitch's documented form POST; each later one sends the rotated refresh token,
    also after the source was restarted (the environment's refresh token is dead by then)."""
    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 3))
        await fake.publish("channel.chat.message", chat_event("one", message_id="a"))
        for i in (1, 2):
            await all_subscribed(fake)
            fake.expire_tokens()
            dropped = await fake.close_live()
            await fake.wait_for(lambda d=dropped: (s := fake.live_session()) is not None and s.id != d)
            await fake.publish("channel.chat.message", chat_event("more", message_id=f"b{i}"))
        await pending
        await it.aclose()
        # the pump restarts the same source (after any failure): it keeps the rotated pair
        fake.expire_tokens()
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("after a restart", message_id="c"))
        await pending
        await it.aclose()
        return fake.token_requests, fake.unauthorized, list(fake.refresh_tokens)

    forms, unauthorized, current = asyncio.run(with_twitch(body))
    assert len(forms) == 3
    assert forms[0] == {"grant_type": "refresh_token", "refresh_token": tw.REFRESH_TOKEN,
                        "client_id": tw.CLIENT_ID, "client_secret": tw.CLIENT_SECRET}
    assert forms[1]["refresh_token"].startswith("fake-refresh-1-")  # what the first refresh handed back
    assert forms[2]["refresh_token"].startswith("fake-refresh-2-")  # a restarted source kept the newest
    # one 401 per drop, then a fresh token; the restart validated first and refreshed before subscribing
    assert unauthorized == ["/helix/eventsub/subscriptions"] * 2
    assert len(current) == 1


def test_show_keeps_twitch_chat_flowing_through_token_expiry_and_a_drop() -> None:
    """The whole show: the Twitch fake expires the token mid-show and drops the socket; the show
    refreshes, resubscribes, and the next viewer message reaches moderation. Health shows the
    token's expiry and the source stays up."""
    from streamer.chat.pump import ChatPump
    from streamer.config import parse_config
    from streamer.events import ChatDecided
    from streamer.show import Show

    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        config = parse_config({
            "video": {"width": 128, "height": 96}, "chat": {"sources": []}, "panel": {"enabled": False},
            "outputs": {"recording": {"enabled": False}}, "character": {"memory": {"enabled": False}},
        })
        pump = ChatPump(twitch_source(fake))
        show = Show(config, attachments=[pump])
        decided: list[str] = []
        loop = asyncio.get_running_loop()
        seen = {"q-1": asyncio.Event(), "q-2": asyncio.Event()}

        def on_decided(event: ChatDecided) -> None:
            decided.append(event.message.message_id)
            if event.message.message_id in seen:
                loop.call_soon_threadsafe(seen[event.message.message_id].set)

        show.control.subscribe(on_decided, ChatDecided)
        runner = asyncio.create_task(show.run())
        try:
            await fake.publish("channel.chat.message", chat_event("hello before", "Yuki", "555", message_id="q-1"))
            async with asyncio.timeout(60):
                await seen["q-1"].wait()
            fake.expire_tokens()
            dropped = await fake.close_live(4000)
            await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != dropped, limit_s=60)
            await fake.publish("channel.chat.message", chat_event("hello after", "Yuki", "555", message_id="q-2"))
            async with asyncio.timeout(60):
                await seen["q-2"].wait()
            health = show.health.snapshot()
        finally:
            show.request_stop()
            assert await runner == 0
        return decided, health, fake.refreshes

    decided, health, refreshes = asyncio.run(with_twitch(body))
    assert decided[:2] == ["q-1", "q-2"] and refreshes == 1
    assert health["chat:twitch:streamer"].status is HealthStatus.OK
    token = health["chat:twitch:streamer:token"]
    assert token.status is HealthStatus.OK and token.detail.startswith("twitch token expires in 3h 59m")


def test_token_is_validated_at_start_up() -> None:
    """An expired token is refreshed before anything uses it (no 401 ever reaches Helix); one that
    cannot be refreshed, or belongs to another user, stops with a reason before connecting."""
    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        fake.expire_tokens()
        source = twitch_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("hi", message_id="v1"))
        (msg,) = await pending
        await it.aclose()
        assert source.token is not None
        valid = dict(REFRESHABLE, TWITCH_TOKEN=source.token.access_token)
        checked = (fake.validations, fake.refreshes, list(fake.unauthorized), fake.welcomes)
        errors = []
        for env, user in ((dict(REFRESHABLE, TWITCH_TOKEN="tok-stale-zz", TWITCH_REFRESH_TOKEN=""), tw.USER_ID),
                          (valid, "999")):
            with pytest.raises(TwitchAuthError) as err:
                await take(twitch_source(fake, env=env, user_id=user).messages(), 1)
            errors.append(str(err.value))
        return msg, checked, errors, fake.welcomes

    msg, (validations, refreshes, unauthorized, welcomes), errors, welcomes_after = asyncio.run(with_twitch(body))
    assert msg.message_id == "v1"
    assert validations >= 1 and refreshes == 1 and unauthorized == [] and welcomes == 1
    expired, other_user = errors
    assert "401" in expired and "TWITCH_REFRESH_TOKEN" in expired and "tok-stale-zz" not in expired
    assert "user 7" in other_user and "999" in other_user
    assert welcomes_after == welcomes  # neither bad token opened a socket


def test_token_refreshes_before_it_expires_and_the_token_file_keeps_the_newest_pair(tmp_path: Path,
                                                                                   caplog) -> None:
    """Short-lived tokens are replaced ahead of expiry with no 401 at all, and the user's token file
    holds the rotated pair, owner-only; the next start reads it (the env's refresh token is dead)."""
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "twitch-token.json"

    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake, token_file=token_file)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.wait_for(lambda: fake.refreshes >= 2, limit_s=20)
        await fake.publish("channel.chat.message", chat_event("still here", message_id="p1"))
        await pending
        await it.aclose()
        first = (list(fake.unauthorized), json.loads(token_file.read_text()), set(fake.refresh_tokens),
                 stat.S_IMODE(token_file.stat().st_mode))
        fake.expire_tokens()  # the next start must refresh, and the env's refresh token was rotated away
        again = twitch_source(fake, token_file=token_file)
        it = again.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("next show", message_id="p2"))
        await pending
        await it.aclose()
        return first, again

    (unauthorized, saved, current, mode), again = asyncio.run(with_twitch(body, token_lifetime_s=3))
    assert unauthorized == []
    assert {saved["refresh_token"]} == current and saved["refresh_token"] != tw.REFRESH_TOKEN
    assert again.token is not None and again.token.refreshes >= 1  # with the file's refresh token
    assert saved["access_token"].startswith("fake-token-") and mode == 0o600
    assert no_secrets_in(caplog.text, tw.TOKEN, tw.REFRESH_TOKEN, tw.CLIENT_SECRET, saved["access_token"],
                         saved["refresh_token"])


def test_a_failed_refresh_is_degraded_and_retried_until_it_works() -> None:
    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        health = watch_health(source)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 2))
        await fake.publish("channel.chat.message", chat_event("one", message_id="f1"))
        fake.fail_refresh = 3  # Twitch's id server is briefly down
        await all_subscribed(fake)
        fake.expire_tokens()
        dropped = await fake.close_live()
        await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != dropped, limit_s=20)
        await fake.publish("channel.chat.message", chat_event("two", message_id="f2"))
        got = await pending
        await it.aclose()
        return got, health, fake.refreshes

    got, health, refreshes = asyncio.run(with_twitch(body))
    assert [m.message_id for m in got] == ["f1", "f2"] and refreshes == 4
    statuses = [s for part, s, _ in health if part == "token"]
    assert statuses.count(HealthStatus.DEGRADED) == 3 and statuses[-1] is HealthStatus.OK
    degraded = next(d for _, s, d in health if s is HealthStatus.DEGRADED)
    assert degraded.startswith("twitch token expired; refresh failed") and "HTTP 503" in degraded


def test_a_refused_refresh_stops_twitch_with_a_reason_and_no_secret(caplog) -> None:
    caplog.set_level(logging.DEBUG)

    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        health = watch_health(source)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.wait_for(lambda: fake.live_session() is not None)
        fake.refuse_refresh = True  # the user revoked the app: the refresh token is dead
        await all_subscribed(fake)
        fake.expire_tokens()
        await fake.close_live()
        with pytest.raises(TwitchAuthError) as err:
            await pending
        return health, str(err.value)

    health, error = asyncio.run(with_twitch(body))
    assert "refused the refresh token" in error and "Invalid refresh token" in error
    assert health[-1][1] is HealthStatus.DOWN and health[-1][2].startswith("twitch token expired; refresh failed")
    assert "refused" in health[-1][2]
    assert no_secrets_in(caplog.text + error, tw.TOKEN, tw.REFRESH_TOKEN, tw.CLIENT_SECRET)


def test_the_periodic_validation_notices_a_token_invalidated_early(monkeypatch) -> None:
    """Twitch asks apps to validate hourly (here: every 0.3 s): a token invalidated long before its
    expiry (password change, revocation of that token) is replaced before any API call fails."""
    from streamer.chat import oauth

    monkeypatch.setattr(oauth, "VALIDATE_EVERY_S", 0.3)

    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 2))
        await fake.publish("channel.chat.message", chat_event("one", message_id="e1"))
        await all_subscribed(fake)
        fake.expire_tokens()
        await fake.wait_for(lambda: fake.refreshes == 1)
        dropped = await fake.close_live()
        await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != dropped)
        await fake.publish("channel.chat.message", chat_event("two", message_id="e2"))
        got = await pending
        await it.aclose()
        return got, fake.unauthorized, fake.refreshes

    got, unauthorized, refreshes = asyncio.run(with_twitch(body))
    assert [m.message_id for m in got] == ["e1", "e2"]
    assert refreshes == 1 and unauthorized == []  # the reconnect already had a valid token


def test_a_silent_socket_is_replaced_after_the_keepalive_timeout() -> None:
    """The link dies without a close (no keepalives, no frames): past keepalive_timeout_seconds (+ a
    grace) the source drops it, connects again, subscribes, and chat flows."""
    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 2, limit_s=30))
        await fake.publish("channel.chat.message", chat_event("before", message_id="k1"))
        silent = await fake.silence_live()
        t0 = asyncio.get_running_loop().time()
        await fake.wait_for(lambda: (s := fake.live_session()) is not None and s.id != silent, limit_s=20)
        waited = asyncio.get_running_loop().time() - t0
        await fake.publish("channel.chat.message", chat_event("after", message_id="k2"))
        got = await pending
        await it.aclose()
        return got, waited, fake.sessions[silent].closed.is_set(), source.connects

    got, waited, old_closed, connects = asyncio.run(with_twitch(body, keepalive_s=1))
    assert [m.message_id for m in got] == ["k1", "k2"]
    assert connects == 2 and old_closed
    assert waited >= 1.0  # not before the keepalive timeout


def test_a_reply_with_an_expired_token_is_refreshed_and_posted() -> None:
    async def body(fake: FakeTwitch):  # type: ignore[no-untyped-def]
        source = twitch_source(fake, replies=True)
        it = source.messages()
        pending = asyncio.ensure_future(take(it, 1))
        await fake.publish("channel.chat.message", chat_event("question?", message_id="r-1"))
        (msg,) = await pending
        await all_subscribed(fake)
        fake.expire_tokens()
        sent = await source.send_reply("an answer", reply_to=msg)
        await it.aclose()
        return sent, fake.chat_posts, fake.refreshes

    sent, posts, refreshes = asyncio.run(with_twitch(body))
    assert sent is True and refreshes == 1
    assert posts == [{"broadcaster_id": "42", "sender_id": "7", "message": "an answer",
                      "reply_parent_message_id": "r-1"}]


# ----- YouTube ---------------------------------------------------------------------------------------------
YT_REFRESH = {"YOUTUBE_REFRESH_TOKEN": yt.REFRESH_TOKEN, "YOUTUBE_CLIENT_ID": yt.CLIENT_ID,
              "YOUTUBE_CLIENT_SECRET": yt.CLIENT_SECRET}


def youtube_source(fake: FakeYouTube, env: dict[str, str], **kw: object) -> YouTubeApiSource:
    cfg = YouTubeSourceConfig(type="youtube", api_url=fake.api_url, token_url=fake.token_url, live_chat_id=yt.CHAT_ID,
                              min_poll_s=0, backoff=BackoffConfig(initial_s=0.01, max_s=0.02), **kw)
    return YouTubeApiSource(cfg, env=env)


async def with_youtube(body, **kw: int):  # type: ignore[no-untyped-def]
    fake = FakeYouTube(**kw)
    await fake.start()
    try:
        return await body(fake)
    finally:
        await fake.stop()


def test_youtube_token_is_refreshed_at_start_and_after_a_401_without_losing_messages(caplog) -> None:
    caplog.set_level(logging.DEBUG)

    async def body(fake: FakeYouTube):  # type: ignore[no-untyped-def]
        source = youtube_source(fake, YT_REFRESH)
        health = watch_health(source)
        it = source.messages()
        fake.post(*(text_message(f"a{i}", f"first {i}") for i in range(3)))
        got = await take(it, 3)
        fake.expire_tokens()
        fake.post(*(text_message(f"b{i}", f"second {i}") for i in range(3)))
        got += await take(it, 3)
        await it.aclose()
        return got, health, fake.token_requests, [s for s, _ in fake.requests]

    got, health, forms, served = asyncio.run(with_youtube(body))
    assert [m.message_id for m in got] == [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)]
    assert forms == [{"grant_type": "refresh_token", "refresh_token": yt.REFRESH_TOKEN, "client_id": yt.CLIENT_ID,
                      "client_secret": yt.CLIENT_SECRET}] * 2  # at start-up, then after the 401
    assert served.count(401) == 1
    assert health[-1][1] is HealthStatus.OK and health[-1][2].startswith("youtube token expires in 59m")
    assert no_secrets_in(caplog.text, yt.REFRESH_TOKEN, yt.CLIENT_SECRET, "ya29.fake")


def test_youtube_token_refreshes_before_expiry_and_a_revoked_grant_stops_with_a_reason() -> None:
    async def body(fake: FakeYouTube):  # type: ignore[no-untyped-def]
        source = youtube_source(fake, YT_REFRESH)
        it = source.messages()
        fake.post(text_message("x1", "hello"))
        await take(it, 1)
        async with asyncio.timeout(20):
            while fake.refreshes < 3:
                fake.post(text_message(f"y{fake.refreshes}-{len(fake.log)}", "still here"))
                await take(it, 1)
        await it.aclose()
        ahead = [s for s, _ in fake.requests].count(401)
        fake.refuse_refresh = True
        with pytest.raises(YouTubeError) as err:
            await take(youtube_source(fake, YT_REFRESH).messages(), 1)
        return ahead, str(err.value)

    unauthorized, error = asyncio.run(with_youtube(body, token_lifetime_s=2, polling_ms=100))
    assert unauthorized == 0  # refreshed ahead of expiry, never after a 401
    assert "refused the refresh token" in error and "revoked" in error and yt.REFRESH_TOKEN not in error
