"""A real Ray cluster on loopback for tests: a head node and worker nodes, each a `ray start --block`
process this test owns.

Every node is stopped by SIGTERM to its own `ray start --block` process (Ray drains the node and kills
what it started), never by `ray stop`, which would stop every Ray node of this user on the machine
(other test runs' clusters included). Each cluster has its own temp dir and free ports.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 90.0
# Clusters started here use token auth with one token per test process, set before anything imports ray
# (Ray reads it once): a token file another cluster left in ~/.ray cannot lock these drivers out, and
# every in-process driver (ray.init) of this test run agrees with every cluster it starts.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
AUTH_ENV = {"RAY_AUTH_MODE": os.environ["RAY_AUTH_MODE"], "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],
            "RAY_USAGE_STATS_ENABLED": "0"}
# a dead node is noticed in ~2 s instead of Ray's default ~30 s (GCS health checks of each raylet)
HEALTH_ENV = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "1000",
              "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_available() -> bool:
    """Without importing ray (it reads its auth settings once, when first imported)."""
    return importlib.util.find_spec("ray") is not None and Path(RAY).exists()


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the node's whole process group (its `ray start`, raylet, GCS and workers): a node dying."""
        if self.process.poll() is None or _group_alive(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def drain(self, timeout: float = 40.0) -> None:
        """SIGTERM the node's `ray start --block`: Ray drains the node, then ends its raylet and workers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill()

    def started(self) -> bool:
        return b"Ray runtime started" in self.log.read_bytes()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class RayCluster:
    """A loopback cluster: `address` is what `ray.init(address=...)` and `stagecast station --address` take."""

    port: int
    temp_dir: Path
    nodes: list[RayNode] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=lambda: dict(AUTH_ENV))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> RayNode:
        log = self.temp_dir / f"{name}.log"
        run_env = {**os.environ, **self.env, **HEALTH_ENV, **(env or {})}
        # the nodes import this checkout (tests run from a worktree; the venv may point elsewhere)
        run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        with open(log, "wb") as out:
            process = subprocess.Popen([RAY, "start", "--block", *args], stdout=out, stderr=subprocess.STDOUT,
                                       env=run_env, start_new_session=True)
        node = RayNode(name, process, log)
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: float, labels: str = "") -> RayNode:
        args = ["--head", "--port", str(self.port), "--num-cpus", str(num_cpus), "--include-dashboard=false",
                "--disable-usage-stats", "--temp-dir", str(self.temp_dir / "ray"),
                "--object-store-memory", str(100 * 1024 * 1024),
                "--dashboard-agent-listen-port", str(free_port())]
        if labels:
            args += ["--labels", labels]
        return self._start("head", args)

    def add_node(self, num_cpus: float, labels: str = "") -> RayNode:
        args = ["--address", self.address, "--num-cpus", str(num_cpus), "--object-store-memory",
                str(100 * 1024 * 1024), "--disable-usage-stats", "--dashboard-agent-listen-port", str(free_port())]
        if labels:
            args += ["--labels", labels]
        return self._start(f"node{len(self.nodes)}", args)

    def wait_for_nodes(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        """Until `count` nodes are alive in the cluster (asked through a short-lived driver process)."""
        code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"ray node {node.name} exited: {node.log.read_text()[-3000:]}")
            if not all(node.started() for node in self.nodes if node.process.poll() is None):
                time.sleep(0.5)
                continue
            result = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                    timeout=60, env={**os.environ, **self.env})
            last = result.stdout.strip() + result.stderr[-500:]
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{count} ray nodes not alive after {timeout} s: {last}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_cluster(num_cpus: float = 1, nodes: int = 2) -> RayCluster:
    """A head node plus `nodes - 1` worker nodes on 127.0.0.1, each with `num_cpus` logical CPUs."""
    # the temp dir holds Unix sockets, whose paths must stay short (< 108 bytes)
    cluster = RayCluster(free_port(), Path(tempfile.mkdtemp(prefix="rt", dir="/tmp")))
    try:
        cluster.start_head(num_cpus)
        cluster.wait_for_nodes(1)
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus)
        cluster.wait_for_nodes(nodes)
    except BaseException:
        cluster.stop()
        raise
    return cluster
