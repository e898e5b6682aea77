"""Runtimes for the procedural character: ONNX Runtime, native TensorRT, torch CUDA, and the choice.

Every runtime is a `Renderer` (states [B, P] -> frames [B, H, W, 3] uint8 on the CPU) drawing the
same exported graph, so switching runtime never changes the character. `select_renderer` walks
TensorRT -> CUDA -> CPU and logs why each faster option was skipped.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.lifecycle import Lifecycle
from engine.render.procedural.cache_dirs import cache_dir
from engine.render.procedural.character import ProceduralCharacter
from engine.render.procedural.compiled_cache import build_compiled, is_prepared, program_key
from engine.render.procedural.look import CharacterLook
from engine.render.procedural.onnx_export import INPUT, OUTPUT, cached_onnx, onnx_cache_path, sha256_file
from engine.render.procedural.renderer import ProceduralRenderer
from engine.state import P

log = logging.getLogger("stagecast.render.runtimes")

RUNTIMES: tuple[str, ...] = ("auto", "torch", "torch-inductor", "torch-cuda", "onnxruntime", "tensorrt")
FP16_TOLERANCE = 2  # max |diff| per channel (of 255) for an fp16 engine to be kept


def _check(states: torch.Tensor) -> torch.Tensor:
    if states.ndim != 2 or states.shape[1] != P:
        raise ValueError(f"states must be [B, {P}], got {tuple(states.shape)}")
    return states.to(torch.float32)


def ort_providers() -> list[str]:
    """ONNX Runtime providers usable here, best first (TensorRT, CUDA, CPU)."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    order = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    return [p for p in order if p in have]


class OnnxRuntimeRenderer(Lifecycle):
    """The exported graph on ONNX Runtime; providers default to the best available."""

    def __init__(
        self,
        width: int,
        height: int,
        look: CharacterLook | None = None,
        onnx_path: Path | None = None,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.width, self.height = width, height
        self.path = onnx_path or cached_onnx(width, height, look)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.providers = providers or ort_providers()
        self.session = ort.InferenceSession(str(self.path), options, providers=self.providers)
        self.device = "cuda" if self.session.get_providers()[0] != "CPUExecutionProvider" else "cpu"

    def render(self, states: torch.Tensor) -> torch.Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 (CPU)."""
        x = np.ascontiguousarray(_check(states).cpu().numpy())
        (frames,) = self.session.run([OUTPUT], {INPUT: x})
        return torch.from_numpy(frames)


CUDA_PROGRAMS: tuple[str, ...] = ("graphs", "eager", "inductor")


class TorchCudaRenderer(Lifecycle):
    """The torch module on a CUDA device, run one of three ways (`program`):

    * "graphs" (default): eager kernels replayed through one CUDA graph per batch size;
    * "eager": plain module calls, one kernel launch per op (the reference the others are timed against);
    * "inductor": `torch.compile` (Triton kernels for the GPU), replayed through a CUDA graph like "graphs".

    The module is in its export form (`for_export`): index ops that never read offsets back to
    the host, so the whole frame can be captured; the pixels are the CPU program's. Unverified on
    a real GPU until benchmarks/gpu.py has run on one (scripts/gpu-run.sh).
    """

    def __init__(self, width: int, height: int, look: CharacterLook | None = None, graphs: bool = True,
                 program: str | None = None) -> None:
        program = program or ("graphs" if graphs else "eager")
        if program not in CUDA_PROGRAMS:
            raise ValueError(f"unknown CUDA program {program!r}; known: {', '.join(CUDA_PROGRAMS)}")
        self.width, self.height = width, height
        self.device = "cuda"
        self.program = program
        self.module = ProceduralCharacter(width, height, look).eval().for_export().to("cuda")
        self.graphs = program != "eager"
        self._fn: Any = self.module
        if program == "inductor":
            self._fn = torch.compile(self.module, fullgraph=True)
        self._captured: dict[int, tuple[Any, torch.Tensor, torch.Tensor]] = {}

    def prewarm(self) -> None:
        """Capture the live case (one state a frame) now, not on the first frame of a show."""
        if self.graphs:
            self._graph(1)

    def _graph(self, batch: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        if batch not in self._captured:
            static_in = torch.zeros(batch, P, device="cuda")
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.no_grad():
                for _ in range(3):  # warm up allocations (and inductor's compile) outside the capture
                    self._fn(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.no_grad():
                static_out = self._fn(static_in)
            self._captured[batch] = (graph, static_in, static_out)
        return self._captured[batch]

    def render_cuda(self, states: torch.Tensor) -> torch.Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 left on the GPU (a captured program's are overwritten by its
        next replay: copy what you keep)."""
        states = _check(states)
        if not self.graphs:
            with torch.no_grad():
                return self._fn(states.to("cuda"))
        graph, static_in, static_out = self._graph(states.shape[0])
        static_in.copy_(states)
        graph.replay()
        return static_out

    def render(self, states: torch.Tensor) -> torch.Tensor:
        return self.render_cuda(states).cpu()


def tensorrt_engine_path(onnx_path: Path, engine_dir: Path, fp16: bool, max_batch: int) -> Path:
    """Where the engine for this graph, GPU, TensorRT version, precision and batch range is cached."""
    import tensorrt as trt

    gpu = torch.cuda.get_device_name().replace(" ", "_").replace("/", "_")
    key = f"{sha256_file(onnx_path)[:16]}-{gpu}-trt{trt.__version__}-{'fp16' if fp16 else 'fp32'}"
    return engine_dir / f"{key}-b{max_batch}.engine"


def tensorrt_prepared(width: int, height: int, look: CharacterLook | None = None, max_batch: int = 16) -> bool:
    """Whether `stagecast prepare` (or a run with `runtime: tensorrt`) built the engine here already."""
    onnx_path = onnx_cache_path(width, height, look or CharacterLook())
    if not onnx_path.is_file():
        return False
    return tensorrt_engine_path(onnx_path, cache_dir() / "trt", False, max_batch).is_file()


class TensorRTRenderer(Lifecycle):
    """A native TensorRT 10 engine built from the exported ONNX graph, cached on disk.

    UNVERIFIED: written against the documented TensorRT 10 Python API (Builder, OnnxParser,
    named I/O tensors, execute_async_v3); TensorRT cannot be installed on the development
    machine. The engine file is keyed by ONNX sha256 + GPU name + TensorRT version + precision.
    The fp32 engine is built first; fp16 is tried next and kept only if its image stays within
    FP16_TOLERANCE of fp32 (a failed fp16 build keeps the fp32 engine). The choice is recorded
    beside the fp32 engine, so a later start neither rebuilds nor re-tests a rejected fp16.
    `build=False` loads engines only (what `auto` does: `stagecast prepare` builds them).
    """

    def __init__(
        self,
        width: int,
        height: int,
        look: CharacterLook | None = None,
        onnx_path: Path | None = None,
        engine_dir: Path | None = None,
        max_batch: int = 16,
        fp16: bool | None = None,
        build: bool = True,
    ) -> None:
        import tensorrt as trt

        if not torch.cuda.is_available():
            raise RuntimeError("TensorRT needs a CUDA device")
        self.trt = trt
        self.width, self.height = width, height
        self.device = "cuda"
        self.max_batch = max_batch
        self.build = build
        self.onnx_path = onnx_path or cached_onnx(width, height, look)
        self.engine_dir = engine_dir or cache_dir() / "trt"
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine, self.precision = self._choose(fp16)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context")
        log.info("TensorRT engine ready (%s, %s)", self.precision, self.engine_path(self.precision == "fp16"))

    def engine_path(self, fp16: bool) -> Path:
        return tensorrt_engine_path(self.onnx_path, self.engine_dir, fp16, self.max_batch)

    def _choice_path(self) -> Path:
        return self.engine_path(False).with_suffix(".fp16.json")

    def _choose(self, fp16: bool | None) -> tuple[Any, str]:
        """(engine, precision): fp32 always works; fp16 only when asked, or tested and kept."""
        fp32 = self._load_or_build(fp16=False)
        if fp16 is False:
            return fp32, "fp32"
        recorded = json.loads(self._choice_path().read_text()).get("fp16") if self._choice_path().is_file() else None
        if fp16 is None and recorded is not None and recorded != "kept":
            return fp32, "fp32"  # rejected or failed here before: not again at every start
        try:
            half = self._load_or_build(fp16=True)
        except Exception as exc:  # a failed fp16 build must not cost the working fp32 engine
            log.warning("TensorRT fp16 engine unavailable (%s); keeping the fp32 engine", exc)
            if self.build:
                self._record(f"failed: {exc}")
            return fp32, "fp32"
        if fp16 or recorded == "kept":
            return half, "fp16"
        kept = self._within_tolerance(fp32, half)
        self._record("kept" if kept else "rejected")
        return (half, "fp16") if kept else (fp32, "fp32")

    def _record(self, fp16: str) -> None:
        path = self._choice_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"onnx": str(self.onnx_path), "fp16": fp16}))

    def _deserialize(self, blob: bytes, what: str) -> Any:
        engine = self.runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {what}")
        return engine

    def _load_or_build(self, fp16: bool) -> Any:
        path = self.engine_path(fp16)
        if path.exists():
            try:
                return self._deserialize(path.read_bytes(), str(path))
            except RuntimeError:
                if not self.build:
                    raise
                log.warning("cached TensorRT engine %s did not load; rebuilding", path)
        if not self.build:
            raise RuntimeError(f"no TensorRT engine {path.name} built here; `stagecast prepare` builds it")
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(self.onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {self.onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT, (1, P), (1, P), (self.max_batch, P))
        config.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
        engine = self._deserialize(bytes(blob), f"the {'fp16' if fp16 else 'fp32'} engine it just built")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(blob))
        tmp.replace(path)  # only an engine that loaded is cached
        return engine

    def _run(self, engine: Any, context: Any, states: torch.Tensor) -> torch.Tensor:
        batch = states.shape[0]
        if batch > self.max_batch:
            return torch.cat([self._run(engine, context, c) for c in states.split(self.max_batch)])
        x = states.to("cuda", torch.float32).contiguous()
        out = torch.empty(batch, self.height, self.width, 3, dtype=torch.uint8, device="cuda")
        if not context.set_input_shape(INPUT, tuple(x.shape)):
            raise RuntimeError(f"TensorRT rejected input shape {tuple(x.shape)} (profile 1..{self.max_batch})")
        for name, tensor in ((INPUT, x), (OUTPUT, out)):
            if not context.set_tensor_address(name, tensor.data_ptr()):
                raise RuntimeError(f"TensorRT rejected the address of {name!r}")
        stream = torch.cuda.current_stream()
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        stream.synchronize()
        return out.cpu()

    def _within_tolerance(self, fp32: Any, fp16: Any) -> bool:
        gen = torch.Generator().manual_seed(0)
        states = torch.rand(8, P, generator=gen) * 2.0 - 0.5
        a = self._run(fp32, fp32.create_execution_context(), states).int()
        b = self._run(fp16, fp16.create_execution_context(), states).int()
        worst = int((a - b).abs().max())
        log.info("TensorRT fp16 vs fp32: max |diff| %d (tolerance %d)", worst, FP16_TOLERANCE)
        return worst <= FP16_TOLERANCE

    def render(self, states: torch.Tensor) -> torch.Tensor:
        return self._run(self.engine, self.context, _check(states))


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def select_renderer(
    preferred: str = "auto", width: int = 1280, height: int = 720, look: CharacterLook | None = None
) -> Any:
    """The renderer for `preferred` (one of RUNTIMES), falling back TensorRT -> CUDA -> CPU torch.

    "auto" tries every faster option that is ready (TensorRT engines and the compiled CPU program
    only once `stagecast prepare` built them); a named runtime that cannot start also falls back, with
    the reason logged at WARNING (a show keeps running on a lesser runtime rather than not at all).
    """
    if preferred not in RUNTIMES:
        raise ValueError(f"unknown render runtime {preferred!r}; known: {', '.join(RUNTIMES)}")
    cuda = torch.cuda.is_available()
    order = {
        "auto": ["tensorrt?", "torch-cuda", "torch-inductor?", "torch"],
        "tensorrt": ["tensorrt", "torch-cuda", "torch"],
        "torch-cuda": ["torch-cuda", "torch"],
        "onnxruntime": ["onnxruntime", "torch"],
        "torch-inductor": ["torch-inductor", "torch"],
        "torch": ["torch"],
    }[preferred]
    level = logging.INFO if preferred == "auto" else logging.WARNING
    for name in order:
        try:
            if name in ("tensorrt", "tensorrt?"):
                if not cuda:
                    raise RuntimeError("no CUDA device")
                if not _available("tensorrt"):
                    raise RuntimeError("the tensorrt package is not installed")
                if name == "tensorrt?":  # auto: only engines built before (never minutes of building unasked)
                    if not tensorrt_prepared(width, height, look):
                        raise RuntimeError("no engine built for this character and size yet; `stagecast prepare` "
                                           "builds it once")
                    return TensorRTRenderer(width, height, look, build=False)
                return TensorRTRenderer(width, height, look)
            if name == "torch-cuda":
                if not cuda:
                    raise RuntimeError("no CUDA device")
                return TorchCudaRenderer(width, height, look)
            if name == "torch-inductor?":  # auto: only when built here before (never a minute's wait unasked)
                if cuda:
                    raise RuntimeError("a CUDA device is here; inductor's program is for the CPU")
                key = program_key(width, height, look or CharacterLook())
                if not is_prepared(key):
                    raise RuntimeError("not built for this character and size yet; `stagecast prepare` builds "
                                       "it once (about a minute), then it draws in a quarter to a half of the time")
                return build_compiled(width, height, look, key)
            if name == "torch-inductor":
                return build_compiled(width, height, look)
            if name == "onnxruntime":
                if not _available("onnxruntime"):
                    raise RuntimeError("the onnxruntime package is not installed")
                return OnnxRuntimeRenderer(width, height, look)
            return ProceduralRenderer(width, height, look)
        except Exception as exc:  # any failure to start means: try the next runtime
            log.log(level, "render runtime %s unavailable (%s); falling back", name.rstrip("?"), exc)
    raise AssertionError("unreachable: the torch CPU renderer always starts")
