"""`stagecast export`: write the procedural render graph as ONNX (+ a TensorRT engine when possible)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
from pathlib import Path

from engine.render.procedural.look import LOOKS

log = logging.getLogger("stagecast.cli.export")


def cmd_export(args: argparse.Namespace) -> int:
    """Export, check the file with ONNX Runtime against torch, then build TensorRT if it imports."""
    import torch

    from engine.render.procedural.onnx_export import export_onnx, graph_key, sha256_file
    from engine.render.procedural.renderer import ProceduralRenderer
    from engine.state import P

    look = LOOKS[args.look]
    out_dir = Path(args.out)
    onnx_path = out_dir / f"procedural-{args.width}x{args.height}-{graph_key(args.width, args.height, look)}.onnx"
    export_onnx(args.width, args.height, onnx_path, look)
    report: dict[str, object] = {"onnx": str(onnx_path), "sha256": sha256_file(onnx_path)}
    if importlib.util.find_spec("onnxruntime") is not None:
        from engine.render.procedural.runtimes import OnnxRuntimeRenderer

        states = torch.rand(4, P, generator=torch.Generator().manual_seed(0)) * 2 - 0.5
        ort_frames = OnnxRuntimeRenderer(args.width, args.height, onnx_path=onnx_path,
                                         providers=["CPUExecutionProvider"]).render(states)
        ref = ProceduralRenderer(args.width, args.height, look).render(states)
        report["max_abs_diff_vs_torch"] = int((ort_frames.int() - ref.int()).abs().max())
    if importlib.util.find_spec("tensorrt") is None:
        report["tensorrt"] = "skipped: the tensorrt package is not installed"
    elif not torch.cuda.is_available():
        report["tensorrt"] = "skipped: no CUDA device"
    else:
        from engine.render.procedural.runtimes import TensorRTRenderer

        trt = TensorRTRenderer(args.width, args.height, look, onnx_path=onnx_path, engine_dir=out_dir)
        report["tensorrt"] = str(trt.engine_path(trt.precision == "fp16"))
        report["tensorrt_precision"] = trt.precision
    print(json.dumps(report, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `export` subcommand to the `stagecast` parser."""
    p = subparsers.add_parser("export", help="export the render graph to ONNX (and TensorRT when available)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--look", choices=sorted(LOOKS), default="default", help="built-in look preset")
    p.set_defaults(func=cmd_export)
