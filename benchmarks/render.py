"""Renderer micro-benchmark: median / p95 ms per `render` call against the 30 fps frame budget.

Each runtime is a factory `(width, height) -> callable(states) -> frames`; add onnxruntime or CUDA
by appending to RUNTIMES. Results go to benchmarks/results/render.json.

    python benchmarks/render.py [--threads 2] [--iters 50] [--sizes 512x512,1280x720,1920x1080]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.render.procedural import ProceduralRenderer
from engine.state import P, make_state

RESULTS = Path(__file__).resolve().parent / "results" / "render.json"
BUDGET_MS = 1000.0 / 30.0
RenderFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Runtime:
    name: str
    device: str
    make: Callable[[int, int], RenderFn]
    available: Callable[[], bool] = lambda: True


def _torch_cpu(width: int, height: int) -> RenderFn:
    return ProceduralRenderer(width, height, device="cpu").render


RUNTIMES: list[Runtime] = [
    Runtime("torch", "cpu", _torch_cpu),
    # Runtime("onnxruntime", "cpu", _ort_cpu, available=_has_ort),   # added by the ONNX export step
    # Runtime("torch", "cuda", _torch_cuda, available=torch.cuda.is_available),
]


def states_for(batch: int) -> torch.Tensor:
    """Varied, realistic states (mid-sentence, some emotion, head moving) so no shortcut applies."""
    rows = []
    for i in range(batch):
        t = i / max(batch, 1)
        rows.append(
            make_state(
                head_yaw=0.4 - t,
                head_roll=0.3 * t,
                head_pitch=0.2,
                breath=0.5 + 0.4 * t,
                mouth_closed=0.2,
                mouth_a=0.5,
                mouth_o=0.3,
                joy=0.6,
                blush=0.3,
                gaze_x=0.2,
            )
        )
    return torch.stack(rows)


def time_one(fn: RenderFn, states: torch.Tensor, iters: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn(states)
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn(states)
        samples.append((time.perf_counter() - t0) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--sizes", default="512x512,1280x720,1920x1080")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    runs = []
    print(
        f"{'runtime':<12} {'device':<6} {'size':>10} {'batch':>5} {'median ms':>10} {'p95 ms':>8} "
        f"{'ms/frame':>9} {'budget':>7}"
    )
    for rt in RUNTIMES:
        if not rt.available():
            continue
        for width, height in sizes:
            fn = rt.make(width, height)
            for batch in batches:
                states = states_for(batch)
                assert states.shape == (batch, P)
                med, p95 = time_one(fn, states, args.iters)
                per_frame = med / batch
                runs.append(
                    {
                        "runtime": rt.name,
                        "device": rt.device,
                        "width": width,
                        "height": height,
                        "batch": batch,
                        "ms_median": round(med, 3),
                        "ms_p95": round(p95, 3),
                        "ms_per_frame": round(per_frame, 3),
                        "budget_ratio": round(per_frame / BUDGET_MS, 3),
                    }
                )
                size = f"{width}x{height}"
                print(
                    f"{rt.name:<12} {rt.device:<6} {size:>10} {batch:>5} {med:>10.2f} {p95:>8.2f} "
                    f"{per_frame:>9.2f} {per_frame / BUDGET_MS:>7.2f}"
                )
    meta = {
        "threads": args.threads,
        "iters": args.iters,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "budget_ms": round(BUDGET_MS, 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "meta": meta}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
