"""Run render jobs as Ray tasks spread over the cluster (or one by one in this process), with progress.

Each job is one task (`num_cpus` = the torch threads it renders with), scheduled SPREAD so the nodes share
the batch. A task whose worker process or node dies, or that raises, is retried up to `retries` times;
a job that still fails is reported with its script's name and the other jobs go on. Outputs are written
by this driver process (atomically: a .part file renamed into place) as each task finishes.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamer.batch.jobs import BatchError, JobFailure, RenderJob
from streamer.batch.task import JobResult, render_job

INSTALL_HINT = "pip install 'stagecast[station]'  (Ray, for batch rendering across cores and a cluster)"
Progress = Callable[[str], None]


def ray_installed() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class BatchReport:
    results: list[JobResult] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)
    wall_s: float = 0.0
    workers: int = 0  # concurrent renders the batch ran with (1 for the local fallback)

    @property
    def video_s(self) -> float:
        return sum(r.video_seconds for r in self.results)

    @property
    def throughput(self) -> float:
        """Video seconds rendered per wall second."""
        return self.video_s / self.wall_s if self.wall_s > 0 else 0.0


def _write(result: JobResult, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.write_bytes(result.video)
    part.replace(out)


def _done_line(done: int, total: int, job: RenderJob, result: JobResult) -> str:
    where = f"node {result.node[:8]}" if result.node else result.host
    return (f"[{done}/{total}] {job.script} -> {job.out}: {result.frames} frames ({result.video_seconds:.1f} s), "
            f"rendered in {result.render_s:.1f} s on {where} (pid {result.pid})")


def _record(report: BatchReport, outcome: JobResult | JobFailure, job: RenderJob, done: int, total: int,
            progress: Progress) -> None:
    """One finished job, local or on Ray: write the video or note the failure, and say so."""
    if isinstance(outcome, JobFailure):
        report.failures.append(outcome)
        progress(f"[{done}/{total}] FAILED {outcome.error}")
        return
    _write(outcome, job.out)
    report.results.append(outcome)
    progress(_done_line(done, total, job, outcome))


def run_local(jobs: list[RenderJob], progress: Progress = lambda line: None, threads: int | None = None) -> BatchReport:
    """Render the jobs one after another in this process (the fallback without Ray)."""
    report = BatchReport(workers=1)
    start = time.perf_counter()
    for done, job in enumerate(jobs, 1):
        try:
            outcome: JobResult | JobFailure = render_job(job, threads)
        except Exception as exc:  # one script's failure is reported, the batch goes on
            outcome = JobFailure(job.script, f"{job.script}: render failed: {type(exc).__name__}: {exc}")
        _record(report, outcome, job, done, len(jobs), progress)
    report.wall_s = time.perf_counter() - start
    return report


def _ray_render(job: RenderJob, threads: int) -> JobResult:
    """The body of a Ray task: render, then name the node it ran on."""
    import ray

    return replace(render_job(job, threads), node=ray.get_runtime_context().get_node_id())


def _failure_text(job: RenderJob, exc: Exception, attempts: int) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError carries the task's own exception
    if isinstance(cause, BaseException):
        reason = f"{type(cause).__name__}: {cause}"
    else:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{job.script}: render failed after {attempts} attempt(s): {reason}"


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Refuse a HOST:PORT nothing listens on now: Ray itself would retry connecting for minutes."""
    if address is None or address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise BatchError(f"no Ray cluster at {address} ({exc}); start one with `ray start --head --port {port}` "
                         "there, or leave out --address to render on this machine") from None


def run_ray(
    jobs: list[RenderJob],
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    retries: int = 2,
    progress: Progress = lambda line: None,
    init_kwargs: dict[str, Any] | None = None,
) -> BatchReport:
    """Render the jobs as Ray tasks on the cluster at `address` (None: Ray's default, which finds a running
    cluster or starts one on this machine). At most `workers` tasks are in flight (None: as many as fit)."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, **(init_kwargs or {}))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BatchError(f"cannot start or reach Ray at {address or 'its default address'}: {exc}") from None
    try:
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = workers or max(1, cluster_cpus // threads)
        task = ray.remote(_ray_render).options(
            num_cpus=threads, max_retries=retries, retry_exceptions=True, scheduling_strategy="SPREAD",
            name="stagecast_render",
        )
        progress(f"rendering {len(jobs)} script(s) on Ray ({len(ray.nodes())} node(s), {cluster_cpus} CPU(s)), "
                 f"{limit} at a time")
        report = BatchReport(workers=limit)
        start = time.perf_counter()
        queue = list(jobs)
        pending: dict[Any, RenderJob] = {}
        done = 0
        while queue or pending:
            while queue and len(pending) < limit:
                job = queue.pop(0)
                pending[task.remote(job, threads)] = job
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                done += 1
                try:
                    outcome: JobResult | JobFailure = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = JobFailure(job.script, _failure_text(job, exc, retries + 1))
                _record(report, outcome, job, done, len(jobs), progress)
        report.wall_s = time.perf_counter() - start
        return report
    finally:
        if started_here:
            ray.shutdown()
