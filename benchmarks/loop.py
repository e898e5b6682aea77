"""Frame-loop benchmark: animate + render + encode per frame, virtual mode, against the frame budget.

Runs the real pipeline (timeline with speech, animator, procedural renderer, output hub encoding
H.264/AAC into a file) for N frames per resolution and reports medians. `ms_total` is wall time per
frame of the whole pipeline (render and encode overlap in their own threads), i.e. the throughput
that decides whether the show keeps up in live mode.

`--live2d` adds the `live2d` appearance at 1280x720 (the Cubism 2 test model Shizuku, fetched with
npm into the cache), once as shipped and once with live2d-py's own shader (`live2d-stock`), in the
same run as the procedural character; skipped, with the reason, when live2d-py, EGL or npm is missing.

`--inductor` adds the procedural character at 1280x720 on the `torch-inductor` runtime (compiled
for this CPU; skipped without a C++ compiler).

    python benchmarks/loop.py [--frames 300] [--live2d] [--inductor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.clock import FrameClock
from engine.frameloop import FrameLoop
from streamer.assembly import build_engine, configure_torch_threads, encoder_settings
from streamer.config import parse_config
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub

RESULTS = Path(__file__).resolve().parent / "results" / "loop.json"
SIZES = [(512, 512), (1280, 720)]


def live2d_character(fast_shaders: bool = True) -> dict[str, Any]:
    """The `character:` section that puts the Live2D test model on air."""
    from benchmarks.live2d_model import EXPRESSIONS, cached_model

    return {"appearance": "live2d",
            "live2d": {"model": str(cached_model()), "expressions": EXPRESSIONS, "fast_shaders": fast_shaders}}


def run_one(width: int, height: int, frames: int, appearance: str = "procedural",
            character: dict[str, Any] | None = None) -> dict[str, float | int | str]:
    config = parse_config({"video": {"width": width, "height": height}, "character": character or {}})
    parts = build_engine(config)
    parts.prewarm()
    speech = parts.voice.synthesize(
        "Hello everyone, welcome to the stream! Today we are measuring how fast every frame is made.", "en"
    )
    while parts.timeline.busy_until_frame() < frames:
        parts.timeline.schedule(speech)
    with tempfile.TemporaryDirectory() as tmp:
        hub = OutputHub(encoder_settings(config), [SegmentedFileSink(tmp)])
        hub.open()
        loop = FrameLoop(FrameClock(parts.timebase, virtual=True), parts.timeline, parts.animator,
                         parts.renderer, hub, max_frames=frames)
        loop.stats.ms_render = type(loop.stats.ms_render)(maxlen=frames)
        loop.stats.ms_animate = type(loop.stats.ms_animate)(maxlen=frames)
        t0 = time.perf_counter()
        loop.run()
        hub.close()
        wall = time.perf_counter() - t0
        stats = hub.stats()
    parts.close()  # the live2d worker process
    warm = list(loop.stats.ms_render)[10:]
    return {
        "appearance": appearance,
        "width": width,
        "height": height,
        "fps": config.video.fps,
        "frames": frames,
        "ms_animate": round(statistics.median(list(loop.stats.ms_animate)[10:]), 3),
        "ms_render": round(statistics.median(warm), 3),
        "ms_encode": round(stats.encode_ms_median, 3),
        "ms_total": round(wall * 1000 / frames, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--live2d", action="store_true", help="also the live2d appearance at 1280x720")
    parser.add_argument("--inductor", action="store_true", help="also the torch-inductor runtime at 1280x720")
    args = parser.parse_args()
    configure_torch_threads()
    runs = [run_one(w, h, args.frames) for w, h in SIZES]
    if args.inductor:
        if shutil.which(os.environ.get("CXX", "g++")) is None:
            print("procedural-inductor: skipped, no C++ compiler")
        else:
            runs.append(run_one(1280, 720, args.frames, "proc-inductor", {"runtime": "torch-inductor"}))
    if args.live2d:
        from benchmarks.live2d_model import live2d_unavailable

        why = live2d_unavailable()
        if why:
            print(f"live2d: skipped, {why}")
        else:
            runs.append(run_one(1280, 720, args.frames, "live2d", live2d_character()))
            runs.append(run_one(1280, 720, args.frames, "live2d-stock", live2d_character(fast_shaders=False)))
    budget = 1000 / runs[0]["fps"]
    print(f"{'appearance':<12} {'size':>10} {'animate':>8} {'render':>8} {'encode':>8} {'total':>8} {'budget':>7}")
    for r in runs:
        size = f"{r['width']}x{r['height']}"
        print(f"{r['appearance']:<12} {size:>10} {r['ms_animate']:8.2f} {r['ms_render']:8.2f} {r['ms_encode']:8.2f} "
              f"{r['ms_total']:8.2f} {r['ms_total'] / budget:6.2f}x")
    print("targets (2-core CPU): procedural 720p ms_total <= 22 ms, ms_render <= 10 ms; "
          f"live2d 720p ms_total inside the {budget:.1f} ms frame budget")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    load = round(os.getloadavg()[0], 2)  # other jobs on the machine: absolute numbers scale with this
    RESULTS.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                                   "loadavg_1m": load, "budget_ms": budget, "runs": runs}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
