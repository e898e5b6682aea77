"""A local YouTube Data API v3: `liveChat/messages` (liveChatMessages.list) and `videos` (for the
live chat id), with the official JSON shapes: a `youtube#liveChatMessageListResponse` with
`pollingIntervalMillis`, `nextPageToken`, `pageInfo`, `items[]` of `youtube#liveChatMessage`
(`snippet` + `authorDetails`), `offlineAt` once the stream ended, and Google's error envelope
(`{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}`).

Google's OAuth token endpoint too (`POST /token`, form-encoded `grant_type=refresh_token` with the
client id and secret -> `{access_token, expires_in, scope, token_type}`; `invalid_grant` when the
refresh token is refused). Issued tokens expire; the API answers 401 `authError` for an expired one.

Faults for tests: queue statuses in `faults` (403 rateLimitExceeded, 429, 500, "badjson",
"overlap" = serve the page again from two items earlier, as a retried request can).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

API_KEY = "fake-api-key"
OAUTH_TOKEN = "fake-oauth-token"
CLIENT_ID = "fake-google-client.apps.googleusercontent.com"
CLIENT_SECRET = "fake-google-secret"
REFRESH_TOKEN = "1//fake-google-refresh"
CHAT_ID = "Cg0KC2Zha2UtY2hhdA"
VIDEO_ID = "fakeVideo01"


def _iso(ts: float | None = None) -> str:
    dt = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def author(name: str = "viewer", channel_id: str = "UCviewer", *, owner: bool = False, mod: bool = False,
           sponsor: bool = False) -> dict[str, Any]:
    return {"channelId": channel_id, "channelUrl": f"http://www.youtube.com/channel/{channel_id}",
            "displayName": name, "profileImageUrl": "https://yt3.ggpht.com/x", "isVerified": False,
            "isChatOwner": owner, "isChatSponsor": sponsor, "isChatModerator": mod}


def _message(msg_id: str, kind: str, display: str, who: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "youtube#liveChatMessage", "etag": uuid.uuid4().hex, "id": msg_id,
            "snippet": {"type": kind, "liveChatId": CHAT_ID, "authorChannelId": who["channelId"],
                        "publishedAt": _iso(), "hasDisplayContent": True, "displayMessage": display, **details},
            "authorDetails": who}


def text_message(msg_id: str, text: str, who: dict[str, Any] | None = None) -> dict[str, Any]:
    return _message(msg_id, "textMessageEvent", text, who or author(),
                    {"textMessageDetails": {"messageText": text}})


def super_chat(msg_id: str, comment: str, micros: int, currency: str, who: dict[str, Any] | None = None) -> dict:
    shown = f"{currency} {micros / 1e6:.2f}"
    return _message(msg_id, "superChatEvent", f"{shown} from viewer: {comment}", who or author(),
                    {"superChatDetails": {"amountMicros": str(micros), "currency": currency,
                                          "amountDisplayString": shown, "userComment": comment, "tier": 2}})


def super_sticker(msg_id: str, alt: str, micros: int, currency: str, who: dict[str, Any] | None = None) -> dict:
    shown = f"{currency} {micros / 1e6:.2f}"
    return _message(msg_id, "superStickerEvent", f"Super Sticker {shown}", who or author(),
                    {"superStickerDetails": {"superStickerMetadata": {"stickerId": "sticker-1", "altText": alt,
                                                                      "language": "en"},
                                             "amountMicros": str(micros), "currency": currency,
                                             "amountDisplayString": shown, "tier": 1}})


class FakeYouTube:
    def __init__(self, polling_ms: int = 0, token_lifetime_s: int = 3599) -> None:
        self.polling_ms = polling_ms
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, float] = {OAUTH_TOKEN: time.monotonic() + token_lifetime_s}  # token -> expiry
        self.token_requests: list[dict[str, str]] = []
        self.refuse_refresh = False  # answer invalid_grant
        self.request_times: list[float] = []  # time.monotonic() of every liveChat/messages request
        self.log: list[dict[str, Any]] = []  # every message ever posted, oldest first
        self.faults: deque[int | str] = deque()
        self.requests: list[tuple[int | str, str | None]] = []  # (status served, pageToken asked)
        self.offline = False
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/youtube/v3/liveChat/messages", self._list),
                        web.get("/youtube/v3/videos", self._videos), web.post("/token", self._token)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/youtube/v3"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def refreshes(self) -> int:
        return len(self.token_requests)

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = 0.0

    def post(self, *items: dict[str, Any]) -> None:
        self.log.extend(items)

    async def wait_requests(self, n: int, limit_s: float = 10) -> None:
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= n)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return request.query.get("key") == API_KEY or (scheme == "Bearer"
                                                        and self.tokens.get(token, 0.0) > time.monotonic())

    async def _token(self, request: web.Request) -> web.Response:
        """Google's token endpoint, refresh_token grant only."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client", "error_description": "Unauthorized"}, status=401)
        if self.refuse_refresh or form.get("refresh_token") != REFRESH_TOKEN:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": "Token has been expired or revoked."}, status=400)
        access = f"ya29.fake-{len(self.token_requests)}-{uuid.uuid4().hex[:8]}"
        self.tokens[access] = time.monotonic() + self.token_lifetime_s
        return web.json_response({"access_token": access, "expires_in": self.token_lifetime_s,
                                  "scope": "https://www.googleapis.com/auth/youtube.readonly", "token_type": "Bearer"})

    @staticmethod
    def _error(code: int, reason: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message,
                                            "errors": [{"message": message, "domain": "youtube.liveChat",
                                                        "reason": reason}]}}, status=code)

    async def _served(self, status: int | str, token: str | None) -> None:
        self.requests.append((status, token))
        async with self._changed:
            self._changed.notify_all()

    async def _videos(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(403, "forbidden", "The request is not properly authorized.")
        items = [] if request.query.get("id") != VIDEO_ID else [
            {"kind": "youtube#video", "id": VIDEO_ID,
             "liveStreamingDetails": {"actualStartTime": _iso(), "activeLiveChatId": CHAT_ID}}]
        return web.json_response({"kind": "youtube#videoListResponse", "items": items,
                                  "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

    async def _list(self, request: web.Request) -> web.Response:
        self.request_times.append(time.monotonic())
        token = request.query.get("pageToken")
        if not self._authorized(request):
            await self._served(401, token)
            return self._error(401, "authError", "Invalid Credentials")
        if request.query.get("liveChatId") != CHAT_ID:
            await self._served(404, token)
            return self._error(404, "liveChatNotFound", "The live chat you are trying to retrieve cannot be found.")
        if set(request.query.get("part", "").split(",")) != {"id", "snippet", "authorDetails"}:
            return self._error(400, "invalidValue", "part")
        fault = self.faults.popleft() if self.faults else None
        start = int(token[1:]) if token and token.startswith("p") and token[1:].isdigit() else 0
        if fault in (403, 429, 500):
            await self._served(fault, token)
            reason = {403: "rateLimitExceeded", 429: "rateLimitExceeded", 500: "backendError"}[fault]
            return self._error(fault, reason, "try later")
        if fault == "badjson":
            await self._served("badjson", token)
            return web.Response(text='{"kind": "youtube#liveChatMessageListResponse", "items": [', status=200,
                                content_type="application/json")
        if fault == "overlap":
            start = max(0, start - 2)
        limit = int(request.query.get("maxResults", "500"))
        items = self.log[start:start + limit]
        body: dict[str, Any] = {
            "kind": "youtube#liveChatMessageListResponse", "etag": uuid.uuid4().hex,
            "pollingIntervalMillis": self.polling_ms, "nextPageToken": f"p{start + len(items)}",
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}, "items": items,
        }
        if self.offline and start + len(items) >= len(self.log):
            body["offlineAt"] = _iso()
        await self._served(200, token)
        return web.Response(text=json.dumps(body), content_type="application/json")
