"""The one error every part of the `live2d` appearance raises: it names the file or component and why."""

from __future__ import annotations


class Live2DError(RuntimeError):
    """Live2D cannot run: the message says which file or component and why."""
