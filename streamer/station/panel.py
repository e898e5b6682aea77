"""The station's moderator panel: one page and API for every show, each action routed to its show's actor.

Same tokens, roles and audit log as a show's panel (streamer.panel: `ApiGate`, `Authenticator`, the SQLite
store), plus a scope per token: one show, or all. A token scoped to show A gets 403 on show B, and that
refusal is audited too. Every audit entry names its show (`params.show`). Prometheus metrics for every
show in scope are at /api/metrics (a viewer token), built from each show's own status snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, ValidationError

from streamer.metrics import CONTENT_TYPE, HEALTH_VALUE
from streamer.panel.app import BanIn, EmotionIn, SayIn, TimeoutIn, UserIn
from streamer.panel.auth import Authenticator, Principal
from streamer.panel.gate import ApiGate, BodyTooLarge
from streamer.panel.store import AsyncPanelStore
from streamer.station.runtime import StationRuntime
from streamer.station.scopes import ALL, Scopes, allows

log = logging.getLogger("stagecast.station.panel")
STATIC = Path(__file__).with_name("static")
BODIES: dict[str, type[BaseModel] | None] = {
    "interrupt": None, "pause": None, "resume": None, "skip": None, "clear": None,
    "say": SayIn, "emotion": EmotionIn, "timeout": TimeoutIn, "ban": BanIn, "unban": UserIn,
}


class StationPanel:
    """What the routes need: the runtime (blocking Ray calls, run on worker threads), the store and scopes."""

    def __init__(self, runtime: StationRuntime, store: AsyncPanelStore, auth: Authenticator, scopes: Scopes,
                 settings: Any) -> None:
        self.runtime = runtime
        self.store = store
        self.auth = auth
        self.scopes = scopes
        self.settings = settings  # the gate reads host, port and allowed_hosts from it
        self.port = 0  # the port actually bound (the gate checks Host headers against it)

    async def record(self, who: Principal, show: str, action: str, params: dict[str, Any], status: int,
                     result: Any) -> None:
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
        await self.store.audit(who.name, who.role, action, {"show": show, **params}, status, text[:2000])
        log.info("station panel: %s (%s) %s on %s -> %d", who.name, who.role, action, show, status)

    def views(self, scope: str) -> list[dict[str, Any]]:
        return [v for v in self.runtime.views() if allows(scope, v["name"])]


def _who(request: Request) -> Principal:
    who = getattr(request.state, "principal", None)
    if who is None:
        raise HTTPException(401, "missing or invalid bearer token")
    return who


def create_app(panel: StationPanel) -> FastAPI:
    app = FastAPI(title="stagecast station", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ApiGate, panel=panel)  # type: ignore[arg-type]  # the gate reads auth, settings, port

    async def scoped(request: Request, role: str, show: str | None = None, action: str = "") -> tuple[Principal, str]:
        """The caller and its scope; 403 (audited for actions) when the role or the show is not theirs."""
        who = _who(request)
        scope = await panel.scopes.scope(who.token_id)
        if not who.allows(role):
            if action:
                await panel.record(who, show or "", action, {}, 403, f"forbidden: needs {role}")
            raise HTTPException(403, f"this needs the {role} role; this token has {who.role}")
        if show is not None and not allows(scope, show):
            if action:
                await panel.record(who, show, action, {}, 403, f"forbidden: token is for show {scope!r}")
            raise HTTPException(403, f"this token is for show {scope!r}, not {show!r}")
        return who, scope

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "station.html", media_type="text/html")

    @app.get("/station.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(STATIC / "station.js", media_type="text/javascript")

    @app.get("/api/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        who, scope = await scoped(request, "viewer")
        return {"name": who.name, "role": who.role, "show": scope}

    @app.get("/api/shows")
    async def shows(request: Request) -> dict[str, Any]:
        _, scope = await scoped(request, "viewer")
        return {"shows": panel.views(scope), "ts": time.time()}

    @app.get("/api/shows/{name}")
    async def show(name: str, request: Request) -> dict[str, Any]:
        await scoped(request, "viewer", name)
        record = panel.runtime.shows.get(name)
        if record is None:
            raise HTTPException(404, f"no show named {name!r} on this station")
        return {**record.view(), "status": (record.status or {}).get("show")}

    @app.post("/api/shows/{name}/{action}")
    async def act(name: str, action: str, request: Request) -> JSONResponse:
        if action not in BODIES:
            raise HTTPException(404, f"unknown action {action!r}; known: {', '.join(BODIES)}")
        who, _ = await scoped(request, "mod", name, action)
        params: dict[str, Any] = {}
        body_type = BODIES[action]
        if body_type is not None:
            try:
                raw = await request.json()
                params = body_type.model_validate(raw).model_dump()
            except BodyTooLarge:
                await panel.record(who, name, action, {}, 413, "request body too large")
                return JSONResponse({"ok": False, "detail": "request body too large"}, status_code=413)
            except (ValueError, ValidationError) as exc:
                detail = f"invalid request: {str(exc).splitlines()[0][:300]}"
                if isinstance(exc, ValidationError):
                    detail = "invalid request: " + "; ".join(
                        f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
                await panel.record(who, name, action, {}, 422, detail)
                return JSONResponse({"ok": False, "detail": detail}, status_code=422)
        if name not in panel.runtime.shows:
            await asyncio.to_thread(panel.runtime.refresh)
        if name not in panel.runtime.shows:
            detail = f"no show named {name!r} on this station"
            await panel.record(who, name, action, params, 404, detail)
            return JSONResponse({"ok": False, "detail": detail}, status_code=404)
        answer = await asyncio.to_thread(panel.runtime.act, name, action, params)
        status = int(answer.get("status", 200 if answer.get("ok") else 409))
        await panel.record(who, name, action, params, status, answer.get("result", answer.get("detail", "")))
        body = {"ok": bool(answer.get("ok")), "show": name, "action": action}
        body.update({"result": answer["result"]} if answer.get("ok") else {"detail": answer.get("detail")})
        return JSONResponse(body, status_code=status)

    @app.get("/api/audit")
    async def audit(request: Request, limit: int = 100) -> dict[str, Any]:
        _, scope = await scoped(request, "mod")
        entries = await panel.store.audit_log(max(1, min(limit, 1000)))
        return {"entries": [e.as_dict() for e in entries if scope == ALL or e.params.get("show") == scope]}

    @app.get("/api/metrics")
    async def metrics(request: Request) -> Response:
        _, scope = await scoped(request, "viewer")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StationCollector(panel.views(scope), panel.runtime))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": f"invalid request: {exc.errors()}"}, status_code=422)

    return app


STATE_UP = {"on air": 1.0, "starting": 0.5, "placing": 0.5, "restarting": 0.25}


class StationCollector:
    """Every show's counters labelled with the show's name (read from the last status poll)."""

    def __init__(self, views: list[dict[str, Any]], runtime: StationRuntime) -> None:
        self.views = views
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("stagecast_show_up", "1 on air, 0.5 starting, 0.25 restarting, 0 down/refused",
                               labels=["show", "state"])
        frames = CounterMetricFamily("stagecast_show_frames", "Frames the show's current process produced",
                                     labels=["show"])
        late = CounterMetricFamily("stagecast_show_late_frames", "Late frames of the show's current process",
                                   labels=["show"])
        errors = CounterMetricFamily("stagecast_show_render_errors", "Render errors", labels=["show"])
        restarts = CounterMetricFamily("stagecast_show_restarts", "Times the station saw the show's process restart",
                                       labels=["show"])
        health = GaugeMetricFamily("stagecast_show_component_up", "1 ok, 0.5 degraded, 0 down",
                                   labels=["show", "component"])
        for v in self.views:
            name = v["name"]
            up.add_metric([name, v["state"]], STATE_UP.get(v["state"], 0.0))
            restarts.add_metric([name], v.get("restarts") or 0)
            if v.get("frames") is not None:
                frames.add_metric([name], v["frames"])
                late.add_metric([name], v["late_frames"] or 0)
                errors.add_metric([name], v["render_errors"] or 0)
            for component, h in (v.get("health") or {}).items():
                health.add_metric([name, component], HEALTH_VALUE.get(h.get("status", ""), 0.0))
        yield from (up, frames, late, errors, restarts, health)


async def poll_forever(runtime: StationRuntime, every_s: float) -> None:
    """Keep the station's view of its shows fresh (the status page and metrics read it)."""
    while True:
        began = time.monotonic()
        try:
            await asyncio.to_thread(runtime.poll)
        except Exception:
            log.exception("station status poll failed")
        await asyncio.sleep(max(0.05, every_s - (time.monotonic() - began)))


async def serve(runtime: StationRuntime, store: AsyncPanelStore, settings: Any, every_s: float,
                stop: asyncio.Event, ready: asyncio.Future[int] | None = None) -> None:
    """Serve the station panel until `stop` is set; `ready` gets the port it listens on."""
    import uvicorn

    from streamer.panel.attach import _bind

    await store.open()
    auth = Authenticator(store, settings.rate_per_s, settings.burst, recheck_s=settings.token_recheck_s)
    panel = StationPanel(runtime, store, auth, Scopes(store.path), settings)
    sock = _bind(settings.host, settings.port)
    config = uvicorn.Config(create_app(panel), log_config=None, access_log=False, lifespan="off",
                            server_header=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    poller = asyncio.create_task(poll_forever(runtime, every_s), name="station-poll")
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="station-panel")
    port = panel.port = int(sock.getsockname()[1])
    log.info("station panel on http://%s:%d/", settings.host, port)
    if ready is not None:
        ready.set_result(port)
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(5):
                await serving
        await store.close()
