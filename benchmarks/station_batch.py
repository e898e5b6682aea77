"""Batch throughput: video seconds rendered per wall second against the number of Ray workers.

The same scripts are rendered (1) one by one in this process, the fallback without Ray, and (2) as Ray
tasks on a local Ray instance started with `--workers W` CPUs, one task per CPU, for each W. Wall time
is from the first task submitted to the last video written (Ray's start is reported apart, as `ray_start_s`);
every run's raw frame hashes are checked against the local renders, so the rows compare equal work.
The machine's load average is recorded next to each row: on a shared machine the numbers are noisy.
Results go to benchmarks/results/station_batch.json (`batch_rows()` is what benchmarks/station.py joins).

    python benchmarks/station_batch.py [--workers 1,2] [--scripts 6] [--seconds 3] [--size 256x144]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI: passive OpenMP waits on a shared machine
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local instance: write no token into ~/.ray

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamer.batch.jobs import find_scripts, plan_jobs
from streamer.batch.runner import BatchReport, run_local, run_ray
from streamer.config import parse_config

RESULTS = Path(__file__).resolve().parent / "results" / "station_batch.json"
WORDS = "one two three four five six seven eight nine ten eleven twelve".split()


def write_scripts(folder: Path, count: int, seconds: float) -> None:
    """`count` scripts of about `seconds` of video each: a spoken line, an emotion, a pause."""
    emotions = ("joy", "surprise", "fun", "sorrow", "anger")
    for i in range(count):
        words = " ".join(WORDS[: max(2, int(seconds * 2.5) - 2)])
        lines = [{"t": 0.1, "say": f"Take {i}: {words}.", "lang": "en"},
                 {"t": 0.2, "emotion": emotions[i % len(emotions)], "hold": 1.0}]
        (folder / f"take{i:02d}.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def _row(label: str, workers: int, report: BatchReport, **extra: Any) -> dict[str, Any]:
    if report.failures:
        raise RuntimeError(f"{label}: {[f.error for f in report.failures]}")
    return {"runner": label, "workers": workers, "videos": len(report.results),
            "video_s": round(report.video_s, 2), "wall_s": round(report.wall_s, 2),
            "video_s_per_wall_s": round(report.throughput, 3),
            "mean_task_s": round(sum(r.render_s for r in report.results) / len(report.results), 2),
            "load_avg_1m": round(os.getloadavg()[0], 2), **extra}


def batch_rows(workers: tuple[int, ...] = (1, 2), scripts: int = 6, seconds: float = 3.0,
               width: int = 256, height: int = 144) -> list[dict[str, Any]]:
    """One row for the local one-by-one render, then one per Ray worker count, all on the same scripts."""
    import ray

    config = parse_config({"video": {"width": width, "height": height}, "show": {"seed": 1}})
    rows = []
    with tempfile.TemporaryDirectory(prefix="stagecast-batch-bench-") as tmp:
        folder, out = Path(tmp) / "scripts", Path(tmp) / "out"
        folder.mkdir()
        write_scripts(folder, scripts, seconds)
        jobs, failures = plan_jobs(find_scripts(str(folder)), out, config)
        assert not failures, failures
        local = run_local(jobs, threads=1)
        reference = {r.name: r.video_sha256 for r in local.results}
        rows.append(_row("local, one by one (no Ray)", 1, local))
        base = local.throughput
        for count in workers:
            start = time.perf_counter()
            ray.init(address="local", num_cpus=count, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)
            ray_start_s = time.perf_counter() - start
            try:
                report = run_ray(jobs, threads=1, workers=count)
            finally:
                ray.shutdown()
            assert {r.name: r.video_sha256 for r in report.results} == reference, "raw frames differ from local"
            rows.append(_row("ray tasks", count, report, ray_start_s=round(ray_start_s, 2),
                             speedup_vs_local=round(report.throughput / base, 2) if base else None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated Ray worker counts")
    parser.add_argument("--scripts", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="about this much video per script")
    parser.add_argument("--size", default="256x144")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    workers = tuple(int(w) for w in args.workers.split(","))
    rows = batch_rows(workers, args.scripts, args.seconds, width, height)
    cols = ["workers", "videos", "video_s", "wall_s", "video_s_per_wall_s", "mean_task_s", "load_avg_1m"]
    print(f"{'runner':>28} " + " ".join(f"{c:>18}" for c in cols))
    for r in rows:
        print(f"{r['runner']:>28} " + " ".join(f"{r[c]:>18}" for c in cols))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "size": args.size,
        "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "note": "video seconds rendered per wall second; the machine is shared with other jobs (see load_avg_1m), "
                "so absolute numbers are noisy; rows ran back to back in one process on the same scripts",
        "batch": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
