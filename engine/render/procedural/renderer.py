"""`ProceduralRenderer`: the procedural character as a `Renderer`, run as a traced, compiled or eager program.

The drawing itself is `ProceduralCharacter` (character.py); this module decides how it runs, builds the
live program (batch 1) before the first frame of a show, and hands frames out of a `FramePool` when the
compiled program draws only the character's box.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from engine.lifecycle import Lifecycle
from engine.render.procedural.cache_dirs import use_persistent_inductor_cache
from engine.render.procedural.character import ProceduralCharacter
from engine.render.procedural.frame_pool import FramePool
from engine.render.procedural.look import CharacterLook
from engine.render.procedural.malloc import tune_glibc_malloc
from engine.state import P

PROGRAMS: tuple[str, ...] = ("trace", "eager", "inductor")


class ProceduralRenderer(Lifecycle):
    """The `procedural` Renderer: built-in character, no assets, CPU or GPU torch.

    `program` says how the module runs, one program per batch size, the batch-1 one built at
    construction so a live show never pays for it on a frame:

    * "trace" (default): a `torch.jit.trace` program, a fraction of a second to build. The same
      ops in the same order as eager, so the same bits, but dispatched from C++ instead of ~2,000
      Python calls per frame: half the time of eager on a small frame, ~30 % less at 720p.
    * "inductor" (CPU): `torch.compile` fuses each part into one vectorised C++ loop over its
      box (`ProceduralCharacter.for_compiler`), 0.2-0.25x the time of "trace". It needs a C++
      compiler and builds for ~50 s on a 2-core machine the first time (then ~6 s, from
      inductor's on-disk cache). Pixels may differ from eager by 1/255 (float16 canvas, fused
      rounding). It compiles the character's box only; `FramePool` places it in a frame.
    * "eager": plain module calls (debugging, comparisons, and what CUDA graphs capture).
    """

    def __init__(
        self,
        width: int,
        height: int,
        look: CharacterLook | None = None,
        device: str = "cpu",
        tune_malloc: bool = False,
        program: str = "trace",
    ) -> None:
        if program not in PROGRAMS:
            raise ValueError(f"unknown program {program!r}; known: {', '.join(PROGRAMS)}")
        if program == "inductor":
            _check_inductor(device)
            use_persistent_inductor_cache()  # builds survive a reboot (inductor's default is /tmp)
        if tune_malloc:
            tune_glibc_malloc()
        self.width, self.height = width, height
        self.look = look or CharacterLook()
        self.device = torch.device(device)
        self.program = program
        self.module = self._module(rgba=False)
        self._rgba_module: ProceduralCharacter | None = None
        self._programs: dict[tuple[bool, int], Callable[[Tensor], Tensor]] = {}
        self._pools: dict[bool, FramePool] = {}  # rgba -> recycled frames (the compiled program)
        if program != "eager":  # build the live case (one state a frame) now, not on the first frame of a show
            self._run(self.module, False, torch.zeros(1, P, device=self.device))

    def _module(self, rgba: bool) -> ProceduralCharacter:
        module = ProceduralCharacter(self.width, self.height, self.look, rgba=rgba).to(self.device).eval()
        return module.for_compiler() if self.program == "inductor" else module

    def _check(self, states: Tensor) -> Tensor:
        if states.ndim != 2 or states.shape[1] != P:
            raise ValueError(f"states must be [B, {P}], got {tuple(states.shape)}")
        return states.to(self.device, torch.float32)

    def _program(self, module: ProceduralCharacter, rgba: bool, states: Tensor) -> Callable[[Tensor], Tensor]:
        if self.program == "eager" or module.traceable:
            return module
        key = (rgba, states.shape[0])
        program = self._programs.get(key)
        if program is None:
            if self.program == "inductor":  # the character's box only: `_run` places it in a recycled frame
                program = torch.compile(module.char_pixels, dynamic=False, fullgraph=True)
            else:
                with warnings.catch_warnings():  # tracer warnings about constants: the layout *is* constant
                    warnings.simplefilter("ignore")
                    program = torch.jit.trace(module, states, check_trace=False)
            for _ in range(2):  # TorchScript profiles, then optimizes, on the first two runs (~0.1-0.3 s each)
                self._call(program, states)
            self._programs[key] = program
        return program

    def _call(self, program: Callable[[Tensor], Tensor], states: Tensor) -> Tensor:
        if self.program != "inductor":
            return program(states)
        # Box offsets are read as integers inside the graph (Region._spots). Outside inference mode,
        # so that a caller's inference_mode() neither recompiles nor trips the guards.
        # compile_threads=1: inductor's compile-worker pool would otherwise start with the show and
        # take the CPU from the first seconds of frames (70 late frames in 12 s on the 2-core VM).
        # cpp.threads: kernels are specialised for a thread count, and with the default (-1) a kernel
        # cached by a 1-thread process ran on 1 thread in a 2-thread one (cpu ms = wall ms).
        # recompile_limit: every (size, look, batch, rgba) is its own entry for `forward`.
        with (
            torch._dynamo.config.patch(capture_scalar_outputs=True, recompile_limit=64),
            torch._inductor.config.patch({"compile_threads": 1, "cpp.threads": torch.get_num_threads()}),
            torch.inference_mode(False),
        ):
            return program(states.clone() if states.is_inference() else states)

    def _run(self, module: ProceduralCharacter, rgba: bool, states: Tensor) -> Tensor:
        with torch.no_grad():
            states = self._check(states)
            out = self._call(self._program(module, rgba, states), states)
            if self.program == "inductor":
                pool = self._pools.get(rgba)
                if pool is None:
                    c = module.layout.char
                    pool = self._pools[rgba] = FramePool(module.frame0, c.y0, c.x0)
                out = pool.frame(out)
            return out.cpu()

    def render(self, states: Tensor) -> Tensor:
        """states [B, P] -> frames [B, H, W, 3] uint8 on the CPU."""
        return self._run(self.module, False, states)

    def render_rgba(self, states: Tensor) -> Tensor:
        """states [B, P] -> [B, H, W, 4] uint8, transparent background, straight (not premultiplied) alpha."""
        if self._rgba_module is None:
            self._rgba_module = self._module(rgba=True)
        return self._run(self._rgba_module, True, states)


def _check_inductor(device: str) -> None:
    """Why the inductor program cannot run here, as an exception (the runtime choice falls back)."""
    if torch.device(device).type != "cpu":
        raise ValueError("the inductor program is for CPU; CUDA uses the torch-cuda runtime (CUDA graphs)")
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"torch inductor needs a C++ compiler and {compiler!r} is not on PATH")
