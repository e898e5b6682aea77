"""Pixel moves of the procedural renderer as opaque ops, for its torch.compile (inductor) program.

Left to itself, inductor lowers `canvas[..., y:y+h, x:x+w] = patch` to a `slice_scatter` and
fuses the chain of them into one loop over the whole canvas that evaluates every part at every
pixel (15 ms at 1280x720, slower than not compiling). Behind these ops each part stays a fused
kernel over its own box, and the write back is a plain copy.

The ops are declared with `torch.library.Library` rather than `torch.library.custom_op`: a call
costs ~4 us over its copies instead of ~26 us, and a frame makes a dozen of them.
"""

from __future__ import annotations

import torch
from torch import Tensor

_LIB = torch.library.Library("stagecast", "DEF")
_LIB.define("paste(Tensor(a!) canvas, Tensor patches, SymInt[] spots) -> ()")
_LIB.define("place(Tensor frame0, Tensor pixels, int y, int x) -> Tensor")


def _paste(canvas: Tensor, patches: Tensor, spots: list[int]) -> None:
    """Write patches [n, C, h, w] into canvas [B, C, H, W]; spots = (state, y, x) per patch, flattened.

    A state of -1 means every state: then patches is [B, C, h, w] and there is one spot.
    """
    h, w = patches.shape[-2], patches.shape[-1]
    for k in range(len(spots) // 3):
        b, y, x = spots[3 * k : 3 * k + 3]
        if b < 0:
            canvas[:, :, y : y + h, x : x + w].copy_(patches)
        else:
            canvas[b, :, y : y + h, x : x + w].copy_(patches[k])


def _place(frame0: Tensor, pixels: Tensor, y: int, x: int) -> Tensor:
    """The static frame [1, H, W, C] with pixels [B, h, w, C] written at (y, x), for each state.

    Each output pixel is written once: the static frame only around the box.
    """
    b, (h, w) = pixels.shape[0], pixels.shape[1:3]
    out = frame0.new_empty((b, *frame0.shape[1:]))
    out[:, :y] = frame0[:, :y]
    out[:, y + h :] = frame0[:, y + h :]
    out[:, y : y + h, :x] = frame0[:, y : y + h, :x]
    out[:, y : y + h, x + w :] = frame0[:, y : y + h, x + w :]
    out[:, y : y + h, x : x + w] = pixels
    return out


_LIB.impl("paste", _paste, "CompositeExplicitAutograd")
_LIB.impl("place", _place, "CompositeExplicitAutograd")


@torch.library.register_fake("stagecast::paste", lib=_LIB)
def _paste_fake(canvas: Tensor, patches: Tensor, spots: list[int]) -> None:
    return None


@torch.library.register_fake("stagecast::place", lib=_LIB)
def _place_fake(frame0: Tensor, pixels: Tensor, y: int, x: int) -> Tensor:
    return frame0.new_empty((pixels.shape[0], *frame0.shape[1:]))


paste = torch.ops.stagecast.paste
place = torch.ops.stagecast.place
