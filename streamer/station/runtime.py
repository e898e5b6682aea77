"""The station's driver: places shows as Ray actors, finds them again by name, polls their status and routes
control calls to them.

Shows are named, detached actors in the station's Ray namespace, so `stagecast station add|remove|list`
(another process) and the running station see the same shows. Every call here blocks (Ray's API); the
panel runs them on a worker thread. One show that hangs or dies never holds up the others: status calls go
out together and each gets at most `status_timeout_s`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from streamer.config import ConfigError
from streamer.station import require_ray
from streamer.station.config import ShowSpec, check_resources
from streamer.station.host import ShowHost

log = logging.getLogger("stagecast.station")
PREFIX = "show-"


def actor_name(show: str) -> str:
    return PREFIX + show


@dataclass
class ShowRecord:
    """What the station knows of one show."""

    name: str
    handle: Any
    state: str = "placing"
    info: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    error: str | None = None
    restarts: int = 0
    pids: list[int] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    last_seen: float = 0.0

    def view(self) -> dict[str, Any]:
        show = (self.status or {}).get("show") or {}
        return {"name": self.name, "state": self.state, "error": self.error, "restarts": self.restarts,
                "pid": self.info.get("pid"), "node_id": self.info.get("node_id"), "on_air_at":
                self.info.get("on_air_at"), "num_cpus": self.info.get("num_cpus"), "frames": show.get("frames"),
                "late_frames": show.get("late_frames"), "render_errors": show.get("render_errors"),
                "width": show.get("width"), "height": show.get("height"), "fps": show.get("fps"),
                "mode": show.get("mode"), "paused": show.get("paused"), "health": show.get("health", {}),
                "last_seen": self.last_seen}


class StationRuntime:
    def __init__(self, namespace: str = "stagecast", address: str | None = None, status_timeout_s: float = 2.0) -> None:
        self.namespace = namespace
        self.address = address
        self.status_timeout_s = status_timeout_s
        self.ray = require_ray()
        self.shows: dict[str, ShowRecord] = {}
        self.refused: dict[str, str] = {}

    # ----- the cluster -----------------------------------------------------------------------------------
    def connect(self) -> None:
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, namespace=self.namespace, logging_level=logging.WARNING,
                          log_to_driver=False)

    def nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def check(self, specs: list[ShowSpec]) -> None:
        """Refuse shows no alive node could hold (ConfigError names them)."""
        check_resources([s.entry for s in specs], [n.get("Resources", {}) for n in self.nodes()])

    # ----- shows -----------------------------------------------------------------------------------------
    def place(self, spec: ShowSpec) -> ShowRecord:
        """Start a show as a detached, named actor; Ray restarts it when its process or node dies."""
        if spec.name in self.names():
            raise ConfigError(f"show {spec.name!r} is already on the station; remove it first")
        self.check([spec])
        entry = spec.entry
        options: dict[str, Any] = dict(
            name=actor_name(spec.name), namespace=self.namespace, lifetime="detached",
            max_restarts=entry.max_restarts, max_task_retries=0, num_cpus=entry.num_cpus, num_gpus=entry.num_gpus,
            max_concurrency=4,  # status and actions answer while a stop waits
        )
        if entry.labels:
            options["label_selector"] = dict(entry.labels)
        else:
            options["scheduling_strategy"] = "SPREAD"
        handle = self.ray.remote(ShowHost).options(**options).remote(spec)
        record = self.shows[spec.name] = ShowRecord(spec.name, handle)
        self.refused.pop(spec.name, None)
        log.info("show %s placed (%g CPU, %g GPU)", spec.name, entry.num_cpus, entry.num_gpus)
        return record

    def names(self) -> list[str]:
        """The shows on the station now (in Ray, so also those added by another process)."""
        found = self.ray.util.list_named_actors(all_namespaces=True)
        return sorted(a["name"].removeprefix(PREFIX) for a in found
                      if a.get("namespace") == self.namespace and a["name"].startswith(PREFIX))

    def refresh(self) -> None:
        """Pick up shows added and forget shows removed by other processes."""
        names = set(self.names())
        for name in names - set(self.shows):
            try:
                handle = self.ray.get_actor(actor_name(name), namespace=self.namespace)
            except ValueError:
                continue
            self.shows[name] = ShowRecord(name, handle)
        for name in set(self.shows) - names:
            if self.shows[name].state not in ("placing",):
                del self.shows[name]

    def record(self, name: str) -> ShowRecord:
        if name not in self.shows:
            self.refresh()
        if name not in self.shows:
            raise KeyError(name)
        return self.shows[name]

    def poll(self) -> None:
        """Ask every show for its status at once; a show that does not answer in time is reported, not waited on."""
        self.refresh()
        records = list(self.shows.values())
        refs = {rec.handle.status.remote(): rec for rec in records}
        ready, pending = self.ray.wait(list(refs), num_returns=len(refs), timeout=self.status_timeout_s)
        now = time.time()
        for ref in ready:
            rec = refs[ref]
            try:
                status = self.ray.get(ref)
            except self.ray.exceptions.ActorUnavailableError as exc:  # Ray is restarting it
                rec.state, rec.error = "restarting", str(exc).splitlines()[0][:300]
                continue
            except self.ray.exceptions.ActorDiedError as exc:  # its process died (Ray restarts it if it may)
                rec.state, rec.error = "down", str(exc).splitlines()[0][:300]
                continue
            except Exception as exc:
                rec.state, rec.error = "unreachable", str(exc).splitlines()[0][:300]
                continue
            self._update(rec, status, now)
        for ref in pending:
            rec = refs[ref]
            rec.state = "unresponsive" if rec.status is not None else "starting"
            with contextlib.suppress(Exception):  # a queued call is dropped; one already running finishes alone
                self.ray.cancel(ref)

    def _update(self, rec: ShowRecord, status: dict[str, Any], now: float) -> None:
        info = status["host"]
        pid, node = info["pid"], info["node_id"]
        if rec.pids and rec.pids[-1] != pid:
            rec.restarts += 1
            log.warning("show %s restarted (pid %s -> %s, node %s)", rec.name, rec.pids[-1], pid, node[:12])
        elif not rec.pids and info.get("restarted"):
            rec.restarts += 1
        if not rec.pids or rec.pids[-1] != pid:
            rec.pids.append(pid)
            rec.nodes.append(node)
        rec.info, rec.status, rec.last_seen = info, status, now
        rec.state, rec.error = info["state"], info.get("error")

    def act(self, name: str, action: str, params: dict[str, Any], timeout_s: float = 8.0) -> dict[str, Any]:
        """One control call on one show's actor; the answer says ok or why not (status like HTTP)."""
        rec = self.record(name)
        try:
            result: dict[str, Any] = self.ray.get(rec.handle.act.remote(action, params), timeout=timeout_s)
        except self.ray.exceptions.GetTimeoutError:
            return {"ok": False, "status": 504, "detail": f"show {name!r} did not answer in {timeout_s} s"}
        except self.ray.exceptions.RayActorError as exc:
            return {"ok": False, "status": 503, "detail": f"show {name!r} is not reachable now (restarting?): "
                    f"{str(exc).splitlines()[0][:200]}"}
        return result

    def call(self, name: str, method: str, *args: Any, timeout_s: float = 60.0) -> Any:
        rec = self.record(name)
        return self.ray.get(getattr(rec.handle, method).remote(*args), timeout=timeout_s)

    def remove(self, name: str, stop_timeout_s: float = 20.0) -> dict[str, Any] | None:
        """Stop a show cleanly (its recording closes), then end its actor for good."""
        rec = self.record(name)
        final: dict[str, Any] | None = None
        try:
            final = self.ray.get(rec.handle.stop.remote(stop_timeout_s), timeout=stop_timeout_s + 5)
        except Exception as exc:
            log.warning("show %s did not stop cleanly: %s", name, str(exc).splitlines()[0][:200])
        self.ray.kill(rec.handle, no_restart=True)
        self.shows.pop(name, None)
        log.info("show %s removed", name)
        return final

    def remove_all(self) -> None:
        self.refresh()
        for name in list(self.shows):
            self.remove(name)

    def views(self) -> list[dict[str, Any]]:
        out = [rec.view() for rec in sorted(self.shows.values(), key=lambda r: r.name)]
        out += [{"name": name, "state": "refused", "error": error, "restarts": 0}
                for name, error in sorted(self.refused.items()) if name not in self.shows]
        return out
