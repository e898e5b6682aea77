"""The `openai` brain: any OpenAI-compatible streaming chat-completions endpoint (OpenAI, Ollama's
`/v1`, llama.cpp server, vLLM) over aiohttp server-sent events.

Wire format (POST ``{base_url}/chat/completions`` with ``"stream": true``): a ``text/event-stream`` of
``data: {json}`` events separated by blank lines, each a ``chat.completion.chunk`` whose
``choices[0].delta.content`` carries the next piece of text, ended by ``data: [DONE]``.  Errors come
as an HTTP status with a JSON ``{"error": {"message": ...}}`` body, or mid-stream as an event holding
an ``error`` object.

Interruption matters more than throughput here: when the turn task is cancelled, or the consumer
stops iterating and closes the generator, the response is closed (not drained), so the server sees
the disconnect and stops generating.  The API key comes from an environment variable named in the
config; it is sent only in the Authorization header and never appears in logs, errors or repr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import aiohttp

from engine.brain.base import BrainError, HistoryEntry, Prompt
from engine.brain.persona import Persona
from engine.brain.prompt import BuiltPrompt, PromptBuilder, SystemMode, TokenCounter
from engine.brain.server import (
    ServerInfo,
    ServerProblem,
    count_tokens,
    identify,
    list_models,
    wait_idle,
)
from engine.lifecycle import Lifecycle

log = logging.getLogger("stagecast.brain.openai")

_MAX_ERROR_BODY = 2048
_MAX_EVENT_BYTES = 1 << 20  # one SSE event larger than this is not a chat chunk


class BrainTimeoutError(BrainError):
    """The server missed a deadline: the first token, or the next one."""


class BrainBusyError(BrainError):
    """A single-slot server is still working on an abandoned reply; a new request would queue behind it."""


class OpenAICompatBrain(Lifecycle):
    """Streams reply text from an OpenAI-compatible server; one aiohttp session per brain (keep-alive).

    Deadlines fit how LLMs behave: the first token may take `first_token_s` plus `first_token_per_1k_s`
    for every thousand prompt tokens the server has to read (those after the part shared with the last
    prompt, which its cache holds), capped at `max_first_token_s`; after that,
    each token must follow within `between_tokens_s`.  A reply abandoned before its end (interrupt,
    deadline) may still occupy a single-slot server: before the next request the brain waits up to
    `idle_wait_s` for it to finish (see :mod:`engine.brain.server`), then gives up with BrainBusyError
    rather than queueing behind it."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:11434/v1",
        model: str = "llama3.2",
        *,
        api_key_env: str | None = None,
        persona: Persona | None = None,
        context: Callable[[str], str] | None = None,
        temperature: float = 0.8,
        max_tokens: int = 160,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
        extra_body: dict[str, Any] | None = None,
        system_mode: SystemMode = "system",
        history_tokens: int = 900,
        summary_tokens: int = 200,
        first_token_s: float = 8.0,
        first_token_per_1k_s: float = 30.0,
        max_first_token_s: float = 45.0,
        between_tokens_s: float | None = None,
        idle_wait_s: float = 8.0,
        server_tokenizer: bool = True,
    ) -> None:
        """`context(user_id)` returns what memory knows about the viewer (e.g. ``Memory.context_for``).
        `between_tokens_s` defaults to `read_timeout_s`."""
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.persona = persona or Persona()
        self.context = context
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.first_token_s = first_token_s
        self.first_token_per_1k_s = first_token_per_1k_s
        self.max_first_token_s = max_first_token_s
        self.between_tokens_s = between_tokens_s if between_tokens_s is not None else read_timeout_s
        self.idle_wait_s = idle_wait_s
        self.connect_timeout_s = connect_timeout_s
        # no socket read timeout: the deadlines above decide, per token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._api_key_env = api_key_env
        if api_key_env and not os.environ.get(api_key_env):
            raise BrainError(f"openai brain: environment variable {api_key_env} (the API key) is not set")
        self._session: aiohttp.ClientSession | None = None
        self.info: ServerInfo | None = None
        self._server_tokenizer = server_tokenizer
        self.builder = PromptBuilder(self.persona, TokenCounter(), history_tokens=history_tokens,
                                     summary_tokens=summary_tokens, system_mode=system_mode)
        self.abandoned = False  # a request of ours may still be running on the server
        self._stopper: asyncio.Task[None] | None = None
        self.last_prompt: BuiltPrompt | None = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatBrain(url={self.url!r}, model={self.model!r})"

    @property
    def max_wait_s(self) -> float:
        """The longest this brain may legitimately stay silent (the performer's guard allows it)."""
        return self.idle_wait_s + self.max_first_token_s

    def cover_line(self, language: str) -> str | None:
        return self.persona.cover_line(language)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        key = os.environ.get(self._api_key_env, "") if self._api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def first_token_deadline(self, prompt_tokens: int) -> float:
        scaled = self.first_token_s + self.first_token_per_1k_s * prompt_tokens / 1000
        return min(self.max_first_token_s, scaled)

    async def request_body(self, prompt: Prompt, history: list[HistoryEntry]) -> dict[str, Any]:
        """The JSON body for one turn (public so tests and benchmarks can show it)."""
        context = ""
        if self.context is not None and prompt.user_id:
            try:
                context = self.context(prompt.user_id)
            except Exception:  # memory trouble must not cost the reply
                log.exception("memory context for a viewer failed; replying without it")
        built = await self.builder.build(prompt, history, context)
        self.last_prompt = built
        return {
            "model": self.model,
            "messages": built.messages,
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self.extra_body,
        }

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def server(self) -> ServerInfo:
        """What kind of server this is (asked once it answers; see engine.brain.server)."""
        if self.info is None or not self.info.reached:
            session = await self._get_session()
            self.info = await identify(session, self.base_url, timeout_s=self.connect_timeout_s)
            if self.info.reached and self._server_tokenizer and self.info.kind in ("llama.cpp", "llama-cpp-python"):
                info = self.info

                async def remote(text: str) -> int | None:
                    return await count_tokens(session, info, text)

                self.builder.counter.remote = remote
        return self.info

    async def probe(self, timeout_s: float = 2.0) -> str:
        """"up", "busy" (still on an abandoned reply) or "down" (with no request of ours running)."""
        session = await self._get_session()
        info = await self.server()
        if self.abandoned:
            if not await wait_idle(session, info, timeout_s, self._headers()):
                return "busy"
            self.abandoned = False
        try:
            await list_models(session, self.base_url, timeout_s, self._headers())
        except ServerProblem:
            return "down"
        return "up"

    async def aclose(self) -> None:
        """Close the HTTP session (call once when the show stops)."""
        if self._stopper is not None:
            self._stopper.cancel()
            await asyncio.gather(self._stopper, return_exceptions=True)
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _wait_for_abandoned(self, session: aiohttp.ClientSession, info: ServerInfo) -> None:
        if not self.abandoned:
            return
        if not await wait_idle(session, info, self.idle_wait_s, self._headers()):
            raise BrainBusyError(f"openai brain: {self.base_url} is still busy with an abandoned reply "
                                 f"after {self.idle_wait_s:.0f} s")
        self.abandoned = False

    async def reply(self, prompt: Prompt, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        """Yield text pieces as the server streams them. Raises BrainError with the reason on failure."""
        session = await self._get_session()
        info = await self.server()
        await self._wait_for_abandoned(session, info)
        body = await self.request_body(prompt, history)
        assert self.last_prompt is not None
        first_deadline = self.first_token_deadline(self.last_prompt.new_tokens)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first_deadline
        self.abandoned = True  # until the server is seen to finish
        try:
            async with asyncio.timeout_at(deadline):
                response = await session.post(self.url, json=body, headers=self._headers())
        except TimeoutError as exc:
            raise BrainTimeoutError(f"openai brain: no answer from {self.url} in {first_deadline:.0f} s") from exc
        except aiohttp.ClientError as exc:
            self.abandoned = False
            raise BrainError(f"openai brain: cannot reach {self.url}: {type(exc).__name__}: {exc}") from exc
        finished = False
        try:
            if response.status >= 400:
                self.abandoned = False
                raise BrainError(await _http_error(response, self.url))
            ctype = response.headers.get("Content-Type", "")
            if "application/json" in ctype:  # a server that ignored "stream": the whole reply at once
                text = await _whole_reply(response)
                finished = True
                if text:
                    yield text
                return
            got_text = False
            events = _sse_data(response)
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await anext(events)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    which = "first token" if not got_text else "next token"
                    limit = first_deadline if not got_text else self.between_tokens_s
                    raise BrainTimeoutError(f"openai brain: no {which} from {self.url} in {limit:.0f} s") from None
                if data == "[DONE]":
                    finished = True
                    return
                piece = _delta_text(data)
                if piece:
                    got_text = True
                    yield piece
                    deadline = loop.time() + self.between_tokens_s  # counted from when the show asks again
            finished = True
            if not got_text:
                raise BrainError(f"openai brain: {self.url} ended the stream without any text or [DONE]")
            log.warning("openai brain: stream ended without [DONE]; keeping the text received")
        except aiohttp.ClientPayloadError as exc:
            finished = True  # the connection is gone: nothing of ours runs there any more
            raise BrainError(f"openai brain: the stream from {self.url} broke off: {exc}") from exc
        finally:
            if finished:
                self.abandoned = False
                response.release()
            else:  # cancelled, consumer went away, or an error: drop the connection so generation stops
                response.close()
                self._stop_on_server(info)

    def _stop_on_server(self, info: ServerInfo) -> None:
        """llama-cpp-python only notices a dropped client at its next token, and then only if it looks:
        a request waiting for its model lock makes the stream stop at once (see engine.brain.server).
        Ask for one now, in the background, so the abandoned reply stops before the next turn needs it."""
        if info.kind != "llama-cpp-python" or (self._stopper is not None and not self._stopper.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def stop() -> None:
            session = await self._get_session()
            if await wait_idle(session, info, self.idle_wait_s + self.max_first_token_s, self._headers()):
                self.abandoned = False

        self._stopper = loop.create_task(stop(), name="llm-stop-abandoned")


async def _http_error(response: aiohttp.ClientResponse, url: str) -> str:
    raw = await response.content.read(_MAX_ERROR_BODY)
    text = raw.decode("utf-8", "replace").strip()
    message = text
    try:
        payload = json.loads(text)
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or err)
        elif isinstance(err, str):
            message = err
    except ValueError:
        pass
    if response.status == 429:
        kind = "too many requests (the server is busy or rate-limits this key)"
    elif response.status == 404:
        kind = "not found (check base_url, which usually ends in /v1, and the model name)"
    else:
        kind = "client error (check base_url, model and API key)" if response.status < 500 else "server error"
    return f"openai brain: HTTP {response.status} {kind} from {url}: {message[:300] or response.reason}"


async def _whole_reply(response: aiohttp.ClientResponse) -> str:
    try:
        payload = json.loads(await response.text())
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BrainError("openai brain: a JSON response without choices[0].message.content") from exc
    return content if isinstance(content, str) else ""


async def _sse_data(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The `data` of each server-sent event (multi-line data joined with newlines); comments skipped."""
    data: list[str] = []
    size = 0
    event = ""
    async for raw in response.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                joined = "\n".join(data)
                if event == "error":
                    raise BrainError(f"openai brain: the server sent an error event: {joined[:300]}")
                yield joined
            data, size, event = [], 0, ""
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
            size += len(value)
            if size > _MAX_EVENT_BYTES:
                raise BrainError("openai brain: malformed SSE (an event over 1 MiB)")
        elif field == "event":
            event = value
        elif field not in ("id", "retry"):
            raise BrainError(f"openai brain: malformed SSE line {line[:80]!r} (expected 'data: ...')")
    if data:  # a final event without its blank line
        yield "\n".join(data)


def _delta_text(data: str) -> str:
    """The text of one chat.completion.chunk; raises BrainError for garbage or an error object."""
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise BrainError(f"openai brain: malformed SSE data (not JSON): {data[:80]!r}") from exc
    if not isinstance(chunk, dict):
        raise BrainError(f"openai brain: malformed SSE data (not an object): {data[:80]!r}")
    if "error" in chunk:
        err = chunk["error"]
        message = err.get("message") if isinstance(err, dict) else err
        raise BrainError(f"openai brain: the server reported an error mid-stream: {str(message)[:300]}")
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise BrainError(f"openai brain: malformed chunk without a choices list: {data[:80]!r}")
    if not choices:
        return ""  # e.g. a usage-only chunk
    choice = choices[0] if isinstance(choices[0], dict) else {}
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is None and isinstance(choice.get("text"), str):  # legacy completions-style chunk
        content = choice["text"]
    return content if isinstance(content, str) else ""
