"""A real Ray cluster on loopback for tests: a head node and worker nodes, each a `ray start --block`
process this test owns.

Every node is stopped by SIGTERM to its own `ray start --block` process (Ray drains the node and kills
what it started), never by `ray stop`, which would stop every Ray node of this user on the machine
(other test runs' clusters included). Each cluster has its own temp dir and free ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return Path(RAY).exists()


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the node's `ray start --block`: Ray drains it and ends its raylet and workers."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


@dataclass
class RayCluster:
    """A loopback cluster: `address` is what `ray.init(address=...)` and `stagecast station --address` take."""

    port: int
    temp_dir: Path
    nodes: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> RayNode:
        log = self.temp_dir / f"{name}.log"
        run_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        with open(log, "wb") as out:
            process = subprocess.Popen([RAY, "start", "--block", *args], stdout=out, stderr=subprocess.STDOUT,
                                       env=run_env, start_new_session=True)
        node = RayNode(name, process, log)
        self.nodes.append(node)
        return node

    def start_head(self, num_cpus: float, labels: str = "") -> RayNode:
        args = ["--head", "--port", str(self.port), "--num-cpus", str(num_cpus), "--include-dashboard=false",
                "--disable-usage-stats", "--temp-dir", str(self.temp_dir / "ray"),
                "--dashboard-port", str(free_port()), "--object-store-memory", str(100 * 1024 * 1024),
                "--node-ip-address", "127.0.0.1"]
        if labels:
            args += ["--labels", labels]
        return self._start("head", args)

    def add_node(self, num_cpus: float, labels: str = "") -> RayNode:
        args = ["--address", self.address, "--num-cpus", str(num_cpus), "--object-store-memory",
                str(100 * 1024 * 1024), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
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
            result = subprocess.run([sys.executable, "-c", code, self.address], capture_output=True, text=True,
                                    timeout=60, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
            last = result.stdout.strip() + result.stderr[-500:]
            if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{count} ray nodes not alive after {timeout} s: {last}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
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
