"""Identity over time: animating a million frames leaves no drift in the animator's state.

The animator and timeline run 10^6 frames in virtual time; the renderer draws three frames (the
neutral pose before and after, and one animated frame), not a million: the renderer is a pure
function of the state, so what could drift is the state, and that is what the test compares."""

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
def test_a_million_animated_frames_leave_no_drift_in_the_animator() -> None:
    """Animate (not render) 10^6 frames: frame 10^6 - 1 equals what a fresh animator computes for it
    (no state accumulates across frames), and the neutral pose still draws the first frame's pixels."""
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
