"""FramePool: the compiled renderer's recycled output frames are never overwritten while held."""

import pytest
import torch

from engine.render.procedural.frame_pool import FramePool

pytestmark = pytest.mark.unit


def background() -> torch.Tensor:
    return torch.arange(12 * 16 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 12, 16, 3)


def box(value: int, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, 4, 5, 3), value, dtype=torch.uint8)


def test_a_frame_is_the_background_with_the_box_written_in():
    frame0 = background()
    pool = FramePool(frame0, y=3, x=6)
    out = pool.frame(box(7, batch=2))
    expected = frame0.expand(2, -1, -1, -1).clone()
    expected[:, 3:7, 6:11] = 7
    assert torch.equal(out, expected)


def test_held_frames_are_never_overwritten_and_released_ones_are_reused():
    pool = FramePool(background(), y=0, x=0, keep=3)
    first = pool.frame(box(1))
    as_numpy = pool.frame(box(2))[0].numpy()  # what the frame loop keeps: a numpy view of one frame
    third = pool.frame(box(3))
    assert pool.made == 3
    assert int(first[0, 0, 0, 0]) == 1 and int(as_numpy[0, 0, 0]) == 2 and int(third[0, 0, 0, 0]) == 3
    del first
    again = pool.frame(box(4))  # the first frame's memory, now that nobody holds it
    assert pool.made == 3
    assert int(as_numpy[0, 0, 0]) == 2 and int(third[0, 0, 0, 0]) == 3
    del again, third
    for value in range(5, 9):  # a caller that drops each frame at once needs no new ones
        assert int(pool.frame(box(value))[0, 0, 0, 0]) == value
    assert pool.made == 3 and int(as_numpy[0, 0, 0]) == 2


def test_when_every_kept_frame_is_held_new_frames_are_made_but_not_kept():
    pool = FramePool(background(), y=0, x=0, keep=2)
    held = [pool.frame(box(v)) for v in range(5)]
    assert pool.made == 5
    assert [int(f[0, 0, 0, 0]) for f in held] == [0, 1, 2, 3, 4]
    assert sum(len(frames) for frames in pool._frames.values()) == 2
