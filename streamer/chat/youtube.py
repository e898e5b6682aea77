"""`youtube` chat, two backends.

`api` (default): the official YouTube Data API v3 `liveChatMessages.list`. Polls with the
`nextPageToken` of the last good page and waits `pollingIntervalMillis` between polls (never less
than `min_poll_s`). 403 rateLimitExceeded/quotaExceeded, 429, 5xx, network errors and unreadable
bodies are retried with backoff *on the same page token*, so nothing is skipped; what a retry sees
twice is dropped by message id. Stops when the chat ends (`offlineAt`, `chatEndedEvent`,
`liveChatEnded`). Needs an API key or an OAuth token from the environment; neither is ever logged
(the key travels in the query string, so errors are reported by type, never by URL). A Google
OAuth token lives an hour: with a refresh token and the OAuth client's id and secret it is
refreshed at start-up, shortly before each expiry, and after a 401 (streamer.chat.oauth).

`pytchat` (optional extra `youtube`): reads the public chat without an API quota. pytchat is
synchronous, so it runs in its own thread; a read that takes longer than `stall_timeout_s`, or a
reader that reports itself dead, is terminated and replaced (with backoff). It is created with
`interruptable=False` so it never installs a SIGINT handler over the show's own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from datetime import datetime
from typing import Any

import aiohttp

from engine.language import detect_language
from engine.lifecycle import cancel_and_wait
from engine.logtext import untrusted
from streamer.backoff import Backoff
from streamer.chat.base import PartHealth
from streamer.chat.oauth import OAuthRefused, OAuthUnavailable, RefreshingToken
from streamer.chat.util import RecentIds, as_object, safe_str
from streamer.config import YouTubeSourceConfig
from streamer.events import ChatKind, ChatMessage

log = logging.getLogger("stagecast.chat.youtube")

_RETRY_REASONS = {"rateLimitExceeded", "quotaExceeded", "userRateLimitExceeded", "backendError", "internalError"}
_ENDED_REASONS = {"liveChatEnded", "liveChatDisabled"}
Sleep = Callable[[float], Awaitable[None]]


class YouTubeError(RuntimeError):
    """A problem retrying cannot fix (credentials, a chat that does not exist, a missing extra)."""


def _epoch(value: object) -> float:
    try:
        return datetime.fromisoformat(safe_str(value, 64).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.now().timestamp()


def _roles(owner: object, mod: object, sponsor: object) -> frozenset[str]:
    return frozenset(r for r, flag in (("broadcaster", owner), ("mod", mod), ("subscriber", sponsor)) if flag is True)


def _micros(value: object) -> float | None:
    try:
        amount = int(safe_str(value, 32)) / 1e6
    except ValueError:
        return None
    return amount if amount > 0 else None


def normalize_api_item(item: object, chat_id: str) -> ChatMessage | None:
    """One `youtube#liveChatMessage` as a ChatMessage; None for events that are not for the character."""
    if not isinstance(item, dict):
        return None
    snippet = as_object(item.get("snippet"))
    who = as_object(item.get("authorDetails"))
    msg_id = safe_str(item.get("id"), 200)
    kind = safe_str(snippet.get("type"), 64)
    name = safe_str(who.get("displayName"), 200) or "viewer"
    amount = currency = None
    chat_kind = ChatKind.CHAT
    if kind == "textMessageEvent":
        details = as_object(snippet.get("textMessageDetails"))
        text = safe_str(details.get("messageText") or snippet.get("displayMessage"))
    elif kind == "superChatEvent":
        details = as_object(snippet.get("superChatDetails"))
        amount, currency, chat_kind = _micros(details.get("amountMicros")), safe_str(details.get("currency"), 8), \
            ChatKind.SUPER_CHAT
        shown = safe_str(details.get("amountDisplayString"), 40)
        text = safe_str(details.get("userComment")) or f"{name} sent a Super Chat of {shown}!"
    elif kind == "superStickerEvent":
        details = as_object(snippet.get("superStickerDetails"))
        meta = as_object(details.get("superStickerMetadata"))
        amount, currency, chat_kind = _micros(details.get("amountMicros")), safe_str(details.get("currency"), 8), \
            ChatKind.SUPER_STICKER
        text = f"{name} sent a Super Sticker: {safe_str(meta.get('altText'), 200) or 'a sticker'}"
    elif kind in ("newSponsorEvent", "memberMilestoneChatEvent"):
        chat_kind = ChatKind.SUBSCRIPTION
        text = safe_str(snippet.get("displayMessage")) or f"{name} just became a member!"
    else:  # deletions, bans, polls, mode changes, tombstones: nothing to answer
        return None
    if not msg_id:
        return None
    return ChatMessage(
        platform="youtube",
        user_name=name,
        text=text,
        user_id=safe_str(who.get("channelId") or snippet.get("authorChannelId"), 100),
        channel=chat_id,
        message_id=msg_id,
        roles=_roles(who.get("isChatOwner"), who.get("isChatModerator"), who.get("isChatSponsor")),
        timestamp=_epoch(snippet.get("publishedAt")),
        language=detect_language(text),
        amount=amount,
        currency=(currency or None) if amount else None,
        kind=chat_kind,
    )


class YouTubeApiSource:
    """liveChatMessages.list polling; yields each message once, in order."""

    def __init__(self, config: YouTubeSourceConfig, env: Mapping[str, str] | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.name = f"youtube:{config.live_chat_id or config.video_id}"
        self._env = os.environ if env is None else env
        self._sleep = sleep
        self._seen = RecentIds()
        self.retries = 0
        self.malformed = 0
        self.token: RefreshingToken | None = None  # the OAuth token, made when messages() starts
        self.on_health: PartHealth | None = None  # set by the pump: the token's expiry goes to health

    @property
    def duplicates(self) -> int:
        return self._seen.duplicates

    def _make_token(self) -> RefreshingToken | None:
        """None for an API key; else the OAuth token (refreshable when the refresh variables are set).
        A restart keeps the token it had (refreshed since the environment was read)."""
        if self.token is not None:
            return self.token
        c, env = self.config, self._env
        if env.get(c.api_key_env, ""):
            return None
        hint = (f"set {c.refresh_token_env}, {c.client_id_env} and {c.client_secret_env} "
                "to refresh it automatically")
        try:
            token = RefreshingToken(label="youtube", token_url=c.token_url, client_id=env.get(c.client_id_env, ""),
                                    access_token=env.get(c.oauth_token_env, ""),
                                    refresh_token=env.get(c.refresh_token_env, ""),
                                    client_secret=env.get(c.client_secret_env, ""), token_file=c.token_file,
                                    hint=hint)
        except OAuthRefused as exc:
            raise YouTubeError(str(exc)) from None
        if not (token.access_token or token.can_refresh):
            raise YouTubeError(f"set {c.api_key_env} (API key) or {c.oauth_token_env} (OAuth token), or "
                               f"{c.refresh_token_env}, {c.client_id_env} and {c.client_secret_env}")
        if self.on_health is not None:
            report = self.on_health
            token.on_health = lambda status, detail: report("token", status, detail)
        return token

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """(query params, headers): an API key in the query, or an OAuth bearer token."""
        if self.token is not None:
            return {}, {"Authorization": f"Bearer {self.token.access_token}"}
        return {"key": self._env.get(self.config.api_key_env, "")}, {}

    async def _get(self, http: aiohttp.ClientSession, path: str, params: dict[str, str]) -> tuple[int, Any, str]:
        """(status, parsed body or None, error reason); a 401 on a refreshable token refreshes it and
        asks once more."""
        used = self.token.access_token if self.token is not None else ""
        status, body, reason = await self._get_once(http, path, params)
        if status == 401 and self.token is not None and (self.token.can_refresh or used != self.token.access_token):
            log.info("%s: the API answered 401; refreshing the token", self.name)
            try:
                await self.token.refresh(http, stale=used, rejected=True)
            except OAuthRefused as exc:
                raise YouTubeError(str(exc)) from None
            except OAuthUnavailable as exc:
                return 0, None, f"token refresh failed: {exc}"
            status, body, reason = await self._get_once(http, path, params)
        return status, body, reason

    async def _get_once(self, http: aiohttp.ClientSession, path: str,
                        params: dict[str, str]) -> tuple[int, Any, str]:
        query, headers = self._auth()
        async with http.get(f"{self.config.api_url}/{path}", params={**params, **query}, headers=headers) as resp:
            raw = await resp.read()
            try:
                body = await asyncio.to_thread(_loads, raw) if len(raw) > 1_000_000 else _loads(raw)
            except ValueError:
                return resp.status, None, "unreadable body"
            reason = ""
            if resp.status != 200 and isinstance(body, dict) and isinstance(body.get("error"), dict):
                errors = body["error"].get("errors")
                if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                    reason = safe_str(errors[0].get("reason"), 64)
            return resp.status, body, reason

    async def _chat_id(self, http: aiohttp.ClientSession) -> str:
        if self.config.live_chat_id:
            return self.config.live_chat_id
        status, body, reason = await self._get(http, "videos", {"part": "liveStreamingDetails",
                                                                 "id": self.config.video_id})
        items = body.get("items") if isinstance(body, dict) else None
        details = items[0].get("liveStreamingDetails") if items and isinstance(items[0], dict) else None
        chat_id = details.get("activeLiveChatId") if isinstance(details, dict) else None
        if status != 200 or not isinstance(chat_id, str) or not chat_id:
            raise YouTubeError(f"video {self.config.video_id} has no active live chat (HTTP {status} {reason})")
        return chat_id

    async def messages(self) -> AsyncIterator[ChatMessage]:
        self.token = token = self._make_token()  # fail fast without credentials
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            keeper: asyncio.Task[None] | None = None
            if token is not None:
                try:
                    await token.start(http)  # a refreshable token is refreshed now: its expiry becomes known
                except OAuthRefused as exc:
                    raise YouTubeError(str(exc)) from None
                keeper = asyncio.create_task(token.maintain(http), name=f"{self.name}:token")
            try:
                async with aclosing(self._poll(http)) as polled:
                    async for msg in polled:
                        yield msg
            finally:
                if keeper is not None:
                    await cancel_and_wait(keeper)
                if token is not None:
                    await token.flush()

    async def _poll(self, http: aiohttp.ClientSession) -> AsyncGenerator[ChatMessage, None]:
        backoff = Backoff.from_config(self.config.backoff)
        chat_id = await self._chat_id(http)
        page: str | None = None
        while True:
            params = {"liveChatId": chat_id, "part": "id,snippet,authorDetails",
                      "maxResults": str(self.config.max_results)}
            if page:
                params["pageToken"] = page
            try:
                status, body, reason = await self._get(http, "liveChat/messages", params)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status, body, reason = 0, None, type(exc).__name__
            if status == 200 and isinstance(body, dict) and isinstance(body.get("items", []), list):
                ended = False
                for item in body.get("items", []):
                    if isinstance(item, dict) and safe_str(as_object(item.get("snippet")).get("type"),
                                                           64) == "chatEndedEvent":
                        ended = True
                    msg = self._normalize(item, chat_id)
                    if msg is not None:
                        yield msg
                if isinstance(body.get("nextPageToken"), str) and body["nextPageToken"]:
                    page = body["nextPageToken"]
                if ended or body.get("offlineAt"):
                    log.info("%s: the live chat ended", self.name)
                    return
                backoff.reset()
                interval = body.get("pollingIntervalMillis")
                wait = interval / 1000 if isinstance(interval, int | float) and interval > 0 else 0.0
                await self._sleep(min(max(wait, self.config.min_poll_s), 60.0))
                continue
            if reason in _ENDED_REASONS:
                log.info("%s: the live chat ended (%s)", self.name, untrusted(reason))
                return
            if status in (401, 404) or (status in (400, 403) and reason not in _RETRY_REASONS):
                hint = f" ({self.token.hint})" if status == 401 and self.token and not self.token.can_refresh else ""
                raise YouTubeError(f"{self.name}: HTTP {status} {reason or 'error'}; not retrying{hint}")
            self.retries += 1
            if status == 200:
                self.malformed += 1
            delay = backoff.next_delay()
            log.warning("%s: poll failed (%s %s); retrying the same page in %.1f s", self.name, status or "network",
                        untrusted(reason), delay)
            await self._sleep(delay)

    def _normalize(self, item: object, chat_id: str) -> ChatMessage | None:
        try:
            msg = normalize_api_item(item, chat_id)
        except Exception:
            self.malformed += 1
            log.exception("%s: could not read a chat item", self.name)
            return None
        if msg is None or not self._seen.add(msg.message_id):
            return None
        return msg


def _loads(raw: bytes) -> Any:
    import json

    return json.loads(raw)


def _pytchat_factory(video_id: str) -> Any:
    try:
        import httpx
        import pytchat
        from pytchat.processors.default.processor import DefaultProcessor
    except ImportError as exc:
        raise YouTubeError("the pytchat backend needs the optional extra: pip install 'stagecast[youtube]'") from exc
    # fresh processor and client each time: pytchat's defaults are shared objects across readers
    return pytchat.create(video_id=video_id, interruptable=False, processor=DefaultProcessor(),
                          client=httpx.Client(http2=True, timeout=15))


def normalize_pytchat_item(item: Any, video_id: str) -> ChatMessage | None:
    """A pytchat DefaultProcessor chat item (attributes, not JSON) as a ChatMessage."""
    msg_id = safe_str(getattr(item, "id", ""), 200)
    if not msg_id:
        return None
    who = getattr(item, "author", None)
    name = safe_str(getattr(who, "name", ""), 200) or "viewer"
    kind = safe_str(getattr(item, "type", ""), 32)
    text = safe_str(getattr(item, "message", ""))
    raw_amount = getattr(item, "amountValue", 0.0)
    amount = float(raw_amount) if isinstance(raw_amount, int | float) and raw_amount > 0 else None
    chat_kind = {"superChat": ChatKind.SUPER_CHAT, "superSticker": ChatKind.SUPER_STICKER,
                 "newSponsor": ChatKind.SUBSCRIPTION}.get(kind, ChatKind.CHAT)
    if chat_kind is ChatKind.SUPER_STICKER and not text:
        text = f"{name} sent a Super Sticker!"
    ts = getattr(item, "timestamp", 0)
    return ChatMessage(
        platform="youtube",
        user_name=name,
        text=text,
        user_id=safe_str(getattr(who, "channelId", ""), 100),
        channel=video_id,
        message_id=msg_id,
        roles=_roles(getattr(who, "isChatOwner", False), getattr(who, "isChatModerator", False),
                     getattr(who, "isChatSponsor", False)),
        timestamp=ts / 1000 if isinstance(ts, int | float) and ts > 0 else datetime.now().timestamp(),
        language=detect_language(text),
        amount=amount,
        currency=(safe_str(getattr(item, "currency", ""), 8) or None) if amount else None,
        kind=chat_kind,
    )


class YouTubePytchatSource:
    """pytchat in a watched worker thread: stalled or dead readers are replaced."""

    def __init__(self, config: YouTubeSourceConfig, factory: Callable[[str], Any] | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.name = f"youtube-pytchat:{config.video_id}"
        self._factory = factory or _pytchat_factory
        self._sleep = sleep
        self._seen = RecentIds()
        self.restarts = 0

    @property
    def duplicates(self) -> int:
        return self._seen.duplicates

    async def messages(self) -> AsyncIterator[ChatMessage]:
        loop = asyncio.get_running_loop()
        backoff = Backoff.from_config(self.config.backoff)
        reader: Any = None
        pool = ThreadPoolExecutor(1, thread_name_prefix="pytchat")
        try:
            while True:
                try:
                    if reader is None:
                        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancel (the show
                        # stopping) that lands in the tick the poll returns, and the loop would poll on
                        async with asyncio.timeout(self.config.stall_timeout_s):
                            reader = await loop.run_in_executor(pool, self._factory, self.config.video_id)
                    if not reader.is_alive():
                        reader.raise_for_status()
                        raise YouTubeError("reader stopped")
                    async with asyncio.timeout(self.config.stall_timeout_s):
                        data = await loop.run_in_executor(pool, reader.get)
                    items = getattr(data, "items", None)
                    for item in items if isinstance(items, list) else []:
                        msg = normalize_pytchat_item(item, self.config.video_id)
                        if msg is not None and self._seen.add(msg.message_id):
                            yield msg
                    backoff.reset()
                    await self._sleep(self.config.min_poll_s)
                    continue
                except asyncio.CancelledError:
                    raise
                except TimeoutError:
                    why = f"no answer for {self.config.stall_timeout_s:g} s (stalled)"
                    pool.shutdown(wait=False, cancel_futures=True)  # the stuck thread is abandoned, not joined
                    pool = ThreadPoolExecutor(1, thread_name_prefix="pytchat")
                except YouTubeError as exc:
                    if reader is None:
                        raise  # the extra is missing: retrying will not install it
                    why = str(exc)
                except Exception as exc:  # pytchat raises many kinds; each one means "this reader is done"
                    why = type(exc).__name__
                self.restarts += 1
                if reader is not None:
                    try:
                        reader.terminate()
                    except Exception:
                        log.debug("%s: terminate failed", self.name, exc_info=True)
                reader = None
                delay = backoff.next_delay()
                log.warning("%s: reader lost (%s); restarting in %.1f s", self.name, why, delay)
                await self._sleep(delay)
        finally:
            if reader is not None:
                reader.terminate()
            pool.shutdown(wait=False, cancel_futures=True)


def make_youtube_source(config: YouTubeSourceConfig) -> YouTubeApiSource | YouTubePytchatSource:
    return YouTubeApiSource(config) if config.backend == "api" else YouTubePytchatSource(config)
