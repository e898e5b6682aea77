"""Output benchmark: encoder cost per frame, the extra cost of each sink, and hub vs bare PyAV.

All runs encode the same synthetic frames (moving gradient + tone) in virtual time. ``bare`` is a
plain PyAV encode of those frames (libx264 + AAC into a null-ish Matroska buffer, same settings);
``hub`` is our OutputHub with the given sinks. ``ratio_vs_bare_encode`` = hub(file) / bare wall
time per frame at the same resolution in the same run (target <= 1.2).

    python benchmarks/outputs.py [--frames 300]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.clock import TimeBase
from streamer.outputs.encoder import AVEncoder, EncoderSettings
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub
from streamer.outputs.rtmp_sink import RtmpSink
from streamer.outputs.udp_sink import UdpSink

RESULTS = Path(__file__).resolve().parent / "results" / "outputs.json"
SIZES = [(1280, 720), (1920, 1080)]
FPS, RATE = 30, 48000


def _frames(w: int, h: int, count: int) -> list[np.ndarray]:
    x = np.arange(w, dtype=np.int32)[None, :]
    y = np.arange(h, dtype=np.int32)[:, None]
    out = []
    for n in range(min(count, 60)):  # 60 distinct pictures, reused: generation is not measured
        rgb = np.empty((h, w, 3), np.uint8)
        rgb[..., 0] = (x + 4 * n) % 256
        rgb[..., 1] = (y + 2 * n) % 256
        rgb[..., 2] = ((x + y) // 2) % 256
        out.append(rgb)
    return out


def _audio(n: int) -> np.ndarray:
    t = (np.arange(RATE // FPS) + n * (RATE // FPS)) / RATE
    return (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def bare_encode(settings: EncoderSettings, frames: list[np.ndarray], count: int) -> float:
    """ms/frame of PyAV alone: same encoder settings, muxed into memory, one thread, no hub."""
    enc = AVEncoder(settings)
    out = av.open(io.BytesIO(), "w", format="matroska")
    video, audio = enc.add_streams(out)
    streams = {0: video, 1: audio}
    t0 = time.perf_counter()
    for n in range(count):
        for p in enc.encode(n, frames[n % len(frames)], _audio(n)):
            p.stream = streams[p.stream_index]
            out.mux_one(p)
    for p in enc.flush():
        p.stream = streams[p.stream_index]
        out.mux_one(p)
    ms = (time.perf_counter() - t0) * 1000 / count
    out.close()
    enc.close()
    return ms


def hub_run(settings: EncoderSettings, frames: list[np.ndarray], count: int, sinks: list) -> float:
    """ms/frame wall time through OutputHub with ``sinks`` (submit + drain + close)."""
    t0 = time.perf_counter()
    with OutputHub(settings, sinks) as hub:
        for n in range(count):
            hub.submit(n, frames[n % len(frames)], _audio(n))
    return (time.perf_counter() - t0) * 1000 / count


class _Nginx:
    """A throw-away nginx-rtmp (no recording) when nginx and the module are installed."""

    MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = root / "nginx.conf"
        conf.write_text(
            f"load_module {self.MODULE};\ndaemon off;\nmaster_process off;\nuser root;\npid {root}/nginx.pid;\n"
            f"error_log {root}/error.log;\nevents {{ worker_connections 64; }}\n"
            f"rtmp {{ server {{ listen 127.0.0.1:{self.port}; application live {{ live on; }} }} }}\n"
        )
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)  # startup poll with a deadline
        raise RuntimeError("nginx did not start")

    @classmethod
    def available(cls) -> bool:
        return shutil.which("nginx") is not None and cls.MODULE.exists()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_size(w: int, h: int, count: int, nginx: _Nginx | None) -> dict:
    settings = EncoderSettings(width=w, height=h, timebase=TimeBase(FPS, RATE))
    frames = _frames(w, h, count)
    hub_run(settings, frames, 30, [])  # warm up x264 / page cache
    row: dict = {"width": w, "height": h, "frames": count}
    row["ms_bare_encode"] = bare_encode(settings, frames, count)
    row["ms_hub_no_sink"] = hub_run(settings, frames, count, [])
    with tempfile.TemporaryDirectory() as tmp:
        row["ms_hub_file"] = hub_run(settings, frames, count, [SegmentedFileSink(tmp)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # a bound, unread port: datagrams are sent for real
        port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            row["ms_hub_file_udp"] = hub_run(settings, frames, count,
                                             [SegmentedFileSink(tmp), UdpSink(f"udp://127.0.0.1:{port}")])
    if nginx is not None:
        with tempfile.TemporaryDirectory() as tmp:
            rtmp = RtmpSink(f"rtmp://127.0.0.1:{nginx.port}/live", "bench", buffer_seconds=count / FPS + 10,
                            drain_seconds=60)
            row["ms_hub_file_udp_rtmp"] = hub_run(
                settings, frames, count,
                [SegmentedFileSink(tmp), UdpSink(f"udp://127.0.0.1:{port}"), rtmp])
    row["extra_ms_file"] = row["ms_hub_file"] - row["ms_hub_no_sink"]
    row["extra_ms_udp"] = row["ms_hub_file_udp"] - row["ms_hub_file"]
    if "ms_hub_file_udp_rtmp" in row:
        row["extra_ms_rtmp"] = row["ms_hub_file_udp_rtmp"] - row["ms_hub_file_udp"]
    row["ratio_vs_bare_encode"] = row["ms_hub_file"] / row["ms_bare_encode"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    nginx = None
    with tempfile.TemporaryDirectory() as root:
        if _Nginx.available():
            nginx = _Nginx(Path(root))
        try:
            rows = [run_size(w, h, args.frames, nginx) for w, h in SIZES]
        finally:
            if nginx is not None:
                nginx.stop()
    cols = ["ms_bare_encode", "ms_hub_no_sink", "ms_hub_file", "extra_ms_udp", "extra_ms_rtmp", "ratio_vs_bare_encode"]
    print(f"{'size':>10} " + " ".join(f"{c:>20}" for c in cols))
    for r in rows:
        print(f"{r['width']}x{r['height']:<5} " + " ".join(f"{r.get(c, float('nan')):20.3f}" for c in cols))
    print("target: ratio_vs_bare_encode <= 1.2 (hub + file sink vs bare PyAV encode+mux, same frames)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "fps": FPS,
        "rtmp": nginx is not None,
        "ratio_vs_bare_encode": max(r["ratio_vs_bare_encode"] for r in rows),
        "runs": rows,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
