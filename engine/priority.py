"""OS priority for the threads that must keep time (frame loop, encoder) when the CPU is shared,
e.g. with a local LLM server on the same small machine.

On Linux a thread has its own nice value: ``setpriority(PRIO_PROCESS, native_thread_id, nice)``
changes only the calling thread, and threads it starts later inherit it (x264's worker threads do).
Lowering nice below 0 needs CAP_SYS_NICE (root, or ``ulimit -e`` / ``LimitNICE=`` in systemd); where
the OS refuses, the show says so once and runs on at normal priority.  The other way round always
works: start the LLM server with ``nice -n 10``.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("stagecast.priority")


def set_thread_nice(nice: int | None, what: str) -> bool:
    """Give the calling thread the nice value `nice` (None: leave it). False when the OS refused."""
    if nice is None:
        return True
    if not hasattr(os, "setpriority"):
        log.warning("%s: thread priority is not supported on this OS; running at normal priority", what)
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:
        log.warning("%s: cannot set nice %d (%s); running at normal priority. Allow it (CAP_SYS_NICE, "
                    "ulimit -e) or start the LLM server with `nice -n 10` instead", what, nice, exc.strerror)
        return False
    log.info("%s: thread nice %d", what, nice)
    return True
