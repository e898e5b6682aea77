"""`local` chat: a small page on 127.0.0.1 where a person types as a viewer (no accounts needed)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.language import detect_language
from streamer.events import ChatMessage

log = logging.getLogger("stagecast.chat.local")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stagecast — local chat</title>
<style>
 body{font-family:system-ui,"Noto Sans CJK JP","Noto Sans CJK SC",sans-serif;
      max-width:40em;margin:2em auto;padding:0 1em}
 input{font-size:1.1em;padding:.4em} #text{width:70%} #log{margin-top:1em;color:#555}
</style></head><body>
<h1>Chat with the character</h1>
<form id="f"><input id="user" placeholder="your name" value="viewer" maxlength="40">
<input id="text" placeholder="say something (English, 中文, 日本語)" autofocus maxlength="500">
<button>Send</button></form><div id="log"></div>
<script>
const f = document.getElementById('f'), log = document.getElementById('log');
f.addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = document.getElementById('user').value, text = document.getElementById('text');
  const r = await fetch('/api/chat', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                      body: JSON.stringify({user, text: text.value})});
  const line = document.createElement('div');
  line.textContent = r.ok ? 'sent: ' + text.value : 'not sent: ' + (await r.text());
  log.prepend(line); text.value = '';
});
</script></body></html>"""


class LocalPost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=100_000)


class LocalChatSource:
    """Serves the page and turns each POST into a ChatMessage. Bounded: a full queue answers 429."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, queue_size: int = 100) -> None:
        self.name = f"local:{host}:{port}"
        self.host = host
        self.port = port
        self._queue: asyncio.Queue[ChatMessage] = asyncio.Queue(queue_size)
        self._ids = itertools.count(1)
        self.bound_port: int | None = None
        self.ready = asyncio.Event()  # set once the page is being served

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html")

    async def _post(self, request: web.Request) -> web.Response:
        try:
            post = LocalPost.model_validate(json.loads(await request.text()))
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
            return web.Response(status=400, text=f"bad chat message: {str(exc).splitlines()[0]}")
        msg = ChatMessage(
            platform="local",
            user_name=post.user,
            user_id=f"local:{post.user}",
            text=post.text,
            message_id=f"local-{next(self._ids)}",
            language=detect_language(post.text),
        )
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            return web.Response(status=429, text="too many messages waiting; try again shortly")
        return web.json_response({"queued": msg.message_id})

    async def messages(self) -> AsyncIterator[ChatMessage]:
        app = web.Application(client_max_size=256 * 1024)
        app.add_routes([web.get("/", self._index), web.post("/api/chat", self._post)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
            if addresses := runner.addresses:  # getsockname() of the one site's sockets
                self.bound_port = addresses[0][1]
            self.ready.set()
            log.info("local chat page: http://%s:%s/", self.host, self.bound_port or self.port)
            while True:
                yield await self._queue.get()
        finally:
            await runner.cleanup()
