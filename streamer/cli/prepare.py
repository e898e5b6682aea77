"""`stagecast prepare`: build the compiled CPU renderer for the configured character once, so that
`runtime: auto` uses it from then on (see engine/render/procedural/compiled_cache.py for why auto waits for it).

It reports both programs' time per frame, measured side by side, against the frame budget.
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
    key = program_key(config.video.width, config.video.height, load_look(config.character.look))
    if is_prepared(key):
        return "compiled CPU renderer: built for this character and size; `runtime: auto` uses it"
    return ("compiled CPU renderer: not built; `stagecast prepare` builds it once "
            "(frames in a quarter to a half of the time)")


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
    if config.character.runtime not in ("auto", "torch-inductor") or torch.cuda.is_available():
        print(f"note: this config's runtime is {config.character.runtime!r} and CUDA is "
              f"{'' if torch.cuda.is_available() else 'not '}available: auto uses the compiled program only on a "
              "CPU-only machine, and `runtime: torch` never does")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `prepare` subcommand to the `stagecast` parser."""
    p = subparsers.add_parser("prepare", help="build the compiled CPU renderer once, so `runtime: auto` uses it")
    p.add_argument("-c", "--config", type=Path, default=None, help="YAML config (default configs/default.yaml)")
    p.add_argument("--frames", type=int, default=20, help="frames timed for each program (side by side)")
    p.set_defaults(func=cmd_prepare)
