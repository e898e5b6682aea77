"""Every exception raised in a helper thread fails a test (see the fixtures in tests/conftest.py).

`threading.excepthook` records each uncaught thread exception with the test that was running and the
test that started the thread. Attribution:
  - a thread started by the running test (or by one of its fixtures, or one that existed before it
    and no test is known to have started) fails the running test;
  - a thread that an earlier test started and left running (a daemon that outlived its test) is not
    blamed on whichever test happens to run when it raises: it is reported at the end of the session,
    naming the test that started it, and the session fails.
A test that provokes thread exceptions on purpose takes the `thread_exceptions` fixture and clears
what it expected.
"""

from __future__ import annotations

import threading
import traceback
import weakref
from dataclasses import dataclass


@dataclass
class ThreadFailure:
    thread: str
    started_by: str | None  # nodeid of the test that started the thread, when known
    during: str | None  # nodeid of the test running when it raised, None between tests
    text: str  # the formatted traceback

    def describe(self) -> str:
        origin = f", started by {self.started_by}" if self.started_by else ""
        when = f" while {self.during} ran" if self.during and self.during != self.started_by else ""
        return f"exception in thread {self.thread!r}{origin}{when}:\n{self.text}"


class ThreadGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: str | None = None
        self.failures: list[ThreadFailure] = []  # belong to the running test
        self.orphans: list[ThreadFailure] = []  # reported at the end of the session
        self._origin: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
        self._before: set[threading.Thread] = set()
        self._previous = threading.excepthook

    # ----- the hook -------------------------------------------------------------------------------
    def install(self) -> None:
        self._previous = threading.excepthook
        threading.excepthook = self.hook

    def uninstall(self) -> None:
        threading.excepthook = self._previous

    def hook(self, args: threading.ExceptHookArgs) -> None:
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        thread = args.thread
        with self._lock:
            started_by = self._origin.get(thread) if thread is not None else None
            if started_by is None and thread is not None and thread not in self._before and self.current:
                started_by = self.current  # started while this test ran
            failure = ThreadFailure(thread.name if thread is not None else "<unknown>", started_by, self.current, text)
            if self.current is not None and started_by in (None, self.current):
                self.failures.append(failure)
            else:
                self.orphans.append(failure)

    # ----- per test -------------------------------------------------------------------------------
    def start_test(self, nodeid: str) -> None:
        with self._lock:
            self.current = nodeid
            self.failures.clear()
            self._before = set(threading.enumerate())

    def take(self) -> list[ThreadFailure]:
        """The running test's thread exceptions so far (and forget them)."""
        with self._lock:
            failures = list(self.failures)
            self.failures.clear()  # in place: the `thread_exceptions` fixture holds this list
        return failures

    def end_test(self) -> None:
        """Remember which test started each thread still running: if one raises later, the report names it."""
        with self._lock:
            for thread in threading.enumerate():
                if thread not in self._before and thread not in self._origin and self.current is not None:
                    self._origin[thread] = self.current
            self.current = None
            self._before = set()


def report(failures: list[ThreadFailure]) -> str:
    return f"{len(failures)} exception(s) in helper threads:\n\n" + "\n".join(f.describe() for f in failures)
