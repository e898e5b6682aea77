"""Shared by the appearance tests: viseme states, sheets of rendered states and the emotion x viseme
contact sheet."""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.state import EMOTIONS, VISEMES, make_state


def viseme(name: str, **extra: float) -> torch.Tensor:
    """A state with one viseme fully on (and any other fields given)."""
    return make_state(**({"mouth_closed": 0.0, f"mouth_{name}": 1.0} | extra))


def sheet(render: Callable[[torch.Tensor], torch.Tensor], rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """Render rows of states [P] (equal lengths) into one [H*rows, W*columns, 3] image."""
    return torch.cat([torch.cat(list(render(torch.stack(row))), dim=1) for row in rows], dim=0)


def contact_sheet(render: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Rows: neutral + each emotion; columns: each viseme. One [H*6, W*6, 3] image for people to look at."""
    rows = []
    for emotion in (None, *EMOTIONS):
        extra = {emotion: 1.0} if emotion else {}
        rows.append([viseme(v, **extra) if v != "closed" else make_state(**extra) for v in VISEMES])
    return sheet(render, rows)
