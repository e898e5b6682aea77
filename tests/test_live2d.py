"""The `live2d` appearance: parameter mapping and model checks (always), and a real Cubism 2 model drawn
headless (when the `live2d` extra, EGL and npm are here): mouth, eyes and head move where they should."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.live2d_model import EXPRESSIONS, ModelUnavailable, fetch_model
from engine.render.live2d.errors import Live2DError
from engine.render.live2d.model import find_model_file, guess_expressions, read_expression, read_model_files
from engine.render.live2d.renderer import (
    CHANNELS,
    Live2DRenderer,
    Live2DSettings,
    cubism_channels,
    probe_live2d,
    settings_from_mapping,
)
from engine.state import make_state

ARTIFACTS = Path(__file__).parent / "artifacts"


# ---------------------------------------------------------------- mapping and files (no Live2D needed)


@pytest.mark.unit
def test_channels_follow_the_state() -> None:
    rest = cubism_channels(make_state().numpy())
    assert rest["mouth_open_y"] == 0.0 and rest["eye_l_open"] == 1.0 and rest["angle_x"] == 0.0
    a = cubism_channels(make_state(mouth_closed=0, mouth_a=1).numpy())
    assert a["mouth_open_y"] == pytest.approx(1.0)
    turned = cubism_channels(make_state(head_yaw=1, head_pitch=-0.5, gaze_x=0.3).numpy())
    assert turned["angle_x"] == pytest.approx(30) and turned["angle_y"] == pytest.approx(-15)
    assert turned["body_angle_x"] == pytest.approx(10) and turned["eye_ball_x"] == pytest.approx(0.3)
    smile, frown = (cubism_channels(make_state(**{e: 1.0}).numpy())["mouth_form"] for e in ("joy", "sorrow"))
    assert smile > 0.5 and frown < -0.5
    wide = cubism_channels(make_state(mouth_closed=0, mouth_i=1, joy=1, fun=1).numpy())
    assert wide["mouth_form"] == 1.0  # clamped to Cubism's range
    assert set(rest) == set(CHANNELS)


def _write(path: Path, data: object | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


@pytest.mark.unit
def test_expressions_of_both_cubism_generations(tmp_path: Path) -> None:
    v2 = _write(tmp_path / "a.exp.json", {"params": [
        {"id": "PARAM_EYE_L_OPEN", "val": 0.7, "def": 1, "calc": "mult"},
        {"id": "PARAM_MOUTH_FORM", "val": -1, "def": 1},
        {"id": "PARAM_TERE", "val": 1, "calc": "set"},
    ]})
    assert read_expression(v2) == [("PARAM_EYE_L_OPEN", "mult", 0.7), ("PARAM_MOUTH_FORM", "add", -2.0),
                                   ("PARAM_TERE", "set", 1.0)]
    v3 = _write(tmp_path / "b.exp3.json", {"Type": "Live2D Expression", "Parameters": [
        {"Id": "ParamEyeLSmile", "Value": 1}, {"Id": "ParamEyeLOpen", "Value": 0.5, "Blend": "Multiply"},
        {"Id": "ParamCheek", "Value": 1, "Blend": "Overwrite"}]})
    assert read_expression(v3) == [("ParamEyeLSmile", "add", 1.0), ("ParamEyeLOpen", "mult", 0.5),
                                   ("ParamCheek", "set", 1.0)]
    guessed = guess_expressions(["f01", "Happy", "angry_02", "Sad"])
    assert guessed == {"joy": "Happy", "anger": "angry_02", "sorrow": "Sad"}


@pytest.mark.unit
def test_broken_models_name_their_file(tmp_path: Path) -> None:
    with pytest.raises(Live2DError, match="not found"):
        find_model_file(tmp_path / "nope")
    with pytest.raises(Live2DError, match=r"no \.model3\.json or \.model\.json"):
        find_model_file(tmp_path)
    settings = _write(tmp_path / "m" / "m.model3.json", {"FileReferences": {
        "Moc": "m.moc3", "Textures": ["tex/t0.png"], "Expressions": [{"Name": "Happy", "File": "h.exp3.json"}]}})
    assert find_model_file(tmp_path / "m") == settings.resolve()
    with pytest.raises(Live2DError, match=r"references m\.moc3, which does not exist"):
        read_model_files(settings)
    _write(tmp_path / "m" / "m.moc3", b"MOC3\x03rest")
    with pytest.raises(Live2DError, match=r"references tex/t0\.png"):
        read_model_files(settings)
    _write(tmp_path / "m" / "tex" / "t0.png", b"png")
    _write(tmp_path / "m" / "h.exp3.json", {"Parameters": []})
    files = read_model_files(settings)
    assert files.cubism == 3 and files.expressions == {"Happy": tmp_path / "m" / "h.exp3.json"}
    _write(tmp_path / "m" / "m.moc3", b"JUNKJUNK")
    with pytest.raises(Live2DError, match=r"m\.moc3: not a Cubism 3 moc"):
        read_model_files(settings)
    _write(tmp_path / "m" / "m.model3.json", b"{ not json")
    with pytest.raises(Live2DError, match=r"m\.model3\.json: not valid JSON"):
        read_model_files(settings)
    with pytest.raises(Live2DError, match="a Live2D model is a"):
        find_model_file(_write(tmp_path / "x.json", {}))


@pytest.mark.unit
def test_settings_from_config(tmp_path: Path) -> None:
    s = settings_from_mapping({"model": "models/aiko", "background": [1, 2, 3], "parameters": {"cheek": None}},
                              base=tmp_path)
    assert s.model == tmp_path / "models" / "aiko" and s.background == (1, 2, 3) and s.parameters == {"cheek": None}
    with pytest.raises(Live2DError, match="model is required"):
        settings_from_mapping({})
    with pytest.raises(Live2DError, match="unexpected keyword"):
        settings_from_mapping({"model": "x", "colour": 1})


# ---------------------------------------------------------------- a real model, drawn headless

needs_live2d = pytest.mark.skipif(
    importlib.util.find_spec("live2d") is None, reason="live2d-py is not installed (pip install 'stagecast[live2d]')"
)


@pytest.fixture(scope="module")
def shizuku(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Cubism 2 model `shizuku` (a Live2D sample model), from the npm registry into a temporary folder."""
    try:
        return fetch_model(tmp_path_factory.mktemp("live2d"))
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


def _changed(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a.int() - b.int()).abs().amax(-1).numpy() > 24


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


def _save(frames: dict[str, torch.Tensor]) -> None:
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    for name, frame in frames.items():
        Image.fromarray(frame.numpy()).save(ARTIFACTS / f"live2d_{name}.png")


@needs_live2d
@pytest.mark.integration
def test_shizuku_moves_where_expected(shizuku: Path) -> None:
    settings = Live2DSettings(model=shizuku.parent, expressions=EXPRESSIONS, background=(40, 44, 52))
    script = {
        "rest": make_state(),
        "mouth_a": make_state(mouth_closed=0, mouth_a=1),
        "eyes_closed": make_state(eye_open_l=0, eye_open_r=0),
        "head_turn": make_state(head_yaw=1, head_pitch=0.6, head_roll=0.5),
        "joy": make_state(joy=1, blush=1, mouth_closed=0.4, mouth_e=0.6),
        "sorrow": make_state(sorrow=1),
        "rest_again": make_state(),
    }
    with Live2DRenderer(1280, 720, settings) as r:
        assert r.info["cubism"] == 2 and len(r.bindings) == len(CHANNELS)
        assert r.info["shader"] == "fast", "shizuku has no clipping masks: the lean Cubism 2 shader draws it"
        batch = r.render(torch.stack(list(script.values())))
        frames = dict(zip(script, batch, strict=True))
        single = r.render(script["mouth_a"][None])[0]
        _save(frames)
    with Live2DRenderer(1280, 720, replace(settings, fast_shaders=False)) as stock:
        assert stock.info["shader"] == "stock"
        assert torch.equal(stock.render(torch.stack(list(script.values()))), batch), \
            "the lean shader draws exactly what live2d-py's own shader draws"
    assert all(f.shape == (720, 1280, 3) and f.dtype == torch.uint8 for f in frames.values())
    rest = frames["rest"]
    assert torch.equal(rest, frames["rest_again"]), "the same state must give the same frame"
    assert torch.equal(single, frames["mouth_a"]), "a frame must not depend on its batch"
    assert tuple(rest[0, 0].tolist()) == (40, 44, 52), "the model is composited over the background"
    visible = (rest.int() - torch.tensor([40, 44, 52])).abs().amax(-1).numpy() > 0
    top, _, left, right = _box(visible)
    assert visible.mean() > 0.15 and left > 200 and right < 1080, "the character stands in the middle"

    mouth, eyes = _changed(rest, frames["mouth_a"]), _changed(rest, frames["eyes_closed"])
    assert mouth.sum() > 300 and eyes.sum() > 800
    m_top, m_bottom, m_left, m_right = _box(mouth)
    _, e_bottom, e_left, e_right = _box(eyes)
    assert m_bottom - m_top < 80 and m_right - m_left < 120, "only the mouth moves for a viseme"
    assert m_top > e_bottom, "the mouth is below the eyes"
    assert e_left < m_left < m_right < e_right, "the mouth is between the eyes, horizontally"
    centre = (e_left + e_right) // 2
    assert eyes[:, e_left:centre].sum() > 300 and eyes[:, centre:e_right].sum() > 300, "both eyes close"

    turn = _changed(rest, frames["head_turn"])
    assert turn.sum() > 5 * (mouth.sum() + eyes.sum()), "a head turn moves the whole head"
    for emotion in ("joy", "sorrow"):
        moved = _changed(rest, frames[emotion])
        assert moved.sum() > 2000 and _box(moved)[0] > top, f"{emotion} changes the face"
    assert not torch.equal(frames["joy"], frames["sorrow"])


@needs_live2d
@pytest.mark.integration
def test_shizuku_speed_and_probe(shizuku: Path) -> None:
    with Live2DRenderer(1280, 720, Live2DSettings(model=shizuku)) as r:
        states = torch.stack([make_state(head_yaw=(i % 9 - 4) / 4, mouth_closed=0, mouth_a=(i % 5) / 4)
                              for i in range(24)])
        r.render(states[:2])
        t0, cpu = time.perf_counter(), 0.0
        for s in states:
            r.render(s[None])
            cpu += r.last_worker_cpu_s
        ms = (time.perf_counter() - t0) / len(states) * 1000
    print(f"live2d 1280x720: {ms:.1f} ms/frame wall, {cpu / len(states) * 1000:.1f} ms/frame worker CPU")
    assert ms < 250, "far slower than llvmpipe manages on two cores"
    report = {name: (ok, detail) for name, ok, detail in probe_live2d(shizuku)}
    assert all(ok for ok, _ in report.values()), report
    assert "Cubism 2" in report["Live2D model"][1]


@needs_live2d
@pytest.mark.integration
def test_broken_model_reports_the_file(shizuku: Path, tmp_path: Path) -> None:
    copy = tmp_path / "broken"
    shutil.copytree(shizuku.parent, copy)
    moc = copy / "moc" / "shizuku.moc"
    moc.write_bytes(moc.read_bytes()[:2000])
    with pytest.raises(Live2DError, match=r"shizuku\.moc"):
        Live2DRenderer(320, 180, Live2DSettings(model=copy / "shizuku.model.json")).open()
    with pytest.raises(Live2DError, match=r"has no parameter 'ParamNope'"):
        Live2DRenderer(320, 180, Live2DSettings(model=shizuku, parameters={"cheek": "ParamNope"})).open()
    report = {name: (ok, detail) for name, ok, detail in probe_live2d(copy)}
    assert report["Live2D model"][0] is False and "crashed" in report["Live2D model"][1]
