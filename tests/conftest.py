"""Fixtures shared by the test modules (support classes live in tests/*_support.py and tests/fakes/)."""

from __future__ import annotations

import pytest

from tests.panel_support import make_tokens


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh panel database with one token per role: {"db": path, "viewer"|"mod"|"admin": token}."""
    db = tmp_path_factory.mktemp("panel") / "panel.db"
    return {"db": str(db), **make_tokens(db)}
