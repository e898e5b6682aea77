"""The Renderer interface: a batch of CharacterStates in, a batch of RGB frames out."""

from __future__ import annotations

from typing import Protocol

import torch

from engine.lifecycle import Component


class Renderer(Component, Protocol):
    """`prewarm` builds or loads what drawing needs (a traced program, a GL worker process)."""

    width: int
    height: int

    def render(self, states: torch.Tensor) -> torch.Tensor:
        """states [B, P] float32 -> frames [B, H, W, 3] uint8 (CPU tensor). Pure: same in, same out."""
        ...
