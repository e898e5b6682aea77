"""The one exponential backoff every reconnect/restart loop uses (chat sources, output sinks, OBS).

Attempt ``k`` (counted from 0 since the last :meth:`Backoff.reset`) waits
``min(max_s, initial_s * factor**k)``. With ``jitter`` the wait is drawn uniformly from the upper
half of that, ``[ceiling / 2, ceiling]``, so many clients that lost the same server do not all
come back in the same instant; without it the wait is exactly the ceiling.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamer.config import BackoffConfig


class Backoff:
    """Delays for successive failed attempts; :meth:`reset` after one that worked."""

    def __init__(self, initial_s: float, max_s: float, factor: float = 2.0, jitter: bool = False,
                 rng: random.Random | None = None) -> None:
        if initial_s < 0 or max_s < 0:
            raise ValueError(f"backoff delays must be >= 0, got initial_s={initial_s}, max_s={max_s}")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        self.attempt = 0  # delays handed out since the last reset

    @classmethod
    def from_config(cls, config: BackoffConfig, rng: random.Random | None = None) -> Backoff:
        """A chat source's configured backoff; these always jitter (many viewers' clients, one server)."""
        return cls(config.initial_s, config.max_s, config.factor, jitter=True, rng=rng)

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (and count this one)."""
        try:
            ceiling = min(self.max_s, self.initial_s * self.factor**self.attempt)
        except OverflowError:  # a source failing for days: factor**attempt left the float range
            ceiling = self.max_s
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling) if self.jitter else ceiling

    def reset(self) -> None:
        """An attempt worked: the next failure starts again from ``initial_s``."""
        self.attempt = 0

    def __repr__(self) -> str:
        return (f"Backoff(initial_s={self.initial_s}, max_s={self.max_s}, factor={self.factor}, "
                f"jitter={self.jitter}, attempt={self.attempt})")
