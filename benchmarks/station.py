"""Station benchmark: how many live shows a node keeps on time, and what Ray costs against plain processes.

Sections (each a function returning a dict; the JSON merges them, so other sections such as `batch`
stay in benchmarks/results/station.json when one section is rerun):

  * ``live``: N shows as Ray actors on a local one-node Ray (this machine), N = 1, 2, ... at each size;
    every show runs ``--seconds`` of live stream after all are on air; the largest N with 0 late frames
    in every show is the node's capacity at that size. Also the CPU each show used per second of stream.
  * ``overhead``: the same shows as Ray actors and as plain processes (the same `ShowHost` code in a
    `python` child), side by side in one run: CPU seconds per stream second, and the ratio Ray / plain.
  * ``batch``: batch throughput (video seconds rendered per wall second) against the number of Ray
    workers, beside the same scripts rendered one by one in one process (``station_batch.batch_rows``).

    python benchmarks/station.py [--sections live,overhead,batch] [--seconds 20] [--max-shows 4]

Late frames depend on everything else the machine runs; on a shared machine read them as a floor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "station.json"
sys.path.insert(0, str(ROOT))
# Ray reads its auth settings once: one token for the local cluster this benchmark starts
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SIZES = {"720p30": (1280, 720), "256x144": (256, 144)}

def show_data(size: tuple[int, int], folder: Path, name: str) -> dict[str, Any]:
    return {"video": {"width": size[0], "height": size[1], "fps": 30}, "show": {"mode": "live"},
            "chat": {"sources": []}, "listen": {"enabled": False},
            "outputs": {"recording": {"directory": str(folder / name)}}}


def _window(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, Any]:
    b, a = before["show"], after["show"]
    frames = a["frames"] - b["frames"]
    return {"frames": frames, "late": a["late_frames"] - b["late_frames"],
            "cpu_per_stream_s": round((after["host"]["cpu_s"] - before["host"]["cpu_s"]) / max(frames / 30, 1e-9), 3),
            "wall_s": round(seconds, 1)}


def run_ray(runtime: Any, n: int, size: tuple[int, int], seconds: float, folder: Path, tag: str) -> list[dict]:
    from streamer.station.config import parse_station

    names = [f"{tag}{i}" for i in range(n)]
    station = parse_station({"shows": [{"name": x, "config": show_data(size, folder, x), "num_cpus": 0.01}
                                       for x in names]})
    for spec in station.shows:
        runtime.place(spec)
    try:
        for x in names:
            runtime.call(x, "wait_on_air", 300.0, timeout_s=320)
        time.sleep(2.0)  # past the first frames' warm-up
        before = {x: runtime.call(x, "status") for x in names}
        began = time.monotonic()
        time.sleep(seconds)
        after = {x: runtime.call(x, "status") for x in names}
        return [_window(before[x], after[x], time.monotonic() - began) for x in names]
    finally:
        for x in names:
            runtime.remove(x)


def section_live(args: argparse.Namespace) -> dict[str, Any]:
    from streamer.station.runtime import StationRuntime

    runtime = StationRuntime("bench-live", None)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runtime.connect()
        for label, size in SIZES.items():
            runs = []
            capacity = 0
            for n in range(1, args.max_shows + 1):
                shows = run_ray(runtime, n, size, args.seconds, Path(tmp), f"l{label[:3]}{n}x")
                ok = all(s["late"] == 0 for s in shows)
                runs.append({"shows": n, "ok": ok, "per_show": shows})
                print(f"live {label}: {n} show(s): late {[s['late'] for s in shows]}, "
                      f"CPU s per stream s {[s['cpu_per_stream_s'] for s in shows]}", flush=True)
                if not ok:
                    break
                capacity = n
            out[label] = {"shows_with_0_late": capacity, "runs": runs}
    return out


def section_overhead(args: argparse.Namespace) -> dict[str, Any]:
    """Ray actors against plain processes, the same shows and the same host code, one after the other."""
    from streamer.station.runtime import StationRuntime

    n, size = args.overhead_shows, SIZES["256x144"]
    runtime = StationRuntime("bench-overhead", None)
    runtime.connect()
    with tempfile.TemporaryDirectory() as tmp:
        ray_runs = run_ray(runtime, n, size, args.seconds, Path(tmp), "oray")
        plain_runs = plain(n, size, args.seconds, Path(tmp), "oplain")
    ray_cpu = sum(r["cpu_per_stream_s"] for r in ray_runs) / n
    plain_cpu = sum(r["cpu_per_stream_s"] for r in plain_runs) / n
    print(f"overhead: {n} show(s) at 256x144: Ray {ray_cpu:.3f} vs plain {plain_cpu:.3f} CPU s per stream s "
          f"(ratio {ray_cpu / plain_cpu:.2f})", flush=True)
    return {"shows": n, "size": "256x144", "ray": ray_runs, "plain": plain_runs,
            "ray_cpu_per_stream_s": round(ray_cpu, 3), "plain_cpu_per_stream_s": round(plain_cpu, 3),
            "ratio": round(ray_cpu / plain_cpu, 3)}


def plain(n: int, size: tuple[int, int], seconds: float, folder: Path, tag: str) -> list[dict]:
    """The shows as plain child processes: each prints its status on air, then again when asked."""
    children = []
    for i in range(n):
        data = {"shows": [{"name": f"{tag}{i}", "config": show_data(size, folder, f"{tag}{i}")}]}
        children.append(subprocess.Popen([sys.executable, "-c", PLAIN_CHILD_WINDOW, json.dumps(data)], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for c in children:
            assert c.stdout is not None
            json.loads(c.stdout.readline())  # on air
        time.sleep(2.0)
        before = [_ask(c) for c in children]
        began = time.monotonic()
        time.sleep(seconds)
        after = [_ask(c) for c in children]
        return [_window(b, a, time.monotonic() - began) for b, a in zip(before, after, strict=True)]
    finally:
        for c in children:
            if c.stdin is not None:
                c.stdin.close()
            try:
                c.wait(30)
            except subprocess.TimeoutExpired:
                c.kill()


PLAIN_CHILD_WINDOW = """
import json, sys
from streamer.station.config import parse_station
from streamer.station.host import ShowHost
host = ShowHost(parse_station(json.loads(sys.argv[1])).shows[0])
host.wait_on_air(300)
print(json.dumps(host.status()), flush=True)
for line in sys.stdin:
    print(json.dumps(host.status()), flush=True)
host.stop()
"""


def _ask(child: subprocess.Popen[str]) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("status\n")
    child.stdin.flush()
    return dict(json.loads(child.stdout.readline()))


def section_batch(args: argparse.Namespace) -> dict[str, Any]:
    """Batch throughput against the number of workers, every run checked against the local hashes."""
    from benchmarks.station_batch import batch_rows

    workers = tuple(range(1, (os.cpu_count() or 1) + 1))
    return {"rows": batch_rows(workers)}


SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "live": section_live,
    "overhead": section_overhead,
    "batch": section_batch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="live,overhead,batch", help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="stream seconds measured per run")
    parser.add_argument("--max-shows", type=int, default=4)
    parser.add_argument("--overhead-shows", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sections.split(","):
        results[name] = SECTIONS[name](args)
        results[name]["measured"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_avg_at_end": os.getloadavg()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
