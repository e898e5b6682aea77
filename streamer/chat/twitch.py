"""`twitch` chat: Twitch EventSub over WebSocket, spoken directly with aiohttp.

Why not twitchio 3: its EventSub socket URL is a module constant (`twitchio.eventsub.websockets.WSS`)
and its Helix/ID bases are class constants of `Route`; pointing it at a local server means
patching library globals for the whole process, and its `Client.login` also insists on the
id.twitch.tv validate/token endpoints and persists tokens to `.tio.tokens.json`. The protocol is
small and documented, so this adapter speaks it itself and takes both base URLs as config:

connect -> `session_welcome` (session id, keepalive timeout) -> create subscriptions with Helix
`POST /eventsub/subscriptions` (transport websocket + session id) -> `notification`s, with
`session_keepalive` when idle. Silence longer than the keepalive timeout means a dead socket.
`session_reconnect` carries a URL: connect there, wait for its welcome, drain the old socket until
Twitch closes it (subscriptions move over by themselves). Any other loss: reconnect with backoff
and subscribe again. Twitch delivers at least once, so notifications are de-duplicated by id.

The user token expires after a few hours, and a reconnect must create the subscriptions again with
a valid one: the token is validated at start-up and refreshed before it expires and after any 401
(streamer.chat.oauth), so a network drop late in the show does not end Twitch chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import aiohttp

from engine.language import detect_language
from engine.lifecycle import cancel_and_wait
from engine.logtext import untrusted
from streamer.backoff import Backoff
from streamer.chat.base import PartHealth
from streamer.chat.oauth import OAuthRefused, OAuthUnavailable, RefreshingToken
from streamer.chat.util import DropOldestQueue, RecentIds, as_array, as_object, safe_str, words_text
from streamer.config import TwitchSourceConfig
from streamer.events import ChatKind, ChatMessage, Fragment

log = logging.getLogger("stagecast.chat.twitch")

KEEPALIVE_GRACE_S = 5.0  # Twitch's keepalive is "at most" the timeout; allow network jitter on top
REPLY_LIMIT = 500  # characters Twitch accepts in one chat message
_BADGE_ROLES = {"broadcaster": "broadcaster", "moderator": "mod", "vip": "vip", "subscriber": "subscriber",
                "founder": "subscriber"}
_TIERS = {"1000": "1", "2000": "2", "3000": "3"}
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|z|[+-]\d\d:\d\d)?$")


class TwitchAuthError(RuntimeError):
    """The token or client id was refused; retrying will not help until a person fixes it."""


class _Lost(Exception):
    """The socket ended or fell silent; reconnect from scratch."""


def _timestamp(value: object) -> float:
    """RFC 3339 with nanoseconds (Twitch) to epoch seconds; now when unparseable."""
    match = _RFC3339.match(safe_str(value, 64))
    if match is None:
        return time.time()
    base, frac, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(base + ((frac or "")[:7]) + ("+00:00" if zone in (None, "Z", "z") else zone))
    except ValueError:
        return time.time()
    return parsed.timestamp()


def _fragments(raw: object) -> tuple[Fragment, ...]:
    out: list[Fragment] = []
    if not isinstance(raw, list):
        return ()
    for item in raw[:500]:
        if not isinstance(item, dict):
            continue
        kind = safe_str(item.get("type"), 20) or "text"
        emote = item.get("emote")
        emote_id = safe_str(emote.get("id"), 100) if isinstance(emote, dict) else ""
        out.append(Fragment(kind, safe_str(item.get("text")), emote_id))
    return tuple(out)


def _bits(value: object) -> float | None:
    """A positive number of bits, or None (hostile payloads send strings, booleans, negatives)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _message(event: Mapping[str, Any], sub_type: str, message_id: str, timestamp: float) -> ChatMessage | None:
    """One notification's event as a ChatMessage; None for what is not for the character."""
    channel = safe_str(event.get("broadcaster_user_login") or event.get("to_broadcaster_user_login"), 100)
    if sub_type == "channel.chat.message":
        body = as_object(event.get("message"))
        fragments = _fragments(body.get("fragments"))
        text = safe_str(body.get("text"))
        badges = as_array(event.get("badges"))
        roles = frozenset(
            _BADGE_ROLES[key]
            for b in badges
            if isinstance(b, dict) and (key := safe_str(b.get("set_id"), 40)) in _BADGE_ROLES
        )
        amount = _bits(as_object(event.get("cheer")).get("bits"))
        paid = amount is not None
        return ChatMessage(
            platform="twitch",
            channel=channel,
            message_id=safe_str(event.get("message_id"), 200) or message_id,
            user_id=safe_str(event.get("chatter_user_id"), 100),
            user_name=safe_str(event.get("chatter_user_name") or event.get("chatter_user_login"), 200) or "viewer",
            roles=roles,
            text=text,
            fragments=fragments,
            timestamp=timestamp,
            language=detect_language(words_text(fragments, text)),
            amount=amount,
            currency="BITS" if paid else None,
            kind=ChatKind.CHEER if paid else ChatKind.CHAT,
        )
    if sub_type == "channel.cheer":
        anonymous = bool(event.get("is_anonymous"))
        name = "anonymous" if anonymous else safe_str(event.get("user_name") or event.get("user_login"), 200)
        bits = event.get("bits")
        amount = _bits(bits)
        text = safe_str(event.get("message")) or f"{name} cheered {bits} bits!"
        return ChatMessage("twitch", name or "viewer", text, safe_str(event.get("user_id"), 100), channel,
                           f"cheer:{message_id}", timestamp=timestamp, language=detect_language(text),
                           amount=amount, currency="BITS" if amount else None, kind=ChatKind.CHEER)
    if sub_type == "channel.subscribe":
        name = safe_str(event.get("user_name") or event.get("user_login"), 200) or "viewer"
        tier = _TIERS.get(safe_str(event.get("tier"), 10), "1")
        how = "got a gifted" if event.get("is_gift") else "just subscribed with a"
        text = f"{name} {how} tier {tier} subscription!"
        return ChatMessage("twitch", name, text, safe_str(event.get("user_id"), 100), channel, f"sub:{message_id}",
                           timestamp=timestamp, kind=ChatKind.SUBSCRIPTION)
    if sub_type == "channel.raid":
        name = safe_str(event.get("from_broadcaster_user_name") or event.get("from_broadcaster_user_login"), 200)
        viewers = event.get("viewers") if isinstance(event.get("viewers"), int) else 0
        return ChatMessage("twitch", name or "raider", f"{name} is raiding with {viewers} viewers!",
                           safe_str(event.get("from_broadcaster_user_id"), 100), channel, f"raid:{message_id}",
                           timestamp=timestamp, kind=ChatKind.RAID)
    return None


class TwitchEventSubSource:
    """Yields normalized ChatMessages from one Twitch channel until cancelled."""

    def __init__(self, config: TwitchSourceConfig, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.name = f"twitch:{config.channel or config.broadcaster_id}"
        self._env = os.environ if env is None else env
        self._seen = RecentIds()
        self._queue = DropOldestQueue(config.queue_size, self.name)
        self._http: aiohttp.ClientSession | None = None
        self.connects = 0  # sockets that got a welcome
        self.malformed = 0
        self.connected = asyncio.Event()  # set while a subscribed session is up
        self.token: RefreshingToken | None = None  # made from the environment when messages() starts
        self.on_health: PartHealth | None = None  # set by the pump: the token's expiry goes to health

    @property
    def duplicates(self) -> int:
        return self._seen.duplicates

    def _make_token(self) -> RefreshingToken:
        """The user token from the environment (and token file); fails fast when nothing usable is set.
        A restart keeps the token it had: the environment's refresh token may have been rotated away."""
        if self.token is not None:
            return self.token
        c, env = self.config, self._env
        client_id = env.get(c.client_id_env, "")
        refresh, secret = env.get(c.refresh_token_env, ""), env.get(c.client_secret_env, "")
        hint = f"set {c.refresh_token_env} and {c.client_secret_env} to refresh it automatically"
        try:
            token = RefreshingToken(label="twitch", token_url=f"{c.oauth_url}/token",
                                    validate_url=f"{c.oauth_url}/validate", client_id=client_id,
                                    access_token=env.get(c.token_env, ""), refresh_token=refresh,
                                    client_secret=secret, token_file=c.token_file, hint=hint)
        except OAuthRefused as exc:
            raise TwitchAuthError(str(exc)) from None
        if not client_id or not (token.access_token or token.can_refresh):
            raise TwitchAuthError(f"set the environment variables {c.token_env} (or {c.refresh_token_env} and "
                                  f"{c.client_secret_env}) and {c.client_id_env}")
        if self.on_health is not None:
            report = self.on_health
            token.on_health = lambda status, detail: report("token", status, detail)
        return token

    def _headers(self) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token.access_token}", "Client-Id": self.token.client_id}

    async def _start_token(self, token: RefreshingToken) -> None:
        """Validate (refreshing an expired token) and check it belongs to the configured user."""
        assert self._http is not None
        try:
            await token.start(self._http)
        except OAuthRefused as exc:
            raise TwitchAuthError(str(exc)) from None
        ident = token.identity
        if not ident:
            return
        if ident.get("client_id") and ident["client_id"] != token.client_id:
            raise TwitchAuthError(f"the token was issued to another client id than {self.config.client_id_env}")
        user = safe_str(ident.get("user_id"), 100)
        if user and user != self.config.user_id:
            raise TwitchAuthError(f"the token belongs to user {user} ({safe_str(ident.get('login'), 100)}), "
                                  f"but user_id is {self.config.user_id}: reading chat needs the token's own user")
        scopes = ident.get("scopes")
        if isinstance(scopes, list) and "user:read:chat" not in scopes:
            log.warning("%s: the token lacks the user:read:chat scope; Twitch will refuse chat", self.name)

    async def _refresh_after_401(self, used: str) -> None:
        """A Helix call answered 401 with `used`: refresh (once, shared by racing callers)."""
        assert self.token is not None and self._http is not None
        try:
            await self.token.refresh(self._http, stale=used, rejected=True)
        except OAuthRefused as exc:
            raise TwitchAuthError(str(exc)) from None
        except OAuthUnavailable as exc:
            raise _Lost(f"token refresh failed: {exc}") from None

    async def _helix_post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        """POST to Helix; a 401 refreshes the token and tries once more. Returns (status, body text)."""
        assert self._http is not None and self.token is not None
        for attempt in range(2):
            used = self.token.access_token
            async with self._http.post(f"{self.config.helix_url}{path}", json=body,
                                       headers=self._headers()) as resp:
                status, text = resp.status, await resp.text()
            if status != 401 or attempt == 1 or not (self.token.can_refresh or used != self.token.access_token):
                break
            log.info("%s: Helix answered 401; refreshing the token", self.name)
            await self._refresh_after_401(used)
        return status, text

    def _subscriptions(self) -> list[tuple[str, dict[str, str], bool]]:
        """(type, condition, required): chat is required; the events need scopes a token may lack."""
        c = self.config
        subs = [("channel.chat.message", {"broadcaster_user_id": c.broadcaster_id, "user_id": c.user_id}, True)]
        if c.cheers:
            subs.append(("channel.cheer", {"broadcaster_user_id": c.broadcaster_id}, False))
        if c.subscriptions:
            subs.append(("channel.subscribe", {"broadcaster_user_id": c.broadcaster_id}, False))
        if c.raids:
            subs.append(("channel.raid", {"to_broadcaster_user_id": c.broadcaster_id}, False))
        return subs

    async def messages(self) -> AsyncIterator[ChatMessage]:
        token = self._make_token()  # fail fast, before any connection, when the token is missing
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            self._http, self.token = http, token
            tasks: list[asyncio.Task[None]] = []
            get: asyncio.Future[ChatMessage] | None = None
            try:
                await self._start_token(token)
                tasks.append(asyncio.create_task(token.maintain(http), name=f"{self.name}:token"))
                runner = asyncio.create_task(self._run(), name=f"{self.name}:socket")
                tasks.append(runner)
                while True:
                    ready = self._queue.get_nowait()
                    if ready is not None:  # fast path under load: no task per message
                        yield ready
                        continue
                    get = asyncio.ensure_future(self._queue.get())
                    done, _ = await asyncio.wait({get, runner}, return_when=asyncio.FIRST_COMPLETED)
                    if get in done:
                        yield get.result()
                        continue
                    get.cancel()
                    runner.result()  # re-raise a fatal error (bad token) to the show's pump
                    return
            finally:
                if get is not None:
                    get.cancel()
                self._http = None
                await cancel_and_wait(*tasks)  # their errors were re-raised above or logged there
                await token.flush()

    async def _run(self) -> None:
        backoff = Backoff.from_config(self.config.backoff)
        while True:
            ws: aiohttp.ClientWebSocketResponse | None = None
            try:
                ws, session_id, keepalive = await self._open(self.config.eventsub_url)
                await self._subscribe(session_id)
                self.connected.set()
                backoff.reset()
                await self._read(ws, keepalive)
            except asyncio.CancelledError:
                raise
            except TwitchAuthError:
                log.error("%s: Twitch refused the credentials; not retrying", self.name)
                raise
            except (_Lost, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                log.warning("%s: connection lost (%s); reconnecting", self.name, type(exc).__name__ + f": {exc}"[:200])
            finally:
                self.connected.clear()
                if ws is not None and not ws.closed:
                    await ws.close()
            await asyncio.sleep(backoff.next_delay())

    async def _open(self, url: str) -> tuple[aiohttp.ClientWebSocketResponse, str, float]:
        """Connect and wait for the welcome; returns the socket, session id and read timeout."""
        assert self._http is not None
        target = url
        if url == self.config.eventsub_url:
            target += ("&" if "?" in url else "?") + f"keepalive_timeout_seconds={self.config.keepalive_timeout_s}"
        ws = await self._http.ws_connect(target, heartbeat=None, max_msg_size=4 * 1024 * 1024)
        try:
            msg = await ws.receive(timeout=self.config.keepalive_timeout_s + KEEPALIVE_GRACE_S)
            frame = self._parse(msg)
            if frame is None or frame[0] != "session_welcome":
                raise _Lost(f"expected session_welcome, got {frame[0] if frame else msg.type.name}")
            session = as_object(frame[2].get("session"))
            session_id = safe_str(session.get("id"), 200)
            if not session_id:
                raise _Lost("welcome without a session id")
            timeout = session.get("keepalive_timeout_seconds")
            keepalive = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else 600.0
            self.connects += 1
            log.info("%s: connected (session %s…)", self.name, session_id[:8])
            return ws, session_id, keepalive + KEEPALIVE_GRACE_S
        except BaseException:
            await ws.close()
            raise

    async def _subscribe(self, session_id: str) -> None:
        assert self.token is not None
        for sub_type, condition, required in self._subscriptions():
            body = {"type": sub_type, "version": "1", "condition": condition,
                    "transport": {"method": "websocket", "session_id": session_id}}
            status, text = await self._helix_post("/eventsub/subscriptions", body)
            if status in (202, 409):  # created, or it already exists for this session
                continue
            detail = self.token.scrub(text[:200])
            if status == 401:  # still 401 with a fresh token, or no way to refresh
                raise TwitchAuthError(f"Helix answered 401 creating {sub_type}: {detail}")
            if required or status >= 500 or status == 429:
                raise _Lost(f"Helix answered {status} creating {sub_type}: {detail}")
            log.warning("%s: cannot subscribe to %s (HTTP %d: %s); going on without it", self.name,
                        sub_type, status, detail)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, silence_s: float) -> None:
        """Handle frames until the socket is lost; follows session_reconnect to the new socket."""
        while True:
            try:
                msg = await ws.receive(timeout=silence_s)
            except TimeoutError:
                raise _Lost(f"no message or keepalive for {silence_s:.0f} s") from None
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
                raise _Lost(f"socket closed ({ws.close_code})")
            frame = self._parse(msg)
            if frame is None:
                continue
            kind, metadata, payload = frame
            if kind == "notification":
                self._notify(metadata, payload)
            elif kind == "session_reconnect":
                session = as_object(payload.get("session"))
                url = safe_str(session.get("reconnect_url"), 2000)
                if not url.startswith(("ws://", "wss://")):
                    raise _Lost("session_reconnect without a usable reconnect_url")
                log.info("%s: Twitch asked to move to a new socket", self.name)
                new_ws, _, new_silence_s = await self._open(url)
                await self._drain(ws, silence_s)
                ws, silence_s = new_ws, new_silence_s
            elif kind == "revocation":
                sub = as_object(payload.get("subscription"))
                log.warning("%s: Twitch revoked %s (%s)", self.name, untrusted(safe_str(sub.get("type"), 100)),
                            untrusted(safe_str(sub.get("status"), 100)))
            # session_keepalive: receiving it already reset the timeout

    async def _drain(self, old: aiohttp.ClientWebSocketResponse, silence_s: float) -> None:
        """Take what the old socket still delivers until Twitch closes it, so nothing is lost."""
        try:
            while True:
                msg = await old.receive(timeout=silence_s)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                frame = self._parse(msg)
                if frame is not None and frame[0] == "notification":
                    self._notify(frame[1], frame[2])
        except TimeoutError:
            log.warning("%s: the old socket stayed open after the reconnect; closing it", self.name)
        finally:
            await old.close()

    def _parse(self, msg: aiohttp.WSMessage) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        if msg.type != aiohttp.WSMsgType.TEXT:
            return None
        try:
            data = json.loads(msg.data)
            metadata, payload = data["metadata"], data["payload"]
            kind = metadata["message_type"]
            if not isinstance(metadata, dict) or not isinstance(payload, dict) or not isinstance(kind, str):
                raise TypeError("metadata/payload are not objects")
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed += 1
            log.warning("%s: skipped a malformed frame (%s)", self.name, type(exc).__name__)
            return None
        return kind, metadata, payload

    def _notify(self, metadata: dict[str, Any], payload: dict[str, Any]) -> None:
        event = payload.get("event")
        sub = as_object(payload.get("subscription"))
        sub_type = safe_str(metadata.get("subscription_type") or sub.get("type"), 100)
        message_id = safe_str(metadata.get("message_id"), 200)
        if not isinstance(event, dict) or not message_id:
            self.malformed += 1
            return
        if not self._seen.add(message_id):
            return
        try:
            msg = _message(event, sub_type, message_id, _timestamp(metadata.get("message_timestamp")))
        except Exception:  # hostile payload: log and skip, never take the adapter down
            self.malformed += 1
            log.exception("%s: could not read a %s notification", self.name, sub_type)
            return
        if msg is not None and (msg.kind is not ChatKind.CHAT or self._seen.add(f"msg:{msg.message_id}")):
            self._queue.put(msg)

    @property
    def replies_enabled(self) -> bool:
        return self.config.replies

    async def send_reply(self, text: str, reply_to: ChatMessage | None = None) -> bool:
        """Post the character's (already output-moderated) words into chat, when enabled."""
        if not self.config.replies or self._http is None:
            return False
        body: dict[str, str] = {"broadcaster_id": self.config.broadcaster_id, "sender_id": self.config.user_id,
                                "message": text[:REPLY_LIMIT]}
        if reply_to is not None and reply_to.platform == "twitch" and reply_to.kind is ChatKind.CHAT:
            body["reply_parent_message_id"] = reply_to.message_id
        try:
            status, text = await self._helix_post("/chat/messages", body)
            data = json.loads(text) if status == 200 else None
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError, TwitchAuthError, _Lost) as exc:
            log.warning("%s: reply not sent (%s)", self.name, type(exc).__name__)
            return False
        items = data.get("data") if isinstance(data, dict) else None
        sent = bool(items and isinstance(items[0], dict) and items[0].get("is_sent"))
        if not sent:
            log.warning("%s: Twitch did not post the reply (%s)", self.name,
                        untrusted(items, 200) if items else "no data")
        return sent
