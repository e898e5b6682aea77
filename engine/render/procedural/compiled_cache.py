"""Whether the compiled (torch-inductor) renderer for this character is already built on this machine.

The compiled program draws a 720p frame in about a quarter of the traced program's time, but
building it costs about a minute on 2 cores the first time and 6-9 s from inductor's on-disk cache
after that. `auto` picks it on the CPU only when a build for the same character, size, thread count,
torch, CPU and renderer source finished here before (`stagecast prepare`, or any run with
`runtime: torch-inductor`), so no show start waits a minute unasked. Inductor's kernels and the
markers written here live in the stagecast cache (`cache_dirs`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import torch

from engine.render.procedural.cache_dirs import cache_dir, inductor_cache_dir
from engine.render.procedural.look import CharacterLook
from engine.render.procedural.renderer import ProceduralRenderer

log = logging.getLogger("stagecast.render.compiled")

_HERE = Path(__file__).resolve().parent
# the procedural renderer's code: a change to any of these means a new program
_SOURCES = ("character.py", "renderer.py", "layout.py", "parts.py", "region.py", "expression.py", "palette.py",
            "canvas_ops.py", "frame_pool.py", "look.py", "../../state.py")


def program_key(width: int, height: int, look: CharacterLook, threads: int | None = None) -> str:
    """What a built program depends on; any change means the next build starts cold."""
    code = hashlib.sha256()
    for path in sorted(p for pattern in _SOURCES for p in _HERE.glob(pattern)):
        code.update(path.name.encode() + b"\0" + path.read_bytes())
    blob = json.dumps({
        "size": [width, height],
        "look": look.to_dict(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "compiler": os.environ.get("CXX", "g++"),
        "inductor_cache": str(inductor_cache_dir()),
        "code": code.hexdigest(),
    }, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _marker(key: str) -> Path:
    return cache_dir() / "compiled" / f"{key}.json"


def is_prepared(key: str) -> bool:
    return _marker(key).is_file()


def mark_prepared(key: str, width: int, height: int, build_s: float) -> Path:
    """Record a finished build (written last, atomically: a half-built program is never 'ready')."""
    marker = _marker(key)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"width": width, "height": height, "threads": torch.get_num_threads(),
                               "torch": torch.__version__, "build_s": round(build_s, 1),
                               "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    tmp.replace(marker)
    return marker


def build_compiled(width: int, height: int, look: CharacterLook | None, key: str | None = None) -> ProceduralRenderer:
    """Build the compiled renderer (blocking: seconds from the cache, about a minute cold) and record it."""
    look = look or CharacterLook()
    key = key or program_key(width, height, look)
    log.info("building the compiled renderer for %dx%d (%s): seconds when built before, about a minute if not",
             width, height, "built before" if is_prepared(key) else "first build")
    started = time.perf_counter()
    renderer = ProceduralRenderer(width, height, look, program="inductor")
    build_s = time.perf_counter() - started
    mark_prepared(key, width, height, build_s)
    log.info("compiled renderer ready in %.1f s", build_s)
    return renderer
