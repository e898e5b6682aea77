"""GPU benchmark: the accelerated render path measured in one unattended run on a CUDA machine.

Writes benchmarks/results/gpu.json and prints a table. What it measures, each part (a "section") in
its own process with its own time limit, so a hang or a crash costs that part only:

* `render-720p`, `render-1080p`: the procedural renderer on CUDA, batch 1, 8 and 64, eager and CUDA
  graphs: ms per batch with the frames left on the GPU and with them copied to the host, fps, and
  "720p30 characters per GPU" (fps / 30) at the best batch; and each runtime's pixel agreement with
  the CPU program (the traced torch program `runtime: torch` draws with) on the same states, as the
  max |difference| per channel and the share of pixels that differ at all;
* `inductor-720p`, `inductor-1080p`: the same for torch.compile (inductor, Triton kernels), replayed
  through CUDA graphs; last, as its compile time is the least predictable;
* `onnxruntime`: ONNX Runtime with the CUDA execution provider, when the installed onnxruntime has it;
* `live2d`: the Live2D test model drawn through EGL (on the NVIDIA driver there), ms per 720p frame;
* `loop`: `stagecast run --virtual` for 60 s of stream on the torch-cuda runtime: speed x real time;
* `encoders`: how many 720p30 shows the CPU can encode at once with PyAV's x264 (the show's own
  encoder settings): N encoders side by side, each must keep 30 fps; N doubles until one falls behind,
  then bisects.

TensorRT is not measured: it cannot be installed on the GPU machine (no network, no wheel that fits
what travels), and its runtime is written against TensorRT 10's documented API and unverified.

Without a CUDA device it says so and exits 0 without touching the results. `--rehearse` runs every
section on this CPU at small sizes (results to a temporary file), so the GPU run's code paths have
run before any GPU time is spent.

    python benchmarks/gpu.py [--budget-s 420] [--out benchmarks/results/gpu.json] [--rehearse]
                             [--sections render-720p,loop,...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/render.py: before torch loads OpenMP

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
FPS = 30
# what `pip download` reported for the newest onnxruntime-gpu cp312 manylinux wheel (2026-12-04)
ORT_GPU_WHEEL = "onnxruntime-gpu 1.31.1 (cp312, manylinux_2_28): 255.6 MB"
TRAVEL_LIMIT = "64 MiB"

# name -> (seconds it may take at most on the GPU machine, what it needs)
SECTIONS: dict[str, int] = {
    "render-720p": 90,
    "render-1080p": 120,
    "live2d": 60,
    "loop": 150,
    "encoders": 120,
    "onnxruntime": 90,
    "inductor-720p": 240,
    "inductor-1080p": 240,
}


# -- shared ------------------------------------------------------------------------------------


def agreement_states(n: int = 8) -> Any:
    """Valid states plus pose extremes (where a part box is most likely to clip), fixed by a seed."""
    import torch

    from engine.state import P

    gen = torch.Generator().manual_seed(15)
    states = torch.rand(n, P, generator=gen)
    states[:, :3] = states[:, :3] * 2 - 1  # head yaw, pitch, roll in -1..1
    states[:, 6:10] = states[:, 6:10] * 2 - 1  # gaze and brows
    states[: n // 2, :3] = states[: n // 2, :3].sign()
    return states


def timing_states(batch: int) -> Any:
    from benchmarks.render import states_for

    return states_for(batch)


def agreement(frames: Any, reference: Any) -> dict[str, Any]:
    """Max |difference| per channel (of 255) and the share of pixels that differ, against the CPU program."""
    diff = (frames.int() - reference.int()).abs()
    return {"max_abs_diff_rgb": [int(diff[..., c].max()) for c in range(diff.shape[-1])],
            "pixels_differing": round(float((diff.amax(dim=-1) > 0).float().mean()), 6)}


def time_batches(run: Callable[[], Any], sync: Callable[[], None], target_s: float = 0.25) -> float:
    """Median ms per call over 5 blocks of calls, each block timed between two syncs (~target_s each)."""
    for _ in range(3):
        run()
    sync()
    t0 = time.perf_counter()
    run()
    sync()
    one = max(time.perf_counter() - t0, 1e-5)
    calls = max(1, min(200, int(target_s / one)))
    blocks = []
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            run()
        sync()
        blocks.append((time.perf_counter() - t0) * 1000 / calls)
    return statistics.median(blocks)


# -- sections ----------------------------------------------------------------------------------


def section_render(cfg: dict[str, Any]) -> dict[str, Any]:
    """Every runtime in cfg["programs"] at one size: timing per batch and agreement with the CPU program."""
    import torch

    from engine.render.procedural.renderer import ProceduralRenderer

    w, h = cfg["size"]
    device = cfg["device"]
    cpu = ProceduralRenderer(w, h)  # the traced CPU program: `runtime: torch`
    ref_states = agreement_states()
    reference = cpu.render(ref_states)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for program in cfg["programs"]:
        started = time.perf_counter()
        try:
            renderer = _gpu_renderer(device, w, h, program)
            match = agreement(renderer.render(ref_states), reference)
        except Exception as exc:  # one runtime failing to start is a result, not the end of the section
            rows.append({"runtime": program, "width": w, "height": h, "error": f"{type(exc).__name__}: {exc}"})
            continue
        setup_s = round(time.perf_counter() - started, 1)
        for batch in cfg["batches"]:
            states = timing_states(batch)
            try:
                ms_gpu = time_batches(lambda s=states, r=renderer: r.render_device(s), sync)
                ms_host = time_batches(lambda s=states, r=renderer: r.render(s), sync)
            except Exception as exc:  # out of memory at batch 64, say: keep the smaller batches' rows
                rows.append({"runtime": program, "width": w, "height": h, "batch": batch,
                             "error": f"{type(exc).__name__}: {exc}"[:500]})
                continue
            rows.append({"runtime": program, "device": device, "width": w, "height": h, "batch": batch,
                         "ms_batch": round(ms_gpu, 3), "fps": round(batch * 1000 / ms_gpu, 1),
                         "ms_batch_to_host": round(ms_host, 3), "fps_to_host": round(batch * 1000 / ms_host, 1),
                         "setup_s": setup_s, **match})
            print(f"  {program:<9} {w}x{h} batch {batch:>3}: {ms_gpu:8.3f} ms ({batch * 1000 / ms_gpu:9.1f} fps), "
                  f"to host {ms_host:8.3f} ms, max diff {match['max_abs_diff_rgb']}", flush=True)
        renderer = None  # its CUDA graphs' memory goes back before the next runtime captures its own
        if device == "cuda":
            torch.cuda.empty_cache()
    return {"rows": rows}


class _CpuStandIn:
    """The rehearsal's stand-in for TorchCudaRenderer: the same export-form module, eager on the CPU."""

    def __init__(self, width: int, height: int) -> None:
        from engine.render.procedural.character import ProceduralCharacter

        self.module = ProceduralCharacter(width, height).eval().for_export()

    def render_device(self, states: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.module(states)

    def render(self, states: Any) -> Any:
        return self.render_device(states)


def _gpu_renderer(device: str, w: int, h: int, program: str) -> Any:
    if device == "cpu":
        if program != "eager":
            raise RuntimeError(f"rehearsal: {program} needs CUDA")
        return _CpuStandIn(w, h)
    from engine.render.procedural.runtimes import TorchCudaRenderer

    r = TorchCudaRenderer(w, h, program=program)
    r.render_device = r.render_cuda  # type: ignore[attr-defined]
    return r


def section_onnxruntime(cfg: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime as ort

    from engine.render.procedural.renderer import ProceduralRenderer
    from engine.render.procedural.runtimes import OnnxRuntimeRenderer

    providers = ort.get_available_providers()
    provider = "CPUExecutionProvider" if cfg["device"] == "cpu" else "CUDAExecutionProvider"
    if provider not in providers:
        return {"skipped": f"onnxruntime {ort.__version__} here has {providers}, no CUDA provider: that takes "
                           f"onnxruntime-gpu, and its wheel ({ORT_GPU_WHEEL}) is over the {TRAVEL_LIMIT} "
                           "that travels with the tree to the GPU machine"}
    w, h = cfg["size"]
    started = time.perf_counter()
    renderer = OnnxRuntimeRenderer(w, h, providers=[provider])
    setup_s = round(time.perf_counter() - started, 1)
    match = agreement(renderer.render(agreement_states()), ProceduralRenderer(w, h).render(agreement_states()))
    rows = []
    for batch in cfg["batches"]:
        states = timing_states(batch)
        ms = time_batches(lambda s=states: renderer.render(s), lambda: None)
        rows.append({"runtime": f"onnxruntime ({provider})", "width": w, "height": h, "batch": batch,
                     "ms_batch_to_host": round(ms, 3), "fps_to_host": round(batch * 1000 / ms, 1),
                     "setup_s": setup_s, **match})
    return {"rows": rows, "onnxruntime": ort.__version__}


def section_live2d(cfg: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.live2d_model import EXPRESSIONS, cached_model, live2d_unavailable
    from benchmarks.render import states_for
    from engine.render.live2d.renderer import Live2DRenderer, Live2DSettings

    why = live2d_unavailable()
    if why:
        return {"skipped": why}
    w, h = 1280, 720
    renderer = Live2DRenderer(w, h, Live2DSettings(model=cached_model(), expressions=EXPRESSIONS))
    renderer.open()
    try:
        states = [states_for(1) for _ in range(3)]
        for s in states:
            renderer.render(s)
        ms = time_batches(lambda: renderer.render(states[0]), lambda: None, target_s=1.0)
        info = renderer.info
        return {"width": w, "height": h, "ms_frame": round(ms, 3), "fps": round(1000 / ms, 1),
                "gl_renderer": info.get("gl_renderer"), "gl_version": info.get("gl_version"),
                "egl_version": info.get("egl_version"), "shader": info.get("shader")}
    finally:
        renderer.close()


CHAT = [  # English only: the GPU machine carries no Japanese reader (pyopenjtalk) nor lingua's models
    {"t": 1.0, "user": "alex", "text": "Hello! How is the stream going today?"},
    {"t": 9.0, "user": "sam", "text": "What is your favourite colour?"},
    {"t": 18.0, "user": "kim", "text": "Can you tell us a short story?"},
    {"t": 30.0, "user": "lee", "text": "That was great, thank you!"},
]


def section_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    """`stagecast run --virtual` as a user would start it; speed = stream seconds / wall seconds on air."""
    import av

    seconds = cfg["seconds"]
    with tempfile.TemporaryDirectory() as tmp:
        chat = Path(tmp) / "chat.jsonl"
        chat.write_text("".join(json.dumps(line) + "\n" for line in CHAT))
        config = Path(tmp) / "show.yaml"
        config.write_text(json.dumps({  # JSON is YAML
            "video": {"width": 1280, "height": 720, "fps": FPS},
            "character": {"runtime": cfg["runtime"], "voices": {"en": "en-us"}},  # no Japanese reader travels
            "chat": {"sources": [{"type": "replay", "path": str(chat), "loop": True}]},
            "panel": {"enabled": False},
            "outputs": {"recording": {"enabled": True, "directory": str(Path(tmp) / "rec")}},
        }))
        cmd = [sys.executable, "-m", "streamer.cli", "run", "-c", str(config), "--virtual", "--duration", str(seconds)]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp)
        marks: dict[str, float] = {}
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip())
                if "show starting" in line:
                    marks.setdefault("on_air", time.perf_counter())
                if "render runtime" in line or "TorchCuda" in line:
                    marks.setdefault("runtime_line", time.perf_counter())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        code = proc.wait(timeout=cfg.get("timeout_s", 600))
        ended = time.perf_counter()
        reader.join(5)
        recordings = sorted((Path(tmp) / "rec").glob("*"))
        frames = 0
        for rec in recordings:
            with av.open(str(rec)) as container:
                frames += sum(1 for p in container.demux(video=0) if p.size)
        on_air = marks.get("on_air", started)
        result = {"runtime": cfg["runtime"], "stream_s": seconds, "exit_code": code,
                  "startup_s": round(on_air - started, 2), "on_air_wall_s": round(ended - on_air, 2),
                  "speed_x_realtime": round(seconds / max(ended - on_air, 1e-3), 2),
                  "speed_x_realtime_with_startup": round(seconds / (ended - started), 2),
                  "frames_recorded": frames, "frames_expected": seconds * FPS,
                  "log_tail": [ln for ln in lines if " WARNING " in ln or " ERROR " in ln][-8:] + lines[-4:]}
        if code != 0:
            result["error"] = f"stagecast run exited {code}"
        return result


def _encode_worker(frames_file: str, seconds: float, start_at: float, out: str) -> None:
    """One show's encoder: the show's settings, frames round robin from a shared file, as fast as it can."""
    import numpy as np

    from engine.clock import TimeBase
    from streamer.outputs.encoder import AVEncoder, EncoderSettings

    frames = np.load(frames_file, mmap_mode="r")
    enc = AVEncoder(EncoderSettings(width=frames.shape[2], height=frames.shape[1], timebase=TimeBase(FPS, 48000)))
    audio = np.zeros(48000 // FPS, dtype=np.float32)
    enc.encode(0, np.ascontiguousarray(frames[0]), audio)
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    n = 1
    while time.perf_counter() - t0 < seconds:
        enc.encode(n, np.ascontiguousarray(frames[n % len(frames)]), audio)
        n += 1
    elapsed = time.perf_counter() - t0
    enc.flush()
    enc.close()
    Path(out).write_text(json.dumps({"frames": n - 1, "fps": (n - 1) / elapsed}))


def section_encoders(cfg: dict[str, Any]) -> dict[str, Any]:
    """The most 720p30 encoders that keep 30 fps each when all run at once."""
    import numpy as np
    import torch

    from engine.render.procedural.renderer import ProceduralRenderer

    w, h = cfg["size"]
    renderer = ProceduralRenderer(w, h)  # real frames (x264's cost depends on the picture), drawn once
    frames = torch.cat([renderer.render(timing_states(10)) for _ in range(cfg["pictures"] // 10)]).numpy()
    deadline = time.monotonic() + cfg["budget_s"]
    trials: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        frames_file = str(Path(tmp) / "frames.npy")
        np.save(frames_file, frames)

        def trial(n: int) -> bool:
            start_at = time.time() + cfg["startup_s"]
            outs = [str(Path(tmp) / f"enc{n}-{i}.json") for i in range(n)]
            code = f"from benchmarks.gpu import _encode_worker as w; import sys; w(*sys.argv[1:2], {cfg['seconds']}, " \
                   f"{start_at}, sys.argv[2])"
            procs = [subprocess.Popen([sys.executable, "-c", code, frames_file, out], cwd=ROOT) for out in outs]
            for p in procs:
                p.wait(timeout=cfg["seconds"] + cfg["startup_s"] + 60)
            fps = [json.loads(Path(o).read_text())["fps"] if Path(o).exists() else 0.0 for o in outs]
            ok = min(fps) >= FPS
            trials.append({"encoders": n, "min_fps": round(min(fps), 1), "median_fps": round(statistics.median(fps), 1),
                           "keeps_up": ok})
            print(f"  {n:>3} encoders: min {min(fps):6.1f} fps, median {statistics.median(fps):6.1f} fps "
                  f"-> {'keeps up' if ok else 'falls behind'}", flush=True)
            return ok

        good, bad = 0, None
        n = 1
        while n <= cfg["max_encoders"] and time.monotonic() < deadline:
            if not trial(n):
                bad = n
                break
            good = n
            n *= 2
        while bad is not None and bad - good > 1 and time.monotonic() < deadline:
            mid = (good + bad) // 2
            if trial(mid):
                good = mid
            else:
                bad = mid
    return {"width": w, "height": h, "fps_needed": FPS, "seconds_per_trial": cfg["seconds"],
            "shows_encoded_at_once": good, "first_that_fell_behind": bad, "cpus": os.cpu_count(),
            "search_complete": bad is None or bad - good <= 1, "trials": trials}


SECTION_FUNCS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "render": section_render, "onnxruntime": section_onnxruntime, "live2d": section_live2d,
    "loop": section_loop, "encoders": section_encoders,
}


def plan(rehearse: bool) -> dict[str, tuple[str, dict[str, Any], int]]:
    """section name -> (function, its settings, its time limit in seconds)."""
    device = "cpu" if rehearse else "cuda"
    if rehearse:
        small, batches = (160, 96), [1, 2]
        return {
            "render-720p": ("render", {"device": device, "size": small, "batches": batches,
                                       "programs": ["eager", "graphs"]}, 120),
            "live2d": ("live2d", {}, 120),
            "loop": ("loop", {"seconds": 4, "runtime": "torch", "timeout_s": 240}, 260),
            "encoders": ("encoders", {"size": (320, 180), "pictures": 10, "seconds": 1.0, "startup_s": 4.0,
                                      "max_encoders": 2, "budget_s": 60}, 120),
            "onnxruntime": ("onnxruntime", {"device": device, "size": small, "batches": batches}, 300),
            "inductor-720p": ("render", {"device": device, "size": small, "batches": batches,
                                         "programs": ["inductor"]}, 60),
        }
    batches = [1, 8, 64]
    return {
        "render-720p": ("render", {"device": device, "size": (1280, 720), "batches": batches,
                                   "programs": ["eager", "graphs"]}, SECTIONS["render-720p"]),
        "render-1080p": ("render", {"device": device, "size": (1920, 1080), "batches": batches,
                                    "programs": ["eager", "graphs"]}, SECTIONS["render-1080p"]),
        "live2d": ("live2d", {}, SECTIONS["live2d"]),
        "loop": ("loop", {"seconds": 60, "runtime": "torch-cuda", "timeout_s": SECTIONS["loop"] - 10},
                 SECTIONS["loop"]),
        "encoders": ("encoders", {"size": (1280, 720), "pictures": 30, "seconds": 2.5, "startup_s": 4.0,
                                  "max_encoders": 128, "budget_s": SECTIONS["encoders"] - 15}, SECTIONS["encoders"]),
        "onnxruntime": ("onnxruntime", {"device": device, "size": (1280, 720), "batches": [1, 8]},
                        SECTIONS["onnxruntime"]),
        "inductor-720p": ("render", {"device": device, "size": (1280, 720), "batches": batches,
                                     "programs": ["inductor"]}, SECTIONS["inductor-720p"]),
        "inductor-1080p": ("render", {"device": device, "size": (1920, 1080), "batches": batches,
                                      "programs": ["inductor"]}, SECTIONS["inductor-1080p"]),
    }


def run_section(name: str, func: str, cfg: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """Run one section in a child process (its own CUDA context, its own crash) within limit_s."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "section.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--section", func, "--section-config", json.dumps(cfg),
               "--section-out", str(out)]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, timeout=limit_s, stdout=sys.stdout, stderr=subprocess.PIPE,
                                  text=True)
        except subprocess.TimeoutExpired:
            return {"skipped": f"stopped at its time limit ({limit_s:.0f} s)", "wall_s": round(limit_s, 1)}
        wall = round(time.perf_counter() - started, 1)
        if proc.returncode != 0 or not out.exists():
            return {"error": f"exited {proc.returncode}", "stderr_tail": proc.stderr[-1500:], "wall_s": wall}
        return {**json.loads(out.read_text()), "wall_s": wall}


def environment() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
                            "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count(),
                            "machine": platform.machine()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["driver"] = None
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return info


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The headline: 720p30 characters per GPU (fps / 30) at each runtime's best batch."""
    best: dict[str, Any] = {}
    for name, section in results.items():
        for row in section.get("rows", []):
            if "fps" not in row or (row["width"], row["height"]) != (1280, 720):
                continue
            if row["runtime"] not in best or row["fps"] > best[row["runtime"]]["fps"]:
                best[row["runtime"]] = {"batch": row["batch"], "fps": row["fps"],
                                        "characters_720p30": round(row["fps"] / FPS, 1),
                                        "characters_720p30_to_host": round(row["fps_to_host"] / FPS, 1),
                                        "section": name}
    return best


def table(results: dict[str, Any]) -> str:
    lines = [f"{'runtime':<10} {'size':>9} {'batch':>5} {'ms/batch':>9} {'fps':>9} {'to host ms':>10} "
             f"{'fps':>9} {'max diff rgb':>14} {'differ':>8}"]
    for section in results.values():
        for row in section.get("rows", []):
            size = f"{row['width']}x{row['height']}"
            if "error" in row:
                lines.append(f"{row['runtime']:<10} {size:>9} {row.get('batch', ''):>5} error: {row['error'][:80]}")
                continue
            ms = row.get("ms_batch")
            lines.append(f"{row['runtime'][:10]:<10} {size:>9} {row['batch']:>5} "
                         f"{(f'{ms:.3f}' if ms is not None else '-'):>9} {row.get('fps', '-'):>9} "
                         f"{row['ms_batch_to_host']:>10.3f} {row['fps_to_host']:>9} "
                         f"{row['max_abs_diff_rgb']!s:>14} {row['pixels_differing']:>8.4f}")
    for runtime, best in results.get("summary", {}).items():
        lines.append(f"720p30 characters per GPU, {runtime}: {best['characters_720p30']} at batch {best['batch']} "
                     f"({best['characters_720p30_to_host']} with frames copied to the host)")
    for name in ("live2d", "loop", "encoders", "onnxruntime", "tensorrt"):
        section = results.get(name)
        if not section:
            continue  # not run this time (--sections)
        if "skipped" in section or "error" in section:
            lines.append(f"{name}: {section.get('skipped') or section.get('error')}")
        elif name == "live2d":
            lines.append(f"live2d 1280x720: {section['ms_frame']} ms a frame on {section['gl_renderer']}")
        elif name == "loop":
            lines.append(f"stagecast run --virtual ({section['runtime']}): {section['speed_x_realtime']}x real time "
                         f"on air, start {section['startup_s']} s, {section['frames_recorded']}/"
                         f"{section['frames_expected']} frames recorded")
        elif name == "encoders":
            lines.append(f"720p30 shows encoded at once (x264, {section['cpus']} CPUs): "
                         f"{section['shows_encoded_at_once']}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting sections after this many seconds")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/gpu.json "
                                                           "(a temporary file with --rehearse)")
    ap.add_argument("--rehearse", action="store_true", help="every section on the CPU at small sizes")
    ap.add_argument("--sections", default="", help="only these sections, comma-separated")
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("--section-config", help=argparse.SUPPRESS)
    ap.add_argument("--section-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.section:
        result = SECTION_FUNCS[args.section](json.loads(args.section_config))
        Path(args.section_out).write_text(json.dumps(result))
        return 0

    import torch

    if not torch.cuda.is_available() and not args.rehearse:
        print("no CUDA device here: the GPU benchmark measures nothing and skips (exit 0); "
              f"{RESULTS.relative_to(ROOT)} is left as it is. `--rehearse` runs every section on this CPU.")
        return 0
    out = args.out or (Path(tempfile.gettempdir()) / "stagecast-gpu-rehearsal.json" if args.rehearse else RESULTS)
    only = set(filter(None, args.sections.split(",")))
    started = time.monotonic()
    results: dict[str, Any] = {"meta": {**environment(), "rehearsal": args.rehearse, "budget_s": args.budget_s}}
    print(json.dumps(results["meta"]), flush=True)
    for name, (func, cfg, limit) in plan(args.rehearse).items():
        if only and name not in only:
            continue
        left = args.budget_s - (time.monotonic() - started)
        if left < 20:
            results[name] = {"skipped": f"the run's time budget ({args.budget_s:.0f} s) was spent before it"}
            continue
        print(f"[{time.monotonic() - started:6.1f} s] {name} (at most {min(limit, left):.0f} s)", flush=True)
        results[name] = run_section(name, func, cfg, min(limit, left))
        if "skipped" in results[name] or "error" in results[name]:
            print(f"  {name}: {results[name].get('skipped') or results[name].get('error')}", flush=True)
    results["tensorrt"] = {"skipped": "TensorRT is not installed on the GPU machine (no network; no wheel that fits "
                                      f"the {TRAVEL_LIMIT} that travels): its runtime is written against TensorRT "
                                      "10's documented API and unverified"}
    results["summary"] = summary(results)
    results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
