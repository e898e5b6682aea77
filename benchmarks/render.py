"""Renderer micro-benchmark: median / p95 ms per `render` call against the 30 fps frame budget.

Each runtime is a factory `(width, height) -> callable(states) -> frames`: torch on the CPU, ONNX
Runtime (CPU provider; the graph is exported once per size into the cache), and torch CUDA /
TensorRT where a GPU is present; `live2d` draws the Live2D test model (Shizuku, npm-fetched into
the cache) at 1280x720 only, and `live2d-stock` the same with live2d-py's own shader (both skipped,
with the reason, without live2d-py, EGL or npm); `sprites` is the layered-PNG appearance drawing
the shipped demo pack on the CPU. Wall time and process CPU time are both recorded
(for live2d also the worker process's CPU time): other processes share this machine, and CPU time
shows the work a frame costs when wall time is noisy.
Slow runtimes are sampled fewer times (about 10 s each). Results go to benchmarks/results/render.json.

    python benchmarks/render.py [--threads 2] [--iters 50] [--sizes 512x512,1280x720,1920x1080]
                                [--runtimes torch,sprites,live2d,live2d-stock] [--out path.json]
"""

from __future__ import annotations

import os

# libgomp's default spin-wait makes 2 torch threads collapse (seconds per frame) when another
# process holds a core; passive waiting must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import importlib.util
import json
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.render.procedural.renderer import ProceduralRenderer
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
    sizes: tuple[tuple[int, int], ...] | None = None  # None: every --sizes entry


def _torch_cpu(width: int, height: int) -> RenderFn:
    return ProceduralRenderer(width, height, device="cpu").render


def _torch_cpu_eager(width: int, height: int) -> RenderFn:
    """The same module without the jit trace: the side-by-side reference for what tracing saves."""
    return ProceduralRenderer(width, height, device="cpu", program="eager").render


def _torch_cpu_inductor(width: int, height: int) -> RenderFn:
    """torch.compile (inductor) of the same module: one fused C++ loop per part, built per size and batch."""
    return ProceduralRenderer(width, height, device="cpu", program="inductor").render


def _ort_cpu(width: int, height: int) -> RenderFn:
    from engine.render.procedural.runtimes import OnnxRuntimeRenderer

    return OnnxRuntimeRenderer(width, height, providers=["CPUExecutionProvider"]).render


def _torch_cuda(width: int, height: int) -> RenderFn:
    from engine.render.procedural.runtimes import TorchCudaRenderer

    return TorchCudaRenderer(width, height).render


def _tensorrt(width: int, height: int) -> RenderFn:
    from engine.render.procedural.runtimes import TensorRTRenderer

    return TensorRTRenderer(width, height).render


def _live2d(fast_shaders: bool) -> Callable[[int, int], RenderFn]:
    """The `live2d` appearance drawing the test model (Shizuku, fetched once with npm into the cache); `extra()`
    gives the worker process's CPU time, which the process CPU time of this one does not include."""

    def make(width: int, height: int) -> RenderFn:
        from benchmarks.live2d_model import EXPRESSIONS, cached_model
        from engine.render.live2d.renderer import Live2DRenderer, Live2DSettings

        renderer = Live2DRenderer(width, height, Live2DSettings(model=cached_model(), expressions=EXPRESSIONS,
                                                                fast_shaders=fast_shaders))
        renderer.open()
        worker_cpu: list[float] = []

        def render(states: torch.Tensor) -> torch.Tensor:
            frames = renderer.render(states)
            worker_cpu.append(renderer.last_worker_cpu_s * 1000.0)
            return frames

        def extra() -> dict[str, float | str]:
            recent = worker_cpu[-50:]
            worker_cpu.clear()
            return {"worker_cpu_ms_median": round(statistics.median(recent), 3), "shader": renderer.info["shader"]}

        render.extra = extra  # type: ignore[attr-defined]
        return render

    return make


def _live2d_available() -> bool:
    from benchmarks.live2d_model import live2d_unavailable

    why = live2d_unavailable()
    if why:
        print(f"live2d: skipped, {why}")
    return why is None


def _sprites(width: int, height: int) -> RenderFn:
    """The `sprites` appearance drawing the shipped demo pack (configs/characters/sprite-demo)."""
    from engine.render.sprites.renderer import SpritesRenderer
    from streamer.assets import DEMO_SPRITES

    return SpritesRenderer(width, height, DEMO_SPRITES).render


def _has_compiler() -> bool:
    return shutil.which(os.environ.get("CXX", "g++")) is not None


def _has(module: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(module) is not None


RUNTIMES: list[Runtime] = [
    Runtime("torch", "cpu", _torch_cpu),
    Runtime("torch-eager", "cpu", _torch_cpu_eager),
    Runtime("torch-inductor", "cpu", _torch_cpu_inductor, available=_has_compiler),
    Runtime("sprites", "cpu", _sprites),  # the layered-PNG appearance (demo pack), torch on the CPU
    Runtime("onnxruntime", "cpu", _ort_cpu, available=lambda: _has("onnxruntime")() and _has("onnxscript")()),
    Runtime("torch", "cuda", _torch_cuda, available=torch.cuda.is_available),
    Runtime("tensorrt", "cuda", _tensorrt, available=lambda: torch.cuda.is_available() and _has("tensorrt")()),
    # the user's Live2D model (here the Cubism 2 test model) through headless EGL, llvmpipe on a CPU
    Runtime("live2d", "cpu", _live2d(fast_shaders=True), available=_live2d_available, sizes=((1280, 720),)),
    # the same with live2d-py's own Cubism 2 shader, for comparison in the same run (frames are identical)
    Runtime("live2d-stock", "cpu", _live2d(fast_shaders=False), available=_live2d_available, sizes=((1280, 720),)),
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


def time_one(
    fn: RenderFn, states: torch.Tensor, iters: int, warmup: int = 5, budget_s: float = 10.0
) -> tuple[float, float, float]:
    """(median wall ms, p95 wall ms, median CPU ms) per call."""
    t0 = time.perf_counter()
    fn(states)
    first = time.perf_counter() - t0
    iters = max(5, min(iters, int(budget_s / max(first, 1e-4))))
    for _ in range(min(warmup, iters)):
        fn(states)
    walls, cpus = [], []
    for _ in range(iters):
        c0, t0 = time.process_time(), time.perf_counter()
        fn(states)
        walls.append((time.perf_counter() - t0) * 1000.0)
        cpus.append((time.process_time() - c0) * 1000.0)
    walls.sort()
    p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
    return statistics.median(walls), p95, statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--sizes", default="512x512,1280x720,1920x1080")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--runtimes", default="", help="only these runtime names, comma-separated (default: all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows (runtime, size, batch) not measured now (each row carries its own date)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    runs = []
    print(
        f"{'runtime':<12} {'device':<6} {'size':>10} {'batch':>5} {'median ms':>10} {'p95 ms':>8} "
        f"{'cpu ms':>8} {'ms/frame':>9} {'budget':>7}"
    )
    only = set(filter(None, args.runtimes.split(",")))
    for rt in RUNTIMES:
        if (only and rt.name not in only) or not rt.available():
            continue
        for width, height in sizes:
            if rt.sizes is not None and (width, height) not in rt.sizes:
                continue
            fn = rt.make(width, height)
            for batch in batches:
                states = states_for(batch)
                assert states.shape == (batch, P)
                med, p95, cpu = time_one(fn, states, args.iters)
                per_frame = med / batch
                extra = getattr(fn, "extra", dict)()
                runs.append(
                    {
                        "runtime": rt.name,
                        "device": rt.device,
                        "width": width,
                        "height": height,
                        "batch": batch,
                        "ms_median": round(med, 3),
                        "ms_p95": round(p95, 3),
                        "cpu_ms_median": round(cpu, 3),
                        "ms_per_frame": round(per_frame, 3),
                        "budget_ratio": round(per_frame / BUDGET_MS, 3),
                        "date": time.strftime("%Y-%m-%d %H:%M"),
                        **extra,
                    }
                )
                size = f"{width}x{height}"
                cpu += float(extra.get("worker_cpu_ms_median", 0.0))  # the table shows live2d's worker CPU too
                print(
                    f"{rt.name:<12} {rt.device:<6} {size:>10} {batch:>5} {med:>10.2f} {p95:>8.2f} {cpu:>8.2f} "
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
    if args.merge and args.out.exists():
        def key(r: dict) -> tuple:
            return r["runtime"], r["width"], r["height"], r["batch"]

        measured = {key(r) for r in runs}
        earlier = json.loads(args.out.read_text())
        runs = [r for r in earlier["runs"] if key(r) not in measured] + runs
        meta["runtimes_measured_now"] = sorted({r[0] for r in measured})
        meta["earlier_meta"] = earlier.get("meta")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "meta": meta}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
