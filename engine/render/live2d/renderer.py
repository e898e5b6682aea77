"""The `live2d` appearance: the user's own Live2D model behind the Renderer interface.

Cubism 3/4/5 (`.model3.json`) and Cubism 2 (`.model.json`) models are drawn by the optional
`live2d-py` package (`pip install 'stagecast[live2d]'`) in headless OpenGL: EGL with no display
through Mesa (llvmpipe on a CPU, the GPU driver where there is one).

All GL work happens in one child process (`worker.py`, started by `process.py`) that imports
`live2d` before anything touches GL, which is what live2d-py needs; a model that crashes the Cubism
core kills that process, not the show, and the error names the file (`model.py` checks every file
first). `render()` sends per-frame Cubism parameter values to it and waits for the pixels, which
come back through shared memory.

Mapping: every CharacterState field drives a standard Cubism parameter (`ParamAngleX`, ... or
the Cubism 2 `PARAM_ANGLE_X`, ...), overridable per model. Emotions are applied through the
model's own expressions, weighted by intensity (computed here, so a frame depends only on its
state); motions, physics and pose fading are opt-in and make frames depend on the sequence.
The model's auto-blink and auto-breath are off: our animator does both.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.lifecycle import Lifecycle
from engine.render.live2d.errors import Live2DError
from engine.render.live2d.model import find_model_file, guess_expressions, read_expression, read_model_files
from engine.render.live2d.process import WorkerProcess
from engine.state import EMOTIONS, IDX, P, mouth_openness

# channel -> (candidate parameter ids, first present wins; Cubism 3+ first, then Cubism 2 names)
CHANNELS: dict[str, tuple[str, ...]] = {
    "angle_x": ("ParamAngleX", "PARAM_ANGLE_X"),
    "angle_y": ("ParamAngleY", "PARAM_ANGLE_Y"),
    "angle_z": ("ParamAngleZ", "PARAM_ANGLE_Z"),
    "body_angle_x": ("ParamBodyAngleX", "PARAM_BODY_ANGLE_X", "PARAM_BODY_X"),
    "eye_l_open": ("ParamEyeLOpen", "PARAM_EYE_L_OPEN"),
    "eye_r_open": ("ParamEyeROpen", "PARAM_EYE_R_OPEN"),
    "eye_ball_x": ("ParamEyeBallX", "PARAM_EYE_BALL_X"),
    "eye_ball_y": ("ParamEyeBallY", "PARAM_EYE_BALL_Y"),
    "brow_l_y": ("ParamBrowLY", "PARAM_BROW_L_Y"),
    "brow_r_y": ("ParamBrowRY", "PARAM_BROW_R_Y"),
    "mouth_open_y": ("ParamMouthOpenY", "PARAM_MOUTH_OPEN_Y"),
    "mouth_form": ("ParamMouthForm", "PARAM_MOUTH_FORM"),
    "cheek": ("ParamCheek", "PARAM_TERE"),
    "breath": ("ParamBreath", "PARAM_BREATH"),
}


def cubism_channels(state: np.ndarray) -> dict[str, float]:
    """One CharacterState [P] -> channel values in Cubism's usual units (angles ±30, eyes 0..1, form -1..1)."""
    s = np.asarray(state, dtype=np.float32)
    f = {name: float(s[i]) for name, i in IDX.items()}
    form = (
        0.6 * f["mouth_i"] + 0.3 * f["mouth_e"] - 0.5 * f["mouth_u"] - 0.4 * f["mouth_o"]
        + 0.6 * f["joy"] + 0.4 * f["fun"] - 0.6 * f["sorrow"] - 0.4 * f["anger"]
    )
    return {
        "angle_x": 30.0 * f["head_yaw"],
        "angle_y": 30.0 * f["head_pitch"],
        "angle_z": 30.0 * f["head_roll"],
        "body_angle_x": 10.0 * f["head_yaw"],
        "eye_l_open": f["eye_open_l"],
        "eye_r_open": f["eye_open_r"],
        "eye_ball_x": f["gaze_x"],
        "eye_ball_y": f["gaze_y"],
        "brow_l_y": f["brow_l"],
        "brow_r_y": f["brow_r"],
        "mouth_open_y": float(mouth_openness(torch.from_numpy(s))),
        "mouth_form": max(-1.0, min(1.0, form)),
        "cheek": f["blush"],
        "breath": f["breath"],
    }


@dataclass
class Live2DSettings:
    """What `character.appearance: live2d` needs: the model, its framing and per-model parameter fixes."""

    model: Path  # a .model3.json / .model.json, or the folder holding exactly one
    background: tuple[int, int, int] = (40, 44, 52)  # RGB the premultiplied model is composited over
    scale: float | None = None  # None: the model's own layout
    offset_x: float = 0.0  # scene units, + is right
    offset_y: float = 0.0  # scene units, + is up
    parameters: dict[str, str | None] = field(default_factory=dict)  # channel -> parameter id (None: off)
    parameter_scale: dict[str, float] = field(default_factory=dict)  # channel -> factor (-1 flips a sign)
    fixed_parameters: dict[str, float] = field(default_factory=dict)  # parameter id -> constant every frame
    expressions: dict[str, str] | None = None  # emotion -> expression name; None: guess from names
    motions: dict[str, str] = field(default_factory=dict)  # emotion -> motion group, started when it rises
    motion_threshold: float = 0.5
    physics: bool = False  # hair/cloth physics: livelier, but a frame then depends on the ones before
    fps: int = 30  # time step for physics, motions and pose fading
    fast_textures: bool = True  # bilinear instead of trilinear sampling (about 25% faster on llvmpipe)
    fast_shaders: bool = True  # Cubism 2 without clipping masks: a leaner, pixel-identical fragment shader


class Live2DRenderer(Lifecycle):
    """The `live2d` Renderer: states [B, P] -> frames [B, H, W, 3] uint8 of the user's Live2D model."""

    def __init__(self, width: int, height: int, settings: Live2DSettings, timeout_s: float = 120.0) -> None:
        """Checks the model's files; the GL worker process starts in `open` (or `prewarm`, or `with`)."""
        self.width, self.height, self.settings = width, height, settings
        self.timeout_s = timeout_s
        self.files = read_model_files(find_model_file(settings.model))
        self._shm: shared_memory.SharedMemory | None = None
        self._previous = np.zeros(len(EMOTIONS), dtype=np.float32)
        self.last_worker_s = self.last_worker_cpu_s = 0.0  # wall and CPU (all threads) the last batch took
        self._worker: WorkerProcess | None = None

    def open(self) -> None:
        """Start the GL worker, load the model and bind its parameters (idempotent)."""
        if self._worker is not None:
            return
        s = self.settings
        bg = tuple(c / 255.0 for c in s.background)
        self._worker = WorkerProcess(str(self.files.settings), self.timeout_s)
        try:
            self.info: dict[str, Any] = self._load({
                "model": str(self.files.settings), "width": self.width, "height": self.height, "background": bg,
                "scale": s.scale, "offset_x": s.offset_x, "offset_y": s.offset_y,
                "physics": s.physics, "motions": bool(s.motions), "dt": 1.0 / s.fps,
                "fast_textures": s.fast_textures, "fast_shaders": s.fast_shaders,
            })
            self._bind()
        except BaseException:
            self.close()
            raise

    def prewarm(self) -> None:
        self.open()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _call(self, *msg: Any) -> Any:
        """One call to the GL worker, which only an open renderer has."""
        if self._worker is None:
            raise Live2DError(f"{self.files.settings}: the renderer is not open (open() or prewarm() it first)")
        return self._worker.call(*msg)

    def _load(self, cfg: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call("init", cfg)
        except Live2DError as exc:
            if "crashed" not in str(exc):
                raise
            raise Live2DError(f"{exc}\nThe Cubism core died reading {self.files.moc} (truncated, or a Cubism version "
                              f"this live2d-py does not support?)") from None

    def _bind(self) -> None:
        """Resolve channels, overrides, expressions and motions against what the model really has."""
        params: dict[str, tuple[float, float, float]] = self.info["params"]
        s = self.settings
        unknown = set(s.parameters) - set(CHANNELS)
        if unknown:
            raise Live2DError(f"unknown live2d parameter channel(s) {sorted(unknown)}; known: {', '.join(CHANNELS)}")
        self.bindings: list[tuple[str, str, float]] = []  # (channel, parameter id, scale)
        for channel, candidates in CHANNELS.items():
            pid = s.parameters.get(channel, next((c for c in candidates if c in params), None))
            if pid is None:
                continue
            if pid not in params:
                raise Live2DError(f"{self.files.settings}: has no parameter {pid!r} (for {channel}); "
                                  f"it has {', '.join(list(params)[:40])}")
            self.bindings.append((channel, pid, float(s.parameter_scale.get(channel, 1.0))))
        for pid in s.fixed_parameters:
            if pid not in params:
                raise Live2DError(f"{self.files.settings}: has no parameter {pid!r} (in fixed_parameters)")
        names = list(self.files.expressions)
        chosen = guess_expressions(names) if s.expressions is None else dict(s.expressions)
        self.expressions: dict[str, list[tuple[str, str, float]]] = {}
        for emotion, name in chosen.items():
            if emotion not in EMOTIONS:
                raise Live2DError(f"unknown emotion {emotion!r} in live2d expressions; known: {', '.join(EMOTIONS)}")
            if name not in self.files.expressions:
                raise Live2DError(f"{self.files.settings}: has no expression {name!r}; it has {', '.join(names)}")
            entries = read_expression(self.files.expressions[name])
            self.expressions[emotion] = [e for e in entries if e[0] in params]
        # Expressions touch parameters we do not drive; put those back to their defaults every frame so that a
        # frame depends only on its own state (Cubism 2 models keep whatever was last set).
        bound = {pid for _, pid, _ in self.bindings} | set(s.fixed_parameters)
        touched = {pid for entries in self.expressions.values() for pid, _, _ in entries} - bound
        self._defaults = [(pid, float(params[pid][2])) for pid in sorted(touched)] if not s.motions else []
        for emotion, group in s.motions.items():
            if group not in self.info["motions"]:
                raise Live2DError(f"{self.files.settings}: has no motion group {group!r} (for {emotion}); "
                                  f"it has {', '.join(self.info['motions'])}")

    def frame_request(self, state: np.ndarray) -> dict[str, Any]:
        """What the worker sets for one state: parameter values, weighted expressions, motions to start."""
        values = cubism_channels(state)
        params = self._defaults + [(pid, values[ch] * k) for ch, pid, k in self.bindings]
        params += list(self.settings.fixed_parameters.items())
        emotions = np.asarray([state[IDX[e]] for e in EMOTIONS], dtype=np.float32)
        expressions = [(self.expressions[e], float(w)) for e, w in zip(EMOTIONS, emotions, strict=True)
                       if e in self.expressions and w > 1e-4]
        start = []
        if self.settings.motions:
            th = self.settings.motion_threshold
            for i, e in enumerate(EMOTIONS):
                if e in self.settings.motions and emotions[i] >= th > self._previous[i]:
                    start.append(self.settings.motions[e])
            self._previous = emotions
        return {"params": params, "expressions": expressions, "start_motions": start}

    def _buffer(self, frames: int) -> shared_memory.SharedMemory:
        need = frames * self.height * self.width * 3
        if self._shm is None or self._shm.size < need:
            if self._shm is not None:
                self._shm.close()
                self._shm.unlink()
            self._shm = shared_memory.SharedMemory(create=True, size=need)
        return self._shm

    def render(self, states: torch.Tensor) -> torch.Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 on the CPU (opaque: the model over the background)."""
        if states.ndim != 2 or states.shape[1] != P:
            raise ValueError(f"states must be [B, {P}], got {tuple(states.shape)}")
        batch = states.detach().to("cpu", torch.float32).numpy()
        shm = self._buffer(len(batch))
        reply = self._call("render", shm.name, [self.frame_request(s) for s in batch])
        self.last_worker_s, self.last_worker_cpu_s = float(reply["seconds"]), float(reply["cpu_seconds"])
        out = torch.empty((len(batch), self.height, self.width, 3), dtype=torch.uint8)
        rgb = np.ndarray((len(batch), self.height, self.width, 3), np.uint8, shm.buf)
        np.copyto(out.numpy(), rgb[:, ::-1])  # GL rows are bottom-up
        del rgb
        return out

    def close(self) -> None:
        """Stop the worker and free the shared frame buffer."""
        worker, self._worker = getattr(self, "_worker", None), None
        if worker is not None:
            worker.close()
        shm, self._shm = getattr(self, "_shm", None), None
        if shm is not None:
            shm.close()
            shm.unlink()

    def __enter__(self) -> Live2DRenderer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def settings_from_mapping(raw: Mapping[str, Any], base: Path | None = None) -> Live2DSettings:
    """Live2DSettings from a config mapping; a relative model path is taken from `base` (the pack's folder)."""
    data = dict(raw)
    if "model" not in data:
        raise Live2DError("character.live2d.model is required: the .model3.json / .model.json or its folder")
    model = Path(data.pop("model")).expanduser()
    if base is not None and not model.is_absolute():
        model = base / model
    if "background" in data:
        data["background"] = tuple(int(c) for c in data["background"])
    try:
        return Live2DSettings(model=model, **data)
    except TypeError as exc:
        raise Live2DError(f"character.live2d: {exc}") from None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def probe_live2d(model: str | os.PathLike[str] | None = None) -> list[tuple[str, bool, str]]:
    """`stagecast check`: can Live2D run here (package, headless EGL, the model), and if not, why not."""
    import ctypes.util

    out: list[tuple[str, bool, str]] = []
    l2d, gl = _version("live2d-py"), _version("PyOpenGL")
    out.append(("live2d-py", l2d is not None, l2d or "not installed: pip install 'stagecast[live2d]'"))
    out.append(("PyOpenGL", gl is not None, gl or "not installed (comes with live2d-py)"))
    egl = ctypes.util.find_library("EGL")
    out.append(("EGL library", egl is not None, egl or "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgl1"))
    if l2d is None or gl is None or egl is None:
        return out
    worker = None
    try:
        t0 = time.perf_counter()
        worker = WorkerProcess("Live2D probe", 60.0)
        info = worker.call("init", {"width": 64, "height": 64})
        detail = f"{info['gl_renderer']}, OpenGL {info['gl_version']}, EGL {info['egl_version']}"
        out.append(("Live2D headless OpenGL", True, f"{detail} ({time.perf_counter() - t0:.1f} s)"))
    except Live2DError as exc:
        out.append(("Live2D headless OpenGL", False, str(exc).splitlines()[0]))
        return out
    finally:
        if worker is not None:
            worker.close()
    if model is not None:
        try:
            with Live2DRenderer(64, 64, Live2DSettings(model=Path(model)), timeout_s=60.0) as r:
                info = r.info
                detail = (f"{r.files.settings.name}: Cubism {info['cubism']}, {len(info['params'])} parameters, "
                          f"{len(info['expressions'])} expressions, {sum(info['motions'].values())} motions, "
                          f"{len(r.bindings)}/{len(CHANNELS)} channels bound")
            out.append(("Live2D model", True, detail))
        except Live2DError as exc:
            out.append(("Live2D model", False, str(exc).splitlines()[0]))
    return out
