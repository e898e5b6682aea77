"""The station: many always-on shows on a Ray cluster (a laptop's local Ray or a real cluster).

A show is a Ray actor (`host.ShowHost`) that renders, encodes and records where it runs; the station is a
driver that places the shows, notices restarts, polls their status and routes moderator actions to them
(`runtime.StationRuntime`), served by one panel (`panel`). Ray is the optional extra `stagecast[station]`.
"""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = ("the station runs on Ray, which is not installed here: pip install 'stagecast[station]' "
                "(or pip install ray); a single show needs none of it: stagecast run")


class StationUnavailable(RuntimeError):
    """Ray is missing; the message says how to install it."""


def require_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise StationUnavailable(INSTALL_HINT) from None
    return ray
