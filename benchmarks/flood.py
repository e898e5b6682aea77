"""Ingress flood against a live show: does a flood of chat and wrong panel tokens reach the picture?

A real live-mode Show (1280x720 at 30 fps, recording to a temporary folder so the encoder runs, the
local chat page and the panel attached) runs in this process. After a warm-up, idle windows and flood
windows alternate (`--rounds` of each, `--window` seconds each); in a flood window a separate process
(benchmarks/flood_load.py) sends `--chat-rate` chat POSTs a second to the local chat page and
`--token-rate` panel requests a second carrying a real token id with random secrets (each would cost
one argon2 verification without a budget). Reported side by side: the show's late-frame ratio in the
idle windows and in the flood windows, what the ingress answered (429s are load shed cheaply), the
argon2 verifications the panel did, the CPU the show's own process used (cores: what ingress costs the
interpreter the frame thread lives in), and the load average (the machine may be shared: compare the
ratios of one run, not runs on different days).

    python benchmarks/flood.py [--chat-rate 2000] [--token-rate 200] [--window 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.panel_support import ShowRunner, make_tokens

RESULTS = Path(__file__).resolve().parent / "results" / "flood.json"
HERE = Path(__file__).resolve().parent
NICE_PREFIX: list[str] = []  # ["nice", "-n", N] with --generator-nice: an attacker on another machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def counters(runner: ShowRunner) -> tuple[int, int]:
    status = runner.show.control.status()  # type: ignore[union-attr]
    return status.frames, status.late_frames


def window(runner: ShowRunner, seconds: float, load: list[str] | None) -> dict[str, Any]:
    """One idle (load None) or flood window: frames and late frames counted by the show itself."""
    frames0, late0 = counters(runner)
    load0 = loadavg()
    cpu0, wall0 = time.process_time(), time.monotonic()
    generator: dict[str, Any] | None = None
    if load is None:
        time.sleep(seconds)
    else:
        proc = subprocess.run([*NICE_PREFIX, sys.executable, str(HERE / "flood_load.py"), *load, str(seconds)],
                              capture_output=True, text=True, timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
        generator = json.loads(proc.stdout)
    frames1, late1 = counters(runner)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    frames, late = frames1 - frames0, late1 - late0
    return {"frames": frames, "late": late, "late_ratio": round(late / max(1, frames), 4),
            "show_process_cores": round(cpu, 3),
            "loadavg_start": load0, "loadavg_end": loadavg(), "load": generator}


def run(chat_rate: float, token_rate: float, seconds: float, rounds: int, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stagecast-flood-") as tmp:
        db = Path(tmp) / "panel.db"
        tokens = make_tokens(db)
        chat_port = free_port()
        config = {"video": {"width": 1280, "height": 720, "fps": 30},
                  "outputs": {"recording": {"enabled": True, "directory": str(Path(tmp) / "rec")}},
                  "chat": {"sources": [{"type": "local", "host": "127.0.0.1", "port": chat_port}]}}
        runner = ShowRunner(db, config=config).start()
        logging.getLogger().setLevel(logging.WARNING)  # ShowRunner logs DEBUG for tests; a flood would be costly
        try:
            panel_port = runner.handle.port  # type: ignore[union-attr]
            token_id = tokens["viewer"].split("_")[1]
            time.sleep(warmup)
            load = [str(chat_port), str(chat_rate), str(panel_port), str(token_rate), token_id]
            idle, flood = [], []
            for _ in range(rounds):
                idle.append(window(runner, seconds, None))
                flood.append(window(runner, seconds, load))
            auth = runner.handle.panel.auth  # type: ignore[union-attr]
            verifications, throttled = auth.verifications, auth.throttled
        finally:
            runner.stop()

    def total(windows: list[dict[str, Any]]) -> dict[str, Any]:
        frames = sum(w["frames"] for w in windows)
        late = sum(w["late"] for w in windows)
        cores = sum(w["show_process_cores"] for w in windows) / max(1, len(windows))
        return {"frames": frames, "late": late, "late_pct": round(100 * late / max(1, frames), 2),
                "show_process_cores": round(cores, 3)}

    return {
        "chat_rate_per_s": chat_rate, "token_rate_per_s": token_rate, "window_s": seconds, "rounds": rounds,
        "video": "1280x720@30 live, recording on", "idle": total(idle), "flood": total(flood),
        "panel_argon2_or_db_verifications": verifications, "panel_throttled": throttled,
        "windows": {"idle": idle, "flood": flood},
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
        "generator_nice": NICE_PREFIX[2] if NICE_PREFIX else 0,
        "command": "python benchmarks/flood.py " + " ".join(sys.argv[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-rate", type=float, default=2000)
    parser.add_argument("--token-rate", type=float, default=200)
    parser.add_argument("--window", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--generator-nice", type=int, default=0,
                        help="run the load generator at this nice level (as if it were on another machine)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.generator_nice:
        NICE_PREFIX[:] = ["nice", "-n", str(args.generator_nice)]
    result = run(args.chat_rate, args.token_rate, args.window, args.rounds, args.warmup)
    print(f"{'window':8} {'frames':>7} {'late':>6} {'late %':>7} {'show cores':>10}")
    for name in ("idle", "flood"):
        row = result[name]
        print(f"{name:8} {row['frames']:>7} {row['late']:>6} {row['late_pct']:>7.2f} "
              f"{row['show_process_cores']:>10.2f}")
    for w in result["windows"]["flood"]:
        print("flood load:", json.dumps({k: {kk: v[kk] for kk in ("counts", "achieved_rate", "p50_ms")}
                                         for k, v in w["load"].items() if k in ("chat", "tokens")}))
    print(f"panel verifications: {result['panel_argon2_or_db_verifications']}, "
          f"throttled: {result['panel_throttled']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
