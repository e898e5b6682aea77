"""The panel's FastAPI app: static pages, the JSON API, the live WebSocket and the co-host audio socket.

Every request passes `ApiGate` (streamer/panel/gate.py) before FastAPI parses anything: Host and
Origin checks, the bearer token, its rate and the argon2 budget, the body's type and size, so no
refused request costs more than a few dict lookups. Roles are
checked per route (403): viewer < cohost < mod < admin. Pages and scripts under `/`, `/cohost`,
`/static/` and `/overlays/` are public: they hold no data and no secrets; everything they show comes
through the authenticated API and sockets (`/ws`, `/ws/audio`: see streamer/panel/audio.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from engine.events import EmotionCue
from engine.state import EMOTIONS
from streamer.assets import OVERLAY_DIR, PANEL_STATIC_DIR
from streamer.config import PanelConfig
from streamer.control import ActionError
from streamer.metrics import CONTENT_TYPE, render_metrics
from streamer.panel.actions import PanelActions
from streamer.panel.audio import serve_audio
from streamer.panel.auth import Authenticator, Principal, Throttled, TokenBucket
from streamer.panel.gate import ApiGate, BodyTooLarge
from streamer.panel.live import TOPICS, Client, LiveFeed
from streamer.panel.store import AsyncPanelStore, Ban

log = logging.getLogger("stagecast.panel")

WS_AUTH_TIMEOUT_S = 5.0
WS_MAX_MESSAGE = 4096  # the live socket takes small JSON control messages only
WS_RATE_PER_S = 10.0  # messages a second from one live socket ...
WS_BURST = 20
WS_SEND_TIMEOUT_S = 10.0  # a client that stops reading is closed after this long (4408)
Language = Literal["en", "zh", "ja"]
EmotionName = Literal[EMOTIONS]  # type: ignore[valid-type]


# ----- request bodies (parsed at the edge; unknown fields are rejected by name) -------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EmotionIn(_Body):
    emotion: EmotionName
    intensity: float = Field(0.8, ge=0.0, le=1.0)
    hold_s: float = Field(2.0, ge=0.0, le=60.0)
    attack_s: float = Field(0.15, ge=0.0, le=5.0)
    release_s: float = Field(0.6, ge=0.0, le=10.0)

    def cue(self) -> EmotionCue:
        return EmotionCue(self.emotion, self.intensity, self.hold_s, self.attack_s, self.release_s)


class SayIn(_Body):
    text: str = Field(min_length=1, max_length=500)
    language: Language | None = None
    emotion: EmotionIn | None = None


class TimeoutIn(_Body):
    user: str = Field(min_length=1, max_length=200)
    seconds: int = Field(600, ge=1, le=7 * 86400)
    reason: str = Field("", max_length=200)


class BanIn(_Body):
    user: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=200)


class UserIn(_Body):
    user: str = Field(min_length=1, max_length=200)


class BannedWordsIn(_Body):
    words: list[Annotated[str, Field(max_length=100)]] = Field(max_length=1000)


class ListeningIn(_Body):
    enabled: bool


class MuteIn(_Body):
    input: str = Field(min_length=1, max_length=100)
    muted: bool


class Panel:
    """Everything the routes need, in one place."""

    def __init__(self, settings: PanelConfig, store: AsyncPanelStore, auth: Authenticator, actions: PanelActions,
                 feed: LiveFeed) -> None:
        self.settings = settings
        self.store = store
        self.auth = auth
        self.actions = actions
        self.feed = feed
        self.port = settings.port  # the bound port once serving (settings may say 0: any free port)

    async def record(self, who: Principal, action: str, params: dict[str, Any], status: int, result: Any) -> None:
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
        seq = await self.store.audit(who.name, who.role, action, params, status, text[:2000])
        self.feed.on_audit({"seq": seq, "ts": time.time(), "actor": who.name, "role": who.role, "action": action,
                            "params": params, "status": status, "result": text[:2000]})
        log.info("panel: %s (%s) %s -> %d", who.name, who.role, action, status)

    async def act(self, who: Principal, action: str, params: dict[str, Any],
                  fn: Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]) -> JSONResponse:
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
        except ActionError as exc:
            await self.record(who, action, params, 409, str(exc))
            return JSONResponse({"ok": False, "action": action, "detail": str(exc)}, status_code=409)
        await self.record(who, action, params, 200, result)
        return JSONResponse({"ok": True, "action": action, "result": result})


def _principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # only reachable if the gate were bypassed
        raise HTTPException(401, "missing or invalid bearer token")
    return principal


def need(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the request's principal, or 403 (recorded in the audit log for actions)."""

    async def check(request: Request) -> Principal:
        who = _principal(request)
        if not who.allows(role):
            if request.method != "GET":
                panel: Panel = request.app.state.panel
                await panel.record(who, request.url.path.removeprefix("/api/"), {}, 403, f"forbidden: needs {role}")
            raise HTTPException(403, f"this needs the {role} role; this token has {who.role}")
        return who

    return check


Viewer = Annotated[Principal, Depends(need("viewer"))]
Mod = Annotated[Principal, Depends(need("mod"))]
Admin = Annotated[Principal, Depends(need("admin"))]


def create_app(panel: Panel) -> FastAPI:
    app = FastAPI(title="stagecast panel", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.panel = panel
    app.add_middleware(ApiGate, panel=panel)

    actions = panel.actions

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            errors.append({"field": ".".join(loc) or "(body)", "msg": err.get("msg", "invalid")})
        summary = "; ".join(f"{e['field']}: {e['msg']}" for e in errors)
        who = getattr(request.state, "principal", None)
        if who is not None and request.method != "GET":
            await panel.record(who, request.url.path.removeprefix("/api/"), {}, 422, f"invalid request: {summary}")
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)

    # ----- pages ---------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(PANEL_STATIC_DIR / "panel.html", media_type="text/html")

    @app.get("/cohost", include_in_schema=False)
    async def cohost_page() -> FileResponse:
        return FileResponse(PANEL_STATIC_DIR / "cohost.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=PANEL_STATIC_DIR), name="static")
    if OVERLAY_DIR.is_dir():
        app.mount("/overlays", StaticFiles(directory=OVERLAY_DIR, html=True), name="overlays")

    # ----- views -----------------------------------------------------------------------------------------
    @app.get("/api/whoami")
    async def whoami(who: Viewer) -> dict[str, Any]:
        return {"name": who.name, "role": who.role}

    @app.get("/api/status")
    async def status(who: Viewer) -> dict[str, Any]:
        return panel.feed.status()

    @app.get("/api/chat")
    async def chat(who: Viewer, limit: int = 100) -> dict[str, Any]:
        return {"items": panel.feed.chat_history(max(1, min(limit, 200)))}

    @app.get("/api/audit")
    async def audit(who: Mod, limit: int = 100, before: int | None = None) -> dict[str, Any]:
        entries = await panel.store.audit_log(max(1, min(limit, 1000)), before)
        return {"entries": [e.as_dict() for e in entries]}

    @app.get("/api/preview.jpg")
    async def preview(who: Viewer) -> Response:
        data = await panel.feed.snapshot_jpeg()
        if data is None:
            raise HTTPException(503, "no frame rendered yet")
        return Response(data, media_type="image/jpeg")

    @app.get("/api/metrics")
    async def metrics(who: Viewer) -> Response:
        """Prometheus exposition (scrape with `authorization: {credentials: <viewer token>}`)."""
        return Response(render_metrics(actions.control.status()), media_type=CONTENT_TYPE)

    @app.get("/api/banned-words")
    async def banned_words(who: Mod) -> dict[str, Any]:
        return {"banned_words": actions.control.banned_words}

    # ----- mod actions -------------------------------------------------------------------------------------
    @app.post("/api/interrupt")
    async def interrupt(who: Mod) -> JSONResponse:
        return await panel.act(who, "interrupt", {}, actions.interrupt)

    @app.post("/api/say")
    async def say(body: SayIn, who: Mod) -> JSONResponse:
        cue = body.emotion.cue() if body.emotion else None
        return await panel.act(who, "say", body.model_dump(), lambda: actions.say(body.text, body.language, cue))

    @app.post("/api/emotion")
    async def emotion(body: EmotionIn, who: Mod) -> JSONResponse:
        return await panel.act(who, "emotion", body.model_dump(), lambda: actions.emotion(body.cue()))

    @app.post("/api/pause")
    async def pause(who: Mod) -> JSONResponse:
        return await panel.act(who, "pause", {}, actions.pause)

    @app.post("/api/resume")
    async def resume(who: Mod) -> JSONResponse:
        return await panel.act(who, "resume", {}, actions.resume)

    @app.post("/api/skip")
    async def skip(who: Mod) -> JSONResponse:
        return await panel.act(who, "skip", {}, actions.skip)

    @app.post("/api/clear")
    async def clear(who: Mod) -> JSONResponse:
        return await panel.act(who, "clear", {}, actions.clear)

    @app.post("/api/timeout")
    async def timeout(body: TimeoutIn, who: Mod) -> JSONResponse:
        async def run() -> dict[str, Any]:
            result = actions.timeout(body.user, body.seconds, body.reason)
            await panel.store.put_ban(Ban(body.user, result["until"], who.name, body.reason))
            return result

        return await panel.act(who, "timeout", body.model_dump(), run)

    @app.post("/api/listening")
    async def listening(body: ListeningIn, who: Mod) -> JSONResponse:
        return await panel.act(who, "listening", body.model_dump(), lambda: actions.set_listening(body.enabled))

    @app.post("/api/mute")
    async def mute(body: MuteIn, who: Mod) -> JSONResponse:
        known = panel.feed.listening()["inputs"]
        if body.input not in known:
            detail = f"unknown input {body.input!r}; the show has: {', '.join(known) or 'none'}"
            await panel.record(who, "mute", body.model_dump(), 404, detail)
            return JSONResponse({"ok": False, "action": "mute", "detail": detail}, status_code=404)
        return await panel.act(who, "mute", body.model_dump(), lambda: actions.mute(body.input, body.muted))

    # ----- admin actions -------------------------------------------------------------------------------------
    @app.post("/api/ban")
    async def ban(body: BanIn, who: Admin) -> JSONResponse:
        async def run() -> dict[str, Any]:
            result = actions.ban(body.user, body.reason)
            await panel.store.put_ban(Ban(body.user, None, who.name, body.reason))
            return result

        return await panel.act(who, "ban", body.model_dump(), run)

    @app.post("/api/unban")
    async def unban(body: UserIn, who: Admin) -> JSONResponse:
        async def run() -> dict[str, Any]:
            result = actions.unban(body.user)
            await panel.store.delete_ban(body.user)
            return result

        return await panel.act(who, "unban", body.model_dump(), run)

    @app.put("/api/banned-words")
    async def set_banned_words(body: BannedWordsIn, who: Admin) -> JSONResponse:
        return await panel.act(who, "banned-words", body.model_dump(), lambda: actions.set_banned_words(body.words))

    @app.post("/api/reload")
    async def reload(who: Admin) -> JSONResponse:
        async def run() -> dict[str, Any]:
            from streamer.config import ConfigError, load_config

            path = panel.settings.config_path
            if path is None:
                raise ActionError("the show was not started from a config file; nothing to reload")
            try:
                config = await asyncio.to_thread(load_config, path)
            except ConfigError as exc:
                raise ActionError(str(exc)) from None
            return actions.apply_config(config)

        return await panel.act(who, "reload", {}, run)

    @app.post("/api/stop")
    async def stop(who: Admin) -> JSONResponse:
        return await panel.act(who, "stop", {}, actions.stop)

    # ----- live ---------------------------------------------------------------------------------------------
    @app.websocket("/ws")
    async def live(ws: WebSocket) -> None:
        await serve_socket(panel, ws)

    @app.websocket("/ws/audio")
    async def audio(ws: WebSocket) -> None:
        await serve_audio(panel, ws)

    return app


class _Hello(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["auth"]
    token: str = Field(max_length=200)
    topics: list[str] = Field(default_factory=lambda: ["status", "caption", "emotion", "chat", "audit", "listen"])


async def serve_socket(panel: Panel, ws: WebSocket) -> None:
    """First message must be {"type": "auth", "token": ..., "topics": [...]} within 5 s; close codes
    4401 (no/bad token), 4429 (too many messages, or too many token checks), 4400 (bad message),
    1009 (a message over 4 KiB), 4408 (a client that stopped reading what it is sent)."""
    await ws.accept()
    try:
        raw = await asyncio.wait_for(ws.receive_text(), WS_AUTH_TIMEOUT_S)
        hello = _Hello.model_validate_json(raw)
    except (TimeoutError, ValueError, KeyError):
        await _reject(ws, 4401, "send {\"type\": \"auth\", \"token\": ...} first")
        return
    except WebSocketDisconnect:
        return
    try:
        who = await panel.auth.authenticate(hello.token, ws.client.host if ws.client else None)
    except Throttled as exc:
        await _reject(ws, 4429, str(exc))
        return
    if who is None:
        await _reject(ws, 4401, "missing or invalid token")
        return
    topics = set(hello.topics) & TOPICS
    if not who.allows("mod"):
        topics.discard("audit")
    client = Client(who, topics)
    panel.feed.add(client)
    try:
        await ws.send_json({"type": "hello", "name": who.name, "role": who.role, "topics": sorted(topics)})
        await ws.send_json(panel.feed.status())
        await ws.send_json(panel.feed.emotion_message())
        await ws.send_json({"type": "chat_history", "items": panel.feed.chat_history(50)})
        tasks = [asyncio.create_task(_pump_out(ws, client)), asyncio.create_task(_pump_in(panel, ws, client)),
                 asyncio.create_task(_guard(panel, client)), asyncio.create_task(client.closed.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if client.close_code != 1000:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):  # a client that reads nothing cannot take a close either
                    await ws.close(client.close_code)
    except WebSocketDisconnect:
        pass
    finally:
        panel.feed.remove(client)


async def _reject(ws: WebSocket, code: int, detail: str) -> None:
    status = {4401: 401, 4429: 429}.get(code, 400)
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "status": status, "detail": detail})
        await ws.close(code)


async def _pump_out(ws: WebSocket, client: Client) -> None:
    """Sends the client's queue; a send that cannot finish in WS_SEND_TIMEOUT_S (the client stopped
    reading and the socket buffers are full) ends the session with 4408."""
    while True:
        message = await client.queue.get()
        try:
            async with asyncio.timeout(WS_SEND_TIMEOUT_S):
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                    client.preview_pending = False
                else:
                    await ws.send_text(message)
        except TimeoutError:
            client.close_code = 4408
            log.info("panel: live socket of %s closed: it read nothing for %.0f s", client.principal.name,
                     WS_SEND_TIMEOUT_S)
            return


async def _pump_in(panel: Panel, ws: WebSocket, client: Client) -> None:
    rate = TokenBucket(WS_RATE_PER_S, WS_BURST)
    while True:
        try:
            raw = await ws.receive_text()
        except WebSocketDisconnect:
            return
        except KeyError:  # a binary frame: receive_text finds no "text"
            client.close_code = 4400
            return
        if len(raw) > WS_MAX_MESSAGE:
            client.close_code = 1009
            return
        ok = rate.take()[0] and panel.auth.take(client.principal)[0]
        if not ok:
            client.close_code = 4429
            return
        try:
            data = json.loads(raw)
            if data.get("type") == "topics" and isinstance(data.get("topics"), list):
                topics = {str(t) for t in data["topics"]}
                if not client.principal.allows("mod"):
                    topics.discard("audit")
                panel.feed.set_topics(client, topics)
        except (ValueError, AttributeError):
            client.close_code = 4400
            return


async def _guard(panel: Panel, client: Client) -> None:
    """A revoked token loses its live session within the recheck interval."""
    while True:
        await asyncio.sleep(max(panel.auth.recheck_s, 0.5))
        if not await panel.auth.still_valid(client.principal):
            client.close_code = 4401
            return
