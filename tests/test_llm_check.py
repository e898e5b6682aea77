"""`stagecast check` with the `openai` brain: the server is probed at `{base_url}/models`; a dead URL or
a wrong path is one error line naming the URL (and a failing exit code), a live one names its model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration


def check(tmp_path: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "show.yaml"
    config.write_text(f"character:\n  brain: openai\n  openai:\n    base_url: {base_url}\n    model: fake\n")
    return subprocess.run([sys.executable, "-m", "streamer.cli", "check", "-c", str(config), *extra],
                          capture_output=True, text=True, timeout=180)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.lower().startswith("error")]


def test_dead_url_and_wrong_path_are_one_line_errors_naming_the_url(tmp_path):
    async def main():
        async with FakeOpenAIServer() as server:
            dead_url = f"http://127.0.0.1:{server.port}/v1"
            wrong = f"http://127.0.0.1:{server.port}/api/v9"
            good = await asyncio.to_thread(check, tmp_path, server.base_url)
            wrong_path = await asyncio.to_thread(check, tmp_path, wrong)
        dead = await asyncio.to_thread(check, tmp_path, dead_url)  # the port is closed again
        return dead_url, wrong, good, wrong_path, dead

    dead_url, wrong, good, wrong_path, dead = asyncio.run(main())
    assert good.returncode == 0, good.stdout + good.stderr
    assert "llm server" in good.stdout and "models: fake" in good.stdout
    for proc, url, why in ((dead, dead_url, "cannot connect"), (wrong_path, wrong, "HTTP 404")):
        assert proc.returncode == 1
        lines = error_lines(proc)
        assert len(lines) == 1, lines  # one line, no traceback
        assert f"{url}/models" in lines[0] and why in lines[0]
        assert "Traceback" not in proc.stderr
