"""Where a moving part of the procedural character sits this frame, and how its pixels move.

The three ways to move pixels (index ops, narrow views, opaque canvas ops) are one concern, kept
here so that `character` keeps to the drawing program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, cast

import torch
from torch import Tensor

from engine.render.procedural import canvas_ops


class Region(NamedTuple):
    """A moving part's pixels for this batch: where its box sits per state, and their frame coordinates.

    Three equivalent ways to move pixels (`moves`), one per kind of program:

    * "index": flat-index Gather/Scatter, for ONNX export and CUDA graphs (offsets never leave
      the device);
    * "views": `narrow` views at the per-state offsets, no index arithmetic per pixel (eager and
      `torch.jit.trace`: `narrow` takes its start as a 0-dim tensor, so the traced program moves
      each box to wherever that frame's state puts it);
    * "ops": slices at offsets read as integers inside the compiled graph, written back through
      the opaque `stagecast::paste` op (the torch.compile program, see `canvas_ops`).

    All three copy the same values.
    """

    flat_index: Tensor  # [S*B*C*h*w] int64 into the flattened canvas
    shape: tuple[int, int, int, int]  # (S*B, C, h, w)
    X: Tensor  # [S*B, 1, 1, w] frame x (frame heights, 0 at the centre line)
    Y: Tensor  # [S*B, 1, h, 1] frame y (frame heights from the top)
    x0: Tensor  # [S*B, 1, 1, 1] box origin in canvas pixels (whole numbers)
    y0: Tensor
    batch: int
    moves: str

    def _views(self, canvas: Tensor) -> list[Tensor]:
        _, _, h, w = self.shape
        ys, xs = self.y0.reshape(-1).to(torch.int64), self.x0.reshape(-1).to(torch.int64)
        return [canvas[k % self.batch].narrow(1, ys[k], h).narrow(2, xs[k], w) for k in range(self.shape[0])]

    def _spots(self, canvas: Tensor) -> list[tuple[int, int, int]]:
        """(state, y, x) of each box as integers the compiler can reason about (bounds checked)."""
        _, _, h, w = self.shape
        ys, xs = self.y0.reshape(-1).to(torch.int64), self.x0.reshape(-1).to(torch.int64)
        spots: list[tuple[int, int, int]] = []
        for k in range(self.shape[0]):
            # int64 items are ints (unbacked SymInts while compiling: int() would specialise them)
            y, x = cast(int, ys[k].item()), cast(int, xs[k].item())
            torch._check(y >= 0)
            torch._check(y <= canvas.shape[2] - h)
            torch._check(x >= 0)
            torch._check(x <= canvas.shape[3] - w)
            spots.append((k % self.batch, y, x))
        return spots

    def repaint(self, canvas: Tensor, paint: Callable[[Tensor], Tensor]) -> None:
        """Gather the region's pixels, paint them, and write them back in place."""
        _, _, h, w = self.shape
        if self.moves == "index":
            reg = paint(canvas.view(-1).index_select(0, self.flat_index).view(self.shape))
            canvas.view(-1).scatter_(0, self.flat_index, reg.reshape(-1))
            return
        if self.moves == "ops":
            spots = self._spots(canvas)
            reg = paint(torch.stack([canvas[b, :, y : y + h, x : x + w] for b, y, x in spots]).float())
            canvas_ops.paste(canvas, reg.to(canvas.dtype), [v for spot in spots for v in spot])
            return
        views = self._views(canvas)  # once for both directions
        reg = paint(views[0].unsqueeze(0) if len(views) == 1 else torch.stack(views))
        for k, view in enumerate(views):
            view.copy_(reg[k])
