"""A local OpenAI-compatible chat-completions server (aiohttp) for tests and benchmarks.

It speaks the documented wire format: POST /v1/chat/completions with ``"stream": true`` answers
``text/event-stream`` with ``data: {chat.completion.chunk}`` events and a final ``data: [DONE]``; errors
are an HTTP status with ``{"error": {"message": ...}}``.  Time to first token and the token rate are
configurable, and every request is recorded, including whether the client went away mid-stream (the
handler is cancelled on disconnect, so that is seen at once, not at the next write).

The reply, unless fixed with `reply`, answers in the language the instructions ask for (the last
"Answer in Japanese ..." in the system message or the note with the viewer's message) so multilingual
plumbing can be checked end to end.  `mode` injects failures: ``http500``, ``http401``, ``http429``,
``http404``, ``garbage`` (a non-JSON data line), ``bad-field`` (a line that is not SSE), ``error-event``
(an error object mid-stream), ``truncate`` (connection dropped mid-stream), ``no-done`` (ends without
[DONE]), ``json`` (ignores "stream" and answers with one JSON object).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REPLIES = {
    "en": "[joy] Hi {user}! Thanks for coming by. I'm really happy you're here today.",
    "zh": "[joy] 你好，{user}！欢迎来到直播间。今天过得怎么样？",
    "ja": "[joy] {user}さん、こんにちは！配信へようこそ。今日はどうでしたか？",
}
_ASKED = {"English": "en", "Simplified Chinese": "zh", "Chinese": "zh", "Japanese": "ja"}


@dataclass
class RequestRecord:
    """One request as the server saw it."""

    body: dict[str, Any]
    authorization: str | None
    received_at: float  # time.monotonic()
    first_token_at: float | None = None
    tokens_sent: int = 0
    completed: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def system_prompt(self) -> str:
        msgs = self.body.get("messages") or []
        return str(msgs[0].get("content", "")) if msgs and msgs[0].get("role") == "system" else ""

    @property
    def instructions(self) -> str:
        """What the brain told the model this turn: the system message and the note with the viewer's message."""
        msgs = self.body.get("messages") or []
        last = str(msgs[-1].get("content", "")) if msgs else ""
        return self.system_prompt + "\n" + last


def tokenize(text: str, language: str) -> list[str]:
    """Word pieces with their leading space (as GPT-style tokenizers emit them); CJK two chars a piece."""
    if language in ("zh", "ja"):
        pieces: list[str] = []
        for part in re.findall(r"\[[a-z]+\]\s*|[^\[]", text):
            if len(part) == 1 and pieces and len(pieces[-1]) == 1 and not pieces[-1].startswith("["):
                pieces[-1] += part
            else:
                pieces.append(part)
        return pieces
    return re.findall(r"\s*\S+", text)


def asked_language(instructions: str) -> str:
    matches = re.findall(r"Answer in ([A-Z][a-z]+(?: [A-Z][a-z]+)?)", instructions)
    return _ASKED.get(matches[-1], "en") if matches else "en"


class FakeOpenAIServer:
    """Start with ``async with FakeOpenAIServer(...) as server:``; ``server.base_url`` ends in /v1."""

    def __init__(
        self,
        ttft_s: float = 0.05,
        tokens_per_s: float = 100.0,
        reply: str | None = None,
        mode: str = "stream",
        host: str = "127.0.0.1",
        port: int = 0,
        single_slot: bool = False,
        linger_s: float = 0.0,
    ) -> None:
        """`single_slot`: behave like llama-cpp-python's server (one model lock; `/v1/models` waits for it;
        `/openapi.json` names it); `linger_s`: how long an abandoned request keeps the lock (reading its
        prompt, which that server cannot stop)."""
        self.ttft_s = ttft_s
        self.tokens_per_s = tokens_per_s
        self.reply = reply
        self.mode = mode
        self.host = host
        self.requests: list[RequestRecord] = []
        self.request_seen = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = port
        self.model_requests = 0
        self._live: set[asyncio.BaseTransport] = set()
        self.single_slot = single_slot
        self.linger_s = linger_s
        self._slot = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def __aenter__(self) -> FakeOpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        if self.single_slot:
            app.router.add_get("/openapi.json", self._openapi)
        # handler_cancellation: a client disconnect cancels the handler, so it is recorded immediately
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def kill(self) -> None:
        """Stop like a crashed server: open streams break off mid-reply, the port refuses connections."""
        for transport in list(self._live):
            transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response({"openapi": "3.1.0", "info": {"title": "🦙 llama.cpp Python API"}})

    async def _models(self, request: web.Request) -> web.Response:
        self.model_requests += 1
        if self.single_slot:
            async with self._slot:  # like llama-cpp-python: waits for the model to be free
                pass
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def reply_for(self, body: dict[str, Any]) -> tuple[str, str]:
        """(reply text, language) for a request: the fixed reply, or one in the asked language."""
        msgs = body.get("messages") or []
        system = str(msgs[0].get("content", "")) if msgs and msgs[0].get("role") == "system" else ""
        last = str(msgs[-1].get("content", "")) if msgs else ""
        language = asked_language(system + "\n" + last)
        if self.reply is not None:
            return self.reply, language
        speaker = last.splitlines()[-1] if last else ""
        user = speaker.split(":", 1)[0] if ":" in speaker else "friend"
        return REPLIES[language].format(user=user), language

    @staticmethod
    def _chunk(content: str | None, finish: str | None = None, role: bool = False) -> bytes:
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if content is not None:
            delta["content"] = content
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.single_slot:
            return await self._serve(request)
        async with self._slot:
            try:
                return await self._serve(request)
            except asyncio.CancelledError:  # the client went away: the slot stays busy a while longer
                await asyncio.shield(asyncio.sleep(self.linger_s))
                raise

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if request.transport is not None:
            self._live.add(request.transport)
        record = RequestRecord(body, request.headers.get("Authorization"), time.monotonic())
        self.requests.append(record)
        self.request_seen.set()
        if self.mode == "http500":
            return web.json_response({"error": {"message": "the model crashed", "type": "server_error"}}, status=500)
        if self.mode == "http429":
            return web.json_response({"error": {"message": "slow down", "type": "rate_limit"}}, status=429)
        if self.mode == "http404":
            return web.json_response({"error": {"message": "model 'm' not found"}}, status=404)
        if self.mode == "http401":
            return web.json_response({"error": {"message": "invalid api key", "type": "auth"}}, status=401)
        text, language = self.reply_for(body)
        if self.mode == "json":
            message = {"role": "assistant", "content": text}
            return web.json_response({"object": "chat.completion", "choices": [{"index": 0, "message": message}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        interval = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        try:
            await response.write(b": keep-alive\n\n" + self._chunk("", role=True))
            await asyncio.sleep(self.ttft_s)
            for i, token in enumerate(tokenize(text, language)):
                if i:
                    await asyncio.sleep(interval)
                await response.write(self._chunk(token))
                record.tokens_sent += 1
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
                if i == 1 and self.mode == "truncate":  # drop the connection mid-stream
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if i == 1 and self.mode in ("garbage", "bad-field", "error-event"):
                    await response.write(self._failure_bytes())
            await response.write(self._chunk(None, finish="stop"))
            if self.mode != "no-done":
                await response.write(b"data: [DONE]\n\n")
            record.completed = True
            await response.write_eof()
        except asyncio.CancelledError:
            record.disconnected.set()
            raise
        except ConnectionResetError:
            record.disconnected.set()
        return response

    def _failure_bytes(self) -> bytes:
        if self.mode == "garbage":
            return b"data: {this is not json\n\n"
        if self.mode == "bad-field":
            return b"<html>proxy error</html>\n\n"
        return b'data: {"error": {"message": "model overloaded", "code": 503}}\n\n'
