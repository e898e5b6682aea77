"""Counter-based randomness: the same (seed, keys) gives the same number on every machine, with no
generator state, so anything drawn from it can be recomputed for any frame."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def hash01(seed: int, *keys: int) -> float:
    """A counter-based random number in [0, 1): splitmix64 over (seed, keys). Same on every machine."""
    x = (seed * 0x9E3779B97F4A7C15) & _MASK64
    for k in keys:
        x = (x ^ (k & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & _MASK64
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)
