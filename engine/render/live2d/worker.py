"""The Live2D GL worker: a child process that owns the only OpenGL context Live2D ever sees.

Run as a script (`python -P worker.py`), never imported by the show: it imports only the
standard library, numpy, live2d-py and PyOpenGL, in that order, so nothing can load GL before
`live2d` (loading GL first makes `LoadModelJson` abort with `std::bad_alloc`). That ordering lives
in `_import_gl()` and nowhere else. A process rather than a thread also means a model that makes
the Cubism core abort takes down this worker, not the stream, and the parent reports why.

Protocol: `multiprocessing.connection` messages (pickled tuples) on the stdin/stdout pipes;
the real stdout is moved to stderr first because live2d-py prints banners and logs there.
Pixels go through shared memory: the parent names a block, the worker `glReadPixels` into it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection
from typing import Any

# The folder above this one holds our own `live2d` package; neither folder may shadow the live2d-py package
# (the parent also passes -P, so the script's folder is not on the path to begin with).
_HERE = os.path.dirname(os.path.abspath(__file__))
_OURS = {_HERE, os.path.dirname(_HERE)}
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in _OURS]

EGL_PLATFORM_SURFACELESS_MESA = 0x31DD
SET, ADD, MULT = "set", "add", "mult"


def _import_gl() -> tuple[Any, Any, Any]:
    """Import live2d first, then PyOpenGL with the EGL platform. The one place this order is decided."""
    os.environ["PYOPENGL_PLATFORM"] = "egl"
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    import live2d
    from OpenGL import EGL, GL

    return live2d, EGL, GL


class GLTarget:
    """A headless EGL context (surfaceless, or a 1x1 pbuffer) with an RGBA8 framebuffer object of the output size."""

    def __init__(self, EGL: Any, GL: Any, width: int, height: int) -> None:
        import ctypes

        self.EGL, self.GL, self.width, self.height = EGL, GL, width, height
        self.display = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
        major, minor = EGL.EGLint(), EGL.EGLint()
        if not EGL.eglInitialize(self.display, ctypes.pointer(major), ctypes.pointer(minor)):
            raise RuntimeError("eglInitialize failed (is Mesa's libegl-mesa0 installed?)")
        self.egl_version = f"{major.value}.{minor.value}"
        attrs = [EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT]
        for size in (EGL.EGL_RED_SIZE, EGL.EGL_GREEN_SIZE, EGL.EGL_BLUE_SIZE, EGL.EGL_ALPHA_SIZE):
            attrs += [size, 8]
        attrs.append(EGL.EGL_NONE)
        config, count = EGL.EGLConfig(), EGL.EGLint()
        arr = (EGL.EGLint * len(attrs))(*attrs)
        chosen = EGL.eglChooseConfig(self.display, arr, ctypes.pointer(config), 1, ctypes.pointer(count))
        if not chosen or not count.value:
            raise RuntimeError("no EGL config with desktop OpenGL and 8-bit RGBA")
        EGL.eglBindAPI(EGL.EGL_OPENGL_API)
        self.context = EGL.eglCreateContext(self.display, config, EGL.EGL_NO_CONTEXT, None)
        if not self.context:
            raise RuntimeError("eglCreateContext failed")
        self.surface = EGL.EGL_NO_SURFACE
        if not EGL.eglMakeCurrent(self.display, self.surface, self.surface, self.context):
            pb = (EGL.EGLint * 5)(EGL.EGL_WIDTH, 1, EGL.EGL_HEIGHT, 1, EGL.EGL_NONE)
            self.surface = EGL.eglCreatePbufferSurface(self.display, config, pb)
            if not EGL.eglMakeCurrent(self.display, self.surface, self.surface, self.context):
                raise RuntimeError("eglMakeCurrent failed for both surfaceless and pbuffer")
        self.renderer = GL.glGetString(GL.GL_RENDERER).decode()
        self.version = GL.glGetString(GL.GL_VERSION).decode()
        self.fbo = self._framebuffer(width, height)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)

    def _framebuffer(self, width: int, height: int) -> int:
        GL = self.GL
        fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
        rbo = GL.glGenRenderbuffers(1)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rbo)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_RGBA8, width, height)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, rbo)
        if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) != GL.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"framebuffer object {width}x{height} incomplete")
        return int(fbo)

    def begin(self, background: tuple[float, float, float]) -> None:
        """Bind our framebuffer and clear it to the opaque background; Cubism's premultiplied blending composites
        the model onto it, so no compositing pass is needed."""
        GL = self.GL
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glViewport(0, 0, self.width, self.height)
        GL.glClearColor(background[0], background[1], background[2], 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)

    def read(self, out: Any) -> None:
        """Read the framebuffer (bottom row first) into a [H, W, 3] uint8 array: RGB, as the output is opaque."""
        GL = self.GL
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, out)


def _bleed(px: Any, iterations: int) -> Any:
    """Give fully transparent texels the colour of their visible neighbours. Cubism 2 textures hold straight alpha
    and the shader premultiplies after sampling, so the (arbitrary) colour of invisible texels otherwise bleeds
    into every filtered edge as a faint outline around each art patch."""
    import numpy as np

    rgb, known = px[..., :3].astype(np.float32), px[..., 3] > 0
    for _ in range(iterations):
        weight = known.astype(np.float32)
        acc, count = np.zeros_like(rgb), np.zeros_like(weight)
        for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            acc += np.roll(rgb * weight[..., None], shift, (0, 1))
            count += np.roll(weight, shift, (0, 1))
        grow = ~known & (count > 0)
        if not grow.any():
            break
        rgb[grow] = acc[grow] / count[grow, None]
        known |= grow
    out = px.copy()
    hidden = px[..., 3] == 0
    out[hidden, :3] = np.clip(rgb[hidden] + 0.5, 0, 255).astype(np.uint8)
    return out


def prepare_textures(GL: Any, fast: bool, last: int = 256) -> int:
    """Fix the model's textures once after loading: bleed edges where alpha is straight, and with `fast` switch
    trilinear mipmapping to bilinear (the same picture at stream sizes, much cheaper on llvmpipe). We own the
    context, so its mipmapped textures are the model's; mask buffers are not mipmapped and are left alone."""
    import numpy as np

    changed = 0
    for name in range(1, last):
        if not GL.glIsTexture(name):
            continue
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        if GL.glGetTexParameteriv(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER) in (GL.GL_LINEAR, GL.GL_NEAREST):
            continue
        w = int(GL.glGetTexLevelParameteriv(GL.GL_TEXTURE_2D, 0, GL.GL_TEXTURE_WIDTH))
        h = int(GL.glGetTexLevelParameteriv(GL.GL_TEXTURE_2D, 0, GL.GL_TEXTURE_HEIGHT))
        raw = GL.glGetTexImage(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        px = np.frombuffer(raw, np.uint8).reshape(h, w, 4)
        if (px[..., :3].max(-1) > px[..., 3]).any():  # straight alpha: premultiplied data never exceeds alpha
            px = _bleed(px, 2 if fast else 12)
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, px)
            GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
        if fast:
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR)
        changed += 1
    GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
    return changed


# live2d-py's Cubism 2 renderer draws every part with one GLSL 1.20 program (recognised by the SHA-256 of its
# fragment shader's source) whose fragment shader also holds the clipping-mask pass behind `if (u_maskFlag)` and
# applies part multiply/screen colours. llvmpipe runs both sides of a uniform branch for every fragment, and we
# never set part colours (they stay 1 and 0), so for a model without clipping masks the same picture comes from
# the texture fetch, the premultiply and the base colour alone: a quarter to a third less CPU per frame on llvmpipe.
CUBISM2_FS_SHA256 = "cb3169638f75b16de53ec698652143773e878ca2f6123b572278883d738049a9"
CUBISM2_MASKED_FS_SHA256 = "1171eb65777f321b422ea5e82e04162923f88cd40f606ee648265efa9be7028f"  # draws clipped parts
CUBISM2_UNIFORMS = {"s_texture0": "sampler2D", "u_channelFlag": "vec4", "u_baseColor": "vec4", "u_maskFlag": "bool",
                    "u_screenColor": "vec4", "u_multiplyColor": "vec4"}
FAST_FS = """#version 120
#extension GL_ARB_explicit_attrib_location : require
#extension GL_ARB_explicit_uniform_location : require
varying vec2 v_texCoord;
{uniforms}
void main() {{
    vec4 c = texture2D(s_texture0, v_texCoord);
    gl_FragColor = vec4(c.rgb * c.a, c.a) * u_baseColor;
}}
"""


def _source(GL: Any, shader: int) -> str:
    src = GL.glGetShaderSource(shader)
    return src.decode() if isinstance(src, bytes) else str(src)


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


class Cubism2Shaders:
    """Swaps live2d-py's Cubism 2 fragment shader for `FAST_FS` while the model draws no clipping mask.

    The fast shader declares every stock uniform at its stock location, so the renderer's cached locations stay
    right (the unused ones become inactive and are ignored). It is kept only if it draws the loaded model byte for
    byte like the stock shader; and the moment the clipped-parts program is used (its MVP matrix, zero after
    linking, gets set), the stock shader comes back and that frame is drawn again."""

    def __init__(self, GL: Any, program: int, shader: int, masked: int) -> None:
        self.GL, self.program, self.shader = GL, program, shader
        self.stock = _source(GL, shader)
        self.locations = {n: int(GL.glGetUniformLocation(program, n)) for n in CUBISM2_UNIFORMS}
        self.masked_mvp = int(GL.glGetUniformLocation(masked, "u_mvpMatrix"))
        self.masked = masked
        self.active = False
        self.why = "stock"

    @classmethod
    def find(cls, GL: Any, last: int = 64) -> Cubism2Shaders | None:
        normal = masked = None
        for program in range(1, last):
            if not GL.glIsProgram(program):
                continue
            for shader in GL.glGetAttachedShaders(program):
                digest = _sha256(_source(GL, int(shader)))
                if digest == CUBISM2_FS_SHA256:
                    normal = (program, int(shader))
                elif digest == CUBISM2_MASKED_FS_SHA256:
                    masked = program
        if normal is None or masked is None or GL.glGetUniformLocation(masked, "u_mvpMatrix") < 0:
            return None
        return cls(GL, normal[0], normal[1], masked)

    def _link(self, source: str) -> bool:
        GL = self.GL
        GL.glShaderSource(self.shader, source)
        GL.glCompileShader(self.shader)
        if GL.glGetShaderiv(self.shader, GL.GL_COMPILE_STATUS):
            GL.glLinkProgram(self.program)
            if GL.glGetProgramiv(self.program, GL.GL_LINK_STATUS):
                return True
        return False

    def clipping_used(self) -> bool:
        """Whether the clipped-parts program has drawn since the model loaded (its MVP is no longer zero)."""
        import ctypes

        value = (ctypes.c_float * 16)()
        self.GL.glGetUniformfv(self.masked, self.masked_mvp, value)
        return any(value)

    def enable(self) -> bool:
        lines = [f"layout(location = {loc}) uniform {kind} {name};" for name, kind in CUBISM2_UNIFORMS.items()
                 if (loc := self.locations[name]) >= 0]
        if self.locations["s_texture0"] < 0 or self.locations["u_baseColor"] < 0:
            return False
        if self._link(FAST_FS.format(uniforms="\n".join(lines))):
            GL = self.GL
            moved = [n for n, loc in self.locations.items()
                     if GL.glGetUniformLocation(self.program, n) not in (loc, -1)]
            if not moved:
                self.active, self.why = True, "fast"
                return True
        self.disable("the fast Cubism 2 shader did not build here")
        return False

    def disable(self, why: str) -> None:
        if not self._link(self.stock):
            raise RuntimeError("could not rebuild live2d-py's own Cubism 2 shader")
        self.active, self.why = False, f"stock ({why})"


class Worker:
    """Loads one model and draws frames from parameter lists sent by the parent."""

    def __init__(self, live2d: Any, EGL: Any, GL: Any, cfg: dict[str, Any]) -> None:
        self.live2d, self.GL = live2d, GL
        self.width, self.height = int(cfg["width"]), int(cfg["height"])
        self.background = tuple(cfg.get("background", (0.0, 0.0, 0.0)))
        self.dt = float(cfg.get("dt", 1 / 30))
        self.physics = bool(cfg.get("physics", False))
        self.motions = bool(cfg.get("motions", False))
        self.target = GLTarget(EGL, GL, self.width, self.height)
        live2d.init()
        live2d.glInit()
        self.model: Any | None = None  # a live2d.Model once loaded (live2d-py has no type hints)
        if cfg.get("model"):
            self.load(cfg)

    def load(self, cfg: dict[str, Any]) -> None:
        model = self.live2d.Model()
        model.LoadModelJson(str(cfg["model"]))
        ids = list(model.GetParamIds())  # before any update: Cubism 2 creates parameters it is asked to set
        self.params = {p: (model.GetParamMinById(p), model.GetParamMaxById(p), model.GetParamDefaultById(p))
                       for p in ids}
        if not ids:
            raise RuntimeError(f"{cfg['model']}: the model loaded with no parameters (missing or broken .moc/.moc3?)")
        model.Resize(self.width, self.height)
        model.SetAutoBlink(False)
        model.SetAutoBreath(False)
        if cfg.get("scale") is not None:
            model.SetScale(float(cfg["scale"]))
        model.SetOffset(float(cfg.get("offset_x", 0.0)), float(cfg.get("offset_y", 0.0)))
        self.model = model
        self.target.begin(self.background)
        model.Update(0.0)  # first update: pose and textures settle, shaders compile
        model.Draw()
        self.textures = prepare_textures(self.GL, bool(cfg.get("fast_textures", True)))
        self.motion_index: dict[str, int] = {}
        self.shaders = Cubism2Shaders.find(self.GL) if cfg.get("fast_shaders", True) else None
        if self.shaders is not None:
            self._choose_shader()

    def _loaded(self) -> Any:
        """The model; drawing before `load` is the parent's mistake, reported back as an error."""
        if self.model is None:
            raise RuntimeError("render before a model was loaded")
        return self.model

    def _redraw(self, out: Any) -> None:
        """Draw the model as it stands (parameters already applied) and read it back."""
        self.target.begin(self.background)
        self._loaded().Draw()
        self.target.read(out)

    def _choose_shader(self) -> None:
        """Keep the fast Cubism 2 shader only if it draws the loaded pose exactly like the stock one."""
        import numpy as np

        shaders = self.shaders
        assert shaders is not None
        if shaders.clipping_used():
            shaders.why = "stock (the model has clipping masks)"
            return
        stock = np.empty((self.height, self.width, 3), np.uint8)
        fast = np.empty_like(stock)
        self._redraw(stock)
        if shaders.enable():
            self._redraw(fast)
            if shaders.clipping_used() or not np.array_equal(stock, fast):
                shaders.disable("it did not draw this model exactly like the stock one")

    def info(self) -> dict[str, Any]:
        m = self.model
        out: dict[str, Any] = {
            "gl_renderer": self.target.renderer,
            "gl_version": self.target.version,
            "egl_version": self.target.egl_version,
        }
        if m is not None:
            out.update(
                cubism=m.Version(),
                params=self.params,
                expressions=list(m.GetExpressions()),
                motions=dict(m.GetMotionGroups()),
                textures=self.textures,
                shader=self.shaders.why if self.shaders is not None else "stock",
            )
        return out

    def draw(self, frame: dict[str, Any], out: Any) -> None:
        """One frame: baseline, our parameters, expressions on top, physics and pose, draw, read back."""
        m = self._loaded()
        m.LoadParameters()
        if self.motions:
            for group in frame.get("start_motions", ()):
                count = m.GetMotionCount(group)
                if count:
                    index = self.motion_index.get(group, 0)
                    self.motion_index[group] = (index + 1) % count
                    m.StartMotion(group, index, 2)
            m.UpdateMotion(self.dt)
            m.SaveParameters()
        for pid, value in frame["params"]:
            m.SetParamById(pid, value)
        for entries, weight in frame.get("expressions", ()):
            for pid, kind, value in entries:
                cur = m.GetParamValueById(pid)
                if kind == ADD:
                    new = cur + value * weight
                elif kind == MULT:
                    new = cur * (1.0 + (value - 1.0) * weight)
                else:
                    new = cur * (1.0 - weight) + value * weight
                m.SetParamById(pid, new)
        if self.physics:
            m.UpdatePhysics(self.dt)
        m.UpdatePose(self.dt if (self.physics or self.motions) else 0.0)
        self._redraw(out)
        if self.shaders is not None and self.shaders.active and self.shaders.clipping_used():
            self.shaders.disable("the model drew a clipping mask")
            self._redraw(out)  # this frame again, with the stock shader: exactly what it draws


def serve(conn_in: Connection, conn_out: Connection) -> int:
    """Answer messages until `close` or the parent goes away."""
    import numpy as np

    try:
        live2d, EGL, GL = _import_gl()
        live2d.enableLog(False)
    except Exception as exc:
        conn_out.send(("error", f"cannot import live2d-py / PyOpenGL: {type(exc).__name__}: {exc}"))
        return 2
    worker: Worker | None = None
    shm: shared_memory.SharedMemory | None = None
    while True:
        try:
            msg = conn_in.recv()
        except EOFError:
            return 0
        kind = msg[0]
        try:
            if kind == "init":
                worker = Worker(live2d, EGL, GL, msg[1])
                conn_out.send(("ok", worker.info()))
            elif kind == "render":
                _, shm_name, frames = msg
                if shm is None or shm.name != shm_name:
                    if shm is not None:
                        shm.close()
                    shm = shared_memory.SharedMemory(name=shm_name)
                    # the parent owns and unlinks it; the tracker knows it by `_name` (with its leading "/"),
                    # which typeshed does not declare
                    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
                assert worker is not None and worker.model is not None, "render before a model was loaded"
                size = worker.height * worker.width * 3
                t0, c0 = time.perf_counter(), time.process_time()
                for i, frame in enumerate(frames):
                    view = np.ndarray((worker.height, worker.width, 3), np.uint8, shm.buf, offset=i * size)
                    worker.draw(frame, view)
                    del view
                conn_out.send(("ok", {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}))
            elif kind == "close":
                conn_out.send(("ok", {}))
                return 0
            else:
                conn_out.send(("error", f"unknown message {kind!r}"))
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            conn_out.send(("error", detail))
            if worker is None or worker.model is None:
                return 3


def main() -> int:
    """Keep the protocol on the original stdout; everything the libraries print goes to stderr."""
    proto_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    conn_in, conn_out = Connection(os.dup(0), writable=False), Connection(proto_out, readable=False)
    return serve(conn_in, conn_out)


if __name__ == "__main__":
    sys.exit(main())
