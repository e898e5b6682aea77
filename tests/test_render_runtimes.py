"""Render runtimes: tight boxes match the whole-canvas reference, ONNX Runtime matches torch, fallbacks."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.render.procedural.character import ProceduralCharacter
from engine.render.procedural.look import LOOKS
from engine.render.procedural.renderer import ProceduralRenderer
from engine.state import P

pytestmark = pytest.mark.unit


def random_states(n: int, seed: int) -> torch.Tensor:
    """Valid states plus pose extremes (where a part box is most likely to clip)."""
    gen = torch.Generator().manual_seed(seed)
    states = torch.rand(n, P, generator=gen)
    states[:, :3] = states[:, :3] * 2 - 1  # head yaw, pitch, roll in -1..1
    states[:, 6:10] = states[:, 6:10] * 2 - 1  # gaze and brows
    states[: n // 2, :3] = states[: n // 2, :3].sign()
    return states


@pytest.mark.parametrize("look", sorted(LOOKS))
@pytest.mark.parametrize("size", [(320, 180), (90, 160), (256, 256)])
def test_tight_boxes_equal_whole_canvas_reference(look: str, size: tuple[int, int]) -> None:
    """Moving parts drawn in per-state tight boxes give the very pixels of drawing them everywhere."""
    w, h = size
    states = random_states(12, seed=hash(look) % 1000)
    with torch.no_grad():
        fast = ProceduralCharacter(w, h, LOOKS[look]).eval()(states)
        ref = ProceduralCharacter(w, h, LOOKS[look], tight=False).eval()(states)
    assert torch.equal(fast, ref)


def test_traceable_index_path_equals_slice_path() -> None:
    m = ProceduralCharacter(200, 150).eval()
    states = random_states(6, seed=3)
    with torch.no_grad():
        sliced = m(states)
        m.traceable = True
        indexed = m(states)
        exported = ProceduralCharacter(200, 150).eval().for_export()(states)  # drawn in float, cast last
    assert torch.equal(sliced, indexed)
    assert torch.equal(sliced, exported)


@pytest.mark.parametrize("rgba", [False, True])
def test_traced_program_equals_eager_for_every_state(rgba: bool) -> None:
    """The jit-traced program must move boxes per state (no offsets baked in at trace time)."""
    traced = ProceduralRenderer(200, 150)
    eager = ProceduralRenderer(200, 150, program="eager")
    render = (lambda r, s: r.render_rgba(s)) if rgba else (lambda r, s: r.render(s))
    render(traced, random_states(3, seed=11))  # traced at batch 3 with these poses
    for seed in (12, 13):  # other poses through the same traced program
        states = random_states(3, seed=seed)
        assert torch.equal(render(traced, states), render(eager, states))
    one = random_states(1, seed=14)  # batch 1 was traced at construction; rgba traces its own
    assert torch.equal(render(traced, one), render(eager, one))
    assert len(traced._programs) == (3 if rgba else 2)


needs_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch inductor needs a C++ compiler (g++)"
)


@needs_compiler
@pytest.mark.slow
def test_inductor_program_matches_eager_and_is_pure_in_any_batch() -> None:
    """The compiled program moves every box per state, rounds like eager to within one level, and
    gives a state the same bits alone, in a batch, and from inside inference mode (the frame loop's)."""
    eager = ProceduralRenderer(160, 120, program="eager")
    fast = ProceduralRenderer(160, 120, program="inductor")
    states = random_states(6, seed=21)
    singles = torch.cat([fast.render(s[None]) for s in states])
    diff = (singles.int() - eager.render(states).int()).abs()
    assert int(diff.max()) <= 1
    # its float16 canvas rounds each layer to 1/8 of a level near white: a pixel now and then, not as a rule
    assert float((diff > 0).float().mean()) < 1e-2
    assert not torch.equal(singles[0], singles[1])
    assert torch.equal(fast.render(states[:3]), singles[:3])  # batch 3 is its own program: same bits
    with torch.inference_mode():
        assert torch.equal(fast.render(states[3:4]), singles[3:4])
    # Two programs (about a minute each to build on a cold cache) are what CI can afford. RGBA
    # through inductor matched eager within 1/255 when this test also built it (2026-12-01).


def test_auto_uses_the_compiled_program_only_once_it_was_built_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.render.procedural.compiled_cache import is_prepared, mark_prepared, program_key
    from engine.render.procedural.runtimes import select_renderer

    monkeypatch.setenv("STAGECAST_CACHE", str(tmp_path))
    key = program_key(64, 48, LOOKS["default"], threads=1)
    assert key == program_key(64, 48, LOOKS["default"], threads=1)
    others = {program_key(48, 64, LOOKS["default"], threads=1), program_key(64, 48, LOOKS["default"], threads=2)}
    others |= {program_key(64, 48, LOOKS[name], threads=1) for name in LOOKS if name != "default"}
    assert key not in others and len(others) == len(LOOKS) + 1
    with caplog.at_level(logging.INFO):
        r = select_renderer("auto", 64, 48)  # nothing built here: no minute-long build at start
    assert r.program == "trace" and "stagecast prepare" in caplog.text
    assert not is_prepared(key)
    mark_prepared(key, 64, 48, 1.0)
    assert is_prepared(key) and not is_prepared(program_key(64, 48, LOOKS["default"], threads=2))


@needs_compiler
@pytest.mark.slow
@pytest.mark.integration
def test_stagecast_prepare_builds_the_compiled_program_that_auto_then_uses(tmp_path: Path) -> None:
    from engine.render.procedural.cache_dirs import inductor_cache_dir

    config = tmp_path / "small.yaml"
    config.write_text("video: {width: 160, height: 120, fps: 30}\n")
    # a fresh stagecast cache, but inductor's own cache shared with the test above (same program)
    env = {**os.environ, "STAGECAST_CACHE": str(tmp_path / "cache"),
           "TORCHINDUCTOR_CACHE_DIR": str(inductor_cache_dir())}
    cli = [sys.executable, "-m", "streamer.cli"]

    def check() -> str:
        proc = subprocess.run([*cli, "check", "-c", str(config)], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.splitlines()[-1]

    assert "not built" in check()
    proc = subprocess.run([*cli, "prepare", "-c", str(config), "--frames", "5"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert (report["width"], report["height"]) == (160, 120)
    assert report["compiled_ms"] > 0 and report["traced_ms"] > 0 and report["budget_ms"] == pytest.approx(33.33)
    assert "built for this character and size" in check()
    probe = ("from streamer.assembly import configure_torch_threads; configure_torch_threads(); "
             "from engine.render.procedural.runtimes import select_renderer; "
             "print(select_renderer('auto', 160, 120).program)")
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["inductor"], proc.stderr[-3000:]


def test_prepare_says_why_when_there_is_no_compiler(tmp_path: Path) -> None:
    env = {**os.environ, "STAGECAST_CACHE": str(tmp_path), "CXX": "no-such-compiler-c++"}
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "prepare"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "cannot be built here" in proc.stderr and "no-such-compiler-c++" in proc.stderr
    assert not (tmp_path / "compiled").exists()  # nothing marked ready


def test_inductor_without_a_compiler_falls_back_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.render.procedural.runtimes import select_renderer

    monkeypatch.setenv("CXX", "no-such-compiler-c++")
    with caplog.at_level(logging.WARNING):
        r = select_renderer("torch-inductor", 64, 48)
    assert isinstance(r, ProceduralRenderer) and r.program == "trace"
    assert "torch-inductor unavailable" in caplog.text and "no-such-compiler-c++" in caplog.text


needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="onnx, onnxscript and onnxruntime are needed for the export test",
)


@needs_onnx
@pytest.mark.slow
def test_onnxruntime_cpu_matches_torch(tmp_path: Path) -> None:
    from engine.render.procedural.onnx_export import export_onnx
    from engine.render.procedural.runtimes import OnnxRuntimeRenderer

    w, h = 192, 108
    path = export_onnx(w, h, tmp_path / "r.onnx")
    ort = OnnxRuntimeRenderer(w, h, onnx_path=path, providers=["CPUExecutionProvider"], threads=1)
    torch_r = ProceduralRenderer(w, h)
    for batch in (1, 5):  # one file, any batch size
        states = random_states(batch, seed=batch)
        a, b = ort.render(states), torch_r.render(states)
        assert a.shape == (batch, h, w, 3) and a.dtype == torch.uint8
        assert int((a.int() - b.int()).abs().max()) <= 2


def test_select_renderer_falls_back_to_torch_cpu(caplog: pytest.LogCaptureFixture) -> None:
    from engine.render.procedural.runtimes import select_renderer

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the fallback path is not taken")
    with caplog.at_level(logging.INFO):
        r = select_renderer("tensorrt", 64, 48)
    assert isinstance(r, ProceduralRenderer)
    assert "tensorrt unavailable" in caplog.text and "torch-cuda unavailable" in caplog.text
    with pytest.raises(ValueError):
        select_renderer("vulkan", 64, 48)


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not installed (GPU only)")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensorrt_matches_torch(tmp_path: Path) -> None:  # pragma: no cover - needs a GPU
    from engine.render.procedural.runtimes import TensorRTRenderer

    r = TensorRTRenderer(320, 180, engine_dir=tmp_path)
    states = random_states(4, seed=1)
    ref = ProceduralRenderer(320, 180).render(states)
    assert int((r.render(states).int() - ref.int()).abs().max()) <= 2
    again = TensorRTRenderer(320, 180, engine_dir=tmp_path)  # from the engine cache
    assert torch.equal(again.render(states), r.render(states))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("program", ["graphs", "eager"])
def test_torch_cuda_graphs_match_cpu(program: str) -> None:  # pragma: no cover - needs a GPU
    from engine.render.procedural.runtimes import TorchCudaRenderer

    states = random_states(3, seed=2)
    cuda = TorchCudaRenderer(320, 180, program=program)
    a = cuda.render(states)
    b = ProceduralRenderer(320, 180).render(states)
    assert int((a.int() - b.int()).abs().max()) <= 2
    assert torch.equal(cuda.render(random_states(3, seed=5)), cuda.render(random_states(3, seed=5)))
