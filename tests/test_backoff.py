"""The one backoff every reconnect/restart loop uses: doubling, capped, reset, optional jitter."""

from __future__ import annotations

import random

import pytest

from streamer.backoff import Backoff
from streamer.config import BackoffConfig

pytestmark = pytest.mark.unit


def test_without_jitter_it_doubles_up_to_the_cap_and_reset_starts_over() -> None:
    b = Backoff(0.5, 4.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.attempt == 6
    b.reset()
    assert b.attempt == 0 and b.next_delay() == 0.5


def test_factor_and_a_cap_below_the_first_delay() -> None:
    b = Backoff(1.0, 100.0, factor=3.0)
    assert [b.next_delay() for _ in range(5)] == [1.0, 3.0, 9.0, 27.0, 81.0]
    assert Backoff(5.0, 2.0).next_delay() == 2.0


def test_jitter_stays_in_the_upper_half_of_each_ceiling() -> None:
    b = Backoff(1.0, 8.0, jitter=True, rng=random.Random(7))
    for ceiling in (1.0, 2.0, 4.0, 8.0, 8.0):
        assert ceiling / 2 <= b.next_delay() <= ceiling


def test_from_config_jitters_with_the_configured_numbers() -> None:
    b = Backoff.from_config(BackoffConfig(initial_s=0.2, max_s=0.8, factor=2.0), rng=random.Random(1))
    assert (b.initial_s, b.max_s, b.factor, b.jitter) == (0.2, 0.8, 2.0, True)
    delays = [b.next_delay() for _ in range(4)]
    for delay, ceiling in zip(delays, (0.2, 0.4, 0.8, 0.8), strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_days_of_failures_never_overflow() -> None:
    b = Backoff(1.0, 60.0)
    b.attempt = 5000  # factor**attempt is past the float range
    assert b.next_delay() == 60.0


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(-1.0, 10.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 10.0, factor=0.5)
