"""Export the procedural render graph to ONNX (dynamic batch) for ONNX Runtime and TensorRT.

The graph is `ProceduralCharacter.for_export()`: moving parts are gathered and scattered by flat
int64 indices (Gather / ScatterElements), so the file has no data-dependent control flow and one
file serves every batch size; everything is drawn in float and cast to uint8 by the last node, the
form TensorRT 10's ONNX parser takes (tests/test_onnx_tensorrt.py checks every node against its
documented operator support). Width, height and look are baked in (they are constants of the
program); the file name carries a key of all three so a cache never serves a stale picture.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from engine.render.procedural.cache_dirs import cache_dir
from engine.render.procedural.character import ProceduralCharacter
from engine.render.procedural.look import CharacterLook
from engine.state import P, neutral_state

log = logging.getLogger("stagecast.render.onnx")

INPUT, OUTPUT = "states", "frames"
OPSET = 18
GRAPH_VERSION = 2  # bump when the drawing code changes, to invalidate cached exports


def graph_key(width: int, height: int, look: CharacterLook) -> str:
    """Short stable key of what the graph draws: resolution, look and graph version."""
    blob = json.dumps([GRAPH_VERSION, width, height, look.to_dict()], sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(width: int, height: int, out: Path, look: CharacterLook | None = None) -> Path:
    """Write the render graph for (width, height, look) to `out` (a .onnx file); returns the path.

    Needs the `onnx` and `onnxscript` packages (torch's dynamo exporter). Takes tens of seconds.
    """
    look = look or CharacterLook()
    module = ProceduralCharacter(width, height, look).eval().for_export()
    example = torch.stack([neutral_state(), neutral_state()])
    batch = torch.export.Dim("batch", min=1, max=256)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"states": {0: batch}},
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    tmp = out.with_suffix(".tmp.onnx")
    program.save(str(tmp))
    tmp.replace(out)  # atomic: a concurrent reader never sees half a file
    log.info("exported render graph %dx%d (P=%d) to %s", width, height, P, out)
    return out


def onnx_cache_path(width: int, height: int, look: CharacterLook, directory: Path | None = None) -> Path:
    """Where the exported graph for these settings is cached (it may not be there yet)."""
    return (directory or cache_dir()) / f"procedural-{width}x{height}-{graph_key(width, height, look)}.onnx"


def cached_onnx(width: int, height: int, look: CharacterLook | None = None, directory: Path | None = None) -> Path:
    """The exported graph for these settings, exporting it once into the cache when missing."""
    path = onnx_cache_path(width, height, look or CharacterLook(), directory)
    if not path.exists():
        export_onnx(width, height, path, look or CharacterLook())
    return path
