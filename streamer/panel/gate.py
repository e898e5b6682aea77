"""The panel's front door: a pure ASGI middleware every request passes before routing or body parsing.

Checks, cheapest first: the Host header names this server (421: DNS rebinding); a state-changing
request or a WebSocket handshake that a browser sends from another origin is refused (403); on `/api/*`
the bearer token (401), its rate (429) and, for a token never seen before, the argon2 budget (429,
streamer/panel/auth.py); then a state-changing body must be UTF-8 JSON (415, 400) of at most 64 KiB
(413). Every HTTP response gets the security headers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamer.ingress import STATE_CHANGING, host_allowed, is_json, origin_allowed, utf8_charset
from streamer.panel.auth import Throttled, bearer

if TYPE_CHECKING:
    from streamer.panel.app import Panel

MAX_BODY = 64 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; font-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers, *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": data})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(scope: Scope, send: Send, status: int, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """An HTTP error as JSON; for a WebSocket handshake, a close before accept (uvicorn answers 403)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4400 + status % 100 if status < 500 else 1011,
                    "reason": detail[:120]})
        return
    await _send_json(send, status, {"detail": detail}, headers or [])


class ApiGate:
    """Pure ASGI: check Host, Origin and content type, authenticate and rate-limit /api/* before routing
    or body parsing; cap the body; add security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, panel: Panel) -> None:
        self.app = app
        self.panel = panel
        self.auth = panel.auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        settings = self.panel.settings
        host = _header(scope, b"host")
        if not host_allowed(host, self.panel.port or settings.port, settings.allowed_hosts):
            await _refuse(scope, send, 421, "unknown Host header: open the panel at the address the show printed "
                                            "(or list the name in panel.allowed_hosts)")
            return
        method: str = scope.get("method", "GET")
        changing = scope["type"] == "websocket" or method in STATE_CHANGING
        if changing and not origin_allowed(_header(scope, b"origin"), host, _header(scope, b"sec-fetch-site")):
            await _refuse(scope, send, 403, "cross-origin request refused: use the panel's own pages")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/api" or path.startswith("/api/"):
            client = scope.get("client")
            try:
                principal = await self.auth.authenticate(bearer(_header(scope, b"authorization")),
                                                         client[0] if client else None)
            except Throttled as exc:
                await _send_json(send, 429, {"detail": str(exc), "retry_after_s": round(exc.retry_s, 3)},
                                 [(b"retry-after", str(max(1, round(exc.retry_s))).encode())])
                return
            if principal is None:
                await _send_json(send, 401, {"detail": "missing or invalid bearer token"},
                                 [(b"www-authenticate", b'Bearer realm="stagecast"')])
                return
            ok, retry = self.auth.take(principal)
            if not ok:
                await _send_json(send, 429, {"detail": "rate limit exceeded for this token", "retry_after_s":
                                             round(retry, 3)}, [(b"retry-after", str(max(1, round(retry))).encode())])
                return
            scope.setdefault("state", {})["principal"] = principal

        if method in STATE_CHANGING:
            length = _header(scope, b"content-length")
            has_body = _header(scope, b"transfer-encoding") is not None or (length is not None and length != "0")
            content_type = _header(scope, b"content-type")
            if has_body and not is_json(content_type):
                await _refuse(scope, send, 415, "send the request body as application/json")
                return
            if has_body and not utf8_charset(content_type):
                await _refuse(scope, send, 400, "the body must be UTF-8 JSON (charset=utf-8 or none)")
                return
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                await _refuse(scope, send, 413, f"request body over {MAX_BODY // 1024} KiB")
                return
            receive = _capped(receive, MAX_BODY)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """A chunked body grew past the cap while it was being read."""


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` that raises BodyTooLarge once more than `limit` body bytes arrived (chunked uploads)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"request body over {limit // 1024} KiB")
        return message

    return wrapped
