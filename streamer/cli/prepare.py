"""`stagecast prepare`: build what `runtime: auto` draws the configured character with, once, so that
auto uses it from then on and no show start waits minutes for a build:

* on a CPU-only machine, the compiled CPU renderer (see engine/render/procedural/compiled_cache.py);
  both programs' time per frame is reported, measured side by side, against the frame budget;
* on a machine with a CUDA device and TensorRT, the TensorRT engines (fp32, and fp16 when its image
  stays within tolerance). Written against TensorRT 10's documented API and unverified on a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from engine.render.procedural.look import load_look
from streamer.cli.options import load
from streamer.config import StagecastConfig

_State = TypeVar("_State")


def _ms_per_frame(render: Callable[[_State], object], states: Sequence[_State]) -> float:
    times = []
    for s in states:
        started = time.perf_counter()
        render(s)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compiled_status(config: StagecastConfig) -> str:
    """One line for `stagecast check`: does `runtime: auto` draw this character with the compiled program?"""
    from engine.render.procedural.compiled_cache import is_prepared, program_key
    from streamer.assembly import configure_torch_threads

    if config.character.appearance != "procedural" or config.character.runtime != "auto":
        return f"compiled CPU renderer: not used (appearance {config.character.appearance}, " \
               f"runtime {config.character.runtime})"
    configure_torch_threads()
    import torch

    if torch.cuda.is_available():
        return _tensorrt_status(config)
    key = program_key(config.video.width, config.video.height, load_look(config.character.look))
    if is_prepared(key):
        return "compiled CPU renderer: built for this character and size; `runtime: auto` uses it"
    return ("compiled CPU renderer: not built; `stagecast prepare` builds it once "
            "(frames in a quarter to a half of the time)")


def _tensorrt_status(config: StagecastConfig) -> str:
    import importlib.util

    from engine.render.procedural.runtimes import tensorrt_prepared

    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT engine: not used (TensorRT is not installed); `runtime: auto` draws with torch CUDA graphs"
    if tensorrt_prepared(config.video.width, config.video.height, load_look(config.character.look)):
        return "TensorRT engine: built for this character, size and GPU; `runtime: auto` uses it"
    return "TensorRT engine: not built; `stagecast prepare` builds it once (until then auto uses torch CUDA graphs)"


def _prepare_tensorrt(config: StagecastConfig, frames: int) -> int:
    """On a CUDA machine: build the TensorRT engines auto loads (when TensorRT is installed)."""
    import importlib.util

    import torch

    from engine.state import P

    w, h = config.video.width, config.video.height
    if importlib.util.find_spec("tensorrt") is None:
        print("a CUDA device is here and TensorRT is not installed: `runtime: auto` draws with torch CUDA graphs, "
              "which need no build (engines need the tensorrt package)")
        return 0
    from engine.render.procedural.runtimes import TensorRTRenderer

    print(f"building the TensorRT engines for {w}x{h} on {torch.cuda.get_device_name()} "
          "(minutes the first time)...", flush=True)
    started = time.perf_counter()
    try:
        engine = TensorRTRenderer(w, h, load_look(config.character.look))
    except Exception as exc:  # no parser support, a failed build, ...: say why; auto keeps torch CUDA graphs
        print(f"error: the TensorRT engine cannot be built here: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    build_s = time.perf_counter() - started
    gen = torch.Generator().manual_seed(0)
    states = [torch.rand(1, P, generator=gen) * 2 - 0.5 for _ in range(frames)]
    report = {"width": w, "height": h, "gpu": torch.cuda.get_device_name(), "build_s": round(build_s, 1),
              "precision": engine.precision, "engine": str(engine.engine_path(engine.precision == "fp16")),
              "tensorrt_ms": round(_ms_per_frame(engine.render, states), 3),
              "budget_ms": round(1000 / config.video.fps, 2)}
    print(json.dumps(report))
    print(f"ready: `runtime: auto` now draws with the TensorRT engine ({engine.precision}), "
          f"{report['tensorrt_ms']} ms a frame")
    if config.character.runtime not in ("auto", "tensorrt"):
        print(f"note: this config's runtime is {config.character.runtime!r}: only auto and tensorrt use the engine")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import torch

    from engine.render.procedural.compiled_cache import build_compiled
    from engine.render.procedural.renderer import ProceduralRenderer
    from engine.state import P
    from streamer.assembly import configure_torch_threads

    if args.frames < 1:
        print(f"error: --frames must be at least 1, got {args.frames}", file=sys.stderr)
        return 2
    config = load(args)
    appearance = config.character.appearance
    if appearance != "procedural":
        print(f"nothing to prepare: the {appearance} appearance has no compiled program")
        return 0
    configure_torch_threads()  # as `stagecast run` does: the program is built for this thread count
    if torch.cuda.is_available():  # auto draws on the GPU here: TensorRT engines, not the CPU program
        return _prepare_tensorrt(config, args.frames)
    w, h = config.video.width, config.video.height
    look = load_look(config.character.look)
    print(f"building the compiled renderer for {w}x{h}, {torch.get_num_threads()} torch thread(s) "
          "(about a minute the first time)...", flush=True)
    started = time.perf_counter()
    try:
        compiled = build_compiled(w, h, look)
    except Exception as exc:  # no compiler, a torch without inductor, ...: say why; auto keeps the traced program
        print(f"error: the compiled renderer cannot be built here: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    build_s = time.perf_counter() - started
    traced = ProceduralRenderer(w, h, look)
    gen = torch.Generator().manual_seed(0)
    states = [torch.rand(1, P, generator=gen) * 2 - 0.5 for _ in range(args.frames)]
    compiled_ms, traced_ms = [], []
    for chunk in range(0, len(states), 5):  # interleaved, so a noisy host slows both alike
        compiled_ms.append(_ms_per_frame(compiled.render, states[chunk:chunk + 5]))
        traced_ms.append(_ms_per_frame(traced.render, states[chunk:chunk + 5]))
    budget_ms = 1000 / config.video.fps
    report = {"width": w, "height": h, "threads": torch.get_num_threads(), "build_s": round(build_s, 1),
              "compiled_ms": round(statistics.median(compiled_ms), 2),
              "traced_ms": round(statistics.median(traced_ms), 2), "budget_ms": round(budget_ms, 2)}
    print(json.dumps(report))
    print(f"ready: `runtime: auto` now draws with the compiled program, {report['compiled_ms']} ms a frame "
          f"({report['compiled_ms'] / budget_ms:.2f}x the frame budget; traced {report['traced_ms']} ms, "
          f"{report['traced_ms'] / budget_ms:.2f}x)")
    if config.character.runtime not in ("auto", "torch-inductor"):
        print(f"note: this config's runtime is {config.character.runtime!r}: auto uses the compiled program on a "
              "CPU-only machine, and `runtime: torch` never does")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `prepare` subcommand to the `stagecast` parser."""
    p = subparsers.add_parser("prepare", help="build the compiled CPU renderer (or, on a GPU, the TensorRT engines) "
                                              "once, so `runtime: auto` uses it")
    p.add_argument("-c", "--config", type=Path, default=None, help="YAML config (default configs/default.yaml)")
    p.add_argument("--frames", type=int, default=20, help="frames timed for each program (side by side)")
    p.set_defaults(func=cmd_prepare)
