"""A one-thread executor whose thread never holds up process exit.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so a call
stuck in a library (a TCP connect to a host that never answers, a voice that hangs) keeps a
stopped show's process alive until that call gives up. Work that can be abandoned at exit runs here
instead: the thread is a daemon, and `shutdown` never waits for a call in progress.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
_STOP = object()


class DaemonExecutor(Executor):
    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self._name}: executor is shut down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
            future: Future[T] = Future()
            self._queue.put((future, fn, args, kwargs))
            return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            thread = self._thread
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        self._queue.put(_STOP)
        if wait and thread is not None:
            thread.join()
