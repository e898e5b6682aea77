"""A show inside a Ray actor: the show's asyncio loop runs on a thread of the actor's process, and the
actor's methods are the station's control calls, mapped onto `ShowControl`.

Frames and audio never leave the process: the show encodes and records where it renders. When Ray
restarts the actor (its process or node died), `__init__` runs again in the new process and the show
starts over: a new recording segment (the file sink never reuses a name) and fresh connections to its
outputs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import os
import socket
import threading
import time
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.station.config import ShowSpec

if TYPE_CHECKING:  # the show's modules (torch among them) load on the show's thread, niced while it starts
    from streamer.config import StagecastConfig
    from streamer.control import ShowControl
    from streamer.events import FrameTick

log = logging.getLogger("stagecast.station.show")
ACTION_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 20.0
STARTING_NICE = 10  # a show loading its models yields the CPU to shows already on air (same node)
ACTIONS = ("interrupt", "say", "emotion", "pause", "resume", "skip", "clear", "timeout", "ban", "unban")


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values (status crosses Ray and HTTP as this)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value == float("inf"):
        return None
    return value


def _runtime() -> tuple[str, bool]:
    """(node id, whether Ray restarted this actor); outside Ray: (host name, False)."""
    try:
        import ray

        ctx = ray.get_runtime_context()
        with warnings.catch_warnings():  # Ray 2.60 warns about an internal call this property makes
            warnings.simplefilter("ignore", DeprecationWarning)
            return ctx.get_node_id(), bool(ctx.was_current_actor_reconstructed)
    except Exception:
        return socket.gethostname(), False


class ShowHost:
    """The show's process-side half. Ray makes it an actor (`streamer.station.placement`); tests and the
    plain-process benchmark use it directly."""

    def __init__(self, spec: ShowSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.node_id, self.restarted = _runtime()
        self.created = time.time()
        self.on_air_at: float | None = None
        self.state = "starting"
        self.error: str | None = None
        self.exit_code: int | None = None
        self.segments: list[str] = []
        self._control: ShowControl | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done = threading.Event()
        # Threads inherit their creator's nice value (Linux schedules threads): everything the show starts
        # while it loads (its own thread, torch's pools, the encoder) begins behind the shows on air, and
        # goes back to normal priority with the first frame.
        renice = _may_raise_priority()
        if renice:
            _set_nice(STARTING_NICE)
        self._thread = threading.Thread(target=self._main, name=f"show-{self.name}", daemon=True)
        self._thread.start()
        if renice:
            _set_nice(0)

    # ----- the show's thread -----------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # the actor reports it; the station decides what to do
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("show %s failed", self.name)
        finally:
            self._done.set()

    async def _run(self) -> None:
        from streamer.attachments import build_show  # torch and the engine load in the show's thread
        from streamer.events import FrameTick

        config = self.spec.config()
        show = await asyncio.to_thread(build_show, config)
        self._loop = asyncio.get_running_loop()
        self._control = show.control
        ticks = show.control.subscribe(self._first_frame, FrameTick, inline=True)
        try:
            self.exit_code = await show.run()
        finally:
            ticks.close()
            self.segments = [str(p) for p in segment_files(config)]
        self.state = "stopped" if self.exit_code == 0 else "failed"
        if self.exit_code:
            self.error = self.error or f"the show ended with code {self.exit_code}"

    def _first_frame(self, tick: FrameTick) -> None:
        """On the frame thread: the show is on air from its first frame (later ticks cost one comparison)."""
        if self.on_air_at is None:
            self.on_air_at = tick.wall
            self.state = "on air"
            if _may_raise_priority():
                threading.Thread(target=_renice_process, args=(0,), name="renice", daemon=True).start()

    # ----- control calls (any actor thread) ----------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {"name": self.name, "pid": os.getpid(), "node_id": self.node_id, "restarted": self.restarted,
                "created": self.created, "on_air_at": self.on_air_at, "state": self.state, "error": self.error,
                "num_cpus": self.spec.entry.num_cpus, "num_gpus": self.spec.entry.num_gpus,
                "cpu_s": time.process_time()}  # the process's CPU time, every thread (benchmarks read it)

    def status(self) -> dict[str, Any]:
        """The show's status snapshot (JSON-ready) with the host's own state."""
        out: dict[str, Any] = {"host": self.info(), "show": None}
        if self._control is not None:
            out["show"] = jsonable(self._control.status())
        return out

    def wait_on_air(self, timeout_s: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while self.on_air_at is None and not self._done.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.info()

    def act(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """One moderator action on the show's loop: {"ok": True, "result": ...} or {"ok": False, "detail": ...}."""
        if action not in ACTIONS:
            return {"ok": False, "status": 404, "detail": f"unknown action {action!r}; known: {', '.join(ACTIONS)}"}
        loop, control = self._loop, self._control
        if loop is None or control is None or self._done.is_set():
            return {"ok": False, "status": 409, "detail": f"show {self.name!r} is {self.state}, not on air"}
        from streamer.control import ActionError

        future: Future[dict[str, Any]] = asyncio.run_coroutine_threadsafe(_do(control, action, params), loop)
        try:
            return {"ok": True, "status": 200, "result": future.result(ACTION_TIMEOUT_S)}
        except ActionError as exc:
            return {"ok": False, "status": 409, "detail": str(exc)}
        except TimeoutError:
            future.cancel()
            return {"ok": False, "status": 504, "detail": f"show {self.name!r} did not answer in {ACTION_TIMEOUT_S} s"}

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> dict[str, Any]:
        """End the show cleanly (recordings close) and wait for it; returns its final status."""
        loop, control = self._loop, self._control
        if loop is not None and control is not None and not self._done.is_set():
            loop.call_soon_threadsafe(control.stop)
        self._done.wait(timeout_s)
        final = self.status()
        final["segments"] = list(self.segments)
        return final

    def finished(self, timeout_s: float = 0.0) -> bool:
        return self._done.wait(timeout_s)

    def pid(self) -> int:
        return os.getpid()


def _may_raise_priority() -> bool:
    """Only a process that may raise its priority again (root) starts a show niced: otherwise the show would
    stay behind the others for good."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _set_nice(value: int) -> None:
    """This thread's nice value (Linux: per thread); raising priority back needs CAP_SYS_NICE or root."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), value)
    except (OSError, AttributeError):
        pass


def _renice_process(value: int) -> None:
    """Every thread of this process to `value` (where allowed), once the show is on air."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, value)
        except OSError:
            pass


async def _do(control: ShowControl, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The action through the panel's own action code (same results as a single show's panel)."""
    from engine.events import EmotionCue
    from streamer.panel.actions import PanelActions

    actions = PanelActions(control)
    if action == "say":
        cue = params.get("emotion")
        emotion = EmotionCue(**cue) if isinstance(cue, dict) else None
        return actions.say(params["text"], params.get("language"), emotion)
    if action == "emotion":
        return actions.emotion(EmotionCue(**params))
    if action == "timeout":
        return actions.timeout(params["user"], float(params["seconds"]), params.get("reason", ""))
    if action == "ban":
        return actions.ban(params["user"], params.get("reason", ""))
    if action == "unban":
        return actions.unban(params["user"])
    result: dict[str, Any] = getattr(actions, action)()
    return result


def segment_files(config: StagecastConfig) -> list[Path]:
    """Every recording segment of this show's name in its folder (all incarnations), oldest first."""
    rec = config.outputs.recording
    if not rec.enabled or not rec.directory.is_dir():
        return []
    return sorted(rec.directory.glob(f"{rec.prefix}_*.{rec.container}"), key=lambda p: p.stat().st_mtime)
