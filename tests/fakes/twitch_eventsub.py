"""A local Twitch: the EventSub WebSocket server plus the Helix endpoints the chat adapter uses.

Speaks the documented wire format (dev.twitch.tv/docs/eventsub/websocket-reference and
handling-websocket-events): `session_welcome` with a session id and keepalive timeout,
`session_keepalive` when idle, `notification` with metadata.subscription_type and
payload.subscription/payload.event, `session_reconnect` with a reconnect_url (the new socket gets
its own welcome, subscriptions move over, then the old socket is closed), `revocation`.
Helix: `POST /helix/eventsub/subscriptions` (202 + data[0]), `POST /helix/chat/messages`; both
answer 401 for an unknown or expired token. OAuth (dev.twitch.tv/docs/authentication):
`POST /oauth2/token` with a form-encoded `grant_type=refresh_token` (rotates the refresh token:
the old one stops working), `GET /oauth2/validate` with `Authorization: OAuth <token>`.

One deliberate difference from Twitch, for deterministic tests: `publish` waits until some
session has subscribed to the event type instead of dropping events nobody listens to.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

TOKEN = "fake-token"
CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
REFRESH_TOKEN = "fake-refresh-token"
USER_ID = "7"  # the user the tokens belong to (the tests' `user_id`)
SCOPES = ["user:read:chat", "user:write:chat"]


def rfc3339(ts: float | None = None) -> str:
    """Twitch's timestamp style: UTC, nanosecond fraction, 'Z'."""
    ts = time.time() if ts is None else ts
    ns = int(ts * 1e9)
    base = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def chat_event(text: str, user: str = "viewer", user_id: str = "1001", *, badges: list[str] = (),
               fragments: list[dict[str, Any]] | None = None, bits: int | None = None,
               message_id: str | None = None, broadcaster: str = "streamer",
               broadcaster_id: str = "42") -> dict[str, Any]:
    """A channel.chat.message event as Twitch sends it."""
    return {
        "broadcaster_user_id": broadcaster_id, "broadcaster_user_login": broadcaster,
        "broadcaster_user_name": broadcaster,
        "chatter_user_id": user_id, "chatter_user_login": user.lower(), "chatter_user_name": user,
        "message_id": message_id or str(uuid.uuid4()),
        "message": {"text": text, "fragments": fragments if fragments is not None else [
            {"type": "text", "text": text, "cheermote": None, "emote": None, "mention": None}]},
        "color": "#00FF7F",
        "badges": [{"set_id": b, "id": "1", "info": ""} for b in badges],
        "message_type": "text",
        "cheer": {"bits": bits} if bits else None,
        "reply": None,
        "channel_points_custom_reward_id": None,
        "channel_points_animation_id": None,
        "source_broadcaster_user_id": None, "source_broadcaster_user_login": None,
        "source_broadcaster_user_name": None, "source_message_id": None, "source_badges": None,
    }


def emote_fragment(name: str, emote_id: str = "25") -> dict[str, Any]:
    return {"type": "emote", "text": name, "cheermote": None, "mention": None,
            "emote": {"id": emote_id, "emote_set_id": "0", "owner_id": "0", "format": ["static"]}}


@dataclass
class _Session:
    id: str
    ws: web.WebSocketResponse
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # type -> subscription object
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    moved_to: str | None = None  # set once a session_reconnect was sent
    silent: bool = False  # a dead link: open, but no keepalives or notifications reach the client


class FakeTwitch:
    def __init__(self, keepalive_s: int = 10, token_lifetime_s: int = 14400) -> None:
        self.keepalive_s = keepalive_s
        self.token_lifetime_s = token_lifetime_s  # expires_in of the tokens this server hands out
        self.tokens: dict[str, float] = {TOKEN: time.monotonic() + token_lifetime_s}  # token -> expiry
        self.refresh_tokens: set[str] = {REFRESH_TOKEN}
        self.token_requests: list[dict[str, str]] = []  # every /oauth2/token form, as received
        self.validations = 0
        self.refuse_refresh = False  # answer 400 Invalid refresh token
        self.fail_refresh = 0  # answer this many refreshes with 503 first
        self.unauthorized: list[str] = []  # Helix paths answered 401
        self.sessions: dict[str, _Session] = {}
        self.subscription_requests: list[dict[str, Any]] = []
        self.chat_posts: list[dict[str, Any]] = []
        self.welcomes = 0
        self.refuse_types: set[str] = set()  # subscription types answered with 403 (missing scope)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._seq = itertools.count(1)

    # ----- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/ws", self._ws), web.post("/helix/eventsub/subscriptions", self._subscribe),
                        web.post("/helix/chat/messages", self._chat), web.post("/oauth2/token", self._token),
                        web.get("/oauth2/validate", self._validate)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for s in list(self.sessions.values()):
            await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def helix_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/helix"

    @property
    def oauth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2"

    @property
    def refreshes(self) -> int:
        return len(self.token_requests)

    def expire_tokens(self) -> None:
        """Every access token handed out so far expires now (refresh tokens stay valid)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def token_valid(self, token: str) -> bool:
        return self.tokens.get(token, 0.0) > time.monotonic()

    # ----- what tests do -----------------------------------------------------------------------------
    async def wait_for(self, predicate: Any, limit_s: float = 10.0) -> None:
        """Wait (event-driven) until predicate() holds on the server's state."""
        async with asyncio.timeout(limit_s):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def live_session(self, sub_type: str = "channel.chat.message") -> _Session | None:
        for s in self.sessions.values():
            if sub_type in s.subscriptions and s.moved_to is None and not s.closed.is_set() and not s.silent:
                return s
        return None

    async def publish(self, sub_type: str, event: dict[str, Any], message_id: str | None = None) -> str:
        """Send a notification to the session subscribed to `sub_type`; returns its message id."""
        await self.wait_for(lambda: self.live_session(sub_type) is not None)
        session = self.live_session(sub_type)
        assert session is not None
        message_id = message_id or str(uuid.uuid4())
        await session.ws.send_str(self.notification(session, sub_type, event, message_id))
        return message_id

    def notification(self, session: _Session, sub_type: str, event: dict[str, Any], message_id: str) -> str:
        return json.dumps({
            "metadata": {"message_id": message_id, "message_type": "notification",
                         "message_timestamp": rfc3339(), "subscription_type": sub_type,
                         "subscription_version": "1"},
            "payload": {"subscription": session.subscriptions[sub_type], "event": event},
        })

    async def send_raw(self, text: str) -> None:
        """Hostile server: whatever text, to the live session."""
        await self.wait_for(lambda: self.live_session() is not None)
        session = self.live_session()
        assert session is not None
        await session.ws.send_str(text)

    async def close_live(self, code: int = 4000) -> str:
        """Server-side close (4000 = internal server error); returns the closed session id."""
        await self.wait_for(lambda: self.live_session() is not None)
        session = self.live_session()
        assert session is not None
        await session.ws.close(code=code, message=b"internal server error")
        return session.id

    async def silence_live(self) -> str:
        """The live session's link dies without a close: no more keepalives; returns its id."""
        await self.wait_for(lambda: self.live_session() is not None)
        session = self.live_session()
        assert session is not None
        session.silent = True
        return session.id

    async def ask_reconnect(self) -> str:
        """Send session_reconnect to the live session; returns its id. The old socket stays
        open (and may still carry notifications) until the client's new socket is welcomed."""
        await self.wait_for(lambda: self.live_session() is not None)
        session = self.live_session()
        assert session is not None
        session.moved_to = f"{self.ws_url}?reconnect_from={session.id}"
        await session.ws.send_str(json.dumps({
            "metadata": {"message_id": str(uuid.uuid4()), "message_type": "session_reconnect",
                         "message_timestamp": rfc3339()},
            "payload": {"session": {"id": session.id, "status": "reconnecting", "keepalive_timeout_seconds": None,
                                    "reconnect_url": session.moved_to, "connected_at": rfc3339()}},
        }))
        return session.id

    # ----- handlers ----------------------------------------------------------------------------------
    async def _notify_change(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = _Session(f"fake-{next(self._seq)}-{uuid.uuid4().hex[:8]}", ws)
        old = self.sessions.get(request.query.get("reconnect_from", ""))
        if old is not None:
            session.subscriptions = {t: {**s, "transport": {**s["transport"], "session_id": session.id}}
                                     for t, s in old.subscriptions.items()}
        self.sessions[session.id] = session
        await ws.send_str(json.dumps({
            "metadata": {"message_id": str(uuid.uuid4()), "message_type": "session_welcome",
                         "message_timestamp": rfc3339()},
            "payload": {"session": {"id": session.id, "status": "connected",
                                    "keepalive_timeout_seconds": self.keepalive_s,
                                    "reconnect_url": None, "connected_at": rfc3339()}},
        }))
        self.welcomes += 1
        await self._notify_change()
        if old is not None:  # Twitch closes the old connection once the new one is welcomed
            await old.ws.close()
        keepalive = asyncio.create_task(self._keepalive(session))
        try:
            async for msg in ws:  # clients must not send; Twitch would close with 4001
                if msg.type == WSMsgType.TEXT:
                    await ws.close(code=4001, message=b"client sent inbound traffic")
        finally:
            keepalive.cancel()
            session.closed.set()
            await self._notify_change()
        return ws

    async def _keepalive(self, session: _Session) -> None:
        while not session.ws.closed:
            await asyncio.sleep(self.keepalive_s * 0.8)
            if session.ws.closed:
                return
            if session.silent:
                continue
            await session.ws.send_str(json.dumps({
                "metadata": {"message_id": str(uuid.uuid4()), "message_type": "session_keepalive",
                             "message_timestamp": rfc3339()}, "payload": {}}))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = scheme == "Bearer" and self.token_valid(token) and request.headers.get("Client-Id") == CLIENT_ID
        if not ok:
            self.unauthorized.append(request.path)
        return ok

    async def _token(self, request: web.Request) -> web.Response:
        """POST /oauth2/token, grant_type=refresh_token (form-encoded, as Twitch requires)."""
        if request.content_type != "application/x-www-form-urlencoded":
            return self._error(400, "invalid content type")
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        await self._notify_change()
        if form.get("grant_type") != "refresh_token":
            return self._error(400, "unsupported grant type")
        if form.get("client_id") != CLIENT_ID:
            return self._error(400, "invalid client")
        if form.get("client_secret") != CLIENT_SECRET:
            return self._error(403, "invalid client secret")
        if self.fail_refresh > 0:
            self.fail_refresh -= 1
            return self._error(503, "service unavailable")
        if self.refuse_refresh or form.get("refresh_token") not in self.refresh_tokens:
            return self._error(400, "Invalid refresh token")
        n = len(self.token_requests)
        access, rotated = f"fake-token-{n}-{uuid.uuid4().hex[:6]}", f"fake-refresh-{n}-{uuid.uuid4().hex[:6]}"
        self.refresh_tokens = {rotated}  # the old refresh token stops working
        self.tokens[access] = time.monotonic() + self.token_lifetime_s
        return web.json_response({"access_token": access, "refresh_token": rotated,
                                  "expires_in": self.token_lifetime_s, "scope": SCOPES, "token_type": "bearer"})

    async def _validate(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        self.validations += 1
        if scheme != "OAuth" or not self.token_valid(token):
            return web.json_response({"status": 401, "message": "invalid access token"}, status=401)
        left = int(self.tokens[token] - time.monotonic())
        return web.json_response({"client_id": CLIENT_ID, "login": "streamer", "scopes": SCOPES, "user_id": USER_ID,
                                  "expires_in": left})

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 409: "Conflict",
                 503: "Service Unavailable"}
        return web.json_response({"error": names.get(status, "Error"), "status": status, "message": message},
                                 status=status)

    async def _subscribe(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid OAuth token")
        try:
            body = await request.json()
            sub_type, condition = body["type"], body["condition"]
            transport = body["transport"]
            session = self.sessions.get(transport["session_id"]) if transport["method"] == "websocket" else None
        except (ValueError, KeyError, TypeError):
            return self._error(400, "malformed request")
        self.subscription_requests.append(body)
        if sub_type in self.refuse_types:
            return self._error(403, "subscription missing proper authorization")
        if session is None or session.closed.is_set():
            return self._error(400, "websocket transport session does not exist or has already disconnected")
        if sub_type in session.subscriptions:
            return self._error(409, "subscription already exists")
        sub = {"id": str(uuid.uuid4()), "status": "enabled", "type": sub_type, "version": body.get("version", "1"),
               "condition": condition, "created_at": rfc3339(), "cost": 0,
               "transport": {"method": "websocket", "session_id": session.id, "connected_at": rfc3339()}}
        session.subscriptions[sub_type] = sub
        await self._notify_change()
        total = sum(len(s.subscriptions) for s in self.sessions.values())
        return web.json_response({"data": [sub], "total": total, "total_cost": 0, "max_total_cost": 10},
                                 status=202)

    async def _chat(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid OAuth token")
        body = await request.json()
        self.chat_posts.append(body)
        await self._notify_change()
        return web.json_response({"data": [{"message_id": str(uuid.uuid4()), "is_sent": True, "drop_reason": None}]})


async def _blast(rate: float, seconds: float) -> None:
    """Benchmark mode: serve, wait for a subscription, then send `rate` chat messages a second.
    Each event's message_timestamp is the send time, so the client can measure latency."""
    fake = FakeTwitch(keepalive_s=30)
    await fake.start()
    print(fake.port, flush=True)  # the benchmark reads this line to know where to connect
    await fake.wait_for(lambda: fake.live_session() is not None, limit_s=60)
    session = fake.live_session()
    assert session is not None
    total = int(rate * seconds)
    t0 = time.monotonic()
    users = [f"user{i}" for i in range(500)]
    words = "hello how are you today what is your favorite game I love this stream so much".split()
    for i in range(total):
        due = t0 + i / rate
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        user = users[(i * 7919) % len(users)]
        text = " ".join(words[(i + k) % len(words)] for k in range(3 + i % 6)) + f" #{i}"
        await session.ws.send_str(fake.notification(session, "channel.chat.message",
                                                    chat_event(text, user, str(10_000 + (i * 7919) % 500)),
                                                    f"bench-{i}"))
    await session.ws.send_str(fake.notification(session, "channel.chat.message", chat_event("END"), "bench-end"))
    await fake.wait_for(lambda: session.closed.is_set(), limit_s=120)
    await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(_blast(args.rate, args.seconds))
