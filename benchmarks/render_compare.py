"""Renderer runtimes interleaved call by call: ratios that survive a noisy host.

`render.py` times one runtime after another, so a host that slows down halfway (these shared VMs
do, by 2x within minutes) skews every comparison. Here each round renders the same states once
with every runtime in turn, and the table gives each runtime's median and its ratio to the first
runtime's median. Results go to benchmarks/results/render_compare.json.

    python benchmarks/render_compare.py [--runtimes torch,torch-inductor,torch-eager]
                                        [--sizes 1280x720,1920x1080] [--batch 1] [--rounds 40]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in render.py: before torch loads OpenMP

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.render import BUDGET_MS, RUNTIMES, states_for

RESULTS = Path(__file__).resolve().parent / "results" / "render_compare.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtimes", default="torch,torch-inductor,torch-eager")
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.runtimes.split(",") if n]
    cpu = {rt.name: rt for rt in RUNTIMES if rt.device == "cpu"}
    unknown = [n for n in names if n not in cpu]
    if unknown:
        ap.error(f"unknown CPU runtime(s) {unknown}; known: {', '.join(cpu)}")
    names = [n for n in names if cpu[n].available()]
    states = states_for(args.batch)
    rows = []
    print(f"{'size':>10} {'runtime':<15} {'median ms':>10} {'ratio':>6} {'budget':>7}")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        fns = {n: cpu[n].make(width, height) for n in names}
        for fn in fns.values():
            for _ in range(3):
                fn(states)
        times: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(args.rounds):
            for n, fn in fns.items():
                t0 = time.perf_counter()
                fn(states)
                times[n].append((time.perf_counter() - t0) * 1000.0)
        base = statistics.median(times[names[0]])
        for n in names:
            med = statistics.median(times[n])
            per_frame = med / args.batch
            rows.append({"runtime": n, "width": width, "height": height, "batch": args.batch,
                         "ms_median": round(med, 3), "ratio_to_first": round(med / base, 3),
                         "budget_ratio": round(per_frame / BUDGET_MS, 3)})
            print(f"{size:>10} {n:<15} {med:>10.2f} {med / base:>6.2f} {per_frame / BUDGET_MS:>7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads, "rounds": args.rounds,
            "machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__}
    args.out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
