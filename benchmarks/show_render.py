"""The renderer's time inside the running show: a live `Show` (real time, the default config at 1280x720,
chat every 3 s, espeak, encoder, recording) for N seconds, reading the frame loop's own medians.

A micro-benchmark (`render.py`, `stagecast prepare`) times the renderer alone; inside the show it shares
two cores with the encoder, the voice and the event loop, on the thread count the show sets (1 torch
thread on 2 cores). This is the number that decides late frames.

    python benchmarks/show_render.py --seconds 60 --runtime torch-inductor   # needs `stagecast prepare` first
    python benchmarks/show_render.py --seconds 60 --runtime torch            # the traced program
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.soak import write_chat
from streamer.assembly import configure_torch_threads
from streamer.attachments import build_attachments
from streamer.config import parse_config
from streamer.show import Show

RESULTS = Path(__file__).resolve().parent / "results" / "show_render.json"


class TimedRenderer:
    """The show's renderer, timing each frame it draws on the frame thread (late frames repeat the last
    picture and draw nothing, so they are not in the list); the first `skip` frames are warm-up."""

    def __init__(self, renderer: Any, times: list[float], skip: int) -> None:
        self._renderer, self._times, self._skip = renderer, times, skip

    def render(self, states: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = self._renderer.render(states)
        if self._skip > 0:
            self._skip -= 1
        else:
            self._times.append((time.perf_counter() - t0) * 1000)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._renderer, name)


def run(seconds: float, runtime: str, width: int, height: int) -> dict[str, object]:
    configure_torch_threads()  # what `stagecast run` does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_chat(folder / "chat.jsonl", 3.0)
        config = parse_config({
            "video": {"width": width, "height": height},
            "show": {"mode": "live", "duration_s": seconds},
            "chat": {"sources": [{"type": "replay", "path": str(folder / "chat.jsonl"), "loop": True,
                                  "loop_gap_s": 3.0}]},
            "character": {"runtime": runtime, "memory": {"path": str(folder / "memory.db")}},
            "panel": {"enabled": False},
            "outputs": {"recording": {"directory": str(folder / "rec")}},
        })
        show = Show(config)
        show.attach(*build_attachments(config, show.clock))
        render_ms: list[float] = []
        stats = show.loop.stats
        show.loop.renderer = TimedRenderer(show.loop.renderer, render_ms, skip=3 * config.video.fps)
        t0 = time.perf_counter()
        code = asyncio.run(show.run())
        wall = time.perf_counter() - t0
        ordered = sorted(render_ms)
        return {
            "runtime": runtime, "program": type(show.parts.renderer).__name__, "size": [width, height],
            "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
            "seconds": seconds, "wall_s": round(wall, 1), "exit_code": code, "frames": stats.frames,
            "late_frames": stats.late_frames, "frames_drawn_timed": len(ordered),
            "render_ms_median": round(statistics.median(ordered), 2) if ordered else None,
            "render_ms_p10": round(ordered[len(ordered) // 10], 2) if ordered else None,
            "render_ms_p90": round(ordered[9 * len(ordered) // 10], 2) if ordered else None,
            "animate_ms_median": round(statistics.median(stats.ms_animate), 3) if stats.ms_animate else None,
            "submit_ms_median": round(statistics.median(stats.ms_submit), 3) if stats.ms_submit else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runtime", default="torch-inductor")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args.seconds, args.runtime, args.width, args.height)
    print(f"{'runtime':>14} {'size':>10} {'threads':>7} {'render ms p10/median/p90':>26} {'late':>11}")
    print(f"{result['runtime']!s:>14} {args.width}x{args.height:<5} {result['torch_threads']!s:>7} "
          f"{result['render_ms_p10']!s:>8} / {result['render_ms_median']!s:>6} / {result['render_ms_p90']!s:<6} "
          f"{result['late_frames']!s:>5} / {result['frames']!s:<5}")
    result |= {"machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
