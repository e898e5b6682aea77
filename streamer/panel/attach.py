"""The panel as an attachment of a show: `Show(config, attachments=[PanelAttachment(config.panel)])`,
or `handle = await start_panel(control, settings)` inside a running show.

uvicorn serves on the show's own event loop as a task. It must not take SIGINT/SIGTERM: the show
installs its handlers with `loop.add_signal_handler`, and uvicorn's `Server.serve()` would replace
them with its own (`signal.signal` in `capture_signals`, uvicorn >= 0.29) and re-raise the signal
after shutdown. `EmbeddedServer` makes that context manager a no-op; the show stops the panel by
calling `PanelHandle.close()`. The listening socket is bound here, before uvicorn starts, so a
busy port is a clear error at startup (uvicorn itself would `sys.exit(1)` inside the show's loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from streamer.config import PanelConfig
from streamer.config.panel import resolve_db_path
from streamer.control import ShowControl
from streamer.panel.actions import PanelActions
from streamer.panel.app import Panel, create_app
from streamer.panel.auth import Authenticator
from streamer.panel.live import LiveFeed
from streamer.panel.protocol import GuardedH11Protocol
from streamer.panel.store import AsyncPanelStore

log = logging.getLogger("stagecast.panel")


class NoFrameDumps(logging.Filter):
    """The WebSocket layer under uvicorn logs every frame at DEBUG: the start of an auth message (part of
    a token) and twenty audio frames a second from each co-host page. The panel never wants those."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.DEBUG and record.msg in ("< %s", "> %s"))


class PanelError(RuntimeError):
    """The panel cannot start (port busy, database unusable); the message says why."""


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling: the host application owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29 (harmless on newer versions)
        pass


@dataclass
class PanelHandle:
    url: str
    port: int
    panel: Panel
    server: EmbeddedServer
    task: asyncio.Task[None]

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving (open WebSockets get 1012 from uvicorn), detach from the show, close the DB."""
        self.server.should_exit = True
        self.panel.feed.extra_status["closing"] = True
        feed = self.panel.feed
        for client in [*feed.clients, *feed.audio_clients.values()]:
            client.close(1001, "the show is stopping")
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self.task)
        except TimeoutError:
            log.warning("panel server did not stop in %.1f s; forcing it", timeout_s)
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(0.5):
                    await self.task
        finally:
            await self.panel.feed.close()
            await self.panel.store.close()
        log.info("panel stopped")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and without it
    # every response (headers and body are separate writes) waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PanelError(f"panel cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_panel(control: ShowControl, settings: PanelConfig) -> PanelHandle:
    """Open the database, attach to the show and serve. Call from inside the show's event loop."""
    try:
        db_path = resolve_db_path(settings.db_path)
    except ValueError as exc:
        raise PanelError(str(exc)) from None
    store = AsyncPanelStore(db_path)
    try:
        await store.open()
    except Exception as exc:
        await store.close()
        raise PanelError(f"panel database {db_path}: {exc}") from exc
    sock: socket.socket | None = None
    try:
        sock = _bind(settings.host, settings.port)
        auth = Authenticator(store, settings.rate_per_s, settings.burst, recheck_s=settings.token_recheck_s)
        for ban in await store.bans():  # persisted blocks: bans, and timeouts that have time left
            if ban.until is None:
                control.ban(ban.user, ban.reason)
            elif ban.until > time.time():
                control.timeout(ban.user, ban.until - time.time(), ban.reason)
        feed = LiveFeed(control, settings)
        panel = Panel(settings, store, auth, PanelActions(control), feed)
        panel.port = sock.getsockname()[1]
        app = create_app(panel)
        config = uvicorn.Config(
            app,
            log_config=None,  # the show configured logging; uvicorn must not replace it
            access_log=False,
            lifespan="off",
            http=GuardedH11Protocol.configured(settings.max_connections, settings.read_timeout_s),
            ws_max_size=64 * 1024,
            ws_ping_interval=20.0,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        # access_log=False normally silences uvicorn.access, but a handler added to it later (pytest's capture
        # does) would turn it back on for every request; the panel never wants per-request lines
        logging.getLogger("uvicorn.access").disabled = True
        server_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, NoFrameDumps) for f in server_log.filters):
            server_log.addFilter(NoFrameDumps())
        server = EmbeddedServer(config)
    except BaseException:
        if sock is not None:
            sock.close()
        await store.close()
        raise
    feed.start()
    port = sock.getsockname()[1]

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits on startup failure; never let that end the show
            log.error("panel server failed to start (exit %s)", exc.code)
        finally:
            sock.close()

    task = asyncio.create_task(serve(), name="panel-server")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{port}/"
    log.info("moderator panel: %s (overlays under %soverlays/)", url, url)
    return PanelHandle(url, port, panel, server, task)


class PanelAttachment:
    """The moderator panel, started with the show and stopped before it."""

    name = "panel"

    def __init__(self, settings: PanelConfig) -> None:
        self.settings = settings
        self.handle: PanelHandle | None = None

    async def start(self, control: ShowControl) -> None:
        self.handle = await start_panel(control, self.settings)

    async def aclose(self) -> None:
        if self.handle is not None:
            await self.handle.close(timeout_s=1.0)
            self.handle = None
