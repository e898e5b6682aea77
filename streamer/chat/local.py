"""`local` chat: a small page on 127.0.0.1 where a person types as a viewer (no accounts needed).

The page is served by a child process (streamer/chat/local_page.py): a flood of thousands of requests
a second is answered there (429 before any parsing, and every other check the page makes) and never
takes the show's interpreter lock from the frame thread. The show reads only the messages the page
accepted, one JSON line each (at most the page's rate, 50 a second by default), and guesses their
language here, once per message it takes. The child exits when the show closes its stdin or stops
iterating.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.language import detect_language
from streamer.events import ChatMessage

log = logging.getLogger("stagecast.chat.local")

START_TIMEOUT_S = 30.0


class LocalChatSourceError(RuntimeError):
    """The page's process could not start serving (the port is taken, ...); the message says why."""


class LocalChatSource:
    """Starts the page's process and turns each message it accepted into a ChatMessage."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, queue_size: int = 100,
                 client_rate_per_s: float | None = None, client_burst: int | None = None,
                 page_rate_per_s: float | None = None, page_burst: int | None = None,
                 max_connections: int | None = None, read_timeout_s: float | None = None) -> None:
        self.name = f"local:{host}:{port}"
        self.host = host
        self.port = port
        options = {"--queue-size": queue_size, "--client-rate": client_rate_per_s, "--client-burst": client_burst,
                   "--page-rate": page_rate_per_s, "--page-burst": page_burst,
                   "--max-connections": max_connections, "--read-timeout": read_timeout_s}
        self._args = [a for k, v in options.items() if v is not None for a in (k, str(v))]
        self._ids = itertools.count(1)
        self.bound_port: int | None = None
        self.ready = asyncio.Event()  # set once the page is being served
        self.stats: dict[str, Any] = {}  # the page's counters: refused (by status), parsed, accepted
        self.detect: Callable[[str], str] = detect_language

    @property
    def refused(self) -> dict[int, int]:
        return {int(k): v for k, v in self.stats.get("refused", {}).items()}

    async def messages(self) -> AsyncIterator[ChatMessage]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer.chat.local_page", "--host", self.host, "--port", str(self.port),
            *self._args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=1 << 20)
        assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
        errors = asyncio.create_task(_relay_stderr(proc.stderr), name="local-chat-stderr")
        try:
            while True:
                if self.ready.is_set():
                    line = await proc.stdout.readline()
                else:
                    try:
                        async with asyncio.timeout(START_TIMEOUT_S):
                            line = await proc.stdout.readline()
                    except TimeoutError:
                        raise LocalChatSourceError(f"local chat page did not start in {START_TIMEOUT_S:.0f} s") \
                            from None
                if not line:
                    code = await proc.wait()
                    raise LocalChatSourceError(f"local chat page process ended (exit {code})")
                item = json.loads(line)
                if "text" in item:
                    yield ChatMessage(platform="local", user_name=item["user"], user_id=f"local:{item['user']}",
                                      text=item["text"], message_id=item["id"], language=self.detect(item["text"]))
                elif "stats" in item:
                    self.stats = item["stats"]
                elif "port" in item:
                    self.bound_port = int(item["port"])
                    self.ready.set()
                    log.info("local chat page: http://%s:%s/", self.host, self.bound_port)
                elif "error" in item:
                    raise LocalChatSourceError(str(item["error"]))
        finally:
            errors.cancel()
            with contextlib.suppress(Exception):
                proc.stdin.close()
            try:
                async with asyncio.timeout(2.0):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _printable(text: str) -> str:
    """Control characters escaped: a line from the page's process cannot forge or colour a log line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


async def _relay_stderr(stream: asyncio.StreamReader) -> None:
    """Whatever the page's process prints on stderr (a warning, a traceback) goes to the show's log."""
    while line := await stream.readline():
        log.warning("local chat page: %s", _printable(line.decode("utf-8", "replace").rstrip("\n")))
