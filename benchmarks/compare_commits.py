"""This checkout against another commit, interleaved: the frame-loop benchmark and a virtual show.

A noisy machine moves absolute numbers by tens of percent from one minute to the next, so the two
trees run alternately (A B A B ...) and the ratio of their medians is what is reported:

- `loop`: `benchmarks/loop.py` (animate + render + encode per frame, 512x512 and 1280x720);
- `show`: `stagecast run --virtual --duration S` on the default config at 1280x720 without the
  panel: the whole show (chat, director, events, outputs), wall ms per frame from going on air
  ("on air" in the log; "show starting" where a tree has no such line: it loaded everything before
  that line) to "show stopped".

Both trees run with an empty `STAGECAST_CACHE`, so `runtime: auto` draws with the traced program in
both (a compiled program built for one tree's sources would otherwise make the comparison unfair).

    python benchmarks/compare_commits.py --base 1bec503 [--pairs 3] [--frames 300] [--show-seconds 30]
        -> benchmarks/results/compare_commits.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "compare_commits.json"
SHOW_CONFIG = """video: {width: 1280, height: 720}
panel: {enabled: false}
character: {memory: {enabled: false}}
chat:
  sources: [{type: replay, path: %s, loop: true}]
outputs: {recording: {directory: %s}}
"""


CACHE = tempfile.mkdtemp(prefix="stagecast-cache-")


def run_loop(tree: Path, frames: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "STAGECAST_CACHE": CACHE}
    subprocess.run([sys.executable, str(tree / "benchmarks" / "loop.py"), "--frames", str(frames)], cwd=tree,
                   env=env, check=True, capture_output=True, text=True)
    data = json.loads((tree / "benchmarks" / "results" / "loop.json").read_text())
    return {f"{r['width']}x{r['height']}": r["ms_total"] for r in data["runs"]}


def _stamp(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_show(tree: Path, seconds: float) -> float:
    """Wall ms per frame of a virtual show, between its "show starting" and "show stopped" lines."""
    env = {**os.environ, "PYTHONPATH": str(tree), "STAGECAST_CACHE": CACHE}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "show.yaml"
        config.write_text(SHOW_CONFIG % (tree / "configs" / "demo-chat.jsonl", Path(tmp) / "rec"))
        proc = subprocess.run([sys.executable, "-m", "streamer.cli", "run", "-c", str(config), "--virtual",
                               "--duration", str(seconds)], cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    on_air = [_stamp(x) for x in lines if "stagecast.show: on air" in x]
    start = on_air[0] if on_air else next(_stamp(x) for x in lines if "show starting" in x)
    stop_line = next(x for x in lines if "show stopped after" in x)
    frames = int(re.search(r"after (\d+) frames", stop_line).group(1))  # type: ignore[union-attr]
    return (_stamp(stop_line) - start) * 1000 / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--show-seconds", type=float, default=30.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="stagecast-base-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=REPO, check=True,
                   capture_output=True)
    trees = {"base": base, "head": REPO}
    loop: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    show: dict[str, list[float]] = {"base": [], "head": []}
    try:
        for pair in range(args.pairs):
            order = ["base", "head"] if pair % 2 == 0 else ["head", "base"]
            for name in order:
                loop[name].append(run_loop(trees[name], args.frames))
                show[name].append(run_show(trees[name], args.show_seconds))
                print(f"pair {pair + 1} {name}: loop {loop[name][-1]}  show {show[name][-1]:.2f} ms/frame", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    report: dict[str, object] = {"base": args.base, "pairs": args.pairs, "frames": args.frames,
                                 "show_seconds": args.show_seconds, "loadavg_1m": round(os.getloadavg()[0], 2),
                                 "loop_ms_total": loop, "show_ms_per_frame": show, "ratios": {}}
    ratios: dict[str, float] = {}
    for size in loop["head"][0]:
        ratios[f"loop {size}"] = statistics.median(r[size] for r in loop["head"]) / statistics.median(
            r[size] for r in loop["base"])
    ratios["show 1280x720"] = statistics.median(show["head"]) / statistics.median(show["base"])
    report["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    print(f"{'what':<16} {'base ms':>9} {'head ms':>9} {'head/base':>10}")
    for key, ratio in ratios.items():
        if key.startswith("loop"):
            size = key.split()[1]
            b = statistics.median(r[size] for r in loop["base"])
            h = statistics.median(r[size] for r in loop["head"])
        else:
            b, h = statistics.median(show["base"]), statistics.median(show["head"])
        print(f"{key:<16} {b:9.2f} {h:9.2f} {ratio:10.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
