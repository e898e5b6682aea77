"""OBS Studio control over obs-websocket v5: our scene, the feed, overlays, captions, pause scene.

The show describes what OBS should look like (:class:`ObsConfig` plus the current caption and
pause state); :class:`ObsController` makes OBS match it and keeps it matching:

- a supervisor task connects, applies the whole scene setup (idempotent: it creates what is
  missing and only rewrites settings that differ, so a running Media Source is not restarted),
  then applies caption/pause changes as they come and sends a cheap heartbeat request when idle;
- any error (OBS quit, crashed, restarted) closes the connection and the supervisor reconnects
  with exponential backoff, re-applying the setup to whatever OBS it finds — a fresh instance
  gets our scene back; obsws-python does not reconnect by itself.

obsws-python is blocking and not thread-safe (a request is a send followed by the next recv), so
every call runs on one dedicated worker thread; the event loop only awaits it. Caption and pause
changes are coalesced: ``set_caption`` returns at once and a burst of captions applies the last.

The websocket password is read from the environment variable named by ``password_env`` and never
logged. obsws-python itself logs its connection parameters (password included) at INFO in
``ObsClient.__init__``; we construct the client with an empty password and set it afterwards, and
a redacting filter on its loggers is a second line of defence.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streamer.backoff import Backoff
from streamer.config import ObsConfig
from streamer.obs_captions import wrap_caption
from streamer.workers import DaemonExecutor

log = logging.getLogger("stagecast.obs")

STOPPED, CONNECTING, CONNECTED, RECONNECTING = "stopped", "connecting", "connected", "reconnecting"
TEXT_KINDS = ("text_ft2_source_v2", "text_gdiplus_v3", "text_gdiplus_v2")
"""Caption input kinds, preferred first: FreeType 2 on Linux/macOS, GDI+ on Windows (v3 from OBS 30)."""
BROWSER_KIND = "browser_source"
MEDIA_KIND = "ffmpeg_source"
OBS_ALIGN_CENTER, OBS_ALIGN_LEFT, OBS_ALIGN_TOP, OBS_ALIGN_BOTTOM = 0, 1, 4, 8


# ----- status ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObsStatus:
    """A snapshot of the controller, safe to hand to the panel."""

    state: str = STOPPED
    connects: int = 0  # successful connect + setup rounds; 2 after one reconnect
    last_error: str | None = None
    obs_version: str | None = None
    websocket_version: str | None = None
    program_scene: str | None = None
    paused: bool = False
    caption: str = ""
    missing: tuple[str, ...] = ()  # inputs we could not create (e.g. browser_source without obs-browser)
    setup_ms: float | None = None  # last full setup
    reconnect_s: float | None = None  # from losing OBS to our scene re-applied, last time

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED


@dataclass(frozen=True)
class ObsChanged:
    """Published when the controller's state or last error changes (detail is "" or the masked error)."""

    state: str
    detail: str = ""


class ObsSetupError(RuntimeError):
    """OBS refused our setup in a way retrying will not fix by itself (name clash, missing kind)."""


# ----- logging hygiene -------------------------------------------------------------------------
class _RedactFilter(logging.Filter):
    """Mask secrets in obsws-python's records and keep its per-retry tracebacks out of our logs."""

    _PASSWORD = re.compile(r"(password=)'[^']*'")

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._PASSWORD.sub(r"\1'****'", message)
        for secret in self.secrets:
            clean = clean.replace(secret, "****")
        if clean != message:
            record.msg, record.args = clean, ()
        if record.levelno >= logging.WARNING:  # we report failures ourselves, once, without the secret
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
        return True


_REDACT = _RedactFilter()
for _name in ("obsws_python.baseclient.ObsClient", "obsws_python.reqs.ReqClient", "obsws_python.baseclient",
              "obsws_python.reqs", "obsws_python"):
    logging.getLogger(_name).addFilter(_REDACT)


class ObsRequestError(RuntimeError):
    def __init__(self, request: str, code: int, comment: str | None) -> None:
        self.request, self.code = request, code
        super().__init__(f"{request} failed with code {code}" + (f": {comment}" if comment else ""))


class _Session:
    """One authenticated obs-websocket connection. Worker-thread only."""

    def __init__(self, host: str, port: int, password: str, timeout: float) -> None:
        from obsws_python.baseclient import ObsClient

        # Constructed without the password: ObsClient.__init__ logs its parameters verbatim.
        self.client = ObsClient(host=host, port=port, password="", timeout=timeout)
        try:
            self.client.password = password
            try:
                identified = self.client.authenticate()
            except Exception as exc:
                if "authentication" in str(exc) or "identify" in str(exc):
                    raise PermissionError("obs-websocket refused the password (check the password env var)") from None
                raise
            self.rpc_version = identified.get("negotiatedRpcVersion")
        except BaseException:
            self.close()
            raise

    def req(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.req(request, data)
        status = response.get("requestStatus", {})
        if not status.get("result"):
            raise ObsRequestError(request, int(status.get("code", 0)), status.get("comment"))
        return dict(response.get("responseData") or {})

    def abort(self) -> None:
        """Wake a blocked recv from another thread."""
        ws = getattr(self.client, "ws", None)
        if ws is not None:
            ws.abort()

    def close(self) -> None:
        ws = getattr(self.client, "ws", None)
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:
                ws.shutdown()


def _describe(exc: BaseException, secret: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(secret, "****") if secret else text


# ----- the controller --------------------------------------------------------------------------
class ObsController:
    """Keep OBS showing our scene. ``start``/``stop`` on the event loop; setters never block.

    ``set_caption``, ``on_pause`` and ``on_resume`` must be called on the event loop thread (use
    ``loop.call_soon_threadsafe`` from others); they record the wanted state and return.
    """

    def __init__(self, config: ObsConfig, publish: Callable[[ObsChanged], None] | None = None,
                 password: str | None = None) -> None:
        self.config = config
        self._publish_change = publish
        self._password_given = password
        self._password = ""
        self._status = ObsStatus()
        self._caption = ""
        self._paused = False
        self._wanted = 0  # bumped on every set_caption/on_pause/on_resume
        self._applied = 0
        self._applied_caption: str | None = None
        self._applied_paused: bool | None = None
        self._dirty: asyncio.Event | None = None
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: DaemonExecutor | None = None
        self._session: _Session | None = None
        self._session_lock = threading.Lock()
        self._lost_at: float | None = None

    # -- public API ------------------------------------------------------------------------------
    @property
    def status(self) -> ObsStatus:
        return self._status

    async def start(self) -> None:
        """Start the supervisor; returns at once (OBS may come later: we keep trying)."""
        if self._task is not None:
            raise RuntimeError("ObsController already started")
        cfg = self.config
        if self._password_given is not None:
            self._password = self._password_given
        elif cfg.password_env:
            self._password = os.environ.get(cfg.password_env, "")
            if not self._password:
                log.warning("obs: env var %s is not set; connecting without a password", cfg.password_env)
        if self._password:
            _REDACT.secrets.add(self._password)
        self._dirty = asyncio.Event()
        self._changed = asyncio.Condition()
        self._executor = DaemonExecutor("stagecast-obs")  # a connect stuck on a dead OBS never holds up exit
        self._task = asyncio.create_task(self._supervise(), name="obs-supervisor")

    async def stop(self) -> None:
        """Cancel the supervisor, close the connection and release the worker thread.

        Bounded: a request stuck on a dead OBS is aborted; a connect stuck on one is left to its daemon
        worker thread, which never holds up the process's exit.
        """
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with self._session_lock:
            if self._session is not None:
                self._session.abort()  # a request blocked on a dead OBS returns now, not at its timeout
        try:
            async with asyncio.timeout(1.0):
                await asyncio.gather(task, return_exceptions=True)
        except TimeoutError:
            log.error("obs: supervisor did not stop within 1 s")
        self._disconnect()  # from here: the worker may still be inside a connect that OBS never answers
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._password:
            _REDACT.secrets.discard(self._password)
        await self._publish(state=STOPPED)

    def set_caption(self, text: str) -> None:
        self._caption = text
        self._want()

    def on_pause(self) -> None:
        self._paused = True
        self._want()

    def on_resume(self) -> None:
        self._paused = False
        self._want()

    async def sync(self) -> None:
        """Wait until OBS shows every change made so far; bound it with ``asyncio.timeout``."""
        wanted = self._wanted
        await self.wait_for(lambda s: self._applied >= wanted and s.connected)

    async def wait_for(self, predicate: Callable[[ObsStatus], bool]) -> ObsStatus:
        """Wait for a status that satisfies ``predicate`` (event driven, no polling); bound it with a timeout."""
        if self._changed is None:
            raise RuntimeError("ObsController not started")
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self._status))
        return self._status

    async def screenshot(self, source: str | None = None, width: int | None = None,
                         image_format: str = "png") -> bytes:
        """An encoded picture of ``source`` (default: our scene) as OBS renders it now."""
        data: dict[str, Any] = {"sourceName": source or self.config.scene, "imageFormat": image_format}
        if width is not None:
            data["imageWidth"] = width
        reply = await self._call(self._request, "GetSourceScreenshot", data)
        return base64.b64decode(reply["imageData"].split(",", 1)[-1])

    # -- supervisor (event loop) -----------------------------------------------------------------
    def _want(self) -> None:
        self._wanted += 1
        if self._dirty is not None:
            self._dirty.set()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError("ObsController not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _publish(self, **changes: Any) -> None:
        old = self._status
        self._status = new = replace(old, **changes)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        if self._publish_change is not None and (new.state != old.state or new.last_error != old.last_error):
            self._publish_change(ObsChanged(new.state, new.last_error or ""))

    async def _supervise(self) -> None:
        cfg = self.config
        backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s)  # doubling, no jitter
        first = True
        while True:
            await self._publish(state=CONNECTING if first else RECONNECTING)
            error: str | None = None
            try:
                version = await self._call(self._connect)
                t0 = time.perf_counter()
                caption, paused, wanted = self._caption, self._paused, self._wanted
                setup = await self._call(self._setup, caption, paused)
                self._applied = max(self._applied, wanted)
                reconnect_s = None if self._lost_at is None else time.monotonic() - self._lost_at
                self._lost_at = None
                backoff.reset()
                await self._publish(
                    state=CONNECTED, connects=self._status.connects + 1, last_error=None,
                    obs_version=version.get("obsVersion"), websocket_version=version.get("obsWebSocketVersion"),
                    program_scene=setup["program_scene"], paused=paused, caption=caption,
                    missing=tuple(setup["missing"]), setup_ms=(time.perf_counter() - t0) * 1000.0,
                    reconnect_s=reconnect_s if reconnect_s is not None else self._status.reconnect_s,
                )
                log.info("obs: connected to OBS %s at %s:%d; scene %r ready%s", version.get("obsVersion"),
                         cfg.host, cfg.port, cfg.scene,
                         f" after {reconnect_s:.1f} s without OBS" if reconnect_s is not None else "")
                if setup["missing"]:
                    log.warning("obs: not created (this OBS lacks the input kind, e.g. browser_source without the "
                                "obs-browser plugin): %s", ", ".join(setup["missing"]))
                first = False
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _describe(exc, self._password)
                if self._lost_at is None:
                    self._lost_at = time.monotonic()
            delay = backoff.next_delay()
            if error is not None:
                level = logging.WARNING if self._status.last_error != error else logging.DEBUG
                log.log(level, "obs: %s; retrying in %.1f s", error, delay)
                await self._publish(state=RECONNECTING, last_error=error)
            await self._call(self._disconnect)
            await asyncio.sleep(delay)  # backoff between attempts, not a synchronisation

    async def _serve(self) -> None:
        """Apply wanted changes as they come; send a heartbeat when idle. Raises when OBS goes away."""
        assert self._dirty is not None
        while True:
            try:
                async with asyncio.timeout(self.config.heartbeat_s):
                    await self._dirty.wait()
            except TimeoutError:
                scene = await self._call(self._heartbeat)
                if scene != self._status.program_scene:
                    await self._publish(program_scene=scene)
                continue
            self._dirty.clear()
            caption, paused, wanted = self._caption, self._paused, self._wanted
            scene = await self._call(self._apply, caption, paused)
            self._applied = max(self._applied, wanted)
            await self._publish(caption=caption, paused=paused, program_scene=scene or self._status.program_scene)

    # -- worker thread ---------------------------------------------------------------------------
    def _connect(self) -> dict[str, Any]:
        cfg = self.config
        session = _Session(cfg.host, cfg.port, self._password, cfg.request_timeout_s)
        with self._session_lock:
            self._session = session
        self._applied_caption = self._applied_paused = None
        return session.req("GetVersion")

    def _disconnect(self) -> None:
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _request(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        session = self._session
        if session is None:
            raise ConnectionError("not connected to OBS")
        return session.req(request, data)

    def _heartbeat(self) -> str | None:
        return self._request("GetCurrentProgramScene").get("currentProgramSceneName")

    def _apply(self, caption: str, paused: bool) -> str | None:
        cfg = self.config
        if cfg.caption_source and caption != self._applied_caption:
            text = wrap_caption(caption, cfg.caption_line_chars, cfg.caption_lines)
            self._request("SetInputSettings", {"inputName": cfg.caption_source, "inputSettings": {"text": text},
                                               "overlay": True})
            self._applied_caption = caption
        scene = None
        if cfg.switch_scene and paused != self._applied_paused:
            scene = cfg.pause_scene if paused else cfg.scene
            self._request("SetCurrentProgramScene", {"sceneName": scene})
            self._applied_paused = paused
        return scene

    def _setup(self, caption: str, paused: bool) -> dict[str, Any]:
        """Make OBS match the config. Idempotent; creates only what is missing."""
        cfg = self.config
        kinds = set(self._request("GetInputKindList", {"unversioned": False})["inputKinds"])
        video = self._request("GetVideoSettings")
        width, height = int(video["baseWidth"]), int(video["baseHeight"])
        scenes = {s["sceneName"] for s in self._request("GetSceneList")["scenes"]}
        inputs = {i["inputName"]: i["inputKind"] for i in self._request("GetInputList")["inputs"]}
        missing: list[str] = []
        for scene in (cfg.scene, cfg.pause_scene):
            if scene not in scenes:
                if scene in inputs:
                    raise ObsSetupError(f"OBS already has an input named {scene!r}; choose another scene name")
                self._request("CreateScene", {"sceneName": scene})
                log.info("obs: created scene %r", scene)
        items = {i["sourceName"]: int(i["sceneItemId"])
                 for i in self._request("GetSceneItemList", {"sceneName": cfg.scene})["sceneItems"]}
        order: list[int] = []

        media: dict[str, Any] = {
            "is_local_file": False, "input": cfg.feed_url, "input_format": cfg.feed_format or "",
            "buffering_mb": cfg.feed_buffering_mb, "reconnect_delay_sec": 1, "restart_on_activate": False,
            "close_when_inactive": False, "clear_on_media_end": False, "hw_decode": False,
        }
        item = self._ensure_input(cfg.scene, cfg.media_source, MEDIA_KIND, media, inputs, items)
        self._request("SetSceneItemTransform", {"sceneName": cfg.scene, "sceneItemId": item, "sceneItemTransform": {
            "positionX": 0.0, "positionY": 0.0, "alignment": OBS_ALIGN_LEFT | OBS_ALIGN_TOP,
            "boundsType": "OBS_BOUNDS_SCALE_INNER", "boundsAlignment": OBS_ALIGN_CENTER,
            "boundsWidth": float(width), "boundsHeight": float(height)}})
        order.append(item)

        for overlay in cfg.overlays:
            if BROWSER_KIND not in kinds:
                missing.append(overlay.name)
                continue
            settings = {"url": overlay.url, "width": overlay.width, "height": overlay.height, "css": overlay.css,
                        "fps": overlay.fps, "shutdown": False, "restart_when_active": False}
            item = self._ensure_input(cfg.scene, overlay.name, BROWSER_KIND, settings, inputs, items)
            self._request("SetSceneItemTransform", {"sceneName": cfg.scene, "sceneItemId": item, "sceneItemTransform": {
                "positionX": overlay.x, "positionY": overlay.y, "alignment": OBS_ALIGN_LEFT | OBS_ALIGN_TOP}})
            order.append(item)

        text_kind = next((k for k in TEXT_KINDS if k in kinds), None)
        if cfg.caption_source:
            if text_kind is None:
                missing.append(cfg.caption_source)
            else:
                text = wrap_caption(caption, cfg.caption_line_chars, cfg.caption_lines)
                settings = self._text_settings(text_kind, text, int(width * 0.9))
                item = self._ensure_input(cfg.scene, cfg.caption_source, text_kind, settings, inputs, items)
                # Bounds "max only": a short caption keeps its size and is centred; a long one shrinks to fit.
                self._request("SetSceneItemTransform", {
                    "sceneName": cfg.scene, "sceneItemId": item, "sceneItemTransform": {
                        "positionX": width / 2, "positionY": float(height - cfg.caption_margin),
                        "alignment": OBS_ALIGN_BOTTOM | OBS_ALIGN_CENTER, "boundsType": "OBS_BOUNDS_MAX_ONLY",
                        "boundsAlignment": OBS_ALIGN_BOTTOM | OBS_ALIGN_CENTER,
                        "boundsWidth": float(int(width * 0.9)), "boundsHeight": float(height // 3)}})
                order.append(item)
                self._applied_caption = caption

        # Bottom to top: feed, overlays, caption. Scene item index 0 is the bottom.
        total = len(self._request("GetSceneItemList", {"sceneName": cfg.scene})["sceneItems"])
        for i, item in enumerate(reversed(order)):
            self._request("SetSceneItemIndex", {"sceneName": cfg.scene, "sceneItemId": item,
                                                "sceneItemIndex": total - 1 - i})

        if cfg.pause_text and text_kind is not None:
            name = f"{cfg.pause_scene} text"
            pause_items = {i["sourceName"]: int(i["sceneItemId"]) for i in
                           self._request("GetSceneItemList", {"sceneName": cfg.pause_scene})["sceneItems"]}
            if name not in inputs:  # created once; after that it is the user's to restyle
                item = self._ensure_input(cfg.pause_scene, name, text_kind,
                                          self._text_settings(text_kind, cfg.pause_text, int(width * 0.9)),
                                          inputs, pause_items)
                self._request("SetSceneItemTransform", {
                    "sceneName": cfg.pause_scene, "sceneItemId": item, "sceneItemTransform": {
                        "positionX": width / 2, "positionY": height / 2,
                        "alignment": OBS_ALIGN_CENTER}})

        program = self._request("GetCurrentProgramScene").get("currentProgramSceneName")
        if cfg.switch_scene:
            program = cfg.pause_scene if paused else cfg.scene
            self._request("SetCurrentProgramScene", {"sceneName": program})
            self._applied_paused = paused
        return {"missing": missing, "program_scene": program}

    def _text_settings(self, kind: str, text: str, wrap_width: int) -> dict[str, Any]:
        cfg = self.config
        font = {"face": cfg.caption_font, "size": cfg.caption_size, "style": "Regular", "flags": 0}
        if kind.startswith("text_ft2"):
            return {"text": text, "font": font, "outline": True, "drop_shadow": True, "word_wrap": False,
                    "color1": 0xFFFFFFFF, "color2": 0xFFFFFFFF}
        return {"text": text, "font": font, "outline": True, "outline_size": 4, "outline_color": 0x000000,
                "align": "center", "valign": "bottom", "extents": True, "extents_cx": wrap_width,
                "extents_cy": cfg.caption_size * 3, "extents_wrap": True}

    def _ensure_input(self, scene: str, name: str, kind: str, settings: dict[str, Any],
                      inputs: dict[str, str], items: dict[str, int]) -> int:
        """The scene item id of input ``name`` in ``scene``, creating or updating what differs."""
        if name not in inputs:
            reply = self._request("CreateInput", {"sceneName": scene, "inputName": name, "inputKind": kind,
                                                  "inputSettings": settings, "sceneItemEnabled": True})
            inputs[name] = kind
            items[name] = int(reply["sceneItemId"])
            log.info("obs: created %s %r in scene %r", kind, name, scene)
            return items[name]
        if inputs[name] != kind:
            raise ObsSetupError(f"OBS input {name!r} is a {inputs[name]}, not a {kind}; rename it or ours")
        current = self._request("GetInputSettings", {"inputName": name})["inputSettings"]
        changed = {k: v for k, v in settings.items() if current.get(k) != v}
        if changed:  # rewriting unchanged settings would restart a playing Media Source
            self._request("SetInputSettings", {"inputName": name, "inputSettings": changed, "overlay": True})
        if name not in items:
            items[name] = int(self._request("CreateSceneItem", {"sceneName": scene, "sourceName": name})["sceneItemId"])
        return items[name]


# ----- captions --------------------------------------------------------------------------------

