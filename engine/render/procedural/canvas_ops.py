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


_LIB.impl("paste", _paste, "CompositeExplicitAutograd")


@torch.library.register_fake("stagecast::paste", lib=_LIB)
def _paste_fake(canvas: Tensor, patches: Tensor, spots: list[int]) -> None:
    return None


paste = torch.ops.stagecast.paste
