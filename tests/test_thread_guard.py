"""The project-wide guard (tests/conftest.py, tests/thread_guard.py): an exception in a helper thread
fails the test that started the thread, and one from a thread that outlived its test is reported at
the end of the session, naming that test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
from tests.conftest import (_fail_on_thread_exceptions, _thread_excepthook, pytest_runtest_call,
                            pytest_sessionfinish, pytest_terminal_summary, thread_exceptions)
"""


def run_inner(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=source)
    env = os.environ.get("PYTHONPATH")
    pytester._monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + env if env else ""))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_an_exception_in_a_helper_thread_fails_its_test(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, """
import threading

def test_raises_in_a_thread():
    def work():
        raise ValueError("boom in the worker")
    t = threading.Thread(target=work, name="worker-1")
    t.start()
    t.join()

def test_quiet_thread():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()

def test_expects_one(thread_exceptions):  # a test may take the exceptions it provokes on purpose
    t = threading.Thread(target=lambda: 1 / 0)
    t.start()
    t.join()
    assert len(thread_exceptions) == 1 and "ZeroDivisionError" in thread_exceptions[0].text
    thread_exceptions.clear()
""")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*worker-1*started by test_inner.py::test_raises_in_a_thread*",
                                 "*ValueError: boom in the worker*", "FAILED test_inner.py::test_raises_in_a_thread*"])


def test_a_thread_that_outlives_its_test_is_blamed_on_that_test(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, """
import threading, time

go = threading.Event()

def test_leaves_a_daemon_running():
    def work():
        go.wait(10)
        raise RuntimeError("late failure")
    threading.Thread(target=work, name="leaked", daemon=True).start()

def test_innocent_bystander():
    go.set()
    time.sleep(0.5)  # the leaked thread raises while this test runs
""")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*exceptions in threads that outlived their test*",
                                 "*'leaked', started by test_inner.py::test_leaves_a_daemon_running while "
                                 "test_inner.py::test_innocent_bystander ran*", "*RuntimeError: late failure*"])
