"""Start-up benchmark: `stagecast run` (live, embedded defaults) from launch to a growing recording.

Each run starts the show in a fresh folder, as a newcomer would, and reads:
  * ``on_air_s``: launch -> the "show starting" log line (imports, renderer build, warm-ups);
  * ``first_bytes_s``: launch -> the first bytes of the recording on disk;
  * ``late_first_10s``: late frames among the first 300 (the status line at 10 s of stream);
  * ``late``: late frames after ``--seconds`` of stream (the status line then).

``--renderers traced,compiled`` alternates two starts: "traced" with an empty stagecast cache (what
`runtime: auto` does before `stagecast prepare`), "compiled" with the user's cache, which must hold
the prepared program (`stagecast prepare` first). The show is stopped with SIGINT after its last
status line. Read the spread, not one number.

    python benchmarks/startup.py [--runs 3] [--seconds 10] [--renderers default]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
ROOT = Path(__file__).resolve().parent.parent
STATUS = re.compile(r"stream \d+ s: (\d+) frames, (\d+) late")


def one_run(renderer: str = "default", seconds: int = 10, timeout_s: float = 180.0) -> dict[str, object]:
    """One show from launch to the status line at `seconds` of stream; times in seconds since launch."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if renderer == "traced":
            env["STAGECAST_CACHE"] = str(Path(folder) / "empty-cache")
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "streamer.cli", "run"], cwd=folder, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        seen: dict[str, object] = {"renderer": renderer, "program": None, "on_air_s": None, "first_bytes_s": None,
                                   "late_first_10s": None, "frames_first_10s": None, "late": None, "frames": None}
        status = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "show starting" in line and seen["on_air_s"] is None:
                    seen["on_air_s"] = time.monotonic() - started
                if "compiled renderer ready" in line:
                    seen["program"] = "compiled"
                match = STATUS.search(line)
                if match and seen["late_first_10s"] is None:
                    seen["frames_first_10s"], seen["late_first_10s"] = int(match[1]), int(match[2])
                if match and int(match[1]) >= seconds * 30 - 15 and seen["late"] is None:
                    seen["frames"], seen["late"] = int(match[1]), int(match[2])
                    seen["program"] = seen["program"] or "traced"
                    status.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        recordings = Path(folder) / "recordings"
        try:
            while seen["first_bytes_s"] is None and time.monotonic() - started < timeout_s:
                files = sorted(recordings.glob("stagecast_*.mkv")) if recordings.exists() else []
                if files and files[0].stat().st_size > 0:
                    seen["first_bytes_s"] = time.monotonic() - started
                    break
                time.sleep(0.05)  # polling a file's size: the resolution of this number, 50 ms
            status.wait(max(0.0, timeout_s - (time.monotonic() - started)))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            reader.join(5)
        return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="stream seconds to count late frames over (x10)")
    parser.add_argument("--renderers", default="default", help="comma list of default, traced, compiled")
    args = parser.parse_args()
    kinds = args.renderers.split(",")
    runs = [one_run(kind, args.seconds) for _ in range(args.runs) for kind in kinds]
    print(f"{'run':>4} {'renderer':>9} {'program':>9} {'on air s':>9} {'first bytes s':>14} "
          f"{'late / first 10 s':>18} {'late / all':>14}")
    for i, r in enumerate(runs):
        print(f"{i:>4} {r['renderer']!s:>9} {r['program']!s:>9} {r['on_air_s'] or float('nan'):>9.2f} "
              f"{r['first_bytes_s'] or float('nan'):>14.2f} {r['late_first_10s']!s:>8} / {r['frames_first_10s']!s:<8}"
              f" {r['late']!s:>5} / {r['frames']!s:<6}")
    summary: dict[str, object] = {}
    for kind in kinds:
        firsts = [r["first_bytes_s"] for r in runs if r["renderer"] == kind and r["first_bytes_s"] is not None]
        summary[f"first_bytes_median_s_{kind}"] = statistics.median(firsts) if firsts else None
        print(f"{kind}: median first bytes {summary[f'first_bytes_median_s_{kind}']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                   "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": args.seconds, "runs": runs,
                                   **summary}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
