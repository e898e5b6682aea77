"""The local chat page's server, run in its own process by `LocalChatSource` (streamer/chat/local.py).

A flood of thousands of requests a second must not take the show's interpreter lock from its frame
thread, so the page lives here: it answers every request itself and hands the show only the messages
it accepts, one JSON line each on stdout (`{"user", "text", "id"}`; first `{"port": N}` once serving,
then `{"stats": {...}}` lines now and then). It exits when its stdin closes (the show went away), and
runs at a lower CPU priority (nice 10) so that on a small machine a flood it answers is not paid for by
the frame thread either.

Each POST passes, in order, checks that cost no more than a dict lookup: the client's and the page's
rate (429), the Host header against the binding (421: DNS rebinding), the Origin (403: another site's
page posting through a viewer's browser) and the content type (415: `no-cors` pages can only send
`text/plain`). Only then is the body read (with a deadline), decoded and parsed; a body that is not
UTF-8 JSON of the right shape is a 400 naming what is wrong. The language guess happens in the show,
for the messages it takes. Connections are capped and must deliver a request within
`READ_TIMEOUT_S`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from streamer.ingress import KeyedBuckets, TokenBucket, host_allowed, is_json, origin_allowed, utf8_charset

READ_TIMEOUT_S = 5.0  # to deliver a whole request (headers: aiohttp's keep-alive timer; body: here)
MAX_CONNECTIONS = 64
MAX_BODY = 16 * 1024  # a name and a 500-character message fit many times over
CLIENT_RATE_PER_S = 5.0  # one person typing; a flood from one address is answered 429 from here on
CLIENT_BURST = 20
PAGE_RATE_PER_S = 50.0  # all clients together: far more than the show can ever answer
PAGE_BURST = 100
NICE = 10  # the page yields the CPU to the show's frame and encoder threads when both want it

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


def _inline_hash(page: str, tag: str) -> str:
    """The CSP source for the page's one inline `<tag>` element (its body's sha256)."""
    body = page.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; script-src {_inline_hash(_PAGE, 'script')}; style-src {_inline_hash(_PAGE, 'style')}; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class LocalPost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=10_000)


class _Refused(asyncio.Protocol):
    """Over the connection cap: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()


class CappedSite(web.TCPSite):
    """A TCPSite that accepts at most `cap` connections at a time; the rest are closed at once."""

    __slots__ = ("cap",)

    def __init__(self, runner: web.AppRunner, host: str, port: int, cap: int) -> None:
        super().__init__(runner, host, port)
        self.cap = cap

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        cap = self.cap

        def factory() -> asyncio.Protocol:
            return _Refused() if len(server.connections) >= cap else server()

        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, backlog=self._backlog)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


def _reply(status: int, text: str, retry_s: float | None = None) -> web.Response:
    headers = {"Retry-After": str(max(1, round(retry_s)))} if retry_s is not None else None
    return web.Response(status=status, text=text, headers=headers)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)


class LocalPage:
    """The page, its gate and a bounded queue of accepted messages (a full queue answers 429)."""

    def __init__(self, host: str, port: int, queue_size: int = 100,
                 client_rate_per_s: float = CLIENT_RATE_PER_S, client_burst: int = CLIENT_BURST,
                 page_rate_per_s: float = PAGE_RATE_PER_S, page_burst: int = PAGE_BURST,
                 max_connections: int = MAX_CONNECTIONS, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.host = host
        self.port = port
        self._queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(queue_size)
        self._ids = itertools.count(1)
        self._clients = KeyedBuckets(client_rate_per_s, client_burst)
        self._page = TokenBucket(page_rate_per_s, page_burst)
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.bound_port: int | None = None
        self.refused: dict[int, int] = {}  # status -> count
        self.parsed = 0  # bodies parsed (every request that passed the gate)
        self.accepted = 0

    def stats(self) -> dict[str, object]:
        return {"refused": {str(k): v for k, v in sorted(self.refused.items())}, "parsed": self.parsed,
                "accepted": self.accepted}

    def _refuse(self, status: int, text: str, retry_s: float | None = None) -> web.Response:
        self.refused[status] = self.refused.get(status, 0) + 1
        return _reply(status, text, retry_s)

    async def _index(self, request: web.Request) -> web.Response:
        if not host_allowed(request.headers.get("Host"), self.bound_port or self.port):
            return self._refuse(421, "unknown Host; open the page at the address the show printed")
        return web.Response(text=_PAGE, content_type="text/html")

    def _gate(self, request: web.Request) -> web.Response | None:
        """The cheap checks, before the body is read; None lets the request through."""
        ok, retry = self._clients.take(request.remote or "?")
        if not ok:
            return self._refuse(429, f"too many messages from this address; retry in {retry:.1f} s", retry)
        ok, retry = self._page.take()
        if not ok:
            return self._refuse(429, f"too many messages to this page; retry in {retry:.1f} s", retry)
        headers = request.headers
        if not host_allowed(headers.get("Host"), self.bound_port or self.port):
            return self._refuse(421, "unknown Host header: the chat page answers only to its own address")
        if not origin_allowed(headers.get("Origin"), headers.get("Host"), headers.get("Sec-Fetch-Site")):
            return self._refuse(403, "cross-origin request refused: post from the chat page itself")
        content_type = headers.get("Content-Type")
        if not is_json(content_type):
            return self._refuse(415, "send the message as application/json")
        if not utf8_charset(content_type):
            return self._refuse(400, "bad chat message: the body must be UTF-8 JSON (charset=utf-8)")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return self._refuse(413, f"message over {MAX_BODY} bytes")
        return None

    async def _post(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        try:
            async with asyncio.timeout(self.read_timeout_s):
                raw = await request.read()  # over client_max_size: 413
        except TimeoutError:
            return self._refuse(408, f"the body did not arrive within {self.read_timeout_s:g} s")
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, f"message over {MAX_BODY} bytes")
        self.parsed += 1
        try:
            post = LocalPost.model_validate(json.loads(raw.decode("utf-8")))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ValidationError
            detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
            return self._refuse(400, f"bad chat message: {detail}")
        message_id = f"local-{next(self._ids)}"
        try:
            self._queue.put_nowait({"user": post.user, "text": post.text, "id": message_id})
        except asyncio.QueueFull:
            return self._refuse(429, "too many messages waiting; try again shortly", 1.0)
        self.accepted += 1
        return web.json_response({"queued": message_id})

    async def serve(self, emit: Callable[[dict[str, object]], None]) -> None:
        """Serve until cancelled; `emit` gets the port line, each accepted message and stats lines."""
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes([web.get("/", self._index), web.post("/api/chat", self._post)])
        app.on_response_prepare.append(_security_headers)
        # keepalive_timeout also bounds a fresh connection's wait for its first complete request head;
        # lingering_time bounds how long the rest of an unread body is drained after the answer
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=self.read_timeout_s,
                               lingering_time=min(1.0, self.read_timeout_s))
        await runner.setup()
        site = CappedSite(runner, self.host, self.port, self.max_connections)
        try:
            await site.start()
            self.bound_port = site.port
            emit({"port": self.bound_port})
            last: dict[str, object] = {}
            while True:
                try:
                    async with asyncio.timeout(0.5):
                        emit(await self._queue.get())
                except TimeoutError:
                    pass
                stats = self.stats()
                if stats != last:
                    emit({"stats": stats})
                    last = stats
        finally:
            await runner.cleanup()


def _emit(line: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def _main(args: argparse.Namespace) -> None:
    page = LocalPage(args.host, args.port, args.queue_size, args.client_rate, args.client_burst, args.page_rate,
                     args.page_burst, args.max_connections, args.read_timeout)
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()

    def watch_stdin() -> None:  # read() returns at EOF: the show went away
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(gone.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    serving = asyncio.create_task(page.serve(_emit))
    waiting = asyncio.create_task(gone.wait())
    try:
        await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()
    finally:
        for task in (serving, waiting):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main() -> None:
    parser = argparse.ArgumentParser(description="the local chat page's server (started by the show)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--queue-size", type=int, default=100)
    parser.add_argument("--client-rate", type=float, default=CLIENT_RATE_PER_S)
    parser.add_argument("--client-burst", type=int, default=CLIENT_BURST)
    parser.add_argument("--page-rate", type=float, default=PAGE_RATE_PER_S)
    parser.add_argument("--page-burst", type=int, default=PAGE_BURST)
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT_S)
    parser.add_argument("--nice", type=int, default=NICE)
    args = parser.parse_args()
    with contextlib.suppress(OSError):
        os.nice(args.nice)
    # Ctrl-C reaches the whole process group: the show decides when the page stops (it closes stdin)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_main(args))
    except OSError as exc:  # the port is taken, the address is not ours
        _emit({"error": f"local chat page cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"})
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
