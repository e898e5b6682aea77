"""Identity over time: a million animated frames leave no trace in what the renderer draws."""

from __future__ import annotations

import pytest
import torch

from engine.animator import Animator
from engine.clock import TimeBase
from engine.render.procedural.renderer import ProceduralRenderer
from engine.state import neutral_state
from engine.timeline import Timeline

FRAMES = 1_000_000


@pytest.mark.slow
def test_neutral_frame_identical_after_a_million_animated_frames() -> None:
    """Animate (not render) 10^6 frames in virtual time, then the neutral state draws the same pixels."""
    tb = TimeBase(fps=30, sample_rate=48000)
    timeline, animator = Timeline(tb), Animator(tb.fps, seed=7)
    renderer = ProceduralRenderer(320, 180)
    neutral = neutral_state().unsqueeze(0)
    before = renderer.render(neutral).clone()
    first = animator.state(timeline.pull(0)).clone()
    renderer.render(first.unsqueeze(0))  # the renderer has drawn an animated frame too
    last = first
    for n in range(1, FRAMES):
        last = animator.state(timeline.pull(n))
    assert torch.isfinite(last).all()
    assert torch.equal(renderer.render(neutral), before)
    # the animator is pure in n: a fresh one reproduces both ends exactly, and so does a fresh renderer
    assert torch.equal(Animator(tb.fps, seed=7).state(Timeline(tb).pull(0)), first)
    assert torch.equal(Animator(tb.fps, seed=7).state(Timeline(tb).pull(FRAMES - 1)), last)
    assert torch.equal(renderer.render(last.unsqueeze(0)), ProceduralRenderer(320, 180).render(last.unsqueeze(0)))
