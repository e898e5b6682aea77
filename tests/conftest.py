"""Fixtures shared by the test modules (support classes live in tests/*_support.py and tests/fakes/)."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.panel_support import make_tokens
from tests.thread_guard import ThreadFailure, ThreadGuard, report

GUARD = ThreadGuard()


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh panel database with one token per role: {"db": path, "viewer"|"mod"|"admin": token}."""
    db = tmp_path_factory.mktemp("panel") / "panel.db"
    return {"db": str(db), **make_tokens(db)}


# ----- an exception in any helper thread fails the test (tests/thread_guard.py) ------------------------
@pytest.fixture(scope="session", autouse=True)
def _thread_excepthook() -> Iterator[None]:
    """Installed after pytest's own hook (pytest_configure), so ours sees every thread exception."""
    GUARD.install()
    yield
    GUARD.uninstall()


@pytest.fixture(autouse=True)
def _fail_on_thread_exceptions(request: pytest.FixtureRequest, _thread_excepthook: None) -> Iterator[None]:
    """Set up before the test's other function fixtures and torn down after them, so exceptions in
    threads of their setup and teardown count too."""
    GUARD.start_test(request.node.nodeid)
    try:
        yield
        failures = GUARD.take()
    finally:
        GUARD.end_test()
    if failures:
        pytest.fail(report(failures), pytrace=False)


@pytest.fixture
def thread_exceptions() -> list[ThreadFailure]:
    """For a test that provokes thread exceptions on purpose: the list of those raised so far in this
    test; call `.clear()` on what the test expected, whatever stays fails the test."""
    return GUARD.failures


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A thread exception during the test body fails the test itself (not only its teardown)."""
    result = yield
    failures = GUARD.take()
    if failures:
        pytest.fail(report(failures), pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if GUARD.orphans and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if GUARD.orphans:
        terminalreporter.section("exceptions in threads that outlived their test", sep="=", red=True)
        terminalreporter.write_line(report(GUARD.orphans))
