"""TensorRTRenderer's decisions, against a stand-in `tensorrt` module (TensorRT cannot be installed here).

What is checked is the renderer's own logic: which engine it keeps, what it caches, what it refuses,
and that `auto` never builds. The real TensorRT API calls stay unverified until a GPU run.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest
import torch

from engine.render.procedural.look import CharacterLook
from engine.render.procedural.onnx_export import onnx_cache_path

pytestmark = pytest.mark.unit


class _Config:
    def __init__(self) -> None:
        self.fp16 = False

    def set_memory_pool_limit(self, pool: object, size: int) -> None:
        pass

    def set_flag(self, flag: str) -> None:
        self.fp16 = flag == "FP16"

    def add_optimization_profile(self, profile: object) -> None:
        pass


class _Profile:
    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        pass


class _Engine:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def create_execution_context(self) -> object:
        return object()


def fake_tensorrt(fail_fp16: bool = False, unloadable: bytes = b"") -> types.ModuleType:
    """A module with the TensorRT 10 names the renderer uses; `builds` counts engine builds by precision."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # found by importlib.util.find_spec
    trt.__version__ = "10.0.0-fake"  # type: ignore[attr-defined]
    builds: list[str] = []

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            pass

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, blob: bytes) -> _Engine | None:
            return None if blob == unloadable else _Engine(blob)

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: object, logger: object) -> None:
            pass

        def parse(self, data: bytes) -> bool:
            return True

    class Builder:
        def __init__(self, logger: object) -> None:
            pass

        def create_network(self, flags: int) -> object:
            return object()

        def create_builder_config(self) -> _Config:
            return _Config()

        def create_optimization_profile(self) -> _Profile:
            return _Profile()

        def build_serialized_network(self, network: object, config: _Config) -> bytes | None:
            builds.append("fp16" if config.fp16 else "fp32")
            if config.fp16 and fail_fp16:
                return None
            return b"fp16-engine" if config.fp16 else b"fp32-engine"

    trt.Logger, trt.Runtime, trt.OnnxParser, trt.Builder = Logger, Runtime, OnnxParser, Builder  # type: ignore[attr-defined]
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16")  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")  # type: ignore[attr-defined]
    trt.builds = builds  # type: ignore[attr-defined]
    return trt


@pytest.fixture
def gpu_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pretend CUDA device and a stagecast cache holding an exported graph for 96x64 (its bytes unread)."""
    monkeypatch.setenv("STAGECAST_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    onnx_path = onnx_cache_path(96, 64, CharacterLook())
    onnx_path.parent.mkdir(parents=True)
    onnx_path.write_bytes(b"not really onnx")
    return onnx_path


def _use(monkeypatch: pytest.MonkeyPatch, trt: types.ModuleType, fp16_close: bool = True) -> None:
    from engine.render.procedural.runtimes import TensorRTRenderer

    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(TensorRTRenderer, "_within_tolerance", lambda self, a, b: fp16_close)


def test_a_failed_fp16_build_keeps_the_fp32_engine_and_is_not_retried(
    gpu_here: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.render.procedural.runtimes import TensorRTRenderer

    trt = fake_tensorrt(fail_fp16=True)
    _use(monkeypatch, trt)
    with caplog.at_level(logging.WARNING):
        r = TensorRTRenderer(96, 64)
    assert r.precision == "fp32" and r.engine.blob == b"fp32-engine"
    assert "keeping the fp32 engine" in caplog.text
    assert r.engine_path(False).is_file() and not r.engine_path(True).exists()
    assert trt.builds == ["fp32", "fp16"]
    again = TensorRTRenderer(96, 64)  # the failure was recorded: neither engine is built again
    assert again.precision == "fp32" and trt.builds == ["fp32", "fp16"]


def test_fp16_is_kept_only_within_tolerance_and_the_choice_is_remembered(
    gpu_here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.render.procedural.runtimes import TensorRTRenderer

    trt = fake_tensorrt()
    _use(monkeypatch, trt, fp16_close=False)
    assert TensorRTRenderer(96, 64).precision == "fp32"
    assert TensorRTRenderer(96, 64).precision == "fp32"  # rejected once: not re-tested at each start
    assert TensorRTRenderer(96, 64, fp16=True).precision == "fp16"  # asked for: used regardless
    assert trt.builds == ["fp32", "fp16"]


def test_an_engine_that_does_not_deserialize_is_an_error_and_is_not_cached(
    gpu_here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.render.procedural.runtimes import TensorRTRenderer

    _use(monkeypatch, fake_tensorrt(unloadable=b"fp32-engine"))
    with pytest.raises(RuntimeError, match="could not deserialize"):
        TensorRTRenderer(96, 64)
    assert not list(gpu_here.parent.glob("trt/*.engine"))


def test_auto_uses_tensorrt_only_once_its_engine_was_built_here(
    gpu_here: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.render.procedural import runtimes

    trt = fake_tensorrt()
    _use(monkeypatch, trt)
    monkeypatch.setattr(runtimes, "_available", lambda module: True)
    monkeypatch.setattr(runtimes, "TorchCudaRenderer", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no GPU")))
    with caplog.at_level(logging.INFO):
        r = runtimes.select_renderer("auto", 96, 64)
    assert not isinstance(r, runtimes.TensorRTRenderer) and trt.builds == []  # nothing built at a show's start
    assert "stagecast prepare" in caplog.text
    assert not runtimes.tensorrt_prepared(96, 64)
    runtimes.TensorRTRenderer(96, 64)  # what `stagecast prepare` does on a GPU machine
    assert runtimes.tensorrt_prepared(96, 64)
    built = list(trt.builds)
    r = runtimes.select_renderer("auto", 96, 64)
    assert isinstance(r, runtimes.TensorRTRenderer) and not r.build and trt.builds == built


def test_prepare_on_a_gpu_builds_the_engine_auto_loads(
    gpu_here: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from engine.render.procedural import runtimes
    from streamer.cli.prepare import cmd_prepare, compiled_status
    from streamer.config import load_config

    config = tmp_path / "small.yaml"
    config.write_text("video: {width: 96, height: 64, fps: 30}\n")
    args = argparse.Namespace(config=config, frames=2)
    if importlib.util.find_spec("tensorrt") is None:  # a CUDA machine without TensorRT: nothing to build
        assert cmd_prepare(args) == 0 and "TensorRT is not installed" in capsys.readouterr().out
    trt = fake_tensorrt()
    _use(monkeypatch, trt)
    monkeypatch.setattr(runtimes.TensorRTRenderer, "render", lambda self, s: torch.zeros(s.shape[0], 64, 96, 3))
    assert "not built" in compiled_status(load_config(config))
    assert cmd_prepare(args) == 0
    out = capsys.readouterr().out
    assert "now draws with the TensorRT engine (fp16)" in out and trt.builds == ["fp32", "fp16"]
    assert "built for this character, size and GPU" in compiled_status(load_config(config))
