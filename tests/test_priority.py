"""Thread priority for the frame loop: only the calling thread changes; a refusal is a warning, not a crash."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from engine.priority import set_thread_nice

pytestmark = [pytest.mark.unit, pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")]


def test_nice_changes_only_the_calling_thread_and_refusal_is_reported(caplog, monkeypatch):
    seen: dict[str, int | bool] = {}
    base = os.getpriority(os.PRIO_PROCESS, 0)

    def worker() -> None:
        seen["ok"] = set_thread_nice(min(19, base + 3), "test thread")  # raising nice is always allowed
        seen["mine"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["ok"] is True and seen["mine"] == min(19, base + 3)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # this thread is untouched

    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert set_thread_nice(-5, "frame loop") is False
    assert "cannot set nice -5" in caplog.text and "nice -n 10" in caplog.text
